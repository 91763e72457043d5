"""Top-of-book and trade simulation for one underlying: MBP-1 and trades records.

The book is a small state machine (best bid and ask, their sizes and order counts) driven
by Poisson events. Each event changes the book the way an exchange feed reports it: an
order joins or leaves the touch, a better level appears (action A), the touch empties and
the next level shows (C), an order shrinks (M), or a trade (T) prints at the touch and
eats resting size. Spreads stay within 1-3 ticks and the mid wanders on the tick grid.
"""

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from producers.synth_instruments import Underlying
from producers.synth_records import (
    EMPTY,
    F_LAST,
    I64,
    MBP1_DTYPE,
    TRADE_DTYPE,
    Batch,
    blank,
    capture_latency,
    fill_book,
)

_SIDE: Final = (ord("B"), ord("A"))  # book side of index 0 (bid) and 1 (ask)
_INWARD: Final = (1, -1)  # tick step that moves a side toward the other one
_ADD, _CANCEL, _MODIFY, _TRADE = ord("A"), ord("C"), ord("M"), ord("T")
_TRADES_COPY: Final = 1  # row action of a trade's trades-schema copy (written as "T")
_MAX_SPREAD: Final = 3
_OPEN_DELAY_NS: Final = 1_000_000  # the opening book follows the definitions by 1 ms

# Columns of a simulated row: event index, position within the event, the record's own
# fields, and the book after it (ticks).
E, K, ACTION, SIDE, PRICE, SIZE, FLAGS, BID, ASK, BID_SZ, ASK_SZ, BID_CT, ASK_CT = range(13)


@dataclass(frozen=True)
class BookOutput:
    """What one underlying produced: its MBP-1 and trades records, and its mid path."""

    mbp1: Batch
    trades: Batch
    mid_ts: I64  # ts_event of each event's last record
    mid: npt.NDArray[np.float64]  # the mid after that event, in price units of 1.0


