"""Controls: the calls that write `control` commands, for traders only, every one audited.

Enable or disable a strategy (for a symbol, or all), set its parameters (checked against the
parameters the strategy declares before anything is written: an unknown name or a bad value
is a 422 naming it), set the kill switch for a scope, flatten a scope. Each writes one
`ControlCommand` carrying who issued it; the agents and the executor read it from the topic.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, Field

from agents.strategies.base import ParamError
from agents.strategies.registry import StrategyRegistry, UnknownStrategyError
from api.access import FORBIDDEN
from api.auth import User
from api.views import CommandStatus, command_status
from ticklane import wire
from ticklane.control import ControlAction, ControlCommand, KillSwitchState, ParamValue

Scope = Annotated[str, Field(max_length=200, description="Empty: every one.")]
StrategyName = Annotated[str, Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
KAFKA_REFUSED: Final = "Kafka did not take the command; nothing was written"


class Publisher(Protocol):
    """Writes one message to a topic (by base name) and waits until Kafka has it."""

    def publish(self, topic: str, key: bytes, value: bytes) -> bool:
        """Whether Kafka acknowledged the message."""
        ...


class SymbolScope(BaseModel):
    """Which symbols a strategy command covers."""

    symbol: Scope = ""


class ParamsChange(BaseModel):
    """New parameter values for a strategy, for a symbol or all."""

    symbol: Scope = ""
    params: dict[str, bool | int | float | str] = Field(
        description="Names the strategy declares, with their new values.", max_length=100
    )


class KillSwitchChange(BaseModel):
    """A kill switch state for a scope: every strategy and symbol unless narrowed."""

    state: KillSwitchState
    strategy: Scope = ""
    symbol: Scope = ""


class FlattenScope(BaseModel):
    """What to close: a strategy, a symbol, both, or (both empty) everything."""

    strategy: Scope = ""
    symbol: Scope = ""


@dataclass
class Commands:
    """Checks a command against the known strategies and writes it to `control`."""

    publisher: Callable[[], Publisher | None]
    registry: StrategyRegistry

    def write(self, command: ControlCommand, response: Response) -> CommandStatus:
        """Write one command (503 when Kafka does not take it), pending until a process
        answers; its id also in `X-Command-Id`."""
        sink = self.publisher()
        if sink is None or not sink.publish("control", command.key.encode(), wire.encode(command)):
            raise HTTPException(503, KAFKA_REFUSED)
        response.headers["X-Command-Id"] = command.command_id
        return command_status(command, [])

    def known(self, strategy: str) -> None:
        """422 unless `strategy` is empty (every one) or a strategy this install has."""
        names = self.registry.names()
        if strategy and strategy not in names:
            raise HTTPException(422, f"unknown strategy {strategy!r} (known: {', '.join(names)})")

    def check_params(self, strategy: str, params: dict[str, ParamValue]) -> None:
        """422 naming the first parameter the strategy does not declare or accept."""
        self.known(strategy)
        try:
            self.registry.create(strategy).parse_params(params)
        except (ParamError, UnknownStrategyError, ImportError) as exc:
            raise HTTPException(422, str(exc)) from None


def controls_router(
    trader: Callable[..., User],
    publisher: Callable[[], Publisher | None],
    registry: StrategyRegistry,
) -> APIRouter:
    """The control routes; `trader` is the dependency that lets only traders in."""
    router = APIRouter(
        prefix="/api/v1/controls",
        tags=["controls"],
        responses={**FORBIDDEN, 422: {"description": "A bad value, named."}},
    )
    commands = Commands(publisher, registry)
    as_trader = Depends(trader)

    @router.post("/strategies/{strategy}/enable")
    def enable(
        strategy: StrategyName,
        scope: SymbolScope,
        response: Response,
        user: Annotated[User, as_trader],
    ) -> CommandStatus:
        """Let a strategy signal again, for a symbol or every one."""
        commands.known(strategy)
        command = _command(ControlAction.ENABLE, user, strategy=strategy, symbol=scope.symbol)
        return commands.write(command, response)

    @router.post("/strategies/{strategy}/disable")
    def disable(
        strategy: StrategyName,
        scope: SymbolScope,
        response: Response,
        user: Annotated[User, as_trader],
    ) -> CommandStatus:
        """Stop a strategy signalling, for a symbol or every one."""
        commands.known(strategy)
        command = _command(ControlAction.DISABLE, user, strategy=strategy, symbol=scope.symbol)
        return commands.write(command, response)

    @router.post("/strategies/{strategy}/params")
    def set_params(
        strategy: StrategyName,
        change: ParamsChange,
        response: Response,
        user: Annotated[User, as_trader],
    ) -> CommandStatus:
        """Change parameters, checked against those the strategy declares first."""
        params: dict[str, ParamValue] = dict(change.params)
        commands.check_params(strategy, params)
        command = _command(
            ControlAction.SET_PARAMS, user, strategy=strategy, symbol=change.symbol, params=params
        )
        return commands.write(command, response)

    @router.post("/kill-switch")
    def kill_switch(
        change: KillSwitchChange, response: Response, user: Annotated[User, as_trader]
    ) -> CommandStatus:
        """Trade normally (active), only reduce positions (reducing), or not at all (halted)."""
        commands.known(change.strategy)
        command = _command(
            ControlAction.KILL_SWITCH,
            user,
            strategy=change.strategy,
            symbol=change.symbol,
            kill_switch=change.state,
        )
        return commands.write(command, response)

    @router.post("/flatten")
    def flatten(
        scope: FlattenScope, response: Response, user: Annotated[User, as_trader]
    ) -> CommandStatus:
        """Close every position in the scope (the executor sends the orders)."""
        commands.known(scope.strategy)
        command = _command(
            ControlAction.FLATTEN, user, strategy=scope.strategy, symbol=scope.symbol
        )
        return commands.write(command, response)

    return router


def _command(
    action: ControlAction,
    user: User,
    *,
    strategy: str = "",
    symbol: str = "",
    params: dict[str, ParamValue] | None = None,
    kill_switch: KillSwitchState | None = None,
) -> ControlCommand:
    return ControlCommand.create(
        action,
        time.time_ns(),
        strategy=strategy,
        symbol=symbol,
        params=params,
        kill_switch=kill_switch,
        issued_by=user.name,
    )
