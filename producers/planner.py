"""From raw records to the frames to produce, skipping what a previous run already wrote.

Pure logic: routing (which topic and symbol a record belongs to) and partitioning are
functions passed in, so the exactly-once rules here are tested without Kafka.

A run starts by catching up: records up to the highest index a previous run may have
written are checked one by one against the resume state, and those still missing are
framed under the batch number the previous run left in their topic-partition, so that a
crash during catch-up resumes just as correctly (see `producers.resume`). After that,
each batch's frames carry the index of the batch's first record.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from producers.framing import FrameLimits, Framer, OutFrame
from producers.resume import ResumeState

Route = Callable[[bytes], tuple[str, str] | None]
"""A record's (topic, symbol), or None for records that are not published (control)."""
Stable = Callable[[bytes], bool]
"""Whether every record with this 8-byte header routes the same way (no date dependence)."""
PartitionOf = Callable[[str, str], int]


@dataclass(frozen=True)
class PlannedFrame:
    """A frame with its partition and the batch tag it must carry."""

    frame: OutFrame
    partition: int
    batch: int


@dataclass
class PlanStats:
    """What planning did with the records it saw."""

    published: int = 0
    skipped_written: int = 0
    unrouted: int = 0


class FramePlanner:
    """Turns batches of raw records into frames, exactly once across restarts."""

    def __init__(
        self,
        route: Route,
        partition_of: PartitionOf,
        resume: ResumeState,
        limits: FrameLimits,
        stable: Stable | None = None,
        *,
        framer: Framer | None = None,
    ) -> None:
        self._route = route
        self._stable = stable
        self._partition_of = partition_of
        self._resume = resume
        self._catch_up_end = resume.last_index() + 1
        self._framer = framer or Framer(limits)
        self.stats = PlanStats()

    def plan(self, records: Sequence[bytes], first_index: int) -> list[PlannedFrame]:
        """Frames for records at source indices first_index, first_index + 1, ..."""
        if first_index >= self._catch_up_end:
            return self._plan_new(records, first_index)
        out: list[PlannedFrame] = []
        batch_start = first_index
        for offset, record in enumerate(records):
            index = first_index + offset
            if index == self._catch_up_end and self._framer.pending:
                out += self._drain(batch_start)  # never mix catch-up and new batches
                batch_start = index
            elif index == self._catch_up_end:
                batch_start = index
            routed = self._route(record)
            if routed is None:
                self.stats.unrouted += 1
                continue
            topic, symbol = routed
            if index < self._catch_up_end and self._resume.written(
                (topic, self._partition_of(topic, symbol)), symbol, index
            ):
                self.stats.skipped_written += 1
                continue
            self._framer.add(topic, symbol, index, record)
            self.stats.published += 1
        return out + self._drain(batch_start)

    def _plan_new(self, records: Sequence[bytes], first_index: int) -> list[PlannedFrame]:
        # Past the catch-up nothing is skipped, and the per-record work is one dict lookup
        # by record header (stable routes only) and two appends.
        route, stable, group_for = self._route, self._stable, self._framer.group_for
        by_header: dict[bytes, tuple[list[int], list[bytes]]] = {}
        unrouted = 0
        for index, record in enumerate(records, first_index):
            header = record[:8]
            lists = by_header.get(header)
            if lists is None:
                routed = route(record)
                if routed is None:
                    unrouted += 1
                    by_header.clear()  # a control record (symbol mapping) may change routes
                    continue
                lists = group_for(routed[0], routed[1], record[1])
                if stable is not None and stable(header):
                    by_header[header] = lists
            lists[0].append(index)
            lists[1].append(record)
        published = len(records) - unrouted
        self.stats.unrouted += unrouted
        self.stats.published += published
        self._framer.pending += published
        return self._drain(first_index)

    def _drain(self, batch_start: int) -> list[PlannedFrame]:
        catching_up = batch_start < self._catch_up_end
        planned = []
        for frame in self._framer.drain():
            partition = self._partition_of(frame.topic, frame.symbol)
            batch = self._resume.batch_of((frame.topic, partition)) if catching_up else batch_start
            planned.append(PlannedFrame(frame, partition, batch))
        return planned
