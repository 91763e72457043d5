"""Warm-up: a strategy started mid-series, fed the history, signals as if it had run all along."""

import asyncio
from types import SimpleNamespace

import pytest

from agents.bars import BarBuilder
from agents.controls import ControlBook
from agents.engine import Engine, History, SymbolEntry, decode_entry, encode_entry
from agents.roster import Roster
from agents.strategies import Context, registry, run_bars
from agents.strategies.ema_cross import EmaCross
from agents.warmup import MarketTopic, Request, Warmup, aggregate
from tests.unit.agents.test_engine import SECOND, command, trades
from ticklane import dbn, wire
from ticklane.control import ControlAction
from ticklane.market import Bar, MarketFrame
from ticklane.settings import StrategyConfig
from ticklane.trading import Signal

CONFIG = StrategyConfig(name="ema_cross", params={"fast": 3, "slow": 8}, bar_interval="1s")


def engine(warmup_bars: int, controls: ControlBook | None = None) -> Engine:
    roster = Roster([CONFIG], registry())
    return Engine(roster, controls, publish_intervals=(SECOND,), warmup_bars=warmup_bars)


def absorb_from(
    eng: Engine, entry: SymbolEntry, columns, start: int, *, step: int = 100, first_offset: int = 0
) -> tuple[SymbolEntry, list[Bar], list[Signal]]:
    ts, px, sz = columns
    bars: list[Bar] = []
    signals: list[Signal] = []
    for offset, a in enumerate(range(start, len(ts), step), start=first_offset):
        out = eng.absorb_trades(
            "ES", entry, (0, offset), (ts[a : a + step], px[a : a + step], sz[a : a + step])
        )
        assert out is not None
        entry, bars, signals = out.entry, bars + out.bars, signals + out.signals
    return entry, bars, signals


def full_run() -> tuple[list[Bar], list[Signal]]:
    _, bars, signals = absorb_from(engine(0), SymbolEntry(), trades(), 0)
    return bars, signals


@pytest.mark.parametrize("start", [1200, 1250, 1799])
def test_started_mid_series_with_history_signals_as_the_run_from_the_start(start: int) -> None:
    """Started at trade `start` (on a bar boundary, or mid-bar with md.*'s open bar), fed the
    bars before it: the first signal after the start and every later one equal the full
    run's, id for id; and without warm-up they do not (the test can fail)."""
    columns = trades()
    ref_bars, ref_signals = full_run()
    live_from = columns[0][start]
    expected = [s for s in ref_signals if s.ts_event > live_from]
    assert expected

    # md.* history: the ticks before the start, as the warm-up source rebuilds them.
    builder = BarBuilder(SECOND)
    history_bars = builder.add_many(*(c[:start] for c in columns))
    open_bar = builder.to_state() if builder.has_open_bar else None
    eng = engine(500)
    (need,) = eng.cold("ES", SymbolEntry(), live_from, bars_input=False)
    assert (need.strategy, need.interval_ns, need.reset) == ("ema_cross", SECOND, False)
    assert need.before_ns == live_from - live_from % SECOND
    warmed, fed = eng.warm("ES", SymbolEntry(), [need], {SECOND: History(history_bars, open_bar)})
    assert fed == {need: len(history_bars)}
    assert eng.cold("ES", warmed, live_from, bars_input=False) == []
    _, bars, signals = absorb_from(eng, warmed, columns, start)
    assert signals == expected
    # The bar open at the start, seeded from history, completes live and is published whole.
    first_live = need.before_ns if open_bar is None else open_bar.ts_open
    assert bars == [b for b in ref_bars if b.ts_event >= first_live]

    _, _, cold_signals = absorb_from(engine(0), SymbolEntry(), columns, start)
    assert cold_signals != expected


def test_only_the_last_warmup_bars_are_fed_and_nothing_they_emit_is_a_signal() -> None:
    bars, _ = full_run()
    eng = engine(50)
    cut = bars[200].ts_event
    (need,) = eng.cold("ES", SymbolEntry(), cut, bars_input=True)
    assert need.before_ns == cut
    warmed, fed = eng.warm("ES", SymbolEntry(), [need], {SECOND: History(bars)})
    assert fed == {need: 50}
    strategy = EmaCross()
    state = strategy.initial_state(strategy.parse_params(CONFIG.params))
    state, emitted = run_bars(strategy, state, bars[150:200], Context(symbol="ES"))
    assert emitted  # what the strategy emitted during warm-up...
    (slot,) = warmed.slots
    assert strategy.decode_state(slot.state) == state  # ...changed its state, published nothing


def test_new_periods_warm_again_and_keep_the_signalled_target() -> None:
    """A control that changes a period resets that EMA: the strategy is warmed again with the
    new parameters and keeps the position it signalled; other changes do not warm."""
    columns = trades()
    controls = ControlBook()
    eng = engine(500, controls)
    entry, bars, _ = absorb_from(eng, SymbolEntry(), columns, 0, first_offset=0)
    # Whatever history the first frame asked for, none existed: it is warm from here on.
    stored = EmaCross().decode_state(entry.slots[0].state)
    assert stored.target != 0

    controls.apply(command(ControlAction.SET_PARAMS, 1, long_only=False))
    assert eng.cold("ES", entry, columns[0][-1] + SECOND, bars_input=False) == []
    controls.apply(command(ControlAction.SET_PARAMS, 2, fast=5, slow=13))
    live_from = columns[0][-1] + SECOND
    (need,) = eng.cold("ES", entry, live_from, bars_input=False)
    assert need.reset
    open_at = next(b.ts_open for b in entry.bars if b.interval_ns == SECOND)
    assert need.before_ns == open_at  # the bar still open in the entry is fed live
    warmed, _ = eng.warm("ES", entry, [need], {SECOND: History(bars)})
    strategy = EmaCross()
    fresh = strategy.initial_state(strategy.parse_params({"fast": 5, "slow": 13}))
    fresh, _ = run_bars(strategy, fresh, bars, Context(symbol="ES"))
    got = strategy.decode_state(warmed.slots[0].state)
    assert (got.fast, got.slow, got.params) == (fresh.fast, fresh.slow, fresh.params)
    assert got.target == stored.target


