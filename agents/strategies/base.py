"""The strategy interface: pure functions of (per-symbol state, market record) → (state, signals).

How a driver (the Faust agent, or a backtest) uses a strategy, per symbol:

1. ``params = strategy.parse_params(raw)`` from a config file or a ``control`` message;
   a bad value raises `ParamError` naming the parameter.
2. ``state = strategy.initial_state(params)`` the first time the symbol is seen, or
   ``strategy.decode_state(blob)`` when the stored state is read back.
3. For each completed bar: ``state, signals = strategy.on_bar(state, bar, ctx)``; for each
   trade or quote: ``strategy.on_tick(state, tick, ctx)`` (a no-op unless a strategy
   overrides it), or for consecutive ones of one type ``strategy.on_ticks(state, ticks,
   ctx)``, which must equal `on_tick` on each in turn. Publish the signals, then store
   ``strategy.encode_state(state)``.
4. On new parameters at run time: ``state = strategy.reconfigure(state, params)``.

Rules every strategy keeps:

* Methods never mutate the state they are given; they return a new one (unchanged parts
  may be shared). So a driver may keep the old state until the new one is safely stored.
* No Kafka, Faust, HTTP or clock: time is the data's own (a bar's close, a quote's receive
  time). Exchange sessions are passed in through `Context.session`.
* A signal states a target position (signed contracts/shares), stamped with the time of
  the data that caused it (``bar.ts_close`` for a bar), and carries a deterministic id from
  (strategy name, symbol, ts_event, sequence): replaying the same input gives the same ids.
* A signal is emitted only when the target changes. A reversal (long to short) is one
  signal from +q to -q, so the executor can send it as one order.
* The whole state is a msgspec Struct whose msgpack encoding round-trips exactly (floats
  included), so a run resumed from stored state emits what an uninterrupted run would.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from agents.ticks import TickBatch
from ticklane.control import ParamValue
from ticklane.market import Bar, Quote, Trade
from ticklane.trading import Signal


class ParamError(ValueError):
    """Strategy parameters that do not validate; the message names the strategy and parameter."""

    def __init__(self, strategy: str, param: str | None, detail: str) -> None:
        where = f"parameter {param!r}" if param else "parameters"
        super().__init__(f"strategy {strategy!r}: invalid {where}: {detail}")
        self.strategy = strategy
        self.param = param
        self.detail = detail


class StrategyParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every strategy's parameters: frozen, keyword-only, unknown fields rejected.

    Constraints on single fields go in ``Annotated[..., msgspec.Meta(...)]``; constraints
    across fields go in ``__post_init__`` raising ValueError with a message naming them.
    """


