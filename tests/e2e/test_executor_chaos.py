"""Chaos: SIGKILL `ticklane execute` again and again during a replay, restarting it each time.

At the paper venue (SQLite and PostgreSQL ledgers), and at TastyTrade and Schwab: the
executor's adapter and the real SDK against the local fake, audited from the fake's record.

Kills are timed from the executor's observed progress in its ledger, never from the clock
(every wait polls a condition and fails the test at its deadline). One kill in
`START_UP_EVERY`, at places the seeded `random.Random` shuffles, is a start-up kill, the others
mid-work kills, and the same generator draws each kill's instant:
- a mid-work kill: once the (re)started executor has recorded N more signals than the ledger
  held when it was started (N drawn from `NEW_SIGNALS`), and then seen the ledger's counts
  change K more times (K from `LATER_CHANGES`: an order answered, events published, the next
  signal recorded), so kills land at varied points: right after a signal's orders were
  written ahead, while the venue's answer is awaited, after it, before or after publication;
- a start-up kill: right after the process is started, or (a coin toss) once it holds the
  ledger's single-writer lock (its PostgreSQL advisory lock, or its flock on the SQLite lock
  file in /proc/locks), before the ledger shows any new work: loading, reconciliation and
  the republication of what its predecessor left in the outbox are cut short.

Signals keep arriving through every kill: a feeder thread keeps at most `LEAD` signals produced
but not yet recorded by the executor, so it waits (with a deadline) while the executor is dead
and resumes once its successor catches up; the test asserts it had not run out at any kill.

Asserted about the kills: each one really killed the process (exit status -SIGKILL, not an
exit of its own); at least half of them landed with work in flight (defined precisely at
`Kill`: the killed process's own unfinished orders or unpublished events, in the ledger both
just before the kill and as the dead process left it); at least one with an order of its
own in flight (written ahead, its final answer not yet recorded); and at least one mid-batch
(`Kill.mid_batch`: the orders of two signals or more written ahead in one transaction and not
yet answered, which only the executor's batching makes). A one-line summary (kills, with work
in flight, with orders in flight, mid-batch, before any new work) is printed and is part of
those assertions' messages.

At the end the paper venue's own record holds no duplicate order (by client order id, by
content, and no resent client order id at all), every signal is answered, and positions,
orders and fills equal those of an uninterrupted run. At TastyTrade and at Schwab (equities
there: every reversal is a close, then an open) the fake's record holds each order once (at
TastyTrade, no external identifier twice; Schwab orders carry no client id, so the adapter's
fingerprint claims are what is tested), the orders it received are exactly those the ledger
sent, every signal is answered, and its positions equal the ledger's. `make chaos` runs it
with 50 kills (TICKLANE_CHAOS_KILLS); CI with 10.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import httpx2
import psycopg
import pytest
from psycopg import sql

from executors.brokers.factory import paper_dir
from executors.brokers.paper.store import VenueStore
from executors.brokers.schwab.config import TOKEN_FILE_NAME, write_token_file
from executors.service import ExecutorService
from executors.stores import open_postgres, open_sqlite, sqlite_path
from fakes.schwab.background import FakeSchwabServer
from fakes.schwab.record import Record as SchwabRecord
from fakes.tastytrade.background import FakeTastytradeServer
from fakes.tastytrade.record import Record
from tests.conftest import TEST_SESSION_TIMEOUT_MS, poll_until
from tests.integration.executors.scenario import (
    Scenario,
    create_topics,
    produce_market_data,
    produce_signals,
    producer,
    sqlite_progress,
)
from ticklane import kafka
from ticklane.settings import (
    ExecutorSettings,
    KafkaSettings,
    LedgerSettings,
    Settings,
    TopicSettings,
)
from ticklane.topics import resolve
from ticklane.trading import Signal

pytestmark = pytest.mark.e2e

T = TypeVar("T")

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
KILLS = int(os.environ.get("TICKLANE_CHAOS_KILLS", "10"))
EXECUTOR = {"max_orders_per_minute": 1_000_000, "reconcile_interval_s": 1.0}

NEW_SIGNALS = (1, 6)  # a mid-work kill lands once the executor recorded this many more signals
LATER_CHANGES = (0, 2)  # ...and then saw the ledger's counts (`Reading`) change this many times
START_UP_EVERY = 5  # one kill in this many is aimed at start-up instead
BATCH = 4  # signals the feeder produces at once
LEAD = 8  # at most this many signals produced but not yet recorded by the executor
PROBE_S = 0.005  # poll interval of the kill trigger: small, so kills land close to the work
WORK_DEADLINE_S = 60.0  # for the state a kill waits for
FEED_DEADLINE_S = 120.0  # for the executor (restarted maybe several times) to catch up
PROC_LOCKS = Path("/proc/locks")

Progress = tuple[int, int, int]
"""(signals recorded, unfinished orders, outbox entries not yet published) in the ledger."""

COUNTS = (
    "SELECT (SELECT count(*) FROM signals), (SELECT count(*) FROM orders WHERE finished = 0),"
    " (SELECT count(*) FROM outbox),"
    " (SELECT count(*) FROM orders WHERE finished = 0 AND created_at >= ?),"
    " (SELECT count(DISTINCT signal_id) FROM orders WHERE status = 'pending_submit')"
)


class Reading(NamedTuple):
    """The ledger's counts at one instant (one statement, one snapshot)."""

    signals: int  # recorded
    open_orders: int  # orders not finished (filled, cancelled, expired or rejected)
    outbox: int  # outbox entries (a transaction's events each) written, not yet published
    own_open: int  # open orders written since `since_ns` (by the executor started then)
    written_ahead: int  # signals with an order written ahead and not answered by the venue

    @property
    def progress(self) -> Progress:
        return self.signals, self.open_orders, self.outbox


