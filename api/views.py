"""What the API answers: typed response models, and the conversions from the kernel's types.

Pure. Inside ticklane prices and money are integers in 1e-9 units; here they become decimal
strings in price (or currency) units, exactly (a JSON float would round them), and times stay
integer nanoseconds since the epoch.
"""

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel, Field

from api.store import KeyedBar, Streamed
from ticklane.control import ControlAck, ControlCommand
from ticklane.market import Bar, InstrumentDef
from ticklane.status import Health as ProcessHealth
from ticklane.status import ProcessStatus, health
from ticklane.trading import Fill, Indicators, Order, Position, Signal
from ticklane.units import UNDEF_PRICE, UNDEF_TIMESTAMP, price_to_decimal


def units(value: int) -> str:
    """A 1e-9 integer as a decimal string in whole units, without exponent or noise."""
    return format(price_to_decimal(value).normalize(), "f")


def maybe_units(value: int | None) -> str | None:
    """`units`, or None."""
    return None if value is None else units(value)


class PositionView(BaseModel):
    """A strategy's net position in one symbol, as the executor last published it."""

    strategy: str
    symbol: str
    quantity: int
    avg_price: str = Field(description="Average open price, in price units.")
    realized_pnl: str = Field(description="Realized P&L net of fees, in currency units.")
    fees: str = Field(description="Fees paid, in currency units.")
    ts_event: int = Field(description="Time of the last fill, ns since the epoch.")
    last_fill_id: str
    instrument_id: int


class NetPositionView(BaseModel):
    """One symbol's position summed over strategies."""

    symbol: str
    quantity: int
    strategies: int = Field(description="How many strategies hold a non-zero position in it.")


class LegView(BaseModel):
    """One leg of a multi-leg order."""

    symbol: str
    ratio: int


class OrderView(BaseModel):
    """An order in its latest state."""

    client_order_id: str
    venue_order_id: str
    signal_id: str
    strategy: str
    symbol: str
    side: str
    quantity: int
    filled_quantity: int
    avg_fill_price: str | None = Field(description="Average fill price (net for a combination).")
    order_type: str
    time_in_force: str
    limit_price: str | None
    stop_price: str | None
    status: str
    position_effect: str
    reason: str
    ts_event: int = Field(description="The signal's time, ns since the epoch.")
    legs: list[LegView]


class FillView(BaseModel):
    """One execution."""

    fill_id: str
    client_order_id: str
    venue_order_id: str
    strategy: str
    symbol: str
    side: str
    quantity: int
    price: str
    fee: str
    ts_event: int


class OrderPage(BaseModel):
    """A page of orders, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[OrderView]
    next_cursor: str = Field(description='"" on the last page.')


class FillPage(BaseModel):
    """A page of fills, newest first."""

    items: list[FillView]
    next_cursor: str


class Health(BaseModel):
    """The process is alive."""

    status: str


class Readiness(BaseModel):
    """Whether the API's answers can be trusted now, and if not, why."""

    ready: bool
    behind: int = Field(description="Messages in the topics not yet in the store.")
    reasons: list[str]


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


def position_view(p: Position) -> PositionView:
    """The response model of a position."""
    return PositionView(
        strategy=p.strategy,
        symbol=p.symbol,
        quantity=p.quantity,
        avg_price=units(p.avg_price),
        realized_pnl=units(p.realized_pnl),
        fees=units(p.fees),
        ts_event=p.ts_event,
        last_fill_id=p.last_fill_id,
        instrument_id=p.instrument_id,
    )


def net_positions(positions: list[Position]) -> list[NetPositionView]:
    """Per symbol, the sum over strategies (symbols whose sum and parts are all zero left out)."""
    totals: dict[str, tuple[int, int]] = {}
    for p in positions:
        quantity, holders = totals.get(p.symbol, (0, 0))
        totals[p.symbol] = (quantity + p.quantity, holders + (p.quantity != 0))
    return [
        NetPositionView(symbol=s, quantity=q, strategies=n)
        for s, (q, n) in sorted(totals.items())
        if q or n
    ]


