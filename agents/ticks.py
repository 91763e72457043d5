"""The records of a market-data frame as the engine takes them: trade columns or bars.

Shared by the agents and the backtest, so both read a frame the same way.
"""

from typing import Final

import databento_dbn as dbn

from ticklane import dbn as tdbn
from ticklane.market import Bar

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