def scenario() -> Scenario:
    # Enough signals to keep arriving through every kill (NEW_SIGNALS[1] or fewer per kill).
    return Scenario(signals_per_symbol=max(30, KILLS * 5), seed=11)


def make_settings(bootstrap: str, data_dir: Path, ledger: LedgerSettings | None = None) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=bootstrap, session_timeout_ms=TEST_SESSION_TIMEOUT_MS
        ),
        topics=TopicSettings(prefix=f"chaos-{uuid.uuid4().hex[:8]}.", partitions=6),
        data_dir=data_dir,
        executor=ExecutorSettings(**EXECUTOR, ledger=ledger or LedgerSettings()),
    )


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
    ledger = settings.executor.ledger
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": str(settings.kafka.bootstrap_servers),
        "TICKLANE_TOPICS__PREFIX": settings.topics.prefix,
        "TICKLANE_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "TICKLANE_KAFKA__SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
        "TICKLANE_DATA_DIR": str(settings.data_dir),
        "TICKLANE_EXECUTOR__MAX_ORDERS_PER_MINUTE": str(EXECUTOR["max_orders_per_minute"]),
        "TICKLANE_EXECUTOR__RECONCILE_INTERVAL_S": str(EXECUTOR["reconcile_interval_s"]),
        "TICKLANE_EXECUTOR__LEDGER__STORE": ledger.store,
        "TICKLANE_EXECUTOR__LEDGER__POSTGRES_SCHEMA": ledger.postgres_schema,
        "TICKLANE_EXECUTOR__PAPER__ANSWER_DELAY_MS": "15",  # widens the in-flight window
        "TICKLANE_LOG_LEVEL": "WARNING",
    }
    if ledger.postgres_dsn is not None:
        env["TICKLANE_EXECUTOR__LEDGER__POSTGRES_DSN"] = ledger.postgres_dsn.get_secret_value()
    return env


def open_ledger(settings: Settings):
    ledger = settings.executor.ledger
    if ledger.store == "postgres":
        assert ledger.postgres_dsn is not None
        return open_postgres(ledger.postgres_dsn.get_secret_value(), ledger.postgres_schema)
    return open_sqlite(sqlite_path(settings))


