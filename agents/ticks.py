"""The records of a market-data frame as the engines take them: trade columns, bars, and
(for chain strategies) batches of ticks.

Shared by the agents and the backtest, so both read a frame the same way.
"""

import itertools
from typing import Any, Final

import databento_dbn as dbn
import numpy as np

from ticklane import dbn as tdbn
from ticklane.market import Bar, MarketFrame, Quote, Trade

_MBP_0: Final = int(dbn.RType.MBP_0)
SOURCE_RTYPES: Final = {
    "trades": _MBP_0,
    "mbp-1": int(dbn.RType.MBP_1),
    "ohlcv-1s": int(dbn.RType.OHLCV_1S),
    "ohlcv-1m": int(dbn.RType.OHLCV_1M),
    "ohlcv-1h": int(dbn.RType.OHLCV_1H),
    "ohlcv-1d": int(dbn.RType.OHLCV_1D),
}
"""The md.* schemas the agents take bars from, and their record types."""

Columns = tuple[list[int], list[int], list[int]]


class NotTicksError(ValueError):
    """Records that hold neither trades nor bars."""


def is_bars(records: bytes) -> bool:
    """Whether the records are OHLCV bars (taken as they are) rather than ticks."""
    return len(records) > 1 and records[1] in tdbn.OHLCV_INTERVALS_NS


def trade_columns(records: bytes) -> Columns:
    """(ts_event, price, size) of the trades among the records, as exact Python ints.

    trades records are all trades; in mbp-1, mbo and similar records only the `T`
    (trade) actions are, as in `ticklane.dbn.to_trades`.
    """
    array = tdbn.as_array(records)
    names = array.dtype.names or ()
    if records[1] != _MBP_0:
        if "action" not in names or "price" not in names:
            raise NotTicksError(f"{tdbn.rtype_name(records[1])} records carry no trades")
        array = array[array["action"] == b"T"]
    return array["ts_event"].tolist(), array["price"].tolist(), array["size"].tolist()


def frame_bars(records: bytes) -> list[Bar]:
    """The bars of ohlcv-* records."""
    return tdbn.to_bars(records)


Column = np.ndarray[Any, np.dtype[Any]]
TICK_RTYPES: Final = tdbn.QUOTE_RTYPES | {_MBP_0}
"""The record types that are ticks: quotes, and trades (MBP-0)."""
_HEADER: Final = {"instrument_id": (4, "<u4"), "ts_event": (8, "<u8")}
"""Fields every DBN record has in its header, at the same place."""
_FIELDS: Final = {
    "ts_recv": "<u8",
    "price": "<i8",
    "size": "<u4",
    "bid_px_00": "<i8",
    "ask_px_00": "<i8",
}
"""The other fields ticks are read for, and their types; where they lie varies by rtype."""


def _where_in_record(name: str) -> Column:
    """Per record type (by rtype): where a field lies in a tick record, -1 if nowhere."""
    table = np.full(256, -1, dtype=np.int64)
    for rtype in TICK_RTYPES:
        found = tdbn.field_slice(rtype, name)
        if found is not None:
            table[rtype] = found.start
    return table


_WHERE: Final = {name: _where_in_record(name) for name in _FIELDS}


