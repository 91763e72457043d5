"""Netting: one order per reversal where allowed, tracked two-steps otherwise, nothing doubled."""

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executors.netting import (
    COMBO_CAPS,
    BrokerCaps,
    ComboError,
    Leg,
    check_combo,
    combo_position,
    leg_side,
    orders_for_signal,
    pending_quantity,
    plan_legs,
    refusal,
    release_legs,
)
from ticklane import ids
from ticklane.trading import ComboLeg, Order, OrderStatus, OrderType, PositionEffect, Side, Signal

ONE_ORDER = BrokerCaps(can_reverse_in_one_order=True)
TWO_STEP = BrokerCaps(can_reverse_in_one_order=False)


def signed(leg: Leg) -> int:
    return leg.quantity if leg.side is Side.BUY else -leg.quantity


def walk(start: int, legs: list[Leg]) -> list[tuple[int, int]]:
    """(from, to) of each leg in turn."""
    spans = []
    for leg in legs:
        spans.append((start, start + signed(leg)))
        start += signed(leg)
    return spans


def test_reversal_is_one_order_of_the_combined_size() -> None:
    assert plan_legs(1, -1, ONE_ORDER) == [
        Leg(side=Side.SELL, quantity=2, leg=0, reduces_only=False)
    ]


def test_reversal_without_broker_support_is_close_then_open() -> None:
    assert plan_legs(1, -1, TWO_STEP) == [
        Leg(side=Side.SELL, quantity=1, leg=0, reduces_only=True),
        Leg(side=Side.SELL, quantity=1, leg=1, reduces_only=False),
    ]
    assert plan_legs(-3, 2, TWO_STEP) == [
        Leg(side=Side.BUY, quantity=3, leg=0, reduces_only=True),
        Leg(side=Side.BUY, quantity=2, leg=1, reduces_only=False),
    ]


@pytest.mark.parametrize(
    ("position", "target", "expected"),
    [
        (0, 3, Leg(side=Side.BUY, quantity=3, leg=0, reduces_only=False)),
        (3, 5, Leg(side=Side.BUY, quantity=2, leg=0, reduces_only=False)),
        (5, 3, Leg(side=Side.SELL, quantity=2, leg=0, reduces_only=True)),
        (5, 0, Leg(side=Side.SELL, quantity=5, leg=0, reduces_only=True)),
        (-5, 0, Leg(side=Side.BUY, quantity=5, leg=0, reduces_only=True)),
        (-2, -4, Leg(side=Side.SELL, quantity=2, leg=0, reduces_only=False)),
    ],
)
def test_same_side_moves_are_one_leg(position: int, target: int, expected: Leg) -> None:
    assert plan_legs(position, target, TWO_STEP) == [expected]


def test_zero_delta_sends_nothing() -> None:
    assert plan_legs(4, 4, ONE_ORDER) == []
    assert plan_legs(0, 0, TWO_STEP) == []


def test_working_orders_count_as_filled() -> None:
    # A replayed signal whose order is still working must not send it again.
    assert plan_legs(0, 2, ONE_ORDER, pending=2) == []
    assert plan_legs(1, -1, ONE_ORDER, pending=-1) == [
        Leg(side=Side.SELL, quantity=1, leg=0, reduces_only=False)
    ]


positions = st.integers(-(10**6), 10**6)


@given(positions, positions, positions, st.booleans())
def test_plan_properties(position: int, pending: int, target: int, one_order: bool) -> None:
    caps = BrokerCaps(can_reverse_in_one_order=one_order)
    legs = plan_legs(position, target, caps, pending)
    start = position + pending
    assert sum(signed(leg) for leg in legs) == target - start
    assert [leg.leg for leg in legs] == list(range(len(legs)))
    assert all(leg.quantity > 0 for leg in legs)
    assert len(legs) <= (1 if one_order else 2)
    if target == start:
        assert legs == []
    for a, b in walk(start, legs):
        crosses = a * b < 0
        if crosses:  # only the single reversal leg may cross zero
            assert one_order
            assert len(legs) == 1
    for leg, (a, b) in zip(legs, walk(start, legs), strict=True):
        assert leg.reduces_only == (abs(b) < abs(a) and a * b >= 0)


