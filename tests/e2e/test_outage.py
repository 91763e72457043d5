"""Kafka unreachable for a minute in the middle of a paced replay, with the agents, the
executor and the API running: every process stays up and quiet (a few lines each, not one per
failed attempt), and once Kafka is back the run finishes with every signal answered."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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
MOST_LINES = 10
"""Per process in the outage: a line per library per broker per 30 s (without: thousands)."""


def _signals(settings: Settings) -> list[Signal]:
    config = consumer_config(settings.kafka, str(settings.kafka.bootstrap_servers), "outage-read")
    topic = resolve(settings.topics, "signals")
    messages = consume(config, topic, from_beginning=True, until_end=True)
    return [wire.decode_as(m.value or b"", Signal) for m in messages]


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def test_a_minute_without_kafka_is_quiet_and_the_run_finishes_after_it(tmp_path: Path) -> None:
    proxy_port, broker_port = free_port(), free_port()
    broker = EmbeddedBroker(
        port=broker_port, advertised_port=proxy_port, log_path=tmp_path / "broker.log"
    )
    with TcpProxy(proxy_port, broker_port) as proxy, broker:
        settings = Settings(
            kafka=KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{proxy_port}",
                session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
            ),
            topics=TopicSettings(prefix="outage.", partitions=6),
            data_dir=tmp_path / "data",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")} | {
            "KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
            "TICKLANE_TOPICS__PREFIX": settings.topics.prefix,
            "TICKLANE_TOPICS__PARTITIONS": str(settings.topics.partitions),
            "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
            "TICKLANE_DATA_DIR": str(settings.data_dir),
        }
        create_topics(settings)
        data = tmp_path / "synth.dbn.zst"
        synth = ["synth", "--out", str(data), "--symbols", "4", "--minutes", "4", "--seed", "3"]
        subprocess.run([TICKLANE, *synth, "--no-options"], env=env, check=True, capture_output=True)
        config = tmp_path / "demo.toml"
        config.write_text(demo_config(["SYN000", "SYN001", "SYN002", "SYN003"]))
        logs = tmp_path / "logs"
        ports = {"agents": free_port(), "executor": free_port()}
        executor_env = env | {"TICKLANE_EXECUTOR__METRICS_PORT": str(ports["executor"])}
        agents = ["agents", "--config", str(config), "--metrics-port", str(ports["agents"])]
        # 4 minutes of data at 3x: the replay runs about 80 s, through the outage.
        produce = ["produce", "file", str(data), "--speed", "3x"]
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

            def ready() -> bool:
                try:
                    answers = [httpx.get(f"http://127.0.0.1:{p}/ready") for p in ports.values()]
                except httpx.HTTPError:
                    return False
                return all(a.status_code == 200 for a in answers)

            poll_until(ready, timeout_s=120, interval_s=0.5, what="agents and executor ready")
            with process(produce, env, logs / "producer.log") as producer:
                running["producer"] = producer
                poll_until(
                    lambda: len(_signals(settings)) >= 3 or None,
                    timeout_s=120,
                    interval_s=0.5,
                    what="signals before the outage",
                )
                before = {name: len(_lines(logs / f"{name}.log")) for name in running}
                proxy.unplug()
                ended = time.monotonic() + OUTAGE_S
                while time.monotonic() < ended:  # the outage itself: everyone must stay up
                    dead = {n: p.returncode for n, p in running.items() if p.poll() is not None}
                    assert dead == {}, f"exited during the outage: {dead}"
                    time.sleep(1.0)
                during = {name: _lines(logs / f"{name}.log")[before[name] :] for name in running}
                proxy.plug()
                for name, lines in during.items():
                    print(f"--- {name}: {len(lines)} line(s) in the outage", *lines, sep="\n")
                assert {n: len(lines) for n, lines in during.items()} == {
                    n: min(len(lines), MOST_LINES) for n, lines in during.items()
                }
                # Back: the replay ends by itself, and every signal is answered.
                assert producer.wait(240) == 0

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
            # No order twice at the venue: the outage cut answers mid-flight.
            venue = subprocess.run(
                [TICKLANE, "paper", "orders", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            ids = [json.loads(line)["client_order_id"] for line in venue.stdout.splitlines()]
            assert 0 < len(ids) == len(set(ids))
            assert sqlite_progress(settings) == (made, 0, 0)  # each signal once, all answered
            poll_until(ready, timeout_s=60, interval_s=0.5, what="ready again after the outage")
            assert all(p.poll() is None for p in (agents_proc, executor_proc, api_proc))
