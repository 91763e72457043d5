"""The broker interface every adapter implements, and the venue facts it returns.

The executor talks to a venue only through `Broker`: submit, cancel, lookup by client order
id, open orders, positions; what the venue pushes (order updates and fills, as a real venue's
stream delivers them) is drained with `updates`, and fills since a cursor are the polling
fallback that reconciliation uses to catch what a stream missed. Pushed updates may come
late, twice or out of order: the executor is idempotent on fill ids and its order table
ignores stale statuses. A call whose answer is lost raises
`AmbiguousAnswerError`; the executor then resolves the order by `lookup`, never by sending it
again (docs/design.md, "Orders").
"""

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

import msgspec

from executors.netting import BrokerCaps
from ticklane.control import KillSwitchState
from ticklane.trading import Fill, Order


class VenueStatus(StrEnum):
    """An order's status as a venue reports it (each adapter maps its venue's strings here)."""

    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class VenueOrder(msgspec.Struct, frozen=True):
    """What the venue knows of one order."""

    client_order_id: str
    venue_order_id: str
    status: VenueStatus
    filled_quantity: int = 0
    reason: str = ""


class VenueFill(msgspec.Struct, frozen=True):
    """A fill and its place in the venue's fill sequence (the cursor `fills_since` takes)."""

    cursor: int
    fill: Fill


VenueUpdate = VenueOrder | Fill
"""Something a venue pushed: an order's new status, or a fill (which may name only the
venue's order id)."""


class TradingPermit(msgspec.Struct, frozen=True):
    """What a venue allows now, whatever the kill switch says: everything (ACTIVE), only
    reducing orders, or nothing; and why, in words that say how to fix it."""

    state: KillSwitchState = KillSwitchState.ACTIVE
    reason: str = ""


class BrokerError(RuntimeError):
    """A broker call failed with a definite answer: nothing happened at the venue."""


class AmbiguousAnswerError(BrokerError):
    """A call's answer was lost (timeout, 5xx, lost connection): the venue may have acted."""


class Broker(Protocol):
    """A venue the executor can trade at."""

    name: str

    def caps_for(self, symbol: str) -> BrokerCaps:
        """What one order in `symbol` may do here (a venue may reverse futures in one order
        and equities only in two)."""
        ...

    def trading_state(self) -> TradingPermit:
        """What the venue allows now (a login about to expire allows only reducing)."""
        ...

    def tick_size(self, symbol: str, price: int) -> int | None:
        """The instrument's tick at `price` (1e-9 units), None where the venue does not say."""
        ...

    def submit(self, order: Order) -> VenueOrder:
        """Send an order; a client order id the venue already holds returns that order."""
        ...

    def cancel(self, client_order_id: str) -> VenueOrder | None:
        """Ask to cancel an order; None when the venue does not know it."""
        ...

    def lookup(self, client_order_id: str) -> VenueOrder | None:
        """The venue's view of an order by client order id; None when it never received it."""
        ...

    def open_orders(self) -> list[VenueOrder]:
        """Orders still working at the venue."""
        ...

    def fills_since(self, cursor: int) -> list[VenueFill]:
        """Fills after `cursor` (0: all), in the venue's order (the polling fallback)."""
        ...

    def updates(self) -> list[VenueUpdate]:
        """What the venue pushed since the last call, oldest first; never blocks."""
        ...

    def positions(self) -> dict[str, int]:
        """Net signed position per symbol across the account, as the venue holds it."""
        ...

    def pump(self) -> None:
        """Let the venue make progress (read market data, match); real venues push instead."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class SubmitsMany(Protocol):
    """A venue that takes many independent orders at once (one write, or sent without
    waiting for each other's answers); the executor uses it for a batch's orders."""

    def submit_all(self, orders: Sequence[Order]) -> list[VenueOrder | BrokerError]:
        """Each order's answer as `submit` gives it, or the `BrokerError` it met, in order."""
        ...
