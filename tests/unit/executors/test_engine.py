"""The engine over a real ledger and paper venue: netting, write-ahead, lookups, restarts."""

import msgspec
import pytest

from executors.brokers.base import AmbiguousAnswerError, VenueStatus
from executors.pricing import OrderStyle
from executors.reconcile import reconcile
from executors.risk import RejectReason
from executors.routing import Route
from tests.unit.executors.engine_fixtures import PX, T0, WALL0, Rig, limits, quote, signal
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.trading import ComboLeg, Fill, OrderStatus, Side, Signal


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
    # The crash: the ledger holds the order as PENDING_SUBMIT and the venue has it too; the
    # venue's answer and what it pushed die with the process.
    original = rig.engine._send
    rig.engine._send = lambda order: (rig.venue.submit(order), rig.venue.updates())
    rig.engine.on_signal(sig)
    rig.engine._send = original
    [pending] = rig.ledger.all_orders()
    assert pending.status is OrderStatus.PENDING_SUBMIT
    rig.restart()
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.ACCEPTED
    assert rig.venue.lookup(order.client_order_id).status is VenueStatus.ACCEPTED
    assert rig.venue.store.duplicate_submits() == []


def test_a_crash_before_the_venue_got_the_order_sends_it_once_after_the_settle_window(rig):
    original = rig.engine._send
    rig.engine._send = lambda order: None
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.engine._send = original
    rig.restart()
    # The venue shows nothing, but its lists may lag: no resend yet, and ES takes no new order.
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.UNKNOWN
    assert rig.venue.store.orders() == []
    assert rig.engine.metrics.unresolved._value.get() == 1
    rig.engine.on_signal(signal("ES", T0 + 1, 5))
    blocked = [o for o in rig.ledger.all_orders() if o.client_order_id != order.client_order_id]
    assert [o.status for o in blocked] == [OrderStatus.REJECTED]
    assert blocked[0].reason.startswith(f"risk {RejectReason.UNRESOLVED_ORDER.value}")
    rig.engine.on_signal(signal("NQ", T0 + 1, 1))  # other symbols trade on
    assert [r.symbol for r in rig.venue.store.orders()] == ["NQ"]
    rig.advance(9.9)
    assert rig.engine.resolve_unknown() == 1
    assert [r.symbol for r in rig.venue.store.orders()] == ["NQ"]
    rig.advance(0.2)  # 10.1 s after the send, restart included
    assert rig.engine.resolve_unknown() == 0
    assert sorted(r.symbol for r in rig.venue.store.orders()) == ["ES", "NQ"]
    assert rig.ledger.order(order.client_order_id).status is OrderStatus.ACCEPTED
    assert rig.ledger.send_state(order.client_order_id).sends == 2
    assert rig.engine.metrics.unresolved._value.get() == 0


class LaggingVenue:
    """The paper venue with its stream down, whose lookups show an order only `lag_s` after
    it arrived."""

    def __init__(self, venue, rig, lag_s):
        self._venue, self._rig, self._lag_ns = venue, rig, int(lag_s * 1e9)
        self.arrived: dict[str, int] = {}
        self.name, self.caps = venue.name, venue.caps

    def submit(self, order):
        self.arrived.setdefault(order.client_order_id, self._rig.now)
        return self._venue.submit(order)

    def updates(self):
        self._venue.updates()
        return []

    def lookup(self, client_order_id):
        arrived = self.arrived.get(client_order_id)
        if arrived is None or self._rig.now < arrived + self._lag_ns:
            return None
        return self._venue.lookup(client_order_id)

    def __getattr__(self, name):
        return getattr(self._venue, name)


def test_a_lost_answer_while_the_venue_lags_3s_sends_no_second_order(tmp_path):
    rig = Rig(tmp_path, lose_every=1, wrap=lambda venue, r: LaggingVenue(venue, r, lag_s=3.0))
    rig.engine.on_signal(signal("ES", T0, 3))
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.UNKNOWN
    for _ in range(20):  # the service's resolution loop, every 0.25 s for 5 s
        rig.advance(0.25)
        rig.engine.resolve_unknown()
        if rig.now - WALL0 < 3e9:
            assert rig.ledger.order(order.client_order_id).status is OrderStatus.UNKNOWN
    assert len(rig.venue.store.orders()) == 1
    assert rig.venue.store.duplicate_submits() == []
    assert rig.ledger.order(order.client_order_id).status is OrderStatus.ACCEPTED
    assert rig.ledger.send_state(order.client_order_id).sends == 1
    rig.ticks("ES", quote(T0 + 1))
    assert position(rig) == 0  # the stream is down: the fill is taken by polling
    reconcile(rig.engine)
    assert position(rig) == 3
    rig.close()


class BlackHole:
    """A venue that never receives anything: every submit's answer is lost."""

    name = "void"

    def __init__(self, venue, rig):
        self.caps, self.submits = venue.caps, 0

    def caps_for(self, symbol):
        return self.caps

    def submit(self, order):
        self.submits += 1
        raise AmbiguousAnswerError("timed out")

    def lookup(self, client_order_id):
        return None

    def updates(self):
        return []

    def fills_since(self, cursor):
        return []

    def positions(self):
        return {}


