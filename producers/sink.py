"""The Kafka end of a producer: frames out, delivery tracked, nothing dropped silently.

A thin shell over confluent-kafka's idempotent producer. Partitions are chosen here, with
Java's murmur2 (what Kafka's clients and Faust use), so that resume logic and consumers
agree on where a symbol lives. A full local queue blocks the caller (backpressure, bounded
memory); a failed delivery stops the producer with the reason, and a restart resumes from
what Kafka holds.
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer, murmur2

from producers import metrics
from ticklane import wire
from ticklane.market import MarketFrame
from ticklane.timing import TICK_RECEIVED, TICK_SENT, stamp

log = logging.getLogger(__name__)

QUEUE_MAX_KBYTES: Final = 128 * 1024
"""librdkafka's local queue cap: the most unacknowledged data held in memory."""


class DeliveryError(RuntimeError):
    """Kafka refused or lost a message after the client's own retries."""


def partition_for(symbol: str, partitions: int) -> int:
    """The partition Kafka's Java client (and Faust) would pick for this symbol key."""
    return int(murmur2(symbol.encode(), partitions))


class KafkaSink:
    """Produces market-data frames keyed by symbol to explicit partitions."""

    def __init__(self, config: Mapping[str, Any], partitions: Mapping[str, int]) -> None:
        self._producer = Producer(dict(config) | {"queue.buffering.max.kbytes": QUEUE_MAX_KBYTES})
        self._partitions = dict(partitions)
        # Learn the topics' leaders now: a first produce to an unknown topic waits for a
        # metadata round trip (and its retry backoff) in the middle of the stream.
        for topic in self._partitions:
            self._producer.list_topics(topic, timeout=10)
        self._cache: dict[tuple[str, str], int] = {}
        self._failures: list[str] = []
        self.delivered_messages = 0
        self.delivered_records = 0
        self.latencies: deque[float] = deque(maxlen=100_000)
        """Receipt-to-ack seconds of recent frames sent with `received_at`."""

    def partition(self, topic: str, symbol: str) -> int:
        """The partition a symbol's frames go to on a topic."""
        key = (topic, symbol)
        partition = self._cache.get(key)
        if partition is None:
            partition = self._cache[key] = partition_for(symbol, self._partitions[topic])
        return partition

    def send(
        self,
        topic: str,
        frame: MarketFrame,
        count: int,
        received_at: float | None = None,
        key: str | None = None,
    ) -> None:
        """Queue one frame; blocks while the local queue is full.

        `received_at` (time.monotonic() when its records arrived) times receipt-to-ack.
        `key` is the frame's symbol unless given (md.chain: the underlying).
        """
        key = frame.symbol if key is None else key
        partition = self.partition(topic, key)
        queued_after = time.monotonic() - received_at if received_at is not None else None
        headers: list[tuple[str, str | bytes | None]] | None = None
        if queued_after is not None:
            # Receipt and hand-over on the wall clock, for timing tick → order downstream.
            sent = time.time_ns()
            received = sent - int(queued_after * 1e9)
            headers = [stamp(TICK_RECEIVED, received), stamp(TICK_SENT, sent)]

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._failures.append(f"{topic}[{partition}] {frame.symbol}: {err.str()}")
                metrics.DELIVERY_ERRORS.inc()
                return
            self.delivered_messages += 1
            self.delivered_records += count
            metrics.RECORDS_OUT.labels(topic).inc(count)
            if queued_after is not None:
                # librdkafka times produce() to ack itself, so a late callback doesn't count.
                latency = queued_after + (msg.latency() or 0.0)
                metrics.ACK_LATENCY.observe(latency)
                self.latencies.append(latency)

        self._produce(
            topic, wire.encode(frame), key.encode(), partition, on_delivery, headers=headers
        )

    def send_message(self, topic: str, key: str, message: wire.Message) -> None:
        """Queue any other wire message (a data-gap event) to the key's partition."""
        partition = self.partition(topic, key)

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._failures.append(f"{topic}[{partition}] {key}: {err.str()}")
                metrics.DELIVERY_ERRORS.inc()

        self._produce(topic, wire.encode(message), key.encode(), partition, on_delivery)

    def _produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        partition: int,
        on_delivery: Callable[[KafkaError | None, Message], None],
        *,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        self.raise_on_failure()
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=partition,
                    on_delivery=on_delivery,
                    headers=headers,
                )
            except BufferError:
                self._producer.poll(0.05)  # wait for acknowledgements to free the queue
                self.raise_on_failure()
                continue
            except KafkaException as exc:
                raise DeliveryError(f"cannot produce to {topic}: {exc.args[0].str()}") from exc
            break
        self._producer.poll(0)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery callbacks (acknowledgements and failures)."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every queued frame is acknowledged, or raise."""
        remaining = self._producer.flush(timeout_s)
        self.raise_on_failure()
        if remaining:
            raise DeliveryError(f"{remaining} message(s) unacknowledged after {timeout_s:.0f}s")

    def raise_on_failure(self) -> None:
        """Raise if any delivery failed: never continue past a lost frame."""
        if self._failures:
            raise DeliveryError(
                f"{len(self._failures)} frame(s) not delivered; first: {self._failures[0]}"
            )

    @property
    def queued(self) -> int:
        """Messages waiting in the local queue (a gauge of backpressure)."""
        return len(self._producer)
