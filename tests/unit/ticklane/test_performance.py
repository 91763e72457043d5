"""Round trips, the equity curve and the statistics of a backtest, from fills and closes."""

import empyrical  # type: ignore[import-untyped]
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticklane.performance import (
    EquityPoint,
    bar_returns,
    equity_curve,
    max_drawdown,
    periods_per_year,
    round_trips,
    sharpe,
    sortino,
    statistics,
)
from ticklane.trading import Fill, Side

P = 1_000_000_000  # one price or currency unit in ticklane's integers
MINUTE = 60 * P


def fill(
    ts: int, side: Side, quantity: int, price: float, *, fee: float = 0, symbol: str = "ES"
) -> Fill:
    return Fill(
        fill_id=f"f{ts}",
        client_order_id=f"o{ts}",
        venue_order_id=f"v{ts}",
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=round(price * P),
        ts_event=ts,
        fee=round(fee * P),
    )


def test_round_trips_average_in_reverse_and_split_the_fee_of_a_reversing_fill() -> None:
    fills = [
        fill(1, Side.BUY, 1, 100, fee=1),
        fill(2, Side.BUY, 1, 110, fee=1),  # long 2 at 105 on average
        fill(3, Side.SELL, 3, 120, fee=3),  # closes the 2 (+30 a unit x 50), opens short 1
        fill(4, Side.BUY, 1, 115, fee=1),  # closes the short (+5 x 50)
        fill(5, Side.SELL, 2, 90, fee=2),  # a short left open at the end
    ]
    long, short, still = round_trips(fills, {"ES": 50})
    assert (long.direction, long.opened_ns, long.closed_ns, long.quantity) == (1, 1, 3, 2)
    assert (long.entry_price, long.exit_price) == (105 * P, 120 * P)
    assert long.pnl == 30 * 50 * P
    assert long.fees == 4 * P  # its two buys and two thirds of the reversing sell
    assert (short.direction, short.opened_ns, short.closed_ns) == (-1, 3, 4)
    assert (short.entry_price, short.exit_price, short.pnl) == (120 * P, 115 * P, 5 * 50 * P)
    assert short.fees == 2 * P
    assert still.closed is False
    assert (still.quantity, still.fees, still.net) == (2, 2 * P, -2 * P)


def test_a_partial_close_realises_its_share_of_the_cost_and_the_rest_is_exact() -> None:
    fills = [
        fill(1, Side.BUY, 3, 100),
        fill(2, Side.BUY, 1, 101),  # 4 at 100.25
        fill(3, Side.SELL, 1, 103),  # 2.75 realised
        fill(4, Side.SELL, 3, 99),  # the rest: 3 x (99 - 100.25) = -3.75
    ]
    (trip,) = round_trips(fills, {})
    assert trip.pnl == round(-1.0 * P)  # exactly 103 + 3 x 99 - (3 x 100 + 101)
    assert trip.exit_price == 100 * P  # (103 + 3 x 99) / 4


def test_the_equity_curve_marks_open_positions_at_each_close_and_takes_fees() -> None:
    fills = [fill(MINUTE + 5, Side.BUY, 2, 100, fee=0.5), fill(3 * MINUTE + 5, Side.SELL, 2, 104)]
    closes = [(MINUTE, "ES", 99 * P), (2 * MINUTE, "ES", 103 * P), (3 * MINUTE, "ES", 101 * P)]
    closes += [(4 * MINUTE, "ES", 90 * P)]
    curve, by_symbol = equity_curve(fills, closes, {"ES": 10})
    assert [(p.pnl, p.fees, p.exposed) for p in curve] == [
        (0, 0, False),
        (2 * 3 * 10 * P, P // 2, True),
        (2 * 1 * 10 * P, P // 2, True),
        (2 * 4 * 10 * P, P // 2, False),  # sold at 104: the later close moves nothing
    ]
    assert [p.equity for p in curve] == [p.pnl - p.fees for p in curve]
    assert by_symbol == {"ES": 80 * P - P // 2}


def _curve(equities: list[int]) -> list[EquityPoint]:
    return [EquityPoint(i * MINUTE, e, 0, e, False) for i, e in enumerate(equities)]


def test_max_drawdown_is_the_deepest_fall_from_a_high_and_says_when_it_recovered() -> None:
    dd = max_drawdown(_curve([0, 10, 4, 12, 5, 3, 9, 12, 13]))
    assert (dd.amount, dd.peak_ns, dd.trough_ns, dd.recovered_ns) == (
        9,
        3 * MINUTE,
        5 * MINUTE,
        7 * MINUTE,
    )
    assert dd.duration_ns == 4 * MINUTE
    never = max_drawdown(_curve([0, -5, -3]))
    assert (never.amount, never.recovered_ns, never.duration_ns) == (5, -1, MINUTE)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5_000, 5_000), min_size=3, max_size=200))
def test_sharpe_and_sortino_equal_empyricals(steps: list[int]) -> None:
    equities = list(np.cumsum(steps) * P)
    capital = 100_000 * P
    returns = bar_returns(_curve([int(e) for e in equities]), capital)
    per_year = 252 * 390.0
    expected_sharpe = empyrical.sharpe_ratio(np.array(returns), annualization=per_year)
    expected_sortino = empyrical.sortino_ratio(np.array(returns), annualization=per_year)
    got_sharpe, got_sortino = sharpe(returns, per_year), sortino(returns, per_year)
    if got_sharpe is None:
        assert not np.isfinite(expected_sharpe) or np.std(returns) < 1e-15
    else:
        assert got_sharpe == pytest.approx(expected_sharpe, rel=1e-9, abs=1e-12)
    if got_sortino is None:
        assert not np.isfinite(expected_sortino) or min(returns) >= 0
    else:
        assert got_sortino == pytest.approx(expected_sortino, rel=1e-9, abs=1e-12)


def test_statistics_count_wins_and_losses_of_closed_trips_net_of_fees() -> None:
    fills = [
        fill(1, Side.BUY, 1, 100, fee=1),
        fill(2, Side.SELL, 1, 110, fee=1),  # +8 net
        fill(3, Side.SELL, 1, 110, fee=1),
        fill(4, Side.BUY, 1, 112, fee=1),  # -4 net
        fill(5, Side.BUY, 1, 100),  # open at the end
    ]
    trips = round_trips(fills, {})
    closes = [(t, "ES", 100 * P) for t in range(1, 7)]
    curve, by_symbol = equity_curve(fills, closes, {})
    stats = statistics(trips, curve, by_symbol, 1_000 * P)
    assert (stats.trades, stats.open_trades, stats.wins, stats.losses) == (2, 1, 1, 1)
    assert stats.win_rate == 0.5
    assert (stats.average_win, stats.average_loss) == (8 * P, -4 * P)
    assert stats.profit_factor == 2.0
    assert stats.fees == 4 * P
    assert stats.total_pnl == curve[-1].equity == by_symbol["ES"]
    assert stats.periods_per_year == periods_per_year(curve) == 252 * 6
