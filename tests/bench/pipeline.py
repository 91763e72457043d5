"""End to end: a tick's receipt at the producer → its order at the paper venue (issue 18).

Every process is the real one, on the embedded broker: a local Databento live gateway (the
fake, in this process) sends trades of 100 symbols paced in real time at 1,000 or 5,000
ticks/s; `ticklane produce live` takes them through the real SDK; one `ticklane agents`
worker runs ema_cross (2/3) on 1-second bars, which signals often (each symbol crosses every
few seconds, and every symbol's bar closes in the same instant); `ticklane execute` trades
them at the paper venue, which fills on the same trades.

Each signal carries the stamps of `ticklane.timing` (the producer's receipt of the tick that
made it, the producer's hand-over to Kafka, the worker's taking of the frame and its
hand-over of the signal) and the venue records its own receipt of the order: all on this
machine's clock. A row's latency is from the receipt of the tick to the venue's receipt of
the order; its note gives each stage's median and its share of the mean: producer (receipt
→ handed to Kafka), md hop (→ taken by the worker), agents (→ signal handed to Kafka),
executor (Kafka → order at the venue).
Only ticks received after the warm-up count (the worker's group join and the strategy's
warm bars come first). The note also gives the ticks per second the worker absorbed while the
measured ticks were sent (below the offered rate, the md hop is the worker's own queue, not
the broker's) and each process's CPU over the same span (a share of one core; the broker's
where it runs here): on a small machine the sum shows how close to saturation the stages
ran. Printed, never asserted.
"""

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import databento_dbn as dbn
import numpy as np

from executors.brokers.paper.store import VenueStore
from tests.bench.agents import free_port, metric
from tests.bench.processes import MachineBusy, broker_pid, cpu_s
from tests.bench.rows import Row, aimed, guard
from tests.fakes.databento_live import FAKE_API_KEY, FakeLiveGateway
from ticklane import dbn as ticklane_dbn
from ticklane import ids, kafka, wire
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.tail import consume
from ticklane.timing import FRAME_TAKEN, SIGNAL_SENT, TICK_RECEIVED, TICK_SENT, stamps
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue
from ticklane.trading import Signal

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SYMBOLS = tuple(f"P{i:03d}" for i in range(100))
DATASET = "GLBX.MDP3"
T0 = 1_719_840_600_000_000_000  # event time of the first tick; later ticks at the wall pace
DAY, NEXT_DAY = dt.date(2024, 7, 1), dt.date(2024, 7, 2)
WARMUP_S = 8.0
"""Released before the measurement: the worker joins and the EMAs warm (3 bars)."""
MEASURE_S = 10.0
TIMEOUT_S = 120.0
AGENTS_CONFIG = """
[agents]
source = "trades"
bar_intervals = []

[[agents.strategies]]
name = "ema_cross"
params = { fast = 2, slow = 3 }
bar_interval = "1s"
"""
TARGETS = {1_000: "p99 ≤ 25 ms", 5_000: "p99 ≤ 50 ms"}
BEFORE = {  # not measured before issue 18; these were, with its executor batching only
    1_000: "p50 3.0 s / p99 4.2 s",
    5_000: "p50 16.8 s / p99 23.3 s",
}


