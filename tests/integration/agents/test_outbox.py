"""The agents' outbox and changelog store against the real broker."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from confluent_kafka import KafkaException
from faust.types import TP

from agents import metrics
from agents.outbox import ChangelogStore, Outbox
from ticklane import kafka
from ticklane.settings import Settings
from ticklane.tail import consume
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import TopicSpec, catalogue

pytestmark = pytest.mark.integration

Read = Callable[[str], list[tuple[int, int, bytes | None, bytes]]]


def _topic(settings: Settings, base: str) -> TopicSpec:
    spec = next(s for s in catalogue(settings.topics) if s.base == base)
    TopicAdmin(kafka.client_config(settings.kafka, _bootstrap(settings))).ensure([spec])
    return spec


def _bootstrap(settings: Settings) -> str:
    return str(settings.kafka.bootstrap_servers)


def _outbox(settings: Settings) -> Outbox:
    return Outbox(kafka.producer_config(settings.kafka, _bootstrap(settings)))


def test_each_delivery_names_where_kafka_put_the_message(
    settings: Settings, read_topic: Read
) -> None:
    spec = _topic(settings, "signals")
    outbox = _outbox(settings)
    keys = [f"SYM{i % 7}".encode() for i in range(60)]
    deliveries = [outbox.send(spec.name, key, b"v%d" % i) for i, key in enumerate(keys)]
    assert outbox.close() == 0
    assert all(d.done() and d.exception() is None for d in deliveries)
    placed = {(d.partition, d.offset): i for i, d in enumerate(deliveries)}

    on_topic = read_topic(spec.name)
    assert len(on_topic) == len(keys)
    for partition, offset, key, value in on_topic:
        i = placed[(partition, offset)]
        assert (key, value) == (keys[i], b"v%d" % i)
        # The partition Java clients, aiokafka and so Faust would pick for this key.
        assert partition == (murmur2(key) & 0x7FFFFFFF) % spec.partitions


def test_deliver_waits_for_kafka_and_keeps_headers(settings: Settings) -> None:
    spec = _topic(settings, "dlq")
    outbox = _outbox(settings)
    headers = [("reason", b"bad frame"), ("offset", b"12")]

    async def scenario() -> tuple[int, int]:
        delivered = await outbox.deliver(spec.name, b"ES", b"\x00\x01", headers=headers)
        assert delivered.done()
        return delivered.partition, delivered.offset

    try:
        partition, offset = asyncio.run(scenario())
    finally:
        outbox.close()
    config = kafka.consumer_config(settings.kafka, _bootstrap(settings), "outbox-headers")
    (message,) = list(consume(config, spec.name, from_beginning=True, until_end=True))
    assert (message.partition, message.offset) == (partition, offset)
    assert message.value == b"\x00\x01"
    assert list(message.headers or []) == headers


def test_a_message_kafka_cannot_take_fails_its_delivery(
    settings: Settings, poll: Callable[..., object]
) -> None:
    spec = _topic(settings, "signals")
    outbox = _outbox(settings)
    failures = metrics.FAILED_DELIVERIES.labels(spec.name)
    before = failures._value.get()
    try:
        delivered = outbox.send(spec.name, b"ES", b"x", partition=spec.partitions + 5)
        poll(delivered.done, timeout_s=30, what="the failed delivery's report")

        async def awaited() -> None:
            await outbox.deliver(spec.name, b"ES", b"x", partition=spec.partitions + 5)

        with pytest.raises(KafkaException, match=r"(?i)partition"):
            asyncio.run(awaited())
    finally:
        outbox.close()
    error = delivered.exception()
    assert isinstance(error, KafkaException)
    assert "partition" in str(error).lower()
    assert failures._value.get() == before + 2  # counted for operators to alert on


class _Store(dict[bytes, bytes]):
    """The slice of Faust's RocksDB store the changelog store uses."""

    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[TP, int] = {}

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset


class _ChangelogTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Table:
    """A Faust table's surface as `ChangelogStore` sees it; co-partitioned by key here."""

    def __init__(self, changelog: str, partitions: int) -> None:
        self.data = _Store()
        self.changelog_topic = _ChangelogTopic(changelog)
        self.partitions = partitions

    def partition_for_key(self, key: bytes) -> int:
        return sum(key) % self.partitions


def test_changelog_store_writes_locally_then_the_changelog_and_records_offsets(
    settings: Settings, read_topic: Read
) -> None:
    spec = _topic(settings, "md.trades")  # any topic with the md.* partition count
    table: Any = _Table(spec.name, spec.partitions)
    outbox = _outbox(settings)
    store = ChangelogStore(table, outbox, checkpoint_every=4)
    written = {f"S{i}".encode(): b"entry-%d" % i for i in range(25)}

    deliveries = [store(key, raw) for key, raw in written.items()]
    assert dict(table.data) == written  # the local store has every entry at once
    assert outbox.close() == 0
    store.checkpoint()

    on_topic = read_topic(spec.name)
    assert {key: value for _, _, key, value in on_topic} == written
    for partition, _, key, _ in on_topic:
        assert key is not None
        assert partition == table.partition_for_key(key)
    last = {}
    for delivered in deliveries:
        assert delivered.done()
        last[delivered.partition] = max(delivered.offset, last.get(delivered.partition, -1))
    assert table.data.persisted == {TP(spec.name, p): o for p, o in last.items()}


def test_reports_go_on_after_a_waiters_loop_has_closed(
    settings: Settings, poll: Callable[..., object]
) -> None:
    spec = _topic(settings, "signals")
    outbox = _outbox(settings)

    async def send_and_stop() -> Any:
        return outbox.send(spec.name, b"ES", b"orphan", awaited=True)

    try:
        # The loop closes as the send returns: a worker stopping while an output was in flight.
        orphan = asyncio.run(send_and_stop())
        poll(orphan.done, timeout_s=30, what="the orphaned delivery's report")
        later = outbox.send(spec.name, b"ES", b"later")
        poll(later.done, timeout_s=30, what="a later report, served by the same thread")
    finally:
        assert outbox.close() == 0
    assert orphan.exception() is None
    assert later.exception() is None
