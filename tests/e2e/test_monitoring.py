"""Monitoring end to end: the demo's processes, each with its /metrics, scraped by a real
Prometheus that evaluates deploy/prometheus/rules.yml.

Every metric a Grafana dashboard or an alert rule reads must be on a real /metrics endpoint of
the running processes; a pipeline metric must come back from a query; a fault injected into
the running pipeline (an undecodable frame) must fire its alert, and the producer stopping
(its replay done) must start the process-down alert.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from confluent_kafka import Producer

from tests.conftest import poll_until
from tests.deploy.promql import metric_names
from ticklane import kafka
from ticklane.settings import Settings
from ticklane.topics import resolve

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
TICKLANE = str(Path(sys.executable).with_name("ticklane"))
JOBS = ("ticklane-agents", "ticklane-executor", "ticklane-producer", "ticklane-api")
PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus makes itself for each target, never on a /metrics page."""
_SUFFIXES = {
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}


def queried_metrics() -> dict[str, set[str]]:
    """Each metric a dashboard panel or an alert rule reads, with where it is read."""
    where: dict[str, set[str]] = {}
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        for name in metric_names(rule["expr"]):
            where.setdefault(name, set()).add(f"rule {rule['alert']}")
    for path in sorted(DASHBOARDS.glob("*.json")):
        for expr in _exprs(json.loads(path.read_text())):
            for name in metric_names(expr):
                where.setdefault(name, set()).add(f"dashboard {path.stem}")
    return where


