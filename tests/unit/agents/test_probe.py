"""The agents' status: not ready while the worker holds no md.* partition, whatever Faust says."""

from agents import metrics
from agents.service import AgentsProbe
from ticklane.status import ProcessState


def test_a_worker_without_partitions_is_starting_and_says_why() -> None:
    probe = AgentsProbe()
    metrics.ASSIGNED.set(0)
    report = probe()
    assert report.state is ProcessState.STARTING
    assert "no md.* partition assigned" in report.reason
    metrics.ASSIGNED.set(3)
    report = probe()
    assert report.state is ProcessState.RUNNING
    assert report.details["assigned_partitions"] == "3"
