"""Raw Databento (DBN version 3) records as carried in market-data frames, and views of them.

md.* messages carry the records exactly as Databento encodes them (docs/design.md, "The
DBN record itself for market data"), so nothing is lost or rounded between the feed and the
consumer. This module checks such bytes, views them as numpy structured arrays (the fast
path: whole columns at once) and converts them to the kernel's typed records. A frame of
several symbols (md.chain) is read as runs of one symbol and type (`frame_runs`).
"""

from functools import cache
from typing import Any, Final

import databento_dbn as dbn
import msgspec
import numpy as np

from ticklane.market import (
    Action,
    Bar,
    BookSide,
    InstrumentClass,
    InstrumentDef,
    MarketFrame,
    Quote,
    Trade,
)

Column = np.ndarray[Any, np.dtype[Any]]

DBN_VERSION: Final = 3
"""Every record in a frame is in this DBN version; producers upgrade older files to it."""

# rtype -> (name shown to people, record class whose `_dtypes` describe its layout).
_RECORD_TYPES: Final[dict[int, tuple[str, Any]]] = {
    int(dbn.RType.MBP_0): ("trades", dbn.TradeMsg),
    int(dbn.RType.MBP_1): ("mbp-1", dbn.MBP1Msg),
    int(dbn.RType.MBP_10): ("mbp-10", dbn.MBP10Msg),
    int(dbn.RType.STATUS): ("status", dbn.StatusMsg),
    int(dbn.RType.INSTRUMENT_DEF): ("definition", dbn.InstrumentDefMsg),
    int(dbn.RType.IMBALANCE): ("imbalance", dbn.ImbalanceMsg),
    int(dbn.RType.STATISTICS): ("statistics", dbn.StatMsg),
    int(dbn.RType.OHLCV_1S): ("ohlcv-1s", dbn.OHLCVMsg),
    int(dbn.RType.OHLCV_1M): ("ohlcv-1m", dbn.OHLCVMsg),
    int(dbn.RType.OHLCV_1H): ("ohlcv-1h", dbn.OHLCVMsg),
    int(dbn.RType.OHLCV_1D): ("ohlcv-1d", dbn.OHLCVMsg),
    int(dbn.RType.OHLCV_EOD): ("ohlcv-eod", dbn.OHLCVMsg),
    int(dbn.RType.MBO): ("mbo", dbn.MBOMsg),
    int(dbn.RType.CMBP_1): ("cmbp-1", dbn.CMBP1Msg),
    int(dbn.RType.TCBBO): ("tcbbo", dbn.CMBP1Msg),
    int(dbn.RType.CBBO_1S): ("cbbo-1s", dbn.CBBOMsg),
    int(dbn.RType.CBBO_1M): ("cbbo-1m", dbn.CBBOMsg),
    int(dbn.RType.BBO_1S): ("bbo-1s", dbn.BBOMsg),
    int(dbn.RType.BBO_1M): ("bbo-1m", dbn.BBOMsg),
}
SUPPORTED_RTYPES: Final = frozenset(_RECORD_TYPES)

OHLCV_INTERVALS_NS: Final = {
    int(dbn.RType.OHLCV_1S): 1_000_000_000,
    int(dbn.RType.OHLCV_1M): 60_000_000_000,
    int(dbn.RType.OHLCV_1H): 3_600_000_000_000,
    int(dbn.RType.OHLCV_1D): 86_400_000_000_000,
    int(dbn.RType.OHLCV_EOD): 86_400_000_000_000,
}

QUOTE_RTYPES: Final = frozenset(
    int(r)
    for r in (
        dbn.RType.MBP_1,
        dbn.RType.CMBP_1,
        dbn.RType.TCBBO,
        dbn.RType.BBO_1S,
        dbn.RType.BBO_1M,
        dbn.RType.CBBO_1S,
        dbn.RType.CBBO_1M,
    )
)


class DbnRecordError(ValueError):
    """Bytes that are not a whole number of DBN v3 records of one known record type."""


