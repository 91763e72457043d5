"""The order state machine: its table, its edge cases, and fills counted exactly once."""

import itertools

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executors.order_state import (
    FILL_EVENTS,
    TERMINAL,
    TRANSITIONS,
    BadFillError,
    Ignore,
    IgnoreReason,
    IllegalTransition,
    OrderEvent,
    OverfillError,
    apply_event,
    apply_fill,
    apply_leg_fill,
    next_status,
)
from ticklane.trading import ComboLeg, Fill, Order, OrderStatus, OrderType, Side

S = OrderStatus
E = OrderEvent
NON_FILL_EVENTS = [e for e in OrderEvent if e not in FILL_EVENTS]


def make_order(status: OrderStatus = S.NEW, quantity: int = 10, **changes: object) -> Order:
    order = Order(
        client_order_id="ord-1",
        signal_id="sig-1",
        strategy="ema",
        symbol="ESU4",
        side=Side.BUY,
        quantity=quantity,
        order_type=OrderType.MARKET,
        status=status,
        ts_event=1,
    )
    return msgspec.structs.replace(order, **changes) if changes else order


def make_fill(fill_id: str, quantity: int, price: int = 100, **changes: object) -> Fill:
    fill = Fill(
        fill_id=fill_id,
        client_order_id="ord-1",
        venue_order_id="v-1",
        symbol="ESU4",
        side=Side.BUY,
        quantity=quantity,
        price=price,
        ts_event=2,
    )
    return msgspec.structs.replace(fill, **changes) if changes else fill


def run(order: Order, *events: OrderEvent) -> Order:
    for event in events:
        order = apply_event(order, event).order
    return order


# --- the table itself


def test_table_targets_are_statuses_or_ignores() -> None:
    for (status, event), edge in TRANSITIONS.items():
        assert isinstance(status, OrderStatus)
        assert isinstance(event, OrderEvent)
        assert isinstance(edge, OrderStatus | Ignore)


def test_a_terminal_order_never_becomes_live_again() -> None:
    for (status, _), edge in TRANSITIONS.items():
        if status in TERMINAL and isinstance(edge, OrderStatus):
            assert edge in TERMINAL


def test_filled_is_absorbing() -> None:
    # A stale message must never move FILLED back (hummingbot's in_flight_order bug).
    for (status, event), edge in TRANSITIONS.items():
        if status is S.FILLED:
            assert isinstance(edge, Ignore), event


def test_unknown_is_never_resent_on_a_replayed_signal() -> None:
    assert TRANSITIONS[(S.UNKNOWN, E.SUBMIT_REQUESTED)] == Ignore(IgnoreReason.DUPLICATE)
    assert (S.UNKNOWN, E.SUBMIT_SENT) not in TRANSITIONS


@pytest.mark.parametrize(("status", "event"), list(itertools.product(OrderStatus, OrderEvent)))
def test_every_pair_moves_is_ignored_or_raises(status: OrderStatus, event: OrderEvent) -> None:
    edge = TRANSITIONS.get((status, event))
    if edge is None:
        with pytest.raises(IllegalTransition) as caught:
            next_status(status, event)
        assert caught.value.status is status
        assert caught.value.event is event
        assert status.value in str(caught.value)
        assert event.value in str(caught.value)
    elif isinstance(edge, Ignore):
        step = next_status(status, event)
        assert (step.status, step.ignored) == (status, edge.reason)
    else:
        assert next_status(status, event).status is edge


# --- edge cases named in the table


def test_happy_path() -> None:
    order = run(make_order(), E.SUBMIT_REQUESTED, E.SUBMIT_SENT, E.ACCEPTED)
    assert order.status is S.ACCEPTED
    out = apply_fill(order, make_fill("f1", 4, 100), frozenset())
    assert out.order.status is S.PARTIALLY_FILLED
    out = apply_fill(out.order, make_fill("f2", 6, 103), out.applied_fill_ids)
    assert out.order.status is S.FILLED
    assert out.order.filled_quantity == 10
    assert out.order.filled_notional == 4 * 100 + 6 * 103
    assert out.applied_fill_ids == {"f1", "f2"}


