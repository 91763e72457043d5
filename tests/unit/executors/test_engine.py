"""The engine over a real ledger and paper venue: netting, write-ahead, lookups, restarts."""

import pytest

from executors.brokers.base import VenueStatus
from executors.risk import RejectReason
from tests.unit.executors.engine_fixtures import PX, T0, Rig, limits, quote, signal
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.trading import OrderStatus, Side


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def position(rig, symbol="ES", strategy="s1"):
    return {
        (h.position.strategy, h.position.symbol): h.position.quantity for h in rig.engine.holdings()
    }.get((strategy, symbol), 0)


def test_market_order_fills_at_first_quote_after_signal_on_the_right_side(rig):
    rig.ticks("ES", quote(T0 - 10, ask=PX + 5), quote(T0, ask=PX + 6))
    rig.engine.on_signal(signal("ES", T0, 2))
    assert rig.venue.store.fills() == []  # no tick after the signal time yet
    rig.ticks("ES", quote(T0 + 1, bid=PX - 3, ask=PX + 7))
    [fill] = rig.venue.store.fills()
    assert (fill.side, fill.quantity, fill.price, fill.ts_event) == (Side.BUY, 2, PX + 7, T0 + 1)
    assert position(rig) == 2


def test_a_reversal_is_one_order_of_the_combined_size(rig):
    rig.engine.on_signal(signal("ES", T0, 1))
    rig.ticks("ES", quote(T0 + 1))
    rig.engine.on_signal(signal("ES", T0 + 2, -1))
    rig.ticks("ES", quote(T0 + 3))
    orders = rig.venue.store.orders()
    assert [(o.side, o.quantity) for o in orders] == [(Side.BUY, 1), (Side.SELL, 2)]
    assert position(rig) == -1


def test_without_one_order_reversals_leg_one_waits_for_leg_zero_and_survives_a_crash(tmp_path):
    rig = Rig(tmp_path, reverse=False)
    rig.engine.on_signal(signal("ES", T0, 1))
    rig.ticks("ES", quote(T0 + 1))
    rig.engine.on_signal(signal("ES", T0 + 2, -1))
    assert [(o.side, o.quantity) for o in rig.venue.store.orders()] == [
        (Side.BUY, 1),
        (Side.SELL, 1),
    ]
    # Leg 0 fills at the venue while the executor is down; leg 1 was never sent.
    rig.venue.on_ticks("ES", [quote(T0 + 3)])
    rig.restart()  # reconciliation takes the fill and releases leg 1
    rig.ticks("ES", quote(T0 + 4))
    assert [(o.side, o.quantity) for o in rig.venue.store.orders()] == [
        (Side.BUY, 1),
        (Side.SELL, 1),
        (Side.SELL, 1),
    ]
    assert position(rig) == -1
    assert rig.venue.store.duplicate_submits() == []
    rig.close()


def test_an_ambiguous_submit_is_resolved_by_lookup_with_no_second_order(tmp_path):
    rig = Rig(tmp_path, lose_every=1)
    rig.ticks("ES", quote(T0 + 1))
    rig.engine.on_signal(signal("ES", T0, 3))
    assert len(rig.venue.store.orders()) == 1
    assert rig.venue.store.duplicate_submits() == []
    assert rig.engine.metrics.ambiguous._value.get() == 1
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.FILLED
    assert order.venue_order_id
    assert position(rig) == 3
    rig.close()


def test_a_crash_after_the_venue_got_the_order_is_resolved_by_lookup(rig):
    sig = signal("ES", T0, 2)
    # The crash: the ledger holds the order as PENDING_SUBMIT and the venue has it too.
    original = rig.engine._send
    rig.engine._send = rig.venue.submit
    rig.engine.on_signal(sig)
    rig.engine._send = original
    [pending] = rig.ledger.all_orders()
    assert pending.status is OrderStatus.PENDING_SUBMIT
    rig.restart()
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.ACCEPTED
    assert rig.venue.lookup(order.client_order_id).status is VenueStatus.ACCEPTED
    assert rig.venue.store.duplicate_submits() == []


def test_a_crash_before_the_venue_got_the_order_sends_it_once(rig):
    original = rig.engine._send
    rig.engine._send = lambda order: None
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.engine._send = original
    rig.restart()
    assert len(rig.venue.store.orders()) == 1


def test_a_replayed_signal_changes_nothing(rig):
    sig = signal("ES", T0, 2)
    assert rig.engine.on_signal(sig)
    assert not rig.engine.on_signal(sig)
    rig.restart()
    assert not rig.engine.on_signal(sig)
    assert len(rig.venue.store.orders()) == 1


def test_a_risk_reject_is_an_event_with_a_reason_and_a_metric(tmp_path):
    rig = Rig(tmp_path, risk=limits(max_position=1))
    rig.engine.on_signal(signal("ES", T0, 5))
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.REJECTED
    assert order.reason.startswith("risk max_position")
    assert rig.engine.metrics.rejects.labels("max_position")._value.get() == 1
    assert rig.venue.store.orders() == []
    rig.close()


def test_daily_loss_limit_survives_a_restart(tmp_path):
    rig = Rig(tmp_path, risk=limits(daily_loss_limit=5 * 10**9))
    rig.engine.on_signal(signal("ES", T0, 10))
    rig.ticks("ES", quote(T0 + 1, ask=PX))
    rig.engine.on_signal(signal("ES", T0 + 2, 0))
    rig.ticks("ES", quote(T0 + 3, bid=PX - 10**9))  # sells 10 one point lower: -10
    assert rig.engine.day_pnl(T0 + 4) == -10 * 10**9
    rig.restart()
    rig.engine.on_signal(signal("ES", T0 + 5, 1))
    last = rig.ledger.all_orders()[-1]
    assert last.status is OrderStatus.REJECTED
    assert last.reason.startswith(f"risk {RejectReason.DAILY_LOSS.value}")
    rig.close()


def test_kill_switch_and_flatten_from_control(rig):
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.ticks("ES", quote(T0 + 1))
    halt = ControlCommand.create(
        ControlAction.KILL_SWITCH, T0, kill_switch=KillSwitchState.REDUCING
    )
    rig.engine.on_control(halt)
    rig.engine.on_signal(signal("ES", T0 + 2, 4))
    assert rig.ledger.all_orders()[-1].reason.startswith("risk reducing_only")
    rig.engine.on_control(ControlCommand.create(ControlAction.FLATTEN, T0 + 3, symbol="ES"))
    rig.ticks("ES", quote(T0 + 4))
    assert position(rig) == 0


def test_a_position_mismatch_halts_trading(rig):
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.ticks("ES", quote(T0 + 1))
    rig.venue.store.positions = lambda: {"ES": 3}
    from executors.reconcile import reconcile  # noqa: PLC0415

    diffs = reconcile(rig.engine)
    assert [(d.symbol, d.ledger, d.broker) for d in diffs] == [("ES", 2, 3)]
    assert rig.engine.metrics.mismatches._value.get() == 1
    rig.engine.on_signal(signal("ES", T0 + 2, 0))
    assert rig.ledger.all_orders()[-1].reason.startswith("risk halted")
