"""One md.* message in, bars and signals out: the thin shell between Faust and the engine.

Order of effects for a frame, which is what makes a SIGKILL at any instant harmless:

1. read the symbol's entry; a frame at or before its stored position is a replay: skip;
2. run the engine (pure);
3. send the bars and signals (the stream does not wait for Kafka: the next frame is
   absorbed meanwhile, from the newest entry kept in memory);
4. once Kafka has them, write the entry (state + this frame's position) to the table
   (`agents.held_entries`: per key the newest entry, never an older one after it); its
   changelog message is sent without waiting, and the offset is committed only once it is
   in Kafka (`agents.progress`).

A kill before 4 leaves the old entry, so the frame is processed again and sends the same
bars and signals with the same ids (duplicates that sinks drop by id). Any entry that
survives — in local RocksDB or in the changelog — was written after its outputs were
delivered, so skipping what it covers never loses an output.

A strategy the frame would start cold (a symbol first seen, parameters that reset its
indicators) is first fed the symbol's history (`agents.warmup`), as part of step 2.

Before any of that, the frame's offset is checked against the worker's `Progress`:
Faust may leave frames of a partition undelivered (see `agents.progress`), so a frame
past the next expected offset first has the missed ones read from Kafka and absorbed,
and a frame below it (delivered again after a seek) is dropped. Offsets are committed
from that account only.

Bytes that are not a valid frame go to `dlq` with the reason in the headers; the
consumer goes on.
"""

import asyncio
import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from agents import metrics
from agents.chains import ChainEngine, ChainEntry, decode_chain_entry, encode_chain_entry
from agents.channels import Channels
from agents.engine import Engine, decode_entry, encode_entry
from agents.held_entries import HeldEntries
from agents.outbox import Delivered, Outbox
from agents.progress import Delivery, Progress, Verdict
from agents.refetch import PartitionReader
from agents.roster import INTERVAL_NAMES
from agents.ticks import NotTicksError, frame_bars, is_bars, trade_columns
from agents.warmup import Warmup
from ticklane import wire
from ticklane.dbn import DbnRecordError
from ticklane.dead_letters import dead_letter_headers
from ticklane.market import Bar, MarketFrame
from ticklane.timing import FRAME_TAKEN, SIGNAL_SENT, TICK_RECEIVED, TICK_SENT, stamp, stamps
from ticklane.trading import Indicators, Signal

log = logging.getLogger(__name__)


class FrameError(ValueError):
    """A message that cannot be absorbed; its text is the dlq reason."""


