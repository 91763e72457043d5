"""Target-position netting: the orders that take a position to the target a signal states.

Pure: takes the ledger's position and working orders as numbers, returns orders with
deterministic ids. A reversal is one order where the broker allows it (the old system's
close-then-open was the failure this fixes); otherwise a two-step whose second leg is released
only once the first has filled, decided from the ledger so that it survives a crash in between.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from ticklane import ids
from ticklane.trading import (
    ComboLeg,
    Order,
    OrderStatus,
    OrderType,
    PositionEffect,
    Side,
    Signal,
    TimeInForce,
)


class BrokerCaps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a broker lets one order do."""

    can_reverse_in_one_order: bool
    """Whether one order may close a position and open the opposite one (long 1 -> sell 2)."""


COMBO_CAPS = BrokerCaps(can_reverse_in_one_order=False)
"""A combination is never reversed in one order: every leg would cross zero at once, and no
venue takes "to close" and "to open" of one leg in one order."""


class Leg(msgspec.Struct, frozen=True):
    """One order of a plan: direction, size, its place in the plan, and whether it only closes."""

    side: Side
    quantity: int
    leg: int
    reduces_only: bool
    """The leg only brings the position toward zero, never past it (allowed while REDUCING)."""


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def is_reducing(start: int, end: int) -> bool:
    """Whether moving a position from `start` to `end` only reduces it: toward zero, not past."""
    return abs(end) < abs(start) and _sign(end) in {0, _sign(start)}


def _leg(start: int, end: int, leg: int) -> Leg:
    side = Side.BUY if end > start else Side.SELL
    return Leg(side=side, quantity=abs(end - start), leg=leg, reduces_only=is_reducing(start, end))


def plan_legs(position: int, target: int, caps: BrokerCaps, pending: int = 0) -> list[Leg]:
    """Legs that take `position + pending` to `target`; `pending` is the signed working quantity.

    Netting from `position + pending` means a working order is counted as if it will fill, so a
    repeated signal never doubles it. Zero delta gives no leg. A plan that crosses zero is one leg
    when `caps` allow, else leg 0 to flat and leg 1 from flat to the target.
    """
    start = position + pending
    if target == start:
        return []
    crosses = start != 0 and target != 0 and _sign(start) != _sign(target)
    if crosses and not caps.can_reverse_in_one_order:
        return [_leg(start, 0, 0), _leg(0, target, 1)]
    return [_leg(start, target, 0)]


def orders_for_signal(
    signal: Signal,
    position: int,
    pending: int,
    caps: BrokerCaps,
    ts: int,
    *,
    order_type: OrderType = OrderType.MARKET,
    time_in_force: TimeInForce = TimeInForce.DAY,
) -> list[Order]:
    """NEW orders that answer a signal, ids `client_order_id(signal_id, leg)`, stamped `ts`."""
    legs = plan_legs(position, signal.target_position, caps, pending)
    return [
        Order(
            client_order_id=ids.client_order_id(signal.signal_id, leg.leg),
            signal_id=signal.signal_id,
            strategy=signal.strategy,
            symbol=signal.symbol,
            side=leg.side,
            quantity=leg.quantity,
            order_type=order_type,
            status=OrderStatus.NEW,
            ts_event=ts,
            time_in_force=time_in_force,
            leg=leg.leg,
            instrument_id=signal.instrument_id,
            position_effect=position_effect(leg, position, position + pending),
            legs=signal.legs,
        )
        for leg in legs
    ]


class ComboError(ValueError):
    """A multi-leg signal that cannot be netted: a malformed combination, or leg positions that
    are not a whole number of units of it."""


