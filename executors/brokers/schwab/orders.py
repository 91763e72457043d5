"""Orders at Schwab: ticklane's `Order` to a schwab-py order spec, and Schwab's answers back.

Pure. Prices become `Decimal` strings here and only here, at the instrument's tick and never
worse than asked (a buy limit rounds down, a sell limit up). Equities take BUY, SELL,
SELL_SHORT and BUY_TO_COVER from side and position effect; options the four `*_TO_OPEN` /
`*_TO_CLOSE`. Schwab cannot reverse in one order, and cannot trade futures at all.

A multi-leg order (`Order.legs`) is one order with a leg per symbol, each trading the order's
quantity times its ratio, named by `complexOrderStrategyType` (VERTICAL, IRON_CONDOR, else
CUSTOM) and priced at the net per unit: `NET_DEBIT` or `NET_CREDIT` with an unsigned price,
as Schwab's order documents show.

A Schwab order carries no client order id, so an order is recognised by its **fingerprint**:
(account hash, symbols, instructions, quantity, order type, price), the same whether taken
from the spec sent or from the order the venue lists.
"""

import re
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any, Final

import msgspec
from schwab.orders.common import (  # type: ignore[import-untyped]
    ComplexOrderStrategyType,
    Duration,
    EquityInstruction,
    OptionInstruction,
    OrderStrategyType,
    Session,
)
from schwab.orders.common import OrderType as SchwabOrderType
from schwab.orders.generic import OrderBuilder  # type: ignore[import-untyped]

from executors.brokers.base import VenueOrder, VenueStatus
from executors.netting import leg_side
from ticklane import ids
from ticklane.trading import ComboLeg, Fill, Order, OrderType, PositionEffect, Side, TimeInForce
from ticklane.units import decimal_to_price, price_to_decimal

VENUE: Final = "schwab"
Json = dict[str, Any]

_OSI: Final = re.compile(r"^[A-Z0-9.]{1,6} *\d{6}[CP]\d{8}$")
"""An OPRA option as Databento names it (and Schwab: root padded to 6, yymmdd, C/P, strike)."""
_FUTURE: Final = re.compile(r"^/|^[A-Z0-9]{1,5}[FGHJKMNQUVXZ]\d{1,2}$|^\S+ [CP]\d+$")
"""A CME outright (`ESZ6`), a future option (`ESM4 P5230`), or a `/`-prefixed future."""
_TIME: Final = "%Y-%m-%dT%H:%M:%S%z"
"""How Schwab writes a time: `2020-03-30T15:36:12+0000`."""


class SchwabStatus(StrEnum):
    """Every order status Schwab's API names (schwab-py `Client.Order.Status`)."""

    AWAITING_PARENT_ORDER = "AWAITING_PARENT_ORDER"
    AWAITING_CONDITION = "AWAITING_CONDITION"
    AWAITING_STOP_CONDITION = "AWAITING_STOP_CONDITION"
    AWAITING_MANUAL_REVIEW = "AWAITING_MANUAL_REVIEW"
    ACCEPTED = "ACCEPTED"
    AWAITING_UR_OUT = "AWAITING_UR_OUT"
    PENDING_ACTIVATION = "PENDING_ACTIVATION"
    QUEUED = "QUEUED"
    WORKING = "WORKING"
    REJECTED = "REJECTED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    PENDING_REPLACE = "PENDING_REPLACE"
    REPLACED = "REPLACED"
    FILLED = "FILLED"
    EXPIRED = "EXPIRED"
    NEW = "NEW"
    AWAITING_RELEASE_TIME = "AWAITING_RELEASE_TIME"
    PENDING_ACKNOWLEDGEMENT = "PENDING_ACKNOWLEDGEMENT"
    PENDING_RECALL = "PENDING_RECALL"
    UNKNOWN = "UNKNOWN"


