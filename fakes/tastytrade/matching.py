"""When and at what price a fake order's legs fill: the paper venue's matching, reused.

Pure. A leg is matched as the paper venue matches an order (`first_fill`): a market leg at
the ask (buy) or bid (sell) of a quote, or a trade on its side; a limit at its price or
better; a stop once triggered. Only ticks after the order's `market_ts` count, exactly as
the paper venue counts only ticks after a signal's time.

A multi-leg market order fills each leg on its own symbol's first tick. A multi-leg limit
order (net `price` with its effect, per unit of the order's size) fills all legs at once, at
each leg's executable price, when the net of those prices is within the limit.
"""

import math
from typing import Final

from executors.brokers.paper.matching import Tick, executable_price, first_fill
from fakes.tastytrade.orders import FakeOrder, OrderLeg
from fakes.tastytrade.vocab import OrderType, PriceEffect
from ticklane.trading import Order, OrderStatus, Side
from ticklane.trading import OrderType as PaperType

_TYPES: Final = {
    OrderType.MARKET: PaperType.MARKET,
    OrderType.LIMIT: PaperType.LIMIT,
    OrderType.MARKETABLE_LIMIT: PaperType.LIMIT,
    OrderType.STOP: PaperType.STOP,
    OrderType.STOP_LIMIT: PaperType.STOP_LIMIT,
}

LegFill = tuple[Tick, int]
"""The tick that filled a leg and the price, 1e-9."""


def side_of(leg: OrderLeg) -> Side:
    """The paper venue's side for a leg's action."""
    return Side.BUY if leg.action.sign > 0 else Side.SELL


def is_net_priced(order: FakeOrder) -> bool:
    """Whether the order's legs fill together against one net limit."""
    return len(order.legs) > 1 and order.order_type is not OrderType.MARKET


def leg_order(order: FakeOrder, index: int, md_symbol: str, after_ts: int) -> Order:
    """One leg as the paper venue's `Order`, placed at market time `after_ts`."""
    leg = order.legs[index]
    kind = _TYPES[order.order_type] if len(order.legs) == 1 else PaperType.MARKET
    return Order(
        client_order_id=str(order.id),
        signal_id="",
        strategy="",
        symbol=md_symbol,
        side=side_of(leg),
        quantity=leg.quantity,
        order_type=kind,
        status=OrderStatus.ACCEPTED,
        ts_event=max(0, after_ts),
        limit_price=order.price if kind in {PaperType.LIMIT, PaperType.STOP_LIMIT} else None,
        stop_price=order.stop_trigger if kind in {PaperType.STOP, PaperType.STOP_LIMIT} else None,
    )


def match_leg(
    order: FakeOrder, index: int, md_symbol: str, ticks: list[Tick], *, arriving: bool = False
) -> LegFill | None:
    """The first of `ticks` that fills leg `index`, and its price.

    `arriving`: the ticks are the market as the order found it (its symbol's latest quote and
    trade, at or before `market_ts`), which an arriving order trades against.
    """
    after = order.market_ts - 1 if arriving else order.market_ts
    return first_fill(leg_order(order, index, md_symbol, after), ticks)


def match_net(order: FakeOrder, latest: list[list[Tick]]) -> list[LegFill] | None:
    """Every leg's fill if the net of their executable prices is within the order's limit.

    `latest` holds, per leg, the ticks its symbol has now (quote first). The net is a debit
    (buys minus sells) per unit of size, as the order's `price` and `price_effect` state it.
    """
    if order.price is None or order.price_effect is None:
        return None
    size = math.gcd(*(leg.quantity for leg in order.legs))
    fills: list[LegFill] = []
    debit = 0
    for leg, ticks in zip(order.legs, latest, strict=True):
        found = next(
            ((t, p) for t in ticks if (p := executable_price(side_of(leg), t)) is not None), None
        )
        if found is None:
            return None
        fills.append(found)
        debit += leg.action.sign * found[1] * (leg.quantity // size)
    if order.price_effect is PriceEffect.CREDIT:
        return fills if -debit >= order.price else None
    return fills if debit <= order.price else None