def test_warmup_off_never_asks() -> None:
    assert engine(0).cold("ES", SymbolEntry(), 0, bars_input=False) == []


def test_minute_bars_aggregate_as_the_agents_build_longer_bars() -> None:
    ts, px, sz = trades(6000)
    minute, five = 60 * SECOND, 300 * SECOND
    ts = [t * 4 for t in ts]  # 400 ms apart: 40 minutes of trades
    one = BarBuilder(minute).add_many(ts, px, sz)
    built = BarBuilder(five).add_many(ts, px, sz)
    got = aggregate(one, five)
    strip = [Bar(b.ts_event, five, b.open, b.high, b.low, b.close, b.volume) for b in built]
    assert got[: len(strip)] == strip


class _Recorded:
    """A history source that answers from a list and records what it was asked."""

    label = "recorded"

    def __init__(self, bars: list[Bar]) -> None:
        self.bars = bars
        self.requests: list[Request] = []

    async def history(self, request: Request) -> History | None:
        self.requests.append(request)
        found = [b for b in self.bars if b.ts_event < request.before_ns]
        return History(found, source="recorded") if found else None

    def forget(self) -> None:
        pass

    def new_generation(self) -> None:
        pass


def _frame(columns, a: int, b: int) -> MarketFrame:
    ts, px, sz = columns
    rows = [
        {"ts_event": t, "ts_recv": t, "price": p, "size": s, "action": "T", "side": "A"}
        for t, p, s in zip(ts[a:b], px[a:b], sz[a:b], strict=True)
    ]
    return MarketFrame("ES", dbn.encode_records(0, rows))


def test_warmup_asks_once_per_symbol_until_a_control_command() -> None:
    columns = trades()
    bars, _ = full_run()
    source = _Recorded(bars)
    controls = ControlBook()
    eng = engine(500, controls)
    warm = Warmup(eng, controls, [source])
    raw = asyncio.run(warm.prepare(b"ES", _frame(columns, 1200, 1300), None, "md.trades", (0, 7)))
    (request,) = source.requests
    assert (request.symbol, request.topic, request.partition, request.offset) == (
        "ES",
        "md.trades",
        0,
        7,
    )
    assert request.before_ns == columns[0][1200] - columns[0][1200] % SECOND
    entry = decode_entry(raw)
    assert entry.slots
    assert eng.cold("ES", entry, columns[0][1200], bars_input=False) == []
    warm.settled(b"ES")
    again = asyncio.run(warm.prepare(b"ES", _frame(columns, 1300, 1400), raw, "md.trades", (0, 8)))
    assert again is raw
    assert len(source.requests) == 1
    # A replayed frame is never warmed (its entry already covers it).
    replay = encode_entry(SymbolEntry(0, 9))
    frame = _frame(columns, 0, 10)
    assert asyncio.run(warm.prepare(b"ES", frame, replay, "md.trades", (0, 9))) is replay
    assert len(source.requests) == 1


class _Partition:
    """One md.* partition held in memory, read as `PartitionReader` reads Kafka: counts reads."""

    def __init__(self, frames: list[MarketFrame]) -> None:
        self.records = [
            SimpleNamespace(offset=n, key=f.symbol.encode(), value=wire.encode(f))
            for n, f in enumerate(frames)
        ]
        self.scans: list[tuple[int, int | None]] = []

    async def start_at(self, topic: str, partition: int, since_ms: int) -> int | None:
        return 0

    async def scan(self, topic: str, partition: int, start: int, stop: int | None, visit) -> int:
        self.scans.append((start, stop))
        end = len(self.records) if stop is None else stop
        visit(self.records[start:end])
        return end


def _request(symbol: str, offset: int, *, first_seen: bool) -> Request:
    return Request(symbol, symbol.encode(), SECOND, 10**20, "md", 0, offset, False, first_seen)


def test_a_partition_read_in_this_assignment_is_not_read_again_for_a_new_symbol() -> None:
    columns = trades(400)
    symbols = ["AA", "BB", "CC", "DD"]
    frames = [
        MarketFrame(symbol, _frame(columns, i * 100, (i + 1) * 100).records)
        for i, symbol in enumerate(symbols)
    ]
    partition = _Partition(frames)
    source = MarketTopic(partition, [SECOND], keep=100, lookback_s=3600)  # type: ignore[arg-type]

    async def ask(symbol: str, offset: int, *, first_seen: bool) -> History | None:
        return await source.history(_request(symbol, offset, first_seen=first_seen))

    # The first new symbol reads the partition up to its frame; later new ones read nothing
    # (their frames since were absorbed live: none was theirs).
    assert asyncio.run(ask("BB", 1, first_seen=True)) is None
    assert asyncio.run(ask("CC", 2, first_seen=True)) is None
    assert asyncio.run(ask("DD", 3, first_seen=True)) is None
    assert partition.scans == [(0, 1)]
    # A symbol with an entry (new parameters) reads up to its frame: AA's bars are found.
    found = asyncio.run(ask("AA", 3, first_seen=False))
    assert found is not None
    assert found.bars
    assert partition.scans == [(0, 1), (1, 3)]
    # After a rebalance the partition is read again for a new symbol.
    source.new_generation()
    asyncio.run(ask("EE", 4, first_seen=True))
    assert partition.scans == [(0, 1), (1, 3), (3, 4)]