STATUSES: Final[dict[SchwabStatus, VenueStatus]] = {
    # Waiting for something (a parent, a trigger, a review, the open): the venue has it.
    SchwabStatus.AWAITING_PARENT_ORDER: VenueStatus.ACCEPTED,
    SchwabStatus.AWAITING_CONDITION: VenueStatus.ACCEPTED,
    SchwabStatus.AWAITING_STOP_CONDITION: VenueStatus.ACCEPTED,
    SchwabStatus.AWAITING_MANUAL_REVIEW: VenueStatus.ACCEPTED,
    SchwabStatus.AWAITING_RELEASE_TIME: VenueStatus.ACCEPTED,
    SchwabStatus.PENDING_ACTIVATION: VenueStatus.ACCEPTED,
    SchwabStatus.PENDING_ACKNOWLEDGEMENT: VenueStatus.ACCEPTED,
    SchwabStatus.NEW: VenueStatus.ACCEPTED,
    SchwabStatus.QUEUED: VenueStatus.ACCEPTED,
    SchwabStatus.ACCEPTED: VenueStatus.ACCEPTED,
    SchwabStatus.WORKING: VenueStatus.ACCEPTED,
    # A cancel or replace asked for and not yet done: it may still trade.
    SchwabStatus.AWAITING_UR_OUT: VenueStatus.ACCEPTED,
    SchwabStatus.PENDING_CANCEL: VenueStatus.ACCEPTED,
    SchwabStatus.PENDING_REPLACE: VenueStatus.ACCEPTED,
    SchwabStatus.PENDING_RECALL: VenueStatus.ACCEPTED,
    # Schwab does not know: kept working, so it is asked again rather than taken as done.
    SchwabStatus.UNKNOWN: VenueStatus.ACCEPTED,
    SchwabStatus.FILLED: VenueStatus.FILLED,
    SchwabStatus.CANCELED: VenueStatus.CANCELLED,
    # Replaced by a new order (ticklane never replaces): this one trades no more.
    SchwabStatus.REPLACED: VenueStatus.CANCELLED,
    SchwabStatus.REJECTED: VenueStatus.REJECTED,
    SchwabStatus.EXPIRED: VenueStatus.EXPIRED,
}
"""Every Schwab status, mapped explicitly (a status Schwab adds later fails loudly)."""

_BY_WIRE: Final = {s.value: s for s in SchwabStatus}
WORKING: Final = frozenset(s for s, v in STATUSES.items() if v is VenueStatus.ACCEPTED)

_EQUITY: Final = {
    (Side.BUY, PositionEffect.OPEN): EquityInstruction.BUY,
    (Side.SELL, PositionEffect.CLOSE): EquityInstruction.SELL,
    (Side.SELL, PositionEffect.OPEN): EquityInstruction.SELL_SHORT,
    (Side.BUY, PositionEffect.CLOSE): EquityInstruction.BUY_TO_COVER,
}
_OPTION: Final = {
    (Side.BUY, PositionEffect.OPEN): OptionInstruction.BUY_TO_OPEN,
    (Side.BUY, PositionEffect.CLOSE): OptionInstruction.BUY_TO_CLOSE,
    (Side.SELL, PositionEffect.OPEN): OptionInstruction.SELL_TO_OPEN,
    (Side.SELL, PositionEffect.CLOSE): OptionInstruction.SELL_TO_CLOSE,
}
_DURATION: Final = {
    TimeInForce.DAY: Duration.DAY,
    TimeInForce.GTC: Duration.GOOD_TILL_CANCEL,
    TimeInForce.IOC: Duration.IMMEDIATE_OR_CANCEL,
    TimeInForce.FOK: Duration.FILL_OR_KILL,
}


class OrderBuildError(ValueError):
    """An order Schwab cannot take as asked (the order is rejected, never sent)."""


class Fingerprint(msgspec.Struct, frozen=True, array_like=True):
    """What identifies an order at Schwab, which carries no client order id."""

    account_hash: str
    symbol: str
    """The leg's symbol; a multi-leg order's, in leg order, joined by `;`."""
    instruction: str
    """The same for the instructions."""
    quantity: int
    """The legs' quantities summed."""
    order_type: str
    price: str
    """The limit price as a normalised decimal string; "" for none."""


def is_future(symbol: str) -> bool:
    """Whether `symbol` names a future or a future option (Schwab's API trades neither)."""
    return bool(_FUTURE.match(symbol))


def is_option(symbol: str) -> bool:
    """Whether `symbol` is an OSI equity option."""
    return bool(_OSI.match(symbol))


def tick_at(symbol: str, price: int) -> int:
    """The tick at `price` (1e-9): equities a cent (1/100 cent below $1), options a nickel
    below $3 and a dime above (the classic rule; penny-pilot classes trade finer)."""
    dollar = 1_000_000_000
    if is_option(symbol):
        return 50_000_000 if price < 3 * dollar else 100_000_000
    return 10_000_000 if price >= dollar else 100_000


