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
going on, and only offsets below it are ever committed. Pure bookkeeping: the worker
supplies the starting offset (the group's committed offset) and reports what it absorbed.
"""

from dataclasses import dataclass
from enum import Enum

TopicPartition = tuple[str, int]


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

    def next_offset(self, tp: TopicPartition) -> int:
        """The offset the partition's next frame must have (after `begin`)."""
        return self._parts[tp].next_offset

    def absorbed(self, tp: TopicPartition, offset: int) -> None:
        """Record that the frame at `offset` is absorbed and durable.

        `offset` is the next offset, or a later one when Kafka itself has nothing between
        (a compacted or transactional log); an earlier one is a bookkeeping error.
        """
        part = self._parts[tp]
        if offset < part.next_offset:
            raise ValueError(f"{tp}: absorbed offset {offset}, below {part.next_offset}")
        part.next_offset = offset + 1

    def committable(self, tp: TopicPartition) -> int | None:
        """The offset to commit: every frame below it is absorbed; None if unknown."""
        part = self._parts.get(tp)
        return None if part is None else part.next_offset
