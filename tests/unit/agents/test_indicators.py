"""Indicators against TA-Lib (SMA, EMA, ATR) and pandas-ta-classic (Supertrend)."""

import warnings
from collections.abc import Callable
from pathlib import Path

import databento as db
import msgspec
import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.bars import BarBuilder
from agents.indicators import ATR, EMA, SMA, Supertrend

with warnings.catch_warnings():
    # pandas-ta-classic uses pandas APIs that pandas 3 deprecates; its problem, not ours.
    warnings.simplefilter("ignore")
    import pandas_ta_classic as pta

SEC = 1_000_000_000
MIN = 60 * SEC
RTOL = 1e-9

Ohlc = tuple[np.ndarray, np.ndarray, np.ndarray]


def random_walk(seed: int, n: int, tick: int = 250_000_000, spread: int = 3) -> Ohlc:
    """Integer 1e-9 OHLC on a tick grid; flat bars (high == low == previous close) occur."""
    rng = np.random.default_rng(seed)
    close = 5_000_000_000_000 + np.cumsum(rng.integers(-4, 5, n)) * tick
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + rng.integers(0, spread, n) * tick
    low = np.minimum(open_, close) - rng.integers(0, spread, n) * tick
    return high, low, close


def real_ohlcv_1m(databento_dir: Path) -> list[Ohlc]:
    """Databento ohlcv-1m for ESU4 and NQU4, one series per instrument."""
    a = db.DBNStore.from_file(
        databento_dir / "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst"
    ).to_ndarray()
    out = []
    for iid in sorted(set(a["instrument_id"].tolist())):
        s = a[a["instrument_id"] == iid]
        out.append((s["high"], s["low"], s["close"]))
    assert len(out) == 2
    return out


def mbo_bars(databento_dir: Path, interval: int) -> Ohlc:
    """Bars built with BarBuilder from the ESH4 MBO trades (action 'T')."""
    mbo = db.DBNStore.from_file(databento_dir / "glbx-esh4-20231225.mbo.dbn.zst").to_ndarray()
    tr = mbo[mbo["action"] == b"T"]
    b = BarBuilder(interval)
    bars = b.add_many(tr["ts_event"].tolist(), tr["price"].tolist(), tr["size"].tolist())
    bars += b.flush(int(tr["ts_event"].max()) + interval)
    high, low, close = (np.array([getattr(x, f) for x in bars]) for f in ("high", "low", "close"))
    return high, low, close


def feed(ind: Callable[..., float | None], *cols: np.ndarray) -> np.ndarray:
    rows = zip(*(c.tolist() for c in cols), strict=True)
    return np.array([np.nan if (v := ind(*r)) is None else v for r in rows])


def assert_matches(ours: np.ndarray, ref: np.ndarray) -> None:
    ref_defined = ~np.isnan(ref)
    assert ref_defined.any()
    np.testing.assert_array_equal(~np.isnan(ours), ref_defined)
    first = int(np.argmax(ref_defined))
    assert ref_defined[first:].all()
    np.testing.assert_allclose(ours[first:], ref[first:], rtol=RTOL, atol=0)


def fl(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64)


def check_sma_ema_atr(ohlc: Ohlc, period: int) -> None:
    h, l, c = ohlc  # noqa: E741
    assert_matches(feed(SMA(period).update, c), talib.SMA(fl(c), period))
    assert_matches(feed(EMA(period).update, c), talib.EMA(fl(c), period))
    atr = feed(ATR(period).update, h, l, c)
    assert_matches(atr, talib.ATR(fl(h), fl(l), fl(c), period))
    assert int(np.argmax(~np.isnan(atr))) == period  # TA-Lib's ATR lookback


def check_supertrend(ohlc: Ohlc, length: int, multiplier: float) -> None:
    h, l, c = ohlc  # noqa: E741
    ind = Supertrend(length, multiplier)
    values, dirs, atrs = [], [], []
    for row in zip(h.tolist(), l.tolist(), c.tolist(), strict=True):
        v = ind.update(*row)
        values.append(np.nan if v is None else v)
        dirs.append(ind.direction)
        atrs.append(np.nan if ind.atr is None else ind.atr)
    hs, ls, cs = pd.Series(fl(h)), pd.Series(fl(l)), pd.Series(fl(c))
    assert_matches(np.array(atrs), pta.atr(hs, ls, cs, length).to_numpy())
    ref = pta.supertrend(hs, ls, cs, length, multiplier)
    props = f"_{length}_{float(multiplier)}"
    trend = ref[f"SUPERT{props}"].to_numpy()
    # pandas-ta-classic writes 0.0 at index 0 instead of NaN; its long/short columns
    # show where the line is really defined.
    assert trend[0] == 0.0
    defined = ~(ref[f"SUPERTl{props}"].isna() & ref[f"SUPERTs{props}"].isna()).to_numpy()
    assert int(np.argmax(defined)) == length
    assert_matches(np.array(values), np.where(defined, trend, np.nan))
    np.testing.assert_array_equal(np.array(dirs), ref[f"SUPERTd{props}"].to_numpy())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(60, 600), period=st.integers(2, 50))
def test_sma_ema_atr_match_talib_on_random_walks(seed, n, period):
    check_sma_ema_atr(random_walk(seed, n), period)


