"""Agents throughput: ticks/s per worker (1m bars + EMA(12) + EMA(26) + ema_cross strategy).

The md.trades topic is filled first, then one `ticklane agents` worker replays it at full
speed; the rate is taken from the worker's own tick counter (read every 100 ms) between
its first and its last absorbed frame, so start-up and the group join are not counted.
Every symbol trades every 20 ms of data time in frames of 100 trades, so bars (and so
output deliveries) come at the same rate per tick whatever the number of symbols.
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
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from agents.engine import Engine, SymbolEntry
from agents.roster import INTERVALS_NS, Roster
from agents.strategies.registry import registry
from agents.ticks import trade_columns
from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import KafkaSettings, StrategyConfig, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

Row = tuple[str, str, str]

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ticks(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith("ticklane_agent_ticks_total "):
            return float(line.split()[1])
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
    port = _free_port()
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
        [TICKLANE, "agents", "--metrics-port", str(port)], env=env, stderr=log, stdout=log
    )
    try:
        first: tuple[float, float] | None = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            ticks = _ticks(port)
            now = time.perf_counter()
            if ticks > 0 and first is None:
                first = (now, ticks)
            if ticks >= TOTAL_TICKS and first is not None:
                return (ticks - first[1]) / (now - first[0])
            time.sleep(0.1)
        raise TimeoutError(f"worker did not absorb {TOTAL_TICKS} ticks (log in {log.name})")
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def agent_rows(bootstrap: str) -> list[Row]:
    """Rows for `make bench`."""
    rows: list[Row] = []
    for symbols in (1, 100, 1000):
        rate = engine_rate(symbols)
        rows.append((f"agents engine only, {symbols} symbols", f"{rate:,.0f}", "ticks/s"))
    with tempfile.TemporaryDirectory() as tmp:
        for symbols in (1, 100, 1000):
            rates = [worker_rate(bootstrap, symbols, Path(tmp)) for _ in range(WORKER_ROUNDS)]
            rows.append(
                (
                    f"agents worker, {symbols} symbols, frames of {FRAME}",
                    f"{statistics.median(rates):,.0f}",
                    f"ticks/s (1m bars, 2 EMAs, ema_cross; median of {WORKER_ROUNDS})",
                )
            )
    return rows
