"""The record as `ticklane fake schwab orders|fills --json` prints it.

Pure. The shape is `ticklane fake tastytrade orders|fills --json`'s where it applies (same
names, ticklane's vocabulary for side, type and status, prices as integers at 1e-9, `ts` the
market time of a fill) with Schwab's facts beside it: the venue's symbol, status, legs and
account hash. There is no `client_order_id`: a Schwab order carries none, so the record's key
is `venue_order_id`, the id from the `Location` header.
"""

from typing import Final

import msgspec

from executors.brokers.base import VenueStatus
from fakes.schwab.accounts import account_hash
from fakes.schwab.orders import FakeFill, FakeOrder, legs_filled
from fakes.schwab.vocab import Duration, Instruction, OrderType, Status
from fakes.tastytrade.instruments import md_symbol_of
from ticklane.trading import OrderType as LaneType
from ticklane.trading import Side

_TYPES: Final = {
    OrderType.MARKET: LaneType.MARKET,
    OrderType.LIMIT: LaneType.LIMIT,
    OrderType.STOP: LaneType.STOP,
    OrderType.STOP_LIMIT: LaneType.STOP_LIMIT,
    OrderType.NET_DEBIT: LaneType.LIMIT,
    OrderType.NET_CREDIT: LaneType.LIMIT,
    OrderType.NET_ZERO: LaneType.LIMIT,
}
_EFFECTS: Final = {
    OrderType.NET_DEBIT: "debit",
    OrderType.NET_CREDIT: "credit",
    OrderType.NET_ZERO: "none",
}
_TIFS: Final = {
    Duration.DAY: "day",
    Duration.GOOD_TILL_CANCEL: "gtc",
    Duration.IMMEDIATE_OR_CANCEL: "ioc",
    Duration.FILL_OR_KILL: "fok",
}
_STATUSES: Final = {
    Status.FILLED: VenueStatus.FILLED,
    Status.CANCELED: VenueStatus.CANCELLED,
    Status.REPLACED: VenueStatus.CANCELLED,
    Status.REJECTED: VenueStatus.REJECTED,
    Status.EXPIRED: VenueStatus.EXPIRED,
}
"""Terminal statuses in the paper venue's vocabulary; every other status is working."""


def side_of(instruction: Instruction) -> Side:
    """Buy or sell."""
    return Side.BUY if instruction.sign > 0 else Side.SELL


class LegLine(msgspec.Struct, frozen=True):
    """One leg as the client sent it."""

    asset_type: str
    symbol: str
    instruction: str
    quantity: int


class OrderLine(msgspec.Struct, frozen=True, rename={"order_type": "type"}):
    """One order; `symbol`, `side` and `quantity` are its first leg's (`legs` has them all)."""

    venue_order_id: str
    account: str
    account_hash: str
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
    strategy: str
    legs: list[LegLine]
    replaces_order_id: int | None
    replacing_order_id: int | None


class FillLine(msgspec.Struct, frozen=True, rename={"filled_at": "ts"}):
    """One fill of one leg; `ts` is the market time of the tick that filled it."""

    seq: int
    fill_id: str
    venue_order_id: str
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
    instruction: str


def order_line(order: FakeOrder, fills: list[FakeFill]) -> OrderLine:
    """An order with what has filled of its first leg."""
    first = order.legs[0]
    filled = legs_filled(order, fills)[0]
    status = _STATUSES.get(order.status, VenueStatus.ACCEPTED)
    if status is VenueStatus.ACCEPTED and filled:
        status = VenueStatus.PARTIALLY_FILLED
    return OrderLine(
        venue_order_id=str(order.id),
        account=order.account,
        account_hash=account_hash(order.account),
        symbol=md_symbol_of(first.symbol),
        venue_symbol=first.symbol,
        side=side_of(first.instruction),
        quantity=first.quantity,
        order_type=_TYPES[order.order_type],
        time_in_force=_TIFS.get(order.duration, order.duration.value.lower()),
        limit_price=order.price if order.order_type is not OrderType.STOP else None,
        stop_price=order.stop_price,
        price_effect=_EFFECTS.get(order.order_type),
        ts_received=order.entered_at,
        status=status,
        venue_status=order.status.value,
        filled_quantity=filled,
        reason=order.status_description or "",
        strategy=order.strategy.value,
        legs=[
            LegLine(leg.asset_type.value, leg.symbol, leg.instruction.value, leg.quantity)
            for leg in order.legs
        ],
        replaces_order_id=order.replaces_order_id,
        replacing_order_id=order.replaced_by_order_id,
    )


def fill_line(fill: FakeFill) -> FillLine:
    """A fill."""
    return FillLine(
        seq=fill.seq,
        fill_id=fill.fill_id,
        venue_order_id=str(fill.order_id),
        account=fill.account,
        symbol=md_symbol_of(fill.symbol),
        venue_symbol=fill.symbol,
        side=side_of(fill.instruction),
        quantity=fill.quantity,
        price=fill.price,
        fee=0,
        filled_at=fill.filled_at,
        ts_recorded=fill.recorded_at,
        leg=fill.leg,
        instruction=fill.instruction.value,
    )