def _trades(path: Path, rate: int, seconds: float) -> int:
    """A trades file of `rate` ticks per second of event time over 100 symbols (random
    order, a random walk each); how many ticks it holds."""
    n = int(rate * seconds)
    rng = np.random.default_rng(rate)
    dtype = ticklane_dbn.record_dtype(0)
    array = np.zeros(n, dtype=dtype)
    array["length"], array["rtype"] = dtype.itemsize // 4, 0
    which = rng.integers(0, len(SYMBOLS), n)
    array["instrument_id"] = which + 1
    array["ts_event"] = T0 + np.arange(n, dtype=np.int64) * (1_000_000_000 // rate)
    array["ts_recv"] = array["ts_event"]
    steps = rng.integers(-1, 2, n) * 250_000_000
    walk = np.zeros(n, dtype=np.int64)
    for s in range(len(SYMBOLS)):  # each symbol its own walk, in its own ticks' order
        mine = which == s
        walk[mine] = np.cumsum(steps[mine])
    array["price"] = 5_000_000_000_000 + walk
    array["size"] = 1
    array["action"], array["side"] = b"T", b"B"
    metadata = dbn.Metadata(
        dataset=DATASET,
        start=T0,
        end=T0 + int(seconds * 1e9) + 1,
        stype_in=dbn.SType("raw_symbol"),
        stype_out=dbn.SType("instrument_id"),
        schema=dbn.Schema("trades"),
        symbols=list(SYMBOLS),
        mappings=[
            SimpleNamespace(
                raw_symbol=symbol,
                intervals=[SimpleNamespace(start_date=DAY, end_date=NEXT_DAY, symbol=str(i + 1))],
            )
            for i, symbol in enumerate(SYMBOLS)
        ],
        ts_out=False,
    )
    path.write_bytes(metadata.encode() + array.tobytes())
    return n


@dataclass(frozen=True)
class Timed:
    """One order's way, in wall ns: the tick's receipt, the frame handed to Kafka, taken by
    the worker, the signal handed to Kafka, the order at the venue."""

    received: int
    tick_sent: int
    taken: int
    signal_sent: int
    at_venue: int

    @property
    def stages_ms(self) -> tuple[float, float, float, float]:
        """Producer, the md.* hop to the worker, the worker, the executor (with the
        signals hop)."""
        return (
            (self.tick_sent - self.received) / 1e6,
            (self.taken - self.tick_sent) / 1e6,
            (self.signal_sent - self.taken) / 1e6,
            (self.at_venue - self.signal_sent) / 1e6,
        )

    @property
    def total_ms(self) -> float:
        return (self.at_venue - self.received) / 1e6


class Pipeline:
    """The three processes on one broker, with their scratch directory and logs."""

    def __init__(self, bootstrap: str, work: Path, gateway_port: int) -> None:
        self.bootstrap = bootstrap
        self.work = work
        self.prefix = f"bench-e2e-{uuid.uuid4().hex[:6]}."
        self.agents_port = free_port()
        settings = KafkaSettings(bootstrap_servers=bootstrap)
        TopicAdmin(kafka.client_config(settings, bootstrap)).ensure(
            catalogue(TopicSettings(prefix=self.prefix, partitions=6))
        )
        config = work / "agents.toml"
        config.write_text(AGENTS_CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
        self.env = env | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TICKLANE_TOPICS__PREFIX": self.prefix,
            "TICKLANE_TOPICS__PARTITIONS": "6",
            "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "TICKLANE_DATA_DIR": str(work / "data"),
            "TICKLANE_LOG_LEVEL": "WARNING",
            "TICKLANE_EXECUTOR__MAX_ORDERS_PER_MINUTE": "10000000",
            "TICKLANE_EXECUTOR__PAPER__MARKET_DATA": '["trades"]',
            "DATABENTO_API_KEY": FAKE_API_KEY,
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self._start("execute", [TICKLANE, "execute", "--broker", "paper"])
        self._start(
            "agents",
            [TICKLANE, "agents", "--config", str(config), "--metrics-port", str(self.agents_port)],
        )
        self._start(
            "produce",
            [
                TICKLANE,
                "produce",
                "live",
                "--dataset",
                DATASET,
                "--schema",
                "trades",
                "--symbols",
                ",".join(SYMBOLS),
                "--start",
                "0",
                "--gateway",
                f"127.0.0.1:{gateway_port}",
            ],
        )

    def _start(self, name: str, argv: list[str]) -> None:
        log = (self.work / f"{name}.log").open("wb")
        self.procs.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=log))
        log.close()

    def check_alive(self) -> None:
        for proc, name in zip(self.procs, ("execute", "agents", "produce"), strict=True):
            if proc.poll() is not None:
                lines = (self.work / f"{name}.log").read_text(errors="replace").splitlines()
                raise RuntimeError(
                    f"{name} exited ({proc.returncode}): {lines[-1] if lines else '(no log)'}"
                )

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds each process has used so far: the three ticklane ones, and the broker
        when it runs on this machine (the embedded one)."""
        pids = {
            name: proc.pid
            for proc, name in zip(self.procs, ("executor", "agents", "producer"), strict=True)
        }
        broker = broker_pid(self.bootstrap)
        if broker is not None:
            pids["broker"] = broker
        return {name: used for name, pid in pids.items() if (used := cpu_s(pid)) is not None}

    def ticks_absorbed(self) -> float:
        return metric(self.agents_port, "ticklane_agent_ticks_total")

    def orders(self) -> dict[str, int]:
        """Client order id -> the venue's receipt (wall ns)."""
        directory = self.work / "data" / "paper"
        if not (directory / "venue.sqlite").exists():
            return {}
        store = VenueStore(directory)
        try:
            return {o.client_order_id: o.ts_received for o in store.orders()}
        finally:
            store.close()

    def signal_stamps(self) -> dict[str, dict[str, int]]:
        """Each signal's first order's client order id -> the stamps its message carries."""
        config = kafka.consumer_config(
            KafkaSettings(bootstrap_servers=self.bootstrap), self.bootstrap, "bench-e2e"
        )
        found = {}
        for message in consume(
            config, self.prefix + "signals", from_beginning=True, until_end=True
        ):
            signal = wire.decode_as(message.value or b"", Signal)
            found[ids.client_order_id(signal.signal_id, 0)] = stamps(message.headers)
        return found

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _release(gateway: FakeLiveGateway, rate: int, until: int, stop: threading.Event) -> None:
    """Release ticks at `rate` per second of wall time up to the `until`th, as a live feed
    would send them (each millisecond's due ticks together)."""
    start = time.perf_counter() - gateway.released / rate
    while gateway.released < until and not stop.is_set():
        due = min(int((time.perf_counter() - start) * rate), until) - gateway.released
        if due > 0:
            gateway.release(due)
        time.sleep(0.0005)  # the feed's own pace, not a wait for a condition


