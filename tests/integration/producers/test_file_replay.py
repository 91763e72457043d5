"""A DBN file replayed into Kafka comes out exactly as the databento SDK reads it."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import databento as db
import pytest
import zstandard
from confluent_kafka import Consumer, TopicPartition

from producers.pipeline import produce_file
from producers.synth import generate
from ticklane import wire
from ticklane.dbn import count_records, frame_records, frame_runs, split_records
from ticklane.dbn_files import DbnFileError
from ticklane.market import MarketFrame
from ticklane.settings import Settings

pytestmark = pytest.mark.integration

TICKLANE = str(Path(sys.executable).with_name("ticklane"))


def expected_by_symbol(path: Path, rtype: int | None = None) -> tuple[str, dict[str, list[bytes]]]:
    """The file's schema and each symbol's records (of one rtype), in order, per the SDK."""
    store = db.DBNStore.from_file(path)
    by_id: dict[int, str] = {}
    for symbol, intervals in store.metadata.mappings.items():
        for interval in intervals:
            by_id[int(interval["symbol"])] = symbol
    out: dict[str, list[bytes]] = defaultdict(list)
    for record in store:
        raw = bytes(record)
        if rtype is None or raw[1] == rtype:
            out[by_id[record.instrument_id]].append(raw)
    return str(store.metadata.schema), out


def kafka_by_symbol(
    read_topic, topic: str
) -> tuple[dict[str, list[bytes]], dict[str, set[int]], list[MarketFrame]]:
    records: dict[str, list[bytes]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    frames = []
    for partition, _offset, key, value in read_topic(topic):
        frame = wire.decode_as(value, MarketFrame)
        assert key == frame.symbol.encode()
        records[frame.symbol] += split_records(frame.records)
        partitions[frame.symbol].add(partition)
        frames.append(frame)
    return records, partitions, frames


def files(databento_dir: Path) -> list[Path]:
    return sorted(databento_dir.glob("*.dbn.zst"))


@pytest.mark.parametrize(
    "name",
    [
        "glbx-esh4-20231225.mbo.dbn.zst",
        "glbx-esm4-20240508-burst.mbo.dbn.zst",
        "glbx-esm4-20240509.bbo-1m.dbn.zst",
        "glbx-esm4-20240509.definition.dbn.zst",
        "glbx-esm4-20240509.ohlcv-1m.dbn.zst",
        "glbx-esm4-options-20240509.bbo-1m.dbn.zst",
        "glbx-esm4-options-20240509.definition.dbn.zst",
        "glbx-esu4-20240701.mbp-1.dbn.zst",
        "glbx-esu4-20240701.trades.dbn.zst",
        "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst",
        "glbx-es-20240701.definition.dbn.zst",
    ],
)
def test_real_file_comes_out_of_kafka_equal(
    databento_dir: Path, settings: Settings, read_topic, name: str
) -> None:
    path = databento_dir / name
    assert {p.name for p in files(databento_dir)} >= {name}
    schema, expected = expected_by_symbol(path)
    report = produce_file(path, settings)
    assert report.published == sum(len(v) for v in expected.values())

    topic = f"{settings.topics.prefix}md.{schema}"
    got, partitions, frames = kafka_by_symbol(read_topic, topic)
    assert set(got) == set(expected)
    for symbol, records in expected.items():
        assert got[symbol] == records, f"{symbol}: records differ from the file"
        assert len(partitions[symbol]) == 1, f"{symbol} spread over {partitions[symbol]}"
    assert {f.source for f in frames} == {report.source}


def test_every_file_is_covered(databento_dir: Path) -> None:
    listed = test_real_file_comes_out_of_kafka_equal.pytestmark[-1].args[1]  # type: ignore[attr-defined]
    assert {p.name for p in files(databento_dir)} == set(listed)


def test_replaying_again_writes_nothing(
    databento_dir: Path, settings: Settings, read_topic
) -> None:
    path = databento_dir / "glbx-esu4-20240701.mbp-1.dbn.zst"
    first = produce_file(path, settings)
    again = produce_file(path, settings)
    assert (again.published, again.skipped_written) == (0, first.published)
    got, _, _ = kafka_by_symbol(read_topic, f"{settings.topics.prefix}md.mbp-1")
    assert sum(len(v) for v in got.values()) == first.published


def high_watermarks(settings: Settings, topic: str) -> int:
    """Messages in a topic by its partitions' end offsets (a cheap progress probe)."""
    consumer = Consumer(
        {"bootstrap.servers": str(settings.kafka.bootstrap_servers), "group.id": "hw"}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in parts
        )
    finally:
        consumer.close()