class LedgerProbe:
    """Reads the ledger's counts beside a running executor, in one statement (one snapshot).

    SQLite: a read-only connection per reading. PostgreSQL: one autocommit connection, kept
    (a connection per reading would fork a server process every few milliseconds). None until
    the executor has created the ledger's tables. One probe per thread.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._postgres: psycopg.Connection | None = None

    def read(self, since_ns: int = 0) -> Reading | None:
        """The counts; `own_open` counts open orders created at or after `since_ns` (wall)."""
        if self.settings.executor.ledger.store == "postgres":
            return self._postgres_read(since_ns)
        return self._sqlite_read(since_ns)

    def progress(self) -> Progress | None:
        reading = self.read()
        return None if reading is None else reading.progress

    def recorded(self) -> int:
        """Signals recorded in the ledger (0 before it exists)."""
        reading = self.read()
        return 0 if reading is None else reading.signals

    def _sqlite_read(self, since_ns: int) -> Reading | None:
        path = sqlite_path(self.settings)
        if not path.exists():
            return None
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute(COUNTS, (since_ns,)).fetchone()
        except sqlite3.OperationalError:
            return None  # tables not created yet
        finally:
            db.close()
        return Reading(*(int(c) for c in row))

    def _connection(self) -> psycopg.Connection:
        ledger = self.settings.executor.ledger
        if self._postgres is None:
            assert ledger.postgres_dsn is not None
            self._postgres = psycopg.connect(
                ledger.postgres_dsn.get_secret_value(), autocommit=True
            )
            self._postgres.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(ledger.postgres_schema))
            )
        return self._postgres

    def _postgres_read(self, since_ns: int) -> Reading | None:
        try:
            row = self._connection().execute(COUNTS.replace("?", "%s"), (since_ns,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        assert row is not None
        return Reading(*(int(c) for c in row))

    def locked_by(self, pid: int, since_ns: int) -> bool:
        """Whether the executor `pid`, started at `since_ns`, holds the ledger's writer lock."""
        ledger = self.settings.executor.ledger
        if ledger.store == "postgres":
            # Its advisory lock (stores.py), held by a server process that started after it.
            row = (
                self._connection()
                .execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                    " AND l.objid = oid(hashtext(%s)::bigint & 4294967295)"
                    " AND a.backend_start >= to_timestamp(%s)",
                    (ledger.postgres_schema, since_ns / 1e9),
                )
                .fetchone()
            )
            return row is not None and row[0] > 0
        return flock_held(sqlite_path(self.settings).with_suffix(".lock"), pid)

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.close()


def flock_held(path: Path, pid: int) -> bool:
    """Whether process `pid` holds a flock on `path`, read from /proc/locks (Linux)."""
    if not PROC_LOCKS.exists():
        return True  # not Linux: the start-up kill lands at once instead
    try:
        inode = str(path.stat().st_ino)
    except FileNotFoundError:
        return False
    for line in PROC_LOCKS.read_text().splitlines():
        fields = line.split()  # "1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"
        if fields[1:2] == ["FLOCK"] and fields[4] == str(pid) and fields[5].endswith(f":{inode}"):
            return True
    return False


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: the ledger as the killed executor found it, just before the kill and after.

    Work was in flight at a kill when the killed process had taken on work of its own (it
    recorded at least one new signal since it was started, so its start-up, which publishes
    what the outbox held, was over) and the ledger held, both in the last reading before
    `proc.kill()` and as the dead process left it (read once it was reaped):
    - an order of its own in flight: an order it wrote (created since it started) and did not
      finish: written ahead, sent or about to be, the venue's final answer (fill, reject,
      cancel) not yet recorded; orders left open by earlier kills do not count; or
    - an unpublished outbox event: an order, fill or position event written, not yet on Kafka.
    Both readings are required because the process may finish an order between the first one
    and the signal; the second is what its successor has to recover. Orders in flight is the
    same with the first kind only.
    """

    at_start_up: bool
    started: int  # signals recorded when the killed process was started
    before: Reading | None
    after: Reading | None
    produced: int  # signals the feeder had produced at the kill

    @property
    def took_work(self) -> bool:
        return self.after is not None and self.after.signals > self.started

    @property
    def orders_in_flight(self) -> bool:
        return (
            self.took_work
            and self.before is not None
            and self.after is not None
            and self.before.own_open > 0
            and self.after.own_open > 0
        )

    @property
    def mid_batch(self) -> bool:
        """Killed while a batch was being sent: the orders of two signals or more were
        written ahead (in the batch's one transaction) and not yet answered, both just before
        the kill and as the dead process left them. One signal at a time, there is never
        more than one."""
        readings = (self.before, self.after)
        return self.took_work and all(r is not None and r.written_ahead > 1 for r in readings)

    @property
    def work_in_flight(self) -> bool:
        readings = (self.before, self.after)
        return self.took_work and all(
            r is not None and (r.own_open > 0 or r.outbox > 0) for r in readings
        )


@dataclass(frozen=True)
class Executor:
    """A `ticklane execute` process, and the ledger's state when it was started."""

    proc: subprocess.Popen[bytes]
    started: int  # signals recorded
    started_ns: int  # wall clock, at or before any order it writes (orders.created_at)


class Feeder:
    """Produces the signals in batches on a thread, paced by the ledger (at most `LEAD` ahead)."""

    def __init__(self, settings: Settings, signals: list[Signal]) -> None:
        self.settings = settings
        self.signals = signals
        self.produced = 0
        self._halt = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="feeder")
        self._done: Future[None] | None = None

    def start(self) -> None:
        self._done = self._pool.submit(self._feed)

    def _feed(self) -> None:
        probe = LedgerProbe(self.settings)
        p = producer(self.settings)
        try:
            for start in range(0, len(self.signals), BATCH):
                batch = self.signals[start : start + BATCH]
                self._wait_for_room(probe, start + len(batch) - LEAD)
                if self._halt.is_set():
                    return
                produce_signals(p, self.settings, batch)
                self.produced = start + len(batch)
        finally:
            probe.close()

    def _wait_for_room(self, probe: LedgerProbe, recorded: int) -> None:
        """Until the ledger holds `recorded` signals: the executor may be dead a while."""
        poll_until(
            lambda: self._halt.is_set() or probe.recorded() >= recorded,
            timeout_s=FEED_DEADLINE_S,
            interval_s=0.01,
            what=f"the executor to record {recorded} signals (feeder)",
        )

    def raise_if_failed(self) -> None:
        if self._done is not None and self._done.done():
            self._done.result()

    def finish(self) -> None:
        assert self._done is not None
        self._done.result(timeout=FEED_DEADLINE_S)
        assert self.produced == len(self.signals)

    def stop(self) -> None:
        self._halt.set()
        self._pool.shutdown(wait=False)