@pytest.mark.parametrize(("tick", "spread"), [(1, 2), (250_000_000, 1), (10_000_000_000, 20)])
@pytest.mark.parametrize("period", [1, 2, 14, 100])
def test_atr_matches_talib_across_scales(tick, spread, period):
    h, l, c = random_walk(11, 800, tick, spread)  # noqa: E741
    assert_matches(feed(ATR(period).update, h, l, c), talib.ATR(fl(h), fl(l), fl(c), period))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(60, 500),
    length=st.integers(1, 40),
    multiplier=st.sampled_from([0.5, 1.0, 2.0, 2.5, 3.0, 4.25]),
)
def test_supertrend_matches_pandas_ta_classic_on_random_walks(seed, n, length, multiplier):
    check_supertrend(random_walk(seed, n), length, multiplier)


def test_supertrend_random_walks_exercise_both_directions_and_flat_bars():
    h, l, c = random_walk(5, 2_000, spread=1)  # noqa: E741
    assert ((h == l) & (np.r_[0, c[:-1]] == h)).any()  # the epsilon-range case
    ind = Supertrend(10, 2.0)
    dirs = set()
    for row in zip(h.tolist(), l.tolist(), c.tolist(), strict=True):
        ind.update(*row)
        dirs.add(ind.direction)
    assert dirs == {1, -1}
    check_supertrend((h, l, c), 10, 2.0)


@pytest.mark.parametrize("price", [1, 4, 5_000_000_000_000])
def test_supertrend_flat_series_uses_epsilon_range(price):
    # A flat market gives pandas-ta-classic an ATR of machine epsilon, not 0.
    flat = np.full(30, price, dtype=np.int64)
    check_supertrend((flat, flat, flat), 5, 3.0)
    ind = Supertrend(5, 3.0)
    for _ in range(30):
        ind.update(price, price, price)
    assert ind.atr is not None
    assert ind.atr > 0


@pytest.mark.parametrize("period", [2, 5, 14, 29])
def test_real_ohlcv_1m_per_instrument_matches_talib(databento_dir, period):
    for ohlc in real_ohlcv_1m(databento_dir):
        check_sma_ema_atr(ohlc, period)


@pytest.mark.parametrize(("length", "multiplier"), [(3, 1.5), (7, 3.0), (10, 2.0), (14, 1.0)])
def test_real_ohlcv_1m_per_instrument_supertrend(databento_dir, length, multiplier):
    for ohlc in real_ohlcv_1m(databento_dir):
        check_supertrend(ohlc, length, multiplier)


@pytest.mark.parametrize(("interval", "n_bars"), [(SEC, 988), (10 * SEC, 326), (MIN, 60)])
def test_bars_built_from_mbo_trades_match_references(databento_dir, interval, n_bars):
    ohlc = mbo_bars(databento_dir, interval)
    assert len(ohlc[2]) == n_bars
    for period in (2, 9, 14, 50):
        check_sma_ema_atr(ohlc, period)
    for length, mult in ((7, 3.0), (10, 1.0)):
        check_supertrend(ohlc, length, mult)


Indicator = SMA | EMA | ATR | Supertrend


def make(kind: str) -> Indicator:
    made: dict[str, Indicator] = {
        "sma": SMA(9),
        "ema": EMA(9),
        "atr": ATR(9),
        "st": Supertrend(9, 2.0),
    }
    return made[kind]


def step(ind: Indicator, row: tuple[int, int, int]) -> tuple[object, ...]:
    if isinstance(ind, (SMA, EMA)):
        return (ind.update(row[2]), ind.ready)
    if isinstance(ind, ATR):
        return (ind.update(*row), ind.ready)
    return (ind.update(*row), ind.direction, ind.ready)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["sma", "ema", "atr", "st"]),
    seed=st.integers(0, 1_000),
    split=st.integers(0, 120),
)
def test_state_round_trip_continues_exactly(kind, seed, split):
    h, l, c = random_walk(seed, 120)  # noqa: E741
    rows = list(zip(h.tolist(), l.tolist(), c.tolist(), strict=True))
    whole = make(kind)
    expected = [step(whole, r) for r in rows]
    first = make(kind)
    got = [step(first, r) for r in rows[:split]]
    resumed = msgspec.msgpack.decode(msgspec.msgpack.encode(first), type=type(first))
    assert resumed == first
    got += [step(resumed, r) for r in rows[split:]]
    assert got == expected
    assert resumed == whole


def test_warm_up_returns_none_then_values():
    ema, sma, atr, st_ = EMA(3), SMA(3), ATR(3), Supertrend(3, 3.0)
    for i, px in enumerate([10, 20, 30, 40]):
        e, s = ema.update(px), sma.update(px)
        a, t = atr.update(px + 5, px - 5, px), st_.update(px + 5, px - 5, px)
        assert (e is None, s is None) == (i < 2, i < 2)
        assert (a is None, t is None) == (i < 3, i < 3)
    assert (ema.value, sma.value) == (30.0, 30.0)
    assert all(x.ready for x in (ema, sma, atr, st_))
    assert atr.value == 15.0  # each TR is the gap from the previous close to the high


@pytest.mark.parametrize(
    "bad",
    [
        lambda: SMA(0),
        lambda: EMA(0),
        lambda: ATR(0),
        lambda: Supertrend(0),
        lambda: Supertrend(7, 0.0),
    ],
)
def test_invalid_parameters_are_rejected(bad):
    with pytest.raises(ValueError, match="must be"):
        bad()


def test_invalid_stored_state_is_rejected():
    with pytest.raises(msgspec.ValidationError, match="period"):
        msgspec.msgpack.decode(msgspec.msgpack.encode({"period": 0}), type=EMA)
