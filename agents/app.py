"""The agents' Faust app: declared here once, configured from ticklane settings.

The app swaps in a transport that changes five things about Faust's aiokafka driver:

* offsets of md.* partitions are committed from the agents' own account
  (`agents.progress`), not from Faust's acknowledgements, which include messages its
  stream skipped;

* the consumer's fetch wait, fixed at 1.5 s by Faust, is `kafka.fetch_wait_max_ms`:
  brokers that hold a fetch for its whole wait (the embedded one does: docs/design.md,
  "The embedded broker's behaviour") would otherwise add up to 1.5 s to every fetch;
* aiokafka's metadata requests do not let the broker create the topics they name
  (`forbid_topic_auto_creation`);
* a partition's end offset, which table recovery reads to know where the changelog ends,
  is taken from a fetch response rather than from ListOffsets alone: the embedded broker
  answers ListOffsets with the start of the last batch written plus one, so Faust would
  stop restoring short of the last entries, or refuse to start ("persisted offset is
  higher than the highwater") after a kill;
* what one fetch returned is handed to the streams under one race against a rebalance,
  not one race per message (`_Consumer._drain_messages`): Faust's per-message race bounded
  a worker near 3,000 to 4,000 messages/s whatever their size.
"""

import asyncio
import functools
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, cast

import faust
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka import client as aiokafka_client
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, TransportT
from mode import Service, ServiceT

from agents.progress import Progress
from agents.refetch import PartitionReader
from ticklane.settings import KafkaSettings, Settings

log = logging.getLogger(__name__)


def forbid_topic_auto_creation() -> None:
    """Make aiokafka's metadata requests (and so Faust's) ask the broker not to create a
    topic they name. By default they allow it, and a broker with `auto.create.topics.enable`
    (Kafka's default; the embedded broker always) then creates a missing topic with its own
    default partition count: after a cluster came back empty, a changelog or md.* topic with
    partitions that no longer match the keys' placement. aiokafka has no setting for it, so
    the request class its client builds is given the flag; topics come from `ticklane topics
    create` (or the processes' own start-up check) with the catalogue's partitions."""
    if isinstance(aiokafka_client.MetadataRequest, functools.partial):
        return
    aiokafka_client.MetadataRequest = functools.partial(
        aiokafka_client.MetadataRequest, allow_auto_topic_creation=False
    )


