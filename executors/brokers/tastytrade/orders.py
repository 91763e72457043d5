"""Orders at TastyTrade: ticklane's `Order` to the SDK's order model, and its answers back.

Pure. Prices become `Decimal` here and only here, rounded to the instrument's tick away from
a worse price (a buy limit down, a sell limit up), and signed as the SDK wants: negative is a
debit (a buy), positive a credit (a sell). Every order carries its client order id as
`external-identifier` (how a lost answer is found again) and ticklane's `source`. Futures take
the plain actions Buy and Sell; everything else says whether it opens or closes, and a closing
order asks for strict position-effect validation, so the venue refuses it rather than turning
it into an opening order when the position is not there.

A multi-leg order (`Order.legs`: a vertical, an iron condor) is one TastyTrade order with a
leg per symbol, each trading the order's quantity times its ratio, priced at the net per unit
(TastyTrade's price is per unit of the legs' common size, which the ratios, kept coprime,
make the order's quantity); a net below zero is a credit.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from tastytrade.order import (
    AdvancedInstructions,
    InstrumentType,
    Leg,
    LimitOrder,
    MarketOrder,
    OrderAction,
    OrderTimeInForce,
    PlacedOrder,
    StopLimitOrder,
    StopOrder,
)
from tastytrade.order import OrderStatus as TTStatus

from executors.brokers.base import VenueOrder, VenueStatus
from executors.brokers.tastytrade.symbols import Instrument
from executors.netting import leg_side
from ticklane import ids
from ticklane.trading import Fill, Order, OrderType, PositionEffect, Side, TimeInForce
from ticklane.units import decimal_to_price, price_to_decimal

VENUE: Final = "tastytrade"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

AnyOrder = MarketOrder | LimitOrder | StopOrder | StopLimitOrder

STATUSES: Final[dict[TTStatus, VenueStatus]] = {
    # Submission and working phases (developer.tastytrade.com/order-flow) are one state here:
    # the venue has the order and it may still trade.
    TTStatus.RECEIVED: VenueStatus.ACCEPTED,
    TTStatus.ROUTED: VenueStatus.ACCEPTED,
    TTStatus.IN_FLIGHT: VenueStatus.ACCEPTED,
    TTStatus.CONTINGENT: VenueStatus.ACCEPTED,
    TTStatus.LIVE: VenueStatus.ACCEPTED,
    TTStatus.CANCEL_REQUESTED: VenueStatus.ACCEPTED,
    TTStatus.REPLACE_REQUESTED: VenueStatus.ACCEPTED,
    TTStatus.FILLED: VenueStatus.FILLED,
    TTStatus.CANCELLED: VenueStatus.CANCELLED,
    TTStatus.REJECTED: VenueStatus.REJECTED,
    TTStatus.EXPIRED: VenueStatus.EXPIRED,
    # Removed by the venue (e.g. at a session's end); partly: some of it had filled.
    TTStatus.REMOVED: VenueStatus.CANCELLED,
    TTStatus.PARTIALLY_REMOVED: VenueStatus.CANCELLED,
}
"""Every TastyTrade status, mapped explicitly (a status the SDK adds later fails loudly)."""

WORKING: Final = frozenset(s for s, v in STATUSES.items() if v is VenueStatus.ACCEPTED)

_TIME_IN_FORCE: Final = {
    TimeInForce.DAY: OrderTimeInForce.DAY,
    TimeInForce.GTC: OrderTimeInForce.GTC,
    TimeInForce.IOC: OrderTimeInForce.IOC,
}

_ACTIONS: Final = {
    (Side.BUY, PositionEffect.OPEN): OrderAction.BUY_TO_OPEN,
    (Side.BUY, PositionEffect.CLOSE): OrderAction.BUY_TO_CLOSE,
    (Side.SELL, PositionEffect.OPEN): OrderAction.SELL_TO_OPEN,
    (Side.SELL, PositionEffect.CLOSE): OrderAction.SELL_TO_CLOSE,
}


class OrderBuildError(ValueError):
    """An order TastyTrade cannot take as asked (the order is rejected, never sent)."""


def action(order: Order, instrument: Instrument, side: Side | None = None) -> OrderAction:
    """A leg's action (`side`: the leg's, else the order's): Buy/Sell for futures, the four
    open/close actions otherwise."""
    side = side or order.side
    if instrument.kind is InstrumentType.FUTURE:
        return OrderAction.BUY if side is Side.BUY else OrderAction.SELL
    if order.position_effect is PositionEffect.REVERSE:
        raise OrderBuildError(
            f"{order.symbol}: TastyTrade reverses only futures in one order; this "
            f"{instrument.kind.value} must be closed, then opened"
        )
    return _ACTIONS[(side, order.position_effect)]


def venue_legs(order: Order, instruments: Sequence[Instrument]) -> list[Leg]:
    """The SDK legs: the order's one, or one per `Order.legs` (`instruments` in leg order)."""
    if not order.legs:
        [instrument] = instruments
        return [
            Leg(
                instrument_type=instrument.kind,
                symbol=instrument.venue_symbol,
                action=action(order, instrument),
                quantity=order.quantity,
            )
        ]
    if len(instruments) != len(order.legs):
        raise OrderBuildError(f"{order.client_order_id}: an instrument is needed for each leg")
    return [
        Leg(
            instrument_type=instrument.kind,
            symbol=instrument.venue_symbol,
            action=action(order, instrument, leg_side(order, leg)),
            quantity=order.quantity * abs(leg.ratio),
        )
        for leg, instrument in zip(order.legs, instruments, strict=True)
    ]


