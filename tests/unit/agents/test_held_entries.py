"""Entries held until their frames' outputs are delivered: newest per key, never older."""

from collections.abc import Callable

import pytest

from agents.held_entries import HeldEntries


class Output:
    """An output whose delivery the test ends (the outbox's `Delivered`, without Kafka)."""

    def __init__(self) -> None:
        self._done = False
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []

    def done(self) -> bool:
        return self._done

    def exception(self) -> BaseException | None:
        return self._error

    def when_done(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def end(self, error: BaseException | None = None) -> None:
        self._done, self._error = True, error
        for callback in self._callbacks:
            callback()


class Stored:
    """A changelog delivery that is done at once."""

    def done(self) -> bool:
        return True

    def exception(self) -> BaseException | None:
        return None


class Table:
    def __init__(self) -> None:
        self.writes: list[tuple[bytes, bytes]] = []

    def store(self, key: bytes, entry: bytes) -> Stored:
        self.writes.append((key, entry))
        return Stored()


def test_a_frame_without_outputs_is_stored_at_once() -> None:
    table = Table()
    held = HeldEntries(table.store)  # type: ignore[arg-type]
    delivery = held.put(b"ES", b"e1", [])
    assert table.writes == [(b"ES", b"e1")]
    assert delivery.done()
    assert held.waiting == 0


def test_the_newest_entry_is_stored_once_every_output_it_covers_is_delivered() -> None:
    table = Table()
    held = HeldEntries(table.store)  # type: ignore[arg-type]
    first, second = Output(), Output()
    d1 = held.put(b"ES", b"e1", [first])  # type: ignore[list-item]
    d2 = held.put(b"ES", b"e2", [])  # no output, but behind e1: it waits too
    d3 = held.put(b"ES", b"e3", [second])  # type: ignore[list-item]
    other = held.put(b"NQ", b"n1", [])
    assert table.writes == [(b"NQ", b"n1")]
    assert other.done()
    assert [d.done() for d in (d1, d2, d3)] == [False, False, False]
    first.end()
    assert table.writes == [(b"NQ", b"n1")]  # e3's output is not delivered yet
    second.end()
    assert table.writes == [(b"NQ", b"n1"), (b"ES", b"e3")]  # e1 and e2 never written
    assert [d.done() for d in (d1, d2, d3)] == [True, True, True]
    assert held.waiting == 0


def test_a_failed_output_fails_its_frames_and_the_next_put() -> None:
    table = Table()
    held = HeldEntries(table.store)  # type: ignore[arg-type]
    output = Output()
    delivery = held.put(b"ES", b"e1", [output])  # type: ignore[list-item]
    output.end(RuntimeError("broker said no"))
    assert table.writes == []
    assert delivery.done()
    assert isinstance(delivery.exception(), RuntimeError)  # the offset is never committed
    with pytest.raises(RuntimeError, match="broker said no"):
        held.put(b"NQ", b"n1", [])


def test_what_waits_is_forgotten_at_a_rebalance() -> None:
    table = Table()
    held = HeldEntries(table.store)  # type: ignore[arg-type]
    output = Output()
    delivery = held.put(b"ES", b"e1", [output])  # type: ignore[list-item]
    held.forget()
    output.end()
    assert table.writes == []  # the next owner absorbs the frame again
    assert not delivery.done()
    assert held.put(b"ES", b"e2", []).done()
    assert table.writes == [(b"ES", b"e2")]
