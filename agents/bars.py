"""Time bars built incrementally from trades.

Bars (``ticklane.market.Bar``) align to multiples of ``interval_ns`` since the
Unix epoch, so a bar covers ``[ts_event, ts_event + interval_ns)`` and a trade
exactly on a boundary opens the next bar. Prices are integers in units of 1e-9 and times integer
nanoseconds, as Databento sends them; no float is used anywhere here.

Policies:

* Empty intervals emit nothing: a bar exists only for an interval that had at
  least one trade (as Databento's own OHLCV schemas do). A strategy that needs
  a regular grid sees the gap as the difference between ``ts_event`` values.
* A bar completes when a trade of a later interval arrives, or when
  ``flush(now)`` says time has reached the end of the bar.
* A trade older than the open bar's start (or, with no bar open, older than
  the start of the interval last reached) is late: it is counted in
  ``late_ticks`` and dropped, so a completed bar is never reopened or changed.
  A trade out of order but inside the open bar is absorbed: ``open`` is the
  price of the earliest-stamped trade and ``close`` of the latest-stamped
  (ties go to the later arrival), so the bar is the same in any arrival order.
* Trades with the undefined price (``2**63 - 1``) or a size of 0 or less are
  counted in ``ignored_ticks`` and otherwise ignored.
* ``vwap`` is ``sum(price * size) / volume`` in exact integer arithmetic,
  rounded half to even to a 1e-9 price.
"""

from collections.abc import Sequence
from typing import Self

import msgspec

from ticklane.market import Bar
from ticklane.units import UNDEF_PRICE

_MIN_TS = -(2**63)
_LO_BITS = 62
_LO_MASK = (1 << _LO_BITS) - 1


class BarState(msgspec.Struct, frozen=True, gc=False):
    """Serialisable snapshot of a `BarBuilder`, every field fitting a signed 64-bit integer."""

    interval_ns: int
    watermark: int
    late_ticks: int
    ignored_ticks: int
    trade_count: int
    ts_open: int
    open: int
    high: int
    low: int
    close: int
    open_ts: int
    close_ts: int
    volume: int
    # sum(price * size) outgrows 64 bits (msgpack's limit) within a busy bar, so it is split.
    notional_hi: int
    notional_lo: int


def vwap_half_even(notional: int, volume: int) -> int:
    """Return ``notional / volume`` rounded half to even, exactly."""
    q, r = divmod(notional, volume)
    twice = 2 * r
    if twice > volume or (twice == volume and q & 1):
        q += 1
    return q


class BarBuilder:
    """Aggregates one symbol's trades into time bars of ``interval_ns``."""

    __slots__ = (
        "_close",
        "_close_ts",
        "_count",
        "_end",
        "_high",
        "_low",
        "_notional",
        "_open",
        "_open_ts",
        "_start",
        "_volume",
        "_watermark",
        "ignored_ticks",
        "interval_ns",
        "late_ticks",
    )

    def __init__(self, interval_ns: int) -> None:
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be positive, got {interval_ns}")
        self.interval_ns = interval_ns
        self.late_ticks = 0
        self.ignored_ticks = 0
        self._watermark = _MIN_TS
        self._count = 0
        self._start = self._end = 0
        self._open = self._high = self._low = self._close = 0
        self._open_ts = self._close_ts = 0
        self._volume = self._notional = 0

    @property
    def has_open_bar(self) -> bool:
        """Whether a bar is open (has at least one trade and is not yet emitted)."""
        return self._count > 0

    def add(self, ts_event: int, price: int, size: int) -> list[Bar]:
        """Absorb one trade; return the bars it completed (zero or one)."""
        if price == UNDEF_PRICE or size <= 0:
            self.ignored_ticks += 1
            return []
        if ts_event < self._watermark:
            self.late_ticks += 1
            return []
        if self._count:
            if ts_event < self._end:
                self._count += 1
                self._volume += size
                self._notional += price * size
                if price > self._high:
                    self._high = price
                elif price < self._low:
                    self._low = price
                if ts_event >= self._close_ts:
                    self._close = price
                    self._close_ts = ts_event
                elif ts_event < self._open_ts:
                    self._open = price
                    self._open_ts = ts_event
                return []
            done = [self._emit()]
        else:
            done = []
        self._open_bar(ts_event, price, size)
        return done

    def add_many(self, ts: Sequence[int], px: Sequence[int], sz: Sequence[int]) -> list[Bar]:
        """Absorb trades given as parallel sequences; return the bars they completed."""
        if not len(ts) == len(px) == len(sz):
            raise ValueError("ts, px and sz must have the same length")
        add = self.add
        out: list[Bar] = []
        for t, p, s in zip(ts, px, sz, strict=True):
            done = add(t, p, s)
            if done:
                out += done
        return out

    def flush(self, up_to_ts: int) -> list[Bar]:
        """Declare that time has reached ``up_to_ts``; return the bar this completes, if any."""
        reached = up_to_ts - up_to_ts % self.interval_ns
        done = [self._emit()] if self._count and self._end <= up_to_ts else []
        self._watermark = max(self._watermark, reached)
        return done

    def _open_bar(self, ts_event: int, price: int, size: int) -> None:
        start = ts_event - ts_event % self.interval_ns
        self._watermark = self._start = start
        self._end = start + self.interval_ns
        self._count = 1
        self._open = self._high = self._low = self._close = price
        self._open_ts = self._close_ts = ts_event
        self._volume = size
        self._notional = price * size

    def _emit(self) -> Bar:
        bar = Bar(
            ts_event=self._start,
            interval_ns=self.interval_ns,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
            vwap=vwap_half_even(self._notional, self._volume),
            trade_count=self._count,
        )
        # The watermark moves past this bar where the caller opens the next one or flushes.
        self._count = 0
        return bar

    def to_state(self) -> BarState:
        """Snapshot the builder as a serialisable value."""
        return BarState(
            interval_ns=self.interval_ns,
            watermark=self._watermark,
            late_ticks=self.late_ticks,
            ignored_ticks=self.ignored_ticks,
            trade_count=self._count,
            ts_open=self._start,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            open_ts=self._open_ts,
            close_ts=self._close_ts,
            volume=self._volume,
            notional_hi=self._notional >> _LO_BITS,
            notional_lo=self._notional & _LO_MASK,
        )

    @classmethod
    def from_state(cls, state: BarState) -> Self:
        """Rebuild a builder from a `to_state` snapshot."""
        b = cls(state.interval_ns)
        b._watermark = state.watermark
        b.late_ticks = state.late_ticks
        b.ignored_ticks = state.ignored_ticks
        b._count = state.trade_count
        b._start = state.ts_open
        b._end = state.ts_open + state.interval_ns
        b._open, b._high, b._low, b._close = state.open, state.high, state.low, state.close
        b._open_ts, b._close_ts = state.open_ts, state.close_ts
        b._volume = state.volume
        b._notional = (state.notional_hi << _LO_BITS) + state.notional_lo
        return b
