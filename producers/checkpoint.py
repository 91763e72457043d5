"""Read back, from Kafka itself, how far a producer source got before it stopped.

Kafka is the checkpoint: no local state can disagree with it after a crash. For each
topic-partition the tail is read backwards in windows until the start of the source's
last batch there (see `producers.resume`). End offsets come from fetch responses, not
ListOffsets: the development broker under-reports the latter after batched writes.
"""

import logging
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, TopicPartition

from producers.resume import SeenFrame, seen_frames
from ticklane import wire
from ticklane.dbn import frame_records, ts_event
from ticklane.market import MarketFrame

log = logging.getLogger(__name__)

WINDOW: Final = 32
"""Messages read back first; each further step back reads four times as many."""
MAX_SCAN: Final = 2_000_000
"""Messages read back per partition at most before giving up the search with a warning."""


class CheckpointError(RuntimeError):
    """The tail of a topic could not be read."""


def _frame(value: str | bytes | None) -> MarketFrame | None:
    """The frame in a message, or None for anything else (someone else's bytes)."""
    if not isinstance(value, bytes):
        return None
    try:
        return wire.decode_as(value, MarketFrame)
    except wire.WireError:
        return None


def _read_range(
    consumer: Consumer, topic: str, partition: int, start: int, *, end: int | None, timeout_s: float
) -> list[tuple[int, MarketFrame | None]]:
    """Messages from `start` up to `end` (exclusive) or the partition's end, decoded."""
    consumer.assign([TopicPartition(topic, partition, start)])
    out: list[tuple[int, MarketFrame | None]] = []
    while True:
        msg = consumer.poll(timeout_s)
        if msg is None:
            raise CheckpointError(f"no answer reading {topic}[{partition}] from offset {start}")
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return out
            raise CheckpointError(f"reading {topic}[{partition}]: {error.str()}")
        offset = msg.offset() or 0
        if end is not None and offset >= end:
            return out
        out.append((offset, _frame(msg.value())))


def last_batch(
    consumer: Consumer, topic: str, partition: int, source: str, timeout_s: float = 10.0
) -> list[SeenFrame]:
    """This source's frames from its last batch in one topic-partition, oldest first."""
    low, high = consumer.get_watermark_offsets(
        TopicPartition(topic, partition), timeout=timeout_s, cached=False
    )
    if high <= low:
        return []
    end: int | None = None
    step = WINDOW
    start = max(low, high - step)
    seen: list[SeenFrame] = []
    scanned = 0
    while True:
        chunk = _read_range(consumer, topic, partition, start, end=end, timeout_s=timeout_s)
        scanned += len(chunk)
        ours = [seen for _, f in chunk if f and f.source == source for seen in seen_frames(f)]
        seen = ours + seen
        if seen and seen[0].batch < seen[-1].batch:
            batch = seen[-1].batch
            return [f for f in seen if f.batch == batch]
        if start <= low:
            return seen
        if scanned >= MAX_SCAN:
            log.warning(
                "gave up looking for source %s in %s[%d] after %d messages; "
                "treating what was found as its last batch",
                source,
                topic,
                partition,
                scanned,
            )
            return seen
        step *= 4
        end, start = start, max(low, start - step)


def _offset_tail(count: int) -> int:
    # librdkafka's logical offset "count messages before the end" (RD_KAFKA_OFFSET_TAIL).
    return -2000 - count


_READ_BACK: Final = {
    "enable.partition.eof": True,
    "enable.auto.commit": False,
    # Reading to a known end: a broker that holds fetches until the wait expires (the
    # development broker does) must not hold each of these for long.
    "fetch.wait.max.ms": 1,
}


def _nonempty(
    consumer: Consumer, partitions: Mapping[str, int], timeout_s: float
) -> set[tuple[str, int]]:
    """The partitions holding any message, by their watermarks. (Not the admin client's
    `list_offsets`: it crashed the process with a segmentation fault, now and then, right
    after a replay against the development broker.)"""
    found = set()
    for topic, count in partitions.items():
        for partition in range(count):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                found.add((topic, partition))
    return found


