"""Agents throughput: ticks/s per worker (1m bars + EMA(12) + EMA(26) + ema_cross strategy).

The md.trades topic is filled first, then one `ticklane agents` worker replays it at full
speed; the rate is taken from the worker's own tick counter (read every 100 ms) between
its first and its last absorbed frame, so start-up and the group join are not counted.
Every symbol trades every 20 ms of data time in frames of 100 trades, so bars (and so
output deliveries) come at the same rate per tick whatever the number of symbols.

The 0DTE row replays a synthetic option chain as `produce file --chains all` writes it
to md.chain, timed from the worker's count of absorbed frames.
"""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from agents.engine import Engine, SymbolEntry
from agents.roster import INTERVALS_NS, Roster
from agents.service import ensure_topics
from agents.strategies.registry import registry
from agents.ticks import trade_columns
from producers.pipeline import produce_file
from producers.synth import generate
from tests.bench.rows import Row, aimed, guard
from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import KafkaSettings, Settings, StrategyConfig, TopicSettings
from ticklane.tail import consume
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

TOTAL_TICKS = 1_000_000
WORKER_ROUNDS = 3
FRAME = 100
STEP_NS = 20_000_000
T0 = 1_719_840_600_000_000_000
TICKLANE = str(Path(sys.executable).with_name("ticklane"))


def symbol_frames(symbols: int, seed: int = 3) -> list[tuple[str, bytes]]:
    """(symbol, records) frames, symbols interleaved, each symbol's ticks in time order."""
    per_symbol = TOTAL_TICKS // symbols
    rng = np.random.default_rng(seed)
    dtype = dbn.record_dtype(0)
    frames: list[list[tuple[str, bytes]]] = []
    for s in range(symbols):
        array = np.zeros(per_symbol, dtype=dtype)
        array["length"], array["rtype"], array["instrument_id"] = dtype.itemsize // 4, 0, s + 1
        phase = int(rng.integers(0, 60_000_000_000))
        array["ts_event"] = T0 + phase + np.arange(per_symbol) * STEP_NS
        array["ts_recv"] = array["ts_event"]
        steps = rng.integers(-1, 2, per_symbol) * 250_000_000
        array["price"] = 5_000_000_000_000 + np.cumsum(steps)
        array["size"] = rng.integers(1, 10, per_symbol)
        array["action"], array["side"] = b"T", b"B"
        raw = array.tobytes()
        step = FRAME * dtype.itemsize
        frames.append([(f"S{s:04d}", raw[i : i + step]) for i in range(0, len(raw), step)])
    # Round-robin over symbols, as a multi-symbol feed arrives.
    return [f for batch in zip(*frames, strict=True) for f in batch]


def _roster() -> Roster:
    return Roster([StrategyConfig(name="ema_cross")], registry())


def engine_rate(symbols: int) -> float:
    """Ticks/s of the pure engine (no Kafka): the agents' own per-tick cost."""
    frames = symbol_frames(symbols)
    engine = Engine(_roster(), publish_intervals=[INTERVALS_NS["1m"]])
    entries: dict[str, SymbolEntry] = {}
    start = time.perf_counter()
    for symbol, records in frames:
        entry = entries.get(symbol, SymbolEntry())
        outcome = engine.absorb_trades(symbol, entry, (0, entry.offset + 1), trade_columns(records))
        assert outcome is not None
        entries[symbol] = outcome.entry
    return TOTAL_TICKS / (time.perf_counter() - start)


def free_port() -> int:
    """A TCP port free on this machine now (for a process's metrics endpoint)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric(port: int, sample: str) -> float:
    """The worker's value of one sample (name with labels, as exposed); -1 if not there yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return -1.0


def worker_rate(bootstrap: str, symbols: int, workdir: Path) -> float:
    """Ticks/s of one `ticklane agents` worker replaying a filled md.trades topic."""
    settings = KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000)
    topics = TopicSettings(prefix=f"bench-agents-{uuid.uuid4().hex[:6]}.", partitions=6)
    spec = next(s for s in catalogue(topics) if s.base == "md.trades")
    TopicAdmin(kafka.client_config(settings, bootstrap)).ensure([spec])
    producer = Producer(kafka.producer_config(settings, bootstrap, linger_ms=5))
    for symbol, records in symbol_frames(symbols):
        value = wire.encode(MarketFrame(symbol, records))
        producer.produce(spec.name, key=symbol.encode(), value=value)
        producer.poll(0)
    producer.flush(60)
    seconds = _run_worker(bootstrap, topics, workdir, [], "ticklane_agent_ticks_total", TOTAL_TICKS)
    return TOTAL_TICKS / seconds


