"""Adaptive framing: the records that arrived together for a symbol become one Kafka message.

Pure logic. The producer hands over one batch at a time — whatever its source delivered
together — and gets back frames, one per (topic, symbol, record type), split when they
exceed the caps. At low rates a batch is one record and a frame is one record; under
load or in fast replay frames grow, and every consumer pays per frame, not per record.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ticklane.chains import group_runs

DEFAULT_MAX_RECORDS: Final = 500
DEFAULT_MAX_BYTES: Final = 256 * 1024


@dataclass(frozen=True)
class FrameLimits:
    """Caps on one frame; a symbol's larger batch is split into several frames, in order."""

    max_records: int = DEFAULT_MAX_RECORDS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        if self.max_records < 1 or self.max_bytes < 1:
            raise ValueError(f"frame limits must be positive, got {self}")


@dataclass(frozen=True)
class OutFrame:
    """A frame ready to produce: its topic, symbol, records and source indices."""

    topic: str
    symbol: str
    records: bytes
    count: int
    first: int
    position: int
    """Source index of the frame's last record."""


class Framer:
    """Collects one batch of records and cuts it into frames per (topic, symbol, record type)."""

    def __init__(self, limits: FrameLimits) -> None:
        self._limits = limits
        # (topic, symbol, rtype) -> (source indices, records), in arrival order.
        self._groups: dict[tuple[str, str, int], tuple[list[int], list[bytes]]] = {}
        self.pending = 0

    def add(self, topic: str, symbol: str, index: int, record: bytes) -> None:
        """Add one raw DBN record at source index `index` (indices must increase)."""
        indices, records = self.group_for(topic, symbol, record[1])
        indices.append(index)
        records.append(record)
        self.pending += 1

    def group_for(self, topic: str, symbol: str, rtype: int) -> tuple[list[int], list[bytes]]:
        """The (indices, records) lists a record of this group is appended to.

        For callers that append directly in a hot loop; they add to `pending` themselves.
        """
        key = (topic, symbol, rtype)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = ([], [])
        return group

    def drain(self) -> list[OutFrame]:
        """The batch's frames, ordered by their first record, so each symbol keeps its order."""
        frames = []
        for (topic, symbol, _), (indices, records) in self._groups.items():
            frames += self._chunks(topic, symbol, indices, records)
        self._groups.clear()
        self.pending = 0
        frames.sort(key=lambda f: f.first)
        return frames

    def _chunks(
        self, topic: str, symbol: str, indices: list[int], records: list[bytes]
    ) -> list[OutFrame]:
        """Records of one symbol and type as frames within the caps, in order."""
        # One record type, so one record size: the caps become a count.
        limits = self._limits
        per = max(1, min(limits.max_records, limits.max_bytes // len(records[0])))
        frames = []
        for start in range(0, len(records), per):
            chunk = records[start : start + per]
            last = indices[start + len(chunk) - 1]
            frames.append(
                OutFrame(topic, symbol, b"".join(chunk), len(chunk), indices[start], last)
            )
        return frames


class ChainFramer(Framer):
    """Frames for md.chain: each chain's records cut into runs that keep their order.

    A chain (see `ticklane.chains`) mixes the records of several symbols and types under
    one key, and its consumer must see them in the order they happened; so instead of one
    frame per (symbol, type) per batch, a frame is a run of consecutive records of one
    symbol and type within its chain (split at the caps). `chain_of` names a symbol's chain.
    """

    def __init__(self, limits: FrameLimits, chain_of: Callable[[str], str]) -> None:
        super().__init__(limits)
        self._chain_of = chain_of

    def drain(self) -> list[OutFrame]:
        """The batch's runs as frames, ordered by their first record."""
        placed: list[tuple[int, str, str, bytes]] = []
        for (topic, symbol, _), (indices, records) in self._groups.items():
            placed += zip(
                indices, [topic] * len(indices), [symbol] * len(indices), records, strict=True
            )
        placed.sort(key=lambda item: item[0])
        chain_of = self._chain_of
        runs = group_runs(
            placed, lambda item: chain_of(item[2]), lambda item: (item[1], item[2], item[3][1])
        )
        frames: list[OutFrame] = []
        for _, run in runs:
            _, topic, symbol, _ = run[0]
            frames += self._chunks(topic, symbol, [i[0] for i in run], [i[3] for i in run])
        self._groups.clear()
        self.pending = 0
        frames.sort(key=lambda f: f.first)
        return frames