@cache
def record_dtype(rtype: int) -> np.dtype[Any]:
    """The numpy layout of one record type (little-endian, as DBN is on the wire)."""
    entry = _RECORD_TYPES.get(rtype)
    if entry is None:
        raise DbnRecordError(f"unsupported DBN record type 0x{rtype:02x}")
    dtype: np.dtype[Any] = np.dtype(entry[1]._dtypes).newbyteorder("<")
    return dtype


_ITEMSIZES: Final = {rtype: record_dtype(rtype).itemsize for rtype in _RECORD_TYPES}


def rtype_name(rtype: int) -> str:
    """The schema-like name of a record type (`trades`, `mbp-1`, `definition`, ...)."""
    entry = _RECORD_TYPES.get(rtype)
    return entry[0] if entry else f"rtype-0x{rtype:02x}"


@cache
def field_slice(rtype: int, name: str) -> slice | None:
    """Where a field lies within a record's bytes, or None if the record type lacks it."""
    fields = record_dtype(rtype).fields
    if fields is None or name not in fields:
        return None
    dtype, offset = fields[name][:2]
    return slice(offset, offset + dtype.itemsize)


@cache
def visible_fields(rtype: int) -> tuple[str, ...]:
    """The fields a record shows (as the databento SDK does: no length byte, no padding)."""
    hidden = set(_RECORD_TYPES[rtype][1]._hidden_fields)
    names = record_dtype(rtype).names or ()
    return tuple(name for name in names if name not in hidden and not name.startswith("_"))


def ts_event(record: bytes) -> int:
    """The ts_event in one raw DBN record's header (every record type has it there)."""
    return int.from_bytes(record[8:16], "little")


def split_records(data: bytes) -> list[bytes]:
    """Concatenated records of one type (a frame's `records`), one bytes object each."""
    size = data[0] * 4
    return [data[i : i + size] for i in range(0, len(data), size)]


