"""What the agents write to Kafka — bars, signals, dead letters and table changelogs — sent
through librdkafka rather than Faust's producer.

Faust produces through aiokafka, whose producer runs in Python on the worker's event loop:
with one changelog message per frame it cost a busy worker more than the frame's whole
computation (`make bench`: 120,000 ticks/s with Faust's changelog send, 200,000 with
none). librdkafka batches, retries and sends on its own threads, outside the GIL; what is
left in Python is one call per message and one delivery callback, run on a thread here.

Each message's delivery is a `Delivered`: `Progress` polls it to hold offset commits, and
the worker awaits it (through an asyncio future) where it must know an output is in
Kafka before it goes on.
"""

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from confluent_kafka import KafkaException, Message, Producer
from faust.types import TP

from agents import metrics
from ticklane.kafka import ClientConfig

log = logging.getLogger(__name__)


class Delivered:
    """One message's delivery: (partition, offset) once Kafka has it, or why it never will.

    Set once by the outbox's report thread, read by the worker: a plain flag rather than
    a `concurrent.futures.Future`, whose lock and condition cost more than the send.
    """

    __slots__ = ("_done", "_error", "_waiter", "offset", "partition")

    def __init__(self, waiter: "asyncio.Future[None] | None") -> None:
        self._waiter = waiter
        self._error: BaseException | None = None
        self.partition = self.offset = -1
        self._done = False

    def done(self) -> bool:
        """Whether the delivery has ended, well or not."""
        return self._done

    def exception(self) -> BaseException | None:
        """Why it failed, once done; None if it succeeded (or is still pending)."""
        return self._error

    async def confirmed(self) -> None:
        """Return once Kafka has the message; raise why it never will (sent `awaited`)."""
        if self._waiter is None:
            raise RuntimeError("only a message sent with awaited=True can be awaited")
        await self._waiter
        if self._error is not None:
            raise self._error

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the worker's loop once the delivery has ended (sent `awaited`)."""
        if self._waiter is None:
            raise RuntimeError("only a message sent with awaited=True has a loop to call back on")
        self._waiter.add_done_callback(lambda _waiter: callback())

    def _report(self, error: Any, message: Message) -> None:
        if error is not None:
            self._fail(message.topic() or "?", KafkaException(error))
            return
        # A delivered message always has both.
        self.partition, self.offset = cast(int, message.partition()), cast(int, message.offset())
        self._end()

    def _fail(self, topic: str, error: KafkaException) -> None:
        log.error("delivery to %s failed: %s", topic, error)
        metrics.FAILED_DELIVERIES.labels(topic).inc()
        self._error = error
        self._end()

    def _end(self) -> None:
        self._done = True  # last: readers on other threads see the fields set first
        waiter = self._waiter
        if waiter is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)


def _wake(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_result(None)


_POLL_S = 0.1
_FULL_QUEUE_WAIT_S = 0.05


class Outbox:
    """An idempotent librdkafka producer whose delivery reports are served on a thread."""

    def __init__(self, config: ClientConfig) -> None:
        self._producer = Producer(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="agents-outbox", daemon=True)
        self._thread.start()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        awaited: bool = False,
    ) -> Delivered:
        """Queue one message; its key picks the partition unless `partition` is given.

        `awaited`: the caller, on the running loop, will await `Delivered.confirmed()`.
        """
        waiter = asyncio.get_running_loop().create_future() if awaited else None
        delivered = Delivered(waiter)
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        if headers:
            extra["headers"] = list(headers)
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=delivered._report, **extra)
            except BufferError:
                # librdkafka's queue is full: wait for it to drain (back-pressure).
                self._producer.poll(_FULL_QUEUE_WAIT_S)
            except KafkaException as exc:
                # Refused at once (an unknown partition, a message too large): a failed
                # delivery like any other, so callers handle one way of failing.
                delivered._fail(topic, exc)
                return delivered
            else:
                return delivered

    async def deliver(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Delivered:
        """Send one message and return once Kafka has it; raises if it never will."""
        delivered = self.send(topic, key, value, partition=partition, headers=headers, awaited=True)
        await delivered.confirmed()
        return delivered

    def close(self, timeout_s: float = 30.0) -> int:
        """Stop serving reports and flush; returns how many messages are still undelivered."""
        self._stop.set()
        self._thread.join()
        left = int(self._producer.flush(timeout_s))
        if left:
            log.error("%d message(s) were not delivered before the outbox closed", left)
        return left

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(_POLL_S)


class ChangelogStore:
    """Sets entries of a Faust table: the local store at once, the changelog via an `Outbox`.

    Does what `Table.__setitem__` does, returning the changelog delivery instead of
    leaving it to Faust: the agents commit a frame's offset only once its entry is in the
    changelog (`agents.progress`). Like Faust, it records in each partition's store the
    last changelog offset it holds, so a restart restores only what came after; here that
    happens every `checkpoint_every` entries rather than per message (a lag only makes a
    restart read a little more of the changelog).
    """

    def __init__(self, table: Any, outbox: Outbox, checkpoint_every: int = 256) -> None:
        self._table = table
        self._outbox = outbox
        self._topic: str = table.changelog_topic.get_topic_name()
        self._sent: deque[Delivered] = deque()
        self._checkpoint_every = checkpoint_every

    def __call__(self, key: bytes, raw: bytes) -> Delivered:
        """Write `raw` under `key`; the changelog delivery is returned, not awaited."""
        table = self._table
        table.data[key] = raw
        delivered = self._outbox.send(self._topic, key, raw, partition=table.partition_for_key(key))
        self._sent.append(delivered)
        if len(self._sent) >= self._checkpoint_every:
            self.checkpoint()
        return delivered

    def checkpoint(self) -> None:
        """Record the changelog offsets delivered so far in the table's store."""
        latest: dict[int, int] = {}
        sent = self._sent
        while sent and sent[0].done():
            delivered = sent.popleft()
            if delivered.exception() is None:
                partition = delivered.partition
                latest[partition] = max(delivered.offset, latest.get(partition, -1))
        for partition, offset in latest.items():
            self._table.data.set_persisted_offset(TP(self._topic, partition), offset)
