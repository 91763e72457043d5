"""Incremental technical indicators with serialisable warm-up state.

Inputs are prices as the pipeline carries them: integers in units of 1e-9.
Outputs are floats on the same scale (a value of 5.0e12 is a price of 5000.0),
so they compare directly with integer prices and need no conversion back.
Each indicator is a mutable `msgspec.Struct`: its fields are its whole state,
so ``msgspec.msgpack.encode(ind)`` / ``decode(..., type=EMA)`` store and
restore it. ``update`` returns ``None`` until the indicator is warmed up, at
the same input index where the reference library gives its first value.
"""

from agents.indicators.atr import ATR
from agents.indicators.ema import EMA
from agents.indicators.sma import SMA
from agents.indicators.supertrend import Supertrend

__all__ = ["ATR", "EMA", "SMA", "Supertrend"]
