"""Adaptive framing: the records that arrived together for a symbol become one Kafka message.

Pure logic. The producer hands over one batch at a time — whatever its source delivered
together — and gets back frames, one per (topic, symbol, record type), split when they
exceed the caps; for md.chain, one per chain (`ChainFramer`). At low rates a batch is one
record and a frame is one record; under load or in fast replay frames grow, and every
consumer pays per frame, not per record.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ticklane.chains import cut_chains
from ticklane.market import FRAME_MAX_BYTES, FRAME_MAX_RECORDS, FrameRun

DEFAULT_MAX_RECORDS: Final = FRAME_MAX_RECORDS
DEFAULT_MAX_BYTES: Final = FRAME_MAX_BYTES


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
    """A frame ready to produce: its topic, symbol, records and source indices; a
    multi-symbol frame (md.chain) also its `symbols` and `runs` (`MarketFrame`)."""

    topic: str
    symbol: str
    records: bytes
    count: int
    first: int
    position: int
    """Source index of the frame's last record."""
    symbols: tuple[str, ...] = ()
    runs: tuple[FrameRun, ...] = ()


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
    """Frames for md.chain: each chain's records of a batch in as few frames as the caps
    allow, in order.

    A chain (see `ticklane.chains`) mixes the records of several symbols and types under
    one key, and its consumer must see them in the order they happened; so a frame holds
    consecutive records of one chain, whatever their symbols and types, each record's
    symbol kept in the frame's runs, and is named by the chain (its key). `chain_of`
    names a symbol's chain.
    """

    def __init__(self, limits: FrameLimits, chain_of: Callable[[str], str]) -> None:
        super().__init__(limits)
        self._chain_of = chain_of

    def drain(self) -> list[OutFrame]:
        """The batch's chains as frames, ordered by their first record."""
        by_topic: dict[str, list[tuple[int, str, bytes]]] = {}
        for (topic, symbol, _), (indices, records) in self._groups.items():
            placed = by_topic.setdefault(topic, [])
            placed += zip(indices, [symbol] * len(indices), records, strict=True)
        chain_of, limits = self._chain_of, self._limits
        frames: list[OutFrame] = []
        for topic, placed in by_topic.items():
            placed.sort(key=lambda item: item[0])
            chained = [(chain_of(symbol), symbol, record) for _, symbol, record in placed]
            for cut in cut_chains(chained, limits.max_records, limits.max_bytes):
                first, last = placed[cut.first][0], placed[cut.last][0]
                frames.append(
                    OutFrame(
                        topic,
                        cut.underlying,
                        cut.records,
                        cut.count,
                        first,
                        last,
                        cut.symbols,
                        cut.runs,
                    )
                )
        self._groups.clear()
        self.pending = 0
        frames.sort(key=lambda f: f.first)
        return frames
