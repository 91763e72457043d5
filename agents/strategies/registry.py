"""Strategies by name: the ``ticklane.strategies`` entry points, plus classes registered directly.

Entry points let a user's own package add a strategy without touching this repository:

    [project.entry-points."ticklane.strategies"]
    my_rule = "my_package.rules:MyRule"

A strategy's entry-point name must equal its class's ``name``, because signals carry that
name and the config and control topic refer to the strategy by it.
"""

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

from agents.strategies.base import AnyStrategy, Strategy

ENTRY_POINT_GROUP = "ticklane.strategies"

StrategyClass = type[AnyStrategy]


class UnknownStrategyError(LookupError):
    """No strategy of that name; the message lists the available names."""


class StrategyLoadError(ImportError):
    """An entry point exists but does not load to a usable strategy class."""


class StrategyRegistry:
    """Name → strategy class, from entry points and from `register`.

    Entry points are read when the registry is made and loaded only when asked for, so a
    broken third-party strategy fails its own lookup and nothing else.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP, *, entry_points_too: bool = True) -> None:
        self._entry_points: dict[str, EntryPoint] = (
            {ep.name: ep for ep in entry_points(group=group)} if entry_points_too else {}
        )
        self._classes: dict[str, StrategyClass] = {}

    def register(self, cls: StrategyClass, name: str | None = None) -> StrategyClass:
        """Add a class (for tests and backtests); usable as a decorator."""
        key = name or cls.name
        _check(key, cls)
        known = self._classes.get(key)
        if known is not None and known is not cls:
            raise ValueError(f"strategy {key!r} is already registered as {known.__qualname__}")
        self._classes[key] = cls
        return cls

    def names(self) -> list[str]:
        """Every name that can be looked up, sorted."""
        return sorted(self._entry_points.keys() | self._classes.keys())

    def get(self, name: str) -> StrategyClass:
        """The class registered under `name`; `UnknownStrategyError` lists the choices."""
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        ep = self._entry_points.get(name)
        if ep is None:
            available = ", ".join(self.names()) or "none"
            raise UnknownStrategyError(f"unknown strategy {name!r}; available: {available}")
        loaded = ep.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Strategy)):
            raise StrategyLoadError(f"entry point {name!r} ({ep.value}) is not a Strategy class")
        _check(name, loaded)
        self._classes[name] = loaded
        return loaded

    def create(self, name: str) -> AnyStrategy:
        """An instance of the strategy named `name`."""
        return self.get(name)()


def _check(name: str, cls: StrategyClass) -> None:
    if getattr(cls, "name", None) != name:
        raise StrategyLoadError(
            f"strategy registered as {name!r} names itself {getattr(cls, 'name', None)!r}; "
            "signals carry the class's name, so the two must match"
        )


def registry(extra: Mapping[str, StrategyClass] | None = None) -> StrategyRegistry:
    """A registry of the installed strategies, plus `extra` classes by name."""
    reg = StrategyRegistry()
    for name, cls in (extra or {}).items():
        reg.register(cls, name)
    return reg
