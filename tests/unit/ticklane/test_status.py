"""Process status: how a reader judges a heartbeat, and the message on the wire."""

from ticklane import wire
from ticklane.status import Health, ProcessState, ProcessStatus, health, instance_name

SECOND = 1_000_000_000
T0 = 1_800_000_000 * SECOND


def status(state: ProcessState, ts: int = T0, interval_s: int = 5) -> ProcessStatus:
    return ProcessStatus("executor", "executor/x@h", state, ts, interval_s * SECOND)


def test_running_and_on_time_is_up() -> None:
    assert health(status(ProcessState.RUNNING), T0 + 14 * SECOND) is Health.UP


def test_three_missed_heartbeats_is_silent_whatever_it_last_said() -> None:
    for state in (ProcessState.RUNNING, ProcessState.DEGRADED, ProcessState.HALTED):
        assert health(status(state), T0 + 16 * SECOND) is Health.SILENT


def test_reporting_but_not_running_normally_is_degraded() -> None:
    for state in (ProcessState.DEGRADED, ProcessState.HALTED, ProcessState.STARTING):
        assert health(status(state), T0 + SECOND) is Health.DEGRADED


def test_a_clean_stop_is_stopped_not_silent_even_long_after() -> None:
    assert health(status(ProcessState.STOPPED), T0 + 3600 * SECOND) is Health.STOPPED


def test_status_and_its_key_round_trip_on_the_wire() -> None:
    sent = ProcessStatus(
        "agents",
        instance_name("agents", "app"),
        ProcessState.DEGRADED,
        T0,
        5 * SECOND,
        "2 output message(s) Kafka did not take",
        -1,
        {"ticks": "10"},
    )
    got = wire.decode(wire.encode(sent))
    assert got == sent
    assert isinstance(got, ProcessStatus)
    assert got.key == sent.instance
    assert got.instance.startswith("agents/app@")