def make_signal(target: int) -> Signal:
    return Signal.create("ema", "ESU4", 1_000, target, instrument_id=7)


def test_orders_carry_deterministic_ids() -> None:
    signal = make_signal(-1)
    orders = orders_for_signal(signal, 1, 0, TWO_STEP, ts=5_000)
    assert [o.client_order_id for o in orders] == [
        ids.client_order_id(signal.signal_id, 0),
        ids.client_order_id(signal.signal_id, 1),
    ]
    assert orders == orders_for_signal(signal, 1, 0, TWO_STEP, ts=5_000)
    for order in orders:
        assert order.status is OrderStatus.NEW
        assert order.side is Side.SELL
        assert order.quantity == 1
        assert order.order_type is OrderType.MARKET
        assert (order.signal_id, order.strategy, order.symbol) == (signal.signal_id, "ema", "ESU4")
        assert (order.ts_event, order.instrument_id) == (5_000, 7)


def test_one_order_reversal_from_a_signal() -> None:
    orders = orders_for_signal(make_signal(-1), 1, 0, ONE_ORDER, ts=1)
    assert [(o.side, o.quantity, o.leg) for o in orders] == [(Side.SELL, 2, 0)]


def test_signal_already_met_gives_no_order() -> None:
    assert orders_for_signal(make_signal(3), 3, 0, ONE_ORDER, ts=1) == []


def two_step(leg0: OrderStatus, leg1: OrderStatus = OrderStatus.NEW) -> list[Order]:
    orders = orders_for_signal(make_signal(-1), 1, 0, TWO_STEP, ts=1)
    return [
        msgspec.structs.replace(orders[0], status=leg0),
        msgspec.structs.replace(orders[1], status=leg1),
    ]


def test_first_leg_is_sent_first() -> None:
    orders = two_step(OrderStatus.NEW)
    release = release_legs(list(reversed(orders)))
    assert release.send == (orders[0],)
    assert release.abandon == ()


@pytest.mark.parametrize(
    "leg0",
    [
        OrderStatus.PENDING_SUBMIT,
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.UNKNOWN,
    ],
)
def test_second_leg_waits_while_the_first_works(leg0: OrderStatus) -> None:
    release = release_legs(two_step(leg0))
    assert (release.send, release.abandon) == ((), ())


def test_second_leg_goes_once_the_first_filled() -> None:
    # Decided from the ledger alone, so a restart between the legs sends leg 1 exactly once.
    orders = two_step(OrderStatus.FILLED)
    assert release_legs(orders).send == (orders[1],)
    assert release_legs(two_step(OrderStatus.FILLED, OrderStatus.PENDING_SUBMIT)).send == ()


@pytest.mark.parametrize("leg0", [OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED])
def test_second_leg_is_abandoned_if_the_first_failed(leg0: OrderStatus) -> None:
    orders = two_step(leg0)
    release = release_legs(orders)
    assert release.send == ()
    assert release.abandon == (orders[1],)


def test_pending_quantity_counts_unfilled_remainders() -> None:
    base = orders_for_signal(make_signal(5), 0, 0, ONE_ORDER, ts=1)[0]
    working = msgspec.structs.replace(base, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=2)
    sell = msgspec.structs.replace(base, side=Side.SELL, quantity=3, status=OrderStatus.NEW)
    done = msgspec.structs.replace(base, status=OrderStatus.FILLED, filled_quantity=5)
    cancelled = msgspec.structs.replace(base, status=OrderStatus.CANCELLED, filled_quantity=1)
    assert pending_quantity([working, sell, done, cancelled]) == 3 - 3
    assert pending_quantity([working]) == 3
    assert pending_quantity([]) == 0


def effects(position: int, target: int, caps: BrokerCaps, pending: int = 0) -> list[str]:
    signal = Signal.create("s", "AAPL", 1, target)
    orders = orders_for_signal(signal, position, pending, caps, 1)
    return [f"{o.side} {o.quantity} {o.position_effect}" for o in orders]


