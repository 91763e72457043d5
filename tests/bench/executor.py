"""Executor benchmark: signal → order latency at fixed signal rates, at the paper venue and at
the TastyTrade fake.

`ticklane execute` runs as its own process (SQLite ledger); signals are produced at a steady
rate, each a reversal on one of many futures, so every signal makes one order. The latency of
a signal is from just before it is produced to the venue's own record of the order: the paper
venue's `ts_received`, or the fake TastyTrade server's `received_at` (the order acknowledged,
after the adapter and the real SDK sent it over HTTP). Kafka, the ledger's write-ahead and risk
are included; both clocks are this machine's. When the executor cannot keep up, the queue
shows in the percentiles; the achieved rate is in the row's note. Printed, never asserted.

Each symbol has a quote on `md.mbp-1` timed after every signal, so the paper venue fills each
order as it arrives (as a liquid market would): the executor also writes every fill, and the
working orders do not pile up. The burst row produces 1,000 signals on 1,000 symbols at once,
as the close of a minute bar would, and times the last order's arrival from the first send:
three bursts half a second apart into one executor (each reverses the last), their median.
Each row's note gives the CPU the executor, the broker and this process (producing the
signals, polling the venue) used while it was measured, a share of one core each: on a small
machine the sum shows when the row measured the machine rather than the executor.
"""

import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import httpx2
from confluent_kafka import Producer

from executors.brokers.paper.store import VenueStore
from executors.service import BATCH
from fakes.tastytrade.background import FakeTastytradeServer
from fakes.tastytrade.record import Record
from tests.bench.processes import MachineBusy, broker_pid, cpu_s, cpu_shares
from tests.bench.rows import Row, aimed, guard
from tests.unit.executors.engine_fixtures import Rig, limits, quote
from ticklane import dbn, ids, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue
from ticklane.trading import Signal

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SYMBOLS = tuple(f"B{i:03d}Z6" for i in range(1_000))
"""Futures as Databento names them: a reversal is one order at both venues."""
STEADY_SYMBOLS = 100
"""The symbols the steady-rate rows trade (the burst trades all of them)."""
IN_PROCESS = "executor in process (engine, SQLite ledger, paper venue)"
IN_PROCESS_SIGNALS = 5_000
BURST = 1_000
BURST_ROUNDS = 3
"""Bursts in the burst row, one executor: the row gives their median (one is noisy here)."""
BURST_GAP_S = 0.5
SECONDS = 3.0
CAPACITY_RATE = 7_000
"""Offered in the capacity row: above the target, so what is served is what the executor
can drain, not what was offered (a row offered 5,000/s serves a little less by its nature:
its span runs from the first send to the last order)."""
CAPACITY = f"executor capacity: signals offered at {CAPACITY_RATE:,}/s→paper orders"
T0 = 1_719_840_600_000_000_000
QUOTE_TS = T0 + 10**15
"""After every signal's time: each order fills at its symbol's quote as it arrives."""
MBP_1 = 1
ISSUE_18 = {  # (target, the figure before issue 18's change) per row
    "signal→paper order at 1,000/s": ("served 1,000/s", "p50 181-455 / p99 333-811 ms"),
    "signal→paper order at 5,000/s": ("", "served ~970/s, p50 5.7 s"),
    CAPACITY: ("served ≥ 5,000/s", "~970/s served of 5,000/s offered"),
    f"burst of {BURST:,} signals→paper orders": ("all ≤ 250 ms", "last ~1 s after"),
}


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