class StrategyState(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every strategy's per-symbol state; `target` is the last target it signalled."""

    target: int = 0


class Session(msgspec.Struct, frozen=True):
    """One exchange trading session, as a calendar library gives it (UTC ns)."""

    date: str
    """The session's label, ISO date in the exchange's calendar (``2024-11-29``)."""
    open_ns: int
    close_ns: int


class Context(msgspec.Struct, frozen=True):
    """What a strategy may know besides its state and the record: injected by the driver."""

    symbol: str
    session: Session | None = None
    """The session the data's time falls in (or the next one), for strategies that need it."""
    warming: bool = False
    """The bars are history fed before live data (`agents.warmup`): whatever the strategy
    emits is dropped, never published as a signal."""


P = TypeVar("P", bound=StrategyParams)
S = TypeVar("S", bound=StrategyState)

Step = tuple[S, list[Signal]]
"""What every event method returns: the new state and the signals it caused (often none)."""


def parse_params(strategy: str, params_type: type[P], raw: Mapping[str, ParamValue]) -> P:
    """Validate raw parameters into `params_type`; raise `ParamError` naming the culprit.

    Values may be typed (from a TOML/JSON config or a control message) or strings (from a
    command line, ``--param fast=5``); only strings are parsed leniently, so ``True`` is never
    taken for 1 nor ``5.5`` silently truncated.
    """
    fields = {f.name: f for f in msgspec.structs.fields(params_type)}
    converted: dict[str, object] = {}
    for name, value in raw.items():
        field = fields.get(name)
        if field is None:
            known = ", ".join(sorted(fields)) or "none"
            raise ParamError(strategy, name, f"unknown parameter (known: {known})")
        try:
            converted[name] = msgspec.convert(value, field.type, strict=not isinstance(value, str))
        except msgspec.ValidationError as exc:
            raise ParamError(strategy, name, f"{_strip_path(exc)}, got {value!r}") from None
    try:
        return msgspec.convert(converted, params_type)
    except msgspec.ValidationError as exc:
        # Only __post_init__ (cross-field rules) can fail here: each field passed above.
        raise ParamError(strategy, None, _strip_path(exc)) from None


def _strip_path(exc: msgspec.ValidationError) -> str:
    return str(exc).split(" - at `$", 1)[0]


class Strategy(ABC, Generic[P, S]):
    """A trading rule as pure methods over per-symbol state; subclasses set the class fields.

    Instances hold nothing that changes: one instance serves every symbol.
    """

    name: ClassVar[str]
    """The registry name; signals carry it as their `strategy`."""
    params_type: type[P]
    state_type: type[S]

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(self.state_type)

    def parse_params(self, raw: Mapping[str, ParamValue] | None = None) -> P:
        """Parameters from raw values; defaults for what is missing."""
        return parse_params(self.name, self.params_type, raw or {})

    @abstractmethod
    def initial_state(self, params: P) -> S:
        """State of a symbol never seen before: flat, indicators cold."""

    @abstractmethod
    def reconfigure(self, state: S, params: P) -> S:
        """State after a parameter change: keeps the target so no spurious signal is sent."""

    def resets(self, state: S, params: P) -> bool:
        """Whether `reconfigure(state, params)` starts indicators over, so they need history
        again (a warm-up) rather than weeks of live bars. Default: it never does."""
        del state, params
        return False

    def resume(self, previous: S, warmed: S) -> S:
        """After a reset's warm-up: the warmed indicators with the position the strategy had
        signalled before (the executor holds it); a later bar signals from there."""
        return msgspec.structs.replace(warmed, target=previous.target)

    @abstractmethod
    def on_bar(self, state: S, bar: Bar, ctx: Context) -> Step[S]:
        """Absorb one completed bar of `ctx.symbol`."""

    def on_tick(self, state: S, tick: Trade | Quote, ctx: Context) -> Step[S]:
        """Absorb one trade or quote; bar-driven strategies ignore ticks."""
        del tick, ctx
        return state, []

    def on_ticks(self, state: S, ticks: TickBatch, ctx: Context) -> Step[S]:
        """Absorb consecutive ticks of one record type, all in the session `ctx` gives:
        exactly what `on_tick` on each in turn would do (the default does just that). A
        strategy that takes many ticks overrides it to take them in bulk, as columns."""
        out: list[Signal] = []
        for tick in ticks.items():
            state, signals = self.on_tick(state, tick, ctx)
            out += signals
        return state, out

    def encode_state(self, state: S) -> bytes:
        """State as msgpack bytes, for the per-symbol table."""
        return self._encoder.encode(state)

    def decode_state(self, raw: bytes) -> S:
        """State back from `encode_state` bytes, exactly."""
        return self._decoder.decode(raw)

    def signal(self, ctx: Context, ts_event: int, target: int, bar: Bar, reason: str) -> Signal:
        """A signal for `ctx.symbol` caused by `bar` (one per bar at most, so sequence 0)."""
        return Signal.create(
            self.name,
            ctx.symbol,
            ts_event,
            target,
            instrument_id=bar.instrument_id,
            reference_price=bar.close,
            reason=reason,
        )


AnyStrategy = Strategy[Any, Any]


def run_bars(strategy: Strategy[P, S], state: S, bars: Iterable[Bar], ctx: Context) -> Step[S]:
    """Fold `on_bar` over bars: the backtest loop, and the reference the agents must equal."""
    out: list[Signal] = []
    for bar in bars:
        state, signals = strategy.on_bar(state, bar, ctx)
        out.extend(signals)
    return state, out
