"""Table entries held back until the outputs of the frames they absorbed are in Kafka.

A frame's entry says "absorbed up to here": once stored, a replay of the frame is skipped.
So it may be stored only when the bars, indicators and signals the frame made are in
Kafka, or a crash in between would lose them. Waiting for that on the stream (a Kafka round
trip for every frame with an output, one after the other) held every later frame of the
partition behind it; instead the stream goes on and the entry waits here. The worker reads
its own newest entries from memory, so later frames of the same key build on the newest
state while it waits; the table gets, per key, the newest entry once every output of every
frame it covers is acknowledged (an older entry is never written after a newer one). Each
frame's `Delivery` (what `Progress` holds its offset commit on) ends once that entry's
changelog message is delivered, so an offset is committed only past frames whose outputs
and state are both in Kafka, as before.

A failed output is kept and raised by the next `put` (the worker stops, as it did when it
awaited the output); its frames' deliveries fail, so their offsets are never committed. A
rebalance `forget`s what waits: the frames' offsets were not committed, so whoever owns the
partition next absorbs them again from the table's older entry, making the same outputs
with the same ids (which consumers drop as duplicates).
"""

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from faust.streams import current_event

from agents.outbox import Delivered
from agents.progress import Delivery


class _Later:
    """A frame's delivery, known once its key's entry is stored: that store's delivery."""

    __slots__ = ("_error", "_store")

    def __init__(self) -> None:
        self._store: Delivery | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._error is not None or (self._store is not None and self._store.done())

    def exception(self) -> BaseException | None:
        if self._error is not None:
            return self._error
        return None if self._store is None else self._store.exception()


@dataclass
class _Waiting:
    entry: bytes
    context: contextvars.Context
    """The newest frame's: Faust's table finds an entry's partition from the event being
    processed (a context variable holding a weak reference to it)."""
    event: object
    """That event, kept alive until the entry is written."""
    outputs: list[Delivered] = field(default_factory=list)
    frames: list[_Later] = field(default_factory=list)


class HeldEntries:
    """Stores entries through `store` once their frames' outputs are delivered (module
    docstring); every method runs on the worker's event loop."""

    def __init__(self, store: Callable[[bytes, bytes], Delivery]) -> None:
        self._store = store
        self._waiting: dict[bytes, _Waiting] = {}
        self._failed: BaseException | None = None

    def put(self, key: bytes, entry: bytes, outputs: list[Delivered]) -> Delivery:
        """A frame's new entry for `key` and the outputs it sent (with `awaited=True`); the
        delivery its offset commit waits on. A key with nothing waiting and a frame with no
        output is stored at once."""
        if self._failed is not None:
            raise self._failed
        waiting = self._waiting.get(key)
        pending = [d for d in outputs if not d.done()]
        if waiting is None and not pending and not any(d.exception() for d in outputs):
            return self._store(key, entry)
        context, event = contextvars.copy_context(), current_event()
        if waiting is None:
            waiting = self._waiting[key] = _Waiting(entry, context, event)
        waiting.entry, waiting.context, waiting.event = entry, context, event
        waiting.outputs += outputs
        later = _Later()
        waiting.frames.append(later)
        for delivered in pending:
            delivered.when_done(partial(self._settle, key, waiting))
        self._settle(key, waiting)
        return later

    def _settle(self, key: bytes, waiting: _Waiting) -> None:
        if self._waiting.get(key) is not waiting or not all(d.done() for d in waiting.outputs):
            return
        del self._waiting[key]
        error = next((d.exception() for d in waiting.outputs if d.exception()), None)
        if error is not None:
            self._failed = self._failed or error
            for frame in waiting.frames:
                frame._error = error
            return
        stored = waiting.context.run(self._store, key, waiting.entry)
        for frame in waiting.frames:
            frame._store = stored

    def forget(self) -> None:
        """Drop what waits (a rebalance: the next owner absorbs those frames again)."""
        self._waiting.clear()

    @property
    def waiting(self) -> int:
        """Keys whose newest entry waits for outputs."""
        return len(self._waiting)
