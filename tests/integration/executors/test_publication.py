"""The outbox's way to Kafka against the real broker: a producer queue that fills in the middle
of an entry, entries forgotten only once every event in them is acknowledged, each event once."""

from functools import partial

import pytest
from confluent_kafka import Producer

from executors.publication import Publication
from executors.stores import open_sqlite
from tests.integration.executors.scenario import create_topics
from tests.integration.executors.test_ledger_stores import order_for
from ticklane import kafka
from ticklane.topics import resolve
from ticklane.trading import Signal

pytestmark = pytest.mark.integration


def test_a_full_queue_mid_entry_sends_the_rest_later_and_only_whole_entries_are_forgotten(
    settings, tmp_path, read_topic, poll
):
    create_topics(settings)
    ledger = open_sqlite(tmp_path / "ledger.sqlite")
    signals = [Signal.create("s", f"S{i}", 1_000, 1) for i in range(8)]
    with ledger.batch():  # one entry of five events
        for signal in signals[:5]:
            ledger.record_signal(signal, [order_for(signal)], now=1)
    for signal in signals[5:]:  # three entries of one
        ledger.record_signal(signal, [order_for(signal)], now=2)
    first = ledger.outbox(10)[0].seq
    config = kafka.producer_config(settings.kafka, str(settings.kafka.bootstrap_servers))
    producer = Producer(config | {"queue.buffering.max.messages": 3})
    publication = Publication(ledger, partial(resolve, settings.topics), batch=100)
    try:
        assert publication.pump(producer) == 3  # the queue is full two events into the entry
        producer.flush(10)
        assert publication.pump(producer) == 3  # the entry's last two, the next entry's one
        # Three of the first entry's events were acknowledged, not all five: it stays.
        assert ledger.outbox(10)[0].seq == first

        def published() -> bool:
            publication.pump(producer)
            producer.flush(1)
            return publication.in_flight == 0 and ledger.outbox(10) == []

        poll(published, timeout_s=20, what="every entry published and forgotten")
    finally:
        ledger.close()
    keys = sorted(key or b"" for _, _, key, _ in read_topic(resolve(settings.topics, "orders")))
    assert keys == sorted(s.symbol.encode() for s in signals)  # each event once
