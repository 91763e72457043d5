"""What the `control` topic says about a strategy on a symbol: enabled or not, and its parameters.

Pure: a `ControlBook` is fed commands in topic order (by whatever reads the topic) and
answered by the driver for each symbol it processes. The topic is compacted on
`ControlCommand.key`, so only the latest command per concern and scope survives; the
answers here depend on nothing else, so a worker restarted after compaction answers as
one that saw every command.

Scopes: a command names a strategy and a symbol, either empty for "every". Where several
scopes match (`enable ema_cross ESU4` and `disable ema_cross *`), the command issued
last (greatest `ts_event`, then the later one read) wins. Parameters are merged from the
broadest scope to the narrowest matching command in issue order, over the config file's.
"""

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ticklane.control import ControlAction, ControlCommand, ParamValue

if TYPE_CHECKING:
    from agents.roster import Slot

log = logging.getLogger(__name__)

_HANDLED = frozenset({ControlAction.ENABLE, ControlAction.DISABLE, ControlAction.SET_PARAMS})


class ControlBook:
    """Latest enable/disable and set_params command per scope; safe to feed from one thread."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, ControlCommand]] = {}
        self._arrivals = 0
        self._lock = threading.Lock()
        self.version = 0
        """Bumped on every applied command: drivers cache answers per version."""

    def apply(self, command: ControlCommand) -> bool:
        """Take one command in topic order; False for actions agents do not act on."""
        if command.action not in _HANDLED:
            return False
        with self._lock:
            self._arrivals += 1
            # Copy on write: readers on another thread always see a whole mapping.
            self._latest = {**self._latest, command.key: (self._arrivals, command)}
            self.version += 1
        return True

    def _matching(self, concern: str, strategy: str, symbol: str) -> list[ControlCommand]:
        latest = self._latest
        found = [
            latest[key]
            for key in {f"{concern}/{st}/{sy}" for st in (strategy, "") for sy in (symbol, "")}
            if key in latest
        ]
        found.sort(key=lambda item: (item[1].ts_event, item[0]))
        return [command for _, command in found]

    def enabled(self, strategy: str, symbol: str) -> bool:
        """Whether the strategy runs on the symbol (enabled unless a command says otherwise)."""
        matching = self._matching("enabled", strategy, symbol)
        return not matching or matching[-1].action is ControlAction.ENABLE

    def params(self, strategy: str, symbol: str) -> dict[str, ParamValue]:
        """Parameter overrides for the strategy on the symbol, latest command last."""
        merged: dict[str, ParamValue] = {}
        for command in self._matching(ControlAction.SET_PARAMS.value, strategy, symbol):
            merged.update(command.params)
        return merged


def params_version(params: Mapping[str, ParamValue]) -> str:
    """A stable fingerprint of effective parameters, stored with a symbol's strategy state."""
    return msgspec.json.encode(sorted(params.items())).decode()


class EffectiveParams:
    """A slot's parameters on a symbol: the config's under control overrides, parsed once
    per control version; overrides the strategy rejects are logged and ignored."""

    def __init__(self, controls: ControlBook) -> None:
        self._controls = controls
        self._cache: dict[tuple[str, str], tuple[int, str, Any]] = {}

    def __call__(self, slot: "Slot", symbol: str) -> tuple[str, Any]:
        """(params_version, parsed parameters) in force now."""
        key = (slot.name, symbol)
        cached = self._cache.get(key)
        version_now = self._controls.version
        if cached is not None and cached[0] == version_now:
            return cached[1], cached[2]
        raw: dict[str, ParamValue] = {**slot.params, **self._controls.params(slot.name, symbol)}
        version = params_version(raw)
        if cached is not None and cached[1] == version:
            parsed = cached[2]
        else:
            try:
                parsed = slot.strategy.parse_params(raw)
            except ValueError as exc:
                log.warning("ignoring control parameters for %s on %s: %s", slot.name, symbol, exc)
                raw = dict(slot.params)
                version, parsed = params_version(raw), slot.strategy.parse_params(raw)
        self._cache[key] = (version_now, version, parsed)
        return version, parsed
