"""Reading md.* partitions beside Faust: where an assignment starts, and frames it skipped.

A plain aiokafka consumer that never joins the group: it asks the group's committed
offset of a partition (where `agents.progress` starts counting) and reads an offset range
the agent was not given, so the worker can absorb it before going on.
"""

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]

READ_TIMEOUT_S = 60.0


class RefetchError(RuntimeError):
    """A range of a partition could not be read back from Kafka."""


class PartitionReader:
    """Side consumer of one worker; started on first use, one request at a time."""

    def __init__(
        self,
        servers: list[str],
        group_id: str,
        client_id: str,
        *,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self._servers = servers
        self._security = dict(security or {})
        self._group_id = group_id
        self._client_id = client_id
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def _started(self) -> Any:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._servers,
                group_id=self._group_id,  # to read the group's commits; it never subscribes
                client_id=f"{self._client_id}-refetch",
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

    async def close(self) -> None:
        """Stop the side consumer, if it was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