def limit(price: int, side: Side, instrument: Instrument) -> Decimal:
    """A limit price at the tick, never worse than `price`, signed debit (-) or credit (+)."""
    tick = price_to_decimal(instrument.tick_at(price))
    exact = price_to_decimal(price)
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    at_tick = (exact / tick).to_integral_value(rounding=rounding) * tick
    return -at_tick if side is Side.BUY else at_tick


def trigger(price: int, instrument: Instrument) -> Decimal:
    """A stop trigger at the nearest tick (a trigger has no better or worse side)."""
    tick = price_to_decimal(instrument.tick_at(price))
    return (price_to_decimal(price) / tick).to_integral_value() * tick


def build(order: Order, instruments: Sequence[Instrument], source: str) -> AnyOrder:
    """The SDK order for a ticklane order, `instruments` the order's one or its legs' in
    order; raises `OrderBuildError` for what cannot be sent."""
    tif = _TIME_IN_FORCE.get(order.time_in_force)
    if tif is None:
        raise OrderBuildError(f"TastyTrade has no time in force {order.time_in_force.value}")
    if order.legs and order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        raise OrderBuildError(
            f"{order.client_order_id}: TastyTrade takes no stop order with several legs"
        )
    legs = venue_legs(order, instruments)
    # A net price moves by its first leg's tick, as the venue prices a spread.
    instrument = instruments[0]
    strict = (
        AdvancedInstructions(strict_position_effect_validation=True)
        if order.position_effect is PositionEffect.CLOSE
        and any(i.kind is not InstrumentType.FUTURE for i in instruments)
        else None
    )
    cid = order.client_order_id
    limit_price, stop_price = order.limit_price, order.stop_price
    match order.order_type:
        case OrderType.MARKET:
            return MarketOrder(
                time_in_force=tif,
                legs=legs,
                external_identifier=cid,
                source=source,
                advanced_instructions=strict,
            )
        case OrderType.LIMIT if limit_price is not None:
            return LimitOrder(
                price=limit(limit_price, order.side, instrument),
                time_in_force=tif,
                legs=legs,
                external_identifier=cid,
                source=source,
                advanced_instructions=strict,
            )
        case OrderType.STOP if stop_price is not None:
            return StopOrder(
                stop_trigger=trigger(stop_price, instrument),
                time_in_force=tif,
                legs=legs,
                external_identifier=cid,
                source=source,
                advanced_instructions=strict,
            )
        case OrderType.STOP_LIMIT if stop_price is not None and limit_price is not None:
            return StopLimitOrder(
                price=limit(limit_price, order.side, instrument),
                stop_trigger=trigger(stop_price, instrument),
                time_in_force=tif,
                legs=legs,
                external_identifier=cid,
                source=source,
                advanced_instructions=strict,
            )
    raise OrderBuildError(f"{order.order_type.value} order {order.client_order_id} lacks a price")


def venue_order(placed: PlacedOrder) -> VenueOrder:
    """What the venue's answer says of an order."""
    filled = sum(int(f.quantity) for leg in placed.legs for f in leg.fills or [])
    status = STATUSES[placed.status]
    if status is VenueStatus.ACCEPTED and filled:
        status = VenueStatus.PARTIALLY_FILLED
    return VenueOrder(
        client_order_id=placed.external_identifier or "",
        venue_order_id=str(placed.id),
        status=status,
        filled_quantity=filled,
        reason=placed.reject_reason or "",
    )


def fills(placed: PlacedOrder, symbol_of: dict[str, str]) -> list[Fill]:
    """Every fill of a placed order; `symbol_of` maps venue symbols to ticklane's."""
    return [
        Fill(
            fill_id=ids.fill_id(VENUE, str(placed.id), info.fill_id),
            client_order_id=placed.external_identifier or "",
            venue_order_id=str(placed.id),
            symbol=symbol_of.get(leg.symbol, leg.symbol),
            side=Side.SELL if leg.action.multiplier < 0 else Side.BUY,
            quantity=int(info.quantity),
            price=decimal_to_price(info.fill_price),
            ts_event=nanos(info.filled_at),
        )
        for leg in placed.legs
        for info in leg.fills or []
    ]


def nanos(moment: datetime) -> int:
    """Integer ns since the epoch, exactly (no float on the way)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
