"""Trading strategies: pure rules over per-symbol state that emit target-position signals.

See `agents.strategies.base` for the interface and how a driver calls it, and
`agents.strategies.registry` for lookup by name.
"""

from agents.strategies.base import (
    AnyStrategy,
    Context,
    ParamError,
    Session,
    Strategy,
    StrategyParams,
    StrategyState,
    run_bars,
)
from agents.strategies.registry import StrategyRegistry, UnknownStrategyError, registry

__all__ = [
    "AnyStrategy",
    "Context",
    "ParamError",
    "Session",
    "Strategy",
    "StrategyParams",
    "StrategyRegistry",
    "StrategyState",
    "UnknownStrategyError",
    "registry",
    "run_bars",
]
