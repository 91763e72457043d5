"""Every message type round-trips through the wire codec exactly; bad bytes raise WireError."""

import struct
import zlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticklane import dbn, wire
from ticklane.control import ControlAck, ControlAction, ControlCommand, KillSwitchState
from ticklane.market import (
    Action,
    Bar,
    BookSide,
    DataGap,
    FrameRun,
    InstrumentClass,
    InstrumentDef,
    MarketFrame,
    Quote,
    Trade,
)
from ticklane.trading import (
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
    TimeInForce,
)
from ticklane.units import INT64_MAX, INT64_MIN, UINT64_MAX, UNDEF_PRICE, UNDEF_TIMESTAMP

# Edge values first so that every run exercises them, then the whole range.
prices = st.one_of(
    st.sampled_from([INT64_MIN, INT64_MAX, UNDEF_PRICE, 0, -1, 1, 5_528_750_000_000]),
    st.integers(INT64_MIN, INT64_MAX),
)
timestamps = st.one_of(
    st.sampled_from([0, UINT64_MAX, UNDEF_TIMESTAMP, 1_719_878_281_218_218_853]),
    st.integers(0, UINT64_MAX),
)
u8, u16, u32 = st.integers(0, 2**8 - 1), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1)
u64 = st.integers(0, UINT64_MAX)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(INT64_MIN, INT64_MAX)
positive = st.integers(1, INT64_MAX)
text = st.text(max_size=40)
maybe_price = st.none() | prices

trades = st.builds(
    Trade,
    ts_event=timestamps,
    ts_recv=timestamps,
    instrument_id=u32,
    price=prices,
    size=u32,
    side=st.sampled_from(BookSide),
    action=st.sampled_from(Action),
    flags=u8,
    depth=u8,
    sequence=u32,
    ts_in_delta=i32,
    publisher_id=u16,
)
quotes = st.builds(
    Quote,
    ts_event=timestamps,
    ts_recv=timestamps,
    instrument_id=u32,
    bid_px=prices,
    ask_px=prices,
    bid_sz=u32,
    ask_sz=u32,
    bid_ct=u32,
    ask_ct=u32,
    price=prices,
    size=u32,
    side=st.sampled_from(BookSide),
    action=st.sampled_from(Action),
    flags=u8,
    depth=u8,
    sequence=u32,
    ts_in_delta=i32,
    publisher_id=u16,
)
bars = st.builds(
    Bar,
    ts_event=timestamps,
    interval_ns=u64,
    instrument_id=u32,
    open=prices,
    high=prices,
    low=prices,
    close=prices,
    volume=u64,
    vwap=prices,
    trade_count=u64,
    publisher_id=u16,
)
instruments = st.builds(
    InstrumentDef,
    ts_event=timestamps,
    ts_recv=timestamps,
    instrument_id=u32,
    raw_symbol=text,
    instrument_class=st.sampled_from(InstrumentClass),
    min_price_increment=prices,
    display_factor=prices,
    unit_of_measure_qty=prices,
    contract_multiplier=i32,
    min_lot_size_round_lot=i32,
    expiration=timestamps,
    activation=timestamps,
    high_limit_price=prices,
    low_limit_price=prices,
    strike_price=prices,
    strike_price_currency=text,
    currency=text,
    exchange=text,
    asset=text,
    cfi=text,
    security_type=text,
    underlying=text,
    underlying_id=u32,
    security_update_action=st.sampled_from(["A", "D", "M"]),
    publisher_id=u16,
)


