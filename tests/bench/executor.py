"""Executor benchmark: signal → order latency at fixed signal rates, at the paper venue and at
the TastyTrade fake.

`ticklane execute` runs as its own process (SQLite ledger); signals are produced at a steady
rate, each a reversal on one of many futures, so every signal makes one order. The latency of
a signal is from just before it is produced to the venue's own record of the order: the paper
venue's `ts_received`, or the fake TastyTrade server's `received_at` (the order acknowledged,
after the adapter and the real SDK sent it over HTTP). Kafka, the ledger's write-ahead and risk
are included; both clocks are this machine's. When the executor cannot keep up, the queue
shows in the percentiles; the achieved rate is in the row's note. Printed, never asserted.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Protocol

import httpx2
from confluent_kafka import Producer

from executors.brokers.paper.store import VenueStore
from fakes.tastytrade.background import FakeTastytradeServer
from fakes.tastytrade.record import Record
from tests.bench.rows import Row, guard
from ticklane import ids, kafka, wire
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue
from ticklane.trading import Signal

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SYMBOLS = tuple(f"B{i:02d}Z6" for i in range(50))
"""Futures as Databento names them: a reversal is one order at both venues."""
SECONDS = 3.0
T0 = 1_719_840_600_000_000_000


def _env(bootstrap: str, prefix: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
    return env | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TICKLANE_TOPICS__PREFIX": prefix,
        "TICKLANE_TOPICS__PARTITIONS": "6",
        "TICKLANE_DATA_DIR": str(data_dir),
        "TICKLANE_EXECUTOR__MAX_ORDERS_PER_MINUTE": "10000000",
        "TICKLANE_LOG_LEVEL": "WARNING",
    }


def _signal(n: int) -> Signal:
    symbol = SYMBOLS[n % len(SYMBOLS)]
    target = 1 if (n // len(SYMBOLS)) % 2 == 0 else -1
    return Signal.create("bench", symbol, T0 + n, target, reference_price=100 * 10**9)


class Venue(Protocol):
    """Where the executor sends orders, and that venue's own record of when each arrived."""

    name: str

    def env(self) -> dict[str, str]: ...

    def received(self) -> dict[str, int]:
        """Client order id -> wall ns the venue recorded the order at."""
        ...


class Paper:
    """The paper venue, in the executor's process, its record in `data_dir/paper`."""

    name = "paper"

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "paper"

    def env(self) -> dict[str, str]:
        return {}

    def received(self) -> dict[str, int]:
        if not (self._dir / "venue.sqlite").exists():
            return {}
        store = VenueStore(self._dir)
        try:
            return {o.client_order_id: o.ts_received for o in store.orders()}
        finally:
            store.close()


class Tastytrade:
    """The fake TastyTrade server in this process (its own thread), the symbols its futures."""

    name = "tastytrade"

    def __init__(self, server: FakeTastytradeServer) -> None:
        self._server = server
        specs = [
            {"symbol": f"/{symbol}", "instrument_type": "Future", "tick": "0.25"}
            for symbol in SYMBOLS
        ]
        httpx2.post(f"{server.url}/__fake/instruments", json=specs).raise_for_status()

    def env(self) -> dict[str, str]:
        return {
            "TICKLANE_EXECUTOR__TASTYTRADE__API_URL": self._server.url,
            "TASTYTRADE_CLIENT_SECRET": "bench",
            "TASTYTRADE_REFRESH_TOKEN": "bench",
        }

    def received(self) -> dict[str, int]:
        record = Record(self._server.data_dir, read_only=True)
        try:
            return {o.external_identifier or "": o.received_at for o in record.orders()}
        finally:
            record.close()


def _wait_for(venue: Venue, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(venue.received()) >= count:
            return True
        time.sleep(0.05)
    return False


def _run(name: str, bootstrap: str, rate: int, venue_name: str = "paper") -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        if venue_name == "paper":
            return _measure(name, bootstrap, rate, Paper(Path(tmp)), Path(tmp))
        with FakeTastytradeServer(Path(tmp) / "fake") as server:
            return _measure(name, bootstrap, rate, Tastytrade(server), Path(tmp))


def _measure(name: str, bootstrap: str, rate: int, venue: Venue, data_dir: Path) -> Row:
    prefix = f"bench-ex-{uuid.uuid4().hex[:6]}."
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    TopicAdmin(kafka.client_config(settings, bootstrap)).ensure(
        catalogue(TopicSettings(prefix=prefix, partitions=6))
    )
    proc = subprocess.Popen(
        [TICKLANE, "execute", "--broker", venue.name],
        env=_env(bootstrap, prefix, data_dir) | venue.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        producer = Producer(kafka.producer_config(settings, bootstrap, linger_ms=0))
        topic = prefix + "signals"
        warmup = len(SYMBOLS)
        for n in range(warmup):
            producer.produce(topic, key=_signal(n).symbol.encode(), value=wire.encode(_signal(n)))
        producer.flush(10)
        if not _wait_for(venue, warmup, 60):
            raise TimeoutError("executor did not start: no warm-up order in 60 s")
        total = int(rate * SECONDS)
        sent: dict[str, int] = {}
        start = time.perf_counter()
        for i in range(total):
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0.001:
                time.sleep(ahead)  # pace without spinning: the executor needs the cores
            signal = _signal(warmup + i)
            sent[ids.client_order_id(signal.signal_id, 0)] = time.time_ns()
            producer.produce(topic, key=signal.symbol.encode(), value=wire.encode(signal))
            producer.poll(0)
        producer.flush(10)
        produced_s = time.perf_counter() - start
        _wait_for(venue, warmup + total, 120)
    finally:
        proc.terminate()
        proc.wait(30)
    received = {cid: ts for cid, ts in venue.received().items() if cid in sent}
    latencies = sorted((ts - sent[cid]) / 1e6 for cid, ts in received.items())
    if len(latencies) < 2:
        raise RuntimeError(f"{len(latencies)} of {total:,} signals made an order at {venue.name}")
    span = (max(received.values()) - min(sent.values())) / 1e9
    q = statistics.quantiles(latencies, n=100)
    return Row(
        name,
        "ms",
        p50=statistics.median(latencies),
        p99=q[98],
        note=f"{len(received):,} orders, offered {total / produced_s:,.0f}/s, "
        f"served {len(received) / span:,.0f}/s",
        decimals=1,
    )


def executor_rows(bootstrap: str) -> Iterator[Row]:
    """Signal → order latency: paper at 100, 1k and 5k signals/s, the TastyTrade fake at 100,
    each row as it is measured."""
    for venue_name, rate in (
        ("paper", 100),
        ("tastytrade", 100),
        ("paper", 1_000),
        ("paper", 5_000),
    ):
        name = f"signal→{venue_name} order at {rate:,}/s"
        yield guard(name, partial(_run, name, bootstrap, rate, venue_name))
