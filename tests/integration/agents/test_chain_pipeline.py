"""0DTE through Kafka: producer --chains → md.chain → agents worker → signals, as the backtest."""

import subprocess
from pathlib import Path

import pytest

from agents.backtest import run_backtest
from agents.service import ensure_topics
from agents.strategies.registry import registry
from producers.synth import generate
from tests.integration.agents.workers import (
    CHAIN_CONFIG,
    TICKLANE,
    ZERO_DTE,
    WorkerProcess,
    assert_duplicates_identical,
    ids,
    signals_on_topic,
)
from ticklane import wire
from ticklane.dbn import count_records
from ticklane.market import MarketFrame
from ticklane.settings import Settings

pytestmark = pytest.mark.integration


def test_zero_dte_on_kafka_gives_the_backtests_signals_id_for_id(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    path = tmp_path / "chain.dbn.zst"
    summary = generate(path, symbols=2, minutes=8, seed=3)
    expected = run_backtest(path, ZERO_DTE, registry()).signals
    assert len(expected) >= 10
    ensure_topics(settings, str(settings.kafka.bootstrap_servers))
    config = tmp_path / "agents.toml"
    config.write_text(CHAIN_CONFIG)
    produced = subprocess.run(
        [TICKLANE, "produce", "file", str(path), "--chains", "all"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr
    chain_topic = f"{settings.topics.prefix}md.chain"
    messages = read_topic(chain_topic)
    keys = {key for _, _, key, _ in messages}
    assert keys == {summary.symbols[0].encode()}  # one chain: the optionable underlying
    # Frames of the chain's records of every symbol: 2.4 records a frame before they were.
    frames = [wire.decode_as(value, MarketFrame) for _, _, _, value in messages]
    assert sum(map(count_records, frames)) / len(frames) > 200

    topic = f"{settings.topics.prefix}signals"
    worker = WorkerProcess(cli_env, config, tmp_path)
    try:
        poll(
            lambda: ids(signals_on_topic(read_topic, topic)) >= ids(expected),
            timeout_s=180,
            what="every 0DTE signal of the backtest",
        )
        signals = signals_on_topic(read_topic, topic)
    finally:
        worker.stop()
    assert ids(signals) == ids(expected)
    assert_duplicates_identical(signals)
    by_id = {s.signal_id: s for s in signals}
    assert [by_id[s.signal_id] for s in expected] == expected  # every field, not just ids