def _tails_at_once(
    consumer: Consumer, partitions: set[tuple[str, int]], timeout_s: float
) -> dict[tuple[str, int], list[tuple[int, MarketFrame | None]]]:
    """The last WINDOW messages of every partition, read in one pass."""
    tps = [TopicPartition(t, p, _offset_tail(WINDOW)) for t, p in sorted(partitions)]
    consumer.assign(tps)
    pending = {(tp.topic, tp.partition) for tp in tps}
    got: dict[tuple[str, int], list[tuple[int, MarketFrame | None]]] = {k: [] for k in pending}
    while pending:
        msg = consumer.poll(timeout_s)
        if msg is None:
            raise CheckpointError(f"no answer reading the tails of {len(partitions)} partitions")
        key = (msg.topic() or "", msg.partition() or 0)
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise CheckpointError(f"reading {key[0]}[{key[1]}]: {error.str()}")
            pending.discard(key)
            continue
        got[key].append((msg.offset() or 0, _frame(msg.value())))
    return got


def read_tails(
    consumer_config: Mapping[str, Any],
    partitions: Mapping[str, int],
    source: str,
    timeout_s: float = 10.0,
) -> dict[tuple[str, int], list[SeenFrame]]:
    """Every topic-partition's last batch of this source's frames.

    One pass reads the recent tail of every partition at once; only a partition whose
    tail does not reach back to the start of the source's last batch is searched further.
    """
    consumer = Consumer(dict(consumer_config) | _READ_BACK)
    try:
        nonempty = _nonempty(consumer, partitions, timeout_s)
        out: dict[tuple[str, int], list[SeenFrame]] = {
            (t, p): [] for t, n in partitions.items() for p in range(n) if (t, p) not in nonempty
        }
        if not nonempty:
            return out
        tails = _tails_at_once(consumer, nonempty, timeout_s)
        for (topic, p), messages in tails.items():
            seen = [s for _, f in messages if f and f.source == source for s in seen_frames(f)]
            starts_at_zero = not messages or messages[0][0] == 0
            if starts_at_zero or (seen and seen[0].batch < seen[-1].batch):
                last = seen[-1].batch if seen else 0
                out[(topic, p)] = [f for f in seen if f.batch == last]
            else:
                out[(topic, p)] = last_batch(consumer, topic, p, source, timeout_s)
        return out
    finally:
        consumer.close()


def recent_records(
    consumer_config: Mapping[str, Any],
    partitions: Mapping[str, int],
    source: str,
    window_ns: int,
    timeout_s: float = 10.0,
) -> list[bytes]:
    """This source's records within `window_ns` of each partition's newest ts_event."""
    consumer = Consumer(
        dict(consumer_config) | {"enable.partition.eof": True, "enable.auto.commit": False}
    )
    out: list[bytes] = []
    try:
        for topic, count in partitions.items():
            for p in range(count):
                out += _recent_in_partition(
                    consumer, topic, p, source, window_ns=window_ns, timeout_s=timeout_s
                )
    finally:
        consumer.close()
    return out


def _recent_in_partition(
    consumer: Consumer, topic: str, partition: int, source: str, *, window_ns: int, timeout_s: float
) -> list[bytes]:
    low, high = consumer.get_watermark_offsets(
        TopicPartition(topic, partition), timeout=timeout_s, cached=False
    )
    if high <= low:
        return []
    frames: list[MarketFrame] = []
    end: int | None = None
    step = WINDOW
    start = max(low, high - step)
    newest: int | None = None
    while True:
        chunk = _read_range(consumer, topic, partition, start, end=end, timeout_s=timeout_s)
        ours = [f for _, f in chunk if f and f.source == source]
        frames = ours + frames
        if newest is None and frames:
            newest = max(map(ts_event, frame_records(frames[-1])))
        oldest_seen = min(map(ts_event, frame_records(frames[0]))) if frames else None
        done = newest is not None and oldest_seen is not None and oldest_seen < newest - window_ns
        if done or start <= low:
            records = [r for f in frames for r in frame_records(f)]
            if newest is None:
                return []
            return [r for r in records if ts_event(r) >= newest - window_ns]
        step *= 4
        end, start = start, max(low, start - step)
