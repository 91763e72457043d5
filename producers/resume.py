"""What a restarted producer may skip: records its source already put in Kafka.

Pure logic over the frames of one source found at the tail of each topic-partition.
Frames carry the source index of their last record (`position`) and of the start of the
batch they were cut from (`batch`). Within a topic-partition, writes are in order, so if
the last frame there belongs to batch b, every record of an earlier batch routed there is
written; of batch b itself, a record of symbol s is written exactly when a frame of s from
batch b reaches its index (a symbol's frames keep their order within a partition).

A multi-symbol frame (md.chain) counts as a frame of each symbol it holds, and of its
chain: a chain's frames hold its records in order with none left out, so every record of
the chain up to a written frame's position is written too.
"""

from dataclasses import dataclass, field

from ticklane.market import MarketFrame

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class SeenFrame:
    """A frame of this source read back from a topic-partition."""

    symbol: str
    position: int
    batch: int


def seen_frames(frame: MarketFrame) -> list[SeenFrame]:
    """A frame read back, as one `SeenFrame` per symbol it holds (and its own name)."""
    names = dict.fromkeys((frame.symbol, *frame.symbols))
    return [SeenFrame(name, frame.position, frame.batch) for name in names]


@dataclass
class ResumeState:
    """Per topic-partition: the last batch begun and how far each symbol got in it."""

    _batch: dict[TopicPartition, int] = field(default_factory=dict)
    _positions: dict[TopicPartition, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_tails(cls, tails: dict[TopicPartition, list[SeenFrame]]) -> "ResumeState":
        """Build from each topic-partition's last batch of frames of this source, oldest first."""
        state = cls()
        for tp, frames in tails.items():
            if not frames:
                continue
            batch = frames[-1].batch
            state._batch[tp] = batch
            positions: dict[str, int] = {}
            for frame in frames:
                if frame.batch == batch:
                    positions[frame.symbol] = max(positions.get(frame.symbol, -1), frame.position)
            state._positions[tp] = positions
        return state

    @property
    def empty(self) -> bool:
        """Nothing of this source is in Kafka yet."""
        return not self._batch

    def written(self, tp: TopicPartition, symbol: str, index: int) -> bool:
        """Whether the record at `index` of `symbol`, routed to `tp`, is already in Kafka."""
        batch = self._batch.get(tp)
        if batch is None:
            return False
        return index < batch or index <= self._positions[tp].get(symbol, -1)

    def batch_of(self, tp: TopicPartition) -> int:
        """The batch of this source's last frame in `tp` (0 if it has none there)."""
        return self._batch.get(tp, 0)

    def last_index(self) -> int:
        """The highest source index that may be written anywhere (-1 if none)."""
        best = -1
        for tp, batch in self._batch.items():
            best = max(best, batch - 1, *self._positions[tp].values())
        return best