@st.composite
def dbn_records(draw: st.DrawFn) -> bytes:
    """1-8 raw DBN records of one supported rtype, every field's bytes arbitrary."""
    rtype = draw(st.sampled_from(sorted(dbn.SUPPORTED_RTYPES)))
    size = dbn.record_dtype(rtype).itemsize
    raw = bytearray(draw(st.binary(min_size=size, max_size=size)) * draw(st.integers(1, 8)))
    raw[0::size] = bytes([size // 4]) * (len(raw) // size)
    raw[1::size] = bytes([rtype]) * (len(raw) // size)
    return bytes(raw)


frames = st.builds(MarketFrame, symbol=text, records=dbn_records(), source=text, position=u64)


@st.composite
def chain_frames(draw: st.DrawFn) -> MarketFrame:
    """Frames of several symbols (md.chain): runs of 1-8 records of any type and symbol."""
    symbols = tuple(draw(st.lists(text, min_size=1, max_size=4, unique=True)))
    runs = draw(
        st.lists(st.tuples(st.integers(0, len(symbols) - 1), dbn_records()), min_size=1, max_size=6)
    )
    return MarketFrame(
        draw(text),
        b"".join(records for _, records in runs),
        draw(text),
        draw(u64),
        draw(u64),
        symbols,
        tuple(FrameRun(symbol, len(records) // (records[0] * 4)) for symbol, records in runs),
    )


signals = st.builds(
    Signal,
    signal_id=text,
    strategy=text,
    symbol=text,
    ts_event=timestamps,
    sequence=u32,
    target_position=i64,
    instrument_id=u32,
    reference_price=maybe_price,
    reason=text,
)
orders = st.builds(
    Order,
    client_order_id=text,
    signal_id=text,
    strategy=text,
    symbol=text,
    side=st.sampled_from(Side),
    quantity=positive,
    order_type=st.sampled_from(OrderType),
    status=st.sampled_from(OrderStatus),
    ts_event=timestamps,
    time_in_force=st.sampled_from(TimeInForce),
    limit_price=maybe_price,
    stop_price=maybe_price,
    leg=u32,
    venue_order_id=text,
    filled_quantity=i64,
    filled_notional=i64,
    reason=text,
    instrument_id=u32,
)
fills = st.builds(
    Fill,
    fill_id=text,
    client_order_id=text,
    venue_order_id=text,
    symbol=text,
    side=st.sampled_from(Side),
    quantity=positive,
    price=prices,
    ts_event=timestamps,
    fee=i64,
    strategy=text,
    instrument_id=u32,
)
positions = st.builds(
    Position,
    strategy=text,
    symbol=text,
    quantity=i64,
    avg_price=prices,
    realized_pnl=i64,
    ts_event=timestamps,
    last_fill_id=text,
    fees=i64,
    instrument_id=u32,
)
param_values = st.one_of(st.booleans(), i64, st.floats(allow_nan=False), st.text(max_size=10))
controls = st.builds(
    ControlCommand,
    command_id=text,
    action=st.sampled_from(ControlAction),
    ts_event=timestamps,
    strategy=text,
    symbol=text,
    params=st.dictionaries(st.text(max_size=10), param_values, max_size=4),
    kill_switch=st.none() | st.sampled_from(KillSwitchState),
    issued_by=text,
)
acks = st.builds(
    ControlAck,
    command_id=text,
    by=text,
    applied=st.booleans(),
    ts_event=timestamps,
    reason=text,
)
gaps = st.builds(
    DataGap,
    source=text,
    dataset=text,
    schema=text,
    start_ns=timestamps,
    end_ns=timestamps,
    detected_ns=timestamps,
    reason=text,
)
messages = st.one_of(
    frames,
    chain_frames(),
    trades,
    quotes,
    bars,
    instruments,
    signals,
    orders,
    fills,
    positions,
    controls,
    gaps,
    acks,
)


def _same(a: wire.Message, b: wire.Message) -> bool:
    # Equality plus a field-by-field type check: 1 == 1.0 == True must not pass for exact.
    return type(a) is type(b) and a == b and _types(a) == _types(b)


def _types(value: object) -> object:
    if isinstance(value, msgspec.Struct):
        return [_types(getattr(value, f)) for f in value.__struct_fields__]
    if isinstance(value, list):
        return [_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value)


PER_TYPE = [
    frames,
    chain_frames(),
    trades,
    quotes,
    bars,
    instruments,
    signals,
    orders,
    fills,
    positions,
    controls,
    gaps,
    acks,
]


@pytest.mark.parametrize("strategy", PER_TYPE, ids=lambda s: repr(s)[7:20])
@given(data=st.data())
@settings(max_examples=150)
def test_every_message_type_round_trips_exactly(
    strategy: st.SearchStrategy[wire.Message], data: st.DataObject
) -> None:
    message = data.draw(strategy)
    encoded = wire.encode(message)
    assert encoded[:2] == wire.MAGIC
    assert wire.kind_name(message) == wire.KINDS[encoded[3]][0]
    assert _same(wire.decode(encoded), message)


def test_extreme_values_survive() -> None:
    trade = Trade(
        ts_event=UINT64_MAX,
        ts_recv=0,
        instrument_id=2**32 - 1,
        price=INT64_MIN,
        size=2**32 - 1,
        ts_in_delta=-(2**31),
    )
    assert wire.decode(wire.encode(trade)) == trade
    records = dbn.encode_records(
        0, [{"ts_event": UINT64_MAX, "price": INT64_MIN}, {"price": UNDEF_PRICE, "size": 2**32 - 1}]
    )
    decoded = wire.decode_as(
        wire.encode(MarketFrame("ESU4", records, "s", UINT64_MAX)), MarketFrame
    )
    assert decoded.position == UINT64_MAX
    first, second = dbn.to_trades(decoded.records)
    assert (first.ts_event, first.price) == (UINT64_MAX, INT64_MIN)
    assert (second.price, second.size) == (UNDEF_PRICE, 2**32 - 1)


@given(messages, st.data())
@settings(max_examples=300)
def test_any_single_corrupted_byte_raises(message: wire.Message, data: st.DataObject) -> None:
    encoded = bytearray(wire.encode(message))
    index = data.draw(st.integers(0, len(encoded) - 1))
    flip = data.draw(st.integers(1, 255))
    encoded[index] ^= flip
    with pytest.raises(wire.WireError):
        wire.decode(bytes(encoded))


@given(messages, st.data())
def test_truncated_or_extended_input_raises(message: wire.Message, data: st.DataObject) -> None:
    encoded = wire.encode(message)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(wire.WireError):
        wire.decode(encoded[:cut])
    with pytest.raises(wire.WireError):
        wire.decode(encoded + data.draw(st.binary(min_size=1, max_size=8)))


@given(st.binary(max_size=200))
def test_garbage_never_decodes(garbage: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(garbage)


def _reframe(kind: int, body: bytes, version: int = wire.VERSION) -> bytes:
    return struct.pack(">2sBBI", wire.MAGIC, version, kind, zlib.crc32(body)) + body


def test_unknown_version_raises_typed_error() -> None:
    body = wire.encode(Signal.create("ema", "ESU4", 1, 1))[wire.HEADER_SIZE :]
    with pytest.raises(wire.UnsupportedVersionError, match="version 9"):
        wire.decode(_reframe(6, body, version=9))


def test_unknown_kind_raises() -> None:
    with pytest.raises(wire.WireError, match="unknown message kind 200"):
        wire.decode(_reframe(200, b"\x90"))


def test_valid_checksum_over_wrong_shape_raises() -> None:
    # A well-formed envelope whose body is a Trade, labelled as a Signal.
    body = wire.encode(Trade(1, 2, 3, 4, 5))[wire.HEADER_SIZE :]
    with pytest.raises(wire.WireError, match="invalid signal body"):
        wire.decode(_reframe(6, body))


def test_out_of_range_values_are_refused_on_decode() -> None:
    # The struct constructor does not validate; decode does, so garbage cannot enter.
    too_big = msgspec.msgpack.encode([1, 1, 1, 1, 2**40])  # size is a uint32
    with pytest.raises(wire.WireError, match="invalid trade body"):
        wire.decode(_reframe(2, too_big))


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        (b"", "at least one record"),
        (dbn.encode_records(0, [{}])[:-4], "not a whole number"),
        (dbn.encode_records(0, [{}]) + dbn.encode_records(1, [{}])[:48], "length byte"),
        # ohlcv-1s and mbo records are both 56 bytes: only the rtype byte tells them apart.
        (dbn.encode_records(0x20, [{}]) + dbn.encode_records(0xA0, [{}]), "more than one rtype"),
        (b"\x0c\xee" + bytes(46), "unsupported DBN record type 0xee"),
    ],
    ids=["empty", "partial", "length", "mixed", "unknown"],
)
def test_malformed_frame_records_are_refused(records: bytes, reason: str) -> None:
    body = msgspec.msgpack.encode(["ESU4", records, "", 0])
    with pytest.raises(wire.WireError, match=reason):
        wire.decode(_reframe(1, body))
    with pytest.raises(ValueError, match=reason):
        wire.encode(MarketFrame("ESU4", records))


@given(chain_frames())
def test_a_frame_of_several_symbols_keeps_each_records_symbol(frame: MarketFrame) -> None:
    decoded = wire.decode_as(wire.encode(frame), MarketFrame)
    assert decoded == frame
    expected = [
        (frame.symbols[run.symbol], record)
        for run, start in zip(frame.runs, _run_starts(frame), strict=True)
        for record in dbn.split_records(frame.records[start:])[: run.count]
    ]
    got = [
        (run.symbol, record)
        for run in dbn.frame_runs(decoded)
        for record in dbn.split_records(decoded.records[run.start : run.stop])
    ]
    assert got == expected
    assert dbn.count_records(decoded) == len(expected) == len(dbn.frame_records(decoded))


def _run_starts(frame: MarketFrame) -> list[int]:
    starts, at = [], 0
    for run in frame.runs:
        starts.append(at)
        at += run.count * frame.records[at] * 4
    return starts


def test_a_frame_without_runs_is_byte_for_byte_the_frame_before_runs() -> None:
    records = dbn.encode_records(0, [{"ts_event": 5}, {"ts_event": 6}])
    frame = MarketFrame("ESU4", records, "file:x", 41, 40)
    before = msgspec.msgpack.encode(["ESU4", records, "file:x", 41, 40])  # how it was written
    assert wire.encode(frame) == _reframe(1, before)
    assert wire.decode(_reframe(1, before)) == frame
    assert wire.decode(_reframe(1, msgspec.msgpack.encode(["ESU4", records]))) == MarketFrame(
        "ESU4", records
    )


class _FrameBeforeRuns(msgspec.Struct, array_like=True):
    symbol: str
    records: bytes
    source: str = ""
    position: int = 0
    batch: int = 0


def test_a_reader_from_before_runs_still_decodes_a_frame_with_them() -> None:
    trade, quote = dbn.encode_records(0, [{}]), dbn.encode_records(1, [{}])
    frame = MarketFrame(
        "ES", trade + quote, "s", 2, 1, ("ES", "ES C1"), (FrameRun(0, 1), FrameRun(1, 1))
    )
    body = wire.encode(frame)[wire.HEADER_SIZE :]
    old = msgspec.msgpack.decode(body, type=_FrameBeforeRuns)
    assert (old.symbol, old.records, old.source, old.position, old.batch) == (
        "ES",
        trade + quote,
        "s",
        2,
        1,
    )


_TRADE, _QUOTE = dbn.encode_records(0, [{}]), dbn.encode_records(1, [{}])
_OHLCV, _MBO = dbn.encode_records(0x20, [{}]), dbn.encode_records(0xA0, [{}])


@pytest.mark.parametrize(
    ("records", "symbols", "runs", "reason"),
    [
        (_TRADE, ("A",), (), "names symbols but has no runs"),
        (_TRADE + _QUOTE, ("A",), ((0, 1),), "beyond its runs"),
        (_TRADE, ("A",), ((0, 2),), "overruns the frame"),
        (_TRADE, ("A",), ((0, 1), (0, 1)), "more records than"),
        (_TRADE, ("A",), ((1, 1),), "names symbol 1 of 1"),
        (_TRADE + _QUOTE[:48], ("A",), ((0, 2),), "length byte"),
        (_TRADE + _QUOTE, ("A",), ((0, 1), (0, 0), (0, 1)), "no records|>= 1"),
        # Checked run by run, and from eight runs on all at once.
        (_TRADE * 9 + _QUOTE[:48], ("A",), ((0, 1),) * 8 + ((0, 2),), "length byte"),
        # ohlcv-1s and mbo records are both 56 bytes: only the rtype byte tells them apart.
        (_OHLCV + _MBO, ("A",), ((0, 2),), "more than one rtype"),
        (_OHLCV * 9 + _MBO, ("A",), ((0, 1),) * 8 + ((0, 2),), "more than one rtype"),
    ],
    ids=[
        "no-runs",
        "beyond",
        "overrun",
        "past-end",
        "symbol",
        "length",
        "empty-run",
        "length-at-once",
        "mixed-types",
        "mixed-types-at-once",
    ],
)
def test_frames_whose_runs_do_not_match_their_records_are_refused(
    records: bytes, symbols: tuple[str, ...], runs: tuple[tuple[int, int], ...], reason: str
) -> None:
    body = msgspec.msgpack.encode(["A", records, "", 0, 0, symbols, runs])
    with pytest.raises(wire.WireError, match=reason):
        wire.decode(_reframe(1, body))
    frame = MarketFrame("A", records, symbols=symbols, runs=tuple(FrameRun(*r) for r in runs))
    with pytest.raises(ValueError, match="|".join(p for p in reason.split("|") if p != ">= 1")):
        wire.encode(frame)


def test_decode_as_checks_the_type() -> None:
    encoded = wire.encode(Signal.create("ema", "ESU4", 1, 1))
    assert wire.decode_as(encoded, Signal).symbol == "ESU4"
    with pytest.raises(wire.WireError, match="expected a Order, got a Signal"):
        wire.decode_as(encoded, Order)


def test_encode_refuses_foreign_types() -> None:
    with pytest.raises(TypeError, match="not a wire message type"):
        wire.encode(object())  # type: ignore[arg-type]