def test_resends_are_bounded_then_the_order_is_rejected(tmp_path):
    holes = []
    rig = Rig(tmp_path, wrap=lambda venue, r: holes.append(BlackHole(venue, r)) or holes[-1])
    rig.engine.on_signal(signal("ES", T0, 1))
    for _ in range(10):
        rig.advance(11)
        rig.engine.resolve_unknown()
    [order] = rig.ledger.all_orders()
    assert holes[-1].submits == 3 == rig.engine.config.max_sends
    assert order.status is OrderStatus.REJECTED
    assert "never received" in order.reason
    assert rig.engine.metrics.unresolved._value.get() == 0
    rig.close()


class VenueIdsOnly:
    """The paper venue whose fills name only the venue's order id, as a pushed fill may."""

    def __init__(self, venue, rig):
        self._venue = venue
        self.name, self.caps = venue.name, venue.caps

    def fills_since(self, cursor):
        return [
            msgspec.structs.replace(f, fill=msgspec.structs.replace(f.fill, client_order_id=""))
            for f in self._venue.fills_since(cursor)
        ]

    def __getattr__(self, name):
        return getattr(self._venue, name)


def test_a_fill_naming_only_the_venue_order_id_finds_its_order(tmp_path):
    rig = Rig(tmp_path, wrap=VenueIdsOnly)
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.ticks("ES", quote(T0 + 1))
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.FILLED
    assert rig.ledger.order_by_venue_id(order.venue_order_id) == order
    [fill] = rig.ledger.fills()
    assert fill.client_order_id == order.client_order_id
    assert position(rig) == 2
    rig.close()


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


class Stuttering:
    """The paper venue whose stream delivers everything twice, newest first."""

    def __init__(self, venue, rig):
        self._venue = venue
        self.name, self.caps = venue.name, venue.caps

    def updates(self):
        pushed = self._venue.updates()
        return list(reversed(pushed)) + list(reversed(pushed))

    def __getattr__(self, name):
        return getattr(self._venue, name)


def test_pushed_updates_twice_and_out_of_order_count_once(tmp_path):
    rig = Rig(tmp_path, reverse=False, wrap=Stuttering)
    rig.ticks("ES", quote(T0 - 1))
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.ticks("ES", quote(T0 + 1))
    rig.engine.on_signal(signal("ES", T0 + 2, -1))  # a two-step reversal: leg 1 after leg 0
    rig.ticks("ES", quote(T0 + 3))
    rig.ticks("ES", quote(T0 + 4))
    assert position(rig) == -1
    assert sorted(f.quantity for f in rig.ledger.fills()) == [1, 2, 2]
    assert {o.status for o in rig.ledger.all_orders()} == {OrderStatus.FILLED}
    assert rig.venue.store.duplicate_submits() == []
    errors = rig.engine.metrics.errors
    assert sum(s.value for m in errors.collect() for s in m.samples) == 0
    reconcile(rig.engine)  # the polled fills are the same fills
    assert sorted(f.quantity for f in rig.ledger.fills()) == [1, 2, 2]
    assert rig.engine.halted_reason == ""


class Halving:
    """The paper venue whose stream pushes each fill as two halves, each of them twice."""

    def __init__(self, venue, rig):
        self._venue = venue
        self.name, self.caps = venue.name, venue.caps

    def updates(self):
        pushed = []
        for update in self._venue.updates():
            if isinstance(update, Fill):
                half = update.quantity // 2
                first = msgspec.structs.replace(
                    update, fill_id=f"{update.fill_id}-a", quantity=half
                )
                rest = update.quantity - half
                second = msgspec.structs.replace(
                    update, fill_id=f"{update.fill_id}-b", quantity=rest
                )
                pushed += [first, first, second, second]
            else:
                pushed.append(update)
        return pushed

    def __getattr__(self, name):
        return getattr(self._venue, name)


def test_a_partial_fill_pushed_twice_counts_once_while_its_order_works(tmp_path):
    """The repeat of a first half finds its order still able to take it: the ledger's write
    refuses it; the repeat of the second half would overfill: the ledger is asked."""
    rig = Rig(tmp_path, reverse=False, wrap=Halving)
    rig.ticks("ES", quote(T0 - 1))
    rig.engine.on_signal(signal("ES", T0, 4))
    rig.ticks("ES", quote(T0 + 1))
    assert sorted(f.quantity for f in rig.ledger.fills()) == [2, 2]
    assert position(rig) == 4
    [order] = rig.ledger.all_orders()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 4)
    errors = rig.engine.metrics.errors
    assert sum(s.value for m in errors.collect() for s in m.samples) == 0
    rig.close()


