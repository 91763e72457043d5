"""`make bench`: throughput and latency of the kernel on this machine, printed as a table.

Figures are medians of several rounds; compare ratios within one run, not across machines.
"""

import statistics
import time
import uuid
from collections.abc import Callable

import numpy as np
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.table import Table

from agents.bars import BarBuilder
from tests import data
from tests.bench.agents import agent_rows
from tests.bench.executor import executor_rows
from tests.bench.producer import producer_rows
from ticklane import dbn, kafka, wire
from ticklane.broker import provide_broker
from ticklane.market import MarketFrame
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

ROUNDS = 5
Row = tuple[str, str, str]


def median_rate(work: Callable[[], int]) -> float:
    """Median of `ROUNDS` runs of items processed per second."""
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        items = work()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


TRADE_SIZE = dbn.record_dtype(0).itemsize


def trades(n: int, seed: int = 1) -> bytes:
    """`n` raw DBN trade records of a random walk, concatenated."""
    rng = np.random.default_rng(seed)
    array = np.zeros(n, dtype=dbn.record_dtype(0))
    array["length"], array["rtype"], array["instrument_id"] = TRADE_SIZE // 4, 0, 118
    array["ts_event"] = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(1, 50_000, n))
    array["ts_recv"] = array["ts_event"] + 1000
    array["price"] = 5_000_000_000_000 + np.cumsum(rng.integers(-1, 2, n)) * 250_000_000
    array["size"] = rng.integers(1, 10, n)
    array["action"], array["side"], array["sequence"] = b"T", b"B", np.arange(n)
    return array.tobytes()


def frames_of(records: bytes, size: int) -> list[MarketFrame]:
    step = size * TRADE_SIZE
    return [MarketFrame("ESU4", records[i : i + step]) for i in range(0, len(records), step)]


def _each(func: Callable[[object], object], items: list[object]) -> int:
    # Results are dropped as a consumer would drop them; keeping them all skews GC costs.
    for item in items:
        func(item)
    return len(items)


def codec_rows() -> list[Row]:
    rows = []
    records = trades(50_000)
    for size in (1, 50):
        frames = frames_of(records, size)
        encoded = [wire.encode(f) for f in frames]
        enc = median_rate(lambda frames=frames, n=size: _each(wire.encode, frames) * n)
        dec = median_rate(lambda encoded=encoded, n=size: _each(wire.decode, encoded) * n)
        rows.append((f"wire encode, frames of {size}", f"{enc:,.0f}", "records/s"))
        view = median_rate(
            lambda encoded=encoded, n=size: (
                _each(lambda b: dbn.to_trades(wire.decode_as(b, MarketFrame).records), encoded) * n
            )
        )
        rows.append((f"wire decode, frames of {size}", f"{dec:,.0f}", "records/s"))
        rows.append((f"decode + to_trades, frames of {size}", f"{view:,.0f}", "records/s"))
    return rows


def bar_rows() -> list[Row]:
    array = np.frombuffer(trades(300_000), dtype=dbn.record_dtype(0))
    ts, px, sz = (array[f].tolist() for f in ("ts_event", "price", "size"))

    def build() -> int:
        BarBuilder(1_000_000_000).add_many(ts, px, sz)
        return len(ts)

    return [("1s bars from trades (add_many)", f"{median_rate(build):,.0f}", "ticks/s")]


def broker_rows(bootstrap: str) -> list[Row]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000)
    topics = TopicSettings(prefix=f"bench-{uuid.uuid4().hex[:6]}.", partitions=6)
    spec = next(s for s in catalogue(topics) if s.base == "md.trades")
    TopicAdmin(kafka.client_config(settings, bootstrap)).ensure([spec])
    records = trades(200_000)
    frames = [wire.encode(f) for f in frames_of(records, 50)]
    producer = Producer(kafka.producer_config(settings, bootstrap, linger_ms=5))
    start = time.perf_counter()
    for i, value in enumerate(frames):
        producer.produce(spec.name, key=f"S{i % 100}".encode(), value=value)
        producer.poll(0)
    producer.flush(60)
    produce_rate = len(frames) * 50 / (time.perf_counter() - start)

    consumer = Consumer(kafka.consumer_config(settings, bootstrap, f"{spec.name}-bench"))
    consumer.subscribe([spec.name])
    got, start = 0, None
    deadline = time.monotonic() + 120
    while got < len(frames) and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if msg.error() is None:
                start = start or time.perf_counter()
                got += 1
                wire.decode(msg.value())
    consume_rate = got * 50 / (time.perf_counter() - (start or time.perf_counter()))
    latencies = _latencies(producer, consumer, spec.name)
    consumer.close()
    return [
        ("produce, frames of 50, idempotent", f"{produce_rate:,.0f}", "records/s"),
        ("consume + decode, frames of 50", f"{consume_rate:,.0f}", "records/s (after join)"),
        ("produce→consume latency p50", f"{latencies[0]:.1f}", "ms (one message at a time)"),
        ("produce→consume latency p99", f"{latencies[1]:.1f}", "ms"),
    ]


def _latencies(producer: Producer, consumer: Consumer, topic: str) -> tuple[float, float]:
    samples = []
    one = trades(1)
    for i in range(200):
        sent = time.perf_counter()
        producer.produce(topic, key=b"LAT", value=wire.encode(MarketFrame("LAT", one, position=i)))
        producer.flush(5)
        while True:
            msg = consumer.poll(5)
            if msg is not None and msg.error() is None and msg.key() == b"LAT":
                break
        samples.append((time.perf_counter() - sent) * 1000)
    q = statistics.quantiles(samples, n=100)
    return statistics.median(samples), q[98]


def main() -> None:
    console = Console()
    table = Table("measure", "median", "unit", title="ticklane kernel benchmarks")
    for row in codec_rows() + bar_rows():
        table.add_row(*row)
    groups: list[Callable[[str], list[Row]]] = [
        broker_rows,
        agent_rows,
        lambda bootstrap: producer_rows(bootstrap, data.databento_dir()),
        executor_rows,
    ]
    for rows_of in groups:
        # A broker per group: the embedded one keeps every message in memory, and what one
        # group wrote (the agents' rows write millions of ticks) must not slow the next.
        with provide_broker() as broker:
            for row in rows_of(broker.bootstrap_servers):
                table.add_row(*row)
        table.caption = f"broker: {broker.kind}, one per group of rows; {ROUNDS} rounds"
    console.print(table)


if __name__ == "__main__":
    main()