class TickBatch:
    """Consecutive ticks of a frame, quotes and trades of any symbols, as columns.

    What the chain engine hands a strategy's `on_ticks` (`agents.strategies.base`): the
    ticks' fields gathered from the frame's records in a few array operations, whatever
    mix of record types and symbols they are, so a strategy takes a batch without a step
    per tick; `items` are the typed records, for one that reads them one at a time.
    A column is gathered when first read, once for a batch and the parts cut from it.
    """

    def __init__(
        self,
        records: bytes,
        offsets: Column,
        rtypes: Column,
        whole: "tuple[TickBatch, int] | None" = None,
    ) -> None:
        self.records = records
        """The bytes the ticks' records lie in (a frame's records)."""
        self.offsets = offsets
        """Where each tick's record starts in `records`."""
        self.rtypes = rtypes
        """Each tick's record type."""
        self._whole = whole
        self._columns: dict[str, Column] = {}

    @classmethod
    def of_runs(
        cls, records: bytes, layout: tdbn.FrameLayout, first: int, stop: int
    ) -> "TickBatch":
        """The ticks of a frame's runs `first` up to `stop` (each of a tick record type)."""
        for run in layout.runs[first:stop]:
            if run.rtype not in TICK_RTYPES:
                raise NotTicksError(f"{tdbn.rtype_name(run.rtype)} records are not ticks")
        start, end = int(layout.firsts[first]), int(layout.firsts[stop])
        return cls(records, layout.offsets[start:end], layout.rtypes[start:end])

    @classmethod
    def of_records(cls, records: bytes) -> "TickBatch":
        """The ticks of concatenated records of one tick record type."""
        layout = tdbn.frame_layout(MarketFrame("", records))
        return cls.of_runs(records, layout, 0, 1)

    def __len__(self) -> int:
        return len(self.offsets)

    def _column(self, name: str) -> Column:
        """A column by name: a part's is a slice of its whole batch's."""
        column = self._columns.get(name)
        if column is not None:
            return column
        if self._whole is not None:
            whole, start = self._whole
            column = whole._column(name)[start : start + len(self)]
        elif name == "quote":
            column = self.rtypes != _MBP_0
        elif name == "ts":
            column = np.maximum(self._column("ts_event"), self._column("ts_recv"))
        else:
            column = self._gather(name)
        self._columns[name] = column
        return column

    def _gather(self, name: str) -> Column:
        """One field of every tick, from its own record; 0 where its type lacks the field
        (as `ticklane.dbn.to_quotes` fills it)."""
        raw = np.frombuffer(self.records, dtype=np.uint8)
        if name in _HEADER:
            where, dtype = _HEADER[name]
            return _read(raw, self.offsets + where, dtype)
        dtype = _FIELDS[name]
        places = _WHERE[name][self.rtypes]
        column = _read(raw, self.offsets + np.maximum(places, 0), dtype)
        missing = places < 0
        if missing.any():
            filled: Column = np.where(missing, 0, column).astype(dtype)
            return filled
        return column

    @property
    def quote(self) -> Column:
        """Whether each tick is a quote (else a trade)."""
        return self._column("quote")

    @property
    def ts_event(self) -> Column:
        """Each tick's ts_event."""
        return self._column("ts_event")

    @property
    def ts_recv(self) -> Column:
        """Each tick's ts_recv."""
        return self._column("ts_recv")

    @property
    def ts(self) -> Column:
        """Each tick's time as strategies take it: the later of ts_event and ts_recv."""
        return self._column("ts")

    @property
    def instrument_id(self) -> Column:
        """Each tick's instrument id."""
        return self._column("instrument_id")

    @property
    def price(self) -> Column:
        """A trade's price; a quote's event price (1e-9 units)."""
        return self._column("price")

    @property
    def size(self) -> Column:
        """A trade's size; a quote's event size."""
        return self._column("size")

    @property
    def bid_px(self) -> Column:
        """A quote's best bid (1e-9 units; `UNDEF_PRICE` when there is none); 0 for a trade."""
        return self._column("bid_px_00")

    @property
    def ask_px(self) -> Column:
        """A quote's best ask (1e-9 units; `UNDEF_PRICE` when there is none); 0 for a trade."""
        return self._column("ask_px_00")

    def part(self, start: int, stop: int) -> "TickBatch":
        """The ticks from index `start` up to `stop`, as a batch of their own (its columns
        are slices of this batch's)."""
        whole, offset = self._whole if self._whole is not None else (self, 0)
        offsets, rtypes = self.offsets[start:stop], self.rtypes[start:stop]
        return TickBatch(self.records, offsets, rtypes, (whole, offset + start))

    def items(self) -> list[Trade | Quote]:
        """The ticks as typed records, in order."""
        out: list[Trade | Quote] = []
        if not len(self):
            return out
        # Records of one type that follow each other lie next to each other.
        cuts = [0, *(np.flatnonzero(np.diff(self.rtypes)) + 1).tolist(), len(self)]
        for start, stop in itertools.pairwise(cuts):
            rtype = int(self.rtypes[start])
            size = tdbn.record_dtype(rtype).itemsize
            first, last = int(self.offsets[start]), int(self.offsets[stop - 1])
            if last - first != (stop - start - 1) * size:
                raise ValueError("a batch's records of one type must lie next to each other")
            records = self.records[first : last + size]
            if rtype == _MBP_0:
                out += tdbn.to_trades(records)
            else:
                out += tdbn.to_quotes(records)
        return out

    def item(self, index: int) -> Trade | Quote:
        """One tick as a typed record."""
        return self.part(index, index + 1).items()[0]


def _read(raw: Column, at: Column, dtype: str) -> Column:
    """The little-endian values of type `dtype` that start at byte offsets `at` of `raw`."""
    width = np.dtype(dtype).itemsize
    return raw[at[:, None] + np.arange(width)].view(dtype)[:, 0]
