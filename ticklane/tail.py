"""`ticklane topics tail`: print a topic's messages decoded, one JSON line per record.

Like kcat for raw bytes, but every value field is shown decoded with integers kept
exact; a market-data frame prints one line per record. Bytes that do not decode are
shown as base64 with the reason, never skipped.
"""

import base64
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from ticklane import dbn, wire
from ticklane.market import MarketFrame

_JSON = msgspec.json.Encoder()


@dataclass(frozen=True)
class RawMessage:
    """What the consumer handed us, free of confluent-kafka types."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()


def _text_or_base64(data: bytes | None) -> dict[str, str] | str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def render(message: RawMessage) -> list[dict[str, Any]]:
    """The JSON objects that show one Kafka message: one per record, every field included."""
    base: dict[str, Any] = {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp_ms": message.timestamp_ms,
        "key": _text_or_base64(message.key),
    }
    if message.headers:
        base["headers"] = {name: _text_or_base64(value) for name, value in message.headers}
    if message.value is None:
        return [base | {"type": "tombstone", "value": None}]
    try:
        decoded = wire.decode(message.value)
    except wire.WireError as exc:
        return [
            base
            | {"type": "undecodable", "error": str(exc), "value": _text_or_base64(message.value)}
        ]
    if isinstance(decoded, MarketFrame):
        # Each record with its own symbol and type: a frame of md.chain holds several.
        where = {"source": decoded.source, "position": decoded.position}
        lines: list[dict[str, Any]] = []
        for run in dbn.frame_runs(decoded):
            shown = base | {"type": dbn.rtype_name(run.rtype), "symbol": run.symbol} | where
            records = dbn.record_dicts(decoded.records[run.start : run.stop])
            lines += [shown | {"record": len(lines) + i, "value": r} for i, r in enumerate(records)]
        return lines
    return [base | {"type": wire.kind_name(decoded), "value": msgspec.structs.asdict(decoded)}]


def to_json_line(obj: dict[str, Any]) -> str:
    """One compact JSON line; integers of any size are written exactly."""
    return _JSON.encode(obj).decode()


class TailError(RuntimeError):
    """The topic cannot be tailed (it does not exist, or the broker failed)."""


def consume(
    config: dict[str, Any],
    topic: str,
    *,
    from_beginning: bool,
    until_end: bool,
    stop: Callable[[], bool] = lambda: False,
    metadata_timeout_s: float = 10.0,
) -> Generator[RawMessage, None, None]:
    """Yield a topic's messages from every partition, without a consumer group's commits."""
    consumer = Consumer(config | {"enable.partition.eof": until_end, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=metadata_timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise TailError(f"topic {topic!r} does not exist (try `ticklane topics list`)")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        at_end: set[int] = set()
        while not stop():
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition() or 0)
                    if until_end and len(at_end) == len(partitions):
                        return
                    continue
                if error.fatal() or not error.retriable():
                    raise TailError(f"consuming {topic}: {error.str()}")
                continue
            raw = _raw(msg)
            at_end.discard(raw.partition)
            yield raw
    finally:
        consumer.close()


def _bytes(data: str | bytes | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def _raw(msg: Message) -> RawMessage:
    _, timestamp = msg.timestamp()
    headers = msg.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return RawMessage(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        timestamp_ms=timestamp if timestamp >= 0 else None,
        key=_bytes(msg.key()),
        value=_bytes(msg.value()),
        headers=[(name, _bytes(value)) for name, value in pairs],
    )


def tail(
    messages: Iterator[RawMessage], write: Callable[[str], object], max_records: int | None
) -> int:
    """Write each message's records as JSON lines, stopping after `max_records`; returns count."""
    printed = 0
    for message in messages:
        for obj in render(message):
            if max_records is not None and printed >= max_records:
                return printed
            write(to_json_line(obj))
            printed += 1
        if max_records is not None and printed >= max_records:
            return printed
    return printed


def deadline_stop(seconds: float | None) -> Callable[[], bool]:
    """A stop condition for `consume` that fires after a wall-clock duration (or never)."""
    if seconds is None:
        return lambda: False
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end
