"""Executor benchmark: signal → paper order latency at fixed signal rates.

`ticklane execute` runs as its own process (SQLite ledger, paper venue); signals are produced
at a steady rate, each a reversal on one of many symbols, so every signal makes one order. The
latency of a signal is from just before it is produced to the paper venue's record of the
order (`ts_received` in the venue's own store): Kafka, the ledger's write-ahead and risk
included. When the executor cannot keep up, the queue shows in the percentiles; the achieved
rate is in the row's note. Printed, never asserted.
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

from confluent_kafka import Producer

from executors.brokers.paper.store import VenueStore
from tests.bench.rows import Row, guard
from ticklane import ids, kafka, wire
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue
from ticklane.trading import Signal

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SYMBOLS = tuple(f"B{i:03d}" for i in range(50))
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


def _venue_count(store_dir: Path) -> int:
    path = store_dir / "venue.sqlite"
    if not path.exists():
        return 0
    store = VenueStore(store_dir)
    try:
        return len(store.orders())
    finally:
        store.close()


def _wait_for(store_dir: Path, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _venue_count(store_dir) >= count:
            return True
        time.sleep(0.05)
    return False


def _run(name: str, bootstrap: str, rate: int) -> Row:
    prefix = f"bench-ex-{uuid.uuid4().hex[:6]}."
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    TopicAdmin(kafka.client_config(settings, bootstrap)).ensure(
        catalogue(TopicSettings(prefix=prefix, partitions=6))
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        venue_dir = data_dir / "paper"
        proc = subprocess.Popen(
            [TICKLANE, "execute", "--broker", "paper"],
            env=_env(bootstrap, prefix, data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            producer = Producer(kafka.producer_config(settings, bootstrap, linger_ms=0))
            topic = prefix + "signals"
            warmup = len(SYMBOLS)
            for n in range(warmup):
                producer.produce(
                    topic, key=_signal(n).symbol.encode(), value=wire.encode(_signal(n))
                )
            producer.flush(10)
            if not _wait_for(venue_dir, warmup, 60):
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
            _wait_for(venue_dir, warmup + total, 120)
        finally:
            proc.terminate()
            proc.wait(30)
        store = VenueStore(venue_dir)
        orders = [o for o in store.orders() if o.client_order_id in sent]
        store.close()
    latencies = sorted((o.ts_received - sent[o.client_order_id]) / 1e6 for o in orders)
    if len(latencies) < 2:
        raise RuntimeError(f"{len(latencies)} of {total:,} signals made a paper order")
    span = (max(o.ts_received for o in orders) - min(sent.values())) / 1e9
    q = statistics.quantiles(latencies, n=100)
    return Row(
        name,
        "ms",
        p50=statistics.median(latencies),
        p99=q[98],
        note=f"{len(orders):,} orders, offered {total / produced_s:,.0f}/s, "
        f"served {len(orders) / span:,.0f}/s",
        decimals=1,
    )


def executor_rows(bootstrap: str) -> Iterator[Row]:
    """Signal → paper order latency at 1k and 5k signals/s, each row as it is measured."""
    for rate in (1_000, 5_000):
        name = f"signal→paper order at {rate:,}/s"
        yield guard(name, partial(_run, name, bootstrap, rate))