def _signal(n: int, symbols: int = STEADY_SYMBOLS) -> Signal:
    """The `n`th signal over the first `symbols` symbols: each symbol reverses every round."""
    symbol = SYMBOLS[n % symbols]
    target = 1 if (n // symbols) % 2 == 0 else -1
    return Signal.create("bench", symbol, T0 + n, target, reference_price=100 * 10**9)


def _quotes(producer: Producer, prefix: str) -> None:
    """One quote per symbol, timed after every signal (module docstring)."""
    topic = prefix + "md.mbp-1"
    for i, symbol in enumerate(SYMBOLS):
        quote = {"ts_event": QUOTE_TS, "ts_recv": QUOTE_TS, "instrument_id": 1 + i}
        book = {"bid_px_00": 99 * 10**9, "ask_px_00": 101 * 10**9, "bid_sz_00": 9, "ask_sz_00": 9}
        raw = dbn.encode_records(MBP_1, [quote | book | {"action": "A", "side": "B"}])
        producer.produce(topic, key=symbol.encode(), value=wire.encode(MarketFrame(symbol, raw)))
    producer.flush(10)


class Venue(Protocol):
    """Where the executor sends orders, and that venue's own record of when each arrived."""

    name: str

    def env(self) -> dict[str, str]: ...

    def received(self) -> dict[str, int]:
        """Client order id -> wall ns the venue recorded the order at."""
        ...

    def count(self) -> int:
        """How many orders the venue holds: cheap, since the wait polls it while the
        executor works (reading every order each time took most of a core at 15,000)."""
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

    def count(self) -> int:
        path = self._dir / "venue.sqlite"
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            try:
                # Orders are never deleted, so the last sequence number is the count, found
                # without reading every row 20 times a second.
                return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM orders").fetchone()[0])
            except sqlite3.OperationalError:
                return 0  # the executor has created the file but not yet its tables


class Tastytrade:
    """The fake TastyTrade server in this process (its own thread), the symbols its futures."""

    name = "tastytrade"

    def __init__(self, server: FakeTastytradeServer) -> None:
        self._server = server
        specs = [
            {"symbol": f"/{symbol}", "instrument_type": "Future", "tick": "0.25"}
            for symbol in SYMBOLS[:STEADY_SYMBOLS]
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

    def count(self) -> int:
        return len(self.received())


def _wait_for(venue: Venue, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if venue.count() >= count:
            return True
        time.sleep(0.05)
    return False


def _run(
    name: str, bootstrap: str, rate: int, venue_name: str = "paper", *, capacity: bool = False
) -> Row:
    """Signals at a steady `rate` (0: a burst of `BURST` at once) to the venue named; with
    `capacity`, the row's figure is the rate served rather than the latency."""
    with tempfile.TemporaryDirectory() as tmp:
        if venue_name == "paper":
            return _measure(name, bootstrap, rate, Paper(Path(tmp)), Path(tmp), capacity)
        with FakeTastytradeServer(Path(tmp) / "fake") as server:
            return _measure(name, bootstrap, rate, Tastytrade(server), Path(tmp))


def _measure(  # noqa: PLR0917 - a private helper of one caller
    name: str, bootstrap: str, rate: int, venue: Venue, data_dir: Path, capacity: bool = False
) -> Row:
    prefix = f"bench-ex-{uuid.uuid4().hex[:6]}."
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    TopicAdmin(kafka.client_config(settings, bootstrap)).ensure(
        catalogue(TopicSettings(prefix=prefix, partitions=6))
    )
    producer = Producer(kafka.producer_config(settings, bootstrap, linger_ms=0))
    _quotes(producer, prefix)
    proc = subprocess.Popen(
        [TICKLANE, "execute", "--broker", venue.name],
        env=_env(bootstrap, prefix, data_dir) | venue.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        topic = prefix + "signals"
        for n in range(STEADY_SYMBOLS):  # the warm-up: an order each
            producer.produce(topic, key=_signal(n).symbol.encode(), value=wire.encode(_signal(n)))
        producer.flush(10)
        if not _wait_for(venue, STEADY_SYMBOLS, 60):
            raise TimeoutError("executor did not start: no warm-up order in 60 s")
        cpu = _Cpu({"executor": proc.pid}, bootstrap)
        if not rate:
            bursts = [_burst(producer, topic, venue, r) for r in range(1, BURST_ROUNDS + 1)]
            return _burst_row(name, bursts, cpu.shares())
        signals = [_signal(STEADY_SYMBOLS + i) for i in range(int(rate * SECONDS))]
        sent, produced_s = _produce(producer, topic, signals, rate)
        _wait_for(venue, STEADY_SYMBOLS + len(signals), 120)
        shares = cpu.shares()
    finally:
        proc.terminate()
        proc.wait(30)
    received = _received(venue, sent)
    latencies = sorted((ts - sent[cid]) / 1e6 for cid, ts in received.items())
    span = (max(received.values()) - min(sent.values())) / 1e9
    q = statistics.quantiles(latencies, n=100)
    p50, p99 = statistics.median(latencies), q[98]
    offered, served = len(signals) / produced_s, len(received) / span
    if capacity:
        # Served is the executor's capacity only while it was behind the whole time.
        behind = "behind throughout" if served < 0.95 * offered else "kept up: capacity is more"
        return Row(
            name,
            "signals/s served",
            value=served,
            note=f"{len(received):,} orders, offered {offered:,.0f}/s, {behind}; p50 "
            f"{p50:,.1f} / p99 {p99:,.1f} ms; CPU while measured: {shares}",
        )
    return Row(
        name,
        "ms",
        p50=p50,
        p99=p99,
        note=f"{len(received):,} orders, offered {offered:,.0f}/s, served {served:,.0f}/s; "
        f"CPU while measured: {shares}",
        decimals=1,
    )


class _Cpu:
    """The CPU the executor, the broker (where it runs here) and this process use from now."""

    def __init__(self, pids: dict[str, int], bootstrap: str) -> None:
        broker = broker_pid(bootstrap)
        self._pids = pids | ({"broker": broker} if broker else {})
        self._from = {n: used for n, pid in self._pids.items() if (used := cpu_s(pid)) is not None}
        self._bench_from, self._wall_from = time.process_time(), time.monotonic()
        self._machine = MachineBusy()

    def shares(self) -> str:
        wall = time.monotonic() - self._wall_from
        bench = (time.process_time() - self._bench_from) / wall
        busy = self._machine.share()
        return f"{cpu_shares(self._pids, self._from, wall)}, bench {bench:.0%}" + (
            f"; {busy}" if busy else ""
        )


def _received(venue: Venue, sent: dict[str, int]) -> dict[str, int]:
    """The venue's receipt of each order sent; an error if almost none arrived."""
    received = {cid: ts for cid, ts in venue.received().items() if cid in sent}
    if len(received) < 2:
        made = f"{len(received)} of {len(sent):,} signals"
        raise RuntimeError(f"{made} made an order at {venue.name}")
    return received


@dataclass(frozen=True)
class _Burst:
    """One burst: ms from its first send to its last order and to its median one."""

    last_ms: float
    median_ms: float
    produced_ms: float
    missing: int


def _burst(producer: Producer, topic: str, venue: Venue, round_: int) -> _Burst:
    """The `round_`th round on every symbol, all at once: an order each (each reverses the
    last round)."""
    signals = [_signal(BURST * round_ + i, BURST) for i in range(BURST)]
    sent, _ = _produce(producer, topic, signals, 0)
    _wait_for(venue, STEADY_SYMBOLS + BURST * round_, 60)
    received = _received(venue, sent)
    first = min(sent.values())
    waits = sorted((ts - first) / 1e6 for ts in received.values())
    time.sleep(BURST_GAP_S)  # the bench's pace: the last burst's fills and events go out first
    return _Burst(
        waits[-1],
        statistics.median(waits),
        (max(sent.values()) - first) / 1e6,
        len(sent) - len(received),
    )


def _produce(
    producer: Producer, topic: str, signals: list[Signal], rate: int
) -> tuple[dict[str, int], float]:
    """Each signal's first order's client order id -> wall ns it was produced at, and the
    seconds producing took: paced at `rate` per second, or all at once (0)."""
    sent: dict[str, int] = {}
    # Ids and messages made before the clock starts: the load takes as little of the cores
    # from the executor and the broker as it can.
    made = [
        (ids.client_order_id(s.signal_id, 0), s.symbol.encode(), wire.encode(s)) for s in signals
    ]
    start = time.perf_counter()
    for i, (cid, key, value) in enumerate(made):
        ahead = start + i / rate - time.perf_counter() if rate else 0
        if ahead > 0.001:
            time.sleep(ahead)  # pace without spinning: the executor needs the cores
        sent[cid] = time.time_ns()
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    producer.flush(10)
    return sent, time.perf_counter() - start


def _burst_row(name: str, bursts: list[_Burst], cpu: str) -> Row:
    """The median burst's last order after its first send, each burst's in the note."""
    missing = sum(b.missing for b in bursts)
    each = ", ".join(f"{b.last_ms:,.0f}" for b in bursts)
    return Row(
        name,
        "ms",
        value=statistics.median(b.last_ms for b in bursts),
        note=f"last of {BURST:,} orders after the first send, median of {len(bursts)} bursts "
        f"({each} ms); median order {statistics.median(b.median_ms for b in bursts):,.0f} ms; "
        f"producing took {statistics.median(b.produced_ms for b in bursts):,.0f} ms"
        + (f"; {missing} never arrived" if missing else "")
        + f"; CPU while measured: {cpu}",
        decimals=1,
    )


def in_process_row() -> Row:
    """What a signal costs the executor itself: the engine, the SQLite ledger and the paper
    venue in this process, no Kafka (the engine test rig), signals taken in the service's
    batches and every outbox entry forgotten as publication would. Median of 3 runs."""
    signals = [_signal(n) for n in range(IN_PROCESS_SIGNALS)]
    rates = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            risk = limits(max_orders_per_minute=10**9, max_position=10**6)
            rig = Rig(Path(tmp), risk=risk, settle_s=0)
            try:
                for symbol in SYMBOLS[:STEADY_SYMBOLS]:
                    rig.ticks(symbol, quote(QUOTE_TS))
                start = time.perf_counter()
                for i in range(0, len(signals), BATCH):
                    rig.engine.on_signals([(signal, None) for signal in signals[i : i + BATCH]])
                    if entries := rig.ledger.outbox(len(signals), after=0):
                        rig.ledger.outbox_done(entries[-1].seq)
                rates.append(len(signals) / (time.perf_counter() - start))
                filled = len(rig.venue.store.fills())
            finally:
                rig.close()
        if filled != len(signals):
            raise RuntimeError(f"{filled} fills for {len(signals)} signals")
    return Row(
        IN_PROCESS,
        "signals/s",
        value=statistics.median(rates),
        note=f"{IN_PROCESS_SIGNALS:,} signals, each an order filled at once; no Kafka; median of 3",
    )


def executor_rows(bootstrap: str) -> Iterator[Row]:
    """What a signal costs in process, then signal → order latency: paper at 100, 1k and 5k
    signals/s, the TastyTrade fake at 100, a burst; then the rate the executor can serve;
    each row as it is measured."""
    yield guard(IN_PROCESS, in_process_row)
    for venue_name, rate in (
        ("paper", 100),
        ("tastytrade", 100),
        ("paper", 1_000),
        ("paper", 5_000),
        ("paper", 0),
    ):
        if rate:
            name = f"signal→{venue_name} order at {rate:,}/s"
        else:
            name = f"burst of {BURST:,} signals→{venue_name} orders"
        row = guard(name, partial(_run, name, bootstrap, rate, venue_name))
        yield aimed(row, *ISSUE_18[name]) if name in ISSUE_18 else row
    row = guard(CAPACITY, partial(_run, CAPACITY, bootstrap, CAPACITY_RATE, capacity=True))
    yield aimed(row, *ISSUE_18[CAPACITY])
