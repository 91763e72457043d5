"""Historical ranges through the real databento SDK against a local HTTPS server."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.databento_historical import FakeHistoricalServer
from tests.fakes.databento_live import FAKE_API_KEY, load_dbn
from ticklane import wire
from ticklane.dbn import split_records
from ticklane.market import MarketFrame
from ticklane.settings import Settings

pytestmark = pytest.mark.integration

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
FILE = "glbx-esu4-20240701.mbp-1.dbn.zst"


def in_kafka(read_topic, topic: str) -> list[bytes]:
    out = []
    for *_, value in read_topic(topic):
        out += split_records(wire.decode_as(value, MarketFrame).records)
    return out


def command(server: FakeHistoricalServer) -> list[str]:
    return [
        TICKLANE,
        "produce",
        "historical",
        "--dataset",
        "GLBX.MDP3",
        "--schema",
        "mbp-1",
        "--symbols",
        "ESU4",
        "--start",
        "2024-07-01T23:00",
        "--end",
        "2024-07-02T01:00",
        "--gateway",
        server.url,
    ]


def test_range_is_produced_exactly_once_through_errors_and_reruns(
    databento_dir: Path, settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path
) -> None:
    records = [bytes(r) for r in load_dbn(databento_dir / FILE).records]
    with FakeHistoricalServer.from_files(databento_dir / FILE) as server:
        env = cli_env | server.env() | {"DATABENTO_API_KEY": FAKE_API_KEY}
        server.fail_next(1, status=503, detail="Service unavailable, retry.")
        server.cut_next(30_000)  # the second attempt's stream ends early
        first = subprocess.run(
            command(server), env=env, capture_output=True, text=True, check=False
        )
        assert first.returncode == 0, first.stderr
        assert FAKE_API_KEY not in first.stderr
        again = subprocess.run(
            command(server), env=env, capture_output=True, text=True, check=False
        )
        assert again.returncode == 0, again.stderr
        assert "0 produced" in again.stderr
        statuses = [r.status for r in server.requests]
    assert statuses[:2] == [503, 200]
    assert len(statuses) == 4
    assert in_kafka(read_topic, f"{settings.topics.prefix}md.mbp-1") == records


def test_client_errors_stop_with_databentos_message(
    databento_dir: Path, cli_env: dict[str, str]
) -> None:
    with FakeHistoricalServer.from_files(databento_dir / FILE) as server:
        env = cli_env | server.env() | {"DATABENTO_API_KEY": "db-wrong-key-000000000000000000"}
        result = subprocess.run(
            command(server), env=env, capture_output=True, text=True, check=False
        )
    assert result.returncode == 1
    assert "Databento refused the request" in result.stderr


def test_missing_key_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("DATABENTO_API_KEY")}
    result = subprocess.run(
        [TICKLANE, "produce", "live", "--dataset", "X", "--schema", "trades", "--symbols", "A"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "DATABENTO_API_KEY" in result.stderr
