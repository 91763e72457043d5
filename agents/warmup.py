"""Warm-up from history: bars before the live data for a strategy that would start cold.

A strategy starts cold when the agents first see a symbol for it (a new deployment, a
strategy or symbol added, a producer started mid-session) or when new parameters start its
indicators over (`Strategy.resets`). Before such a frame is absorbed, `Warmup` finds the
symbol's bars from before the frame and the engine feeds them to the strategy with
`Context.warming` set: whatever it emits then is dropped, never published as a signal.
So a strategy started mid-session signals at the bar, and with the target, that it would
have had it run from the history's start (LEAN's `SetWarmUp`, freqtrade's
`startup_candle_count`), and the executor acts only on signals from live bars.

Where the bars come from, the first source that has any for the symbol:

1. `bars.<interval>`: the bars the agents published (as long as the topic keeps them);
   only for the intervals in `agents.bar_intervals`.
2. `md.<source>`: the symbol's own frames before the live one, in its partition, rebuilt
   into bars; the bar open at the live frame comes with them, so the first live bar is
   whole even when the frame starts mid-interval.
3. Databento historical `ohlcv-1m` (when `agents.warmup_dataset` is set and
   `DATABENTO_API_KEY` given), for intervals of whole minutes; one request per symbol.

Kafka topics are read back `agents.warmup_lookback_h` hours by message time. One read of a
partition serves every symbol in it: what it leaves per symbol (the last bars, the bar
builders) is kept and extended to the next request's offset, and dropped once no warm-up
was needed for `IDLE_S`. A source that fails is logged and the next one tried; with none,
the strategy starts cold, as it did before warm-up existed.

The warm-up is part of absorbing the frame: its result is stored with the frame's state,
so a crash before that repeats it with the same history (bars before the live start only).
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import databento
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from pydantic import SecretStr

from agents import metrics
from agents.bars import BarBuilder
from agents.controls import ControlBook
from agents.engine import Engine, History, decode_entry, encode_entry, is_replay
from agents.refetch import PartitionReader, RefetchError
from agents.roster import INTERVAL_NAMES
from agents.ticks import NotTicksError, frame_bars, is_bars, trade_columns
from ticklane import dbn as tdbn
from ticklane import wire
from ticklane.dbn import DbnRecordError
from ticklane.market import Bar, MarketFrame

log = logging.getLogger(__name__)

IDLE_S: Final = 300.0
"""Kept partition reads are dropped once no warm-up was needed for this long."""
MARGIN: Final = 64
"""Bars kept per symbol beyond `warmup_bars`: bars at or after a live start (a frame
absorbed again after a crash published them once already) must not push out history."""
NS_PER_S: Final = 1_000_000_000
MINUTE_NS: Final = 60 * NS_PER_S


@dataclass(frozen=True)
class Request:
    """History wanted for one symbol and interval, before a live frame."""

    symbol: str
    key: bytes
    interval_ns: int
    before_ns: int
    topic: str
    """The md.* topic and position of the live frame."""
    partition: int
    offset: int
    bars_input: bool
    """The live frame holds bars (ohlcv-*) rather than ticks."""
    first_seen: bool = False
    """The table holds nothing for the symbol: no worker has absorbed a frame of it."""


class HistorySource(Protocol):
    """One place bars of the past can come from."""

    label: str
    """Its name in `ticklane_agent_warmups_total{source}`."""

    async def history(self, request: Request) -> History | None:
        """The symbol's bars before `request.before_ns`, or None when this source has none."""

    def forget(self) -> None:
        """Drop what was kept between requests."""

    def new_generation(self) -> None:
        """The worker's partitions were assigned anew (`_Generation`)."""


