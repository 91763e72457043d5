"""Heartbeats on the real broker: published on time, keyed by instance, a clean stop said."""

from tests.conftest import poll_until
from tests.integration.executors.scenario import create_topics
from ticklane import kafka, wire
from ticklane.beacon import Beacon, Report
from ticklane.settings import Settings
from ticklane.status import ProcessState, ProcessStatus
from ticklane.topics import resolve


def statuses(read_topic, settings: Settings) -> list[tuple[bytes | None, ProcessStatus]]:
    found = read_topic(resolve(settings.topics, "status"))
    return [(key, wire.decode_as(value, ProcessStatus)) for *_, key, value in found]


def test_a_beacon_reports_its_probe_and_says_stopped_last(settings: Settings, read_topic) -> None:
    bootstrap = kafka.bootstrap_servers(settings)
    create_topics(settings)
    settings = settings.model_copy(update={"status_interval_s": 0.2})
    calls: list[int] = []

    def probe() -> Report:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("venue unreachable")
        return Report(ProcessState.RUNNING, "", 7, {"venue": "paper"})

    beacon = Beacon(settings, bootstrap, "executor", "executor/x@host", probe)
    beacon.start()
    poll_until(lambda: len(calls) >= 3, timeout_s=10, what="three heartbeats")
    beacon.stop("SIGTERM")
    seen = poll_until(
        lambda: (
            (got := statuses(read_topic, settings))
            and got[-1][1].state is ProcessState.STOPPED
            and got
        ),
        timeout_s=10,
        what="the stopped status",
    )
    assert {key for key, _ in seen} == {b"executor/x@host"}
    first, failed = seen[0][1], seen[1][1]
    assert (first.process, first.state, first.lag, first.details) == (
        "executor",
        ProcessState.RUNNING,
        7,
        {"venue": "paper"},
    )
    assert first.interval_ns == 200_000_000
    # A probe that fails is itself the news: degraded, with its reason.
    assert failed.state is ProcessState.DEGRADED
    assert "venue unreachable" in failed.reason
    assert seen[-1][1].reason == "SIGTERM"
    times = [s.ts_event for _, s in seen]
    assert times == sorted(times)
