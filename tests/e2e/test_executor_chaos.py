"""Chaos: SIGKILL `ticklane execute` at random instants during a replay, restart it each time.

At the end the paper venue's own record holds no duplicate order (by client order id, by
content, and no resent client order id at all), every signal is answered, and positions,
orders and fills equal those of an uninterrupted run. `make chaos` runs it with 50 kills
(TICKLANE_CHAOS_KILLS); CI with 10.
"""

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from executors.brokers.factory import paper_dir
from executors.brokers.paper.store import VenueStore
from executors.service import ExecutorService
from executors.stores import open_postgres, open_sqlite, sqlite_path
from tests.conftest import TEST_SESSION_TIMEOUT_MS, poll_until
from tests.integration.executors.scenario import (
    Scenario,
    create_topics,
    produce_market_data,
    produce_signals,
    producer,
    sqlite_progress,
)
from ticklane.settings import (
    ExecutorSettings,
    KafkaSettings,
    LedgerSettings,
    Settings,
    TopicSettings,
)

pytestmark = pytest.mark.e2e

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
KILLS = int(os.environ.get("TICKLANE_CHAOS_KILLS", "10"))
EXECUTOR = {"max_orders_per_minute": 1_000_000, "reconcile_interval_s": 1.0}


def scenario() -> Scenario:
    # Enough signals to keep arriving through every kill (about one per 60 ms).
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


def postgres_progress(settings: Settings) -> tuple[int, int, int] | None:
    ledger = settings.executor.ledger
    assert ledger.postgres_dsn is not None
    with psycopg.connect(ledger.postgres_dsn.get_secret_value()) as db:
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(ledger.postgres_schema)))
        try:
            counts = [
                db.execute(query).fetchone()
                for query in (
                    "SELECT count(*) FROM signals",
                    "SELECT count(*) FROM orders WHERE finished = 0",
                    "SELECT count(*) FROM outbox",
                )
            ]
        except psycopg.errors.UndefinedTable:
            return None
    return tuple(int(c[0]) for c in counts if c is not None)  # type: ignore[return-value]


def progress(settings: Settings):
    if settings.executor.ledger.store == "postgres":
        return postgres_progress(settings)
    return sqlite_progress(settings)


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


def wait_for_work(settings: Settings, deadline_s: float) -> None:
    """Until the (re)started executor answers a new signal, or the deadline: never fails."""
    before = progress(settings)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        now = progress(settings)
        if now is not None and (before is None or now[0] > before[0]):
            return
        time.sleep(0.01)


def run_with_kills(settings: Settings, seed: int) -> dict[str, object]:
    plan = scenario()
    assert plan.reversals() >= 10
    create_topics(settings)
    produce_market_data(settings, plan)
    env = environment(settings)
    rng = random.Random(seed)
    pace = threading.Event()  # never set: its wait() paces the signal producer

    def feed() -> None:
        p = producer(settings)
        batch = 4
        for start in range(0, len(plan.signals), batch):
            produce_signals(p, settings, plan.signals[start : start + batch])
            pace.wait(0.25)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [TICKLANE, "execute", "--broker", "paper"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    feeder = threading.Thread(target=feed, daemon=True)
    proc = start()
    feeder.start()
    try:
        for _ in range(KILLS):
            if rng.random() < 0.8:
                wait_for_work(settings, deadline_s=5.0)  # mostly mid-trading; else while booting
            pace.wait(rng.uniform(0.0, 0.4))  # a random instant
            proc.kill()
            proc.wait(30)
            proc = start()
        feeder.join(300)
        total = len(plan.signals)
        poll_until(
            lambda: progress(settings) == (total, 0, 0),
            timeout_s=120,
            interval_s=0.2,
            what=f"every signal answered and every order done ({total} signals)",
        )
        assert proc.poll() is None, "the executor exited on its own"
    finally:
        proc.terminate()
        proc.wait(30)
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
