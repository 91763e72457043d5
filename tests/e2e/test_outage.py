"""Kafka misbehaving in the middle of a paced replay, with the agents, the executor and the API
running: frozen (SIGSTOP) for longer than the session timeout, then unreachable for a minute
(connections refused and cut). Every process stays up, the logs stay readable, and once Kafka
is back the run finishes: every signal answered once, no order twice, and the same orders and
fills as an undisturbed run of the same data beside it."""

import concurrent.futures
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from executors.stores import sqlite_path
from tests.conftest import TEST_SESSION_TIMEOUT_MS, poll_until
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.executors.scenario import create_topics, sqlite_progress
from ticklane import wire
from ticklane.broker import EmbeddedBroker, free_port
from ticklane.demo import caught_up, demo_config, process
from ticklane.kafka import consumer_config
from ticklane.settings import KafkaSettings, Settings, TopicSettings
from ticklane.tail import consume
from ticklane.topics import resolve
from ticklane.trading import Signal

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
OUTAGE_S = 60.0
FREEZE_S = 3 * TEST_SESSION_TIMEOUT_MS / 1000
"""Longer than the consumer groups' session timeout: a broker would expire every member."""
MOST_LINES = 15
"""Per process in the outage: the first line of each kind of failure, then one summary line
per kind per 30 s (a minute's outage, counted from a little before to a little after, can
hold three rounds), and the process's own warning; without the summaries: thousands. (10
was too few: the agents, with two Kafka libraries, logged 11 under a loaded full run.)"""


@dataclass
class Run:
    """What a run left: the paper venue's orders and fills, and each process's log lines
    written while Kafka was away."""

    orders: list[dict[str, object]]
    fills: list[dict[str, object]]
    during: dict[str, dict[str, list[str]]]
    """Per phase of the disruption, each process's log lines written in it."""
    silences: dict[str, float]
    """Each process's `ticklane_kafka_silences_total` at the end."""


@dataclass
class Disrupting:
    """What a disruption works with: the proxy, the broker, `alive()` to call about once a
    second, and `phase(name)` around each part whose log lines the test reads."""

    proxy: TcpProxy
    broker: EmbeddedBroker
    alive: Callable[[], None]
    phase: Callable[[str], contextlib.AbstractContextManager[None]]


Disruption = Callable[[Disrupting], None]


def _signals(settings: Settings) -> list[Signal]:
    config = consumer_config(settings.kafka, str(settings.kafka.bootstrap_servers), "outage-read")
    topic = resolve(settings.topics, "signals")
    messages = consume(config, topic, from_beginning=True, until_end=True)
    return [wire.decode_as(m.value or b"", Signal) for m in messages]


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def _venue(kind: str, env: dict[str, str]) -> list[dict[str, object]]:
    out = subprocess.run(
        [TICKLANE, "paper", kind, "--json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def _hold(seconds: float, alive: Callable[[], None]) -> None:
    """Let `seconds` pass (the disruption itself), checking every process is still up."""
    ended = time.monotonic() + seconds
    while time.monotonic() < ended:
        alive()
        time.sleep(1.0)


def _setup(root: Path, port: int, prefix: str) -> tuple[Settings, dict[str, str], Path]:
    """Settings for a broker at `port`, the environment that gives them to the processes,
    and five minutes of synthetic data for four symbols."""
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{port}", session_timeout_ms=TEST_SESSION_TIMEOUT_MS
        ),
        topics=TopicSettings(prefix=prefix, partitions=6),
        data_dir=root / "data",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")} | {
        "KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
        "TICKLANE_TOPICS__PREFIX": settings.topics.prefix,
        "TICKLANE_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
        "TICKLANE_DATA_DIR": str(settings.data_dir),
    }
    data = root / "synth.dbn.zst"
    synth = ["synth", "--out", str(data), "--symbols", "4", "--minutes", "5", "--seed", "3"]
    subprocess.run([TICKLANE, *synth, "--no-options"], env=env, check=True, capture_output=True)
    return settings, env, data


