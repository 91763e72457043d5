"""What one hop through the broker costs as a partition fills (issue 18: what bounds tick →
order on the embedded broker).

The same paced stream, 1,000 messages/s over 100 keys, produced one batch per message
(linger 0, as the live producer sends) and read by one consumer at `kafka.fetch_wait_max_ms`,
into a topic that is empty and into one that already holds 20,000 batches. On Apache Kafka a
fetch finds its offset through an index, so the two rows agree; the embedded broker (tansu,
in memory) spends more on every fetch the more batches the partition holds, which is what a
long-running pipeline on it pays on each md.* hop. Printed, never asserted.
"""

import statistics
import threading
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, Producer

from tests.bench.rows import Row
from ticklane import kafka
from ticklane.settings import KafkaSettings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

RATE = 1_000
SECONDS = 5.0
STORED = 20_000
JOIN_S = 60.0


def stored_batches_rows(bootstrap: str) -> Iterator[Row]:
    """One row per fill: the hop's p50/p99 at `RATE` messages/s."""
    for stored in (0, STORED):
        p50, p99, n = _hop(bootstrap, stored)
        yield Row(
            f"produce→consume at {RATE:,}/s, {stored:,} batches stored",
            "ms",
            p50=p50,
            p99=p99,
            note=f"{n:,} messages, one batch each, 6 partitions",
            decimals=1,
        )


def _hop(bootstrap: str, stored: int) -> tuple[float, float, int]:
    settings = KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000)
    topics = TopicSettings(prefix=f"bench-fill-{uuid.uuid4().hex[:6]}.", partitions=6)
    spec = next(s for s in catalogue(topics) if s.base == "md.trades")
    TopicAdmin(kafka.client_config(settings, bootstrap)).ensure([spec])
    producer = Producer(kafka.producer_config(settings, bootstrap, linger_ms=0))
    for i in range(stored):
        producer.produce(spec.name, key=f"S{i % 100}".encode(), value=b"0")
        producer.flush(10)  # one batch per message, as the live producer's lone ticks
    group = f"{spec.name}-hop"
    consumer = Consumer(kafka.consumer_config(settings, bootstrap, group, from_beginning=False))
    _join(consumer, spec.name)
    delays: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            message = consumer.poll(0.1)
            if message is None or message.error() is not None or message.value() == b"0":
                continue
            delays.append((time.time_ns() - int(message.value() or b"0")) / 1e6)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        start = time.perf_counter()
        for i in range(int(RATE * SECONDS)):
            due = start + i / RATE
            while (left := due - time.perf_counter()) > 0:
                producer.poll(min(left, 0.0005))
            producer.produce(spec.name, key=f"S{i % 100}".encode(), value=str(time.time_ns()))
            producer.poll(0)
        producer.flush(10)
        settle = time.monotonic() + 10
        while len(delays) < RATE * SECONDS and time.monotonic() < settle:
            time.sleep(0.05)  # the reader catching up on what was sent; bounded
    finally:
        stop.set()
        reader.join()
        consumer.close()
    # The first second is the consumer's first fetches settling: left out.
    kept = delays[RATE:]
    if len(kept) < 2:
        raise RuntimeError(f"only {len(delays)} of {int(RATE * SECONDS)} messages came back")
    return statistics.median(kept), statistics.quantiles(kept, n=100)[98], len(kept)


def _join(consumer: Consumer, topic: str) -> None:
    consumer.subscribe([topic])
    deadline = time.monotonic() + JOIN_S
    while not consumer.assignment():
        consumer.poll(0.1)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the consumer was not assigned {topic} in {JOIN_S:.0f} s")
