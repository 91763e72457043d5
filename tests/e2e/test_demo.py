"""`ticklane demo --until-done`: the whole pipeline in separate processes, then a summary."""

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from api.auth import Role, Users

pytestmark = pytest.mark.e2e

TICKLANE = str(Path(sys.executable).with_name("ticklane"))


def test_demo_runs_the_pipeline_and_the_venue_record_agrees(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TICKLANE_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(tmp_path / "data")
    summary_path = tmp_path / "summary.json"
    args = ["--until-done", "--summary-json", str(summary_path), "--symbols", "4"]
    args += ["--minutes", "8", "--seed", "3"]
    result = subprocess.run(
        [TICKLANE, "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The API ran beside the other processes, with a login made for this demo only.
    said = re.search(
        r"api answering at (http://\S+) \(this demo's login only: demo / (\S+), "
        r"or Authorization: Bearer (\S+)\)",
        result.stderr,
    )
    assert said, result.stderr[-3000:]
    users = Users.load(tmp_path / "data" / "api" / "users.json")
    assert users.check_password("demo", said.group(2)) is not None
    assert users.by_key(said.group(3)).role is Role.TRADER
    summary = json.loads(summary_path.read_text())
    # The four underlyings, and the options 0DTE traded on the first one's chain.
    assert summary["strategies"]["zero_dte"]["symbols"] >= 1
    assert summary["symbols"] == 4 + summary["strategies"]["zero_dte"]["symbols"]
    assert summary["ticks"] > 1000
    assert summary["signals"] > 0
    assert set(summary["strategies"]) == {"ema_cross", "supertrend", "zero_dte"}
    assert sum(s["signals"] for s in summary["strategies"].values()) == summary["signals"]
    # Every signal changes the target, so each is answered by exactly one order (a reversal
    # is one order of the combined size); the last ones may still wait for a tick to fill.
    assert summary["orders"] == summary["signals"]
    assert 0 < summary["fills"] <= summary["orders"]

    # After the demo, the venue's own record is what `ticklane paper` reads by default.
    lines = venue_orders(env)
    assert len(lines) == summary["orders"]
    assert len({line["client_order_id"] for line in lines}) == len(lines)
    assert {abs(line["quantity"]) for line in lines} <= {1, 2}

    # A second demo replaces the first's state: its Kafka topics, ledger and venue record
    # hold only its own run. Were anything kept, its counts would add to the first run's.
    second_path = tmp_path / "second.json"
    second_args = ["--summary-json", str(second_path), "--symbols", "2", "--minutes", "2"]
    again = subprocess.run(
        [TICKLANE, "demo", "--until-done", *second_args, "--seed", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(second_path.read_text())
    assert second["symbols"] == 2 + second["strategies"]["zero_dte"]["symbols"]
    assert 0 < second["ticks"] < summary["ticks"]
    assert 0 < second["signals"] == second["orders"] < summary["orders"]
    orders_after = venue_orders(env)
    assert len(orders_after) == second["orders"]
    first_symbols = {line["symbol"] for line in lines}
    assert {line["symbol"] for line in orders_after} < first_symbols


def venue_orders(env: dict[str, str]) -> list[dict[str, object]]:
    """The paper venue's own record of orders, as `ticklane paper orders --json` prints it."""
    result = subprocess.run(
        [TICKLANE, "paper", "orders", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_demo_through_tastytrade_trades_at_the_fake_with_the_real_sdk(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TICKLANE_", "TASTYTRADE_")) and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(tmp_path / "data")
    summary_path = tmp_path / "summary.json"
    args = ["--until-done", "--summary-json", str(summary_path), "--broker", "tastytrade"]
    args += ["--symbols", "4", "--minutes", "6", "--seed", "3"]
    result = subprocess.run(
        [TICKLANE, "demo", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["broker"] == "tastytrade"
    assert summary["signals"] > 0
    # A future reverses in one order; an equity or option in two (close, then open).
    assert summary["orders"] >= summary["signals"]
    assert 0 < summary["fills"] <= summary["orders"]
    assert summary["strategies"]["zero_dte"]["symbols"] >= 1  # options traded too
    fake = str(tmp_path / "data" / "fake-tastytrade")
    orders = subprocess.run(
        [TICKLANE, "fake", "tastytrade", "orders", "--json", "--data-dir", fake],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in orders.stdout.splitlines()]
    assert len(lines) == summary["orders"]
    identifiers = [line["external_identifier"] for line in lines]
    assert len(set(identifiers)) == len(identifiers)
    assert {line["source"] for line in lines} == {"ticklane"}
    kinds = {line["legs"][0]["instrument_type"] for line in lines}
    assert {"Future", "Equity", "Equity Option"} <= kinds


def test_demo_through_schwab_trades_equities_and_their_options_at_the_fake(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TICKLANE_", "SCHWAB_")) and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(tmp_path / "data")
    summary_path = tmp_path / "summary.json"
    args = ["--until-done", "--summary-json", str(summary_path), "--broker", "schwab"]
    args += ["--symbols", "4", "--minutes", "6", "--seed", "3"]
    result = subprocess.run(
        [TICKLANE, "demo", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["broker"] == "schwab"
    assert summary["signals"] > 0
    assert summary["orders"] > 0
    assert 0 < summary["fills"] <= summary["orders"]
    fake = str(tmp_path / "data" / "fake-schwab")
    orders = subprocess.run(
        [TICKLANE, "fake", "schwab", "orders", "--json", "--data-dir", fake],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in orders.stdout.splitlines()]
    assert len(lines) == summary["orders"]
    # Routed to the equity-like underlyings and the option chain on SYN001: SYN000 and SYN003
    # (futures-like) are left to no one; every leg is an equity or an option on SYN001.
    legs = [leg for line in lines for leg in line["legs"]]
    assert {leg["asset_type"] for leg in legs} == {"EQUITY", "OPTION"}
    equities = {leg["symbol"] for leg in legs if leg["asset_type"] == "EQUITY"}
    assert equities <= {"SYN001", "SYN002"}
    options = {leg["symbol"] for leg in legs if leg["asset_type"] == "OPTION"}
    # OSI symbols: the root SYN001 fills its six characters, then yymmdd, C/P and the strike.
    assert all(len(o) == 21 and o.startswith("SYN001") for o in options), options
    # Each order the ledger sent is at the fake once: no client id, so by venue order id.
    ledger = sqlite3.connect(tmp_path / "data" / "executor" / "ledger.sqlite")
    try:
        sent = [row[0] for row in ledger.execute("SELECT venue_order_id FROM orders")]
    finally:
        ledger.close()
    venue_ids = [line["venue_order_id"] for line in lines]
    assert len(set(venue_ids)) == len(venue_ids)
    assert sorted(sent) == sorted(venue_ids)
