"""The per-symbol engine: same bars and signals however frames are cut, replayed or resumed."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.bars import BarBuilder
from agents.controls import ControlBook
from agents.engine import Engine, SymbolEntry, decode_entry, encode_entry
from agents.roster import Roster
from agents.strategies import Context, registry, run_bars
from agents.strategies.ema_cross import EmaCross
from ticklane.control import ControlAction, ControlCommand
from ticklane.market import Bar
from ticklane.settings import StrategyConfig

SECOND = 1_000_000_000
T0 = 1_719_840_600 * SECOND
CONFIG = StrategyConfig(name="ema_cross", params={"fast": 3, "slow": 8}, bar_interval="1s")


def trades(n: int = 3000, seed: int = 1) -> tuple[list[int], list[int], list[int]]:
    """Trades every 100 ms with trending regimes, so the EMAs cross many times."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.choice([-2, 2], size=n // 40 + 1), 40)[:n]
    px = 100 * SECOND + np.cumsum(rng.integers(-2, 3, n) + drift) * 10_000_000
    ts = T0 + np.arange(n) * 100_000_000
    return ts.tolist(), px.tolist(), rng.integers(1, 5, n).tolist()


def engine(controls: ControlBook | None = None, publish: tuple[int, ...] = (SECOND,)) -> Engine:
    return Engine(Roster([CONFIG], registry()), controls, publish_intervals=publish)


def run(eng: Engine, columns, cuts: list[int], symbol: str = "ES", partition: int = 0):
    ts, px, sz = columns
    entry, bars, signals = SymbolEntry(), [], []
    bounds = [0, *sorted(set(cuts)), len(ts)]
    for offset, (a, b) in enumerate(itertools.pairwise(bounds)):
        out = eng.absorb_trades(symbol, entry, (partition, offset), (ts[a:b], px[a:b], sz[a:b]))
        assert out is not None
        entry, bars, signals = out.entry, bars + out.bars, signals + out.signals
    return entry, bars, signals


def reference(columns) -> tuple[list[Bar], list]:
    bars = BarBuilder(SECOND).add_many(*columns)
    strategy = EmaCross()
    state = strategy.initial_state(strategy.parse_params(CONFIG.params))
    return bars, run_bars(strategy, state, bars, Context(symbol="ES"))[1]


def test_equals_bar_builder_and_run_bars_on_the_same_ticks() -> None:
    columns = trades()
    _, bars, signals = run(engine(), columns, cuts=list(range(0, 3000, 100)))
    ref_bars, ref_signals = reference(columns)
    assert bars == ref_bars
    assert signals == ref_signals
    assert len(signals) >= 10


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=2999), max_size=60))
def test_any_framing_gives_the_same_output(cuts: list[int]) -> None:
    columns = trades(n=3000, seed=7)
    _, bars, signals = run(engine(), columns, cuts)
    assert (bars, signals) == reference(columns)


def test_a_frame_at_or_before_the_stored_position_is_a_replay() -> None:
    eng, (ts, px, sz) = engine(), trades(200)
    first = eng.absorb_trades("ES", SymbolEntry(), (2, 10), (ts[:100], px[:100], sz[:100]))
    assert first is not None
    assert (first.entry.partition, first.entry.offset) == (2, 10)
    again = (ts[100:], px[100:], sz[100:])
    assert eng.absorb_trades("ES", first.entry, (2, 10), again) is None
    assert eng.absorb_trades("ES", first.entry, (2, 9), again) is None
    assert eng.absorb_trades("ES", first.entry, (2, 11), again) is not None


def test_resuming_from_stored_entries_with_replays_equals_one_run() -> None:
    """A worker killed after any frame restarts from the stored bytes and sees frames again."""
    columns = trades(seed=3)
    ts, px, sz = columns
    stored: bytes | None = None
    signals = []
    rng = np.random.default_rng(0)
    offset = 0
    while offset * 50 < len(ts):
        eng = engine()  # a fresh process each time
        replay_from = max(0, offset - int(rng.integers(0, 4)))
        for o in range(replay_from, offset + 1):
            a, b = o * 50, (o + 1) * 50
            out = eng.absorb_trades("ES", decode_entry(stored), (0, o), (ts[a:b], px[a:b], sz[a:b]))
            if out is not None:
                stored = encode_entry(out.entry)
                signals += out.signals
        offset += 1
    assert signals == reference(columns)[1]


def command(action: ControlAction, ts: int, symbol: str = "ES", **params) -> ControlCommand:
    return ControlCommand.create(action, ts, strategy="ema_cross", symbol=symbol, params=params)