def test_each_order_says_whether_it_opens_or_closes() -> None:
    assert effects(0, 2, TWO_STEP) == ["buy 2 open"]
    assert effects(2, 5, TWO_STEP) == ["buy 3 open"]
    assert effects(5, 2, TWO_STEP) == ["sell 3 close"]
    assert effects(-3, 0, TWO_STEP) == ["buy 3 close"]
    assert effects(2, -1, TWO_STEP) == ["sell 2 close", "sell 1 open"]
    assert effects(2, -1, ONE_ORDER) == ["sell 3 reverse"]


def test_a_leg_that_closes_only_if_working_orders_fill_is_an_open() -> None:
    # Flat with a buy of 2 working: selling 1 closes only if that buy fills first. A venue
    # judges "to close" against what it holds now (nothing), so it must be an open.
    assert effects(0, 1, TWO_STEP, pending=2) == ["sell 1 open"]
    # Long 4 with a sell of 1 working: selling 2 more closes either way.
    assert effects(4, 1, TWO_STEP, pending=-1) == ["sell 2 close"]


@given(st.integers(-5, 5), st.integers(-5, 5), st.integers(-5, 5), st.booleans())
def test_a_close_never_grows_the_position(position: int, pending: int, target: int, one: bool):
    signal = Signal.create("s", "ES", 1, target)
    caps = ONE_ORDER if one else TWO_STEP
    for order in orders_for_signal(signal, position, pending, caps, 1):
        change = order.quantity if order.side is Side.BUY else -order.quantity
        if order.position_effect is PositionEffect.CLOSE:
            assert abs(position + change) < abs(position)
            assert abs(position + pending + change) < abs(position + pending)
        if order.position_effect is PositionEffect.REVERSE:
            assert caps.can_reverse_in_one_order


# --- combinations (multi-leg positions)


def vertical(target: int) -> Signal:
    legs = (ComboLeg("C600", 1), ComboLeg("C605", -1))
    return Signal.create("s", "vert", 1, target, legs=legs)


def test_a_combination_needs_distinct_legs_with_coprime_nonzero_ratios():
    check_combo((ComboLeg("a", 1), ComboLeg("b", -2)))
    for legs, words in [
        ((ComboLeg("a", 1),), "two or more"),
        ((ComboLeg("a", 1), ComboLeg("a", -1)), "twice"),
        ((ComboLeg("a", 1), ComboLeg("b", 0)), "ratio 0"),
        ((ComboLeg("a", 2), ComboLeg("b", -4)), "factor 2"),
    ]:
        with pytest.raises(ComboError, match=words):
            check_combo(legs)


def test_combo_position_counts_whole_units_and_refuses_legs_out_of_proportion():
    legs = (ComboLeg("a", 1), ComboLeg("b", -2))
    assert combo_position(legs, {}) == 0
    assert combo_position(legs, {"a": 3, "b": -6}) == 3
    assert combo_position(legs, {"a": -2, "b": 4}) == -2
    for held in ({"a": 3, "b": -5}, {"a": 3}, {"b": -2}):
        with pytest.raises(ComboError, match="not whole units"):
            combo_position(legs, held)


def test_a_combination_is_one_order_carrying_its_legs_and_reverses_in_two():
    [opening] = orders_for_signal(vertical(2), 0, 0, COMBO_CAPS, ts=5)
    assert (opening.side, opening.quantity, opening.legs) == (Side.BUY, 2, vertical(2).legs)
    close, reopen = orders_for_signal(vertical(-1), 2, 0, COMBO_CAPS, ts=5)
    assert (close.side, close.quantity, close.position_effect) == (Side.SELL, 2, "close")
    assert (reopen.side, reopen.quantity, reopen.position_effect) == (Side.SELL, 1, "open")
    assert close.legs == reopen.legs == vertical(-1).legs
    assert leg_side(close, close.legs[0]) is Side.SELL
    assert leg_side(close, close.legs[1]) is Side.BUY


def test_a_refusal_records_the_whole_target():
    refused = refusal(vertical(-3), ts=9)
    assert (refused.side, refused.quantity, refused.status) == (Side.SELL, 3, OrderStatus.NEW)
    assert refusal(vertical(0), ts=9).quantity == 1
