"""The frame handler's bookkeeping around the engine: which stored entry each frame sees."""

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from agents.frames import Absorbed, FrameHandler
from agents.progress import Progress
from ticklane import dbn, wire
from ticklane.market import MarketFrame

TOPIC = "md.trades"


def _trade() -> bytes:
    record = np.zeros(1, dtype=dbn.record_dtype(0))
    record["length"] = record.dtype.itemsize // 4
    record["price"], record["size"], record["action"] = 5_000_000_000_000, 1, b"T"
    return record.tobytes()


@dataclass
class _Message:
    """The fields of a Faust message the handler reads."""

    offset: int
    generation_id: int
    key: bytes = b"ES"
    partition: int = 0
    topic: str = TOPIC

    @property
    def value(self) -> bytes:
        return wire.encode(MarketFrame(self.key.decode(), _trade(), position=self.offset))


class _Done:
    def done(self) -> bool:
        return True

    def exception(self) -> BaseException | None:
        return None


class _Reader:
    """Where a partition starts for the handler: here, wherever the first frame is."""

    def __init__(self) -> None:
        self.start = 0

    async def start_offset(self, topic: str, partition: int) -> int:
        return self.start

    async def read(self, topic: str, partition: int, first: int, stop: int) -> list[Any]:
        raise AssertionError("no gap in these tests")


def _handler(table: dict[bytes, bytes], seen: list[bytes | None], reader: _Reader) -> FrameHandler:
    def absorb(
        key: bytes, frame: MarketFrame, raw: bytes | None, position: tuple[int, int]
    ) -> Absorbed:
        seen.append(raw)
        return Absorbed(b"entry@%d" % position[1], [], [], 1)

    def store(key: bytes, raw: bytes) -> _Done:
        table[key] = raw
        return _Done()

    topic = SimpleNamespace(get_topic_name=lambda: "out")
    channels: Any = SimpleNamespace(bars={}, signals=topic, indicators=topic, dlq=topic)
    outbox: Any = None  # nothing is published: the absorber emits no bars or signals
    progress = Progress(frozenset({TOPIC}))
    return FrameHandler(
        absorb, channels, table, store, progress=progress, reader=reader, outbox=outbox
    )


def test_entries_come_from_the_handler_within_a_generation_and_from_the_table_after() -> None:
    table: dict[bytes, bytes] = {}
    seen: list[bytes | None] = []
    reader = _Reader()
    handler = _handler(table, seen, reader)

    async def scenario() -> None:
        await handler.handle(_Message(offset=0, generation_id=1))
        await handler.handle(_Message(offset=1, generation_id=1))
        # A rebalance: the partition was elsewhere, whose worker advanced the entry.
        table[b"ES"] = b"written elsewhere"
        reader.start = 7
        await handler.handle(_Message(offset=7, generation_id=2))
        await handler.handle(_Message(offset=8, generation_id=2))

    asyncio.run(scenario())
    assert seen == [None, b"entry@0", b"written elsewhere", b"entry@7"]
    assert table[b"ES"] == b"entry@8"