def test_an_executor_answers_only_the_signals_routed_to_it(tmp_path):
    rig = Rig(tmp_path, route=Route(strategies=("s*",), symbols=("ES*",)))
    assert rig.engine.on_signal(signal("ESU4", T0, 1))
    assert not rig.engine.on_signal(signal("NQU4", T0, 1))
    assert not rig.engine.on_signal(signal("ESU4", T0 + 1, 2, strategy="other"))
    assert [o.symbol for o in rig.ledger.all_orders()] == ["ESU4"]
    assert not rig.ledger.has_signal(signal("NQU4", T0, 1).signal_id)
    assert rig.engine.metrics.signals.labels("not_routed")._value.get() == 2
    rig.close()


def test_a_venue_position_the_executor_never_opened_is_reported_not_halting(rig):
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.ticks("ES", quote(T0 + 1))
    venue_positions = rig.venue.store.positions
    rig.venue.store.positions = lambda: venue_positions() | {"AAPL": 100}
    assert reconcile(rig.engine) == []
    assert rig.engine.halted_reason == ""
    assert rig.engine.metrics.foreign_position.labels("AAPL")._value.get() == 100
    rig.engine.on_signal(signal("ES", T0 + 2, 0))
    rig.ticks("ES", quote(T0 + 3))
    assert position(rig) == 0
    rig.venue.store.positions = venue_positions  # the trader closed it by hand
    reconcile(rig.engine)
    samples = [s for m in rig.engine.metrics.foreign_position.collect() for s in m.samples]
    assert samples == []


def test_a_foreign_position_halts_where_the_setting_says(tmp_path):
    rig = Rig(tmp_path, halt_on_foreign_positions=True)
    rig.venue.store.positions = lambda: {"AAPL": 100}
    reconcile(rig.engine)
    assert "AAPL: 100 not opened by this executor" in rig.engine.halted_reason
    rig.engine.on_signal(signal("ES", T0, 1))
    assert rig.ledger.all_orders()[-1].reason.startswith("risk halted")
    assert rig.engine.metrics.mismatches._value.get() == 0
    rig.close()


def test_a_leg_released_after_a_restart_is_valued_at_the_last_fill(tmp_path):
    rig = Rig(tmp_path, reverse=False)
    rig.ticks("ES", quote(T0 - 1))
    rig.engine.on_signal(signal("ES", T0, 2))
    rig.ticks("ES", quote(T0 + 1))
    rig.engine.release = lambda signal_id: None  # dies after leg 0's fill, before leg 1
    rig.engine.on_signal(signal("ES", T0 + 2, -1, price=None))
    rig.ticks("ES", quote(T0 + 3))
    assert [o.status for o in rig.ledger.all_orders()][-1] is OrderStatus.NEW
    rig.restart()
    rig.ticks("ES", quote(T0 + 4))
    assert [o.status for o in rig.ledger.all_orders()][-1] is OrderStatus.FILLED
    assert position(rig) == -1
    rig.close()


def test_marketable_limits_fill_near_the_reference_and_never_far_from_it(tmp_path):
    style = OrderStyle("marketable_limit", ticks_through=2)
    rig = Rig(tmp_path, style=style, tick_sizes={"ES": 10**8, "NQ": 10**8})
    rig.engine.on_signal(signal("ES", T0, 1))  # limit PX + 0.2
    rig.ticks("ES", quote(T0 + 1))  # ask PX + 0.1: through the limit, fills at the ask
    [es] = rig.ledger.all_orders()
    assert (es.order_type, es.limit_price, es.status) == ("limit", PX + 2 * 10**8, "filled")
    assert rig.ledger.fills()[0].price == PX + 10**8
    rig.engine.on_signal(signal("NQ", T0, 1))
    rig.ticks("NQ", quote(T0 + 1, bid=PX + 10**9, ask=PX + 10**9 + 10**8))  # gapped away
    nq = rig.ledger.all_orders()[-1]
    assert nq.status is OrderStatus.ACCEPTED  # rests at its limit instead of chasing the gap
    rig.close()


def test_a_marketable_limit_without_a_tick_size_is_rejected_saying_so(tmp_path):
    rig = Rig(tmp_path, style=OrderStyle("marketable_limit"))
    rig.engine.on_signal(signal("ES", T0, 1))
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.REJECTED
    assert "no tick size for ES" in order.reason
    assert rig.venue.store.orders() == []
    rig.close()


def test_a_multi_leg_signal_at_the_paper_venue_is_rejected_saying_why(rig):
    legs = (ComboLeg("ESZ4 C6000", 1), ComboLeg("ESZ4 C6050", -1))
    rig.engine.on_signal(Signal.create("s1", "call vertical", T0, 1, reference_price=PX, legs=legs))
    [order] = rig.ledger.all_orders()
    assert order.status is OrderStatus.REJECTED
    assert "does not fill multi-leg orders" in order.reason
    assert order.legs == legs
    assert rig.venue.store.orders() == []


def test_a_multi_leg_signal_outside_the_route_is_left_alone(rig):
    rig.engine.config = msgspec.structs.replace(rig.engine.config, route=Route(symbols=("ES*",)))
    legs = (ComboLeg("ESZ4 C6000", 1), ComboLeg("NQZ4 C20000", -1))
    assert not rig.engine.on_signal(Signal.create("s1", "mixed", T0, 1, legs=legs))
    assert rig.ledger.all_orders() == []
