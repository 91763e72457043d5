"""Orders and fills as the fake holds them, and the one table that says how an order's status moves.

Pure: no I/O and no clock; the venue passes times in. Prices are integers at 1e-9 and
unsigned; a net-priced order's direction is in its `orderType` (NET_DEBIT or NET_CREDIT), as
on the wire. Schwab orders carry no client id, so nothing here can tell two equal orders
apart except their order ids.
"""

from enum import StrEnum
from typing import Final

import msgspec

from fakes.schwab.vocab import (
    OPENING,
    TERMINAL,
    AssetType,
    ComplexOrderStrategyType,
    Duration,
    Instruction,
    OrderType,
    Session,
    Status,
)


class OrderLeg(msgspec.Struct, frozen=True):
    """One leg as the client sent it: a positive `quantity`, the direction in `instruction`."""

    asset_type: AssetType
    symbol: str
    instruction: Instruction
    quantity: int

    @property
    def position_effect(self) -> str:
        """OPENING or CLOSING, from the instruction (the wire's `positionEffect`)."""
        return "OPENING" if self.instruction in OPENING else "CLOSING"


class FakeOrder(msgspec.Struct, frozen=True):
    """One order at one point of its life (a row of the record's `orders` table).

    `quantity` is the order's own (a vertical of 2 contracts a leg has quantity 2);
    `market_ts` is the market time when the order arrived: only ticks after it fill the
    order. `visible_at` is when order lists start showing it (later than `entered_at` only
    while the list-lag fault is armed).
    """

    id: int
    account: str
    order_type: OrderType
    session: Session
    duration: Duration
    strategy: ComplexOrderStrategyType
    quantity: int
    legs: tuple[OrderLeg, ...]
    status: Status
    entered_at: int
    updated_at: int
    market_ts: int
    visible_at: int
    price: int | None = None
    stop_price: int | None = None
    close_at: int | None = None
    status_description: str | None = None
    replaces_order_id: int | None = None
    replaced_by_order_id: int | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the order can change no more."""
        return self.status in TERMINAL


class FakeFill(msgspec.Struct, frozen=True):
    """One execution of one leg (a row of the record's `fills` table).

    `activity` numbers the order's executions from 1: legs filled together (a net-priced
    order) share one, and become one `orderActivityCollection` entry. `filled_at` is the
    ts_event of the tick that filled the leg; `recorded_at` the wall clock when it was written.
    """

    fill_id: str
    order_id: int
    account: str
    leg: int
    symbol: str
    asset_type: AssetType
    instruction: Instruction
    quantity: int
    price: int
    filled_at: int
    recorded_at: int
    activity: int
    seq: int = 0


class OrderEvent(StrEnum):
    """What happens to an order at the fake."""

    ROUTE = "route"
    """Accepted and working: ACCEPTED becomes WORKING."""
    FILL = "fill"
    """Every leg has filled."""
    CANCEL = "cancel"
    REPLACE = "replace"
    """A replacement took its place under a new order id: it ends REPLACED."""
    REJECT = "reject"
    EXPIRE = "expire"


class IllegalTransitionError(ValueError):
    """An event that cannot happen to an order in its status (e.g. cancelling a filled order)."""

    def __init__(self, status: Status, event: OrderEvent) -> None:
        super().__init__(f"an order that is {status.value} cannot take {event.value}")
        self.status = status
        self.event = event


_A, _W = Status.ACCEPTED, Status.WORKING
TRANSITIONS: Final[dict[tuple[Status, OrderEvent], Status]] = {
    (_A, OrderEvent.ROUTE): _W,
    (_A, OrderEvent.REJECT): Status.REJECTED,
    (_A, OrderEvent.CANCEL): Status.CANCELED,
    # A market order on a symbol with a quote fills while the POST is still being answered.
    (_A, OrderEvent.FILL): Status.FILLED,
    (_W, OrderEvent.FILL): Status.FILLED,
    (_W, OrderEvent.CANCEL): Status.CANCELED,
    (_W, OrderEvent.REPLACE): Status.REPLACED,
    (_W, OrderEvent.EXPIRE): Status.EXPIRED,
    (_W, OrderEvent.REJECT): Status.REJECTED,  # a rejection after the 201
}
"""Every allowed edge; anything else raises `IllegalTransitionError` and changes nothing.

The fake skips the PENDING_CANCEL and PENDING_REPLACE steps a real book passes through: a
cancel or replace is done by the time its answer leaves.
"""


def transition(order: FakeOrder, event: OrderEvent, now: int) -> FakeOrder:
    """The order after `event` at wall time `now`; `IllegalTransitionError` if not allowed."""
    target = TRANSITIONS.get((order.status, event))
    if target is None:
        raise IllegalTransitionError(order.status, event)
    changes: dict[str, object] = {"status": target, "updated_at": now}
    if target in TERMINAL:
        changes["close_at"] = now
    return msgspec.structs.replace(order, **changes)


def legs_filled(order: FakeOrder, fills: list[FakeFill]) -> list[int]:
    """Quantity filled per leg, in leg order."""
    done = [0] * len(order.legs)
    for fill in fills:
        if fill.order_id == order.id and 0 <= fill.leg < len(done):
            done[fill.leg] += fill.quantity
    return done


def order_filled(order: FakeOrder, fills: list[FakeFill]) -> int:
    """The order's `filledQuantity`: whole units of the order (a spread fills leg by leg)."""
    ratios = [leg.quantity // order.quantity or 1 for leg in order.legs]
    return min(done // ratio for done, ratio in zip(legs_filled(order, fills), ratios, strict=True))


def is_complete(order: FakeOrder, fills: list[FakeFill]) -> bool:
    """Whether every leg has filled its whole quantity."""
    return all(
        done >= leg.quantity
        for done, leg in zip(legs_filled(order, fills), order.legs, strict=True)
    )
