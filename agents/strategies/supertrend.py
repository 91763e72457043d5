"""Supertrend: long while the trend is up, short (or flat) while down; a flip is a reversal."""

import copy
from typing import Annotated

import msgspec

from agents.indicators import Supertrend
from agents.strategies.base import Context, Step, Strategy, StrategyParams, StrategyState
from ticklane.market import Bar


class SupertrendParams(StrategyParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """ATR length and band multiplier of the Supertrend, position size, whether to go short."""

    length: Annotated[int, msgspec.Meta(ge=1)] = 10
    multiplier: Annotated[float, msgspec.Meta(gt=0.0, le=100.0)] = 3.0
    quantity: Annotated[int, msgspec.Meta(ge=1)] = 1
    long_only: bool = False


class SupertrendState(StrategyState, frozen=True, kw_only=True):
    """The indicator's state, the target last signalled, and the last bar absorbed."""

    params: SupertrendParams
    supertrend: Supertrend
    last_ts: int = -1
    """Close time of the last bar absorbed; a bar not after it is a replay and is ignored."""


class SupertrendStrategy(Strategy[SupertrendParams, SupertrendState]):
    """Target +quantity while the Supertrend direction is up, -quantity (0 if long_only) down.

    The first signal comes on the first bar with a Supertrend value (``length + 1`` bars).
    Its direction there is the indicator's starting convention (up, as pandas-ta), which
    the strategy follows as it is: trading the indicator exactly as the reference
    library computes it keeps backtests comparable.
    """

    name = "supertrend"
    params_type = SupertrendParams
    state_type = SupertrendState

    def initial_state(self, params: SupertrendParams) -> SupertrendState:
        """Flat, with a cold indicator."""
        return SupertrendState(params=params, supertrend=_indicator(params))

    def reconfigure(self, state: SupertrendState, params: SupertrendParams) -> SupertrendState:
        """Keep the warm indicator if its own parameters are unchanged; keep the target."""
        old = state.params
        same = (params.length, params.multiplier) == (old.length, old.multiplier)
        indicator = state.supertrend if same else _indicator(params)
        return msgspec.structs.replace(state, params=params, supertrend=indicator)

    def resets(self, state: SupertrendState, params: SupertrendParams) -> bool:
        """A new length or multiplier starts the indicator over."""
        old = state.params
        return (params.length, params.multiplier) != (old.length, old.multiplier)

    def on_bar(self, state: SupertrendState, bar: Bar, ctx: Context) -> Step[SupertrendState]:
        """Update the Supertrend; signal when the wanted position changes."""
        ts = bar.ts_close
        if ts <= state.last_ts:
            return state, []
        indicator = copy.copy(state.supertrend)  # the indicator mutates; the input must not
        target = state.target
        if indicator.update(bar.high, bar.low, bar.close) is not None:
            p = state.params
            up = indicator.direction > 0
            target = p.quantity if up else (0 if p.long_only else -p.quantity)
        new_state = msgspec.structs.replace(state, supertrend=indicator, last_ts=ts, target=target)
        if target == state.target:
            return new_state, []
        reason = "supertrend up" if indicator.direction > 0 else "supertrend down"
        return new_state, [self.signal(ctx, ts, target, bar, reason)]


def _indicator(params: SupertrendParams) -> Supertrend:
    return Supertrend(length=params.length, multiplier=params.multiplier)