def run_pipeline(root: Path, disrupt: Disruption | None) -> Run:
    """A paced replay through agents, executor and API on a broker of its own behind a proxy;
    `disrupt` runs once signals flow. Returns when every signal is answered."""
    root.mkdir()
    proxy_port, broker_port = free_port(), free_port()
    broker = EmbeddedBroker(port=broker_port, advertised_port=proxy_port, log_path=root / "b.log")
    with TcpProxy(proxy_port, broker_port) as proxy, broker:
        settings, env, data = _setup(root, proxy_port, "outage.")
        create_topics(settings)
        config = root / "demo.toml"
        config.write_text(demo_config(["SYN000", "SYN001", "SYN002", "SYN003"]))
        logs = root / "logs"
        ports = {"agents": free_port(), "executor": free_port()}
        executor_env = env | {"TICKLANE_EXECUTOR__METRICS_PORT": str(ports["executor"])}
        agents = ["agents", "--config", str(config), "--metrics-port", str(ports["agents"])]
        # At 3x, 5 minutes of data replay in about 100 s: through the whole disruption.
        produce = ["produce", "file", str(data), "--speed", "3x"]
        execute = ["execute", "--config", str(config)]
        api = ["api", "--config", str(config), "--port", "0"]
        with (
            process(agents, env, logs / "agents.log") as agents_proc,
            process(execute, executor_env, logs / "executor.log") as executor_proc,
            process(api, env, logs / "api.log") as api_proc,
        ):
            running = {"agents": agents_proc, "executor": executor_proc, "api": api_proc}

            def ready() -> bool:
                try:
                    answers = [httpx.get(f"http://127.0.0.1:{p}/ready") for p in ports.values()]
                except httpx.HTTPError:
                    return False
                return all(a.status_code == 200 for a in answers)

            def alive() -> None:
                # Only the replay may end, and only as a success.
                dead = {
                    n: p.returncode
                    for n, p in running.items()
                    if p.poll() is not None and (n != "producer" or p.returncode != 0)
                }
                assert dead == {}, f"exited: {dead}"

            poll_until(ready, timeout_s=120, interval_s=0.5, what="agents and executor ready")
            with process(produce, env, logs / "producer.log") as producer:
                running["producer"] = producer
                poll_until(
                    lambda: len(_signals(settings)) >= 3 or None,
                    timeout_s=120,
                    interval_s=0.5,
                    what="signals before the disruption",
                )
                during: dict[str, dict[str, list[str]]] = {}

                @contextlib.contextmanager
                def phase(name: str) -> Iterator[None]:
                    before = {n: len(_lines(logs / f"{n}.log")) for n in running}
                    yield
                    during[name] = {n: _lines(logs / f"{n}.log")[before[n] :] for n in running}

                if disrupt is not None:
                    disrupt(Disrupting(proxy, broker, alive, phase))
                assert producer.wait(240) == 0  # the replay ends by itself

            group = settings.topics.prefix + settings.agents.app_id
            md_trades = resolve(settings.topics, "md.trades")

            def answered() -> int | None:
                if not caught_up(settings, md_trades, group):
                    return None  # the agents are still catching up on the replay
                made = len(_signals(settings))
                progress = sqlite_progress(settings)
                done = progress is not None and progress[0] == made and progress[1] == 0
                return made if done else None

            made = poll_until(answered, timeout_s=240, interval_s=1.0, what="every signal answered")
            assert sqlite_progress(settings) == (made, 0, 0)  # each signal once, all answered
            poll_until(ready, timeout_s=60, interval_s=0.5, what="ready after the disruption")
            alive()
            orders, fills = _venue("orders", env), _venue("fills", env)
            urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
            urls["api"] = (settings.data_dir / "api" / "server.url").read_text().strip()
            silences = {n: _silences(url) for n, url in urls.items()}
    ids = [o["client_order_id"] for o in orders]
    assert 0 < len(ids) == len(set(ids))  # no order twice at the venue
    return Run(orders, fills, during, silences)


