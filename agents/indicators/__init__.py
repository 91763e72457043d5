"""Incremental technical indicators with serialisable warm-up state.

Inputs are prices as the pipeline carries them: integers in units of 1e-9.
Outputs are floats on the same scale (a value of 5.0e12 is a price of 5000.0),
so they compare directly with integer prices and need no conversion back.
Each indicator is a mutable `msgspec.Struct`: its fields are its whole state,
so ``msgspec.msgpack.encode(ind)`` / ``decode(..., type=EMA)`` store and
restore it. ``update`` returns ``None`` until the indicator is warmed up, at
the same input index where the reference library gives its first value.
"""

from typing import Any

import msgspec

from agents.indicators.atr import ATR
from agents.indicators.ema import EMA
from agents.indicators.sma import SMA
from agents.indicators.supertrend import Supertrend

__all__ = ["ATR", "EMA", "SMA", "Supertrend", "readings"]


def readings(state: Any) -> tuple[dict[str, float | None], dict[str, int | None]]:
    """The indicators a strategy state holds, named by kind and parameters (`ema_12`,
    `supertrend_10_3`): their values (floats in 1e-9 price units) and the directions of
    those with one (+1 up, -1 down); None while an indicator is warming up."""
    values: dict[str, float | None] = {}
    directions: dict[str, int | None] = {}
    if not isinstance(state, msgspec.Struct):
        return values, directions
    for name in state.__struct_fields__:
        ind = getattr(state, name)
        if isinstance(ind, EMA):
            values[f"ema_{ind.period}"] = ind.value
        elif isinstance(ind, SMA):
            values[f"sma_{ind.period}"] = ind.value
        elif isinstance(ind, ATR):
            values[f"atr_{ind.period}"] = ind.value
        elif isinstance(ind, Supertrend):
            label = f"supertrend_{ind.length}_{ind.multiplier:g}"
            values[label] = ind.value
            directions[label] = ind.direction if ind.ready else None
    return values, directions
