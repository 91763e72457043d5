"""The API process: the materializer in a thread, the HTTP server in the main one."""

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Final

import uvicorn
from confluent_kafka import KafkaException, Producer

from agents.strategies.registry import StrategyRegistry
from api.access import Access
from api.app import ApiState, create_app
from api.auth import LoginLimiter, Sessions, Users
from api.dashboard import mount_dashboard
from api.materializer import Materializer
from api.metrics import ApiMetrics
from api.store import open_store
from ticklane import kafka
from ticklane.beacon import Beacon, Report
from ticklane.settings import Settings
from ticklane.status import ProcessState, instance_name
from ticklane.topics import resolve

log = logging.getLogger(__name__)

URL_FILE: Final = "server.url"
"""Written beside the store once the server listens: its URL, for scripts and the demo."""


PUBLISH_TIMEOUT_S: Final = 10.0


def users_path(settings: Settings) -> Path:
    """Where the API's users are."""
    return settings.api.users_file or settings.data_dir / "api" / "users.json"


def access_for(settings: Settings) -> Access:
    """Users from their file (none if it does not exist: then only open reads work)."""
    api, path = settings.api, users_path(settings)
    if path.exists():
        users = Users.load(path)
    else:
        log.warning("no API users file at %s: controls are refused (ticklane api-users)", path)
        users = Users()
    session_s = api.session_hours * 3600
    return Access(
        users,
        Sessions(session_s),
        LoginLimiter(api.login_attempts, api.login_window_s),
        open_reads=api.open_reads,
        secure_cookies=api.secure_cookies,
        session_s=session_s,
    )


class KafkaPublisher:
    """Writes a message and waits for Kafka's acknowledgement (a command must not be lost)."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._topics = settings.topics
        self._producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
        self._lock = threading.Lock()

    def publish(self, topic: str, key: bytes, value: bytes) -> bool:
        """Whether Kafka has the message within `PUBLISH_TIMEOUT_S`."""
        delivered: list[bool] = []
        with self._lock:
            try:
                self._producer.produce(
                    resolve(self._topics, topic),
                    key=key or None,
                    value=value,
                    on_delivery=lambda err, _msg: delivered.append(err is None),
                )
            except (KafkaException, BufferError) as exc:
                log.error("cannot write to %s: %s", topic, exc)  # noqa: TRY400 - no trace needed
                return False
            self._producer.flush(PUBLISH_TIMEOUT_S)
        return delivered == [True]

    def close(self) -> None:
        """Send what is queued and stop."""
        self._producer.flush(PUBLISH_TIMEOUT_S)


def api_report(materializer: Materializer, max_lag: int) -> Report:
    """The API's status: degraded while its store is behind the topics or cannot read them."""
    behind = materializer.behind()
    details = {"store_behind": str(behind)}
    if materializer.error:
        return Report(ProcessState.DEGRADED, materializer.error, behind, details)
    if behind > max_lag:
        why = f"store {behind} message(s) behind the topics"
        return Report(ProcessState.DEGRADED, why, behind, details)
    return Report(ProcessState.RUNNING, "", behind, details)


class ApiService:
    """Store, materializer and HTTP server of one API process."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings, self.bootstrap = settings, bootstrap
        self.store = open_store(settings)
        self.metrics = ApiMetrics()
        self.materializer = Materializer(settings, bootstrap, self.store, self.metrics)
        self.publisher = KafkaPublisher(settings, bootstrap)
        api = settings.api
        self.state = ApiState(
            self.store,
            self.metrics,
            self.materializer,
            access=access_for(settings),
            publisher=self.publisher,
            registry=StrategyRegistry(),
            strategies=list(settings.agents.strategies),
            multipliers=dict(settings.executor.multipliers),
            default_multiplier=settings.executor.default_multiplier,
            page_size=min(api.page_size, api.max_page_size),
            max_page_size=api.max_page_size,
            ready_max_lag=api.ready_max_lag,
        )
        self.app = create_app(self.state)
        if not mount_dashboard(self.app, api.web_dir):
            log.warning("the dashboard is not built (make web): / says so; the API works")

    def serve(self, stop: threading.Event) -> None:
        """Materialize and answer until `stop` is set (or the server stops)."""
        api = self.settings.api
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((api.host, api.port))
        # Listening before the URL is published: a client that reads it can connect at once
        # (the kernel queues connections until the server accepts them).
        sock.listen(2048)
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        beacon = Beacon(
            self.settings,
            self.bootstrap,
            "api",
            instance_name("api", str(port)),
            lambda: api_report(self.materializer, self.settings.api.ready_max_lag),
            watch=self.materializer.topics,
            registry=self.metrics.registry,
        )
        reader = threading.Thread(
            target=self._materialize, args=(stop, beacon), name="materializer", daemon=True
        )
        reader.start()
        beacon.start()

        def stop_server() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=stop_server, name="api-stop", daemon=True).start()
        url = f"http://{host}:{port}"
        url_file = self.store.path.parent / URL_FILE
        # Written whole, then renamed: a reader polling for the file never sees half a URL.
        partial = url_file.with_name(f".{URL_FILE}.{os.getpid()}")
        partial.write_text(url + "\n")
        partial.replace(url_file)
        log.info("api answering at %s", url)
        print(f"api answering at {url}", flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            stop.set()
            reader.join(timeout=10)
            beacon.stop()
            url_file.unlink(missing_ok=True)

    def _materialize(self, stop: threading.Event, beacon: Beacon) -> None:
        try:
            self.materializer.run(stop, trusted=lambda: beacon.watch.trusted)
        except Exception:
            log.exception("the materializer stopped; the API answers from its store as it is")
            self.materializer.error = "the materializer stopped (see the log)"

    def close(self) -> None:
        """Close the Kafka clients and the store."""
        self.materializer.close()
        self.publisher.close()
        self.store.close()
