"""The worker's consumer hands a fetched batch to the streams under one race against a
rebalance (`agents.app._Consumer._deliver`), and keeps Faust's per-message checks: a batch
stops where the flow stopped, where the generation changed, or where a commit is due, and
messages before the read offset are not delivered again."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from faust.types import TP
from faust.types.tuples import Message

from agents.app import make_app
from ticklane.settings import Settings

TOPIC = "md.trades"
PARTITION = TP(TOPIC, 0)


def _batch(first: int, count: int) -> list[tuple[TP, Message]]:
    return [
        (PARTITION, Message(TOPIC, 0, offset, 0.0, 0, {}, b"S", b"v", None))
        for offset in range(first, first + count)
    ]


def _deliver(
    tmp_path: Path,
    batch: list[tuple[TP, Message]],
    on_message: Callable[[Any, Message], None] = lambda consumer, message: None,
    *,
    read_offset: int | None = None,
    commit_every: int | None = None,
) -> tuple[int, list[int], int | None]:
    """How many of `batch` `_deliver` handled, the offsets the streams were handed, and the
    read offset after; `on_message(consumer, message)` runs as each is handed over."""
    app = make_app(Settings(data_dir=tmp_path), "127.0.0.1:9", tmp_path / "state")
    handed: list[int] = []

    async def run() -> tuple[int, int | None]:
        consumer: Any = app.consumer
        consumer._read_offset[PARTITION] = read_offset
        consumer._commit_every = commit_every

        async def callback(message: Message) -> None:
            handed.append(message.offset)
            on_message(consumer, message)

        consumer.callback = callback
        deliver: Callable[..., Awaitable[int]] = consumer._deliver
        count = await deliver(batch, app.consumer_generation_id)
        return count, consumer._read_offset[PARTITION]

    count, after = asyncio.run(run())
    return count, handed, after


def test_a_whole_batch_is_handed_over_in_order(tmp_path: Path) -> None:
    count, handed, after = _deliver(tmp_path, _batch(10, 250))
    assert count == 250
    assert handed == list(range(10, 260))
    assert after == 259


def test_a_rebalance_stopping_the_flow_stops_the_batch_where_it_is(tmp_path: Path) -> None:
    def stop_at_12(consumer: Any, message: Message) -> None:
        if message.offset == 12:
            consumer.stop_flow()  # what Faust does when partitions are revoked

    count, handed, after = _deliver(tmp_path, _batch(10, 250), stop_at_12)
    # The rest is the caller's to drop: the consumer is sought to the committed offsets
    # before the flow resumes, so it is fetched again.
    assert count == 3
    assert handed == [10, 11, 12]
    assert after == 12


def test_a_new_generation_stops_the_batch_fetched_in_the_old_one(tmp_path: Path) -> None:
    def rebalance_at_11(consumer: Any, message: Message) -> None:
        if message.offset == 11:
            consumer.app.consumer_generation_id += 1

    count, handed, _ = _deliver(tmp_path, _batch(10, 50), rebalance_at_11)
    assert (count, handed) == (2, [10, 11])


def test_a_commit_that_is_due_stops_the_batch_for_it(tmp_path: Path) -> None:
    def acked(consumer: Any, message: Message) -> None:
        consumer._n_acked += 1  # as the streams' acknowledgements count

    count, handed, _ = _deliver(tmp_path, _batch(0, 10), acked, commit_every=4)
    assert (count, handed) == (4, [0, 1, 2, 3])


def test_messages_before_the_read_offset_are_not_handed_over_again(tmp_path: Path) -> None:
    count, handed, after = _deliver(tmp_path, _batch(0, 10), read_offset=6)
    assert count == 10
    assert handed == [6, 7, 8, 9]
    assert after == 9
