"""EMA crossover: long while the fast EMA is above the slow one, short (or flat) while below."""

import copy
from typing import Annotated

import msgspec

from agents.indicators import EMA
from agents.strategies.base import Context, Step, Strategy, StrategyParams, StrategyState
from ticklane.market import Bar

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class EmaCrossParams(StrategyParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Periods of the two EMAs (on bar closes), position size, and whether to go short."""

    fast: PositiveInt = 12
    slow: PositiveInt = 26
    quantity: PositiveInt = 1
    long_only: bool = False

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")


class EmaCrossState(StrategyState, frozen=True, kw_only=True):
    """Both EMAs' warm-up state, the target last signalled, and the last bar absorbed."""

    params: EmaCrossParams
    fast: EMA
    slow: EMA
    last_ts: int = -1
    """Close time of the last bar absorbed; a bar not after it is a replay and is ignored."""


class EmaCross(Strategy[EmaCrossParams, EmaCrossState]):
    """Target +quantity while EMA(fast) > EMA(slow), -quantity (0 if long_only) while below.

    Nothing is signalled until both EMAs are warm (``slow`` bars). Equal EMAs keep the
    previous target, so a touch without a cross sends nothing. A cross is one signal that
    reverses the position (+q to -q), never a close followed by an open.
    """

    name = "ema_cross"
    params_type = EmaCrossParams
    state_type = EmaCrossState

    def initial_state(self, params: EmaCrossParams) -> EmaCrossState:
        """Flat, with cold EMAs."""
        return EmaCrossState(params=params, fast=EMA(params.fast), slow=EMA(params.slow))

    def reconfigure(self, state: EmaCrossState, params: EmaCrossParams) -> EmaCrossState:
        """Keep warm EMAs whose period did not change; always keep target and replay mark."""
        fast = state.fast if params.fast == state.params.fast else EMA(params.fast)
        slow = state.slow if params.slow == state.params.slow else EMA(params.slow)
        return msgspec.structs.replace(state, params=params, fast=fast, slow=slow)

    def resets(self, state: EmaCrossState, params: EmaCrossParams) -> bool:
        """A new period starts that EMA over."""
        return (params.fast, params.slow) != (state.params.fast, state.params.slow)

    def on_bar(self, state: EmaCrossState, bar: Bar, ctx: Context) -> Step[EmaCrossState]:
        """Update both EMAs with the close; signal when the wanted position changes."""
        ts = bar.ts_close
        if ts <= state.last_ts:
            return state, []
        # Copies, so the caller's state is left as it was (the indicators mutate in place).
        fast, slow = copy.copy(state.fast), copy.copy(state.slow)
        fast_value, slow_value = fast.update(bar.close), slow.update(bar.close)
        target = state.target
        if fast_value is not None and slow_value is not None and fast_value != slow_value:
            p = state.params
            above = fast_value > slow_value
            target = p.quantity if above else (0 if p.long_only else -p.quantity)
        new_state = msgspec.structs.replace(state, fast=fast, slow=slow, last_ts=ts, target=target)
        if target == state.target:
            return new_state, []
        reason = "fast EMA above slow" if target > 0 else "fast EMA below slow"
        return new_state, [self.signal(ctx, ts, target, bar, reason)]
