"""Symbols are keys: through a real broker, each symbol lands in one partition, in order."""

from collections import defaultdict

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, Producer

from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

pytestmark = pytest.mark.integration

SYMBOLS = [f"SYM{i:03d}" for i in range(200)]
PER_SYMBOL = 25


def test_200_symbols_each_in_one_partition_in_order(settings: Settings, poll) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    spec = next(s for s in catalogue(settings.topics) if s.base == "md.trades")
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure([spec])

    producer = Producer(kafka.producer_config(settings.kafka, bootstrap, linger_ms=5))
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    # Interleave symbols so that ordering is per key, not an accident of production order.
    for seq in range(PER_SYMBOL):
        for n, symbol in enumerate(SYMBOLS):
            trade = dbn.encode_records(0, [{"ts_event": seq, "instrument_id": n, "sequence": seq}])
            producer.produce(
                spec.name,
                key=symbol.encode(),
                value=wire.encode(MarketFrame(symbol, trade)),
                on_delivery=on_delivery,
            )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer(kafka.consumer_config(settings.kafka, bootstrap, f"{spec.name}-check"))
    consumer.subscribe([spec.name])
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
    total = len(SYMBOLS) * PER_SYMBOL

    def drain() -> bool:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            frame = wire.decode_as(msg.value(), MarketFrame)
            assert msg.key() == frame.symbol.encode()
            (trade,) = dbn.to_trades(frame.records)
            seen[frame.symbol].append((msg.partition(), trade.sequence))
        return sum(len(v) for v in seen.values()) >= total

    try:
        poll(drain, timeout_s=60, interval_s=0, what=f"{total} messages")
    finally:
        consumer.close()

    partitioner = DefaultPartitioner()
    all_partitions = list(range(spec.partitions))
    assert set(seen) == set(SYMBOLS)
    used = set()
    for symbol, arrivals in seen.items():
        partitions = {p for p, _ in arrivals}
        assert len(partitions) == 1, f"{symbol} spread over {partitions}"
        assert [s for _, s in arrivals] == list(range(PER_SYMBOL)), f"{symbol} out of order"
        # The partition Faust (aiokafka's Java-compatible partitioner) would choose too.
        expected = partitioner(symbol.encode(), all_partitions, all_partitions)
        assert partitions == {expected}
        used |= partitions
    assert used == set(all_partitions)  # 200 symbols spread over every partition