def _silences(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("ticklane_kafka_silences_total "):
            return float(line.split()[1])
    raise AssertionError(f"no ticklane_kafka_silences_total at {url}/metrics")


def _freeze_then_unplug(kafka: Disrupting) -> None:
    """The broker frozen (SIGSTOP) for three session timeouts; a few seconds of calm; then
    unreachable for a minute (connections refused and cut), its data intact."""
    pid = kafka.broker.pid
    assert pid is not None
    with kafka.phase("freeze"):  # and the calm after it: a process held up says so then
        os.kill(pid, signal.SIGSTOP)
        try:
            _hold(FREEZE_S, kafka.alive)
        finally:
            os.kill(pid, signal.SIGCONT)
        _hold(5.0, kafka.alive)
    with kafka.phase("outage"):
        kafka.proxy.unplug()
        _hold(OUTAGE_S, kafka.alive)
        kafka.proxy.plug()


def test_kafka_frozen_then_gone_for_a_minute_changes_no_order_and_no_fill(tmp_path: Path) -> None:
    # The undisturbed run beside it, on a broker of its own: the same data, the same orders.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        calm_run = pool.submit(run_pipeline, tmp_path / "calm", None)
        disturbed_run = pool.submit(run_pipeline, tmp_path / "disturbed", _freeze_then_unplug)
        calm, disturbed = calm_run.result(), disturbed_run.result()

    def orders(run: Run) -> set[tuple[object, ...]]:
        keys = ("client_order_id", "symbol", "side", "quantity", "type", "limit_price")
        return {tuple(o[k] for k in keys) for o in run.orders}

    def fills(run: Run) -> set[tuple[object, ...]]:
        keys = ("client_order_id", "symbol", "side", "quantity", "price", "fee")
        return {tuple(f[k] for k in keys) for f in run.fills}

    assert orders(disturbed) == orders(calm)
    assert fills(disturbed) == fills(calm)
    # The freeze is in every process's metrics and log, said once; its end is said too.
    assert calm.silences == {"agents": 0, "executor": 0, "api": 0}
    assert all(n >= 1 for n in disturbed.silences.values()), disturbed.silences
    for name, lines in disturbed.during["freeze"].items():
        text = "\n".join(lines)
        assert text.count("Kafka has taken no status from this process") == 1, (name, text)
    for name in ("agents", "executor", "api"):
        log = (tmp_path / "disturbed" / "logs" / f"{name}.log").read_text()
        assert "Kafka takes this process's status again, after" in log, name
    # The minute without Kafka: a few lines per process, not one per failed attempt.
    outage = disturbed.during["outage"]
    for name, lines in outage.items():
        print(f"--- {name}: {len(lines)} line(s) in the outage", *lines, sep="\n")
    assert all(lines for lines in outage.values()), outage  # each said Kafka was gone
    assert {n: len(lines) for n, lines in outage.items()} == {
        n: min(len(lines), MOST_LINES) for n, lines in outage.items()
    }


CHANGED = "Kafka is not the cluster this process started on"


def _ledger_orders(settings: Settings) -> set[str]:
    db = sqlite3.connect(f"file:{sqlite_path(settings)}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT client_order_id FROM orders")}
    finally:
        db.close()


def _readiness(url: str) -> tuple[int, str]:
    try:
        answer = httpx.get(f"{url}/ready", timeout=5)
    except httpx.HTTPError as exc:
        return 0, str(exc)
    return answer.status_code, answer.text


def _halted(url: str, why: str = "not the cluster") -> bool:
    status, text = _readiness(url)
    return status == 503 and why in text


