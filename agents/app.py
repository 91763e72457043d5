"""The agents' Faust app: declared here once, configured from ticklane settings.

Faust's aiokafka driver fixes the consumer's fetch wait at 1.5 s; brokers that hold a
fetch for its whole wait (the embedded one does, design.md) would then add up to 1.5 s
to every fetch, so the app swaps in a transport whose consumer waits
`kafka.fetch_wait_max_ms` instead. Nothing else about Faust is changed.
"""

from pathlib import Path
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

from ticklane.settings import Settings


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when the consumer starts, which is after this returns.
        consumer._fetch_max_wait_ms = cast(AgentsApp, self.app).fetch_wait_max_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class AgentsApp(faust.App):
    """faust.App with a configurable consumer fetch wait."""

    fetch_wait_max_ms = 10

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)


def make_app(settings: Settings, bootstrap: str, state_dir: Path) -> AgentsApp:
    """The app for one worker: group and changelog named by the topic prefix and app id."""
    kafka = settings.kafka
    app = AgentsApp(
        settings.topics.prefix + settings.agents.app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        store="rocksdb://",
        datadir=str(state_dir),
        autodiscover=False,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        broker_client_id=kafka.client_id,
        broker_session_timeout=kafka.session_timeout_ms / 1000,
        broker_heartbeat_interval=max(kafka.session_timeout_ms / 6000, 0.1),
        broker_commit_interval=settings.agents.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=1,
        table_standby_replicas=0,
        stream_wait_empty=False,
    )
    app.fetch_wait_max_ms = kafka.fetch_wait_max_ms
    return app
