"""The ledger's outbox on its way to Kafka, without waiting for the broker.

Events are handed to the producer in outbox order and forgotten (deleted from the outbox)
only up to the longest run, from the oldest, that the broker has acknowledged: a crash or a
failed delivery sends again what was not acknowledged (consumers know events by their ids),
never loses one. The executor's loop never blocks on an acknowledgement: while the broker
answers, the next signals are already being answered.
"""

import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from executors.ledger import Ledger

log = logging.getLogger(__name__)

IN_FLIGHT: Final = 50_000
"""Events handed to the producer and not yet acknowledged, at most (the rest wait)."""


class Publication:
    """Hands the outbox's events to a producer and forgets those acknowledged (module
    docstring). `topic` names the Kafka topic of an event's base topic."""

    def __init__(self, ledger: Ledger, topic: Callable[[str], str], batch: int) -> None:
        self._ledger = ledger
        self._topic = topic
        self._batch = batch
        self._generation = 0
        """Counts restarts: an acknowledgement for an earlier hand-over is ignored."""
        self._handed = 0
        """The newest event's sequence number handed to the producer since the last restart."""
        self._in_flight: deque[int] = deque()
        self._acknowledged: set[int] = set()
        self._failed = ""
        self._fatal: KafkaError | None = None

    def pump(self, producer: Producer) -> int:
        """Forget what the broker acknowledged; hand over the events not yet handed (as many
        as the producer's queue takes; the rest next time). How many were handed.

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
        room = IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return 0
        handed = 0
        for event in self._ledger.outbox(min(self._batch, room), after=self._handed):
            report = partial(self._on_delivery, self._generation, event.seq)
            try:
                producer.produce(
                    self._topic(event.topic), key=event.key, value=event.value, on_delivery=report
                )
            except BufferError:
                break  # the queue is full while Kafka is slow: the rest go next time
            self._in_flight.append(event.seq)
            self._handed = event.seq
            handed += 1
        producer.poll(0)
        return handed

    def _on_delivery(
        self, generation: int, seq: int, error: KafkaError | None, _message: Message
    ) -> None:
        if generation != self._generation:
            return
        if error is None:
            self._acknowledged.add(seq)
        elif error.fatal():
            self._fatal = error
        elif not self._failed:
            self._failed = f"delivery of event {seq} failed ({error.str()})"

    def _forget_acknowledged(self) -> None:
        done = 0
        while self._in_flight and self._in_flight[0] in self._acknowledged:
            done = self._in_flight.popleft()
            self._acknowledged.discard(done)
        if done:
            self._ledger.outbox_done(done)

    def restart(self) -> None:
        """Forget what is in flight (a failed delivery, or a new producer): every event not
        known acknowledged is handed over again, from the oldest."""
        self._generation += 1
        self._in_flight.clear()
        self._acknowledged.clear()
        self._failed = ""
        self._fatal = None
        self._handed = 0

    def drain(self, producer: Producer, timeout_s: float) -> None:
        """Wait up to `timeout_s` for what is in flight, and forget what was acknowledged."""
        producer.flush(timeout_s)
        self._forget_acknowledged()

    @property
    def in_flight(self) -> int:
        """Events handed over and not yet acknowledged."""
        return len(self._in_flight)
