"""Agents workers killed mid-stream, or sharing partitions, give the signals of one clean run."""

import os
import random
import subprocess
from pathlib import Path

import pytest

from producers.synth import generate
from tests.integration.agents.workers import (
    CHAIN_CONFIG,
    TICKLANE,
    ZERO_DTE,
    WorkerProcess,
    assert_duplicates_identical,
    backtest_signals,
    ids,
    prepare,
    signals_on_topic,
)
from ticklane.settings import Settings

pytestmark = pytest.mark.integration


def produce(path: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    """`ticklane produce file`, its output in producer.log beside the file (a native crash
    leaves its faulthandler traceback there)."""
    with (path.parent / "producer.log").open("ab") as log:
        return subprocess.Popen(
            [TICKLANE, "produce", "file", str(path), *extra], env=env, stdout=log, stderr=log
        )


def produced(path: Path, env: dict[str, str], *extra: str) -> None:
    """Replay the file to its end; a failure shows what the producer said."""
    code = produce(path, env, *extra).wait(180)
    log = (path.parent / "producer.log").read_text(errors="replace")
    assert code == 0, f"producer exit {code}:\n{log[-4000:]}"


@pytest.mark.parametrize("path_kind", ["per-symbol", "chain"])
def test_sigkill_mid_stream_then_restart_loses_and_changes_nothing(
    path_kind: str,
    *,
    settings: Settings,
    cli_env: dict[str, str],
    read_topic,
    tmp_path: Path,
    poll,
) -> None:
    path = tmp_path / "synthetic.dbn.zst"
    config = prepare(settings, tmp_path)
    if path_kind == "chain":
        # 0DTE on md.chain, in frames of a few records of several symbols each, so that
        # absorbing the chain takes long enough to interrupt it often.
        generate(path, symbols=2, minutes=8, seed=3)
        expected = ids(backtest_signals(path, ZERO_DTE))
        config.write_text(CHAIN_CONFIG)
        produce_args: tuple[str, ...] = ("--chains", "all", "--max-frame-records", "3")
    else:
        generate(path, symbols=4, minutes=40, seed=21, options=False)
        expected = ids(backtest_signals(path))
        # One-record frames, so absorbing the file takes long enough to interrupt it often.
        produce_args = ("--max-frame-records", "1")
    assert len(expected) >= 10
    topic = f"{settings.topics.prefix}signals"
    # A dead member holds up the next join until its session expires: keep that short.
    cli_env = {**cli_env, "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": "3000"}
    produced(path, cli_env, *produce_args)

    rng = random.Random(int(os.environ.get("TICKLANE_CHAOS_SEED", "5")))
    mid_stream = 0
    for _attempt in range(10):
        worker = WorkerProcess(cli_env, config, tmp_path)
        # Killed after a drawn number of frames, not a drawn time, so that how much of the
        # file each life absorbs does not grow with the worker's speed.
        frames = rng.randint(1, 1_000)
        poll(
            lambda w=worker, n=frames: (w.metric("ticklane_agent_frames_total") or 0) >= n,
            timeout_s=60,
            interval_s=0.005,
            what=f"the worker absorbing {frames} frames",
        )
        worker.kill()
        seen = ids(signals_on_topic(read_topic, topic))
        assert seen <= expected, f"unexpected signals {seen - expected}"
        mid_stream += seen != expected
        if mid_stream >= 5:
            break
    assert mid_stream >= 5, "the file was absorbed before five kills landed mid-stream"

    final = WorkerProcess(cli_env, config, tmp_path)
    try:
        poll(
            lambda: ids(signals_on_topic(read_topic, topic)) >= expected,
            timeout_s=180,
            what="every expected signal",
        )
        signals = signals_on_topic(read_topic, topic)
    finally:
        final.stop()
    assert ids(signals) == expected
    assert_duplicates_identical(signals)


def test_two_workers_split_partitions_and_give_the_signals_of_one(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    path = tmp_path / "synthetic.dbn.zst"
    generate(path, symbols=12, minutes=20, seed=8, options=False)
    expected = ids(backtest_signals(path))
    config = prepare(settings, tmp_path)
    topic = f"{settings.topics.prefix}signals"
    workers = [WorkerProcess(cli_env, config, tmp_path, worker_id=str(i)) for i in range(2)]
    try:
        # Paced, so the second worker joins while data flows and partitions (with their
        # state) move between workers mid-stream.
        producer = produce(path, cli_env, "--speed", "100x")
        poll(
            lambda: ids(signals_on_topic(read_topic, topic)) >= expected,
            timeout_s=180,
            what="every expected signal",
        )
        assert producer.wait(60) == 0
        signals = signals_on_topic(read_topic, topic)
        absorbed = [w.metric("ticklane_agent_ticks_total") for w in workers]
    finally:
        for worker in workers:
            worker.stop()
    assert ids(signals) == expected
    assert_duplicates_identical(signals)
    assert all(a and a > 0 for a in absorbed), f"ticks absorbed per worker: {absorbed}"
