"""Orders and fills as the fake holds them, and the one table that says how an order's status moves.

Pure: no I/O and no clock; the venue passes times in. Prices are integers at 1e-9 and
unsigned, with their `price_effect` beside them, exactly as the wire splits them.
"""

from enum import StrEnum
from typing import Final

import msgspec

from fakes.tastytrade.vocab import (
    TERMINAL,
    InstrumentType,
    OrderAction,
    OrderStatus,
    OrderType,
    PriceEffect,
    TimeInForce,
)


class OrderLeg(msgspec.Struct, frozen=True):
    """One leg as the client sent it; `quantity` is positive, `action` carries the direction."""

    instrument_type: InstrumentType
    symbol: str
    action: OrderAction
    quantity: int


class FakeOrder(msgspec.Struct, frozen=True):
    """One order at one point of its life (a row of the record's `orders` table).

    `market_ts` is the market time (a tick's ts_event) when the order arrived: only ticks
    after it fill the order, so re-reading md.* after a restart never fills it in the past.
    `visible_at` is when order lists start showing it (later than `received_at` only while
    the list-lag fault is armed).
    """

    id: int
    account: str
    order_type: OrderType
    time_in_force: TimeInForce
    legs: tuple[OrderLeg, ...]
    status: OrderStatus
    received_at: int
    updated_at: int
    market_ts: int
    visible_at: int
    external_identifier: str | None = None
    source: str | None = None
    price: int | None = None
    price_effect: PriceEffect | None = None
    stop_trigger: int | None = None
    gtc_date: str | None = None
    live_at: int | None = None
    terminal_at: int | None = None
    cancelled_at: int | None = None
    reject_reason: str | None = None
    replaces_order_id: int | None = None
    replacing_order_id: int | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the order can change no more."""
        return self.status in TERMINAL


class FakeFill(msgspec.Struct, frozen=True):
    """One execution of one leg (a row of the record's `fills` table).

    `filled_at` is the ts_event of the tick that filled it (market time, as the paper venue's
    fills carry); `recorded_at` the wall clock when the fake wrote it.
    """

    fill_id: str
    order_id: int
    account: str
    leg: int
    symbol: str
    instrument_type: InstrumentType
    action: OrderAction
    quantity: int
    price: int
    filled_at: int
    recorded_at: int
    seq: int = 0


class OrderEvent(StrEnum):
    """What happens to an order at the fake."""

    ROUTE = "route"
    """Accepted and working: Received becomes Live."""
    FILL = "fill"
    """Every leg has filled."""
    CANCEL = "cancel"
    REPLACE = "replace"
    """A replacement took its place: it ends Cancelled, pointing at the new order."""
    REJECT = "reject"
    EXPIRE = "expire"


class IllegalTransitionError(ValueError):
    """An event that cannot happen to an order in its status (e.g. cancelling a filled order)."""

    def __init__(self, status: OrderStatus, event: OrderEvent) -> None:
        super().__init__(f"an order that is {status.value} cannot take {event.value}")
        self.status = status
        self.event = event


_R, _L = OrderStatus.RECEIVED, OrderStatus.LIVE
TRANSITIONS: Final[dict[tuple[OrderStatus, OrderEvent], OrderStatus]] = {
    (_R, OrderEvent.ROUTE): _L,
    (_R, OrderEvent.REJECT): OrderStatus.REJECTED,
    (_R, OrderEvent.CANCEL): OrderStatus.CANCELLED,
    # A market order on a symbol with a quote fills while the submit is still being answered,
    # before anyone saw it Live; real orders pass Routed and In Flight on the way.
    (_R, OrderEvent.FILL): OrderStatus.FILLED,
    (_L, OrderEvent.FILL): OrderStatus.FILLED,
    (_L, OrderEvent.CANCEL): OrderStatus.CANCELLED,
    (_L, OrderEvent.REPLACE): OrderStatus.CANCELLED,
    (_L, OrderEvent.EXPIRE): OrderStatus.EXPIRED,
    (_L, OrderEvent.REJECT): OrderStatus.REJECTED,  # a rejection after the 201 (brokers.md 2d)
}
"""Every allowed edge; anything else raises `IllegalTransitionError` and changes nothing."""


def transition(order: FakeOrder, event: OrderEvent, now: int) -> FakeOrder:
    """The order after `event` at wall time `now`; `IllegalTransitionError` if not allowed."""
    target = TRANSITIONS.get((order.status, event))
    if target is None:
        raise IllegalTransitionError(order.status, event)
    changes: dict[str, object] = {"status": target, "updated_at": now}
    if target is OrderStatus.LIVE:
        changes["live_at"] = now
    if target in TERMINAL:
        changes["terminal_at"] = now
    if target is OrderStatus.CANCELLED:
        changes["cancelled_at"] = now
    return msgspec.structs.replace(order, **changes)


def legs_filled(order: FakeOrder, fills: list[FakeFill]) -> list[int]:
    """Quantity filled per leg, in leg order."""
    done = [0] * len(order.legs)
    for fill in fills:
        if fill.order_id == order.id and 0 <= fill.leg < len(done):
            done[fill.leg] += fill.quantity
    return done


def is_complete(order: FakeOrder, fills: list[FakeFill]) -> bool:
    """Whether every leg has filled its whole quantity."""
    return all(
        done >= leg.quantity
        for done, leg in zip(legs_filled(order, fills), order.legs, strict=True)
    )