class FrameHandler:
    """Absorbs md.* messages into the symbols table through an `Engine`."""

    def __init__(
        self,
        absorb: "Absorb",
        channels: Channels,
        table: MutableMapping[bytes, bytes],
        store: Callable[[bytes, bytes], Delivery],
        *,
        progress: Progress,
        reader: PartitionReader,
        outbox: Outbox,
        trusted: Callable[[], bool] = lambda: True,
        warmup: Warmup | None = None,
    ) -> None:
        self._absorb = absorb
        self._warmup = warmup
        self._trusted = trusted
        self._outbox = outbox
        self._bar_topics = {ns: topic.get_topic_name() for ns, topic in channels.bars.items()}
        self._signal_topic = channels.signals.get_topic_name()
        self._indicator_topic = channels.indicators.get_topic_name()
        self._dlq_topic = channels.dlq.get_topic_name()
        self._table = table
        self._held = HeldEntries(store)
        self._progress = progress
        self._reader = reader
        self._sizes: dict[bytes, int] = {}
        self._state_bytes = 0
        # The entries this worker wrote in the current consumer generation: within one
        # generation nobody else writes its partitions' keys, so reading them back from
        # the table (a RocksDB read through Faust's layers, per frame) is not needed.
        self._entries: dict[bytes, bytes] = {}
        self._generation: int | None = None

    async def handle(self, message: Any) -> None:
        """Absorb one delivered message (a faust `Message`) and any missed before it.

        On a Kafka that is not the cluster the worker started on (`ticklane.cluster`), the
        message is held, never absorbed nor committed, until the worker is stopped: it may
        come from another history than the state in the table."""
        if not self._trusted():
            await asyncio.Event().wait()  # set by nobody: ends when the worker cancels it
        tp = (message.topic, message.partition)
        progress = self._progress
        if message.generation_id != self._generation:
            # A rebalance: a partition may have been elsewhere and come back changed.
            self._entries.clear()
            self._held.forget()
            if self._warmup is not None:
                self._warmup.new_generation()
            self._generation = message.generation_id
        verdict = progress.verdict(tp, message.offset, message.generation_id)
        if verdict is Verdict.UNKNOWN:
            start = await self._reader.start_offset(*tp)
            progress.begin(tp, message.generation_id, start)
            verdict = progress.verdict(tp, message.offset, message.generation_id)
        if verdict is Verdict.STALE:
            metrics.FRAMES.labels("stale").inc()
            return
        if verdict is Verdict.GAP:
            await self._fill_gap(tp, progress.next_offset(tp), message.offset)
        delivery = await self._absorb_message(message)
        progress.absorbed(tp, message.offset, delivery)

    async def _fill_gap(self, tp: tuple[str, int], first: int, stop: int) -> None:
        missed = await self._reader.read(tp[0], tp[1], first, stop)
        log.warning(
            "%s[%d]: offsets %d..%d were not delivered by the consumer; read %d frame(s) "
            "back from Kafka",
            tp[0],
            tp[1],
            first,
            stop - 1,
            len(missed),
        )
        metrics.REFETCHED.inc(len(missed))
        for record in missed:
            delivery = await self._absorb_message(record)
            self._progress.absorbed(tp, record.offset, delivery)

    async def _absorb_message(self, message: Any) -> Delivery | None:
        """One message (a faust `Message` or an aiokafka record read back); the delivery
        of the state it wrote, if any, for `Progress` to hold the commit on."""
        started = time.perf_counter()
        taken = time.time_ns()
        key: bytes | None = message.key
        try:
            frame = _decode(key, message.value)
        except FrameError as exc:
            await self._dead_letter(message, str(exc))
            return None
        assert key is not None  # noqa: S101 - _decode refuses keyless messages
        position = (message.partition, message.offset)
        try:
            stored = self._entries.get(key)
            if stored is None:
                stored = self._table.get(key)
            if self._warmup is not None and key == frame.symbol.encode():
                topic = str(message.topic)
                stored = await self._warmup.prepare(key, frame, stored, topic, position)
            outcome = self._absorb(key, frame, stored, position)
        except (FrameError, NotTicksError, DbnRecordError) as exc:
            await self._dead_letter(message, str(exc))
            return None
        if outcome is None:
            metrics.FRAMES.labels("replayed").inc()
            return None
        outputs = self._publish(key, outcome, _signal_stamps(message, taken))
        delivery = self._held.put(key, outcome.entry, outputs)
        self._entries[key] = outcome.entry
        if self._warmup is not None:
            self._warmup.settled(key)
        self._account(key, len(outcome.entry), outcome)
        metrics.LATENCY.observe(time.perf_counter() - started)
        return delivery

    def _publish(
        self, key: bytes, outcome: "Absorbed", stamps: list[tuple[str, bytes]]
    ) -> list[Delivered]:
        """Send what a frame made, without waiting (`HeldEntries` holds its entry until
        Kafka has them); each signal carries `stamps` (`ticklane.timing`) and when it was
        handed to Kafka."""
        if not outcome.bars and not outcome.signals and not outcome.indicators:
            return []
        send = self._outbox.send
        pending: list[Delivered] = []
        for bar in outcome.bars:
            topic = self._bar_topics[bar.interval_ns]
            pending.append(send(topic, key, wire.encode(bar), awaited=True))
            metrics.BARS_OUT.labels(INTERVAL_NAMES[bar.interval_ns]).inc()
        for signal in outcome.signals:
            # Keyed by the signal's symbol: a chain's signals name its options.
            value = wire.encode(signal)
            headers = [*stamps, stamp(SIGNAL_SENT, time.time_ns())]
            topic, symbol = self._signal_topic, signal.symbol.encode()
            pending.append(send(topic, symbol, value, headers=headers, awaited=True))
            metrics.SIGNALS_OUT.labels(signal.strategy).inc()
        for snapshot in outcome.indicators:
            value = wire.encode(snapshot)
            pending.append(send(self._indicator_topic, key, value, awaited=True))
        return pending

    def _account(self, key: bytes, size: int, outcome: "Absorbed") -> None:
        self._state_bytes += size - self._sizes.get(key, 0)
        self._sizes[key] = size
        metrics.STATE_BYTES.set(self._state_bytes)
        metrics.SYMBOLS.set(len(self._sizes))
        metrics.TICKS_IN.inc(outcome.ticks)
        metrics.FRAMES.labels("absorbed").inc()

    async def _dead_letter(self, message: Any, reason: str) -> None:
        log.warning("dlq: %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
        headers = dead_letter_headers(reason, str(message.topic), message.partition, message.offset)
        await self._outbox.deliver(
            self._dlq_topic, message.key, message.value or b"", headers=headers
        )
        metrics.DLQ.labels(str(message.topic)).inc()


def _signal_stamps(message: Any, taken_ns: int) -> list[tuple[str, bytes]]:
    """The stamps a signal made from `message` carries: the frame's own (from the producer)
    and when this worker took it."""
    carried = stamps(getattr(message, "headers", None))
    sent = carried.get(TICK_SENT)
    if sent is not None:
        metrics.FRAME_DELAY.observe(max(taken_ns - sent, 0) / 1e9)
    kept = [stamp(name, carried[name]) for name in (TICK_RECEIVED, TICK_SENT) if name in carried]
    return [*kept, stamp(FRAME_TAKEN, taken_ns)]


def _decode(key: bytes | None, value: bytes | None) -> MarketFrame:
    if value is None:
        raise FrameError("empty message value")
    if key is None:
        raise FrameError("message without a key")
    try:
        return wire.decode_as(value, MarketFrame)
    except wire.WireError as exc:
        raise FrameError(str(exc)) from None


@dataclass
class Absorbed:
    """What one frame changed: the new table entry (bytes) and what to publish."""

    entry: bytes
    bars: list[Bar]
    signals: list[Signal]
    ticks: int
    indicators: list[Indicators] = field(default_factory=list)


Absorb = Callable[[bytes, MarketFrame, bytes | None, tuple[int, int]], Absorbed | None]
"""(key, frame, stored entry, position) → what changed, or None for a replay."""


def symbol_absorber(engine: Engine) -> Absorb:
    """md.<schema> frames, keyed by their own symbol, through the per-symbol engine."""

    def absorb(
        key: bytes, frame: MarketFrame, raw: bytes | None, position: tuple[int, int]
    ) -> Absorbed | None:
        if key != frame.symbol.encode():
            raise FrameError(f"key {key!r} does not match the frame's symbol {frame.symbol!r}")
        entry, records = decode_entry(raw), frame.records
        if is_bars(records):
            outcome = engine.absorb_bars(frame.symbol, entry, position, frame_bars(records))
        else:
            outcome = engine.absorb_trades(frame.symbol, entry, position, trade_columns(records))
        if outcome is None:
            return None
        return Absorbed(
            encode_entry(outcome.entry),
            outcome.bars,
            outcome.signals,
            outcome.ticks,
            outcome.indicators,
        )

    return absorb


def chain_absorber(engine: ChainEngine) -> Absorb:
    """md.chain frames, keyed by their underlying, through the chain engine."""
    # The entry last returned per underlying, as bytes and as the engine's object: handed
    # the same bytes back (the handler keeps what it wrote), the engine gets its own
    # object and skips decoding the strategies' states.
    returned: dict[bytes, tuple[bytes, ChainEntry]] = {}

    def absorb(
        key: bytes, frame: MarketFrame, raw: bytes | None, position: tuple[int, int]
    ) -> Absorbed | None:
        underlying = key.decode("utf-8", errors="replace")
        if frame.runs and frame.symbol != underlying:
            # A multi-symbol frame names its chain; one frame per run (older frames) names
            # its records' symbol, an option's as often as not.
            raise FrameError(f"key {key!r} does not match the frame's chain {frame.symbol!r}")
        last = returned.get(key)
        entry = last[1] if last is not None and last[0] is raw else decode_chain_entry(raw)
        outcome = engine.absorb(underlying, entry, position, frame)
        if outcome is None:
            return None
        raw_entry = encode_chain_entry(outcome.entry)
        returned[key] = (raw_entry, outcome.entry)
        return Absorbed(raw_entry, outcome.bars, outcome.signals, outcome.ticks)

    return absorb
