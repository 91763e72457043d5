"""A seeded trading scenario for executor tests: quotes on md.mbp-1 and target-position signals
with frequent reversals, produced straight to Kafka (no producers or agents needed)."""

import random
import sqlite3
import threading
from dataclasses import dataclass, field

from confluent_kafka import Producer

from executors.service import ExecutorService
from executors.stores import sqlite_path
from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue, resolve
from ticklane.trading import Signal

T0 = 1_719_840_600_000_000_000
MS = 1_000_000
MBP_1 = 1
STRATEGIES = ("ema", "trend")


@dataclass
class Scenario:
    """Quotes per symbol every millisecond; a signal per symbol every `step_ms`."""

    symbols: tuple[str, ...] = ("AAA", "BBB", "CCC", "DDD")
    signals_per_symbol: int = 30
    step_ms: int = 20
    seed: int = 7
    quotes: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        n_quotes = (self.signals_per_symbol + 2) * self.step_ms
        for i, symbol in enumerate(self.symbols):
            mid = (50 + 10 * i) * 10**9
            rows = []
            for q in range(n_quotes):
                mid += rng.choice((-1, 0, 1)) * 10**7
                rows.append((T0 + q * MS, mid - 5 * 10**6, mid + 5 * 10**6))
            self.quotes[symbol] = rows
        targets = (-2, -1, 0, 1, 2)
        for k in range(self.signals_per_symbol):
            for symbol in self.symbols:
                ts = T0 + (k * self.step_ms + rng.randrange(self.step_ms)) * MS
                mid = self.quotes[symbol][(ts - T0) // MS][1] + 5 * 10**6
                self.signals.append(
                    Signal.create(
                        rng.choice(STRATEGIES),
                        symbol,
                        ts,
                        rng.choice(targets),
                        reference_price=mid,
                    )
                )

    def final_targets(self) -> dict[tuple[str, str], int]:
        """Each strategy/symbol's last target: where a complete run ends."""
        out: dict[tuple[str, str], int] = {}
        for s in self.signals:
            out[(s.strategy, s.symbol)] = s.target_position
        return out

    def reversals(self) -> int:
        """Signals whose target has the opposite sign of the previous one for its key."""
        last: dict[tuple[str, str], int] = {}
        count = 0
        for s in self.signals:
            before = last.get((s.strategy, s.symbol), 0)
            count += before * s.target_position < 0
            last[(s.strategy, s.symbol)] = s.target_position
        return count

    def frames(self, size: int = 25) -> list[MarketFrame]:
        """The quotes as mbp-1 frames."""
        frames = []
        for i, (symbol, rows) in enumerate(self.quotes.items()):
            records = [
                {
                    "ts_event": ts,
                    "ts_recv": ts,
                    "instrument_id": 100 + i,
                    "price": bid,
                    "size": 1,
                    "action": "A",
                    "side": "B",
                    "bid_px_00": bid,
                    "ask_px_00": ask,
                    "bid_sz_00": 10,
                    "ask_sz_00": 10,
                }
                for ts, bid, ask in rows
            ]
            for start in range(0, len(records), size):
                raw = dbn.encode_records(MBP_1, records[start : start + size])
                frames.append(MarketFrame(symbol, raw))
        return frames


def create_topics(settings: Settings) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure(catalogue(settings.topics))


def producer(settings: Settings) -> Producer:
    return Producer(kafka.producer_config(settings.kafka, str(settings.kafka.bootstrap_servers)))


def produce_market_data(settings: Settings, scenario: Scenario) -> None:
    p = producer(settings)
    topic = resolve(settings.topics, "md.mbp-1")
    for frame in scenario.frames():
        p.produce(topic, key=frame.symbol.encode(), value=wire.encode(frame))
        p.poll(0)
    assert p.flush(30) == 0


def produce_signals(p: Producer, settings: Settings, signals: list[Signal]) -> None:
    topic = resolve(settings.topics, "signals")
    for s in signals:
        p.produce(topic, key=s.symbol.encode(), value=wire.encode(s))
        p.poll(0)
    assert p.flush(30) == 0


def sqlite_progress(settings: Settings) -> tuple[int, int, int] | None:
    """(signals recorded, unfinished orders, outbox entries not yet published) read beside a
    running executor."""
    path = sqlite_path(settings)
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (signals,) = db.execute("SELECT count(*) FROM signals").fetchone()
        (open_orders,) = db.execute("SELECT count(*) FROM orders WHERE finished = 0").fetchone()
        (outbox,) = db.execute("SELECT count(*) FROM outbox").fetchone()
    except sqlite3.OperationalError:
        return None  # tables not created yet
    finally:
        db.close()
    return signals, open_orders, outbox


def run_until_done(settings, scenario, timeout_s=60.0, service_class=ExecutorService):
    """Run a service in this process until every signal is answered and every order done."""
    service = service_class(settings, str(settings.kafka.bootstrap_servers))
    total = len(scenario.signals)

    def done():
        progress = sqlite_progress(settings)
        return progress is not None and progress == (total, 0, 0)

    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.start()
    try:
        service.run(stop, until=done)
    finally:
        timer.cancel()
        service.close()
    assert done(), f"not done within {timeout_s}s: {sqlite_progress(settings)}"
