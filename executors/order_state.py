"""An order's life: one declarative transition table, the tiny machine that applies it, and fills.

Pure: no I/O and no clock. A redelivered venue message finds an ignore entry in the table (a
redelivered fill, its fill id already counted), so replays never move an order back.

Three outcomes per (status, event):
- an edge to a status: the order moves (a self-loop is a real, recorded edge);
- `Ignore(reason)`: a message that real venues do produce late or twice (a submit answer arriving
  after the fill, a cancel confirmation after the fill, a redelivered event). The order keeps its
  status and the caller logs and counts the reason;
- no entry: a contradiction (our own bug, or a venue breaking its protocol). `IllegalTransition`
  is raised and the order is unchanged; the caller halts that symbol and reconciles.

Two choices a reader must know:
- `UNKNOWN` (the broker's answer was lost) is left only by a broker fact: a pushed status or fill,
  or the answer of a lookup by client order id. It is never left by sending the order again,
  except through `RESOLVED_NOT_FOUND`, which puts the order back to `PENDING_SUBMIT` only when the
  venue has never acknowledged it and nothing of it has filled.
- `ACCEPTED` and `PARTIALLY_FILLED` are one venue state (working) told apart only by whether fills
  have been counted, so `apply_event` derives which from `filled_quantity` (a table edge to
  SUBMITTED or ACCEPTED lands on PARTIALLY_FILLED when fills are held); and status edges for
  fills are taken only through `apply_fill`, which knows the quantity. Hence, on every `Order` this
  module returns: FILLED iff filled_quantity == quantity, PARTIALLY_FILLED implies a part is
  filled, NEW, PENDING_SUBMIT, SUBMITTED, ACCEPTED and REJECTED imply nothing is.
"""

from collections.abc import Sequence, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import msgspec

from ticklane.trading import Fill, Order, OrderStatus, Side


class OrderEvent(StrEnum):
    """Something that happens to an order; the values are the strings the ledger records."""

    # From the executor itself.
    SUBMIT_REQUESTED = "submit_requested"
    """The order is written to the ledger, about to be sent (write-ahead)."""
    SUBMIT_SENT = "submit_sent"
    """The submit call returned: the venue has the order, not yet working."""
    CANCEL_REQUESTED = "cancel_requested"
    ANSWER_LOST = "answer_lost"
    """A submit or cancel call ended without an answer (timeout, 5xx, lost connection, crash)."""
    # From the venue, pushed or read by a lookup: a lookup's answer is a late venue answer.
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_REJECTED = "cancel_rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    # Only a lookup can say these: the venue has the order but it is not working yet, or it has
    # never heard of the order.
    RESOLVED_SUBMITTED = "resolved_submitted"
    RESOLVED_NOT_FOUND = "resolved_not_found"


class IgnoreReason(StrEnum):
    """Why an event left an order's status as it was (a metric label)."""

    DUPLICATE = "duplicate"
    """The same event again: at-least-once delivery or a replayed signal."""
    STALE = "stale"
    """A venue message overtaken by a later one (e.g. the submit answer after the fill)."""
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    """A cancel that raced the order's end, or a cancel confirmation after the order filled."""


@dataclass(frozen=True, slots=True)
class Ignore:
    """A table entry: the event is expected here and leaves the status unchanged."""

    reason: IgnoreReason


# Short aliases keep the table one readable edge per line.
S = OrderStatus
E = OrderEvent
_DUP: Final = Ignore(IgnoreReason.DUPLICATE)
_STALE: Final = Ignore(IgnoreReason.STALE)
_NOTHING: Final = Ignore(IgnoreReason.NOTHING_TO_CANCEL)