def _wait(what: str, done: "partial[bool]", pipeline: Pipeline) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        pipeline.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {TIMEOUT_S:.0f} s")
        time.sleep(0.1)  # a benchmark paces itself; tests poll


def measure(bootstrap: str, rate: int) -> Row:
    name = f"tick→paper order at {rate:,} ticks/s, {len(SYMBOLS)} symbols"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        warm = int(rate * WARMUP_S)
        total = _trades(work / "ticks.dbn", rate, WARMUP_S + MEASURE_S)
        with FakeLiveGateway.from_files(work / "ticks.dbn", now_ns=0, pacing="manual") as gw:
            pipeline = Pipeline(bootstrap, work, gw.port)
            stop = threading.Event()
            try:
                _wait("the producer's session", partial(lambda: gw.active_sessions > 0), pipeline)
                gw.release(len(SYMBOLS))  # the worker joins its group on the first frames
                _wait(
                    "the worker's first ticks",
                    partial(lambda: pipeline.ticks_absorbed() >= len(SYMBOLS)),
                    pipeline,
                )
                _release(gw, rate, warm, stop)
                measured_from = time.time_ns()
                cpu_from, wall_from = pipeline.cpu_s(), time.monotonic()
                machine = MachineBusy()
                absorbed_from = pipeline.ticks_absorbed()
                _release(gw, rate, total, stop)
                wall = time.monotonic() - wall_from
                cpu = {n: (s - cpu_from.get(n, 0.0)) / wall for n, s in pipeline.cpu_s().items()}
                busy = machine.share()
                taken = (pipeline.ticks_absorbed() - absorbed_from) / wall
                _wait(
                    "every tick at the worker",
                    partial(lambda: pipeline.ticks_absorbed() >= total),
                    pipeline,
                )
                settle = time.monotonic() + 2.0
                while time.monotonic() < settle:  # the last signals reach the venue
                    time.sleep(0.1)
                orders = pipeline.orders()
                signals = pipeline.signal_stamps()
            finally:
                stop.set()
                pipeline.stop()
    return _row(name, orders, signals, measured_from, cpu, taken, busy)


def _row(  # noqa: PLR0917 - a private helper of one caller
    name: str,
    orders: dict[str, int],
    signals: dict[str, dict[str, int]],
    measured_from: int,
    cpu: dict[str, float],
    taken: float,
    busy: str,
) -> Row:
    keys = (TICK_RECEIVED, TICK_SENT, FRAME_TAKEN, SIGNAL_SENT)
    timed = [
        Timed(
            received=found[TICK_RECEIVED],
            tick_sent=found[TICK_SENT],
            taken=found[FRAME_TAKEN],
            signal_sent=found[SIGNAL_SENT],
            at_venue=orders[cid],
        )
        for cid, found in signals.items()
        if cid in orders and all(k in found for k in keys) and found[TICK_RECEIVED] >= measured_from
    ]
    if len(timed) < 20:
        raise RuntimeError(
            f"only {len(timed)} timed orders ({len(orders)} at the venue, {len(signals)} signals)"
        )
    totals = sorted(t.total_ms for t in timed)
    q = statistics.quantiles(totals, n=100)
    stages = list(zip(*(t.stages_ms for t in timed), strict=True))
    mean_total = statistics.fmean(totals)
    labels = ("producer", "md hop", "agents", "executor")
    parts = [
        f"{label} p50 {statistics.median(stage):.1f} ms"
        f" ({statistics.fmean(stage) / mean_total:.0%})"
        for label, stage in zip(labels, stages, strict=True)
    ]
    return Row(
        name,
        "ms",
        p50=statistics.median(totals),
        p99=q[98],
        note=f"{len(timed):,} orders, max {totals[-1]:,.1f} ms; "
        + ", ".join(parts)
        + f"; the worker took {taken:,.0f} ticks/s while they were sent"
        + "; CPU while measured: "
        + ", ".join(f"{n} {share:.0%}" for n, share in sorted(cpu.items()))
        + (f"; {busy}" if busy else ""),
        decimals=1,
    )


def pipeline_rows(bootstrap: str) -> Iterator[Row]:
    """Tick → paper order at 1,000 and 5,000 ticks/s, each row as it is measured."""
    for rate in (1_000, 5_000):
        name = f"tick→paper order at {rate:,} ticks/s, {len(SYMBOLS)} symbols"
        row = guard(name, partial(measure, bootstrap, rate))
        yield aimed(row, TARGETS[rate], BEFORE[rate])