def test_disabled_strategy_is_not_run_but_bars_still_are() -> None:
    book = ControlBook()
    book.apply(command(ControlAction.DISABLE, 1))
    columns = trades()
    _, bars, signals = run(engine(book), columns, cuts=[1000, 2000])
    assert signals == []
    assert bars == reference(columns)[0]


def test_enable_and_set_params_apply_from_the_next_frame() -> None:
    book = ControlBook()
    eng = engine(book)
    ts, px, sz = trades()
    book.apply(command(ControlAction.DISABLE, 1))
    out = eng.absorb_trades("ES", SymbolEntry(), (0, 0), (ts[:1000], px[:1000], sz[:1000]))
    assert out is not None
    assert out.signals == []
    book.apply(command(ControlAction.ENABLE, 2))
    book.apply(command(ControlAction.SET_PARAMS, 3, long_only=True))
    out = eng.absorb_trades("ES", out.entry, (0, 1), (ts[1000:], px[1000:], sz[1000:]))
    assert out is not None
    assert out.signals
    assert {s.target_position for s in out.signals} <= {0, 1}
    assert '"long_only",true' in out.entry.slots[0].params_version


def test_invalid_control_parameters_are_ignored() -> None:
    book = ControlBook()
    book.apply(command(ControlAction.SET_PARAMS, 1, fast=50))  # not below slow: invalid
    columns = trades()
    assert run(engine(book), columns, cuts=[1500])[2] == reference(columns)[1]


def test_ohlcv_bars_go_to_the_strategy_as_given() -> None:
    columns = trades()
    ref_bars, ref_signals = reference(columns)
    eng, entry, signals = engine(publish=()), SymbolEntry(), []
    for offset in range(0, len(ref_bars), 7):
        out = eng.absorb_bars("ES", entry, (0, offset), ref_bars[offset : offset + 7])
        assert out is not None
        assert out.bars == []  # given bars are not published again
        entry, signals = out.entry, signals + out.signals
    assert signals == ref_signals


@pytest.mark.parametrize("symbols", [["A"], ["A", "B", "C"]])
def test_symbols_do_not_share_state(symbols: list[str]) -> None:
    eng = engine()
    columns = trades()
    results = [run(eng, columns, cuts=[700], symbol=s)[2] for s in symbols]
    for symbol, signals in zip(symbols, results, strict=True):
        assert [s.symbol for s in signals] == [symbol] * len(signals)
        assert [s.target_position for s in signals] == [
            s.target_position for s in reference(columns)[1]
        ]


def test_indicators_are_published_per_bar_as_the_strategy_saw_them() -> None:
    columns = trades()
    eng = Engine(Roster([CONFIG], registry()), publish_intervals=(SECOND,), indicators=True)
    entry, snapshots, bars = SymbolEntry(), [], []
    for offset, start in enumerate(range(0, 3000, 250)):
        chunk = tuple(c[start : start + 250] for c in columns)
        out = eng.absorb_trades("ES", entry, (0, offset), chunk)
        assert out is not None
        entry, snapshots, bars = out.entry, snapshots + out.indicators, bars + out.bars
    # One snapshot per completed bar, at that bar, equal to the EMAs computed afresh.
    assert [s.ts_event for s in snapshots] == [b.ts_event for b in bars]
    strategy = EmaCross()
    state = strategy.initial_state(strategy.parse_params(CONFIG.params))
    ctx = Context(symbol="ES")
    for bar, snap in zip(bars, snapshots, strict=True):
        state, _ = strategy.on_bar(state, bar, ctx)
        assert (snap.strategy, snap.symbol, snap.interval_ns) == ("ema_cross", "ES", SECOND)
        fast, slow = state.fast.value, state.slow.value
        assert snap.prices == {
            "ema_3": None if fast is None else round(fast),
            "ema_8": None if slow is None else round(slow),
        }
    assert snapshots[-1].prices["ema_8"] is not None  # warmed up by the end
    assert snapshots[0].prices["ema_8"] is None  # ...and not at the first bar


def test_no_indicators_unless_asked_and_none_for_a_disabled_strategy() -> None:
    columns = trades(600)
    out = engine().absorb_trades("ES", SymbolEntry(), (0, 0), columns)
    assert out is not None
    assert out.bars
    assert not out.indicators
    book = ControlBook()
    book.apply(command(ControlAction.DISABLE, 1))
    eng = Engine(Roster([CONFIG], registry()), book, publish_intervals=(SECOND,), indicators=True)
    out = eng.absorb_trades("ES", SymbolEntry(), (0, 0), columns)
    assert out is not None
    assert out.bars
    assert not out.indicators
