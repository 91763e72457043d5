"""Position accounting: exact integer PnL, round-half-even average price, reversals, fees."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executors.positions import (
    Holding,
    PositionFillError,
    apply_fill,
    apply_fills,
    average_price,
    div_round_half_even,
    holding_from_position,
    open_holding,
    signed_quantity,
    unrealized_pnl,
)
from ticklane.trading import Fill, Side


def fill(
    n: int, side: Side, quantity: int, price: int, *, fee: int = 0, symbol: str = "ESU4"
) -> Fill:
    return Fill(
        fill_id=f"f{n}",
        client_order_id=f"o{n}",
        venue_order_id=f"v{n}",
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=price,
        ts_event=100 + n,
        fee=fee,
        strategy="ema",
    )


def flat() -> Holding:
    return open_holding("ema", "ESU4")


BUY, SELL = Side.BUY, Side.SELL


def test_opening_and_adding_average_the_price() -> None:
    h = apply_fills(flat(), [fill(1, BUY, 1, 100), fill(2, BUY, 2, 200)], multiplier=1)
    assert h.position.quantity == 3
    assert h.cost_basis == 500
    assert h.position.avg_price == 167  # 166.67 rounded
    assert h.position.realized_pnl == 0
    assert h.position.last_fill_id == "f2"
    assert h.position.ts_event == 102


@pytest.mark.parametrize(
    ("prices", "avg"),
    [((1, 2), 2), ((2, 3), 2), ((-1, -2), -2), ((-2, -3), -2)],
)
def test_average_price_ties_go_to_even(prices: tuple[int, int], avg: int) -> None:
    for side in (BUY, SELL):
        fills = [fill(1, side, 1, prices[0]), fill(2, side, 1, prices[1])]
        assert apply_fills(flat(), fills, 1).position.avg_price == avg


def test_partial_close_realizes_its_share_of_the_basis() -> None:
    h = apply_fills(flat(), [fill(1, BUY, 2, 100), fill(2, SELL, 1, 110, fee=3)], multiplier=50)
    assert h.position.quantity == 1
    assert h.position.realized_pnl == 10 * 50 - 3
    assert h.position.fees == 3
    assert h.position.avg_price == 100


def test_short_close_at_a_lower_price_is_a_gain() -> None:
    h = apply_fills(flat(), [fill(1, SELL, 3, 100), fill(2, BUY, 3, 90)], multiplier=2)
    assert h.position.quantity == 0
    assert h.position.realized_pnl == 3 * 10 * 2
    assert (h.cost_basis, h.position.avg_price) == (0, 0)


def test_reversal_realizes_the_closed_part_and_opens_the_rest_at_the_fill_price() -> None:
    h = apply_fills(flat(), [fill(1, BUY, 1, 100, fee=1), fill(2, SELL, 3, 90, fee=2)], 10)
    assert h.position.quantity == -2
    assert h.position.avg_price == 90
    assert h.cost_basis == -180
    assert h.position.realized_pnl == (90 - 100) * 10 - 1 - 2
    assert h.position.fees == 3


def test_uneven_basis_is_split_without_loss() -> None:
    # Basis 100 over 3: closing 1 takes 33 (33.3 rounded), and the last 2 take the other 67.
    h = apply_fills(flat(), [fill(1, BUY, 2, 33), fill(2, BUY, 1, 34)], 1)
    assert (h.position.quantity, h.cost_basis, h.position.avg_price) == (3, 100, 33)
    h = apply_fill(h, fill(3, SELL, 1, 40), 1)
    assert (h.cost_basis, h.position.realized_pnl) == (67, 7)
    h = apply_fill(h, fill(4, SELL, 2, 40), 1)
    assert (h.cost_basis, h.position.quantity, h.position.avg_price) == (0, 0, 0)
    assert h.position.realized_pnl == 120 - 100


def test_redelivered_last_fill_is_skipped() -> None:
    f = fill(1, BUY, 2, 100, fee=5)
    once = apply_fill(flat(), f, 1)
    assert apply_fill(once, f, 1) == once


@pytest.mark.parametrize(
    ("bad", "multiplier"),
    [
        (fill(1, BUY, 1, 100, symbol="NQU4"), 1),
        (Fill("f", "o", "v", "ESU4", BUY, 1, 100, 1, strategy="other"), 1),
        (fill(1, BUY, 0, 100), 1),
        (fill(1, BUY, 1, 100), 0),
    ],
)
def test_unaccountable_fills_are_refused(bad: Fill, multiplier: int) -> None:
    with pytest.raises(PositionFillError):
        apply_fill(flat(), bad, multiplier)


def test_rebuilding_from_a_wire_position_uses_its_average() -> None:
    h = apply_fills(flat(), [fill(1, SELL, 4, 250)], 1)
    rebuilt = holding_from_position(h.position)
    assert rebuilt == h


@given(st.integers(-(10**30), 10**30), st.integers(-(10**12), 10**12).filter(bool))
def test_division_rounds_half_to_even_exactly(numerator: int, denominator: int) -> None:
    # Python's round() of a Fraction rounds half to even, exactly.
    assert div_round_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.integers(1, 1_000),
        st.integers(-(10**9), 10**13),
        st.integers(0, 10**9),
    ),
    max_size=30,
)


@given(fills_strategy, st.integers(-(10**9), 10**13), st.sampled_from([1, 5, 50, 100]))
def test_pnl_equals_cash_flows_exactly(
    raw: list[tuple[Side, int, int, int]], mark: int, multiplier: int
) -> None:
    fills = [fill(i, side, qty, price, fee=fee) for i, (side, qty, price, fee) in enumerate(raw)]
    h = apply_fills(flat(), fills, multiplier)
    quantity = sum(signed_quantity(f) for f in fills)
    cash = sum(-f.price * signed_quantity(f) for f in fills) * multiplier
    fees = sum(f.fee for f in fills)
    assert h.position.quantity == quantity
    assert h.position.fees == fees
    total = h.position.realized_pnl + unrealized_pnl(h, mark, multiplier)
    assert total == cash + mark * quantity * multiplier - fees
    assert h.position.avg_price == average_price(quantity, h.cost_basis)
    if quantity:
        assert abs(Fraction(h.cost_basis, quantity) - h.position.avg_price) <= Fraction(1, 2)
    else:
        assert (h.cost_basis, h.position.avg_price) == (0, 0)
        assert h.position.realized_pnl == cash - fees


@given(fills_strategy)
def test_replaying_the_last_fill_changes_nothing(raw: list[tuple[Side, int, int, int]]) -> None:
    fills = [fill(i, side, qty, price, fee=fee) for i, (side, qty, price, fee) in enumerate(raw)]
    h = apply_fills(flat(), fills, 3)
    if fills:
        assert apply_fill(h, fills[-1], 3) == h