def test_kafka_restarted_empty_is_detected_and_nothing_goes_on_or_crash_loops(
    tmp_path: Path,
) -> None:
    """The broker restarted empty at the same address in the middle of a paced replay: every
    process says so once, fails /ready with the reason, sets the metric, consumes and
    produces nothing more (no topic reappears, no order is sent), and stays up."""
    port = free_port()
    settings, env, data = _setup(tmp_path, port, "empty.")
    config = tmp_path / "demo.toml"
    config.write_text(demo_config(["SYN000", "SYN001", "SYN002", "SYN003"]))
    logs = tmp_path / "logs"
    ports = {name: free_port() for name in ("agents", "executor", "producer")}
    first = EmbeddedBroker(port=port, log_path=tmp_path / "first.log")
    first.start()
    try:
        create_topics(settings)
        executor_env = env | {"TICKLANE_EXECUTOR__METRICS_PORT": str(ports["executor"])}
        agents = ["agents", "--config", str(config), "--metrics-port", str(ports["agents"])]
        produce = ["produce", "file", str(data), "--speed", "3x"]
        produce += ["--metrics-port", str(ports["producer"])]
        with (
            process(agents, env, logs / "agents.log") as agents_proc,
            process(
                ["execute", "--config", str(config)], executor_env, logs / "executor.log"
            ) as executor_proc,
            process(
                ["api", "--config", str(config), "--port", "0"], env, logs / "api.log"
            ) as api_proc,
        ):
            running = {"agents": agents_proc, "executor": executor_proc, "api": api_proc}
            urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
            api_url = settings.data_dir / "api" / "server.url"
            poll_until(api_url.exists, timeout_s=60, what="the API's address")
            urls["api"] = api_url.read_text().strip()

            def alive() -> None:
                dead = {n: p.returncode for n, p in running.items() if p.poll() is not None}
                assert dead == {}, f"exited: {dead}"

            poll_until(
                lambda: all(_readiness(urls[n])[0] == 200 for n in ("agents", "executor")),
                timeout_s=120,
                interval_s=0.5,
                what="agents and executor ready",
            )
            with process(produce, env, logs / "producer.log") as producer:
                running["producer"] = producer
                poll_until(
                    lambda: _venue("orders", env) or None,
                    timeout_s=120,
                    interval_s=0.5,
                    what="orders at the paper venue before the restart",
                )
                first.stop()  # all it held is gone
                with EmbeddedBroker(port=port, log_path=tmp_path / "second.log"):
                    for name, url in urls.items():
                        poll_until(
                            lambda url=url: _halted(url),
                            timeout_s=60,
                            interval_s=0.5,
                            what=f"{name} not ready, saying why",
                        )
                    at_halt = {o["client_order_id"] for o in _venue("orders", env)}
                    _hold(30.0, alive)  # past librdkafka's 30 s wait for a missing topic: still up
                    for name, url in urls.items():
                        metrics = httpx.get(f"{url}/metrics", timeout=5).text
                        changed = 'ticklane_kafka_cluster_changed{change="topic gone"} 1.0'
                        assert changed in metrics, name
                    # Nothing put a topic back: no client had the broker create one.
                    left = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
                    names = set(left.list_topics(timeout=10).topics)
                    assert not {n for n in names if n.startswith(settings.topics.prefix)}
                    # Every order at the venue is one the ledger holds, none sent since.
                    sent = {o["client_order_id"] for o in _venue("orders", env)}
                    assert sent == at_halt
                    assert sent <= _ledger_orders(settings)
                    alive()
                    for name in running:  # one clear line each, naming what it found
                        log = (logs / f"{name}.log").read_text()
                        assert log.count(CHANGED) == 1, (name, log[-3000:])
                        assert "topic gone" in log, name
                        assert "ticklane topics create" in log, name
                    producer.send_signal(signal.SIGTERM)
                    assert producer.wait(30) == 5  # stopped: Kafka changed under it
                    # Restarted on the new cluster, topics created again, the agents find
                    # their state belongs to the topics they left: they say so, hold, and
                    # do not crash (Faust alone would refuse to start, again and again).
                    agents_proc.send_signal(signal.SIGTERM)
                    agents_proc.wait(60)
                    create_topics(settings)
                    with process(agents, env, logs / "agents-again.log") as again:
                        running = {"agents": again}
                        poll_until(
                            lambda: _halted(urls["agents"], "topic recreated") or None,
                            timeout_s=120,
                            interval_s=0.5,
                            what="the restarted agents not ready, saying why",
                        )
                        _hold(5.0, alive)
                        log = (logs / "agents-again.log").read_text()
                        assert log.count(CHANGED) == 1, log[-3000:]
                        assert "ConsistencyError" not in log
    finally:
        first.stop()