def order_view(o: Order) -> OrderView:
    """The response model of an order."""
    average = None
    if o.filled_quantity:
        average = str((Decimal(o.filled_notional) / o.filled_quantity / 10**9).normalize())
    return OrderView(
        client_order_id=o.client_order_id,
        venue_order_id=o.venue_order_id,
        signal_id=o.signal_id,
        strategy=o.strategy,
        symbol=o.symbol,
        side=o.side.value,
        quantity=o.quantity,
        filled_quantity=o.filled_quantity,
        avg_fill_price=None if average is None else format(Decimal(average), "f"),
        order_type=o.order_type.value,
        time_in_force=o.time_in_force.value,
        limit_price=maybe_units(o.limit_price),
        stop_price=maybe_units(o.stop_price),
        status=o.status.value,
        position_effect=o.position_effect.value,
        reason=o.reason,
        ts_event=o.ts_event,
        legs=[LegView(symbol=leg.symbol, ratio=leg.ratio) for leg in o.legs],
    )


def fill_view(f: Fill) -> FillView:
    """The response model of a fill."""
    return FillView(
        fill_id=f.fill_id,
        client_order_id=f.client_order_id,
        venue_order_id=f.venue_order_id,
        strategy=f.strategy,
        symbol=f.symbol,
        side=f.side.value,
        quantity=f.quantity,
        price=units(f.price),
        fee=units(f.fee),
        ts_event=f.ts_event,
    )


class AckView(BaseModel):
    """One process's answer to a command."""

    by: str
    applied: bool
    reason: str
    ts_event: int


class CommandStatus(BaseModel):
    """A command, its state (pending until a process answers) and every answer so far."""

    command_id: str
    action: str
    strategy: str
    symbol: str
    params: dict[str, bool | int | float | str]
    kill_switch: str | None
    issued_by: str
    ts_event: int
    status: str = Field(description="pending, applied (by every answer) or refused (by one).")
    acks: list[AckView]


class CommandPage(BaseModel):
    """A page of commands, newest first."""

    items: list[CommandStatus]
    next_cursor: str


def ack_view(ack: ControlAck) -> AckView:
    """The response model of an answer."""
    return AckView(by=ack.by, applied=ack.applied, reason=ack.reason, ts_event=ack.ts_event)


def command_status(command: ControlCommand, acks: list[ControlAck]) -> CommandStatus:
    """A command with its answers and the state they make."""
    status = "pending"
    if acks:
        status = "applied" if all(a.applied for a in acks) else "refused"
    return CommandStatus(
        command_id=command.command_id,
        action=command.action.value,
        strategy=command.strategy,
        symbol=command.symbol,
        params=dict(command.params),
        kill_switch=None if command.kill_switch is None else command.kill_switch.value,
        issued_by=command.issued_by,
        ts_event=command.ts_event,
        status=status,
        acks=[ack_view(a) for a in acks],
    )


def event_data(message: Streamed) -> str:
    """A stream event's data: the message's response model as JSON (a bar and indicators
    with the symbol and interval they belong to)."""
    return _EVENT_JSON[type(message)](message)


def _bar_json(keyed: KeyedBar) -> str:
    bar = bar_view(keyed.bar).model_dump()
    return _json({"symbol": keyed.symbol, "interval_ns": keyed.bar.interval_ns, **bar})


def _indicators_json(snapshot: Indicators) -> str:
    body = indicator_view(snapshot).model_dump()
    return _json({"symbol": snapshot.symbol, "interval_ns": snapshot.interval_ns, **body})


def _ack_json(ack: ControlAck) -> str:
    body = ack_view(ack).model_dump()
    body["command_id"] = ack.command_id
    return _json(body)


def _json(body: dict[str, object]) -> str:
    return json.dumps(body, separators=(",", ":"))


_EVENT_JSON: Final[dict[type, Callable[[Any], str]]] = {
    KeyedBar: _bar_json,
    Indicators: _indicators_json,
    ProcessStatus: lambda s: process_view(s, time.time_ns()).model_dump_json(),
    Signal: lambda s: signal_view(s).model_dump_json(),
    Position: lambda p: position_view(p).model_dump_json(),
    Order: lambda o: order_view(o).model_dump_json(),
    Fill: lambda f: fill_view(f).model_dump_json(),
    ControlCommand: lambda c: command_status(c, []).model_dump_json(),
    ControlAck: _ack_json,
}


