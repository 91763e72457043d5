"""The executor service against a real broker: signals in, paper orders, events out."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from executors.brokers.factory import paper_dir
from executors.brokers.paper.store import VenueStore
from executors.service import ExecutorService
from executors.stores import open_sqlite, sqlite_path
from tests.integration.executors.scenario import (
    Scenario,
    create_topics,
    produce_market_data,
    produce_signals,
    producer,
    run_until_done,
    sqlite_progress,
)
from ticklane import kafka, wire
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.health import HealthServer
from ticklane.topics import resolve
from ticklane.trading import Fill, Order, OrderStatus, Position, Signal

pytestmark = pytest.mark.integration

TICKLANE = str(Path(sys.executable).with_name("ticklane"))


def dlq_headers(settings) -> list[dict[str, str]]:
    """Each dead letter's headers, decoded."""
    config = kafka.consumer_config(
        settings.kafka, str(settings.kafka.bootstrap_servers), f"dlq-{time.time_ns()}"
    )
    consumer = Consumer(config | {"enable.partition.eof": True})
    consumer.assign([TopicPartition(resolve(settings.topics, "dlq"), 0, 0)])
    found: list[dict[str, str]] = []
    try:
        while True:
            message = consumer.poll(10)
            assert message is not None, "dlq: no end reached"
            if message.error() is not None:
                return found
            found.append({k: (v or b"").decode() for k, v in message.headers() or []})
    finally:
        consumer.close()


def test_signals_become_paper_orders_fills_and_events(settings, read_topic):
    scenario = Scenario(symbols=("AAA", "BBB"), signals_per_symbol=12)
    create_topics(settings)
    produce_market_data(settings, scenario)
    produce_signals(producer(settings), settings, [*scenario.signals, scenario.signals[0]])
    bad = producer(settings)
    bad.produce(resolve(settings.topics, "signals"), key=b"AAA", value=b"not a signal")
    # A signal keyed under another symbol: in that symbol's partition, out of its own order.
    misrouted = wire.encode(Signal.create("s1", "AAA", 1, 99, reference_price=10**11))
    bad.produce(resolve(settings.topics, "signals"), key=b"BBB", value=misrouted)
    bad.flush(10)
    run_until_done(settings, scenario)

    venue = VenueStore(paper_dir(settings))
    orders = venue.orders()
    assert orders, "no paper orders"
    assert all(o.status == "filled" for o in orders)
    assert venue.duplicate_submits() == []
    assert len({o.client_order_id for o in orders}) == len(orders)
    venue_positions = venue.positions()
    venue.close()

    ledger = open_sqlite(sqlite_path(settings))
    try:
        assert all(ledger.has_signal(s.signal_id) for s in scenario.signals)
        holdings = {(h.position.strategy, h.position.symbol): h.position for h in ledger.holdings()}
    finally:
        ledger.close()
    expected = scenario.final_targets()
    assert {k: p.quantity for k, p in holdings.items() if p.quantity} == {
        k: v for k, v in expected.items() if v
    }
    by_symbol = {}
    for (_, symbol), target in expected.items():
        by_symbol[symbol] = by_symbol.get(symbol, 0) + target
    assert venue_positions == {s: q for s, q in by_symbol.items() if q} | {
        s: 0 for s, q in by_symbol.items() if not q and s in venue_positions
    }

    # Events: every fill once, every order's final state, the latest position per key.
    fills = [
        wire.decode_as(v, Fill) for _, _, _, v in read_topic(resolve(settings.topics, "fills"))
    ]
    assert len({f.fill_id for f in fills}) == len(orders)
    order_events = [
        wire.decode_as(v, Order) for _, _, _, v in read_topic(resolve(settings.topics, "orders"))
    ]
    filled = {o.client_order_id for o in order_events if o.status is OrderStatus.FILLED}
    assert filled == {o.client_order_id for o in orders}
    latest = {}
    for _, _, key, value in read_topic(resolve(settings.topics, "positions")):
        latest[key.decode()] = wire.decode_as(value, Position)
    assert {k: p.quantity for k, p in latest.items() if p.quantity} == {
        f"{s}/{sym}": q for (s, sym), q in expected.items() if q
    }
    dlq = read_topic(resolve(settings.topics, "dlq"))
    assert sorted((k, v) for _, _, k, v in dlq) == [(b"AAA", b"not a signal"), (b"BBB", misrouted)]
    reasons = {h["reason"].split(":")[0] for h in dlq_headers(settings)}
    assert "key b'BBB' does not match the signal's symbol 'AAA'" in {
        h["reason"] for h in dlq_headers(settings)
    }
    assert len(reasons) == 2
    for headers in dlq_headers(settings):  # one format for every process's dead letters
        assert headers["topic"] == resolve(settings.topics, "signals")
        assert int(headers["partition"]) >= 0
        assert int(headers["offset"]) >= 0

    # Offsets were committed: a consumer of the executor's group starts at the end.
    config = kafka.consumer_config(
        settings.kafka, str(settings.kafka.bootstrap_servers), settings.executor.group_id
    )
    consumer = Consumer(config)
    topic = resolve(settings.topics, "signals")
    parts = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
    committed = consumer.committed(parts, timeout=10)
    consumer.close()
    assert sum(max(tp.offset, 0) for tp in committed) == len(scenario.signals) + 3


