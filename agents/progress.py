"""How far each md.* partition has been absorbed, so no frame is skipped and no commit lies.

faust-streaming does not deliver every message of a partition to the agent, in order,
exactly when a partition starts: around a (re)assignment its fetcher can read ahead of
the seek to the committed offset and lose what it read in between, and messages the
stream skips (flow control, an old generation) are acknowledged without reaching the
agent. Its offset commit follows those acknowledgements, so a skipped frame could be
committed and lost for good by a SIGKILL.

The agents therefore keep their own account, one `Progress` per worker: for each
partition, the offset the next frame must have. A frame below it is already absorbed
(skip), a frame above it reveals a gap the worker must fill from Kafka itself before
going on. Only offsets below it are ever committed, and only once the table entry that
absorbed each frame is in its changelog (so the worker never waits for that). Pure
bookkeeping: the worker supplies the starting offset (the group's committed offset) and
reports what it absorbed, with the delivery of what it wrote.
"""

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

TopicPartition = tuple[str, int]


class Delivery(Protocol):
    """The pending delivery of what a frame wrote (its table entry's changelog message)."""

    def done(self) -> bool:
        """Whether the delivery has ended, well or not."""

    def exception(self) -> BaseException | None:
        """Why it failed, once done; None if it succeeded."""


class Verdict(Enum):
    """What to do with a frame at a given offset."""

    ABSORB = "absorb"
    """The next frame of the partition."""
    STALE = "stale"
    """Already absorbed in this assignment: delivered again after a seek."""
    GAP = "gap"
    """Frames before it were never delivered: fetch them first."""
    UNKNOWN = "unknown"
    """The partition's start for this assignment is not known yet."""


@dataclass
class _Partition:
    generation: int
    next_offset: int
    pending: deque[tuple[int, Delivery]] = field(default_factory=deque)


class Progress:
    """Per partition of the tracked topics: the offset of the next frame to absorb."""

    def __init__(self, topics: frozenset[str]) -> None:
        self._topics = topics
        self._parts: dict[TopicPartition, _Partition] = {}

    def tracks(self, topic: str) -> bool:
        """Whether commits of `topic` come from this account."""
        return topic in self._topics

    def verdict(self, tp: TopicPartition, offset: int, generation: int) -> Verdict:
        """Classify a delivered frame; a new consumer generation starts the partition afresh."""
        part = self._parts.get(tp)
        if part is None or part.generation != generation:
            return Verdict.UNKNOWN
        if offset < part.next_offset:
            return Verdict.STALE
        if offset > part.next_offset:
            return Verdict.GAP
        return Verdict.ABSORB

    def begin(self, tp: TopicPartition, generation: int, next_offset: int) -> None:
        """Start a partition's account for an assignment at its committed offset."""
        self._parts[tp] = _Partition(generation, next_offset)

    def position(self, tp: TopicPartition) -> int | None:
        """The offset of the partition's next frame, or None before its first frame."""
        part = self._parts.get(tp)
        return None if part is None else part.next_offset

    def next_offset(self, tp: TopicPartition) -> int:
        """The offset the partition's next frame must have (after `begin`)."""
        return self._parts[tp].next_offset

    def absorbed(self, tp: TopicPartition, offset: int, delivery: Delivery | None = None) -> None:
        """Record that the frame at `offset` is absorbed; durable once `delivery` is done.

        `offset` is the next offset, or a later one when Kafka itself has nothing between
        (a compacted or transactional log); an earlier one is a bookkeeping error. Without
        a delivery the frame is durable already (a replay, a dead letter sent and awaited).
        """
        part = self._parts[tp]
        if offset < part.next_offset:
            raise ValueError(f"{tp}: absorbed offset {offset}, below {part.next_offset}")
        part.next_offset = offset + 1
        if delivery is not None:
            part.pending.append((offset, delivery))

    def committable(self, tp: TopicPartition) -> int | None:
        """The offset to commit: every frame below it is absorbed and durable; None if unknown.

        A frame whose delivery is still pending, or failed, holds the commit before it.
        """
        part = self._parts.get(tp)
        if part is None:
            return None
        pending = part.pending
        while pending and pending[0][1].done() and pending[0][1].exception() is None:
            pending.popleft()
        return pending[0][0] if pending else part.next_offset
