"""When and at what price a Schwab order's legs fill: the TastyTrade fake's matching, reused.

Pure. A Schwab order is shown to `fakes.tastytrade.matching` (itself the paper venue's
`first_fill`) in that fake's terms: a leg's direction is all matching reads of its
instruction, and NET_DEBIT / NET_CREDIT / NET_ZERO are a multi-leg limit with that price
effect. So a single leg fills as the paper venue fills an order, a multi-leg MARKET order
leg by leg, and a net-priced order all legs at once when the net of their executable prices
is within its price (per unit of the order's size).
"""

from typing import Final

from executors.brokers.paper.matching import Tick
from fakes.schwab.instruments import catalogue_type
from fakes.schwab.orders import FakeOrder, OrderLeg
from fakes.schwab.vocab import OrderType
from fakes.tastytrade import matching
from fakes.tastytrade import orders as tt
from fakes.tastytrade.vocab import OrderAction, OrderStatus, PriceEffect, TimeInForce
from fakes.tastytrade.vocab import OrderType as TtType

LegFill = matching.LegFill
"""The tick that filled a leg and the price, 1e-9."""

_TYPES: Final = {
    OrderType.MARKET: (TtType.MARKET, None),
    OrderType.LIMIT: (TtType.LIMIT, None),
    OrderType.STOP: (TtType.STOP, None),
    OrderType.STOP_LIMIT: (TtType.STOP_LIMIT, None),
    OrderType.NET_DEBIT: (TtType.LIMIT, PriceEffect.DEBIT),
    OrderType.NET_CREDIT: (TtType.LIMIT, PriceEffect.CREDIT),
    # Zero is paid or received: a debit of at most zero is what NET_ZERO asks for.
    OrderType.NET_ZERO: (TtType.LIMIT, PriceEffect.DEBIT),
}


def _leg(leg: OrderLeg) -> tt.OrderLeg:
    action = OrderAction.BUY_TO_OPEN if leg.instruction.sign > 0 else OrderAction.SELL_TO_OPEN
    return tt.OrderLeg(catalogue_type(leg.asset_type), leg.symbol, action, leg.quantity)


def as_matched(order: FakeOrder) -> tt.FakeOrder:
    """The order as the TastyTrade fake's matching reads one (status and times are unused)."""
    kind, effect = _TYPES[order.order_type]
    return tt.FakeOrder(
        id=order.id,
        account=order.account,
        order_type=kind,
        time_in_force=TimeInForce.DAY,
        legs=tuple(_leg(leg) for leg in order.legs),
        status=OrderStatus.LIVE,
        received_at=order.entered_at,
        updated_at=order.updated_at,
        market_ts=order.market_ts,
        visible_at=order.visible_at,
        price=order.price,
        price_effect=effect,
        stop_trigger=order.stop_price,
    )


def is_net_priced(order: FakeOrder) -> bool:
    """Whether the order's legs fill together against one net price."""
    return matching.is_net_priced(as_matched(order))


def match_leg(
    order: FakeOrder, index: int, md_symbol: str, ticks: list[Tick], *, arriving: bool = False
) -> LegFill | None:
    """The first of `ticks` that fills leg `index`, and its price (see the TastyTrade fake's)."""
    return matching.match_leg(as_matched(order), index, md_symbol, ticks, arriving=arriving)


def match_net(order: FakeOrder, latest: list[list[Tick]]) -> list[LegFill] | None:
    """Every leg's fill if the net of their executable prices is within the order's price."""
    return matching.match_net(as_matched(order), latest)