def _exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def exposed_metrics(page: str) -> set[str]:
    """The series names a /metrics page can have, from its TYPE lines (so a labelled metric
    with no series yet counts) and its samples."""
    names: set[str] = set()
    for kind_line in re.finditer(r"^# TYPE (\S+) (\w+)$", page, re.M):
        name, kind = kind_line.groups()
        names.add(name)
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ()))
    names.update(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", page, re.M))
    return names


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free local ports."""
    for base in range(21000, 30000, count):
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no free ports")


class PrometheusApi:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)

    def get(self, path: str, **params: str) -> Any:
        answer = self.client.get(path, params=params).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.get("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name]


def test_prometheus_scrapes_the_demo_every_queried_metric_exists_and_faults_fire_alerts(
    tmp_path: Path, prometheus: Any
) -> None:
    data_dir = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TICKLANE_", "SCHWAB_")) and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(data_dir)
    # Schwab (the local fake, through the real SDK), so the login's metrics are there too;
    # 2 minutes of data at 4x keep the producer running about 30 s: scraped while it runs.
    args = ["--broker", "schwab", "--symbols", "4", "--minutes", "2", "--seed", "3"]
    args += ["--speed", "4x", "--metrics-port", str(_free_ports(3))]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([TICKLANE, "demo", *args], env=env, stdout=out, stderr=out)
    try:
        _check(data_dir, log, demo, prometheus)
    except BaseException:
        print("--- demo.log", log.read_text()[-4000:], sep="\n")
        for name in ("agents", "executor", "producer", "api"):
            path = data_dir / "logs" / f"{name}.log"
            if path.exists():
                print(f"--- {name}.log", path.read_text()[-2000:], sep="\n")
        raise
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


def _check(data_dir: Path, log: Path, demo: subprocess.Popen[bytes], prometheus: Any) -> None:
    targets_file = data_dir / "prometheus-targets.json"

    def targets_written() -> bool:
        assert demo.poll() is None, "the demo exited early"
        return targets_file.exists()

    poll_until(targets_written, timeout_s=180, interval_s=0.2, what="the demo's scrape targets")
    targets = {t["labels"]["job"]: t["targets"][0] for t in json.loads(targets_file.read_text())}
    assert set(targets) == set(JOBS)
    url = prometheus(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "ticklane",
                    "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
    )
    prom = PrometheusApi(url)
    _every_queried_metric_is_exposed(targets)
    _every_target_scraped_and_every_rule_evaluated(prom)
    _faults_fire_their_alerts(prom, data_dir, log)


def _every_queried_metric_is_exposed(targets: dict[str, str]) -> None:
    """Every metric a dashboard or an alert reads is on a running process's /metrics."""
    pages: dict[str, str] = {}

    def scraped() -> bool:
        for job, address in targets.items():
            if job not in pages:
                with contextlib.suppress(httpx.HTTPError):
                    pages[job] = httpx.get(f"http://{address}/metrics", timeout=5).text
        return len(pages) == len(targets)

    poll_until(scraped, timeout_s=60, interval_s=0.2, what="every process's /metrics")
    exposed = set().union(*(exposed_metrics(page) for page in pages.values()))
    queried = queried_metrics()
    missing = {n: sorted(w) for n, w in queried.items() if n not in exposed | PROMETHEUS_OWN}
    assert missing == {}, "read by a dashboard or a rule, but on no /metrics page"
    assert len(queried) > 30  # the dashboards and the rules were read, not nothing


def _every_target_scraped_and_every_rule_evaluated(prom: PrometheusApi) -> None:
    """Prometheus scrapes every process, evaluates every rule, answers for a pipeline metric."""

    def all_up() -> dict[str, str] | None:
        active = prom.get("/api/v1/targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return health if health == dict.fromkeys(JOBS, "up") else None

    poll_until(all_up, timeout_s=60, interval_s=0.5, what="every target up")

    def ticks() -> float | None:
        result = prom.get("/api/v1/query", query="sum(ticklane_agent_ticks_total)")["result"]
        return float(result[0]["value"][1]) if result and float(result[0]["value"][1]) else None

    assert poll_until(ticks, timeout_s=60, interval_s=0.5, what="ticks counted") > 0
    alerts_in_file = {
        r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
    }

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"]]
        done = all(r["lastEvaluation"] > "2000" for r in rules)
        return rules if rules and done else None

    rules = poll_until(evaluated, timeout_s=30, interval_s=0.5, what="every rule evaluated")
    assert {r["name"] for r in rules} == alerts_in_file
    assert {r["name"]: r["health"] for r in rules} == dict.fromkeys(alerts_in_file, "ok")
    assert prom.alerts("TicklaneDeadLetters") == []  # nothing wrong yet


def _faults_fire_their_alerts(prom: PrometheusApi, data_dir: Path, log: Path) -> None:
    # A fault: an undecodable frame on md.trades. The agents set it aside on dlq...
    settings = Settings(data_dir=data_dir)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers(settings)})
    producer.produce(resolve(settings.topics, "md.trades"), key=b"SYN000", value=b"\x00garbage")
    assert producer.flush(30) == 0

    # ...and the dead-letter alert fires, naming the process and the topic.
    def dead_letter_alert() -> list[dict[str, Any]] | None:
        return [a for a in prom.alerts("TicklaneDeadLetters") if a["state"] == "firing"] or None

    firing = poll_until(dead_letter_alert, timeout_s=60, interval_s=0.5, what="the dlq alert")
    assert [(a["labels"]["job"], a["labels"]["topic"]) for a in firing] == [
        ("ticklane-agents", resolve(settings.topics, "md.trades"))
    ]

    # 4. The producer stops (its replay done): Prometheus sees it down and the process-down
    # alert starts (pending: it fires after its 2 minutes).
    def producer_down() -> list[dict[str, Any]] | None:
        alerts = prom.alerts("TicklaneProcessDown")
        return [a for a in alerts if a["labels"]["job"] == "ticklane-producer"] or None

    down = poll_until(producer_down, timeout_s=180, interval_s=0.5, what="producer down")
    # ...because its replay finished, as the demo then says (not because it crashed).
    poll_until(lambda: "replay done" in log.read_text(), timeout_s=60, what="the replay done")
    assert down[0]["state"] in {"pending", "firing"}
    assert {a["labels"]["job"] for a in prom.alerts("TicklaneProcessDown")} == {"ticklane-producer"}