def test_fill_before_accept_then_stale_accept_is_ignored() -> None:
    order = run(make_order(), E.SUBMIT_REQUESTED, E.SUBMIT_SENT)
    order = apply_fill(order, make_fill("f1", 3), frozenset()).order
    assert order.status is S.PARTIALLY_FILLED
    applied = apply_event(order, E.ACCEPTED)
    assert applied.ignored is IgnoreReason.STALE
    assert applied.order == order


def test_submit_answer_after_the_fill_is_stale() -> None:
    order = run(make_order(), E.SUBMIT_REQUESTED)
    order = apply_fill(order, make_fill("f1", 10), frozenset()).order
    assert order.status is S.FILLED
    for event in (E.SUBMIT_SENT, E.ACCEPTED):
        applied = apply_event(order, event)
        assert applied.ignored is IgnoreReason.STALE
        assert applied.order.status is S.FILLED


def test_late_cancel_after_filled_is_ignored_with_reason() -> None:
    order = make_order(S.FILLED, filled_quantity=10, filled_notional=1000)
    for event in (E.CANCEL_REQUESTED, E.CANCELLED, E.CANCEL_REJECTED, E.EXPIRED):
        applied = apply_event(order, event)
        assert applied.ignored is IgnoreReason.NOTHING_TO_CANCEL
        assert applied.order is order


def test_filled_cannot_be_rejected() -> None:
    with pytest.raises(IllegalTransition):
        apply_event(make_order(S.FILLED, filled_quantity=10), E.REJECTED)


def test_cancel_refused_after_partial_fill_returns_to_partially_filled() -> None:
    order = run(make_order(), E.SUBMIT_REQUESTED, E.ACCEPTED)
    order = apply_fill(order, make_fill("f1", 4), frozenset()).order
    order = apply_event(order, E.CANCEL_REQUESTED).order
    order = apply_fill(order, make_fill("f2", 2), {"f1"}).order
    assert order.status is S.PENDING_CANCEL  # still waiting for the venue's answer
    assert apply_event(order, E.CANCEL_REJECTED).order.status is S.PARTIALLY_FILLED
    assert apply_event(order, E.CANCELLED).order.status is S.CANCELLED


def test_cancel_refused_without_fills_returns_to_accepted() -> None:
    order = run(make_order(), E.SUBMIT_REQUESTED, E.ACCEPTED, E.CANCEL_REQUESTED)
    assert apply_event(order, E.CANCEL_REJECTED).order.status is S.ACCEPTED


def test_fill_reported_after_cancel_counts() -> None:
    order = make_order(S.CANCELLED)
    out = apply_fill(order, make_fill("f1", 4), frozenset())
    assert out.order.status is S.CANCELLED
    assert out.order.filled_quantity == 4
    out = apply_fill(out.order, make_fill("f2", 6), out.applied_fill_ids)
    assert out.order.status is S.FILLED  # it all traded: the cancel never took effect


def test_answer_lost_is_resolved_by_lookup_not_by_resending() -> None:
    order = run(make_order(), E.SUBMIT_REQUESTED, E.ANSWER_LOST)
    assert order.status is S.UNKNOWN
    assert apply_event(order, E.SUBMIT_REQUESTED).ignored is IgnoreReason.DUPLICATE
    assert apply_event(order, E.ANSWER_LOST).order.status is S.UNKNOWN
    assert apply_event(order, E.ACCEPTED).order.status is S.ACCEPTED
    assert apply_event(order, E.RESOLVED_SUBMITTED).order.status is S.SUBMITTED
    assert apply_event(order, E.REJECTED, reason="no margin").order.reason == "no margin"
    assert apply_fill(order, make_fill("f1", 10), frozenset()).order.status is S.FILLED
    # Only a lookup that found nothing lets the same client order id go out again.
    assert apply_event(order, E.RESOLVED_NOT_FOUND).order.status is S.PENDING_SUBMIT


def test_not_found_is_a_contradiction_once_the_venue_knew_the_order() -> None:
    acked = make_order(S.UNKNOWN, venue_order_id="v-9")
    with pytest.raises(IllegalTransition, match="knew this order"):
        apply_event(acked, E.RESOLVED_NOT_FOUND)
    traded = make_order(S.UNKNOWN, filled_quantity=2, filled_notional=200)
    with pytest.raises(IllegalTransition):
        apply_event(traded, E.RESOLVED_NOT_FOUND)


