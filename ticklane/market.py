"""Market-data records as consumers see them, and the frame that carries them on md.* topics.

On the wire, md.* frames carry Databento's own record bytes; these typed records are the
decoded view (`ticklane.dbn`) and the value type of the agents' bars.* topics. Records
hold only scalars, so they opt out of the cyclic GC (`gc=False`): thousands of them
then cost the collector nothing.

Field names and widths follow Databento's DBN records: integer 1e-9 prices, integer
nanosecond timestamps, DBN's character codes for action, side and instrument class.
"""

from enum import StrEnum
from typing import Annotated, Final

import msgspec

from ticklane.units import (
    UNDEF_PRICE,
    UNDEF_TIMESTAMP,
    Int32,
    Nanos,
    Price,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
)


class Action(StrEnum):
    """DBN order-book event kind."""

    ADD = "A"
    CANCEL = "C"
    MODIFY = "M"
    CLEAR = "R"
    TRADE = "T"
    FILL = "F"
    NONE = "N"


class BookSide(StrEnum):
    """DBN side: for a trade, the aggressor; for a book event, the side of the book."""

    ASK = "A"
    BID = "B"
    NONE = "N"


class InstrumentClass(StrEnum):
    """DBN instrument class."""

    BOND = "B"
    CALL = "C"
    FUTURE = "F"
    STOCK = "K"
    MIXED_SPREAD = "M"
    PUT = "P"
    FUTURE_SPREAD = "S"
    OPTION_SPREAD = "T"
    FX_SPOT = "X"
    COMMODITY_SPOT = "Y"


class Trade(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One trade (DBN `trades` schema, MBP-0)."""

    ts_event: Nanos
    ts_recv: Nanos
    instrument_id: UInt32
    price: Price
    size: UInt32
    side: BookSide = BookSide.NONE
    action: Action = Action.TRADE
    flags: UInt8 = 0
    depth: UInt8 = 0
    sequence: UInt32 = 0
    ts_in_delta: Int32 = 0
    publisher_id: UInt16 = 0


class Quote(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Top of book after an event (DBN `mbp-1`, `tbbo`, `bbo-1s`, `bbo-1m`).

    `price`/`size`/`side`/`action` describe the event that changed the book (for BBO
    schemas, the last trade in the interval); the `bid_*`/`ask_*` fields are the book.
    """

    ts_event: Nanos
    ts_recv: Nanos
    instrument_id: UInt32
    bid_px: Price = UNDEF_PRICE
    ask_px: Price = UNDEF_PRICE
    bid_sz: UInt32 = 0
    ask_sz: UInt32 = 0
    bid_ct: UInt32 = 0
    ask_ct: UInt32 = 0
    price: Price = UNDEF_PRICE
    size: UInt32 = 0
    side: BookSide = BookSide.NONE
    action: Action = Action.NONE
    flags: UInt8 = 0
    depth: UInt8 = 0
    sequence: UInt32 = 0
    ts_in_delta: Int32 = 0
    publisher_id: UInt16 = 0


class Bar(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An OHLCV bar: from Databento's `ohlcv-*` schemas or built by the agents from trades.

    `ts_event` is the bar's open time, as in DBN; the bar covers
    [ts_event, ts_event + interval_ns). `vwap` and `trade_count` are 0 when unknown
    (Databento's own bars carry neither).
    """

    ts_event: Nanos
    interval_ns: UInt64
    open: Price
    high: Price
    low: Price
    close: Price
    volume: UInt64
    vwap: Price = 0
    trade_count: UInt64 = 0
    instrument_id: UInt32 = 0
    publisher_id: UInt16 = 0

    @property
    def ts_close(self) -> int:
        """End of the interval the bar covers (exclusive), in ns."""
        return self.ts_event + self.interval_ns


class InstrumentDef(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """An instrument definition (DBN `definition` schema): the fields trading decisions use."""

    ts_event: Nanos
    ts_recv: Nanos
    instrument_id: UInt32
    raw_symbol: str
    instrument_class: InstrumentClass
    min_price_increment: Price = UNDEF_PRICE
    display_factor: Price = 1_000_000_000
    unit_of_measure_qty: Price = UNDEF_PRICE
    contract_multiplier: Int32 = 0
    min_lot_size_round_lot: Int32 = 0
    expiration: Nanos = UNDEF_TIMESTAMP
    activation: Nanos = UNDEF_TIMESTAMP
    high_limit_price: Price = UNDEF_PRICE
    low_limit_price: Price = UNDEF_PRICE
    strike_price: Price = UNDEF_PRICE
    strike_price_currency: str = ""
    currency: str = ""
    exchange: str = ""
    asset: str = ""
    cfi: str = ""
    security_type: str = ""
    underlying: str = ""
    underlying_id: UInt32 = 0
    security_update_action: str = "A"
    publisher_id: UInt16 = 0


FRAME_MAX_RECORDS: Final = 500
"""Default cap on the records of one frame (producers' `--max-frame-records`)."""
FRAME_MAX_BYTES: Final = 256 * 1024
"""Default cap on the record bytes of one frame (producers' `--max-frame-bytes`)."""


class FrameRun(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Consecutive records of one symbol and one record type within a multi-symbol frame."""

    symbol: UInt32
    """Index of the records' symbol in the frame's `symbols`."""
    count: Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]


class MarketFrame(msgspec.Struct, frozen=True, array_like=True):
    """One Kafka message on an md.* topic: consecutive records, in order.

    `records` are raw DBN version 3 records, concatenated exactly as Databento encoded
    them (`ticklane.dbn` views and converts them). Consumers pay their per-message cost
    per frame rather than per tick (docs/design.md, "Frames").

    A frame is one of two shapes:

    * without `runs` (every md.<schema> topic, and md.chain frames written before runs
      existed): records of one record type, all of `symbol`;
    * with `runs` (md.chain): records of several symbols and record types, cut into runs
      of one symbol and one type that cover `records` in order; `symbols` lists each
      symbol once and every run names its own by index. `symbol` then names the frame as
      a whole: the chain's underlying, which is also its key.

    `ticklane.dbn.frame_runs` reads either shape as runs. The two trailing fields are
    left off the wire when empty, so a frame without runs is byte for byte what it was
    before they existed, and a reader that predates them still decodes every frame.

    `source` names the producer's input (a file's content, a subscription); `position` is
    that input's index of the frame's last record and `batch` the index that began the
    batch the frame was cut from. A restarted producer reads them back to skip exactly
    what is already in Kafka (`producers.resume`).
    """

    symbol: str
    records: bytes
    source: str = ""
    position: UInt64 = 0
    batch: UInt64 = 0
    symbols: tuple[str, ...] = ()
    runs: tuple[FrameRun, ...] = ()


class DataGap(msgspec.Struct, frozen=True, array_like=True):
    """Market data that was missed and could not be recovered (published on `md.gaps`)."""

    source: str
    dataset: str
    schema: str
    start_ns: Nanos
    """First time not covered: where replay was asked to start."""
    end_ns: Nanos
    """Where the data resumed: the replay's real start."""
    detected_ns: Nanos
    reason: str = ""
