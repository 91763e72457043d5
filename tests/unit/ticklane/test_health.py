"""A process's /metrics, /health and /ready over real HTTP, ready from its latest status."""

import httpx
from prometheus_client import CollectorRegistry, Counter

from ticklane.beacon import Report
from ticklane.health import HealthServer, readiness
from ticklane.status import ProcessState


def test_ready_only_while_running_and_says_why_not() -> None:
    assert readiness(Report()) == (True, "")
    assert readiness(None) == (False, "starting: no status yet")
    halted = Report(ProcessState.HALTED, "reconciliation: ES ledger 1, venue 0")
    assert readiness(halted) == (False, "halted: reconciliation: ES ledger 1, venue 0")
    assert readiness(Report(ProcessState.DEGRADED)) == (False, "degraded")


def test_the_server_answers_probes_and_scrapes() -> None:
    registry = CollectorRegistry()
    Counter("ticklane_probe_test", "a counter", registry=registry).inc(3)
    latest: list[Report | None] = [None]
    server = HealthServer(0, lambda: latest[0], host="127.0.0.1", registry=registry).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert httpx.get(f"{base}/health").json() == {"alive": True}
        starting = httpx.get(f"{base}/ready")
        assert starting.status_code == 503
        assert starting.json() == {"ready": False, "reasons": ["starting: no status yet"]}
        latest[0] = Report(details={"venue": "paper"})
        assert httpx.get(f"{base}/ready").json() == {"ready": True, "reasons": []}
        latest[0] = Report(ProcessState.DEGRADED, "live feed stale")
        degraded = httpx.get(f"{base}/ready")
        assert degraded.status_code == 503
        assert degraded.json()["reasons"] == ["degraded: live feed stale"]
        metrics = httpx.get(f"{base}/metrics")
        assert "ticklane_probe_test_total 3.0" in metrics.text
        assert httpx.get(f"{base}/nothing").status_code == 404
    finally:
        server.stop()