def test_lookup_of_a_lost_cancel_keeps_counted_fills() -> None:
    order = make_order(S.PENDING_CANCEL, filled_quantity=3, filled_notional=300)
    order = apply_event(order, E.ANSWER_LOST).order
    assert order.status is S.UNKNOWN
    assert apply_event(order, E.ACCEPTED).order.status is S.PARTIALLY_FILLED
    assert apply_event(order, E.RESOLVED_SUBMITTED).order.status is S.PARTIALLY_FILLED
    with pytest.raises(IllegalTransition, match="cannot have fills"):
        apply_event(order, E.REJECTED)


def test_risk_reject_and_local_cancel_of_unsent_orders() -> None:
    assert apply_event(make_order(), E.REJECTED, reason="max_position").order.status is S.REJECTED
    assert apply_event(make_order(), E.CANCEL_REQUESTED).order.status is S.CANCELLED
    with pytest.raises(IllegalTransition):
        apply_fill(make_order(), make_fill("f1", 1), frozenset())


def test_fill_events_only_through_apply_fill() -> None:
    with pytest.raises(IllegalTransition, match="apply_fill"):
        apply_event(make_order(S.ACCEPTED), E.FILLED)


# --- fill accounting


def test_replayed_fill_changes_nothing() -> None:
    first = apply_fill(make_order(S.ACCEPTED), make_fill("f1", 4), frozenset())
    again = apply_fill(first.order, make_fill("f1", 4), first.applied_fill_ids)
    assert again.duplicate
    assert again.order == first.order
    assert again.applied_fill_ids == first.applied_fill_ids


def test_overfill_is_refused() -> None:
    order = apply_fill(make_order(S.ACCEPTED), make_fill("f1", 8), frozenset()).order
    with pytest.raises(OverfillError, match="8 of 10"):
        apply_fill(order, make_fill("f2", 3), {"f1"})
    with pytest.raises(OverfillError):
        apply_fill(make_order(S.FILLED, filled_quantity=10), make_fill("f3", 1), frozenset())


@pytest.mark.parametrize(
    "changes",
    [
        {"client_order_id": "ord-2"},
        {"symbol": "NQU4"},
        {"side": Side.SELL},
        {"quantity": 0},
    ],
)
def test_fill_for_another_order_is_refused(changes: dict[str, object]) -> None:
    stranger = msgspec.structs.replace(make_fill("f1", 1), **changes)
    with pytest.raises(BadFillError):
        apply_fill(make_order(S.ACCEPTED), stranger, frozenset())


# --- properties over random histories

fill_pool = st.lists(
    st.tuples(st.integers(1, 6), st.integers(-1_000, 10**12)), min_size=1, max_size=6
)
action = st.one_of(
    st.sampled_from(NON_FILL_EVENTS),
    st.integers(0, 5),  # an index into the fill pool: repeats are redeliveries of the same fill
)

LIVE_UNFILLED = {S.NEW, S.PENDING_SUBMIT, S.SUBMITTED, S.ACCEPTED, S.REJECTED}


def check_invariants(order: Order, applied: frozenset[str], pool: list[Fill]) -> None:
    counted = [f for f in pool if f.fill_id in applied]
    assert order.filled_quantity == sum(f.quantity for f in counted)
    assert order.filled_notional == sum(f.price * f.quantity for f in counted)
    assert (order.status is S.FILLED) == (order.filled_quantity == order.quantity)
    if order.status is S.PARTIALLY_FILLED:
        assert 0 < order.filled_quantity < order.quantity
    if order.status in LIVE_UNFILLED:
        assert order.filled_quantity == 0


def step(
    order: Order, applied: frozenset[str], act: OrderEvent | Fill
) -> tuple[Order, frozenset[str]]:
    """One action; an illegal one must raise and leave the order exactly as it was."""
    before = order
    try:
        if isinstance(act, Fill):
            out = apply_fill(order, act, applied)
            return out.order, out.applied_fill_ids
        return apply_event(order, act).order, applied
    except (IllegalTransition, OverfillError):
        assert order == before
        return order, applied


