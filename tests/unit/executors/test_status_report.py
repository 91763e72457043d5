"""The executor's status: what halts it and what degrades it, as `status` shows."""

from pathlib import Path

from executors.brokers.base import TradingPermit
from executors.service import executor_report
from tests.unit.executors.engine_fixtures import T0, Rig, quote, signal
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.status import ProcessState


def test_a_clean_executor_is_running_with_its_venue_and_counts(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.ticks("ES", quote(T0))
    report = executor_report(rig.engine)
    assert report.state is ProcessState.RUNNING
    assert report.reason == ""
    assert report.details["venue"] == rig.venue.name
    assert report.details["reconciliation"] == "clean"
    assert report.details["kill_switch"] == "active"
    rig.close()


def test_a_reconciliation_halt_is_halted_with_its_reason(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.halted_reason = "ES: ledger 1, venue 0"
    report = executor_report(rig.engine)
    assert report.state is ProcessState.HALTED
    assert "ES: ledger 1, venue 0" in report.reason
    assert report.details["reconciliation"] == "halted"
    rig.close()


def test_a_global_kill_switch_halts_and_a_reducing_venue_degrades(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine.venue_permit = TradingPermit(KillSwitchState.REDUCING, "token expires in 20 h")
    report = executor_report(rig.engine)
    assert report.state is ProcessState.DEGRADED
    assert "token expires" in report.reason
    halt = ControlCommand.create(ControlAction.KILL_SWITCH, T0, kill_switch=KillSwitchState.HALTED)
    rig.engine.on_control(halt)
    report = executor_report(rig.engine)
    assert report.state is ProcessState.HALTED
    assert "kill switch" in report.reason
    rig.close()


def test_an_order_of_unknown_fate_degrades(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.ticks("ES", quote(T0))
    send = rig.engine._send
    rig.engine._send = lambda order: None  # a crash before the venue got the order...
    rig.engine.on_signal(signal("ES", T0, 1))
    rig.engine._send = send
    rig.restart()  # ...so, restarted, the executor does not know its fate yet
    assert rig.engine.unresolved == 1
    report = executor_report(rig.engine)
    assert report.state is ProcessState.DEGRADED
    assert report.details["unresolved_orders"] == "1"
    rig.close()


def test_a_kill_switch_shows_per_scope_on_its_gauge(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    reducing = ControlCommand.create(
        ControlAction.KILL_SWITCH, T0, strategy="s1", kill_switch=KillSwitchState.REDUCING
    )
    rig.engine.on_control(reducing)
    registry = rig.engine.metrics.registry
    level = registry.get_sample_value
    assert level("ticklane_executor_kill_switch", {"strategy": "s1", "symbol": ""}) == 1
    active = ControlCommand.create(
        ControlAction.KILL_SWITCH, T0, strategy="s1", kill_switch=KillSwitchState.ACTIVE
    )
    rig.engine.on_control(active)
    assert level("ticklane_executor_kill_switch", {"strategy": "s1", "symbol": ""}) == 0
    rig.close()


def test_a_venue_whose_stream_is_down_degrades(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.venue.stream_connected = False  # type: ignore[attr-defined]  # as a real venue's says
    report = executor_report(rig.engine)
    assert report.state is ProcessState.DEGRADED
    assert "stream disconnected" in report.reason
    rig.close()
