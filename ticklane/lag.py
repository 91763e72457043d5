"""Consumer lag as a Prometheus gauge: how many messages of each topic a process has yet to
handle, summed over the partitions it reads.

Each process knows its own read positions and the partitions' ends as its consumer last saw
them (from fetch answers, no extra request), so the gauge is exact for what this process
reads and costs nothing to keep; an operator who runs a Kafka exporter gets the same figure
per group from outside.
"""

import time
from collections.abc import Callable, Iterable

from prometheus_client import Gauge


class LagGauge:
    """Sets `gauge{topic}` from (topic, messages behind) pairs at most every `every_s`."""

    def __init__(
        self,
        gauge: Gauge,
        every_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gauge = gauge
        self._every_s = every_s
        self._clock = clock
        self._next = 0.0
        self._topics: set[str] = set()

    def due(self) -> bool:
        """Whether it is time to measure again (so callers skip the work otherwise)."""
        return self._clock() >= self._next

    def set(self, lags: Iterable[tuple[str, int]]) -> None:
        """Sum the partitions' lags per topic; a topic no longer read shows 0, not its past."""
        totals: dict[str, int] = dict.fromkeys(self._topics, 0)
        for topic, lag in lags:
            totals[topic] = totals.get(topic, 0) + max(0, lag)
        for topic, total in totals.items():
            self._gauge.labels(topic).set(total)
        self._topics = set(totals)
        self._next = self._clock() + self._every_s
