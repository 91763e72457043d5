"""The agents' side reader against the real broker: where a partition starts, and ranges."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from agents.refetch import PartitionReader
from ticklane import kafka
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

pytestmark = pytest.mark.integration


def test_start_offset_is_the_groups_commit_and_read_returns_exactly_the_range(
    settings: Settings,
) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    spec = next(s for s in catalogue(settings.topics) if s.base == "md.trades")
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure([spec])
    topic = spec.name
    group = f"{settings.topics.prefix}agents"

    async def scenario() -> tuple[int, int, list[tuple[int, bytes]], list[tuple[int, bytes]]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, f"frame-{i}".encode(), key=b"ES", partition=1)
        finally:
            await producer.stop()
        reader = PartitionReader([bootstrap], group, "test")
        try:
            before = await reader.start_offset(topic, 1)
            committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
            await committer.start()
            try:
                committer.assign([TopicPartition(topic, 1)])
                await committer.commit({TopicPartition(topic, 1): OffsetAndMetadata(4, "")})
            finally:
                await committer.stop()
            after = await reader.start_offset(topic, 1)
            middle = await reader.read(topic, 1, 2, 7)
            tail = await reader.read(topic, 1, 9, 10)
        finally:
            await reader.close()
        return (
            before,
            after,
            [(r.offset, r.value) for r in middle],
            [(r.offset, r.value) for r in tail],
        )

    before, after, middle, tail = asyncio.run(scenario())
    assert before == 0  # no commit yet: the partition's first offset
    assert after == 4
    assert middle == [(i, f"frame-{i}".encode()) for i in range(2, 7)]
    assert tail == [(9, b"frame-9")]
