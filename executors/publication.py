"""The ledger's outbox on its way to Kafka, without waiting for the broker.

Events are handed to the producer in outbox order, and an outbox entry (the events of one
ledger transaction) is forgotten (deleted) only once every entry up to it has had all its
events acknowledged: a crash or a failed delivery sends again what was not acknowledged
(consumers know events by their ids), never loses one. The executor's loop never blocks on an
acknowledgement: while the broker answers, the next signals are already being answered.
"""

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from executors.ledger import Ledger, OutboxEntry

log = logging.getLogger(__name__)

IN_FLIGHT: Final = 50_000
"""Events handed to the producer and not yet acknowledged, at most (the rest wait)."""
ENTRIES_READ: Final = 100
"""Outbox entries read at a time (an entry holds a transaction's events: up to thousands)."""


class Publication:
    """Hands the outbox's events to a producer and forgets the entries acknowledged (module
    docstring). `topic` names the Kafka topic of an event's base topic."""

    def __init__(self, ledger: Ledger, topic: Callable[[str], str], batch: int) -> None:
        self._ledger = ledger
        self._topic = topic
        self._batch = batch
        self._generation = 0
        """Counts restarts: an acknowledgement for an earlier hand-over is ignored."""
        self._read: deque[OutboxEntry] = deque()
        """Entries read from the outbox and not yet handed over whole."""
        self._next_event = 0
        """How many events of the first entry of `_read` were handed over already."""
        self._after = 0
        """The newest entry's sequence number read from the outbox since the last restart."""
        self._entries: deque[tuple[int, int]] = deque()
        """(sequence number, events) of each entry handed over, in part or whole, and not
        yet forgotten, oldest first."""
        self._acknowledged: dict[int, int] = {}
        """Sequence number -> events of that entry acknowledged."""
        self._unacknowledged = 0
        self._failed = ""
        self._fatal: KafkaError | None = None

    def pump(self, producer: Producer) -> int:
        """Forget what the broker acknowledged; hand over events not yet handed (up to
        `batch`, as many as the producer's queue takes; the rest next time). How many were
        handed.

        Raises the `KafkaException` of a fatal producer error (from `produce` or a delivery
        report): the caller takes a new producer and calls `restart`."""
        producer.poll(0)  # runs the delivery reports of what was handed before
        self._forget_acknowledged()
        if self._fatal is not None:
            fatal, self._fatal = self._fatal, None
            raise KafkaException(fatal)  # the producer is done for: the caller takes a new one
        if self._failed:
            log.warning("events: %s; sending again what was not acknowledged", self._failed)
            self.restart()
        handed = 0
        limit = min(self._batch, IN_FLIGHT - self._unacknowledged)
        while handed < limit:
            if not self._read:
                self._read.extend(self._ledger.outbox(ENTRIES_READ, after=self._after))
                if not self._read:
                    break
                self._after = self._read[-1].seq
            entry = self._read[0]
            report = partial(self._on_delivery, self._generation, entry.seq)
            try:
                while self._next_event < len(entry.events) and handed < limit:
                    event = entry.events[self._next_event]
                    producer.produce(
                        self._topic(event.topic),
                        key=event.key,
                        value=event.value,
                        on_delivery=report,
                    )
                    if self._next_event == 0:  # its first event handed: it is in flight
                        self._entries.append((entry.seq, len(entry.events)))
                    self._next_event += 1
                    self._unacknowledged += 1
                    handed += 1
            except BufferError:
                break  # the queue is full while Kafka is slow: the rest go next time
            if self._next_event == len(entry.events):
                self._read.popleft()
                self._next_event = 0
        producer.poll(0)
        return handed

    def _on_delivery(
        self, generation: int, seq: int, error: KafkaError | None, _message: Message
    ) -> None:
        if generation != self._generation:
            return
        if error is None:
            self._acknowledged[seq] = self._acknowledged.get(seq, 0) + 1
            self._unacknowledged -= 1
        elif error.fatal():
            self._fatal = error
        elif not self._failed:
            self._failed = f"delivery of an event of entry {seq} failed ({error.str()})"

    def _forget_acknowledged(self) -> None:
        done = 0
        while self._entries:
            seq, events = self._entries[0]
            if self._acknowledged.get(seq, 0) < events:
                break  # not every event of it acknowledged (or handed over) yet
            done, _ = self._entries.popleft()
            self._acknowledged.pop(seq, None)
        if done:
            self._ledger.outbox_done(done)

    def restart(self) -> None:
        """Forget what is in flight (a failed delivery, or a new producer): every event not
        known acknowledged is handed over again, from the oldest entry not forgotten."""
        self._generation += 1
        self._read.clear()
        self._next_event = 0
        self._after = 0
        self._entries.clear()
        self._acknowledged.clear()
        self._unacknowledged = 0
        self._failed = ""
        self._fatal = None

    def drain(self, producer: Producer, timeout_s: float) -> None:
        """Wait up to `timeout_s` for what is in flight, and forget what was acknowledged."""
        producer.flush(timeout_s)
        self._forget_acknowledged()

    @property
    def in_flight(self) -> int:
        """Events handed over and not yet acknowledged."""
        return self._unacknowledged