TRANSITIONS: Final[dict[tuple[OrderStatus, OrderEvent], OrderStatus | Ignore]] = {
    # --- NEW: built by netting, not yet written as an intent to send.
    (S.NEW, E.SUBMIT_REQUESTED): S.PENDING_SUBMIT,
    (S.NEW, E.REJECTED): S.REJECTED,  # refused by pre-trade risk: never leaves the executor
    (S.NEW, E.CANCEL_REQUESTED): S.CANCELLED,  # never sent (e.g. leg 1 after leg 0 did not fill)
    # --- PENDING_SUBMIT: in the ledger; the submit call may or may not have reached the venue.
    (S.PENDING_SUBMIT, E.SUBMIT_REQUESTED): _DUP,  # replayed signal: must not send again
    (S.PENDING_SUBMIT, E.SUBMIT_SENT): S.SUBMITTED,
    (S.PENDING_SUBMIT, E.ACCEPTED): S.ACCEPTED,  # a venue that answers the call with "working"
    (S.PENDING_SUBMIT, E.REJECTED): S.REJECTED,
    (S.PENDING_SUBMIT, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,  # fill pushed before the answer
    (S.PENDING_SUBMIT, E.FILLED): S.FILLED,
    (S.PENDING_SUBMIT, E.CANCELLED): S.CANCELLED,  # IOC with nothing to meet, before the answer
    (S.PENDING_SUBMIT, E.EXPIRED): S.EXPIRED,
    (S.PENDING_SUBMIT, E.ANSWER_LOST): S.UNKNOWN,  # also what a restart declares for this status
    # --- SUBMITTED: the venue has it, not yet working.
    (S.SUBMITTED, E.SUBMIT_REQUESTED): _DUP,
    (S.SUBMITTED, E.SUBMIT_SENT): _DUP,
    (S.SUBMITTED, E.RESOLVED_SUBMITTED): _DUP,  # a periodic lookup saying what we know
    (S.SUBMITTED, E.ACCEPTED): S.ACCEPTED,
    (S.SUBMITTED, E.REJECTED): S.REJECTED,
    (S.SUBMITTED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,  # fill before the accept: reordering
    (S.SUBMITTED, E.FILLED): S.FILLED,
    (S.SUBMITTED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.SUBMITTED, E.CANCELLED): S.CANCELLED,
    (S.SUBMITTED, E.EXPIRED): S.EXPIRED,
    # --- ACCEPTED: working, nothing filled.
    (S.ACCEPTED, E.SUBMIT_REQUESTED): _DUP,
    (S.ACCEPTED, E.SUBMIT_SENT): _STALE,  # the call's answer came after the venue's push
    (S.ACCEPTED, E.ACCEPTED): _DUP,
    (S.ACCEPTED, E.RESOLVED_SUBMITTED): _STALE,  # a lookup served from a lagging venue replica
    (S.ACCEPTED, E.CANCEL_REJECTED): _DUP,  # a second answer to a cancel already refused
    (S.ACCEPTED, E.REJECTED): S.REJECTED,  # some venues accept, then the exchange refuses
    (S.ACCEPTED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.ACCEPTED, E.FILLED): S.FILLED,
    (S.ACCEPTED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.ACCEPTED, E.CANCELLED): S.CANCELLED,  # unsolicited: venue cancelled it
    (S.ACCEPTED, E.EXPIRED): S.EXPIRED,
    # --- PARTIALLY_FILLED: working, part filled. Never rejected: the venue traded it.
    (S.PARTIALLY_FILLED, E.SUBMIT_REQUESTED): _DUP,
    (S.PARTIALLY_FILLED, E.SUBMIT_SENT): _STALE,
    (S.PARTIALLY_FILLED, E.ACCEPTED): _STALE,  # must never undo counted fills
    (S.PARTIALLY_FILLED, E.RESOLVED_SUBMITTED): _STALE,
    (S.PARTIALLY_FILLED, E.CANCEL_REJECTED): _DUP,
    (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.CANCELLED): S.CANCELLED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    # --- PENDING_CANCEL: cancel sent; the order may still trade until the venue confirms.
    (S.PENDING_CANCEL, E.SUBMIT_REQUESTED): _DUP,
    (S.PENDING_CANCEL, E.SUBMIT_SENT): _STALE,
    (S.PENDING_CANCEL, E.ACCEPTED): _STALE,
    (S.PENDING_CANCEL, E.RESOLVED_SUBMITTED): _STALE,
    (S.PENDING_CANCEL, E.CANCEL_REQUESTED): _DUP,
    (S.PENDING_CANCEL, E.CANCEL_REJECTED): S.ACCEPTED,  # still working (apply_event: or partial)
    (S.PENDING_CANCEL, E.REJECTED): S.REJECTED,  # cancel sent before the accept, order refused
    (S.PENDING_CANCEL, E.PARTIALLY_FILLED): S.PENDING_CANCEL,  # traded before the cancel landed
    (S.PENDING_CANCEL, E.FILLED): S.FILLED,  # the fill won the race; the cancel will be refused
    (S.PENDING_CANCEL, E.CANCELLED): S.CANCELLED,
    (S.PENDING_CANCEL, E.EXPIRED): S.EXPIRED,
    (S.PENDING_CANCEL, E.ANSWER_LOST): S.UNKNOWN,
    # --- UNKNOWN: a call's answer was lost. Only venue facts resolve it (module docstring).
    (S.UNKNOWN, E.SUBMIT_REQUESTED): _DUP,  # above all, never resend blindly
    (S.UNKNOWN, E.ANSWER_LOST): _DUP,  # the lookup itself timed out; still unknown, ask again
    (S.UNKNOWN, E.RESOLVED_SUBMITTED): S.SUBMITTED,
    (S.UNKNOWN, E.RESOLVED_NOT_FOUND): S.PENDING_SUBMIT,  # guarded in apply_event
    (S.UNKNOWN, E.ACCEPTED): S.ACCEPTED,
    (S.UNKNOWN, E.REJECTED): S.REJECTED,
    (S.UNKNOWN, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,  # a fill proves the venue has it
    (S.UNKNOWN, E.FILLED): S.FILLED,
    (S.UNKNOWN, E.CANCEL_REJECTED): S.ACCEPTED,  # the lost answer was to a cancel: still working
    (S.UNKNOWN, E.CANCELLED): S.CANCELLED,
    (S.UNKNOWN, E.EXPIRED): S.EXPIRED,
    # --- FILLED: terminal. A stale message must never move it back (hummingbot's bug).
    (S.FILLED, E.SUBMIT_REQUESTED): _DUP,
    (S.FILLED, E.SUBMIT_SENT): _STALE,  # fast market order: the fill is pushed before the answer
    (S.FILLED, E.ACCEPTED): _STALE,
    (S.FILLED, E.CANCEL_REQUESTED): _NOTHING,  # a cancel decided before the fill was seen
    (S.FILLED, E.CANCEL_REJECTED): _NOTHING,  # "too late to cancel": the expected answer
    (S.FILLED, E.CANCELLED): _NOTHING,  # e.g. IOC "cancel the rest" when no rest is left
    (S.FILLED, E.EXPIRED): _NOTHING,
    # (FILLED, fill): absent. Every quantity is filled, so a new fill is an overfill.
    # (FILLED, REJECTED): absent. The venue traded it; a reject contradicts the fills.
    # --- CANCELLED: terminal, except that fills reported late still count.
    (S.CANCELLED, E.SUBMIT_REQUESTED): _DUP,
    (S.CANCELLED, E.SUBMIT_SENT): _STALE,
    (S.CANCELLED, E.ACCEPTED): _STALE,
    (S.CANCELLED, E.CANCEL_REQUESTED): _NOTHING,
    (S.CANCELLED, E.CANCEL_REJECTED): _STALE,
    (S.CANCELLED, E.CANCELLED): _DUP,
    (S.CANCELLED, E.EXPIRED): _STALE,
    (S.CANCELLED, E.PARTIALLY_FILLED): S.CANCELLED,  # traded before the cancel, reported after
    (S.CANCELLED, E.FILLED): S.FILLED,  # it all traded: the cancel confirmation was wrong
    # --- EXPIRED: as CANCELLED.
    (S.EXPIRED, E.SUBMIT_REQUESTED): _DUP,
    (S.EXPIRED, E.SUBMIT_SENT): _STALE,
    (S.EXPIRED, E.ACCEPTED): _STALE,
    (S.EXPIRED, E.CANCEL_REQUESTED): _NOTHING,
    (S.EXPIRED, E.CANCEL_REJECTED): _STALE,
    (S.EXPIRED, E.CANCELLED): _STALE,
    (S.EXPIRED, E.EXPIRED): _DUP,
    (S.EXPIRED, E.PARTIALLY_FILLED): S.EXPIRED,
    (S.EXPIRED, E.FILLED): S.FILLED,
    # --- REJECTED: terminal and never traded; any fill or accept afterwards is a contradiction.
    (S.REJECTED, E.SUBMIT_REQUESTED): _DUP,
    (S.REJECTED, E.SUBMIT_SENT): _STALE,  # the async reject overtook the call's answer
    (S.REJECTED, E.REJECTED): _DUP,
    (S.REJECTED, E.CANCEL_REQUESTED): _NOTHING,
}
"""Every legal (status, event). Absent pairs are illegal; see the module docstring."""

TERMINAL: Final = frozenset({S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED})
"""Statuses after which the order cannot trade more (late fills aside, see the table)."""

FILL_EVENTS: Final = frozenset({E.PARTIALLY_FILLED, E.FILLED})

_LIVE_UNFILLED: Final = frozenset({S.SUBMITTED, S.ACCEPTED})


class IllegalTransition(ValueError):  # noqa: N818 -- the name the executor issue uses
    """An event that contradicts the order's status; the order is left as it was."""

    def __init__(self, status: OrderStatus, event: OrderEvent, detail: str = "") -> None:
        self.status = status
        self.event = event
        self.detail = detail
        suffix = f": {detail}" if detail else ""
        super().__init__(f"illegal order transition: {event.value} in {status.value}{suffix}")


class OverfillError(ValueError):
    """A fill that would take an order past its quantity."""


class BadFillError(ValueError):
    """A fill that cannot be counted in this order: another order's, or a non-positive size."""


@dataclass(frozen=True, slots=True)
class Step:
    """Result of one event on a status: the status after it, and why it stayed if it did."""

    status: OrderStatus
    ignored: IgnoreReason | None = None


def next_status(status: OrderStatus, event: OrderEvent) -> Step:
    """The status `event` leads to from `status`; raises `IllegalTransition` on an absent edge."""
    edge = TRANSITIONS.get((status, event))
    if edge is None:
        raise IllegalTransition(status, event)
    if isinstance(edge, Ignore):
        return Step(status, edge.reason)
    return Step(edge)


@dataclass(frozen=True, slots=True)
class Applied:
    """An order after an event, and why its status did not change if it was ignored."""

    order: Order
    ignored: IgnoreReason | None = None


def apply_event(order: Order, event: OrderEvent, *, reason: str = "") -> Applied:
    """Apply a non-fill event to an order; `reason` (e.g. the venue's reject text) is kept."""
    if event in FILL_EVENTS:
        raise IllegalTransition(order.status, event, "fills are applied with apply_fill")
    step = next_status(order.status, event)
    if step.ignored is not None:
        return Applied(order, step.ignored)
    if event is E.RESOLVED_NOT_FOUND and (order.venue_order_id or order.filled_quantity):
        # The venue acknowledged or traded this order before; "not found" now is a venue
        # contradiction, and resending would risk a duplicate.
        raise IllegalTransition(order.status, event, "the venue knew this order before")
    target = _with_fills(step.status, order.filled_quantity)
    if target is S.REJECTED and order.filled_quantity:
        raise IllegalTransition(order.status, event, "a rejected order cannot have fills")
    changes: dict[str, object] = {"status": target}
    if reason:
        changes["reason"] = reason
    return Applied(msgspec.structs.replace(order, **changes))


def _with_fills(status: OrderStatus, filled_quantity: int) -> OrderStatus:
    """A live order with counted fills is PARTIALLY_FILLED, whatever the venue called it."""
    # E.g. a lookup resolving UNKNOWN says "accepted" for an order whose fills we already hold.
    if status in _LIVE_UNFILLED and filled_quantity > 0:
        return S.PARTIALLY_FILLED
    return status


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """An order after a fill, the fill ids counted in it, and whether the fill was a replay."""

    order: Order
    applied_fill_ids: frozenset[str]
    duplicate: bool = False


def apply_fill(order: Order, fill: Fill, applied_fill_ids: Set[str]) -> FillOutcome:
    """Count a fill in an order once (idempotent on fill_id); refuses overfills and strangers."""
    applied = frozenset(applied_fill_ids)
    if fill.fill_id in applied:
        return FillOutcome(order, applied, duplicate=True)
    _check_belongs(order, fill)
    filled = order.filled_quantity + fill.quantity
    if filled > order.quantity:
        raise OverfillError(
            f"fill {fill.fill_id} of {fill.quantity} on {order.client_order_id}: "
            f"{order.filled_quantity} of {order.quantity} already filled"
        )
    event = E.FILLED if filled == order.quantity else E.PARTIALLY_FILLED
    step = next_status(order.status, event)
    if step.ignored is not None:
        # No fill edge is an Ignore entry (a fill is money that moved); guard the table anyway.
        raise IllegalTransition(order.status, event, "a fill can never be ignored")
    updated = msgspec.structs.replace(
        order,
        status=step.status,
        filled_quantity=filled,
        filled_notional=order.filled_notional + fill.price * fill.quantity,
    )
    return FillOutcome(updated, applied | {fill.fill_id})


def _check_belongs(order: Order, fill: Fill) -> None:
    """Raise `BadFillError` unless the fill is for this order and has a positive size."""
    if fill.client_order_id != order.client_order_id:
        raise BadFillError(f"fill {fill.fill_id} is for {fill.client_order_id}")
    if fill.symbol != order.symbol or fill.side != order.side:
        raise BadFillError(
            f"fill {fill.fill_id} is {fill.side} {fill.symbol}, "
            f"order {order.client_order_id} is {order.side} {order.symbol}"
        )
    if fill.quantity <= 0:
        raise BadFillError(f"fill {fill.fill_id} has non-positive quantity {fill.quantity}")


def apply_leg_fill(order: Order, fill: Fill, earlier: Sequence[Fill]) -> Order:
    """A multi-leg order after one leg's fill, given the leg fills counted before it.

    The order fills by units of its combination: a unit is filled once every leg has traded
    its ratio of it, so a leg that fills ahead of the others moves the order only when the
    last leg catches up. `filled_notional` is the net (sum of ratio x leg price, first
    fills first) of the units filled, so the average is the combination's net price.
    """
    ratios = {leg.symbol: leg for leg in order.legs}
    leg = ratios.get(fill.symbol)
    if fill.client_order_id != order.client_order_id or leg is None:
        raise BadFillError(
            f"fill {fill.fill_id} ({fill.symbol}) is not a leg of {order.client_order_id}"
        )
    expected = order.side if leg.ratio > 0 else _other(order.side)
    if fill.side is not expected or fill.quantity <= 0:
        raise BadFillError(
            f"fill {fill.fill_id} is {fill.side} {fill.quantity} {fill.symbol}; "
            f"leg {fill.symbol} of {order.client_order_id} is {expected}"
        )
    by_leg: dict[str, list[Fill]] = {symbol: [] for symbol in ratios}
    for counted in sorted([*earlier, fill], key=lambda f: (f.ts_event, f.fill_id)):
        if counted.symbol in by_leg:
            by_leg[counted.symbol].append(counted)
    traded = {symbol: sum(f.quantity for f in fills) for symbol, fills in by_leg.items()}
    if traded[fill.symbol] > order.quantity * abs(leg.ratio):
        raise OverfillError(
            f"fill {fill.fill_id} of {fill.quantity} {fill.symbol} on {order.client_order_id}: "
            f"the leg trades {order.quantity * abs(leg.ratio)} in all"
        )
    units = min(traded[s] // abs(ratios[s].ratio) for s in ratios)
    if units <= order.filled_quantity:
        return order
    notional = sum(
        (1 if ratios[s].ratio > 0 else -1)
        * _first_notional(by_leg[s], units * abs(ratios[s].ratio))
        for s in ratios
    )
    event = E.FILLED if units == order.quantity else E.PARTIALLY_FILLED
    step = next_status(order.status, event)
    if step.ignored is not None:
        raise IllegalTransition(order.status, event, "a fill can never be ignored")
    return msgspec.structs.replace(
        order, status=step.status, filled_quantity=units, filled_notional=notional
    )


def _other(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def _first_notional(fills: Sequence[Fill], quantity: int) -> int:
    """Price x quantity over the first `quantity` units of `fills`."""
    total = 0
    for fill in fills:
        take = min(fill.quantity, quantity)
        total += take * fill.price
        quantity -= take
        if not quantity:
            break
    return total