def check_records(data: bytes) -> int:
    """Validate concatenated records of one rtype and return how many there are."""
    if not data:
        raise DbnRecordError("a frame must hold at least one record")
    rtype = data[1] if len(data) > 1 else -1
    itemsize = record_dtype(rtype).itemsize if rtype >= 0 else 0
    if itemsize == 0 or len(data) % itemsize:
        raise DbnRecordError(
            f"{len(data)} bytes are not a whole number of 0x{max(rtype, 0):02x} records"
        )
    # Every record's own header must agree: length (in 4-byte words) and rtype.
    if data[0::itemsize].count(itemsize // 4) != len(data) // itemsize:
        raise DbnRecordError(f"a record's length byte disagrees with rtype 0x{rtype:02x}")
    if data[1::itemsize].count(rtype) != len(data) // itemsize:
        raise DbnRecordError("records of more than one rtype in one frame")
    return len(data) // itemsize


class RecordRun(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One run of a frame: `count` records of one symbol and one record type, which lie
    at `records[start:stop]` of the frame."""

    symbol: str
    rtype: int
    start: int
    stop: int
    count: int


class FrameLayout:
    """Where a frame's records lie: its runs, and per record its offset, type and run.

    The per-record arrays are what a consumer needs to read fields of records of mixed
    types in a few array operations (`agents.ticks.TickBatch`); they come out of checking
    the headers anyway."""

    __slots__ = ("firsts", "offsets", "rtypes", "run_of", "runs")

    def __init__(
        self, runs: list[RecordRun], offsets: Column, rtypes: Column, run_of: Column
    ) -> None:
        self.runs = runs
        self.offsets = offsets
        """Each record's start within the frame's records."""
        self.rtypes = rtypes
        """Each record's type."""
        self.run_of = run_of
        """Each record's run, as an index into `runs`."""
        firsts = np.zeros(len(runs) + 1, dtype=np.int64)
        np.cumsum([run.count for run in runs], out=firsts[1:])
        self.firsts = firsts
        """Each run's first record, as an index of the frame's records; then their count."""


class _LastLayout:
    """The frame `frame_layout` read last, with its layout: a frame is checked when it is
    decoded and read again by its consumer, and is immutable, so the second read is
    spared. Held by reference (an identity match is that very frame) and swapped as one
    tuple, so a reader on another thread sees a frame with its own layout or a miss."""

    last: "tuple[MarketFrame | None, FrameLayout | None]" = (None, None)


def frame_runs(frame: MarketFrame) -> list[RecordRun]:
    """A frame's records as runs of one symbol and one type, in order, checked.

    A frame without runs is one run of `frame.symbol`; a multi-symbol frame (md.chain)
    has its runs checked against its records: every record's header agrees with its
    run's type, and the runs cover the records exactly. Raises DbnRecordError otherwise.
    The list is shared with later calls for the same frame: read it, never change it.
    """
    return frame_layout(frame).runs


def frame_layout(frame: MarketFrame) -> FrameLayout:
    """A frame's runs and where each record lies, checked as `frame_runs` says."""
    last = _LastLayout.last
    if last[0] is frame and last[1] is not None:
        return last[1]
    data = frame.records
    if not frame.runs:
        if frame.symbols:
            raise DbnRecordError("a frame names symbols but has no runs")
        count = check_records(data)
        size = len(data) // count
        layout = FrameLayout(
            [RecordRun(frame.symbol, data[1], 0, len(data), count)],
            np.arange(0, len(data), size, dtype=np.int64),
            np.full(count, data[1], dtype=np.int64),
            np.zeros(count, dtype=np.int64),
        )
    else:
        layout = _checked_layout(frame)
    _LastLayout.last = (frame, layout)
    return layout


def _checked_layout(frame: MarketFrame) -> FrameLayout:
    data, symbols, size = frame.records, frame.symbols, len(frame.records)
    runs: list[RecordRun] = []
    counts, starts, sizes, rtypes = [], [], [], []
    start = 0
    # One step per run, not per record: a record's size is its run's type's size.
    for run in frame.runs:
        if run.count < 1:
            raise DbnRecordError("a run of no records")
        if start + 2 > size:
            raise DbnRecordError(f"the runs name more records than the frame's {size} bytes")
        rtype = data[start + 1]
        itemsize = _ITEMSIZES.get(rtype) or record_dtype(rtype).itemsize
        stop = start + run.count * itemsize
        if stop > size:
            raise DbnRecordError(f"a run of {run.count} 0x{rtype:02x} records overruns the frame")
        if not 0 <= run.symbol < len(symbols):
            raise DbnRecordError(f"a run names symbol {run.symbol} of {len(symbols)}")
        runs.append(RecordRun(symbols[run.symbol], rtype, start, stop, run.count))
        counts.append(run.count)
        starts.append(start)
        sizes.append(itemsize)
        rtypes.append(rtype)
        start = stop
    if start != size:
        raise DbnRecordError(f"{size - start} bytes of the frame lie beyond its runs")
    # Every record's own header must agree with its run: length (in 4-byte words), rtype.
    count = np.array(counts, dtype=np.int64)
    run_of = np.repeat(np.arange(len(runs)), count)
    firsts = np.cumsum(count) - count
    record_sizes = np.array(sizes, dtype=np.int64)[run_of]
    offsets = np.array(starts, dtype=np.int64)[run_of]
    offsets += (np.arange(len(run_of)) - firsts[run_of]) * record_sizes
    record_rtypes = np.array(rtypes, dtype=np.int64)[run_of]
    raw = np.frombuffer(data, dtype=np.uint8)
    if not np.array_equal(raw[offsets], record_sizes // 4):
        raise DbnRecordError("a record's length byte disagrees with its run's rtype")
    if not np.array_equal(raw[offsets + 1], record_rtypes):
        raise DbnRecordError("records of more than one rtype in one run")
    return FrameLayout(runs, offsets, record_rtypes, run_of)


def frame_records(frame: MarketFrame) -> list[bytes]:
    """Every record of a frame, of whichever shape, one bytes object each, in order."""
    data, out = frame.records, []
    for run in frame_runs(frame):
        size = (run.stop - run.start) // run.count
        out += [data[i : i + size] for i in range(run.start, run.stop, size)]
    return out


def count_records(frame: MarketFrame) -> int:
    """How many records a frame holds, of whichever shape (checked as `frame_runs` does)."""
    if not frame.runs and not frame.symbols:
        return check_records(frame.records)
    return len(frame_layout(frame).offsets)


def as_array(data: bytes) -> np.ndarray[Any, np.dtype[Any]]:
    """A read-only structured array over the records (no copy)."""
    check_records(data)
    return np.frombuffer(data, dtype=record_dtype(data[1]))


def encode_records(rtype: int, rows: list[dict[str, int | str]]) -> bytes:
    """DBN records of one type from field values (unset fields are zero, strings NUL-padded)."""
    dtype = record_dtype(rtype)
    array = np.zeros(len(rows), dtype=dtype)
    array["length"] = dtype.itemsize // 4
    array["rtype"] = rtype
    for i, row in enumerate(rows):
        for name, value in row.items():
            if name in ("length", "rtype"):
                raise DbnRecordError(f"{name} is set from the record type, not given")
            if name not in (dtype.names or ()):
                raise DbnRecordError(f"rtype 0x{rtype:02x} records have no field {name!r}")
            array[i][name] = value.encode() if isinstance(value, str) else value
    return array.tobytes()


def _column(array: np.ndarray[Any, np.dtype[Any]], name: str) -> list[int | str]:
    column = array[name]
    if column.dtype.kind != "S":
        return list(column.tolist())
    if column.dtype.itemsize == 1:
        # A char field: numpy shows NUL as b"", the SDK as "\x00"; keep the SDK's view.
        return [c.decode("latin-1") or "\x00" for c in column.tolist()]
    return [c.decode("utf-8", errors="replace") for c in column.tolist()]


def record_dicts(data: bytes) -> list[dict[str, int | str]]:
    """Every visible field of every record, as exact Python ints and strings (for people)."""
    array = as_array(data)
    fields = visible_fields(data[1])
    columns = {name: _column(array, name) for name in fields}
    return [{name: columns[name][i] for name in fields} for i in range(len(array))]


# DBN's character codes mapped explicitly; numpy shows a NUL char as b"".
_SIDES: Final = {b"A": BookSide.ASK, b"B": BookSide.BID, b"N": BookSide.NONE, b"": BookSide.NONE}
_ACTIONS: Final = {a.value.encode(): a for a in Action} | {b"": Action.NONE}


def _mapped(
    column: np.ndarray[Any, np.dtype[Any]], table: dict[bytes, Any], what: str
) -> list[Any]:
    try:
        return [table[c] for c in column.tolist()]
    except KeyError as exc:
        raise DbnRecordError(f"unknown DBN {what} code {exc.args[0]!r}") from None


def to_trades(data: bytes) -> list[Trade]:
    """Trades from trades (MBP-0) records, or the trade events among mbp-1/mbo records."""
    a = as_array(data)
    names = a.dtype.names or ()
    if "action" in names and data[1] != int(dbn.RType.MBP_0):
        a = a[a["action"] == b"T"]
    cols = [a[f].tolist() for f in ("ts_event", "ts_recv", "instrument_id", "price", "size")]
    sides, actions = _mapped(a["side"], _SIDES, "side"), _mapped(a["action"], _ACTIONS, "action")
    flags, seqs, deltas = a["flags"].tolist(), a["sequence"].tolist(), a["ts_in_delta"].tolist()
    pubs = a["publisher_id"].tolist()
    depth = a["depth"].tolist() if "depth" in names else [0] * len(a)
    return [
        Trade(
            ts_event=cols[0][i],
            ts_recv=cols[1][i],
            instrument_id=cols[2][i],
            price=cols[3][i],
            size=cols[4][i],
            side=sides[i],
            action=actions[i],
            flags=flags[i],
            depth=depth[i],
            sequence=seqs[i],
            ts_in_delta=deltas[i],
            publisher_id=pubs[i],
        )
        for i in range(len(a))
    ]


def to_quotes(data: bytes) -> list[Quote]:
    """Top-of-book quotes from mbp-1, tbbo, bbo and cbbo records."""
    if data[:2] and data[1] not in QUOTE_RTYPES:
        raise DbnRecordError(f"rtype 0x{data[1]:02x} records are not quotes")
    a = as_array(data)
    names = a.dtype.names or ()
    n = len(a)

    def col(name: str, default: int = 0) -> list[Any]:
        return a[name].tolist() if name in names else [default] * n

    side = _mapped(a["side"], _SIDES, "side")
    action = _mapped(a["action"], _ACTIONS, "action") if "action" in names else [Action.NONE] * n
    c = {f: col(f) for f in ("ts_event", "ts_recv", "instrument_id", "price", "size", "flags")}
    book = {f: col(f"{f}_00") for f in ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct")}
    extra = {f: col(f) for f in ("depth", "sequence", "ts_in_delta", "publisher_id")}
    return [
        Quote(
            ts_event=c["ts_event"][i],
            ts_recv=c["ts_recv"][i],
            instrument_id=c["instrument_id"][i],
            bid_px=book["bid_px"][i],
            ask_px=book["ask_px"][i],
            bid_sz=book["bid_sz"][i],
            ask_sz=book["ask_sz"][i],
            bid_ct=book["bid_ct"][i],
            ask_ct=book["ask_ct"][i],
            price=c["price"][i],
            size=c["size"][i],
            side=side[i],
            action=action[i],
            flags=c["flags"][i],
            depth=extra["depth"][i],
            sequence=extra["sequence"][i],
            ts_in_delta=extra["ts_in_delta"][i],
            publisher_id=extra["publisher_id"][i],
        )
        for i in range(n)
    ]


def to_bars(data: bytes) -> list[Bar]:
    """Bars from Databento ohlcv-* records (ts_event is the bar's open, as in DBN)."""
    rtype = data[1] if len(data) > 1 else -1
    interval = OHLCV_INTERVALS_NS.get(rtype)
    if interval is None:
        raise DbnRecordError(f"rtype 0x{max(rtype, 0):02x} records are not OHLCV bars")
    a = as_array(data)
    cols = [
        a[f].tolist()
        for f in ("ts_event", "open", "high", "low", "close", "volume", "instrument_id")
    ]
    pubs = a["publisher_id"].tolist()
    return [
        Bar(
            ts_event=cols[0][i],
            interval_ns=interval,
            open=cols[1][i],
            high=cols[2][i],
            low=cols[3][i],
            close=cols[4][i],
            volume=cols[5][i],
            instrument_id=cols[6][i],
            publisher_id=pubs[i],
        )
        for i in range(len(a))
    ]


_CLASSES: Final = {c.value: c for c in InstrumentClass}


def _instrument_class(code: int | str) -> InstrumentClass:
    try:
        return _CLASSES[str(code)]
    except KeyError:
        raise DbnRecordError(f"unknown DBN instrument class {code!r}") from None


def to_instruments(data: bytes) -> list[InstrumentDef]:
    """Instrument definitions, with the fields trading decisions use."""
    if data[1:2] != bytes([int(dbn.RType.INSTRUMENT_DEF)]):
        raise DbnRecordError("records are not instrument definitions")
    return [
        InstrumentDef(
            ts_event=int(r["ts_event"]),
            ts_recv=int(r["ts_recv"]),
            instrument_id=int(r["instrument_id"]),
            raw_symbol=str(r["raw_symbol"]),
            instrument_class=_instrument_class(r["instrument_class"]),
            min_price_increment=int(r["min_price_increment"]),
            display_factor=int(r["display_factor"]),
            unit_of_measure_qty=int(r["unit_of_measure_qty"]),
            contract_multiplier=int(r["contract_multiplier"]),
            min_lot_size_round_lot=int(r["min_lot_size_round_lot"]),
            expiration=int(r["expiration"]),
            activation=int(r["activation"]),
            high_limit_price=int(r["high_limit_price"]),
            low_limit_price=int(r["low_limit_price"]),
            strike_price=int(r["strike_price"]),
            strike_price_currency=str(r["strike_price_currency"]),
            currency=str(r["currency"]),
            exchange=str(r["exchange"]),
            asset=str(r["asset"]),
            cfi=str(r["cfi"]),
            security_type=str(r["security_type"]),
            underlying=str(r["underlying"]),
            underlying_id=int(r["underlying_id"]),
            security_update_action=str(r["security_update_action"]),
            publisher_id=int(r["publisher_id"]),
        )
        for r in record_dicts(data)
    ]
