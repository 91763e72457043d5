"""Reads the compacted `control` topic into a `ControlBook`, on a thread of its own.

Every worker reads every command (no consumer group: the one partition is assigned, read
from the beginning), so each applies the same commands whichever partitions it owns.
`catch_up` reads what the topic holds before the worker consumes market data, so a
command issued before start-up applies from the first frame.

Each command the agents act on (enable, disable, parameters) is answered on `control.acks`
as applied by this worker (`agents/<app>@<host>`), so the API can show who applied it.
"""

import logging
import socket
import threading
import time
import uuid

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from agents import metrics
from agents.controls import ControlBook
from ticklane import kafka, wire
from ticklane.control import ControlAck, ControlCommand
from ticklane.settings import KafkaSettings

log = logging.getLogger(__name__)


class ControlFeed:
    """Applies control commands to a book as they arrive."""

    def __init__(
        self,
        book: ControlBook,
        settings: KafkaSettings,
        bootstrap: str,
        topic: str,
        *,
        acks_topic: str = "",
        app_id: str = "agents",
    ) -> None:
        config = kafka.consumer_config(settings, bootstrap, f"ticklane-control-{uuid.uuid4().hex}")
        # The end is known from fetch responses (an EOF event), not ListOffsets, which the
        # development broker under-reports after batched writes.
        self._consumer = Consumer(config | {"enable.partition.eof": True})
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._book = book
        self._acks_topic = acks_topic
        self._acks = Producer(kafka.producer_config(settings, bootstrap)) if acks_topic else None
        self.name = f"agents/{app_id}@{socket.gethostname()}"
        """Who this worker is in its acknowledgements."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-feed", daemon=True)

    def catch_up(self, timeout_s: float = 30.0) -> int:
        """Apply every command the topic holds now; return how many were applied."""
        deadline = time.monotonic() + timeout_s
        applied = 0
        while time.monotonic() < deadline:
            at_end = False
            # Every message of a batch is applied, even after an end-of-partition event in
            # it: a command written while the first fetch found the topic empty arrives
            # in the same batch as that event, and dropping it would lose it for good.
            for message in self._consumer.consume(500, 0.1):
                error = message.error()
                at_end = error is not None and error.code() == KafkaError._PARTITION_EOF
                applied += self._apply(message)
            if at_end:
                return applied
        log.warning("control topic: no end reached in %.0f s; going on", timeout_s)
        return applied

    def start(self) -> None:
        """Keep applying commands in the background until `stop`."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the consumer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._consumer.close()
        if self._acks is not None:
            self._acks.flush(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(500, 0.1):
                self._apply(message)

    def _apply(self, message: Message) -> bool:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("control topic: %s", error)
            return False
        value = message.value()
        if value is None:
            return False  # a compaction tombstone
        try:
            command = wire.decode_as(value, ControlCommand)
        except wire.WireError as exc:
            log.warning("control topic offset %s: %s; ignored", message.offset(), exc)
            return False
        applied = self._book.apply(command)
        if applied:
            metrics.CONTROL.inc()
            log.info("control: %s %s/%s", command.action, command.strategy, command.symbol)
            self._acknowledge(command)
        return applied

    def _acknowledge(self, command: ControlCommand) -> None:
        if self._acks is None:
            return
        ack = ControlAck(command.command_id, self.name, applied=True, ts_event=time.time_ns())
        try:
            self._acks.produce(self._acks_topic, key=ack.key.encode(), value=wire.encode(ack))
            self._acks.poll(0)
        except (KafkaException, BufferError) as exc:
            # The command is applied all the same; only the API's view of it waits.
            log.warning("control: acknowledgement of %s not sent: %s", command.command_id, exc)
