"""Strategy interface, registry, parameters, and the EMA-cross and Supertrend signal rules."""

import importlib.metadata
import warnings

import msgspec
import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.indicators import EMA
from agents.strategies import (
    Context,
    ParamError,
    StrategyRegistry,
    UnknownStrategyError,
    registry,
    run_bars,
)
from agents.strategies.base import AnyStrategy
from agents.strategies.ema_cross import EmaCross, EmaCrossParams, EmaCrossState
from agents.strategies.registry import StrategyLoadError
from agents.strategies.supertrend import SupertrendStrategy
from agents.strategies.zero_dte import ZeroDte
from ticklane import ids
from ticklane.market import Bar

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandas_ta_classic as pta

MIN = 60_000_000_000
T0 = 1_719_878_400_000_000_000  # 2024-07-02 00:00 UTC
TICK = 250_000_000
CTX = Context(symbol="ESU4")


def make_bars(closes: list[int], start: int = T0, instrument_id: int = 7) -> list[Bar]:
    """One-minute bars whose close is given; high/low straddle open and close by one tick."""
    bars = []
    prev = closes[0]
    for i, close in enumerate(closes):
        hi, lo = max(prev, close) + TICK, min(prev, close) - TICK
        bars.append(Bar(start + i * MIN, MIN, prev, hi, lo, close, 10, instrument_id=instrument_id))
        prev = close
    return bars


def walk(seed: int, n: int) -> list[int]:
    """A random walk with drifting regimes, so trends and crosses both occur."""
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.choice([-1, 1], size=n // 40 + 1), 40)[:n]
    steps = rng.integers(-4, 5, n) + drift
    return (5_000_000_000_000 + np.cumsum(steps) * TICK).tolist()


def targets(signals) -> list[int]:
    return [s.target_position for s in signals]


def expected_signals(wanted: list[int | None], bars: list[Bar]) -> list[tuple[int, int]]:
    """(ts_close, target) wherever the wanted target (None = keep) differs from the last."""
    out, last = [], 0
    for want, bar in zip(wanted, bars, strict=True):
        if want is not None and want != last:
            out.append((bar.ts_close, want))
            last = want
    return out


def run(strategy: AnyStrategy, params: dict, bars: list[Bar], ctx: Context = CTX):
    state = strategy.initial_state(strategy.parse_params(params))
    return run_bars(strategy, state, bars, ctx)


# --- registry ---------------------------------------------------------------------------


def test_installed_entry_points_resolve_to_the_shipped_classes():
    names = {ep.name for ep in importlib.metadata.entry_points(group="ticklane.strategies")}
    assert {"ema_cross", "supertrend", "zero_dte"} <= names
    reg = registry()
    assert reg.get("ema_cross") is EmaCross
    assert reg.get("supertrend") is SupertrendStrategy
    assert reg.get("zero_dte") is ZeroDte
    assert isinstance(reg.create("ema_cross"), EmaCross)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(UnknownStrategyError, match="'nope'") as err:
        registry().get("nope")
    assert "ema_cross, supertrend, zero_dte" in str(err.value)


def test_classes_register_directly_without_entry_points():
    class Echo(EmaCross):
        name = "echo"

    reg = StrategyRegistry(entry_points_too=False)
    assert reg.names() == []
    reg.register(Echo)
    assert reg.names() == ["echo"]
    assert reg.get("echo") is Echo
    assert registry({"echo": Echo}).names() == ["echo", "ema_cross", "supertrend", "zero_dte"]


def test_registered_name_must_match_the_class_name():
    reg = StrategyRegistry(entry_points_too=False)
    with pytest.raises(StrategyLoadError, match="names itself 'ema_cross'"):
        reg.register(EmaCross, "other")


def test_a_name_cannot_be_taken_twice():
    class Twin(EmaCross):
        name = "ema_cross"

    reg = registry()
    reg.get("ema_cross")
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Twin)


