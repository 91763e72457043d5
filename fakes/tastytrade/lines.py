"""The record as `ticklane fake tastytrade orders|fills --json` prints it.

Pure. The shape is `ticklane paper orders|fills --json`'s (same names where they apply,
ticklane's vocabulary for side, type and status, prices as integers at 1e-9, `ts` the market
time of a fill) with the TastyTrade facts beside it: the venue's symbol, status and legs,
and the `external-identifier` each order carried, which is the client order id.
"""

from typing import Final

import msgspec

from executors.brokers.base import VenueStatus
from fakes.tastytrade.instruments import md_symbol_of
from fakes.tastytrade.orders import FakeFill, FakeOrder, OrderLeg, legs_filled
from fakes.tastytrade.vocab import OrderAction, OrderStatus, OrderType, TimeInForce
from ticklane.trading import OrderType as LaneType
from ticklane.trading import Side

_TYPES: Final = {
    OrderType.MARKET: LaneType.MARKET,
    OrderType.LIMIT: LaneType.LIMIT,
    OrderType.MARKETABLE_LIMIT: LaneType.LIMIT,
    OrderType.STOP: LaneType.STOP,
    OrderType.STOP_LIMIT: LaneType.STOP_LIMIT,
    OrderType.NOTIONAL_MARKET: LaneType.MARKET,
}
_TIFS: Final = {TimeInForce.DAY: "day", TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc"}
_WORKING: Final = VenueStatus.ACCEPTED
_STATUSES: Final = {
    OrderStatus.RECEIVED: _WORKING,
    OrderStatus.ROUTED: _WORKING,
    OrderStatus.IN_FLIGHT: _WORKING,
    OrderStatus.CONTINGENT: _WORKING,
    OrderStatus.LIVE: _WORKING,
    OrderStatus.CANCEL_REQUESTED: _WORKING,
    OrderStatus.REPLACE_REQUESTED: _WORKING,
    OrderStatus.FILLED: VenueStatus.FILLED,
    OrderStatus.CANCELLED: VenueStatus.CANCELLED,
    OrderStatus.REJECTED: VenueStatus.REJECTED,
    OrderStatus.EXPIRED: VenueStatus.EXPIRED,
    OrderStatus.REMOVED: VenueStatus.CANCELLED,
    OrderStatus.PARTIALLY_REMOVED: VenueStatus.CANCELLED,
}
"""TastyTrade's statuses in the paper venue's vocabulary (a replaced order is cancelled)."""


def side_of(action: OrderAction) -> Side:
    """Buy or sell."""
    return Side.BUY if action.sign > 0 else Side.SELL


class LegLine(msgspec.Struct, frozen=True):
    """One leg as the client sent it."""

    instrument_type: str
    symbol: str
    action: str
    quantity: int


class OrderLine(msgspec.Struct, frozen=True, rename={"order_type": "type"}):
    """One order; `symbol`, `side` and `quantity` are its first leg's (`legs` has them all)."""

    client_order_id: str
    venue_order_id: str
    external_identifier: str | None
    account: str
    symbol: str
    venue_symbol: str
    side: Side
    quantity: int
    order_type: LaneType
    time_in_force: str
    limit_price: int | None
    stop_price: int | None
    price_effect: str | None
    ts_received: int
    status: VenueStatus
    venue_status: str
    filled_quantity: int
    reason: str
    legs: list[LegLine]
    replaces_order_id: int | None
    replacing_order_id: int | None
    source: str | None


class FillLine(msgspec.Struct, frozen=True, rename={"filled_at": "ts"}):
    """One fill of one leg; `ts` is the market time of the tick that filled it."""

    seq: int
    fill_id: str
    client_order_id: str
    venue_order_id: str
    external_identifier: str | None
    account: str
    symbol: str
    venue_symbol: str
    side: Side
    quantity: int
    price: int
    fee: int
    filled_at: int
    ts_recorded: int
    leg: int
    action: str


def _leg(leg: OrderLeg) -> LegLine:
    return LegLine(leg.instrument_type.value, leg.symbol, leg.action.value, leg.quantity)


def order_line(order: FakeOrder, fills: list[FakeFill]) -> OrderLine:
    """An order with what has filled of its first leg."""
    first = order.legs[0]
    filled = legs_filled(order, fills)[0]
    status = _STATUSES[order.status]
    if status is VenueStatus.ACCEPTED and filled:
        status = VenueStatus.PARTIALLY_FILLED
    return OrderLine(
        client_order_id=order.external_identifier or "",
        venue_order_id=str(order.id),
        external_identifier=order.external_identifier,
        account=order.account,
        symbol=md_symbol_of(first.symbol),
        venue_symbol=first.symbol,
        side=side_of(first.action),
        quantity=first.quantity,
        order_type=_TYPES[order.order_type],
        time_in_force=_TIFS.get(order.time_in_force, order.time_in_force.value),
        limit_price=order.price,
        stop_price=order.stop_trigger,
        price_effect=None if order.price_effect is None else order.price_effect.value,
        ts_received=order.received_at,
        status=status,
        venue_status=order.status.value,
        filled_quantity=filled,
        reason=order.reject_reason or "",
        legs=[_leg(leg) for leg in order.legs],
        replaces_order_id=order.replaces_order_id,
        replacing_order_id=order.replacing_order_id,
        source=order.source,
    )


def fill_line(fill: FakeFill, order: FakeOrder | None) -> FillLine:
    """A fill, with its order's external identifier."""
    external = order.external_identifier if order is not None else None
    return FillLine(
        seq=fill.seq,
        fill_id=fill.fill_id,
        client_order_id=external or "",
        venue_order_id=str(fill.order_id),
        external_identifier=external,
        account=fill.account,
        symbol=md_symbol_of(fill.symbol),
        venue_symbol=fill.symbol,
        side=side_of(fill.action),
        quantity=fill.quantity,
        price=fill.price,
        fee=0,
        filled_at=fill.filled_at,
        ts_recorded=fill.recorded_at,
        leg=fill.leg,
        action=fill.action.value,
    )