class PnlRow(BaseModel):
    """One strategy's P&L in one symbol, in currency units."""

    strategy: str
    symbol: str
    quantity: int
    avg_price: str
    mark: str | None = Field(description="The latest bar's close, None before any bar.")
    mark_ts: int | None = Field(description="When that bar closed, ns since the epoch.")
    realized: str = Field(description="Net of fees.")
    unrealized: str | None = Field(description="At the mark; None when open without a mark.")
    fees: str = Field(description="Fees paid (already deducted from `realized`).")
    total: str = Field(description="Realized plus unrealized.")


class PnlView(BaseModel):
    """P&L per strategy and symbol, the totals, and one day's realized P&L."""

    day: str = Field(description="The UTC day of `day_realized`, YYYY-MM-DD.")
    rows: list[PnlRow]
    realized: str
    unrealized: str
    fees: str
    total: str
    day_realized: str = Field(description="Realized on `day`, net of that day's fees.")


def pnl_row(p: Position, mark: tuple[int, int] | None, multiplier: int) -> tuple[PnlRow, int, int]:
    """A position's P&L row, and its unrealized and total P&L in 1e-9 units."""
    unrealized = 0
    shown: str | None = "0"
    if p.quantity:
        if mark is None:
            shown = None
        else:
            unrealized = (mark[0] - p.avg_price) * p.quantity * multiplier
            shown = units(unrealized)
    total = p.realized_pnl + unrealized
    row = PnlRow(
        strategy=p.strategy,
        symbol=p.symbol,
        quantity=p.quantity,
        avg_price=units(p.avg_price),
        mark=None if mark is None else units(mark[0]),
        mark_ts=None if mark is None else mark[1],
        realized=units(p.realized_pnl),
        unrealized=shown,
        fees=units(p.fees),
        total=units(total),
    )
    return row, unrealized, total


class SignalView(BaseModel):
    """A strategy's target position, as it stated it."""

    signal_id: str
    strategy: str
    symbol: str
    ts_event: int
    sequence: int
    target_position: int
    reference_price: str | None
    reason: str
    legs: list[LegView]


class SignalPage(BaseModel):
    """A page of signals, newest first."""

    items: list[SignalView]
    next_cursor: str


class BarView(BaseModel):
    """One bar, prices in price units; `ts_event` is its open time (ns)."""

    ts_event: int
    open: str
    high: str
    low: str
    close: str
    volume: int
    trade_count: int


class BarsView(BaseModel):
    """A symbol's bars of one interval, oldest first; ask again from `next_since` for more."""

    symbol: str
    interval: str
    bars: list[BarView]
    next_since: int | None = Field(description="None when the range is exhausted.")


def signal_view(s: Signal) -> SignalView:
    """The response model of a signal."""
    return SignalView(
        signal_id=s.signal_id,
        strategy=s.strategy,
        symbol=s.symbol,
        ts_event=s.ts_event,
        sequence=s.sequence,
        target_position=s.target_position,
        reference_price=maybe_units(s.reference_price),
        reason=s.reason,
        legs=[LegView(symbol=leg.symbol, ratio=leg.ratio) for leg in s.legs],
    )


def bar_view(b: Bar) -> BarView:
    """The response model of a bar."""
    return BarView(
        ts_event=b.ts_event,
        open=units(b.open),
        high=units(b.high),
        low=units(b.low),
        close=units(b.close),
        volume=b.volume,
        trade_count=b.trade_count,
    )


class DeadLetterView(BaseModel):
    """A message a process could not use: why, and where it was read."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: str
    size: int = Field(description="The value's length in bytes (the bytes stay in `dlq`).")
    ts_ms: int = Field(description="When it was dead-lettered, ms since the epoch.")


class DeadLetters(BaseModel):
    """How many messages are in `dlq`, and the latest of them."""

    count: int
    latest: list[DeadLetterView]


class ParamSpec(BaseModel):
    """A parameter a strategy declares: its name, type and default."""

    name: str
    type: str
    default: bool | int | float | str | None


class IndicatorView(BaseModel):
    """A strategy's indicators after one bar of a symbol: what it acted on."""

    strategy: str
    ts_event: int = Field(description="The bar's open time, ns since the epoch.")
    values: dict[str, str | None] = Field(
        description="By name (`ema_12`, `supertrend_10_3`), in price units; null while warming up."
    )
    directions: dict[str, int] = Field(
        description="Trend directions by name: 1 up, -1 down (once defined)."
    )


