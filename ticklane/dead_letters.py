"""One format for every process's dead letters on `dlq`: the original key and value, and
headers saying why and where the message was read (`reason`, `topic`, `partition`, `offset`).

The API's materializer reads the same headers back (`api.materializer.dead_letter`), so a
dead letter from any process shows the same way.
"""

import logging
from typing import Final

from confluent_kafka import Message, Producer

log = logging.getLogger(__name__)

HEADER_NAMES: Final = ("reason", "topic", "partition", "offset")


def dead_letter_headers(
    reason: str, topic: str, partition: int | None, offset: int | None
) -> list[tuple[str, bytes]]:
    """The headers of a dead letter: why, and where its message was read."""
    return [
        ("reason", reason.encode()),
        ("topic", topic.encode()),
        ("partition", str(-1 if partition is None else partition).encode()),
        ("offset", str(-1 if offset is None else offset).encode()),
    ]


def send_dead_letter(producer: Producer, dlq: str, message: Message, reason: str) -> None:
    """Put a consumed message on `dlq` as it came (key and value), with why and where."""
    topic, partition, offset = str(message.topic()), message.partition(), message.offset()
    log.warning("dlq: %s[%s]@%s: %s", topic, partition, offset, reason)
    producer.produce(
        dlq,
        key=message.key(),
        value=message.value() or b"",
        headers=[(k, v) for k, v in dead_letter_headers(reason, topic, partition, offset)],
    )