class _Book:
    """Best bid/ask state that records each change as a row."""

    def __init__(self, u: Underlying) -> None:
        """An empty book for `u`."""
        self.px = [EMPTY, EMPTY]
        self.sz = [0, 0]
        self.ct = [0, 0]
        self.lot = u.lot
        self.p_in = 0.25 + u.tightness
        self.p_out = 0.25 - u.tightness
        self.rows: list[tuple[int, ...]] = []
        self.event = 0
        self.k = 0

    def emit(self, action: int, side: int, price: int, size: int, flags: int) -> None:
        """Record one change, with the book as it stands after it."""
        px, sz, ct = self.px, self.sz, self.ct
        row = (self.event, self.k, action, side, price, size, flags, px[0], px[1], sz[0], sz[1])
        self.rows.append((*row, ct[0], ct[1]))
        self.k += 1

    def level(self, s: int, price: int, size: int) -> None:
        """Make `price` the touch on side `s` with `size` resting."""
        self.px[s] = price
        self.sz[s] = size
        self.ct[s] = 1 + (size - 1) // self.lot

    def open(self, bid: int, bid_sz: int, ask_sz: int) -> None:
        """The opening book: bid then ask, one tick apart."""
        self.level(0, bid, bid_sz)
        self.emit(_ADD, _SIDE[0], bid, bid_sz, 0)
        self.level(1, bid + 1, ask_sz)
        self.emit(_ADD, _SIDE[1], bid + 1, ask_sz, F_LAST)

    def book_event(self, u: float, v: float, s: int, qty: int, fresh: int) -> None:
        """A quote event on side `s`: improve, retreat or resize, by `u` against the odds."""
        spread = self.px[1] - self.px[0]
        if u < self.p_in and spread > 1:
            self.improve(s, qty, F_LAST)
        elif self.p_in <= u < self.p_in + self.p_out and spread < _MAX_SPREAD and self.px[0] > 1:
            self.retreat(s, fresh)
        elif v < 0.5 or self.sz[s] <= 1:
            self.sz[s] += qty
            self.ct[s] += 1
            self.emit(_ADD, _SIDE[s], self.px[s], qty, F_LAST)
        else:
            self.shrink(s, qty, v)

    def improve(self, s: int, qty: int, flags: int) -> None:
        """A new order one tick inside the spread becomes the touch."""
        self.level(s, self.px[s] + _INWARD[s], qty)
        self.ct[s] = 1
        self.emit(_ADD, _SIDE[s], self.px[s], qty, flags)

    def retreat(self, s: int, fresh: int) -> None:
        """The touch is cancelled away; the next level, one tick out, shows."""
        old_px, old_sz = self.px[s], self.sz[s]
        self.level(s, old_px - _INWARD[s], fresh)
        self.emit(_CANCEL, _SIDE[s], old_px, old_sz, F_LAST)

    def shrink(self, s: int, qty: int, v: float) -> None:
        """Resting size at the touch falls: an order cancelled (C) or reduced (M)."""
        cut = min(qty, self.sz[s] - 1)
        self.sz[s] -= cut
        cancel = v < 0.8 and self.ct[s] > 1
        self.ct[s] = min(self.ct[s] - (1 if cancel else 0), self.sz[s])
        self.emit(_CANCEL if cancel else _MODIFY, _SIDE[s], self.px[s], cut, F_LAST)

    def trade(self, s: int, qty: int, fresh: int, follow_qty: int) -> None:
        """An aggressor takes resting size on side `s`; a swept touch moves the price."""
        price, aggressor = self.px[s], _SIDE[1 - s]
        filled = min(qty, self.sz[s])
        # DBN carries the trade in both schemas with the same fields and sequence; the
        # packet goes on with the book change, so neither copy is the packet's last.
        self.emit(_TRADES_COPY, aggressor, price, filled, 0)
        self.emit(_TRADE, aggressor, price, filled, 0)
        if filled < self.sz[s]:
            self.sz[s] -= filled
            self.ct[s] = max(1, min(self.ct[s] - filled // self.lot, self.sz[s]))
            self.emit(_CANCEL, _SIDE[s], price, filled, F_LAST)
            return
        self.level(s, price - _INWARD[s], fresh)
        follow = self.px[1] - self.px[0] > _MAX_SPREAD
        self.emit(_CANCEL, _SIDE[s], price, filled, 0 if follow else F_LAST)
        if follow:  # the other side chases the move, keeping the spread within bounds
            self.improve(1 - s, follow_qty, F_LAST)


def _simulate(u: Underlying, rng: np.random.Generator, times: I64) -> I64:
    """Run the book over events at `times` (the first one opens it); rows as an array."""
    n = len(times)
    kind = rng.random(n).tolist()
    pick = rng.random(n).tolist()
    side = rng.integers(0, 2, n).tolist()
    qty = rng.geometric(1.0 / u.lot, n).tolist()
    traded = np.minimum(rng.zipf(1.9, n), 500).tolist()
    fresh = np.maximum(1, np.rint(u.depth * rng.lognormal(0.0, 0.6, n))).astype(int).tolist()
    book = _Book(u)
    book.open(u.open_ticks, fresh[0], qty[0] + u.lot)
    for e in range(1, n):
        book.event, book.k = e, 0
        if kind[e] < u.trade_share:
            book.trade(side[e], traded[e], fresh[e], qty[e])
        else:
            book.book_event(
                (kind[e] - u.trade_share) / (1.0 - u.trade_share),
                pick[e],
                side[e],
                qty[e],
                fresh[e],
            )
    return np.array(book.rows, dtype=np.int64)


def _event_times(u: Underlying, rng: np.random.Generator, start_ns: int, end_ns: int) -> I64:
    """Poisson event times in (start, end), after an opening event."""
    # Books open a little apart, as each instrument's first update reaches the feed.
    opening = start_ns + _OPEN_DELAY_NS + int(rng.integers(0, _OPEN_DELAY_NS))
    count = int(rng.poisson(u.event_rate * (end_ns - opening) / 1e9))
    times = np.sort(rng.integers(opening + 1, end_ns, count, dtype=np.int64))
    return np.concatenate([np.array([opening], dtype=np.int64), times])


def _timestamps(rng: np.random.Generator, rows: I64, times: I64) -> tuple[I64, I64, I64]:
    """ts_event, ts_recv and ts_in_delta per row: capture trails the event by ~90 us."""
    latency = capture_latency(rng, len(times))
    ts_event = times[rows[:, E]]
    stagger = rows[:, K] * rng.integers(2_000, 9_000, len(rows))
    ts_in_delta = rng.integers(10_000, 20_000, len(rows))
    return ts_event, ts_event + latency[rows[:, E]] + stagger, ts_in_delta


def _fill(records: npt.NDArray[np.void], u: Underlying, rows: I64, stamps: tuple[I64, ...]) -> None:
    """Fields shared by MBP-1 and trades records."""
    records["instrument_id"] = u.instrument_id
    for field, values in zip(("ts_event", "ts_recv", "ts_in_delta"), stamps, strict=True):
        records[field] = values
    records["price"] = rows[:, PRICE] * u.tick
    records["size"] = rows[:, SIZE]
    records["action"] = rows[:, ACTION].astype(np.uint8).view("S1")
    records["side"] = rows[:, SIDE].astype(np.uint8).view("S1")
    records["flags"] = rows[:, FLAGS]


def simulate_underlying(
    u: Underlying, seed: int, start_ns: int, end_ns: int, order_base: int
) -> BookOutput:
    """All MBP-1 and trades records of `u` between start and end."""
    rng = np.random.default_rng([seed, u.index, 1])
    times = _event_times(u, rng, start_ns, end_ns)
    rows = _simulate(u, rng, times)
    stamps = _timestamps(rng, rows, times)
    is_trade = rows[:, ACTION] == _TRADES_COPY
    rows[is_trade, ACTION] = _TRADE
    # Sequence numbers run per instrument over the MBP-1 stream; a trades record carries
    # the sequence of the MBP-1 trade record that follows it, as Databento's do.
    mbp_index = np.cumsum(~is_trade) - 1
    first_sequence = int(rng.integers(1_000_000, 9_000_000))
    sequence = first_sequence + np.where(is_trade, mbp_index + 1, mbp_index)
    order = order_base + np.arange(len(rows), dtype=np.int64)
    out: list[Batch] = []
    for mask, dtype, rtype in ((~is_trade, MBP1_DTYPE, 1), (is_trade, TRADE_DTYPE, 0)):
        records = blank(dtype, rtype, int(mask.sum()))
        _fill(records, u, rows[mask], tuple(s[mask] for s in stamps))
        records["sequence"] = sequence[mask]
        out.append(Batch(records, order[mask]))
    book_rows = rows[~is_trade]
    fill_book(out[0].records, u.tick, _book_columns(book_rows))
    last = (rows[:, FLAGS] & F_LAST) != 0
    mid = (rows[last, BID] + rows[last, ASK]) * (u.tick / 2e9)
    return BookOutput(out[0], out[1], stamps[0][last], mid)


def _book_columns(rows: I64) -> dict[str, I64]:
    """The book columns of simulated rows by name."""
    names = ("bid", "ask", "bid_sz", "ask_sz", "bid_ct", "ask_ct")
    return {n: rows[:, c] for n, c in zip(names, range(BID, ASK_CT + 1), strict=True)}