YIELD_EVERY: Final = 100
"""Messages delivered between two turns of the loop for the streams' agents (Faust's own)."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when the consumer starts, which is after this returns.
        consumer._fetch_max_wait_ms = cast(AgentsApp, self.app).fetch_wait_max_ms
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        servers = [f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker_consumer]
        return await _fetched_ends(servers, reported)


async def _fetched_ends(servers: list[str], reported: Mapping[TP, int]) -> dict[TP, int]:
    """End offsets as fetch responses give them, starting from what ListOffsets reported.

    Fetching from the last record ListOffsets admits to makes the broker answer with the
    partition's true high watermark.
    """
    ends = dict(reported)
    pending = {tp for tp, end in reported.items() if end > 0}
    if not pending:
        return ends
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        consumer.assign(list(pending))
        for tp in pending:
            consumer.seek(tp, reported[tp] - 1)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            await consumer.getmany(*pending, timeout_ms=100)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(ends[tp], highwater)
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return ends


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's delivery loop, racing each fetched batch against a rebalance rather than
        each message.

        Faust hands every message to its streams inside `wait_first(delivery,
        suspend_flow.wait())`, which makes four tasks and an `asyncio.wait` per message: a
        worker took 3,000 to 4,000 messages/s whatever their size, its loop mostly spinning
        through those tasks (`docs/design.md`, Frames). Here one `wait_first` delivers what
        one `getmany` returned, with Faust's per-message steps kept (read offsets, gaps, a
        commit every `broker_commit_every`, and its checks that the flow still runs and the
        generation is the one fetched in). When a rebalance stops the flow, the rest of the
        batch is dropped, as Faust's `getmany` stops yielding then: the consumer is sought
        to the committed offsets before the flow resumes, so it is fetched again.
        """
        should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        try:
            while not (should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = [pair async for pair in self.getmany(timeout=1.0)]
                generation = self.app.consumer_generation_id
                await self.sleep(0)  # as Faust does: a getmany may not yield to the loop
                while batch and not self.should_stop:
                    done = await self.wait_first(
                        self._deliver(batch, generation), self.suspend_flow.wait()
                    )
                    if done.stopped or not done.results or not self._flowing(generation):
                        break
                    delivered = cast(int, done.results[0])
                    batch = batch[delivered:]
                    if batch:  # `_deliver` stopped for a commit that is due
                        self._n_acked = 0
                        await self.commit()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception:
            log.exception("delivering fetched messages to the streams failed")
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _flowing(self, generation: int) -> bool:
        """Whether messages fetched in `generation` may still be delivered: Faust's test
        before yielding each one (`Consumer.getmany`)."""
        return self.flow_active and self.app.consumer_generation_id == generation

    async def _deliver(self, batch: list[tuple[TP, Any]], generation: int) -> int:
        """Hand `batch`'s messages to the streams in order, as Faust's loop does each; how
        many were handled (fewer than all when a commit is due first, or when a rebalance
        stopped the flow: then the caller drops the rest)."""
        read_offset, commit_every = self._read_offset, self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        for i, (tp, message) in enumerate(batch):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # the stream's agent takes what was delivered
            if not self._flowing(generation):
                return i
            if commit_every is not None and self._n_acked >= commit_every and i:
                return i
            offset, last = message.offset, read_offset[tp]
            if last is not None and offset < last:
                continue  # before what was read: Faust drops it too
            if last and offset - last > 1 and acks_enabled_for(message.topic):
                await self._add_gap(tp, last + 1, offset)
            await self.callback(message)
            read_offset[tp] = offset
        return len(batch)

    def _new_offset(self, tp: TP) -> int | None:
        faust_offset = super()._new_offset(tp)  # also trims Faust's acknowledgement lists
        progress = cast(AgentsApp, self.app).progress
        if progress is not None and progress.tracks(tp.topic):
            # Faust acknowledges messages its stream skipped: its offset can pass frames
            # that were never absorbed. The agents' own account cannot.
            return progress.committable((tp.topic, tp.partition))
        return faust_offset


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class _Recovery(Recovery):
    """Faust's table recovery, which on a changelog that ends before the state this worker
    holds says so to the app (`AgentsApp.on_changelog_behind`) instead of crashing the
    worker with ConsistencyError: a crash would be restarted into the same crash (the
    RocksDB state and the changelog do not change), while a worker that holds its frames
    and says why can be looked at (the check itself is Faust's, turned off in the app)."""

    async def _build_offsets(
        self, consumer: Any, tps: set[TP], destination: Counter[TP], title: str
    ) -> None:
        await super()._build_offsets(consumer, tps, destination, title)
        if title != "active":
            return
        behind = {
            tp: (destination[tp], self.active_highwaters[tp])
            for tp in tps
            if destination.get(tp) is not None
            and destination[tp] > self.active_highwaters.get(tp, -1)
        }
        app = cast(AgentsApp, self.app)
        if behind and app.on_changelog_behind is not None:
            app.on_changelog_behind(behind)


class _TableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = _Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


ChangelogBehind = Callable[[Mapping[TP, tuple[int, int]]], None]
"""Told, per changelog partition, the offset the worker's state holds and where the
changelog ends, when the first is past the second."""


class AgentsApp(faust.App):
    """faust.App with a configurable consumer fetch wait and the agents' offset account."""

    fetch_wait_max_ms = 10
    progress: Progress | None = None
    on_changelog_behind: ChangelogBehind | None = None
    side_readers: tuple[PartitionReader, ...] = ()
    """Consumers beside Faust's (refetch, warm-up), closed when the app stops."""

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        await super().on_stop()
        for reader in self.side_readers:
            await reader.close()


def make_app(settings: Settings, bootstrap: str, state_dir: Path) -> AgentsApp:
    """The app for one worker: group and changelog named by the topic prefix and app id."""
    forbid_topic_auto_creation()
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
        broker_credentials=faust_credentials(kafka),
        TableManager=_TableManager,
        recovery_consistency_check=False,  # _Recovery's instead: it reports, never crashes
    )
    app.fetch_wait_max_ms = kafka.fetch_wait_max_ms
    return app


# Faust and aiokafka do not read librdkafka's settings: the same `kafka` settings, in their terms,
# so the worker's consumer, its changelogs and its side reader reach a SASL/SSL cluster as the
# rest of ticklane does.


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """For SSL and SASL_SSL: the system's trusted CAs, or `ssl_ca_location`'s."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    cafile = str(kafka.ssl_ca_location) if kafka.ssl_ca_location else None
    return ssl.create_default_context(cafile=cafile)


def faust_credentials(kafka: KafkaSettings) -> faust.auth.Credentials | None:
    """The Faust app's `broker_credentials` for `kafka.security_protocol`."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(ssl_context(kafka))
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=password,
        ssl_context=ssl_context(kafka),
        mechanism=kafka.sasl_mechanism or "PLAIN",
    )


def aiokafka_security(kafka: KafkaSettings) -> dict[str, Any]:
    """An aiokafka client's security arguments for `kafka.security_protocol`."""
    config: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        config |= {
            "sasl_mechanism": kafka.sasl_mechanism or "PLAIN",
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": password,
        }
    context = ssl_context(kafka)
    if context is not None:
        config["ssl_context"] = context
    return config
