"""Commands on the compacted `control` topic: written by the API, read by agents and executor."""

from enum import StrEnum

import msgspec

from ticklane import ids
from ticklane.units import Nanos


class ControlAction(StrEnum):
    """What a control command asks for."""

    ENABLE = "enable"
    DISABLE = "disable"
    SET_PARAMS = "set_params"
    KILL_SWITCH = "kill_switch"
    FLATTEN = "flatten"


class KillSwitchState(StrEnum):
    """Trading permission: all orders, only position-reducing orders, or none."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


ParamValue = bool | int | float | str


class ControlCommand(msgspec.Struct, frozen=True, array_like=True):
    """One operator instruction. Empty `strategy`/`symbol` mean every strategy/symbol."""

    command_id: str
    action: ControlAction
    ts_event: Nanos
    strategy: str = ""
    symbol: str = ""
    params: dict[str, ParamValue] = msgspec.field(default_factory=dict)
    kill_switch: KillSwitchState | None = None
    issued_by: str = ""

    @classmethod
    def create(
        cls,
        action: ControlAction,
        ts_event: int,
        *,
        strategy: str = "",
        symbol: str = "",
        params: dict[str, ParamValue] | None = None,
        kill_switch: KillSwitchState | None = None,
        issued_by: str = "",
    ) -> "ControlCommand":
        """A command with its deterministic id."""
        return cls(
            command_id=ids.command_id(action.value, strategy, symbol, ts_event),
            action=action,
            ts_event=ts_event,
            strategy=strategy,
            symbol=symbol,
            params=dict(params or {}),
            kill_switch=kill_switch,
            issued_by=issued_by,
        )

    @property
    def key(self) -> str:
        """Compaction key: the latest command per concern and scope wins.

        Enable and disable share a key, so compaction keeps whichever came last.
        """
        concern = "enabled" if self.action in _ENABLE_DISABLE else self.action.value
        return f"{concern}/{self.strategy}/{self.symbol}"


_ENABLE_DISABLE = frozenset({ControlAction.ENABLE, ControlAction.DISABLE})


class ControlAck(msgspec.Struct, frozen=True, array_like=True):
    """A process's answer to a command it acts on: applied, or refused and why.

    Written to `control.acks`, keyed by command and process, so the latest answer of each
    process survives compaction; the API shows a command as pending until answered.
    """

    command_id: str
    by: str
    """The process that answered: `executor/<group>` or `agents/<app>@<host>`."""
    applied: bool
    ts_event: Nanos
    reason: str = ""

    @property
    def key(self) -> str:
        """Compaction key: one answer per command and process."""
        return f"{self.command_id}/{self.by}"
