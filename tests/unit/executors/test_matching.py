"""Tick-level fill simulation: which tick fills an order, and at what price."""

import pytest

from executors.brokers.paper.matching import Tick, fill_price, first_fill
from ticklane.market import BookSide
from ticklane.trading import Order, OrderStatus, OrderType, Side

T = 1_000
P = 100 * 10**9


def order(side=Side.BUY, kind=OrderType.MARKET, limit=None, stop=None):
    return Order(
        client_order_id="o",
        signal_id="s",
        strategy="x",
        symbol="ES",
        side=side,
        quantity=1,
        order_type=kind,
        status=OrderStatus.ACCEPTED,
        ts_event=T,
        limit_price=limit,
        stop_price=stop,
    )


def test_nothing_at_or_before_the_signal_time_fills():
    assert fill_price(order(), Tick(T, bid=P, ask=P + 1)) is None
    assert fill_price(order(), Tick(T + 1, bid=P, ask=P + 1)) == P + 1


@pytest.mark.parametrize(
    ("side", "tick", "price"),
    [
        (Side.BUY, Tick(T + 1, bid=P, ask=P + 2), P + 2 + 5),
        (Side.SELL, Tick(T + 1, bid=P, ask=P + 2), P - 5),
        (Side.BUY, Tick(T + 1, trade_price=P, aggressor=BookSide.BID), P + 5),
        (Side.BUY, Tick(T + 1, trade_price=P, aggressor=BookSide.ASK), None),
        (Side.SELL, Tick(T + 1, trade_price=P, aggressor=BookSide.ASK), P - 5),
        (Side.SELL, Tick(T + 1, ask=P), None),  # no bid: nothing to sell into
    ],
)
def test_market_orders_take_the_right_side_plus_slippage(side, tick, price):
    assert fill_price(order(side), tick, slippage=5) == price


def test_limit_orders_fill_at_or_better_than_their_limit():
    buy = order(kind=OrderType.LIMIT, limit=P)
    assert fill_price(buy, Tick(T + 1, bid=P - 2, ask=P + 1)) is None
    assert fill_price(buy, Tick(T + 1, bid=P - 2, ask=P - 1), slippage=5) == P - 1
    sell = order(Side.SELL, OrderType.LIMIT, limit=P)
    assert fill_price(sell, Tick(T + 1, bid=P + 3, ask=P + 4)) == P + 3


def test_stop_orders_trigger_on_the_tick_that_reaches_the_stop():
    stop = order(kind=OrderType.STOP, stop=P + 10)
    ticks = [Tick(T + 1, bid=P, ask=P + 5), Tick(T + 2, bid=P + 9, ask=P + 11)]
    assert first_fill(stop, ticks) == (ticks[1], P + 11)
    stop_limit = order(kind=OrderType.STOP_LIMIT, stop=P + 10, limit=P + 10)
    assert first_fill(stop_limit, ticks) is None
