"""Each process's HTTP face for its operator: `/metrics` (Prometheus), `/health` (alive) and
`/ready` (doing its job now), on the process's metrics port.

Readiness is the process's own latest status report (`ticklane.beacon`): ready while it says
`running`; not ready, with its reason, while it is starting, degraded (a live feed stale or
reconnecting, outputs not reaching Kafka, an order of unknown fate) or halted (reconciliation,
kill switch, the venue). The report is the one its heartbeat publishes, made on the process's
own thread, so answering a probe never touches the process's state from another thread.
"""

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ticklane.beacon import Beacon, Report
from ticklane.status import ProcessState

READY_STATES: Final = frozenset({ProcessState.RUNNING})


def readiness(report: Report | None) -> tuple[bool, str]:
    """Whether a process whose latest report is `report` is ready, and if not, why."""
    if report is None:
        return False, "starting: no status yet"
    if report.state in READY_STATES:
        return True, ""
    return False, f"{report.state.value}: {report.reason}" if report.reason else report.state.value


class HealthServer:
    """`/metrics`, `/health` and `/ready` on `port` (0: any free one), in a thread of its own."""

    def __init__(
        self,
        port: int,
        latest: Callable[[], Report | None],
        *,
        host: str = "0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        handler = _handler(latest, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    def start(self) -> "HealthServer":
        """Serve until `stop`."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def serve(
    beacon: Beacon, port: int | None, *, registry: CollectorRegistry = REGISTRY
) -> HealthServer | None:
    """The probes and scrape of the process `beacon` reports for, on `port` (None or 0: none)."""
    return HealthServer(port, lambda: beacon.latest, registry=registry).start() if port else None


@contextlib.contextmanager
def reporting(beacon: Beacon, port: int | None) -> Iterator[None]:
    """For the body's duration: heartbeats from the beacon's own thread and, on `port`, the
    probes; at the end the beacon says `stopped` and the server closes."""
    beacon.start()
    server = serve(beacon, port)
    try:
        yield
    finally:
        beacon.stop()
        if server is not None:
            server.stop()


def _handler(
    latest: Callable[[], Report | None], registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/health":
                self._json(HTTPStatus.OK, {"alive": True})
            elif path == "/ready":
                ready, reason = readiness(latest())
                status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
                self._json(status, {"ready": ready, "reasons": [reason] if reason else []})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"detail": f"no {path} here"})

        def _json(self, status: HTTPStatus, body: dict[str, object]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a probe every few seconds is not news

    return Handler
