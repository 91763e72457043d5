"""Time bars from trades: boundaries, policies, exact VWAP, state round-trip, real data."""

import itertools
from fractions import Fraction

import databento as db
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.bars import BarBuilder, BarState, vwap_half_even
from ticklane.market import Bar
from ticklane.units import UNDEF_PRICE

SEC = 1_000_000_000
MIN = 60 * SEC
PX = 5_000_000_000_000  # 5000.00 in 1e-9 units
TICK = 250_000_000  # ES tick, 0.25


def run(builder: BarBuilder, ticks: list[tuple[int, int, int]]) -> list[Bar]:
    out: list[Bar] = []
    for t in ticks:
        out += builder.add(*t)
    return out


def test_rejects_non_positive_interval():
    with pytest.raises(ValueError, match="interval_ns"):
        BarBuilder(0)


def test_bar_fields_and_tick_on_boundary_opens_next_bar():
    b = BarBuilder(SEC)
    assert b.add(10 * SEC + 1, PX, 2) == []
    assert b.add(10 * SEC + 5, PX + 4 * TICK, 1) == []
    assert b.add(10 * SEC + 7, PX - 2 * TICK, 3) == []
    assert b.add(11 * SEC - 1, PX + TICK, 4) == []
    done = b.add(11 * SEC, PX + 9 * TICK, 1)
    notional = PX * 2 + (PX + 4 * TICK) + (PX - 2 * TICK) * 3 + (PX + TICK) * 4
    assert done == [
        Bar(
            ts_event=10 * SEC,
            interval_ns=SEC,
            open=PX,
            high=PX + 4 * TICK,
            low=PX - 2 * TICK,
            close=PX + TICK,
            volume=10,
            vwap=round(Fraction(notional, 10)),
            trade_count=4,
        )
    ]
    (nxt,) = b.flush(12 * SEC)
    assert (nxt.ts_event, nxt.open, nxt.close, nxt.volume) == (
        11 * SEC,
        PX + 9 * TICK,
        PX + 9 * TICK,
        1,
    )


@given(
    ts=st.integers(min_value=0, max_value=2**62),
    interval=st.sampled_from([SEC, 5 * SEC, MIN, 5 * MIN, 3_600 * SEC, 7_777]),
)
def test_bars_align_to_epoch_multiples(ts, interval):
    b = BarBuilder(interval)
    b.add(ts, PX, 1)
    (bar,) = b.flush(ts + interval)
    assert bar.ts_event % interval == 0
    assert bar.ts_event <= ts < bar.ts_event + interval


def test_empty_intervals_emit_nothing():
    b = BarBuilder(SEC)
    b.add(SEC // 2, PX, 1)
    # Intervals 1 and 2 have no trades: only the bar at 0 completes.
    done = b.add(3 * SEC + SEC // 2, PX + TICK, 1)
    assert [x.ts_event for x in done] == [0]
    assert b.flush(3 * SEC + SEC - 1) == []
    assert [x.ts_event for x in b.flush(4 * SEC)] == [3 * SEC]
    assert b.flush(10 * SEC) == []
    assert not b.has_open_bar


def test_flush_emits_once_and_only_after_the_interval_ends():
    b = BarBuilder(MIN)
    b.add(MIN + 5, PX, 1)
    assert b.flush(2 * MIN - 1) == []
    assert len(b.flush(2 * MIN)) == 1
    assert b.flush(2 * MIN) == []
    assert b.flush(3 * MIN) == []


def test_late_tick_is_counted_and_never_reopens_a_bar():
    b = BarBuilder(SEC)
    b.add(100, PX, 1)
    (first,) = b.add(SEC + 100, PX + TICK, 1)
    assert b.add(SEC - 1, PX + 50 * TICK, 7) == []
    assert b.late_ticks == 1
    (second,) = b.flush(2 * SEC)
    assert first.ts_event == 0
    assert (second.ts_event, second.high, second.volume) == (SEC, PX + TICK, 1)
    # With no bar open, the interval reached by flush bounds what is late.
    b.flush(5 * SEC + 3)
    assert b.add(5 * SEC - 1, PX, 1) == []
    assert b.late_ticks == 2
    assert b.add(5 * SEC, PX, 1) == []
    assert b.late_ticks == 2
    assert b.has_open_bar


@given(
    offsets=st.lists(st.integers(0, SEC - 1), min_size=1, max_size=30, unique=True),
    prices=st.data(),
    perm=st.randoms(use_true_random=False),
)
def test_out_of_order_ticks_inside_the_open_bar_give_the_same_bar(offsets, prices, perm):
    ticks = [
        (7 * SEC + o, prices.draw(st.integers(PX - 100 * TICK, PX + 100 * TICK)), 1 + i % 5)
        for i, o in enumerate(offsets)
    ]
    shuffled = list(ticks)
    perm.shuffle(shuffled)
    in_order = BarBuilder(SEC)
    run(in_order, sorted(ticks))
    mixed = BarBuilder(SEC)
    run(mixed, shuffled)
    (a,) = in_order.flush(8 * SEC)
    (b,) = mixed.flush(8 * SEC)
    assert a == b
    assert mixed.late_ticks == 0
    earliest, latest = min(ticks), max(ticks)
    assert (a.open, a.close, a.trade_count) == (earliest[1], latest[1], len(ticks))


def test_undefined_price_and_zero_size_are_ignored_and_counted():
    b = BarBuilder(SEC)
    b.add(1, PX, 2)
    b.add(2, UNDEF_PRICE, 5)
    b.add(3, PX + TICK, 0)
    b.add(2 * SEC, UNDEF_PRICE, 1)  # would have closed the bar if absorbed
    assert b.ignored_ticks == 3
    (bar,) = b.flush(SEC)
    assert (bar.high, bar.volume, bar.trade_count, bar.vwap) == (PX, 2, 1, PX)


@pytest.mark.parametrize(
    ("notional", "volume", "expected"),
    [(5, 2, 2), (3, 2, 2), (7, 2, 4), (-3, 2, -2), (-5, 2, -2), (10, 3, 3), (11, 3, 4), (9, 9, 1)],
)
def test_vwap_rounds_half_to_even(notional, volume, expected):
    assert vwap_half_even(notional, volume) == expected


@given(
    trades=st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.integers(1, 2**32 - 1)), min_size=1, max_size=50
    )
)
def test_vwap_is_exact(trades):
    b = BarBuilder(MIN)
    for i, (p, s) in enumerate(trades):
        b.add(i, p, s)
    (bar,) = b.flush(MIN)
    exact = Fraction(sum(p * s for p, s in trades), sum(s for _, s in trades))
    assert bar.vwap == round(exact)  # Fraction rounds half to even
    assert bar.volume == sum(s for _, s in trades)