def limit(symbol: str, price: int, side: Side) -> str:
    """A limit price at the tick, never worse than `price`, as the string schwab-py sends."""
    tick = price_to_decimal(tick_at(symbol, price))
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    at_tick = (price_to_decimal(price) / tick).to_integral_value(rounding=rounding) * tick
    return _plain(at_tick)


def trigger(symbol: str, price: int) -> str:
    """A stop trigger at the nearest tick."""
    tick = price_to_decimal(tick_at(symbol, price))
    return _plain((price_to_decimal(price) / tick).to_integral_value() * tick)


def instruction(
    order: Order, symbol: str = "", side: Side | None = None
) -> EquityInstruction | OptionInstruction:
    """A leg's instruction (`symbol` and `side`: the leg's, else the order's) from side and
    position effect."""
    symbol, side = symbol or order.symbol, side or order.side
    if order.position_effect is PositionEffect.REVERSE:
        raise OrderBuildError(
            f"{symbol}: Schwab cannot reverse a position in one order; close, then open"
        )
    table = _OPTION if is_option(symbol) else _EQUITY
    return table[(side, order.position_effect)]


def complex_type(legs: tuple[ComboLeg, ...]) -> ComplexOrderStrategyType:
    """What Schwab calls a combination: a vertical (two options of one right, one long and one
    short), an iron condor (a long and a short put, a long and a short call), else CUSTOM."""
    if not all(is_option(leg.symbol) for leg in legs) or any(abs(leg.ratio) != 1 for leg in legs):
        return ComplexOrderStrategyType.CUSTOM
    rights = [_right(leg.symbol) for leg in legs]
    signs = [leg.ratio for leg in legs]
    if len(legs) == 2 and rights[0] == rights[1] and sorted(signs) == [-1, 1]:
        return ComplexOrderStrategyType.VERTICAL
    by_right = {r: sorted(s for s, lr in zip(signs, rights, strict=True) if lr == r) for r in "CP"}
    if len(legs) == 4 and by_right == {"C": [-1, 1], "P": [-1, 1]}:
        return ComplexOrderStrategyType.IRON_CONDOR
    return ComplexOrderStrategyType.CUSTOM


def _right(symbol: str) -> str:
    """An OSI option's right, C or P (the character before the 8-digit strike)."""
    return symbol[-9]


def _add_leg(
    builder: Any, how: EquityInstruction | OptionInstruction, symbol: str, qty: int
) -> None:
    if isinstance(how, OptionInstruction):
        builder.add_option_leg(how, symbol, qty)
    else:
        builder.add_equity_leg(how, symbol, qty)


def _add_net_price(builder: Any, order: Order, price: int, tick_symbol: str) -> None:
    """A net limit: the combination's price per unit, never worse, as NET_DEBIT or NET_CREDIT.

    Buying at a net above zero pays (a debit), below zero receives (a credit); selling, the
    reverse. Schwab takes the price unsigned."""
    tick = price_to_decimal(tick_at(tick_symbol, abs(price)))
    rounding = ROUND_FLOOR if order.side is Side.BUY else ROUND_CEILING
    net = (price_to_decimal(price) / tick).to_integral_value(rounding=rounding) * tick
    pays = net > 0 if order.side is Side.BUY else net < 0
    if net == 0:
        builder.set_order_type(SchwabOrderType.NET_ZERO)
    else:
        builder.set_order_type(SchwabOrderType.NET_DEBIT if pays else SchwabOrderType.NET_CREDIT)
    builder.set_price(_plain(abs(net)))


def build(order: Order) -> Json:
    """The schwab-py order spec (a dict) for a ticklane order; `OrderBuildError` if unsendable."""
    traded = [leg.symbol for leg in order.legs] or [order.symbol]
    futures = [symbol for symbol in traded if is_future(symbol)]
    if futures:
        raise OrderBuildError(f"{futures[0]}: Schwab cannot trade futures through its API")
    builder = (
        OrderBuilder()
        .set_session(Session.NORMAL)
        .set_duration(_DURATION[order.time_in_force])
        .set_order_strategy_type(OrderStrategyType.SINGLE)
    )
    if order.legs:
        return _build_combo(order, builder)
    _add_leg(builder, instruction(order), order.symbol, order.quantity)
    limit_price, stop_price = order.limit_price, order.stop_price
    match order.order_type:
        case OrderType.MARKET:
            builder.set_order_type(SchwabOrderType.MARKET)
        case OrderType.LIMIT if limit_price is not None:
            builder.set_order_type(SchwabOrderType.LIMIT)
            builder.set_price(limit(order.symbol, limit_price, order.side))
        case OrderType.STOP if stop_price is not None:
            builder.set_order_type(SchwabOrderType.STOP)
            builder.set_stop_price(trigger(order.symbol, stop_price))
        case OrderType.STOP_LIMIT if stop_price is not None and limit_price is not None:
            builder.set_order_type(SchwabOrderType.STOP_LIMIT)
            builder.set_price(limit(order.symbol, limit_price, order.side))
            builder.set_stop_price(trigger(order.symbol, stop_price))
        case _:
            raise OrderBuildError(
                f"{order.order_type.value} order {order.client_order_id} lacks a price"
            )
    spec: Json = builder.build()
    return spec