def replay_history(pool: list[Fill], history: list[OrderEvent | Fill]) -> None:
    order, applied = make_order(quantity=12), frozenset[str]()
    was_terminal = False
    for act in history:
        previous = order.status
        order, applied = step(order, applied, act)
        check_invariants(order, applied, pool)
        if previous is S.FILLED:
            assert order.status is S.FILLED
        was_terminal = was_terminal or previous in TERMINAL
        if was_terminal:
            assert order.status in TERMINAL
    # Replaying every fill counted so far changes nothing.
    for fill in pool:
        if fill.fill_id in applied:
            again = apply_fill(order, fill, applied)
            assert again.duplicate
            assert again.order == order


def to_fills(raw: list[tuple[int, int]]) -> list[Fill]:
    return [make_fill(f"f{i}", qty, price) for i, (qty, price) in enumerate(raw)]


@settings(max_examples=400)
@given(fill_pool, st.lists(action, max_size=40))
def test_random_histories_keep_the_invariants(
    raw: list[tuple[int, int]], actions: list[OrderEvent | int]
) -> None:
    pool = to_fills(raw)
    history = [a if isinstance(a, OrderEvent) else pool[a % len(pool)] for a in actions]
    replay_history(pool, history)


@settings(max_examples=400)
@given(fill_pool, st.data())
def test_legal_walks_keep_the_invariants(raw: list[tuple[int, int]], data: st.DataObject) -> None:
    # Random events are mostly illegal from NEW; this walk picks legal ones to reach deep states.
    pool = to_fills(raw)
    order, applied = make_order(quantity=12), frozenset[str]()
    for _ in range(30):
        legal = [e for (s, e) in TRANSITIONS if s is order.status and e not in FILL_EVENTS]
        # Ending the order early is allowed one step in ten, so walks reach deep statuses.
        if data.draw(st.integers(0, 9)) > 0:
            legal = [e for e in legal if TRANSITIONS[(order.status, e)] not in TERMINAL]
        choices: list[OrderEvent | Fill] = [*legal, *pool]
        act = data.draw(st.sampled_from(choices))
        previous = order
        order, applied = step(order, applied, act)
        check_invariants(order, applied, pool)
        if previous.status is S.FILLED:
            assert order.status is S.FILLED
    total = sum(f.quantity for f in pool if f.fill_id in applied)
    assert order.filled_quantity == total


# --- multi-leg orders: filled by units of the combination


def combo_order(quantity: int = 2, side: Side = Side.BUY) -> Order:
    return Order(
        client_order_id="c1",
        signal_id="s",
        strategy="st",
        symbol="vert",
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET,
        status=S.ACCEPTED,
        ts_event=0,
        legs=(ComboLeg("a", 1), ComboLeg("b", -2)),
    )


def leg_fill(n: int, symbol: str, side: Side, quantity: int, price: int) -> Fill:
    return Fill(f"f{n}", "c1", "v1", symbol, side, quantity, price, ts_event=n)


def test_a_multi_leg_order_fills_a_unit_only_when_every_leg_has_traded_its_ratio():
    order = combo_order()
    first = leg_fill(1, "a", Side.BUY, 2, 5_000)
    after_a = apply_leg_fill(order, first, [])
    assert after_a == order  # leg b has not traded: no unit is filled
    second = leg_fill(2, "b", Side.SELL, 2, 1_000)
    one = apply_leg_fill(order, second, [first])
    assert (one.status, one.filled_quantity) == (S.PARTIALLY_FILLED, 1)
    assert one.filled_notional == 5_000 - 2 * 1_000  # the net of one unit
    third = leg_fill(3, "b", Side.SELL, 2, 1_500)
    done = apply_leg_fill(one, third, [first, second])
    assert (done.status, done.filled_quantity) == (S.FILLED, 2)
    assert done.filled_notional == 2 * 5_000 - (2 * 1_000 + 2 * 1_500)


def test_a_leg_fill_of_the_wrong_side_symbol_or_size_is_refused():
    order = combo_order(side=Side.SELL)
    with pytest.raises(BadFillError, match="is buy"):
        apply_leg_fill(order, leg_fill(1, "b", Side.SELL, 1, 1), [])
    with pytest.raises(BadFillError, match="not a leg"):
        apply_leg_fill(order, leg_fill(1, "zz", Side.SELL, 1, 1), [])
    with pytest.raises(OverfillError, match="trades 4 in all"):
        apply_leg_fill(order, leg_fill(1, "b", Side.BUY, 5, 1), [])
