"""Limits and stops: priced from the signal, resting at the venue, cancelled before the next
signal for their symbol is netted, so an order that never trades never leaves a position wrong."""

import pytest

from executors.brokers.base import AmbiguousAnswerError
from executors.pricing import OrderStyle
from tests.unit.executors.engine_fixtures import PX, T0, Rig, quote, signal
from ticklane.control import ControlAction, ControlCommand
from ticklane.trading import OrderStatus, OrderType

S = OrderStatus
TICK = 250_000_000


def rig_for(tmp_path, style: OrderStyle, **kwargs) -> Rig:
    return Rig(tmp_path, styles={"s1": style}, tick_sizes={"ES": TICK}, **kwargs)


def position(rig: Rig) -> int:
    return rig.engine.positions_by_symbol().get("ES", 0)


class FlakyCancel:
    """The paper venue, whose first `lose[0]` cancels (across restarts) never reach it."""

    def __init__(self, venue, lose: list[int]) -> None:
        self._venue, self.lose = venue, lose

    def cancel(self, client_order_id):
        if self.lose[0]:
            self.lose[0] -= 1
            raise AmbiguousAnswerError("cancel: connection reset")
        return self._venue.cancel(client_order_id)

    def __getattr__(self, name):
        return getattr(self._venue, name)


def test_a_limit_rests_below_the_reference_and_the_next_signal_cancels_it_first(tmp_path):
    rig = rig_for(tmp_path, OrderStyle("limit", ticks_away=2))
    try:
        rig.engine.on_signal(signal("ES", T0, 1))
        rig.ticks("ES", quote(T0 + 1))  # ask 100.10: above the limit, nothing trades
        [resting] = rig.ledger.all_orders()
        assert (resting.order_type, resting.limit_price) == (OrderType.LIMIT, PX - 2 * TICK)
        assert resting.status is S.ACCEPTED
        # Netting against the resting buy would sell 1 and leave the account short if the buy
        # never trades; instead it is cancelled and the signal netted from the position.
        assert rig.engine.on_signal(signal("ES", T0 + 2, 0))
        [cancelled] = rig.ledger.all_orders()
        assert cancelled.status is S.CANCELLED
        assert rig.ledger.has_signal(signal("ES", T0 + 2, 0).signal_id)
        assert position(rig) == 0
        assert [o.status for o in rig.venue.store.orders()] == ["cancelled"]
    finally:
        rig.close()


def test_a_stop_waits_for_the_move_and_fills_once_it_comes(tmp_path):
    rig = rig_for(tmp_path, OrderStyle("stop", ticks_away=1))
    try:
        rig.engine.on_signal(signal("ES", T0, 1))
        [stop] = rig.ledger.all_orders()
        assert (stop.order_type, stop.stop_price) == (OrderType.STOP, PX + TICK)
        rig.ticks("ES", quote(T0 + 1))  # ask 100.10: short of the 100.25 trigger
        assert position(rig) == 0
        rig.ticks("ES", quote(T0 + 2, bid=PX + 2 * TICK, ask=PX + 3 * TICK))
        assert position(rig) == 1
        assert rig.ledger.all_orders()[0].status is S.FILLED
    finally:
        rig.close()


def test_signals_during_a_lost_cancel_wait_the_latest_survives_a_restart(tmp_path):
    lose = [1]
    rig = rig_for(
        tmp_path, OrderStyle("limit", ticks_away=2), wrap=lambda v, r: FlakyCancel(v, lose)
    )
    try:
        rig.engine.on_signal(signal("ES", T0, 1))
        middle, latest = signal("ES", T0 + 2, 0), signal("ES", T0 + 3, -1)
        assert rig.engine.on_signal(middle)  # kept; its cancel's answer is lost
        [resting] = rig.ledger.all_orders()
        assert resting.status is S.PENDING_CANCEL
        assert rig.engine.on_signal(latest)  # supersedes the middle one
        assert rig.ledger.has_signal(middle.signal_id)
        assert not rig.engine.on_signal(latest)  # a replay changes nothing
        assert [s.signal_id for s in rig.ledger.deferred_signals()] == [latest.signal_id]
        rig.restart()  # the cancel is asked again, and the latest signal answered
        resting_now, answer = rig.ledger.all_orders()
        assert resting_now.status is S.CANCELLED
        assert (answer.signal_id, answer.quantity, answer.side) == (latest.signal_id, 1, "sell")
        assert rig.ledger.orders_of_signal(middle.signal_id) == []
        assert rig.ledger.deferred_signals() == []
    finally:
        rig.close()


def test_a_flatten_cancels_what_rests_then_closes_at_market(tmp_path):
    rig = rig_for(tmp_path, OrderStyle("limit", ticks_away=0))
    try:
        rig.engine.on_signal(signal("ES", T0, 1))
        rig.ticks("ES", quote(T0 + 1, bid=PX - 2 * TICK, ask=PX))  # ask at the limit: fills
        assert position(rig) == 1
        rig.engine.on_signal(signal("ES", T0 + 2, 2))  # rests: the ask has moved away
        rig.ticks("ES", quote(T0 + 3))
        rig.engine.on_control(ControlCommand.create(ControlAction.FLATTEN, T0 + 4, symbol="ES"))
        *_, resting, flatten = rig.ledger.all_orders()
        assert resting.status is S.CANCELLED
        assert (flatten.order_type, flatten.quantity, flatten.side) == (OrderType.MARKET, 1, "sell")
        rig.ticks("ES", quote(T0 + 5))
        assert position(rig) == 0
    finally:
        rig.close()


@pytest.mark.parametrize(
    ("kind", "side", "field", "expected"),
    [
        ("limit", 1, "limit_price", PX - 3 * TICK),
        ("limit", -1, "limit_price", PX + 3 * TICK),
        ("stop", 1, "stop_price", PX + 3 * TICK),
        ("stop", -1, "stop_price", PX - 3 * TICK),
    ],
)
def test_limits_rest_on_the_better_side_and_stops_beyond(tmp_path, kind, side, field, expected):
    rig = rig_for(tmp_path, OrderStyle(kind, ticks_away=3))
    try:
        rig.engine.on_signal(signal("ES", T0, side))
        [order] = rig.ledger.all_orders()
        assert getattr(order, field) == expected
    finally:
        rig.close()


def test_a_lost_cancel_is_asked_again_after_the_settle_window_in_the_same_process(tmp_path):
    lose = [1]
    rig = rig_for(
        tmp_path, OrderStyle("limit", ticks_away=2), wrap=lambda v, r: FlakyCancel(v, lose)
    )
    try:
        rig.engine.on_signal(signal("ES", T0, 1))
        rig.engine.on_signal(signal("ES", T0 + 2, -1))
        rig.engine.take_updates()
        assert [o.status for o in rig.ledger.all_orders()] == [S.PENDING_CANCEL]
        rig.advance(11)  # past the 10 s settle window
        rig.engine.take_updates()
        cancelled, answer = rig.ledger.all_orders()
        assert cancelled.status is S.CANCELLED
        assert (answer.side, answer.quantity) == ("sell", 1)
    finally:
        rig.close()
