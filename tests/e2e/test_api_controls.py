"""Controls end to end with the demo's processes: the API writes a command, the agents stop
signalling for a disabled strategy, the executor opens nothing under a halted kill switch,
and the API shows each command as applied by the process that acts on it."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.auth import Role, User, hash_api_key, save_users
from tests.conftest import poll_until
from tests.integration.executors.scenario import create_topics, sqlite_progress
from ticklane import wire
from ticklane.broker import free_port
from ticklane.demo import demo_config, process
from ticklane.market import Bar
from ticklane.settings import Settings
from ticklane.topics import resolve
from ticklane.trading import Order, OrderStatus, Signal

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
KEY = "tl_e2e-trader-key-5c1d"
AS_TRADER = {"Authorization": f"Bearer {KEY}"}


def test_controls_reach_the_agents_and_the_executor_and_come_back_applied(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path, read_topic
) -> None:
    create_topics(settings)
    data = tmp_path / "synth.dbn.zst"
    synth = ["synth", "--out", str(data), "--symbols", "4", "--minutes", "4", "--seed", "3"]
    subprocess.run(
        [TICKLANE, *synth, "--no-options"],
        env=cli_env,
        check=True,
        capture_output=True,
    )
    symbols = ["SYN000", "SYN001", "SYN002", "SYN003"]
    config = tmp_path / "demo.toml"
    config.write_text(demo_config(symbols))  # ema_cross on SYN000-1, supertrend on SYN002-3
    save_users(
        settings.data_dir / "api" / "users.json",
        [User("ann", Role.TRADER, "", (hash_api_key(KEY),))],
    )
    logs = tmp_path / "logs"
    env = cli_env | {"TICKLANE_AGENTS__APP_ID": f"agents-{os.getpid()}"}
    ports = {"agents": free_port(), "executor": free_port()}
    agents_port = ["--metrics-port", str(ports["agents"])]
    executor_env = env | {"TICKLANE_EXECUTOR__METRICS_PORT": str(ports["executor"])}
    with (
        process(["agents", "--config", str(config), *agents_port], env, logs / "agents.log"),
        process(["execute", "--config", str(config)], executor_env, logs / "executor.log"),
        process(["api", "--config", str(config), "--port", "0"], env, logs / "api.log"),
    ):
        url_file = settings.data_dir / "api" / "server.url"
        url = poll_until(lambda: url_file.exists() and url_file.read_text().strip(), what="the API")
        api = httpx.Client(base_url=str(url), headers=AS_TRADER, timeout=10)
        off = api.post("/api/v1/controls/strategies/ema_cross/disable", json={"symbol": "SYN001"})
        halt = api.post(
            "/api/v1/controls/kill-switch", json={"state": "halted", "strategy": "supertrend"}
        )
        assert (off.status_code, halt.status_code) == (200, 200)

        seen: list[object] = []

        def applied() -> dict[str, tuple[str, list[str]]] | None:
            items = api.get("/api/v1/controls/commands").json()["items"]
            seen[:] = [items]
            found = {
                c["action"]: (c["status"], [a["by"].split("/")[0] for a in c["acks"]])
                for c in items
            }
            done = found == {
                "disable": ("applied", ["agents"]),
                "kill_switch": ("applied", ["executor"]),
            }
            return found if done else None

        try:
            poll_until(applied, timeout_s=60, what="both commands applied by their processes")
        except BaseException:
            print("last seen:", seen)  # shown with the failure, with each process's log
            for name in ("agents", "executor", "api"):
                print(f"--- {name}.log", (logs / f"{name}.log").read_text()[-4000:], sep="\n")
            raise
        subprocess.run(
            [TICKLANE, "produce", "file", str(data), "--speed", "max"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        signals_topic = resolve(settings.topics, "signals")

        def answered() -> list[Signal] | None:
            # Every signal the agents made is in the executor's ledger, with its orders done.
            signals = [wire.decode_as(v, Signal) for *_, v in read_topic(signals_topic)]
            progress = sqlite_progress(settings)
            # Both strategies' symbols are worked on in parallel: all of one's signals may be
            # answered before the other's first arrives, so wait until both have signalled.
            ready = (
                {s.strategy for s in signals} == {"ema_cross", "supertrend"}
                and progress is not None
                and progress[0] == len(signals)
                and progress[1] == 0
            )
            return signals if ready else None

        signals = poll_until(answered, timeout_s=240, interval_s=0.5, what="every signal answered")

        def reporting() -> dict[str, str] | None:
            found = {p["process"]: p["health"] for p in api.get("/api/v1/processes").json()}
            want = {"agents": "up", "executor": "up", "api": "up", "producer": "stopped"}
            return found if found == want else None

        # Each process's heartbeat: the three running ones up, the finished replay stopped.
        poll_until(reporting, timeout_s=30, interval_s=0.2, what="every process's status")
        # Each process's own probes and scrape, beside its metrics.
        for name, port in ports.items():
            base = f"http://127.0.0.1:{port}"
            assert httpx.get(f"{base}/health").json() == {"alive": True}
            assert httpx.get(f"{base}/ready").json() == {"ready": True, "reasons": []}, name
            assert f"ticklane_{name.rstrip('s')}" in httpx.get(f"{base}/metrics").text
        shown = api.get("/api/v1/strategies").json()["strategies"]

        def charted() -> list[dict[str, object]] | None:
            query = {"symbol": "SYN000", "interval": "1s", "strategy": "ema_cross"}
            points = api.get("/api/v1/indicators", params=query | {"limit": 1000}).json()
            return points["points"] or None

        points = poll_until(charted, timeout_s=30, interval_s=0.2, what="SYN000's indicators")
        api.close()
    indicators = {(row["strategy"], row["symbol"]): row["indicators"] for row in shown}
    assert indicators[("ema_cross", "SYN001")] is None  # disabled from the start: never ran
    ema = indicators[("ema_cross", "SYN000")]
    assert ema is not None
    assert set(ema["values"]) == {"ema_8", "ema_21"}
    trend = indicators[("supertrend", "SYN002")]
    assert trend is not None
    assert trend["directions"]["supertrend_10_3"] in (1, -1)
    # The chart's indicator points are the strategy's, at the times of its bars.
    warm = [p for p in points if p["values"]["ema_21"] is not None]
    assert warm
    assert len(warm) < len(points)
    bar_times = {
        wire.decode_as(v, Bar).ts_event
        for _, _, key, v in read_topic(resolve(settings.topics, "bars.1s"))
        if key == b"SYN000"
    }
    assert {p["ts_event"] for p in points} <= bar_times

    made = {(s.strategy, s.symbol) for s in signals}
    assert ("ema_cross", "SYN000") in made  # the agents ran, and signalled where allowed
    assert ("ema_cross", "SYN001") not in made  # ...and not where the strategy was disabled,
    bar_keys = {key for _, _, key, _ in read_topic(resolve(settings.topics, "bars.1s"))}
    assert b"SYN001" in bar_keys  # though its data was there, in bars
    assert {sym for strategy, sym in made if strategy == "supertrend"}  # supertrend signalled
    orders = [wire.decode_as(v, Order) for *_, v in read_topic(resolve(settings.topics, "orders"))]
    latest = {o.client_order_id: o for o in orders}  # each order's last event
    supertrend = [o for o in latest.values() if o.strategy == "supertrend"]
    assert supertrend
    assert all(o.status is OrderStatus.REJECTED and "halted" in o.reason for o in supertrend)
    assert any(o.status is OrderStatus.FILLED for o in latest.values() if o.strategy == "ema_cross")
