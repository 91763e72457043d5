"""Pricing: market orders as they are, marketable limits a number of ticks through the price."""

from hypothesis import given
from hypothesis import strategies as st

from executors.netting import BrokerCaps, orders_for_signal
from executors.pricing import OrderStyle, Unpriced, price_order
from ticklane.trading import OrderType, Side, Signal, TimeInForce

TICK = 250_000_000  # 0.25
LIMIT = OrderStyle("marketable_limit", ticks_through=2)


def order(side: Side):
    target = 1 if side is Side.BUY else -1
    [leg] = orders_for_signal(
        Signal.create("s", "ES", 1, target), 0, 0, BrokerCaps(can_reverse_in_one_order=True), 1
    )
    return leg


def test_market_orders_take_the_style_time_in_force() -> None:
    priced = price_order(order(Side.BUY), OrderStyle(time_in_force=TimeInForce.IOC), None, None)
    assert (priced.order_type, priced.time_in_force, priced.limit_price) == (
        OrderType.MARKET,
        TimeInForce.IOC,
        None,
    )


def test_a_marketable_limit_is_ticks_through_the_reference() -> None:
    buy = price_order(order(Side.BUY), LIMIT, 5_000_000_000_000, TICK)
    sell = price_order(order(Side.SELL), LIMIT, 5_000_000_000_000, TICK)
    assert (buy.order_type, buy.limit_price) == (OrderType.LIMIT, 5_000_500_000_000)
    assert (sell.order_type, sell.limit_price) == (OrderType.LIMIT, 4_999_500_000_000)


def test_an_off_grid_reference_is_moved_away_from_the_market_first() -> None:
    buy = price_order(order(Side.BUY), LIMIT, 5_000_100_000_000, TICK)  # 5000.10
    sell = price_order(order(Side.SELL), LIMIT, 5_000_100_000_000, TICK)
    assert buy.limit_price == 5_000_750_000_000  # 5000.25 + 2 ticks
    assert sell.limit_price == 4_999_500_000_000  # 5000.00 - 2 ticks


def test_without_a_price_or_a_tick_it_says_why() -> None:
    assert isinstance(price_order(order(Side.BUY), LIMIT, None, TICK), Unpriced)
    unpriced = price_order(order(Side.BUY), LIMIT, 5_000_000_000_000, None)
    assert isinstance(unpriced, Unpriced)
    assert "tick size" in unpriced.reason


@given(st.integers(-(10**12), 10**13), st.integers(1, 10**9), st.integers(0, 10), st.booleans())
def test_the_limit_is_on_the_grid_and_at_least_n_ticks_through(reference, tick, n, buy) -> None:
    side = Side.BUY if buy else Side.SELL
    priced = price_order(order(side), OrderStyle("marketable_limit", n), reference, tick)
    assert priced.limit_price % tick == 0
    through = priced.limit_price - reference if buy else reference - priced.limit_price
    assert n * tick <= through < (n + 1) * tick
