"""Live reconnects without loss or duplicates: replay from before the last record, drop the overlap.

Pure logic. A live feed is ordered by receive time, so event times may be slightly out of
order across instruments. After a disconnect the producer asks the gateway to replay from
`window_ns` before the newest ts_event it produced, and drops every replayed record it
already produced: the same bytes (instrument, ts_event, sequence and content) counted as a
multiset, so two identical records in the feed are still both kept.
"""

from collections import Counter, deque
from collections.abc import Iterable
from typing import Final

from ticklane.dbn import ts_event

DEFAULT_WINDOW_NS: Final = 2_000_000_000


class ReplayDedupe:
    """Remembers recent records; after a reconnect, admits only what was not produced."""

    def __init__(self, window_ns: int = DEFAULT_WINDOW_NS) -> None:
        if window_ns < 0:
            raise ValueError(f"window must not be negative, got {window_ns}")
        self._window_ns = window_ns
        self._recent: deque[tuple[int, bytes]] = deque()
        self._max_ts: int | None = None
        self._overlap: Counter[bytes] = Counter()
        self.dropped = 0

    def seed(self, records: Iterable[bytes]) -> None:
        """Records already in Kafka (read back at start), oldest first."""
        for record in records:
            self._remember(record)

    def resume_from(self) -> int | None:
        """Where replay must start to cover everything possibly missed (None: nothing seen)."""
        if self._max_ts is None:
            return None
        return max(0, self._max_ts - self._window_ns)

    def begin_replay(self) -> None:
        """A new session starts replaying from `resume_from()`: expect the overlap again."""
        start = self.resume_from()
        self._overlap = Counter(r for ts, r in self._recent if start is not None and ts >= start)

    def admit(self, record: bytes) -> bool:
        """True if the record is new and must be produced; False for a replayed duplicate."""
        if self._overlap:
            left = self._overlap.get(record, 0)
            if left:
                if left == 1:
                    del self._overlap[record]
                else:
                    self._overlap[record] = left - 1
                self.dropped += 1
                return False
        self._remember(record)
        return True

    def _remember(self, record: bytes) -> None:
        ts = ts_event(record)
        if self._max_ts is None or ts > self._max_ts:
            self._max_ts = ts
        self._recent.append((ts, record))
        horizon = self._max_ts - self._window_ns
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
