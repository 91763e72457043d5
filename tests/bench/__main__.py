"""`make bench`: throughput and latency of the kernel on this machine.

Each row is printed as soon as it is measured and written to `.ticklane/bench.json`; the
whole table is printed at the end. A failed row or group is reported and the rest still run;
the exit status is 1 if any failed. `--only agents,executor` runs some groups only.

Figures are medians of several rounds; compare ratios within one run, not across machines.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table

from agents.bars import BarBuilder
from tests import data
from tests.bench.agents import agent_rows
from tests.bench.api import api_rows
from tests.bench.backtest import backtest_rows
from tests.bench.broker import stored_batches_rows
from tests.bench.dashboard import dashboard_rows
from tests.bench.executor import executor_rows
from tests.bench.pipeline import pipeline_rows
from tests.bench.producer import producer_rows
from tests.bench.rows import Row
from ticklane import dbn, kafka, wire
from ticklane.broker import provide_broker
from ticklane.market import MarketFrame
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

ROUNDS = 5


def median_rate(work: Callable[[], int]) -> float:
    """Median of `ROUNDS` runs of items processed per second."""
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        items = work()
        rates.append(items / (time.perf_counter() - start))
    return statistics.median(rates)


TRADE_SIZE = dbn.record_dtype(0).itemsize
T = TypeVar("T")


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


def _each(func: Callable[[T], object], items: list[T], records_each: int) -> int:
    """Records handled by `func` over `items`, each item holding `records_each` records."""
    # Results are dropped as a consumer would drop them; keeping them all skews GC costs.
    for item in items:
        func(item)
    return len(items) * records_each


def _to_trades(encoded: bytes) -> object:
    return dbn.to_trades(wire.decode_as(encoded, MarketFrame).records)


def codec_rows() -> Iterator[Row]:
    records = trades(50_000)
    for size in (1, 50):
        frames = frames_of(records, size)
        encoded = [wire.encode(f) for f in frames]
        enc = median_rate(partial(_each, wire.encode, frames, size))
        yield Row(f"wire encode, frames of {size}", "records/s", value=enc)
        dec = median_rate(partial(_each, wire.decode, encoded, size))
        yield Row(f"wire decode, frames of {size}", "records/s", value=dec)
        view = median_rate(partial(_each, _to_trades, encoded, size))
        yield Row(f"decode + to_trades, frames of {size}", "records/s", value=view)


def bar_rows() -> Iterator[Row]:
    array = np.frombuffer(trades(300_000), dtype=dbn.record_dtype(0))
    ts, px, sz = (array[f].tolist() for f in ("ts_event", "price", "size"))

    def build() -> int:
        BarBuilder(1_000_000_000).add_many(ts, px, sz)
        return len(ts)

    yield Row("1s bars from trades (add_many)", "ticks/s", value=median_rate(build))


def broker_rows(bootstrap: str) -> Iterator[Row]:
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
    yield Row("produce, frames of 50, idempotent", "records/s", value=produce_rate)

    consumer = Consumer(kafka.consumer_config(settings, bootstrap, f"{spec.name}-bench"))
    try:
        # The clock starts at the assignment, not at the first message: by then the consumer
        # has fetched ahead, and the rate was the decoding's alone (~19M records/s).
        assigned: list[float] = []
        consumer.subscribe(
            [spec.name], on_assign=lambda _c, _parts: assigned.append(time.perf_counter())
        )
        got = 0
        deadline = time.monotonic() + 120
        while got < len(frames) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    got += 1
                    wire.decode(msg.value() or b"")
        start = assigned[0] if assigned else time.perf_counter()
        consume_rate = got * 50 / (time.perf_counter() - start)
        yield Row(
            "consume + decode, frames of 50", "records/s", value=consume_rate, note="after join"
        )
        p50, p99 = _latencies(producer, consumer, spec.name)
    finally:
        consumer.close()
    yield Row(
        "produce→consume latency",
        "ms",
        p50=p50,
        p99=p99,
        note="one message at a time",
        decimals=1,
    )
    yield from stored_batches_rows(bootstrap)


def _latencies(producer: Producer, consumer: Consumer, topic: str) -> tuple[float, float]:
    samples = []
    one = trades(1)
    for i in range(200):
        sent = time.perf_counter()
        producer.produce(topic, key=b"LAT", value=wire.encode(MarketFrame("LAT", one, position=i)))
        producer.flush(5)
        deadline = time.monotonic() + 30
        while True:
            msg = consumer.poll(5)
            if msg is not None and msg.error() is None and msg.key() == b"LAT":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"latency message {i} not consumed within 30 s")
        samples.append((time.perf_counter() - sent) * 1000)
    q = statistics.quantiles(samples, n=100)
    return statistics.median(samples), q[98]


def _producer_rows(bootstrap: str) -> Iterator[Row]:
    return producer_rows(bootstrap, data.databento_dir())


LOCAL_GROUPS: dict[str, Callable[[], Iterator[Row]]] = {
    "codec": codec_rows,
    "bars": bar_rows,
    "dashboard": dashboard_rows,
    "backtest": backtest_rows,
}
# A broker per group: the embedded one keeps every message in memory, and what one group
# wrote (the agents' rows write millions of ticks) must not slow the next.
BROKER_GROUPS: dict[str, Callable[[str], Iterator[Row]]] = {
    "broker": broker_rows,
    "agents": agent_rows,
    "producer": _producer_rows,
    "executor": executor_rows,
    "pipeline": pipeline_rows,
    "api": api_rows,
}
GROUPS = (*LOCAL_GROUPS, *BROKER_GROUPS)
REPORT = Path(".ticklane") / "bench.json"


class Report:
    """Each row printed as soon as it is measured and written to `path`; the table at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Row] = []
        self.brokers: list[str] = []
        self._write()  # a previous run's figures are not this run's

    def group(self, name: str, broker: str | None = None) -> None:
        print(f"── {name} ({f'broker: {broker}' if broker else 'in process'})", flush=True)
        if broker and broker not in self.brokers:
            self.brokers.append(broker)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if row.error is not None:
            print(f"   {row.name:<48} FAILED  {row.error}", flush=True)
        else:
            note = f"  ({row.note})" if row.note else ""
            aim = f"  [target {row.target}; before {row.before}]" if row.target else ""
            print(f"   {row.name:<48} {row.figure:>20} {row.unit}{note}{aim}", flush=True)
        self._write()

    def _write(self) -> None:
        """`path` replaced at once (temporary file, then rename): a crash keeps the last rows."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        rows = [row.as_json() for row in self.rows]
        tmp.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def table(self) -> Table:
        table = Table(
            "measure", "median", "unit", "target", "before", title="ticklane kernel benchmarks"
        )
        for row in self.rows:
            aims = (rich_escape(row.target), rich_escape(row.before))
            if row.error is not None:
                table.add_row(row.name, "[red]failed[/red]", rich_escape(row.error), *aims)
            else:
                unit = f"{row.unit} ({row.note})" if row.note else row.unit
                table.add_row(row.name, row.figure, rich_escape(unit), *aims)
        brokers = ", ".join(self.brokers)
        broker = f"broker: {brokers}, one per group of rows; " if brokers else ""
        table.caption = f"{broker}codec, bars: median of {ROUNDS} rounds; rows in {self.path}"
        return table


def group_rows(name: str, report: Report) -> Iterator[Row]:
    """The rows of group `name`, each as it is measured; on its own broker if it needs one."""
    if name in LOCAL_GROUPS:
        report.group(name)
        yield from LOCAL_GROUPS[name]()
        return
    with provide_broker() as broker:
        report.group(name, broker.kind)
        yield from BROKER_GROUPS[name](broker.bootstrap_servers)


def selected(only: str | None) -> list[str]:
    """The groups to run, in their usual order: all, or those named in `only` (a comma list)."""
    if not only:
        return list(GROUPS)
    names = {name.strip() for name in only.split(",") if name.strip()}
    unknown = sorted(names - set(GROUPS))
    if unknown or not names:
        wrong = f"unknown bench group {', '.join(unknown)}" if unknown else "no bench group named"
        raise ValueError(f"{wrong}; valid groups: {', '.join(GROUPS)}")
    return [name for name in GROUPS if name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "--only", metavar="GROUPS", help=f"comma-separated groups of: {', '.join(GROUPS)}"
    )
    args = parser.parse_args(argv)
    try:
        groups = selected(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    report = Report(REPORT)
    for name in groups:
        try:
            for row in group_rows(name, report):
                report.add(row)
        except Exception as exc:  # noqa: BLE001 - the other groups still run; the exit says so
            report.add(Row.failed(f"{name} (group)", exc))
    Console().print(report.table())
    failed = [row.name for row in report.rows if row.error is not None]
    if failed:
        print(f"{len(failed)} failed: {'; '.join(failed)}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
