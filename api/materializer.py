"""Kafka to the API's store: positions, orders, fills, signals, bars, the strategies'
indicators, control commands and their acknowledgements, processes' status, instrument
definitions (`md.definition`) and dead letters, read to their end and followed, each batch
written with its offsets in one transaction (`api.store`).

A plain consumer assigned every partition from the offsets in the store (from the beginning
for a new store), so a restarted API resumes where its last commit ended and a new one
rebuilds everything from the topics; no consumer group, so two APIs never share the work.
An undecodable message goes to `dlq` with the reason and where it was read, and the rest of
its batch is applied.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from confluent_kafka import TopicPartition as Partition

from api.metrics import ApiMetrics
from api.store import DeadLetter, Located, Store
from ticklane import kafka, wire
from ticklane.control import ControlAck, ControlCommand
from ticklane.dbn import DbnRecordError, to_instruments
from ticklane.dead_letters import send_dead_letter
from ticklane.market import Bar, MarketFrame
from ticklane.settings import Settings
from ticklane.status import ProcessStatus
from ticklane.topics import BAR_INTERVALS, resolve
from ticklane.trading import Fill, Indicators, Order, Position, Signal

log = logging.getLogger(__name__)

Decoded = (
    Position
    | Order
    | Fill
    | ControlCommand
    | ControlAck
    | Bar
    | Signal
    | Indicators
    | ProcessStatus
    | MarketFrame
)
"""What the decoded topics carry (`dlq` is read raw)."""
TOPICS: Final[dict[str, type[Decoded]]] = {
    "positions": Position,
    "orders": Order,
    "fills": Fill,
    "control": ControlCommand,
    "control.acks": ControlAck,
    "signals": Signal,
    "indicators": Indicators,
    "status": ProcessStatus,
    "md.definition": MarketFrame,
    **{f"bars.{interval}": Bar for interval in BAR_INTERVALS},
}
"""The topics the store is made of, by base name, and what each carries."""
BATCH: Final = 2_000
LAG_EVERY_S: Final = 1.0


class Materializer:
    """Reads the topics into the store; `run` in a thread of its own."""

    def __init__(
        self, settings: Settings, bootstrap: str, store: Store, metrics: ApiMetrics
    ) -> None:
        self._settings, self._store, self._metrics = settings, store, metrics
        base = kafka.client_config(settings.kafka, bootstrap)
        self._consumer = Consumer(
            base
            | {
                "group.id": f"{settings.api.group_id}-{os.getpid()}",
                "enable.auto.commit": False,
                # An event at each partition's end: how the reader knows it has caught up.
                "enable.partition.eof": True,
                "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
            }
        )
        self._producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
        self._types = {resolve(settings.topics, name): kind for name, kind in TOPICS.items()}
        self._dlq = resolve(settings.topics, "dlq")
        self._topics: list[str] = [*self._types, self._dlq]
        """Read: the decoded topics, and `dlq` raw (by its headers)."""
        for topic in self._types:  # at 0 from the start, so a first one is an increase
            metrics.dead_letters.labels(topic)
        self._partitions: list[Partition] = []
        self._at_end: set[tuple[str, int]] = set()
        """Partitions read to their end, with nothing arrived since."""
        self.lag: dict[tuple[str, int], int] = {}
        """Messages behind each partition's end at the last look (None: never looked)."""
        self.last_lag_at = 0.0
        """Monotonic time the lag was last measured (0: never)."""
        self.error = ""
        """Why the last look at the topics failed ("" when it did not)."""
        self.halted = ""
        """Why it stopped reading for good, if it did (Kafka changed under it)."""

    def start(self, timeout_s: float = 30.0) -> None:
        """Assign every partition of the topics, at the store's offsets (a topic just created
        may take a moment to show its partitions; one that never does stops start-up)."""
        stored = self._store.offsets()
        partitions: list[Partition] = []
        for topic in self._topics:
            found = self._partition_ids(topic, timeout_s)
            partitions += [
                Partition(topic, p, stored.get((topic, p), OFFSET_BEGINNING)) for p in found
            ]
        self._consumer.assign(partitions)
        self._partitions = partitions
        log.info(
            "materializing %s from %s",
            ", ".join(self._topics),
            "the beginning" if not stored else "the stored offsets",
        )

    def _partition_ids(self, topic: str, timeout_s: float) -> list[int]:
        deadline = time.monotonic() + timeout_s
        while True:
            meta = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                return sorted(meta.partitions)
            if time.monotonic() >= deadline:
                why = meta.error if meta is not None and meta.error else "no partitions"
                raise KafkaException(
                    f"topic {topic}: {why}; create the topics with `ticklane topics create`"
                )
            time.sleep(0.2)  # metadata of a topic just created: ask again shortly

    def step(self, timeout_s: float = 0.1) -> int:
        """Read one batch into the store; how many messages it held."""
        messages = self._consumer.consume(BATCH, timeout_s)
        batch: list[Located] = []
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition = str(message.topic()), int(message.partition() or 0)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add((topic, partition))
                else:
                    log.warning("materializer: %s", error)
                continue
            self._at_end.discard((topic, partition))
            offset = int(message.offset() or 0)
            offsets[(topic, partition)] = offset + 1
            if topic == self._dlq:
                batch.append(Located(partition, offset, dead_letter(message)))
                continue
            if message.value() is None:
                continue  # a compaction tombstone: nothing to keep
            try:
                decoded = wire.decode_as(message.value() or b"", self._types[topic])
                if isinstance(decoded, MarketFrame):
                    # Definitions: each instrument's latest, by symbol.
                    batch += [
                        Located(partition, offset, d) for d in to_instruments(decoded.records)
                    ]
                    continue
            except (wire.WireError, DbnRecordError) as exc:
                self._dead_letter(message, str(exc))
                continue
            batch.append(Located(partition, offset, decoded, message.key() or b""))
        if offsets:
            self._producer.flush(10)  # dead letters in Kafka before their offsets are stored
            self._store.apply(batch, offsets)
            for located in batch:
                self._metrics.events.labels(type(located.message).__name__.lower()).inc()
        return len(messages)

    def refresh_lag(self) -> None:
        """Measure how far the store is behind each partition's end."""
        stored = self._store.offsets()
        lag: dict[tuple[str, int], int] = {}
        try:
            for part in self._partitions:
                key = (part.topic, part.partition)
                if key in self._at_end:
                    lag[key] = 0
                    continue
                # Not at its end yet: how far, by the ends the broker reports (the embedded
                # broker's can be off; the end-of-partition event above is exact).
                low, high = self._consumer.get_watermark_offsets(part, timeout=2, cached=False)
                read = stored.get(key, max(low, 0))
                lag[key] = max(high - read, 1)
        except KafkaException as exc:
            self.error = f"cannot read the topics' ends: {exc.args[0] if exc.args else exc}"
            return
        self.error = ""
        self.lag = lag
        self.last_lag_at = time.monotonic()
        for topic in self._types:
            behind = sum(n for (t, _), n in lag.items() if t == topic)
            self._metrics.lag.labels(topic).set(behind)

    def behind(self) -> int:
        """Messages not yet in the store, over every partition (at the last look)."""
        return sum(self.lag.values())

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics it reads."""
        return tuple(self._types)

    def run(
        self,
        stop: threading.Event,
        ready: Callable[[], None] | None = None,
        trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        """Start, then read until `stop` is set; measure the lag every second. While
        `trusted()` is false (Kafka is not the cluster it started on), read nothing: the
        store keeps the history it has rather than mixing in another."""
        self.start()
        self.refresh_lag()
        if ready is not None:
            ready()
        next_lag = time.monotonic() + LAG_EVERY_S
        while not stop.is_set():
            if not trusted():
                self.halted = (
                    "Kafka is not the cluster the API started on: it reads nothing more "
                    "until restarted (the log says what changed)"
                )
                stop.wait(LAG_EVERY_S)
                continue
            self.step()
            if time.monotonic() >= next_lag:
                self.refresh_lag()
                next_lag = time.monotonic() + LAG_EVERY_S

    def _dead_letter(self, message: Message, reason: str) -> None:
        send_dead_letter(self._producer, self._dlq, message, reason)
        self._metrics.dead_letters.labels(str(message.topic())).inc()

    def close(self) -> None:
        """Close the Kafka clients (the store stays the caller's)."""
        self._producer.flush(10)
        self._consumer.close()


def dead_letter(message: Message) -> DeadLetter:
    """A `dlq` message as the store keeps it, from the headers every process writes
    (`ticklane.dead_letters`); `error` and `source` (`topic:partition:offset`), as executors
    before that format wrote them, are still understood."""
    given = message.headers() or []
    pairs = list(given.items()) if isinstance(given, dict) else list(given)
    headers: dict[str, str] = {}
    for name, value in pairs:
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")
        headers[str(name)] = text
    topic = headers.get("topic", "")
    partition, offset = headers.get("partition", ""), headers.get("offset", "")
    if not topic and "source" in headers:
        parts = headers["source"].rsplit(":", 2)
        if len(parts) == 3:
            topic, partition, offset = parts
    key = message.key() or b""
    _, ts_ms = message.timestamp()
    return DeadLetter(
        reason=headers.get("reason") or headers.get("error") or "(no reason given)",
        topic=topic,
        partition=int(partition) if partition.lstrip("-").isdigit() else -1,
        offset=int(offset) if offset.lstrip("-").isdigit() else -1,
        key=key.decode(errors="replace"),
        size=len(message.value() or b""),
        ts_ms=max(int(ts_ms), 0),
    )