def kill_five_times(  # noqa: PLR0917 - the two SIGKILL tests' shared loop
    command: list[str],
    env: dict[str, str],
    settings: Settings,
    topic: str,
    tmp_path: Path,
    poll,
    short: Callable[[], bool],
) -> int:
    """Run `command` five times, SIGKILLing each run once it has visibly written something,
    at a random instant after; how many kills left Kafka `short()` of the whole file."""
    rng = random.Random(int(os.environ.get("TICKLANE_CHAOS_SEED", "7")))
    mid_file = 0
    for _ in range(5):
        before = high_watermarks(settings, topic) if mid_file else 0
        proc = subprocess.Popen(command, env=env, stderr=(tmp_path / "stderr.log").open("ab"))
        poll(
            lambda b=before, p=proc: p.poll() is not None or high_watermarks(settings, topic) > b,
            timeout_s=60,
            what="progress",
        )
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid_file += short()
    return mid_file


def test_sigkill_mid_file_then_restart_is_exactly_once(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    path = tmp_path / "synthetic.dbn.zst"
    summary = generate(path, symbols=12, minutes=10, seed=11, options=False)
    _, expected = expected_by_symbol(path, rtype=0x01)
    topic = f"{settings.topics.prefix}md.mbp-1"
    # Paced so that one run takes several seconds: a kill lands mid-file.
    command = [TICKLANE, "produce", "file", str(path), "--speed", "100x"]

    def short() -> bool:
        got, _, _ = kafka_by_symbol(read_topic, topic)
        return sum(len(v) for v in got.values()) < summary.counts["mbp-1"]

    mid_file = kill_five_times(command, cli_env, settings, topic, tmp_path, poll, short)
    final = subprocess.run(command, env=cli_env, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr
    got, partitions, _ = kafka_by_symbol(read_topic, topic)
    assert got == expected  # every record exactly once, in order
    assert all(len(p) == 1 for p in partitions.values())
    assert mid_file >= 3, "most kills should land mid-file"


def test_sigkill_mid_chain_replay_then_restart_is_exactly_once(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    """md.chain frames of many symbols: a restart after a kill resumes the chain exactly
    where Kafka ends, every record once and in order (a frame read back counts for each
    of its symbols)."""
    from agents.backtest import chain_frames  # noqa: PLC0415

    path = tmp_path / "chain.dbn.zst"
    generate(path, symbols=2, minutes=8, seed=3)
    expected = [r for _, frame in chain_frames(path) for r in frame_records(frame)]
    topic = f"{settings.topics.prefix}md.chain"

    def chain_records() -> list[bytes]:
        frames = [wire.decode_as(value, MarketFrame) for _, _, _, value in read_topic(topic)]
        return [r for frame in frames for r in frame_records(frame)]

    # Paced so that one run takes several seconds: a kill lands mid-file.
    command = [TICKLANE, "produce", "file", str(path), "--chains", "all", "--speed", "100x"]
    mid_file = kill_five_times(
        command,
        cli_env,
        settings,
        topic,
        tmp_path,
        poll,
        lambda: len(chain_records()) < len(expected),
    )
    final = subprocess.run(command, env=cli_env, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr
    got = chain_records()
    assert len(got) == len(expected)
    assert got == expected  # every record of the chain exactly once, in order
    assert len({partition for partition, _, _, _ in read_topic(topic)}) == 1  # one key
    assert mid_file >= 3, "most kills should land mid-file"


def test_damaged_files_fail_clearly_and_keep_what_came_before(
    databento_dir: Path, settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path
) -> None:
    source = databento_dir / "glbx-esu4-20240701.mbp-1.dbn.zst"
    records = [bytes(r) for r in db.DBNStore.from_file(source)]
    plain = zstandard.ZstdDecompressor().stream_reader(source.open("rb")).read()
    header = len(plain) - sum(len(r) for r in records)

    damaged = bytearray(plain)
    damaged[header + 80 * 1000] = 0  # the length byte of record 1000
    bad = tmp_path / "damaged.dbn"
    bad.write_bytes(bytes(damaged))
    result = subprocess.run(
        [TICKLANE, "produce", "file", str(bad)],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr
    assert f"byte offset {header + 80 * 1000}" in result.stderr
    got, _, _ = kafka_by_symbol(read_topic, f"{settings.topics.prefix}md.mbp-1")
    assert got["ESU4"] == records[:1000]

    truncated = tmp_path / "truncated.dbn.zst"
    truncated.write_bytes(source.read_bytes()[:20_000])
    with pytest.raises(DbnFileError, match=r"truncated.*truncated zstd stream|truncated zstd"):
        produce_file(truncated, settings)


def test_real_files_of_one_chain_replay_as_one_source_with_the_chain_in_order(
    databento_dir: Path, settings: Settings, read_topic
) -> None:
    """Definitions, the options' bbo-1m and the future's ohlcv-1m: three real files, one
    source; md.chain holds ESM4's chain exactly as the backtest cuts it, frame for frame,
    each frame holding records of several of the chain's symbols."""
    from agents.backtest import chain_frames  # noqa: PLC0415

    paths = [
        databento_dir / "glbx-esm4-20240509.definition.dbn.zst",
        databento_dir / "glbx-esm4-options-20240509.definition.dbn.zst",
        databento_dir / "glbx-esm4-options-20240509.bbo-1m.dbn.zst",
        databento_dir / "glbx-esm4-20240509.ohlcv-1m.dbn.zst",
    ]
    report = produce_file(paths, settings, chains=("*",))
    assert report.source.startswith("files:")
    per_file = [expected_by_symbol(p)[1] for p in paths]
    assert report.published == sum(len(r) for records in per_file for r in records.values())
    for path in paths[1:]:  # every file's records also reach their own md.<schema> as always
        schema, expected = expected_by_symbol(path)
        got, _, _ = kafka_by_symbol(read_topic, f"{settings.topics.prefix}md.{schema}")
        assert {s: got[s] for s in expected} == expected

    frames = [
        (key, wire.decode_as(value, MarketFrame))
        for _, _, key, value in read_topic(f"{settings.topics.prefix}md.chain")
    ]
    got = [(key, f.symbol, f.symbols, f.runs, f.records) for key, f in frames]
    expected = [
        (u.encode(), f.symbol, f.symbols, f.runs, f.records) for u, f in chain_frames(paths)
    ]
    assert got == expected
    assert {key for key, _ in frames} == {b"ESM4"}
    assert {f.symbol for _, f in frames} == {"ESM4"}  # a frame is named by its chain
    symbols = {run.symbol for _, f in frames for run in frame_runs(f)}
    assert symbols == {"ESM4 P5230", "ESM4 P5250", "ESM4"}
    assert any(len(f.symbols) > 1 for _, f in frames)
    assert sum(count_records(f) for _, f in frames) > 10 * len(frames)  # few, full frames

    again = produce_file(paths, settings, chains=("*",))  # a rerun writes nothing
    assert again.published == 0
    assert len(read_topic(f"{settings.topics.prefix}md.chain")) == len(frames)


def test_a_native_crash_leaves_its_stacks_in_the_log_and_the_next_run_says_so(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    path = tmp_path / "synthetic.dbn.zst"
    generate(path, symbols=4, minutes=10, seed=5, options=False)
    _, expected = expected_by_symbol(path, rtype=0x01)
    topic = f"{settings.topics.prefix}md.mbp-1"
    command = [TICKLANE, "produce", "file", str(path), "--speed", "100x"]
    log = tmp_path / "crash.log"
    proc = subprocess.Popen(command, env=cli_env, stderr=log.open("ab"))
    poll(
        lambda: proc.poll() is not None or high_watermarks(settings, topic) > 0,
        timeout_s=60,
        what="progress",
    )
    proc.send_signal(signal.SIGSEGV)  # as a fault in librdkafka or the decoder would
    assert proc.wait() == -signal.SIGSEGV
    said = log.read_text()
    assert "Fatal Python error: Segmentation fault" in said  # faulthandler: every thread's stack
    assert "Current thread" in said
    again = subprocess.run(command, env=cli_env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert f"(pid {proc.pid}) ended without a clean exit" in again.stderr
    got, _, _ = kafka_by_symbol(read_topic, topic)
    assert got == expected  # resumed exactly once
    clean = subprocess.run(command, env=cli_env, capture_output=True, text=True, check=False)
    assert "without a clean exit" not in clean.stderr  # the last run ended cleanly