def start_executor(env: dict[str, str], probe: LedgerProbe) -> Executor:
    started = probe.recorded()  # stable: the previous executor is dead and reaped
    started_ns = time.time_ns()
    proc = subprocess.Popen(
        [TICKLANE, "execute", "--broker", env.get("TICKLANE_EXECUTOR__BROKER", "paper")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Executor(proc, started, started_ns)


def watch(executor: Executor, feeder: Feeder, check: Callable[[], T | None], what: str) -> T:
    """Poll `check` until it returns something (failing at the deadline, or if a process died)."""
    proc = executor.proc

    def probe() -> T | None:
        feeder.raise_if_failed()
        assert proc.poll() is None, f"the executor exited on its own ({proc.returncode})"
        return check()

    return poll_until(probe, timeout_s=WORK_DEADLINE_S, interval_s=PROBE_S, what=what)


def reading_where(
    probe: LedgerProbe, since_ns: int, condition: Callable[[Reading], bool]
) -> Callable[[], Reading | None]:
    """A check for `watch`: the ledger's reading once it meets `condition`."""

    def check() -> Reading | None:
        reading = probe.read(since_ns)
        return reading if reading is not None and condition(reading) else None

    return check


def kill(
    executor: Executor, probe: LedgerProbe, feeder: Feeder, rng: random.Random, at_start_up: bool
) -> Kill:
    """Wait for the instant the seeded draws pick (module docstring), then SIGKILL it."""
    target = executor.started + rng.randint(*NEW_SIGNALS)
    changes = rng.randint(*LATER_CHANGES)
    at_once = rng.random() < 0.5
    proc, since = executor.proc, executor.started_ns
    if at_start_up and not at_once:
        watch(executor, feeder, lambda: probe.locked_by(proc.pid, since), "the ledger opened")
    if not at_start_up:
        state = watch(
            executor,
            feeder,
            reading_where(probe, since, lambda r: r.signals >= target),
            f"{target} signals recorded",
        )
        for _ in range(changes):
            state = watch(
                executor,
                feeder,
                reading_where(probe, since, lambda r, last=state: r != last),
                f"a change from {state}",
            )
    before = probe.read(since)
    produced = feeder.produced
    assert proc.poll() is None, f"the executor exited on its own ({proc.returncode})"
    proc.kill()
    assert proc.wait(30) == -signal.SIGKILL, f"not killed: exit status {proc.returncode}"
    return Kill(at_start_up, executor.started, before, probe.read(since), produced)


def check_kills(kills: list[Kill], total: int) -> None:
    assert len(kills) == KILLS
    assert all(k.produced < total for k in kills), "the signals ran out before the last kill"
    assert all(k.took_work for k in kills if not k.at_start_up)
    work = sum(k.work_in_flight for k in kills)
    orders = sum(k.orders_in_flight for k in kills)
    batches = sum(k.mid_batch for k in kills)
    start_up = sum(not k.took_work for k in kills)
    summary = (
        f"{len(kills)} kills, {work} with work in flight ({orders} with orders in flight, "
        f"{batches} mid-batch), {start_up} before the executor recorded anything new"
    )
    print(f"chaos: {summary}")
    assert 2 * work >= len(kills), (
        f"only {work} of {len(kills)} kills landed with work in flight: {summary}"
    )
    assert orders > 0, f"no kill landed with an order of its own in flight: {summary}"
    assert batches > 0, f"no kill landed while a batch of orders was being sent: {summary}"


def start_up_kills(rng: random.Random) -> list[bool]:
    """Which kills are aimed at start-up: a fixed share, at shuffled places."""
    kinds = [i % START_UP_EVERY == 0 for i in range(1, KILLS + 1)]
    rng.shuffle(kinds)
    return kinds


def run_with_kills(
    settings: Settings, seed: int, venue_env: dict[str, str] | None = None
) -> dict[str, object]:
    """The replay with kills; the paper venue's outcome (`venue_env` points elsewhere: the
    caller audits that venue itself, and gets the ledger's side only)."""
    plan = scenario()
    total = len(plan.signals)
    assert plan.reversals() >= 10
    assert total > KILLS * NEW_SIGNALS[1] + LEAD + BATCH, "too few signals for the kills"
    create_topics(settings)
    produce_market_data(settings, plan)
    env = environment(settings) | (venue_env or {})
    rng = random.Random(seed)
    probe = LedgerProbe(settings)
    feeder = Feeder(settings, plan.signals)
    kills: list[Kill] = []
    executor = start_executor(env, probe)
    feeder.start()
    try:
        for at_start_up in start_up_kills(rng):
            kills.append(kill(executor, probe, feeder, rng, at_start_up))
            executor = start_executor(env, probe)
        feeder.finish()
        poll_until(
            lambda: probe.progress() == (total, 0, 0),
            timeout_s=120,
            interval_s=0.2,
            what=f"every signal answered and every order done ({total} signals)",
        )
        assert executor.proc.poll() is None, "the executor exited on its own"
    finally:
        feeder.stop()
        executor.proc.terminate()
        executor.proc.wait(30)
        probe.close()
    check_kills(kills, total)
    return outcome(settings, plan.signals) if venue_env is None else ledger_side(settings, plan)


def outcome(settings: Settings, signals) -> dict[str, object]:
    """What the venue recorded and where the ledger ended, in comparable form."""
    venue = VenueStore(paper_dir(settings))
    try:
        orders = venue.orders()
        fills = venue.fills()
        duplicates = venue.duplicate_submits()
    finally:
        venue.close()
    ledger = open_ledger(settings)
    try:
        unanswered = [s.signal_id for s in signals if not ledger.has_signal(s.signal_id)]
        holdings = {
            (h.position.strategy, h.position.symbol): (
                h.position.quantity,
                h.position.avg_price,
                h.position.realized_pnl,
            )
            for h in ledger.holdings()
        }
    finally:
        ledger.close()
    return {
        "orders": orders,
        "order_set": sorted(
            (o.client_order_id, o.strategy, o.symbol, o.side, o.quantity, o.ts_event)
            for o in orders
        ),
        "fill_set": sorted((f.client_order_id, f.quantity, f.price, f.ts_event) for f in fills),
        "duplicates": duplicates,
        "unanswered": unanswered,
        "holdings": holdings,
    }


@pytest.fixture(scope="module")
def uninterrupted(kafka_broker, tmp_path_factory):
    """The same scenario run once without interruption, in this process."""
    plan = scenario()
    settings = make_settings(kafka_broker.bootstrap_servers, tmp_path_factory.mktemp("calm"))
    create_topics(settings)
    produce_market_data(settings, plan)
    produce_signals(producer(settings), settings, plan.signals)
    service = ExecutorService(settings, kafka_broker.bootstrap_servers)
    total = len(plan.signals)
    stop = threading.Event()
    timer = threading.Timer(120, stop.set)
    timer.start()
    try:
        service.run(stop, until=lambda: sqlite_progress(settings) == (total, 0, 0))
    finally:
        timer.cancel()
        service.close()
    assert sqlite_progress(settings) == (total, 0, 0)
    return outcome(settings, plan.signals)


def check_against(result: dict[str, object], calm: dict[str, object]) -> None:
    orders = result["orders"]
    assert isinstance(orders, list)
    assert result["duplicates"] == [], "the executor resent a client order id"
    assert len({o.client_order_id for o in orders}) == len(orders)
    contents = [
        (o.strategy, o.symbol, o.side, o.quantity, o.order_type, o.ts_event) for o in orders
    ]
    assert len(set(contents)) == len(contents), "two orders with the same content"
    assert result["unanswered"] == []
    assert result["holdings"] == calm["holdings"]
    assert result["order_set"] == calm["order_set"]
    assert result["fill_set"] == calm["fill_set"]


def test_sigkilled_executor_with_sqlite_ledger_matches_an_uninterrupted_run(
    kafka_broker, tmp_path, uninterrupted
):
    settings = make_settings(kafka_broker.bootstrap_servers, tmp_path / "data")
    check_against(run_with_kills(settings, seed=1), uninterrupted)


@pytest.fixture
def postgres_ledger(postgres_dsn):
    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    yield LedgerSettings(store="postgres", postgres_dsn=postgres_dsn, postgres_schema=schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_sigkilled_executor_with_postgres_ledger_matches_an_uninterrupted_run(
    kafka_broker, tmp_path, uninterrupted, postgres_ledger
):
    settings = make_settings(kafka_broker.bootstrap_servers, tmp_path / "data", postgres_ledger)
    check_against(run_with_kills(settings, seed=2), uninterrupted)


# --- the same at TastyTrade: the executor's adapter and the real SDK at the fake


def ledger_side(settings: Settings, plan: Scenario) -> dict[str, object]:
    """What the ledger says: unanswered signals, orders sent (by venue id), net positions."""
    ledger = open_ledger(settings)
    try:
        unanswered = [s.signal_id for s in plan.signals if not ledger.has_signal(s.signal_id)]
        orders = ledger.all_orders()
        sent = {o.venue_order_id: o for o in orders if o.venue_order_id}
        refused = Counter(o.reason for o in orders if o.status == "rejected")
        positions: dict[str, int] = {}
        for holding in ledger.holdings():
            p = holding.position
            positions[p.symbol] = positions.get(p.symbol, 0) + p.quantity
    finally:
        ledger.close()
    return {"unanswered": unanswered, "sent": sent, "positions": positions, "refused": refused}


def fake_side(fake: FakeTastytradeServer | FakeSchwabServer) -> dict[str, object]:
    """What a fake recorded: every order it received, and the net position its fills make."""
    schwab = isinstance(fake, FakeSchwabServer)
    record = (SchwabRecord if schwab else Record)(fake.data_dir, read_only=True)
    try:
        orders, fills = record.orders(), record.fills()
    finally:
        record.close()
    positions: dict[str, int] = {}
    for fill in fills:
        side = fill.instruction if schwab else fill.action  # type: ignore[union-attr]
        signed = fill.quantity if side.upper().startswith("BUY") else -fill.quantity
        positions[fill.symbol] = positions.get(fill.symbol, 0) + signed
    return {"orders": orders, "positions": positions}


def md_feed(settings: Settings, bootstrap: str) -> tuple[dict[str, object], list[str]]:
    """What a fake reads market data and definitions from: the scenario's md.* topics."""
    md = [resolve(settings.topics, f"md.{schema}") for schema in ("definition", "mbp-1")]
    feed = kafka.client_config(settings.kafka, bootstrap) | {
        "group.id": f"chaos-fake-{uuid.uuid4().hex[:6]}",
        "enable.auto.commit": False,
    }
    return feed, md


def check_venue(ours: dict[str, object], theirs: dict[str, object], plan: Scenario) -> None:
    """The fake received exactly the orders the ledger sent, each once; positions agree."""
    received = theirs["orders"]
    sent = ours["sent"]
    assert isinstance(received, list)
    assert isinstance(sent, dict)
    ids = [str(o.id) for o in received]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(sent), "the ledger and the fake disagree on what was sent"
    assert ours["unanswered"] == []
    held_there = {s: q for s, q in theirs["positions"].items() if q}  # type: ignore[union-attr]
    held_here = {s: q for s, q in ours["positions"].items() if q}  # type: ignore[union-attr]
    assert held_there == held_here
    assert ours["refused"] == Counter(), "an order was refused"
    assert len(received) >= len(plan.signals), "every reversal is two orders here"


def test_sigkilled_executor_at_tastytrade_places_every_order_once(kafka_broker, tmp_path):
    plan = scenario()
    settings = make_settings(kafka_broker.bootstrap_servers, tmp_path / "data")
    create_topics(settings)
    with FakeTastytradeServer(
        tmp_path / "fake", kafka=md_feed(settings, kafka_broker.bootstrap_servers)
    ) as fake:
        specs = [{"symbol": s, "instrument_type": "Equity"} for s in plan.symbols]
        httpx2.post(f"{fake.url}/__fake/instruments", json=specs).raise_for_status()
        venue_env = {
            "TICKLANE_EXECUTOR__BROKER": "tastytrade",
            "TICKLANE_EXECUTOR__TASTYTRADE__API_URL": fake.url,
            "TICKLANE_EXECUTOR__TASTYTRADE__TIMEOUT_S": "2",
            # The fake's lists never lag: a settled "not found" comes sooner, kills go on.
            "TICKLANE_EXECUTOR__LOST_ANSWER_SETTLE_S": "1",
            "TASTYTRADE_CLIENT_SECRET": "chaos",
            "TASTYTRADE_REFRESH_TOKEN": "chaos",
        }
        ours = run_with_kills(settings, seed=3, venue_env=venue_env)
        theirs = fake_side(fake)
    received = theirs["orders"]
    assert isinstance(received, list)
    identifiers = [o.external_identifier for o in received]
    assert len(identifiers) == len(set(identifiers)), "an order was placed twice"
    sent = ours["sent"]
    assert isinstance(sent, dict)
    assert all(sent[str(o.id)].client_order_id == o.external_identifier for o in received)
    check_venue(ours, theirs, plan)


def test_sigkilled_executor_at_schwab_places_every_order_once(kafka_broker, tmp_path):
    """Schwab orders carry no client id: the adapter's fingerprint claims must survive kills."""
    plan = scenario()
    settings = make_settings(kafka_broker.bootstrap_servers, tmp_path / "data")
    create_topics(settings)
    with FakeSchwabServer(
        tmp_path / "fake", kafka=md_feed(settings, kafka_broker.bootstrap_servers)
    ) as fake:
        specs = [{"symbol": s, "instrument_type": "Equity"} for s in plan.symbols]
        httpx2.post(f"{fake.url}/__fake/instruments", json=specs).raise_for_status()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        write_token_file(settings.data_dir / TOKEN_FILE_NAME, fake.token_file())
        venue_env = {
            "TICKLANE_EXECUTOR__BROKER": "schwab",
            # A Schwab executor must name what it trades (empty would route futures too).
            "TICKLANE_EXECUTOR__SYMBOLS": json.dumps(list(plan.symbols)),
            "TICKLANE_EXECUTOR__SCHWAB__API_URL": fake.url,
            "TICKLANE_EXECUTOR__SCHWAB__TIMEOUT_S": "2",
            # Schwab's 120 a minute is the real account's; this replay sends faster.
            "TICKLANE_EXECUTOR__SCHWAB__ORDERS_PER_MINUTE": "100000",
            "TICKLANE_EXECUTOR__LOST_ANSWER_SETTLE_S": "1",
            "SCHWAB_APP_KEY": "chaos-app",
            "SCHWAB_APP_SECRET": "chaos",
        }
        ours = run_with_kills(settings, seed=4, venue_env=venue_env)
        theirs = fake_side(fake)
    check_venue(ours, theirs, plan)