tick_lists = st.lists(
    st.tuples(
        st.integers(-3 * SEC, 40 * SEC),  # step; negative steps make late and reordered ticks
        st.one_of(st.integers(-(2**62), 2**62), st.just(UNDEF_PRICE)),
        st.integers(0, 2**32 - 1),
    ),
    max_size=120,
)


def materialise(steps: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    t = 1_700_000_000 * SEC
    out = []
    for step, p, s in steps:
        t += step
        out.append((t, p, s))
    return out


@settings(max_examples=200)
@given(steps=tick_lists, split=st.integers(0, 120), interval=st.sampled_from([SEC, 7 * SEC, MIN]))
def test_state_round_trip_continues_exactly(steps, split, interval):
    ticks = materialise(steps)
    split = min(split, len(ticks))
    whole = BarBuilder(interval)
    expected = run(whole, ticks) + whole.flush(ticks[-1][0] + 2 * interval if ticks else 0)

    first = BarBuilder(interval)
    got = run(first, ticks[:split])
    blob = msgspec.msgpack.encode(first.to_state())
    resumed = BarBuilder.from_state(msgspec.msgpack.decode(blob, type=BarState))
    assert resumed.to_state() == first.to_state()
    got += run(resumed, ticks[split:])
    got += resumed.flush(ticks[-1][0] + 2 * interval if ticks else 0)
    assert got == expected
    assert resumed.to_state() == whole.to_state()
    assert (resumed.late_ticks, resumed.ignored_ticks) == (whole.late_ticks, whole.ignored_ticks)


def test_add_many_matches_add():
    rng = np.random.default_rng(3)
    ts = (1_700_000_000 * SEC + np.cumsum(rng.integers(-SEC // 10, SEC, 5_000))).tolist()
    px = (PX + np.cumsum(rng.integers(-2, 3, 5_000)) * TICK).tolist()
    sz = rng.integers(0, 20, 5_000).tolist()
    one = BarBuilder(5 * SEC)
    many = BarBuilder(5 * SEC)
    assert run(one, list(zip(ts, px, sz, strict=True))) == many.add_many(ts, px, sz)
    assert one.to_state() == many.to_state()
    assert many.late_ticks > 0
    with pytest.raises(ValueError, match="same length"):
        many.add_many(ts, px[:-1], sz)


def test_one_minute_bars_equal_databento_ohlcv_1m(databento_dir):
    trades = db.DBNStore.from_file(databento_dir / "glbx-esu4-20240701.trades.dbn.zst").to_ndarray()
    ohlcv = db.DBNStore.from_file(
        databento_dir / "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst"
    ).to_ndarray()
    (iid,) = set(trades["instrument_id"].tolist())
    b = BarBuilder(MIN)
    bars = b.add_many(
        trades["ts_event"].tolist(), trades["price"].tolist(), trades["size"].tolist()
    ) + b.flush(int(trades["ts_event"][-1]) + MIN)
    fields = ["open", "high", "low", "close", "volume"]
    ref = {
        int(r["ts_event"]): tuple(int(r[f]) for f in fields)
        for r in ohlcv[ohlcv["instrument_id"] == iid]
    }
    assert len(bars) == 4
    for bar in bars:
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == ref[bar.ts_event]
    assert sum(x.trade_count for x in bars) == len(trades)


@pytest.mark.parametrize("interval", [SEC, MIN, 5 * MIN])
def test_mbo_trades_make_consistent_bars(databento_dir, interval):
    mbo = db.DBNStore.from_file(databento_dir / "glbx-esh4-20231225.mbo.dbn.zst").to_ndarray()
    tr = mbo[mbo["action"] == b"T"]
    assert len(tr) == 2973
    b = BarBuilder(interval)
    bars = b.add_many(tr["ts_event"].tolist(), tr["price"].tolist(), tr["size"].tolist())
    bars += b.flush(int(tr["ts_event"].max()) + interval)
    assert sum(x.trade_count for x in bars) == len(tr)
    assert sum(x.volume for x in bars) == int(tr["size"].sum())
    assert all(a.ts_event < b.ts_event for a, b in itertools.pairwise(bars))
    assert all(x.low <= min(x.open, x.close, x.vwap) for x in bars)
    assert all(x.high >= max(x.open, x.close, x.vwap) for x in bars)
    assert (b.late_ticks, b.ignored_ticks) == (0, 0)