def _build_combo(order: Order, builder: Any) -> Json:
    builder.set_complex_order_strategy_type(complex_type(order.legs))
    for leg in order.legs:
        how = instruction(order, leg.symbol, leg_side(order, leg))
        _add_leg(builder, how, leg.symbol, order.quantity * abs(leg.ratio))
    match order.order_type:
        case OrderType.MARKET:
            builder.set_order_type(SchwabOrderType.MARKET)
        case OrderType.LIMIT if order.limit_price is not None:
            _add_net_price(builder, order, order.limit_price, order.legs[0].symbol)
        case _:
            raise OrderBuildError(
                f"{order.client_order_id}: Schwab takes a multi-leg order at market or at a "
                f"net limit, not {order.order_type.value}"
            )
    spec: Json = builder.build()
    return spec


def fingerprint(account_hash: str, order: Json) -> Fingerprint:
    """The fingerprint of a spec as sent, or of an order as the venue lists it."""
    legs = order["orderLegCollection"]
    price = order.get("price")
    return Fingerprint(
        account_hash=account_hash,
        symbol=";".join(str(leg["instrument"]["symbol"]) for leg in legs),
        instruction=";".join(str(leg["instruction"]) for leg in legs),
        quantity=sum(int(Decimal(str(leg["quantity"]))) for leg in legs),
        order_type=str(order["orderType"]),
        price="" if price is None else _plain(Decimal(str(price))),
    )


def status_of(order: Json) -> SchwabStatus:
    """The order's Schwab status (`KeyError` for one Schwab added later: fail loudly)."""
    return _BY_WIRE[str(order["status"])]


def venue_order(order: Json, client_order_id: str) -> VenueOrder:
    """What the venue's answer says of an order."""
    filled = int(Decimal(str(order.get("filledQuantity") or 0)))
    status = STATUSES[status_of(order)]
    if status is VenueStatus.ACCEPTED and filled:
        status = VenueStatus.PARTIALLY_FILLED
    return VenueOrder(
        client_order_id=client_order_id,
        venue_order_id=str(order["orderId"]),
        status=status,
        filled_quantity=filled,
        reason=str(order.get("statusDescription") or ""),
    )


def fills(order: Json, client_order_id: str) -> list[Fill]:
    """Every execution of an order, from `orderActivityCollection[].executionLegs[]`."""
    order_id = str(order["orderId"])
    legs = {int(leg.get("legId", i + 1)): leg for i, leg in enumerate(order["orderLegCollection"])}
    found: list[Fill] = []
    for activity in order.get("orderActivityCollection") or []:
        if activity.get("activityType") != "EXECUTION":
            continue
        for execution in activity.get("executionLegs") or []:
            leg = legs[int(execution["legId"])]
            identity = f"{activity['activityId']}-{execution['legId']}"
            found.append(
                Fill(
                    fill_id=ids.fill_id(VENUE, order_id, identity),
                    client_order_id=client_order_id,
                    venue_order_id=order_id,
                    symbol=str(leg["instrument"]["symbol"]),
                    side=Side.BUY if str(leg["instruction"]).startswith("BUY") else Side.SELL,
                    quantity=int(Decimal(str(execution["quantity"]))),
                    price=decimal_to_price(Decimal(str(execution["price"]))),
                    ts_event=nanos(str(execution["time"])),
                )
            )
    return found


def nanos(moment: str) -> int:
    """A Schwab time as integer ns since the epoch."""
    parsed = datetime.strptime(moment, _TIME).astimezone(UTC)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros beyond the cents: `600.1` -> `600.10`."""
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"
