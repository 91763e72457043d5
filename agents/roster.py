"""Which strategies run on which symbol, with which parameters and bars: from the settings.

A `[[agents.strategies]]` entry with `symbols = "*"` runs on every symbol that no entry of
the same strategy lists by name; a listed symbol takes its own entry's parameters and
bar interval. So one strategy runs at most once per symbol and its signal ids (strategy,
symbol, time) never collide.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from agents.strategies.base import AnyStrategy, Strategy
from agents.strategies.registry import StrategyRegistry
from ticklane.control import ParamValue
from ticklane.settings import AgentSettings, StrategyConfig

INTERVALS_NS: Final = {"1s": 1_000_000_000, "1m": 60_000_000_000, "5m": 300_000_000_000}
"""Bar intervals the agents build, as named in settings and topics (`bars.1m`)."""
INTERVAL_NAMES: Final = {ns: name for name, ns in INTERVALS_NS.items()}


class RosterError(ValueError):
    """A strategy entry that cannot run: unknown name, bad parameters, unsupported strategy."""


@dataclass(frozen=True)
class Slot:
    """One strategy on one symbol: the instance, its bar interval and its configured params."""

    name: str
    strategy: AnyStrategy
    interval_ns: int
    params: dict[str, ParamValue]


def is_chain_strategy(strategy: AnyStrategy) -> bool:
    """Whether a strategy decides on an underlying's option chain (`on_definition`)."""
    return hasattr(strategy, "on_definition")


def _bar_driven(strategy: AnyStrategy) -> bool:
    # The per-symbol engine feeds completed bars; a strategy that needs ticks or other
    # symbols' records (0DTE: option quotes and definitions) runs on a chain.
    kind = type(strategy)
    overrides_tick = kind.on_tick is not Strategy.on_tick or kind.on_ticks is not Strategy.on_ticks
    return not overrides_tick and not is_chain_strategy(strategy)


def split_by_kind(
    entries: Iterable[StrategyConfig], registry: StrategyRegistry
) -> tuple[list[StrategyConfig], list[StrategyConfig]]:
    """Configured strategies as (per-symbol, per-chain); RosterError for an unknown name."""
    per_symbol: list[StrategyConfig] = []
    per_chain: list[StrategyConfig] = []
    for entry in entries:
        try:
            strategy = registry.create(entry.name)
        except LookupError as exc:
            raise RosterError(str(exc)) from None
        (per_chain if is_chain_strategy(strategy) else per_symbol).append(entry)
    return per_symbol, per_chain


class Roster:
    """Strategy slots per symbol, validated once at start and cached per symbol."""

    def __init__(
        self,
        entries: Iterable[StrategyConfig],
        registry: StrategyRegistry,
        *,
        chains: bool = False,
    ) -> None:
        """`chains`: a roster of chain strategies (keyed by underlying) instead of bar-driven."""
        self._wildcard: list[StrategyConfig] = []
        self._listed: dict[str, list[StrategyConfig]] = {}
        self._strategies: dict[str, AnyStrategy] = {}
        entries_seen = list(entries)
        for entry in entries_seen:
            strategy = self._strategies.get(entry.name)
            if strategy is None:
                try:
                    strategy = registry.create(entry.name)
                except LookupError as exc:
                    raise RosterError(str(exc)) from None
                if chains and not is_chain_strategy(strategy):
                    raise RosterError(f"strategy {entry.name!r} does not trade option chains")
                if not chains and not _bar_driven(strategy):
                    raise RosterError(
                        f"strategy {entry.name!r} needs ticks or other symbols' records; "
                        "the per-symbol agents run bar-driven strategies only"
                    )
                self._strategies[entry.name] = strategy
            try:
                strategy.parse_params(entry.params)
            except ValueError as exc:
                raise RosterError(str(exc)) from None
            if entry.symbols == "*":
                self._wildcard.append(entry)
            else:
                for symbol in entry.symbols:
                    self._listed.setdefault(symbol, []).append(entry)
        self._cache: dict[str, tuple[Slot, ...]] = {}
        self._intervals = frozenset(INTERVALS_NS[e.bar_interval] for e in entries_seen)

    def intervals(self) -> frozenset[int]:
        """Every bar interval some strategy of the roster is fed."""
        return self._intervals

    @classmethod
    def from_settings(cls, settings: AgentSettings, registry: StrategyRegistry) -> "Roster":
        """The roster the settings describe."""
        return cls(settings.strategies, registry)

    def strategy(self, name: str) -> AnyStrategy:
        """The instance serving every symbol for a strategy name."""
        return self._strategies[name]

    def slots(self, symbol: str) -> tuple[Slot, ...]:
        """The strategies that run on `symbol`, in settings order."""
        cached = self._cache.get(symbol)
        if cached is not None:
            return cached
        listed = self._listed.get(symbol, [])
        names = {entry.name for entry in listed}
        chosen = listed + [e for e in self._wildcard if e.name not in names]
        slots = tuple(
            Slot(e.name, self._strategies[e.name], INTERVALS_NS[e.bar_interval], dict(e.params))
            for e in chosen
        )
        self._cache[symbol] = slots
        return slots
