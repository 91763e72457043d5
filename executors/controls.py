"""Kill switch states from `control` commands, by scope: pure, rebuilt by reading the topic.

Each scope (every strategy and symbol, one strategy, one symbol, or one strategy on one symbol)
keeps the state its latest command set; an order is governed by the strictest state among the
scopes it falls in, so a wide "active" never lifts a narrower "halted".
"""

from typing import Final

from ticklane.control import ControlAction, ControlCommand, KillSwitchState

_STRICTNESS: Final = {
    KillSwitchState.ACTIVE: 0,
    KillSwitchState.REDUCING: 1,
    KillSwitchState.HALTED: 2,
}


class KillSwitchBook:
    """The kill switch state of every scope that has one."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], KillSwitchState] = {}

    def apply(self, command: ControlCommand) -> KillSwitchState | None:
        """Take a kill switch command into account: the state its scope is now in; None for
        any other command."""
        if command.action is not ControlAction.KILL_SWITCH or command.kill_switch is None:
            return None
        self._states[(command.strategy, command.symbol)] = command.kill_switch
        return command.kill_switch

    def state_for(self, strategy: str, symbol: str) -> KillSwitchState:
        """The strictest state among the scopes an order for (strategy, symbol) falls in."""
        scopes = ((strategy, symbol), (strategy, ""), ("", symbol), ("", ""))
        return strictest(*(self._states[s] for s in scopes if s in self._states))


def strictest(*states: KillSwitchState) -> KillSwitchState:
    """The strictest of several states (ACTIVE when given none)."""
    return max(states, key=_STRICTNESS.__getitem__, default=KillSwitchState.ACTIVE)


def in_scope(command: ControlCommand, strategy: str, symbol: str) -> bool:
    """Whether a command's scope covers a strategy and symbol (empty means every one)."""
    return command.strategy in {"", strategy} and command.symbol in {"", symbol}