# --- parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "raw", "param", "fragment"),
    [
        (EmaCross(), {"fast": 0}, "fast", ">= 1"),
        (EmaCross(), {"fast": True}, "fast", "Expected `int`, got `bool`"),
        (EmaCross(), {"slow": 5.5}, "slow", "Expected `int`, got `float`"),
        (EmaCross(), {"quantity": "many"}, "quantity", "got 'many'"),
        (EmaCross(), {"long_only": 1}, "long_only", "Expected `bool`"),
        (EmaCross(), {"fats": 3}, "fats", "known: fast, long_only, quantity, slow"),
        (EmaCross(), {"fast": 30}, None, "fast (30) must be less than slow (26)"),
        (EmaCross(), {"fast": 5, "slow": 5}, None, "fast (5) must be less than slow (5)"),
        (SupertrendStrategy(), {"multiplier": 0}, "multiplier", "> 0.0"),
        (SupertrendStrategy(), {"length": -1}, "length", ">= 1"),
    ],
)
def test_bad_parameters_name_the_strategy_and_parameter(strategy, raw, param, fragment):
    with pytest.raises(ParamError) as err:
        strategy.parse_params(raw)
    assert err.value.param == param
    assert err.value.strategy == strategy.name
    assert f"strategy {strategy.name!r}" in str(err.value)
    assert fragment in str(err.value)


def test_parameters_default_and_parse_strings_from_a_command_line():
    assert EmaCross().parse_params() == EmaCrossParams(fast=12, slow=26, quantity=1)
    p = EmaCross().parse_params({"fast": "5", "slow": "8", "long_only": "true"})
    assert (p.fast, p.slow, p.long_only) == (5, 8, True)
    st_params = SupertrendStrategy().parse_params({"multiplier": 2, "length": "7"})
    assert (st_params.multiplier, st_params.length) == (2.0, 7)
    with pytest.raises(AttributeError):
        p.fast = 6  # frozen


# --- EMA cross --------------------------------------------------------------------------


def ema_wanted(bars: list[Bar], fast: int, slow: int, q: int, long_only: bool):
    """Wanted targets from TA-Lib's EMAs: the independent reference for the rule."""
    close = np.array([b.close for b in bars], dtype=np.float64)
    f, s = talib.EMA(close, fast), talib.EMA(close, slow)
    out: list[int | None] = []
    for a, b in zip(f, s, strict=True):
        if np.isnan(a) or np.isnan(b) or a == b:
            out.append(None)
        else:
            out.append(q if a > b else (0 if long_only else -q))
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fast=st.integers(2, 10),
    extra=st.integers(1, 20),
    q=st.integers(1, 5),
    long_only=st.booleans(),
)
def test_ema_cross_signals_match_talib_emas(seed, fast, extra, q, long_only):
    bars = make_bars(walk(seed, 300))
    params = {"fast": fast, "slow": fast + extra, "quantity": q, "long_only": long_only}
    _, signals = run(EmaCross(), params, bars)
    got = [(s.ts_event, s.target_position) for s in signals]
    assert got == expected_signals(ema_wanted(bars, fast, fast + extra, q, long_only), bars)


