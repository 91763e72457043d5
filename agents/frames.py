"""One md.* message in, bars and signals out: the thin shell between Faust and the engine.

Order of effects for a frame, which is what makes a SIGKILL at any instant harmless:

1. read the symbol's entry; a frame at or before its stored position is a replay: skip;
2. run the engine (pure);
3. send the bars and signals and wait until Kafka has them;
4. write the entry (state + this frame's position) to the table, once.

A kill before 4 leaves the old entry, so the frame is processed again and sends the same
bars and signals with the same ids (duplicates that sinks drop by id). Any entry that
survives — in local RocksDB or in the changelog — was written after its outputs were
delivered, so skipping what it covers never loses an output.

Bytes that are not a valid frame go to `dlq` with the reason in the headers; the
consumer goes on.
"""

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from agents import metrics
from agents.channels import Channels
from agents.engine import Engine, Outcome, decode_entry, encode_entry
from agents.roster import INTERVAL_NAMES
from agents.ticks import NotTicksError, frame_bars, is_bars, trade_columns
from ticklane import wire
from ticklane.dbn import DbnRecordError
from ticklane.market import MarketFrame

log = logging.getLogger(__name__)


class FrameError(ValueError):
    """A message that cannot be absorbed; its text is the dlq reason."""


class FrameHandler:
    """Absorbs md.* messages into the symbols table through an `Engine`."""

    def __init__(
        self,
        engine: Engine,
        channels: Channels,
        table: MutableMapping[bytes, bytes],
        store: Callable[[bytes, bytes], Awaitable[None]] | None = None,
    ) -> None:
        self._engine = engine
        self._channels = channels
        self._table = table
        self._store = store
        self._sizes: dict[bytes, int] = {}
        self._state_bytes = 0

    async def handle(self, message: Any) -> None:
        """Absorb one consumed message (a faust `Message`)."""
        started = time.perf_counter()
        key: bytes | None = message.key
        try:
            symbol, records = _decode(key, message.value)
        except FrameError as exc:
            await self._dead_letter(message, str(exc))
            return
        assert key is not None  # noqa: S101 - _decode refuses keyless messages
        entry = decode_entry(self._table.get(key))
        position = (message.partition, message.offset)
        try:
            outcome = self._absorb(symbol, entry, position, records)
        except (NotTicksError, DbnRecordError) as exc:
            await self._dead_letter(message, str(exc))
            return
        if outcome is None:
            metrics.FRAMES.labels("replayed").inc()
            return
        await self._publish(key, outcome)
        raw = encode_entry(outcome.entry)
        if self._store is not None:
            await self._store(key, raw)
        else:
            self._table[key] = raw
        self._account(key, len(raw), outcome)
        metrics.LATENCY.observe(time.perf_counter() - started)

    def _absorb(
        self, symbol: str, entry: Any, position: tuple[int, int], records: bytes
    ) -> Outcome | None:
        engine = self._engine
        if is_bars(records):
            return engine.absorb_bars(symbol, entry, position, frame_bars(records))
        return engine.absorb_trades(symbol, entry, position, trade_columns(records))

    async def _publish(self, key: bytes, outcome: Outcome) -> None:
        pending: list[Awaitable[Any]] = []
        for bar in outcome.bars:
            topic = self._channels.bars[bar.interval_ns]
            pending.append(await topic.send(key=key, value=wire.encode(bar)))
            metrics.BARS_OUT.labels(INTERVAL_NAMES[bar.interval_ns]).inc()
        for signal in outcome.signals:
            pending.append(await self._channels.signals.send(key=key, value=wire.encode(signal)))
            metrics.SIGNALS_OUT.labels(signal.strategy).inc()
        for delivered in pending:
            await delivered  # in Kafka before the entry can say this frame is done

    def _account(self, key: bytes, size: int, outcome: Outcome) -> None:
        self._state_bytes += size - self._sizes.get(key, 0)
        self._sizes[key] = size
        metrics.STATE_BYTES.set(self._state_bytes)
        metrics.SYMBOLS.set(len(self._sizes))
        metrics.TICKS_IN.inc(outcome.ticks)
        metrics.FRAMES.labels("absorbed").inc()

    async def _dead_letter(self, message: Any, reason: str) -> None:
        log.warning("dlq: %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
        headers = [
            ("reason", reason.encode()),
            ("topic", str(message.topic).encode()),
            ("partition", str(message.partition).encode()),
            ("offset", str(message.offset).encode()),
        ]
        delivered = await self._channels.dlq.send(
            key=message.key, value=message.value or b"", headers=headers
        )
        await delivered
        metrics.DLQ.labels(str(message.topic)).inc()


def _decode(key: bytes | None, value: bytes | None) -> tuple[str, bytes]:
    if value is None:
        raise FrameError("empty message value")
    try:
        frame = wire.decode_as(value, MarketFrame)
    except wire.WireError as exc:
        raise FrameError(str(exc)) from None
    if key != frame.symbol.encode():
        raise FrameError(f"key {key!r} does not match the frame's symbol {frame.symbol!r}")
    return frame.symbol, frame.records