class _Generation:
    """The partitions read since the worker's partitions were last assigned.

    A symbol the table knows nothing of has no frame among those this worker absorbed in
    the current assignment (it would have an entry), nor any bar this worker published
    since (it publishes a symbol's bars only after absorbing its frames). So once a
    partition has been read in the current assignment, what was read covers a first-seen
    symbol's history and the partition is not read again for it: at a fresh start, one
    read per partition instead of a Kafka round trip for every new symbol. A symbol with
    an entry (new parameters, a strategy added) reads up to its frame as before.
    """

    def __init__(self) -> None:
        self._read: set[tuple[str, int]] = set()

    def covers(self, request: Request, where: tuple[str, int]) -> bool:
        return request.first_seen and where in self._read

    def read(self, where: tuple[str, int]) -> None:
        self._read.add(where)

    def clear(self) -> None:
        self._read.clear()


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a keyed message lands in (Java's partitioner; `ticklane.kafka`'s
    producers use librdkafka's `murmur2_random`, the same for keys that are not empty)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def _now_ms() -> int:
    return int(time.time() * 1000)


def _before(bars: Iterable[Bar], before_ns: int) -> list[Bar]:
    return [bar for bar in bars if bar.ts_event < before_ns]


class _Progress:
    """Logs a long scan's progress every 10 s, so a warm-up that reads a lot shows it."""

    def __init__(self, topic: str, partition: int, start: int, stop: int | None) -> None:
        self._what = f"{topic}[{partition}] from offset {start}"
        self._total = "?" if stop is None else str(stop - start)
        self._done = 0
        self._next = time.monotonic() + 10.0

    def advance(self, records: int) -> None:
        self._done += records
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + 10.0
            log.info("warm-up: reading %s: %d of %s", self._what, self._done, self._total)


class BarsTopics:
    """Source 1: the bars.* topics, the partition a symbol's bars land in."""

    label = "bars"

    def __init__(
        self, reader: PartitionReader, topics: Mapping[int, str], keep: int, lookback_s: float
    ) -> None:
        self._reader = reader
        self._topics = dict(topics)
        self._keep = keep + MARGIN
        self._lookback_ms = int(lookback_s * 1000)
        self._read: dict[tuple[str, int], tuple[int, dict[bytes, deque[Bar]]]] = {}
        # Asked once per topic, not per symbol (a metadata request each): a partition count
        # that changes later halts the worker anyway (`ticklane.cluster`).
        self._partitions: dict[str, int] = {}
        self._generation = _Generation()

    async def history(self, request: Request) -> History | None:
        topic = self._topics.get(request.interval_ns)
        if topic is None or request.bars_input:
            return None
        count = self._partitions.get(topic) or await self._reader.partition_count(topic)
        if count == 0:
            return None
        self._partitions[topic] = count
        partition = partition_for(request.key, count)
        upto, per_key = self._read.get((topic, partition), (-1, {}))
        start = upto
        if self._generation.covers(request, (topic, partition)):
            start = -1  # read in this assignment already (`_Generation`)
        elif start < 0:
            since = _now_ms() - self._lookback_ms
            found = await self._reader.start_at(topic, partition, since)
            start = -1 if found is None else found
        if start >= 0:
            progress = _Progress(topic, partition, start, None)

            def visit(records: list[Any]) -> None:
                progress.advance(len(records))
                for record in records:
                    try:
                        bar = wire.decode_as(record.value, Bar)
                    except wire.WireError:
                        continue  # not the agents' bar: nothing to warm up with
                    kept = per_key.get(record.key)
                    if kept is None:
                        kept = per_key[record.key] = deque(maxlen=self._keep)
                    kept.append(bar)

            upto = await self._reader.scan(topic, partition, start, None, visit)
            self._generation.read((topic, partition))
        self._read[(topic, partition)] = (upto, per_key)
        bars = _before(per_key.get(request.key, ()), request.before_ns)
        return History(bars, source=topic) if bars else None

    def forget(self) -> None:
        self._read.clear()

    def new_generation(self) -> None:
        self._generation.clear()


@dataclass
class _SymbolTape:
    """What one symbol's md.* frames left: the bars of each interval, the open ones."""

    builders: dict[int, BarBuilder] = field(default_factory=dict)
    bars: dict[int, deque[Bar]] = field(default_factory=dict)


class MarketTopic:
    """Source 2: the md.* partition of the live frame, its frames before it."""

    label = "md"

    def __init__(
        self, reader: PartitionReader, intervals: Iterable[int], keep: int, lookback_s: float
    ) -> None:
        self._reader = reader
        self._intervals = tuple(sorted(set(intervals)))
        self._keep = keep + MARGIN
        self._lookback_ms = int(lookback_s * 1000)
        self._read: dict[tuple[str, int], tuple[int, dict[bytes, _SymbolTape]]] = {}
        self._generation = _Generation()

    async def history(self, request: Request) -> History | None:
        where = (request.topic, request.partition)
        upto, tapes = self._read.get(where, (-1, {}))
        if upto > request.offset:  # the partition was read again from earlier: start over
            upto, tapes = -1, {}
        if upto < 0 or not self._generation.covers(request, where):  # (`_Generation`)
            if upto < 0:
                since = _now_ms() - self._lookback_ms
                found = await self._reader.start_at(request.topic, request.partition, since)
                upto = request.offset if found is None else found
            if upto < request.offset:
                await self._scan(request, upto, tapes)
                upto = request.offset
            self._generation.read(where)
        self._read[where] = (upto, tapes)
        tape = tapes.get(request.key)
        if tape is None:
            return None
        interval = 0 if request.bars_input else request.interval_ns
        bars = _before(tape.bars.get(interval, ()), request.before_ns)
        builder = tape.builders.get(interval)
        open_bar = builder.to_state() if builder is not None and builder.has_open_bar else None
        if not bars and open_bar is None:
            return None
        return History(bars, open_bar, source=request.topic)

    async def _scan(self, request: Request, start: int, tapes: dict[bytes, _SymbolTape]) -> None:
        progress = _Progress(request.topic, request.partition, start, request.offset)

        def visit(records: list[Any]) -> None:
            progress.advance(len(records))
            for record in records:
                if record.key is not None and record.value is not None:
                    self._absorb(tapes, record.key, record.value)

        await self._reader.scan(request.topic, request.partition, start, request.offset, visit)

    def _absorb(self, tapes: dict[bytes, _SymbolTape], key: bytes, value: bytes) -> None:
        try:
            frame = wire.decode_as(value, MarketFrame)
            if frame.symbol.encode() != key:
                return  # the worker sent it to the dlq when it came live
            tape = tapes.get(key)
            if tape is None:
                tape = tapes[key] = _SymbolTape()
            records = frame.records
            if is_bars(records):
                self._keep_bars(tape, 0, frame_bars(records))
                return
            ts, px, sz = trade_columns(records)
        except (wire.WireError, NotTicksError, DbnRecordError):
            return  # the worker sent it to the dlq when it came live
        for interval in self._intervals:
            builder = tape.builders.get(interval)
            if builder is None:
                builder = tape.builders[interval] = BarBuilder(interval)
            self._keep_bars(tape, interval, builder.add_many(ts, px, sz))

    def _keep_bars(self, tape: _SymbolTape, interval: int, bars: list[Bar]) -> None:
        kept = tape.bars.get(interval)
        if kept is None:
            kept = tape.bars[interval] = deque(maxlen=self._keep)
        kept.extend(bars)

    def forget(self) -> None:
        self._read.clear()

    def new_generation(self) -> None:
        self._generation.clear()


class DatabentoBars:
    """Source 3: Databento historical ohlcv-1m, for intervals of whole minutes."""

    label = "databento"

    def __init__(
        self,
        key: SecretStr,
        dataset: str,
        lookback_s: float,
        *,
        gateway: str | None = None,
        stype_in: str = "raw_symbol",
    ) -> None:
        self._key = key
        self._dataset = dataset
        self._gateway = gateway
        self._stype_in = stype_in
        self._lookback_ns = int(lookback_s * NS_PER_S)

    async def history(self, request: Request) -> History | None:
        if request.interval_ns % MINUTE_NS:
            return None
        bars = await asyncio.to_thread(self._fetch, request.symbol, request.before_ns)
        bars = _before(aggregate(bars, request.interval_ns), request.before_ns)
        return History(bars, source=f"databento {self._dataset} ohlcv-1m") if bars else None

    def _fetch(self, symbol: str, before_ns: int) -> list[Bar]:
        kwargs = {} if self._gateway is None else {"gateway": self._gateway}
        client = databento.Historical(key=self._key.get_secret_value(), **kwargs)
        store = client.timeseries.get_range(
            dataset=self._dataset,
            schema="ohlcv-1m",
            symbols=[symbol],
            start=before_ns - self._lookback_ns,
            end=before_ns,
            stype_in=self._stype_in,
        )
        records = b"".join(bytes(record) for record in store)
        return tdbn.to_bars(records) if records else []

    def forget(self) -> None:
        pass

    def new_generation(self) -> None:
        pass


def aggregate(bars: Sequence[Bar], interval_ns: int) -> list[Bar]:
    """1-minute bars (oldest first) as bars of `interval_ns`, a whole number of minutes,
    aligned to the epoch as the agents' own bars are."""
    if not bars or bars[0].interval_ns == interval_ns:
        return list(bars)
    out: list[Bar] = []
    for bar in bars:
        start = bar.ts_event - bar.ts_event % interval_ns
        last = out[-1] if out else None
        if last is None or last.ts_event != start:
            out.append(Bar(start, interval_ns, bar.open, bar.high, bar.low, bar.close, bar.volume))
            continue
        out[-1] = Bar(
            start,
            interval_ns,
            last.open,
            max(last.high, bar.high),
            min(last.low, bar.low),
            bar.close,
            last.volume + bar.volume,
        )
    return out


class Warmup:
    """Finds and feeds the history of the strategies a frame would start cold."""

    def __init__(
        self, engine: Engine, controls: ControlBook, sources: Sequence[HistorySource]
    ) -> None:
        self._engine = engine
        self._controls = controls
        self._sources = tuple(sources)
        # Symbols found warm, with the control version then: none of their strategies can
        # go cold before the next control command, so their entries are not decoded again.
        self._warm: dict[bytes, int] = {}
        self._pending: dict[bytes, int] = {}
        self._last_need = time.monotonic()

    async def prepare(
        self,
        key: bytes,
        frame: MarketFrame,
        raw: bytes | None,
        topic: str,
        position: tuple[int, int],
    ) -> bytes | None:
        """The stored entry `raw`, with the strategies this frame would start cold warmed."""
        version = self._controls.version
        if self._warm.get(key) == version:
            return raw
        entry = decode_entry(raw)
        records = frame.records
        if is_replay(entry, position) or not records:
            return raw
        bars_input = is_bars(records)
        needs = self._engine.cold(
            frame.symbol, entry, tdbn.ts_event(records), bars_input=bars_input
        )
        self._pending[key] = version
        if not needs:
            if time.monotonic() - self._last_need > IDLE_S:
                for source in self._sources:
                    source.forget()
            return raw
        self._last_need = time.monotonic()
        input_interval = tdbn.OHLCV_INTERVALS_NS[records[1]] if bars_input else 0
        history: dict[int, History] = {}
        labels: dict[int, str] = {}
        for need in needs:
            if need.interval_ns not in history:
                request = Request(
                    frame.symbol,
                    key,
                    input_interval or need.interval_ns,
                    need.before_ns,
                    topic,
                    position[0],
                    position[1],
                    bars_input,
                    first_seen=raw is None,
                )
                labels[need.interval_ns], history[need.interval_ns] = await self._find(request)
        warmed, fed = self._engine.warm(frame.symbol, entry, needs, history)
        for need, count in fed.items():
            where = history[need.interval_ns].source
            metrics.WARMUPS.labels(labels[need.interval_ns]).inc()
            metrics.WARMUP_BARS.inc(count)
            # Without history a fresh deployment would log a line per symbol: the metric
            # counts those (source "none").
            log.log(
                logging.INFO if count else logging.DEBUG,
                "warm-up: %s on %s (%s, %s): %d bar(s) from %s",
                need.strategy,
                frame.symbol,
                INTERVAL_NAMES.get(need.interval_ns, f"{need.interval_ns} ns"),
                "new parameters" if need.reset else "first seen",
                count,
                where,
            )
        return encode_entry(warmed)

    def new_generation(self) -> None:
        """The worker's partitions were assigned anew: what the sources read before may
        no longer cover a new symbol's history (`_Generation`)."""
        for source in self._sources:
            source.new_generation()

    def settled(self, key: bytes) -> None:
        """The frame `prepare` saw was absorbed and its entry stored."""
        version = self._pending.pop(key, None)
        if version is not None:
            self._warm[key] = version

    async def _find(self, request: Request) -> tuple[str, History]:
        for source in self._sources:
            try:
                found = await source.history(request)
            except (RefetchError, databento.BentoError, OSError) as exc:
                metrics.WARMUPS.labels("failed").inc()
                log.warning(
                    "warm-up of %s: %s failed (%s); trying the next source",
                    request.symbol,
                    type(source).__name__,
                    exc,
                )
                continue
            if found is not None:
                return source.label, found
        return "none", History()