def indicator_view(snapshot: Indicators) -> IndicatorView:
    """The response model of one indicator snapshot."""
    return IndicatorView(
        strategy=snapshot.strategy,
        ts_event=snapshot.ts_event,
        values={name: maybe_units(v) for name, v in snapshot.prices.items()},
        directions=dict(snapshot.directions),
    )


class IndicatorsView(BaseModel):
    """A symbol's indicator values per bar, oldest first; ask again from `next_since`."""

    symbol: str
    interval: str
    points: list[IndicatorView]
    next_since: int | None


class StrategyView(BaseModel):
    """A strategy on one symbol: whether it runs, its effective parameters, its last signal
    and its indicators after the last bar it absorbed."""

    strategy: str
    symbol: str
    enabled: bool
    params: dict[str, bool | int | float | str] = Field(
        description="Effective: the declared defaults, the config's, then control commands'."
    )
    bar_interval: str
    last_signal: SignalView | None
    indicators: IndicatorView | None


class StrategiesView(BaseModel):
    """Every configured strategy: its declared parameters, and its state per symbol."""

    declared: dict[str, list[ParamSpec]]
    strategies: list[StrategyView]


class ProcessView(BaseModel):
    """A process as its latest status shows it."""

    process: str = Field(description="`producer`, `agents`, `executor` or `api`.")
    instance: str
    health: ProcessHealth = Field(
        description="up; degraded (reporting, but not running normally); silent (no status "
        "for three intervals: crashed, hung or cut off); stopped (said so on a clean exit)."
    )
    state: str = Field(description="What the process last said of itself.")
    reason: str
    lag: int | None = Field(description="Messages behind its input, where it measures that.")
    details: dict[str, str]
    last_seen: int = Field(description="When it last reported, ns since the epoch.")
    seconds_since: float


def process_view(status: ProcessStatus, now_ns: int) -> ProcessView:
    """The response model of a process's latest status, judged at `now_ns`."""
    return ProcessView(
        process=status.process,
        instance=status.instance,
        health=health(status, now_ns),
        state=status.state.value,
        reason=status.reason,
        lag=None if status.lag < 0 else status.lag,
        details=dict(status.details),
        last_seen=status.ts_event,
        seconds_since=round(max(now_ns - status.ts_event, 0) / 1e9, 3),
    )


class InstrumentView(BaseModel):
    """An instrument as its latest definition on `md.definition` describes it."""

    symbol: str
    instrument_id: int
    instrument_class: str
    exchange: str
    currency: str
    asset: str
    underlying: str
    tick_size: str | None = Field(description="Minimum price increment, in price units.")
    multiplier: str | None = Field(description="Contract size (unit of measure quantity).")
    expiration: int | None = Field(description="ns since the epoch; null when it never expires.")
    strike: str | None = Field(description="Options: the strike, in price units.")
    ts_recv: int = Field(description="When the definition was received, ns since the epoch.")


def instrument_view(d: InstrumentDef) -> InstrumentView:
    """The response model of an instrument definition."""

    def price(value: int) -> str | None:
        return None if value == UNDEF_PRICE else units(value)

    return InstrumentView(
        symbol=d.raw_symbol,
        instrument_id=d.instrument_id,
        instrument_class=d.instrument_class.name.lower(),
        exchange=d.exchange,
        currency=d.currency,
        asset=d.asset,
        underlying=d.underlying,
        tick_size=price(d.min_price_increment),
        multiplier=price(d.unit_of_measure_qty),
        expiration=None if d.expiration == UNDEF_TIMESTAMP else d.expiration,
        strike=price(d.strike_price),
        ts_recv=d.ts_recv,
    )


class InstrumentPage(BaseModel):
    """A page of instruments, by symbol; ask again with `next_cursor` for more."""

    items: list[InstrumentView]
    next_cursor: str