def test_paper_cli_prints_the_venues_record(settings, cli_env):
    scenario = Scenario(symbols=("AAA",), signals_per_symbol=5)
    create_topics(settings)
    produce_market_data(settings, scenario)
    produce_signals(producer(settings), settings, scenario.signals)
    run_until_done(settings, scenario)
    for what, keys in (
        (
            "orders",
            {"client_order_id", "venue_order_id", "symbol", "side", "quantity", "type", "ts"},
        ),
        (
            "fills",
            {"client_order_id", "venue_order_id", "symbol", "side", "quantity", "price", "ts"},
        ),
    ):
        result = subprocess.run(
            [TICKLANE, "paper", what, "--json", "--data-dir", str(settings.data_dir)],
            capture_output=True,
            text=True,
            env=cli_env,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert lines, f"no {what}"
        assert all(keys <= set(line) for line in lines)
        assert all(isinstance(line["quantity"], int) for line in lines)


def test_the_executor_is_ready_until_a_kill_switch_halts_everything(settings):
    create_topics(settings)
    service = ExecutorService(settings, str(settings.kafka.bootstrap_servers))
    server = HealthServer(0, lambda: service.beacon.latest, host="127.0.0.1").start()
    ready = f"http://127.0.0.1:{server.port}/ready"
    try:
        assert httpx.get(ready).status_code == 503  # not started: no status yet
        service.start()
        assert httpx.get(ready).json() == {"ready": True, "reasons": []}
        halt = ControlCommand.create(
            ControlAction.KILL_SWITCH, time.time_ns(), kill_switch=KillSwitchState.HALTED
        )
        service.engine.on_control(halt)
        service.beacon.beat(force=True)  # the executor's loop does this every interval
        answer = httpx.get(ready)
        assert answer.status_code == 503
        assert answer.json()["reasons"] == ["halted: kill switch halted for everything"]
    finally:
        server.stop()
        service.close()


class _FatalOnce:
    """A real producer that fails for good at its fourth event, the first three delivered, as
    librdkafka does after a broker restart forgets the producer id."""

    def __init__(self, real: Producer) -> None:
        self.real = real
        self.failed = False
        self.handed = 0

    def produce(self, *args: object, **kwargs: object) -> None:
        if self.failed or self.handed >= 3:
            if not self.failed:
                self.real.flush(10)  # the events handed before reach Kafka: they go twice
            self.failed = True
            error = KafkaError(
                KafkaError.UNKNOWN_PRODUCER_ID,
                "unable to retry without risking duplication/reordering",
                fatal=True,
            )
            raise KafkaException(error)
        self.real.produce(*args, **kwargs)
        self.handed += 1

    def poll(self, timeout: float) -> int:
        return self.real.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self.real.flush(timeout)

    def purge(self) -> None:
        self.real.purge()


def test_a_fatal_producer_error_is_survived_with_no_order_twice_and_no_event_lost(
    settings, read_topic
):
    made: list[_FatalOnce] = []
    renewed: list[str] = []

    class Service(ExecutorService):
        def _renew_producer(self, error: KafkaError) -> None:
            renewed.append(error.str())
            super()._renew_producer(error)

        def _new_producer(self) -> Producer:
            real = super()._new_producer()
            if made:
                return real
            made.append(_FatalOnce(real))
            return made[0]  # type: ignore[return-value]

    scenario = Scenario(symbols=("AAA", "BBB"), signals_per_symbol=6)
    create_topics(settings)
    produce_market_data(settings, scenario)
    produce_signals(producer(settings), settings, scenario.signals)
    run_until_done(settings, scenario, service_class=Service)
    assert made[0].failed  # the fault landed, mid-run
    venue = VenueStore(paper_dir(settings))
    orders = venue.orders()
    assert orders
    assert venue.duplicate_submits() == []
    assert len({o.client_order_id for o in orders}) == len(orders)
    venue.close()
    # Every order's events reached Kafka, some twice (the same event: same id).
    events = [wire.decode_as(v, Order) for *_, v in read_topic(resolve(settings.topics, "orders"))]
    assert {o.client_order_id for o in orders} <= {e.client_order_id for e in events}
    assert renewed == ["unable to retry without risking duplication/reordering"]


class _PastTheEnd:
    """What Apache Kafka's consumer yields when its position is outside what the partition
    holds and `auto.offset.reset` is `error` (tansu answers such a fetch with nothing)."""

    def __init__(self, topic: str) -> None:
        self._topic = topic

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._AUTO_OFFSET_RESET, "fetch offset 5120 is out of range")

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 3


def test_a_position_past_a_partitions_end_halts_the_executor_before_any_signal(
    settings, poll
) -> None:
    scenario = Scenario(symbols=("AAA", "BBB"), signals_per_symbol=6)
    create_topics(settings)
    produce_market_data(settings, scenario)
    produce_signals(producer(settings), settings, scenario.signals)
    service = ExecutorService(settings, str(settings.kafka.bootstrap_servers))
    try:
        service.start()
        signals = resolve(settings.topics, "signals")
        assert service._signal_of(_PastTheEnd(signals)) is None  # type: ignore[arg-type]
        for _ in range(50):
            service.step()
        progress = sqlite_progress(settings)
        assert progress is not None
        assert progress[0] == 0  # no signal taken from what may be another history
        service.beacon.beat(force=True)
        report = service.beacon.latest
        assert report is not None
        assert report.state.value == "halted"
        assert f"{signals}[3] (was committed position" in report.reason
        assert service._signals.assignment() == []  # let go of every partition
        sample = service.metrics.registry.get_sample_value(
            "ticklane_kafka_cluster_changed", {"change": "position past the partition's end"}
        )
        assert sample == 1.0
    finally:
        service.close()
