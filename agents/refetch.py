"""Reading partitions beside Faust: where an assignment starts, frames it skipped, history.

A plain aiokafka consumer that never joins the group: it asks the group's committed
offset of a partition (where `agents.progress` starts counting), reads an offset range
the agent was not given, so the worker can absorb it before going on, and scans the
bars.* and md.* history a warm-up needs (`agents.warmup`).
"""

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]

READ_TIMEOUT_S = 60.0
SCAN_STALL_S = 60.0
"""A scan fails when this long passes without one record arriving."""


class RefetchError(RuntimeError):
    """A range of a partition could not be read back from Kafka."""


class PartitionReader:
    """Side consumer of one worker; started on first use, one request at a time."""

    def __init__(
        self,
        servers: list[str],
        group_id: str | None,
        client_id: str,
        *,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self._servers = servers
        self._security = dict(security or {})
        self._group_id = group_id
        self._client_id = f"{client_id}-{'refetch' if group_id else 'history'}"
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def _started(self) -> Any:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._servers,
                # To read the group's commits (None: a reader of history only); it never
                # subscribes.
                group_id=self._group_id,
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=10,
                **self._security,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def start_offset(self, topic: str, partition: int) -> int:
        """The group's committed offset of a partition, or its first offset if none."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(topic, partition)
            committed = await consumer.committed(tp)
            if committed is not None and committed >= 0:
                return int(committed)
            beginning = await consumer.beginning_offsets([tp])
            return int(beginning[tp])

    async def read(self, topic: str, partition: int, start: int, stop: int) -> list[Any]:
        """The records with offsets in [start, stop), in order (aiokafka ConsumerRecords)."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            records: list[Any] = []
            deadline = time.monotonic() + READ_TIMEOUT_S
            while await consumer.position(tp) < stop:
                if time.monotonic() > deadline:
                    raise RefetchError(
                        f"{topic}[{partition}]: could not read offsets {start}..{stop - 1} "
                        f"within {READ_TIMEOUT_S:.0f} s"
                    )
                batch = await consumer.getmany(tp, timeout_ms=200)
                records += [r for r in batch.get(tp, ()) if start <= r.offset < stop]
            consumer.assign([])
            return records

    async def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (0: it does not exist)."""
        async with self._lock:
            consumer = await self._started()
            await consumer.topics()  # refreshes the metadata the next call reads
            return len(consumer.partitions_for_topic(topic) or ())

    async def start_at(self, topic: str, partition: int, since_ms: int) -> int | None:
        """The first offset whose message time is at or after `since_ms` (None: none is)."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(topic, partition)
            found = (await consumer.offsets_for_times({tp: since_ms}))[tp]
            # tansu answers "none" as offset 0 with timestamp -1.
            return None if found is None or found.timestamp < 0 else int(found.offset)

    async def scan(
        self,
        topic: str,
        partition: int,
        start: int,
        stop: int | None,
        visit: Callable[[list[Any]], None],
    ) -> int:
        """Hand the records with offsets in [start, stop) to `visit`, a batch at a time, in
        order, never holding the range in memory; `stop` None: to the partition's end, as
        fetch responses give it (tansu's ListOffsets reports the last batch's start + 1).
        Returns the offset it read up to."""
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            try:
                consumer.seek(tp, start)
                stalled = time.monotonic() + SCAN_STALL_S
                while True:
                    fetched = (await consumer.getmany(tp, timeout_ms=200)).get(tp, ())
                    end = consumer.highwater(tp) if stop is None else stop
                    limit = end if end is not None else 2**63
                    batch = [r for r in fetched if start <= r.offset < limit]
                    if batch:
                        visit(batch)
                        stalled = time.monotonic() + SCAN_STALL_S
                    position = await consumer.position(tp)
                    if end is not None and position >= end:
                        return max(int(end), start)
                    if not batch and time.monotonic() > stalled:
                        raise RefetchError(
                            f"{topic}[{partition}]: reading from offset {start} stalled for "
                            f"{SCAN_STALL_S:.0f} s"
                        )
            finally:
                consumer.assign([])

    async def close(self) -> None:
        """Stop the side consumer, if it was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