def test_ema_cross_reversal_is_one_signal_from_plus_q_to_minus_q():
    closes = [100 * TICK] * 5 + [(100 + i) * TICK for i in range(1, 30)]
    closes += [(129 - i) * TICK for i in range(1, 40)]
    bars = make_bars(closes)
    _, signals = run(EmaCross(), {"fast": 3, "slow": 5, "quantity": 2}, bars)
    assert targets(signals) == [2, -2]
    sig_long, sig_short = signals
    # The cross down comes a couple of bars after the top, never through a flat step.
    top = bars[33].ts_close
    assert sig_long.ts_event < top < sig_short.ts_event
    assert sig_short.reference_price == bars[(sig_short.ts_event - T0) // MIN - 1].close
    assert sig_short.instrument_id == 7


def test_ema_cross_long_only_goes_flat_instead_of_short():
    closes = [(100 + i) * TICK for i in range(30)] + [(129 - i) * TICK for i in range(1, 40)]
    closes += [(90 + i) * TICK for i in range(40)]
    _, signals = run(EmaCross(), {"fast": 3, "slow": 5, "long_only": True}, make_bars(closes))
    assert targets(signals) == [1, 0, 1]
    _, both = run(EmaCross(), {"fast": 3, "slow": 5}, make_bars(closes))
    assert targets(both) == [1, -1, 1]
    assert [s.ts_event for s in both] == [s.ts_event for s in signals]


@pytest.mark.parametrize("held", [1, -1, 0])
def test_equal_emas_keep_the_previous_target(held):
    flat = make_bars([100 * TICK] * 40)
    _, signals = run(EmaCross(), {"fast": 3, "slow": 5}, flat)
    assert signals == []  # both EMAs equal the price exactly: no direction, stay flat
    price = 100 * TICK
    strategy = EmaCross()
    params = strategy.parse_params({"fast": 3, "slow": 5})
    # Warm EMAs that meet exactly at the price, after a history that had the target `held`.
    state = EmaCrossState(
        params=params,
        fast=EMA(3, count=3, seed_total=3 * price, value=float(price)),
        slow=EMA(5, count=5, seed_total=5 * price, value=float(price)),
        target=held,
    )
    state, signals = run_bars(strategy, state, make_bars([price] * 3), CTX)
    assert signals == []
    assert state.target == held
    assert state.fast.value == state.slow.value == price
    _, signals = strategy.on_bar(state, make_bars([price + TICK], start=T0 + 3 * MIN)[0], CTX)
    assert targets(signals) == ([] if held == 1 else [1])


def test_signal_ids_are_deterministic_and_stamped_at_the_bar_close():
    bars = make_bars(walk(3, 200))
    _, first = run(EmaCross(), {"fast": 3, "slow": 8}, bars)
    _, again = run(EmaCross(), {"fast": 3, "slow": 8}, bars)
    assert first == again
    assert len(first) > 2
    for sig in first:
        assert (sig.ts_event - T0) % MIN == 0
        assert sig.ts_event > T0
        assert sig.signal_id == ids.signal_id("ema_cross", "ESU4", sig.ts_event, 0)
        assert (sig.strategy, sig.symbol, sig.sequence) == ("ema_cross", "ESU4", 0)
    _, other = run(EmaCross(), {"fast": 3, "slow": 8}, bars, Context(symbol="NQU4"))
    assert {s.signal_id for s in other}.isdisjoint(s.signal_id for s in first)


def test_a_bar_already_absorbed_is_ignored_and_inputs_are_not_mutated():
    strategy = EmaCross()
    bars = make_bars(walk(5, 60))
    state, _ = run(strategy, {"fast": 3, "slow": 8}, bars[:40])
    before = strategy.encode_state(state)
    replayed, signals = strategy.on_bar(state, bars[39], CTX)
    assert (replayed, signals) == (state, [])
    new_state, _ = strategy.on_bar(state, bars[40], CTX)
    assert strategy.encode_state(state) == before  # the given state is unchanged
    assert new_state.last_ts == bars[40].ts_close


def test_reconfigure_keeps_the_target_and_warm_indicators_it_can():
    strategy = EmaCross()
    bars = make_bars([(100 + i) * TICK for i in range(40)])
    state, signals = run(strategy, {"fast": 3, "slow": 8}, bars[:20])
    assert targets(signals) == [1]
    bigger = strategy.reconfigure(
        state, strategy.parse_params({"fast": 3, "slow": 8, "quantity": 4})
    )
    assert bigger.fast is state.fast
    assert bigger.target == 1
    _, signals = strategy.on_bar(bigger, bars[20], CTX)
    assert targets(signals) == [4]  # the new size applies at the next bar
    slower = strategy.reconfigure(state, strategy.parse_params({"fast": 3, "slow": 12}))
    assert slower.slow.value is None
    assert slower.fast is state.fast
    _, signals = run_bars(strategy, slower, bars[20:31], CTX)
    assert signals == []  # warming up again; still long, so nothing to say


# --- Supertrend -------------------------------------------------------------------------


def supertrend_wanted(bars, length, mult, q, long_only):
    hs, ls, cs = (pd.Series([float(getattr(b, f)) for b in bars]) for f in ("high", "low", "close"))
    ref = pta.supertrend(hs, ls, cs, length, mult)
    dirs = ref[f"SUPERTd_{length}_{float(mult)}"].to_numpy()
    return [
        None if i < length else (q if d > 0 else (0 if long_only else -q))
        for i, d in enumerate(dirs)
    ]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(2, 15),
    mult=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    long_only=st.booleans(),
)
def test_supertrend_signals_follow_pandas_ta_direction(seed, length, mult, long_only):
    bars = make_bars(walk(seed, 300))
    params = {"length": length, "multiplier": mult, "quantity": 3, "long_only": long_only}
    _, signals = run(SupertrendStrategy(), params, bars)
    want = supertrend_wanted(bars, length, mult, 3, long_only)
    assert [(s.ts_event, s.target_position) for s in signals] == expected_signals(want, bars)