def check_combo(legs: Sequence[ComboLeg]) -> None:
    """Raise `ComboError` unless `legs` make a combination: two or more distinct symbols, each
    with a non-zero ratio, and no common factor left in the ratios (1:2 rather than 2:4, so
    one combination has one name for its unit)."""
    if len(legs) < 2:
        raise ComboError(f"a combination needs two or more legs, got {len(legs)}")
    symbols = [leg.symbol for leg in legs]
    if len(set(symbols)) != len(symbols):
        raise ComboError(f"a combination names a leg twice: {', '.join(symbols)}")
    if any(leg.ratio == 0 for leg in legs):
        raise ComboError("a combination's leg has ratio 0")
    common = 0
    for leg in legs:
        common = _gcd(common, abs(leg.ratio))
    if common != 1:
        raise ComboError(f"leg ratios share the factor {common}: divide them by it")


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def combo_position(legs: Sequence[ComboLeg], positions: Mapping[str, int]) -> int:
    """Units of the combination the leg positions hold; `ComboError` when they are not a whole
    number of units (a leg traded on its own, or a multi-leg order filled on some legs only),
    since netting a combination from such legs would leave them further out of proportion."""
    first = legs[0]
    held = positions.get(first.symbol, 0)
    units, rest = divmod(held, first.ratio)
    if rest or any(positions.get(leg.symbol, 0) != units * leg.ratio for leg in legs):
        found = ", ".join(f"{leg.symbol} {positions.get(leg.symbol, 0)}" for leg in legs)
        ratios = ":".join(str(leg.ratio) for leg in legs)
        raise ComboError(f"leg positions ({found}) are not whole units of {ratios}")
    return units


def leg_side(order: Order, leg: ComboLeg) -> Side:
    """The side one leg of a multi-leg order trades: the order's for a long leg, else the other."""
    if leg.ratio > 0:
        return order.side
    return Side.SELL if order.side is Side.BUY else Side.BUY


def refusal(signal: Signal, ts: int) -> Order:
    """The order a signal that cannot be netted is recorded as, before it is rejected with the
    reason: the whole target, at least one unit, so the rejection says what was asked."""
    return Order(
        client_order_id=ids.client_order_id(signal.signal_id, 0),
        signal_id=signal.signal_id,
        strategy=signal.strategy,
        symbol=signal.symbol,
        side=Side.SELL if signal.target_position < 0 else Side.BUY,
        quantity=max(abs(signal.target_position), 1),
        order_type=OrderType.MARKET,
        status=OrderStatus.NEW,
        ts_event=ts,
        instrument_id=signal.instrument_id,
        legs=signal.legs,
    )


def position_effect(leg: Leg, position: int, start: int) -> PositionEffect:
    """CLOSE only for a leg that reduces the filled position and, if the working orders fill,
    that position too: a venue judges "to close" against what it holds now, and marking a leg
    CLOSE that could open would be refused (or silently turned into an open)."""
    change = leg.quantity if leg.side is Side.BUY else -leg.quantity
    if leg.leg == 0 and start != 0 and _sign(start + change) == -_sign(start):
        return PositionEffect.REVERSE
    if leg.reduces_only and is_reducing(position, position + change):
        return PositionEffect.CLOSE
    return PositionEffect.OPEN


@dataclass(frozen=True, slots=True)
class LegRelease:
    """What to do with a signal's unsent legs: send these, abandon (cancel locally) those."""

    send: tuple[Order, ...]
    abandon: tuple[Order, ...]


def release_legs(orders: Sequence[Order]) -> LegRelease:
    """Decide a signal's NEW legs from its orders in the ledger: sent in turn, each after a fill.

    A NEW leg is sent once every earlier leg is FILLED. If an earlier leg ended any other way
    (cancelled, expired, rejected: the position is not where the plan assumed), the later legs
    are abandoned rather than sent with a stale size; the next signal nets from the real position.
    """
    send: list[Order] = []
    abandon: list[Order] = []
    blocked = False
    failed = False
    for order in sorted(orders, key=lambda o: o.leg):
        if order.status is OrderStatus.NEW:
            if failed:
                abandon.append(order)
            elif not blocked:
                send.append(order)
            blocked = True  # a leg after this one waits for this one's fill
        elif order.status in _FAILED:
            failed = True
        elif order.status is not OrderStatus.FILLED:
            blocked = True  # still working
    return LegRelease(tuple(send), tuple(abandon))


_FAILED = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})


def pending_quantity(orders: Sequence[Order]) -> int:
    """Signed quantity of orders not yet finished: unfilled remainder of working and unsent legs."""
    total = 0
    for order in orders:
        if order.status in _FINISHED:
            continue
        remaining = order.quantity - order.filled_quantity
        total += remaining if order.side is Side.BUY else -remaining
    return total


_FINISHED = frozenset({*_FAILED, OrderStatus.FILLED})
