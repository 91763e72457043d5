"""DBN v3 records as numpy structured arrays, and their merge into one time-ordered stream.

The layouts come from databento_dbn's own record classes (`_dtypes`), so an array row is
byte for byte the record that `bytes(record)` would give: whole columns are filled at
once instead of building hundreds of thousands of Python objects.
"""

from dataclasses import dataclass
from typing import Any, Final

import databento_dbn as dbn
import numpy as np
import numpy.typing as npt

from producers.synth_instruments import SYNTH_PUBLISHER_ID, UNDEF_PRICE

I64 = npt.NDArray[np.int64]

MBP1_DTYPE: Final = np.dtype(dbn.MBP1Msg._dtypes)
TRADE_DTYPE: Final = np.dtype(dbn.TradeMsg._dtypes)
DEFINITION_DTYPE: Final = np.dtype(dbn.InstrumentDefMsg._dtypes)

F_LAST: Final = int(dbn.F_LAST)
EMPTY: Final = -1
"""A book side with no level, in tick units; written as UNDEF_PRICE with size 0."""


@dataclass(frozen=True)
class Batch:
    """Records of one layout, with a key that orders records sharing a ts_event."""

    records: npt.NDArray[Any]
    order: I64


def blank(dtype: np.dtype[Any], rtype: int, count: int) -> npt.NDArray[Any]:
    """`count` zeroed records of `dtype` with their header set."""
    records = np.zeros(count, dtype=dtype)
    records["length"] = dtype.itemsize // 4  # DBN counts record length in 4-byte words
    records["rtype"] = rtype
    records["publisher_id"] = SYNTH_PUBLISHER_ID
    return records


def capture_latency(rng: np.random.Generator, count: int) -> I64:
    """ts_recv - ts_event: one network path for every instrument, plus a few us of jitter."""
    # Common to all instruments so that keeping ts_recv ordered in the file (see
    # `serialise`) moves it by no more than the jitter.
    return 85_000 + rng.exponential(4_000.0, count).astype(np.int64)


def prices(ticks: I64, tick: int) -> I64:
    """Tick counts to 1e-9 prices, with EMPTY sides as UNDEF_PRICE."""
    return np.where(ticks == EMPTY, np.int64(UNDEF_PRICE), ticks * np.int64(tick))


def fill_book(records: npt.NDArray[Any], tick: int, book: dict[str, I64]) -> None:
    """Write top-of-book columns (tick units, EMPTY for a missing side) into MBP-1 records."""
    records["bid_px_00"] = prices(book["bid"], tick)
    records["ask_px_00"] = prices(book["ask"], tick)
    records["bid_sz_00"] = book["bid_sz"]
    records["ask_sz_00"] = book["ask_sz"]
    records["bid_ct_00"] = book["bid_ct"]
    records["ask_ct_00"] = book["ask_ct"]


def _concat(batches: list[Batch], dtype: np.dtype[Any]) -> Batch:
    """Join batches of one layout."""
    if not batches:
        return Batch(np.zeros(0, dtype=dtype), np.zeros(0, dtype=np.int64))
    return Batch(
        np.concatenate([b.records for b in batches]),
        np.concatenate([b.order for b in batches]),
    )


def _word_scatter(out: npt.NDArray[np.uint64], records: npt.NDArray[Any], at: I64) -> None:
    """Copy records into `out` (8-byte words) starting at word offsets `at`, in chunks."""
    words = records.dtype.itemsize // 8  # every DBN record length is a multiple of 8
    flat = records.view(np.uint64).reshape(-1, words)
    span = np.arange(words, dtype=np.int64)
    chunk = 1 << 18  # bounds the index array to a few tens of MB
    for lo in range(0, len(records), chunk):
        index = at[lo : lo + chunk, None] + span
        out[index] = flat[lo : lo + chunk]


def serialise(layouts: list[list[Batch]], dtypes: list[np.dtype[Any]]) -> bytes:
    """All records ordered by (ts_event, order key), with ts_recv made non-decreasing."""
    groups = [_concat(b, d) for b, d in zip(layouts, dtypes, strict=True)]
    ts_event = np.concatenate([g.records["ts_event"].astype(np.int64) for g in groups])
    order = np.concatenate([g.order for g in groups])
    sizes = np.concatenate(
        [np.full(len(g.records), d.itemsize // 8) for g, d in zip(groups, dtypes, strict=True)]
    )
    sequence = np.lexsort((order, ts_event))
    rank = np.empty_like(sequence)
    rank[sequence] = np.arange(len(sequence))
    # A capture clock never runs backwards: keep ts_recv non-decreasing in file order,
    # so the file is ordered by ts_recv as well as by ts_event.
    ts_recv = np.concatenate([g.records["ts_recv"].astype(np.int64) for g in groups])
    ts_recv_sorted = np.maximum.accumulate(ts_recv[sequence])
    sorted_sizes = sizes[sequence].astype(np.int64)
    offsets = (np.cumsum(sorted_sizes) - sorted_sizes)[rank]
    out = np.empty(int(sorted_sizes.sum()), dtype=np.uint64)
    start = 0
    for g in groups:
        stop = start + len(g.records)
        g.records["ts_recv"] = ts_recv_sorted[rank[start:stop]]
        _word_scatter(out, g.records, offsets[start:stop])
        start = stop
    return out.tobytes()