def test_supertrend_flip_is_one_reversal_signal():
    closes = [(100 + i) * TICK for i in range(30)] + [(129 - 3 * i) * TICK for i in range(1, 20)]
    _, signals = run(SupertrendStrategy(), {"length": 5, "multiplier": 2.0}, make_bars(closes))
    assert targets(signals) == [1, -1]
    assert signals[0].ts_event == T0 + 6 * MIN  # first value at index `length`
    _, flat = run(
        SupertrendStrategy(), {"length": 5, "multiplier": 2.0, "long_only": True}, make_bars(closes)
    )
    assert targets(flat) == [1, 0]


# --- state round trip and symbol independence --------------------------------------------

STRATEGIES = [
    (EmaCross(), {"fast": 4, "slow": 9}),
    (SupertrendStrategy(), {"length": 6, "multiplier": 1.5}),
]


@pytest.mark.parametrize(("strategy", "params"), STRATEGIES, ids=lambda x: getattr(x, "name", ""))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), split=st.integers(0, 250))
def test_msgpack_round_trip_mid_stream_changes_nothing(strategy, params, seed, split):
    bars = make_bars(walk(seed, 250))
    whole_state, whole = run(strategy, params, bars)
    state, head = run(strategy, params, bars[:split])
    stored = msgspec.msgpack.encode(state)
    restored = strategy.decode_state(stored)
    assert restored == state
    assert strategy.encode_state(restored) == stored
    end_state, tail = run_bars(strategy, restored, bars[split:], CTX)
    assert head + tail == whole
    assert strategy.encode_state(end_state) == strategy.encode_state(whole_state)


@pytest.mark.parametrize(("strategy", "params"), STRATEGIES, ids=lambda x: getattr(x, "name", ""))
def test_two_symbols_interleaved_equal_each_alone(strategy, params):
    series = {
        "ESU4": make_bars(walk(11, 200), instrument_id=1),
        "NQU4": make_bars(walk(12, 200), start=T0 + 17 * MIN, instrument_id=2),
    }
    alone = {sym: run(strategy, params, bars, Context(sym))[1] for sym, bars in series.items()}
    assert all(len(sigs) >= 2 for sigs in alone.values())
    order = [sym for sym, bars in series.items() for _ in bars]
    order = list(np.random.default_rng(4).permutation(order))
    cursors = dict.fromkeys(series, 0)
    states = {sym: strategy.initial_state(strategy.parse_params(params)) for sym in series}
    together: dict[str, list] = {sym: [] for sym in series}
    for sym in order:
        bar = series[sym][cursors[sym]]
        cursors[sym] += 1
        # Each symbol's state goes through storage between its bars, as in the agent.
        state = strategy.decode_state(strategy.encode_state(states[sym]))
        states[sym], sigs = strategy.on_bar(state, bar, Context(sym))
        together[sym].extend(sigs)
    assert together == alone


def test_stored_state_of_the_wrong_shape_is_rejected():
    with pytest.raises(msgspec.ValidationError):
        EmaCross().decode_state(msgspec.msgpack.encode({"target": "long"}))
    state = EmaCross().initial_state(EmaCrossParams())
    assert isinstance(EmaCross().decode_state(EmaCross().encode_state(state)), EmaCrossState)