def _run_worker(  # noqa: PLR0917 - a private helper of two callers
    bootstrap: str,
    topics: TopicSettings,
    workdir: Path,
    args: list[str],
    counter: str,
    total: int,
) -> float:
    """Seconds a `ticklane agents` worker takes from its first absorbed frame until its
    `counter` reaches `total` (start-up and the group join are not counted)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TICKLANE_TOPICS__PREFIX": topics.prefix,
        "TICKLANE_TOPICS__PARTITIONS": str(topics.partitions),
        "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "TICKLANE_DATA_DIR": str(workdir / topics.prefix),
        "TICKLANE_LOG_LEVEL": "WARNING",
    }
    log = (workdir / f"{topics.prefix}log").open("wb")
    proc = subprocess.Popen(
        [TICKLANE, "agents", "--metrics-port", str(port), *args],
        env=env,
        stderr=log,
        stdout=log,
    )
    try:
        first: tuple[float, float] | None = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            count = metric(port, counter)
            now = time.perf_counter()
            if count > 0 and first is None:
                first = (now, count)
            if count >= total and first is not None and count > first[1]:
                # Scale to the whole run: the first reading already counted some.
                return (now - first[0]) * total / (count - first[1])
            time.sleep(0.1)
        # The log goes with the scratch directory: its last line travels in the message.
        lines = Path(log.name).read_text(errors="replace").strip().splitlines() or ["(empty)"]
        raise TimeoutError(
            f"worker did not reach {total:,} on {counter} in 180 s (at {count:,.0f}, "
            f"exit status {proc.poll()}); its log's last line: {lines[-1]}"
        )
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


CHAIN_MINUTES = 60
CHAIN_TARGET = "≥ 100,000 records/s"
CHAIN_BEFORE = "4,300 records/s (2.4 records/frame)"
"""Issue 18's aim for the 0DTE row, and the figure when md.chain frames were runs of one
symbol and type."""
CHAIN_CONFIG = """
[[agents.strategies]]
name = "zero_dte"
params = { fast = 5, slow = 20 }
bar_interval = "1s"
"""


def chain_rate(bootstrap: str, workdir: Path) -> tuple[float, float]:
    """Records/s and records per frame of one worker replaying a synthetic 0DTE chain.

    The chain is as `produce file --chains all` writes it: frames of consecutive records
    of the chain, of every symbol and type, up to the frame caps.
    """
    path = workdir / "chain.dbn.zst"
    if not path.exists():
        generate(path, symbols=2, minutes=CHAIN_MINUTES, seed=3)
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000),
        topics=TopicSettings(prefix=f"bench-chain-{uuid.uuid4().hex[:6]}.", partitions=6),
        data_dir=workdir,
    )
    ensure_topics(settings, bootstrap)
    produce_file(path, settings, chains=("*",))
    topic = f"{settings.topics.prefix}md.chain"
    config = kafka.consumer_config(settings.kafka, bootstrap, f"bench-{uuid.uuid4().hex}")
    frames = [
        wire.decode_as(m.value or b"", MarketFrame)
        for m in consume(config, topic, from_beginning=True, until_end=True)
    ]
    records = sum(dbn.count_records(frame) for frame in frames)
    config_path = workdir / f"{settings.topics.prefix}toml"
    config_path.write_text(CHAIN_CONFIG)
    seconds = _run_worker(
        bootstrap,
        settings.topics,
        workdir,
        ["--config", str(config_path)],
        'ticklane_agent_frames_total{outcome="absorbed"}',
        len(frames),
    )
    return records / seconds, records / len(frames)


def agent_rows(bootstrap: str) -> Iterator[Row]:
    """Rows for `make bench`, each as it is measured."""
    for symbols in (1, 100, 1000):
        rate = engine_rate(symbols)
        yield Row(f"agents engine only, {symbols} symbols", "ticks/s", value=rate)
    with tempfile.TemporaryDirectory() as tmp:
        name = f"agents worker, 0DTE chain, {CHAIN_MINUTES} min synthetic"
        row = guard(name, lambda: _chain_row(name, bootstrap, Path(tmp)))
        yield aimed(row, CHAIN_TARGET, CHAIN_BEFORE)
        for symbols in (1, 100, 1000):
            name = f"agents worker, {symbols} symbols, frames of {FRAME}"
            yield guard(name, partial(_worker_row, name, bootstrap, symbols, Path(tmp)))


def _chain_row(name: str, bootstrap: str, workdir: Path) -> Row:
    chain = [chain_rate(bootstrap, workdir) for _ in range(WORKER_ROUNDS)]
    rate, per_frame = statistics.median(r for r, _ in chain), chain[0][1]
    note = f"zero_dte; {per_frame:.1f} records a frame; median of {WORKER_ROUNDS}"
    return Row(name, "records/s", value=rate, note=note)


def _worker_row(name: str, bootstrap: str, symbols: int, workdir: Path) -> Row:
    rates = [worker_rate(bootstrap, symbols, workdir) for _ in range(WORKER_ROUNDS)]
    note = f"1m bars, 2 EMAs, ema_cross; median of {WORKER_ROUNDS}"
    return Row(name, "ticks/s", value=statistics.median(rates), note=note)
