"""`ticklane backtest`: the agents' engine over a DBN file, in-process, written out as CSV.

The file is read and keyed by symbol exactly as the producer reads it into Kafka (the
same reader and the same symbology), and each symbol's records go through the same
`Engine` the Faust agents run, so a backtest's signals equal, id for id, those the
Kafka path gives for the same file and configuration.

A chain strategy (0DTE) runs instead on each underlying's option chain, put together by
`ticklane.chains` from the file in order and cut into the frames `produce file --chains`
writes to md.chain, through `agents.chains.ChainEngine`; its bars are the underlying's and
its signals name the options traded.
"""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Final, TextIO

import msgspec

from agents.chains import ChainEngine, ChainEntry
from agents.engine import Engine, Outcome, SymbolEntry
from agents.indicators import readings
from agents.roster import INTERVALS_NS, Roster, RosterError, Slot, is_chain_strategy
from agents.simulation import FillSource, SimulationResult, simulate
from agents.strategies.registry import StrategyRegistry
from agents.ticks import SOURCE_RTYPES, frame_bars, is_bars, trade_columns
from ticklane.chains import ChainRouter, cut_chains
from ticklane.dbn import count_records
from ticklane.dbn_files import open_dbn, source_name
from ticklane.market import FRAME_MAX_BYTES, FRAME_MAX_RECORDS, Bar, MarketFrame
from ticklane.performance import (
    EquityPoint,
    RoundTrip,
    Statistics,
    equity_curve,
    round_trips,
    statistics,
)
from ticklane.routing import Router, keying_router
from ticklane.settings import Settings, StrategyConfig
from ticklane.trading import Signal
from ticklane.units import PRICE_SCALE

BAR_COLUMNS: Final = (
    "ts_event",
    "symbol",
    "ts_open",
    "interval_ns",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trade_count",
)
SIGNAL_COLUMNS: Final = (
    "ts_event",
    "symbol",
    "strategy",
    "target_position",
    "signal_id",
    "sequence",
    "reference_price",
    "reason",
)


class BacktestError(ValueError):
    """A file or request the backtest cannot run."""


def indicator_values(state: Any) -> dict[str, float | None]:
    """A strategy state's indicators as the CSV holds them: values, then `<name>_direction`."""
    values, directions = readings(state)
    return values | {
        f"{name}_direction": None if d is None else float(d) for name, d in directions.items()
    }


@dataclass
class BacktestResult:
    """Everything a backtest produced, in the order it was produced."""

    bars: list[tuple[str, Bar]] = field(default_factory=list)
    indicators: list[tuple[str, str, int, dict[str, float | None]]] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    records: int = 0
    warmup_signals: int = 0
    """Signals the strategy emitted during its warm-up, not kept (`warmup_bars`)."""


def _frames(path: Path | list[Path], source: str | None) -> Iterator[tuple[str, bytes]]:
    """(symbol, records) per symbol per decoded batch of the file, records of one rtype."""
    dbn_file = open_dbn(path)
    router: Router | None = None
    rtype: int | None = SOURCE_RTYPES.get(source) if source else None
    for batch in dbn_file.batches():
        if router is None:
            schema = dbn_file.metadata.schema
            router = keying_router(dbn_file.metadata.mappings, schema)
            if rtype is None:
                name = str(schema) if schema is not None else "trades"
                if name not in SOURCE_RTYPES:
                    raise BacktestError(
                        f"{source_name(path)} holds {name} records; bars come from "
                        + ", ".join(SOURCE_RTYPES)
                    )
                rtype = SOURCE_RTYPES[name]
        grouped: dict[str, list[bytes]] = {}
        for record in batch.records:
            routed = router(record)  # control records too: they teach it symbols
            if routed is not None and record[1] == rtype:
                grouped.setdefault(routed[1], []).append(record)
        for symbol, records in grouped.items():
            yield symbol, b"".join(records)


def chain_frames(
    path: Path | list[Path],
    max_records: int = FRAME_MAX_RECORDS,
    max_bytes: int = FRAME_MAX_BYTES,
) -> Iterator[tuple[str, MarketFrame]]:
    """The file's option chains as md.chain frames, (underlying, frame), cut per decoded
    batch as `produce file --chains` cuts them with these caps (`ticklane.chains`)."""
    dbn_file = open_dbn(path)
    router: Router | None = None
    chains = ChainRouter()
    for batch in dbn_file.batches():
        if router is None:
            router = keying_router(dbn_file.metadata.mappings, dbn_file.metadata.schema)
        placed = []
        for record in batch.records:
            routed = router(record)
            if routed is None:
                continue
            underlying = chains(record, routed[1])
            if underlying is not None:
                placed.append((underlying, routed[1], record))
        for cut in cut_chains(placed, max_records, max_bytes):
            yield cut.underlying, cut.frame()


def run_backtest(
    path: Path | list[Path],
    strategy: StrategyConfig,
    registry: StrategyRegistry,
    *,
    source: str | None = None,
    warmup_bars: int = 0,
) -> BacktestResult:
    """Run one strategy over every symbol (or, for a chain strategy, every chain) of a file.
    With `warmup_bars`, each symbol's first bars only warm the strategy up: what it emits
    up to the close of its `warmup_bars`-th bar is dropped, its state carried on, as a
    strategy started then with that much history would behave."""
    try:
        chain = is_chain_strategy(registry.create(strategy.name))
    except LookupError as exc:
        raise RosterError(str(exc)) from None
    if chain:
        if warmup_bars:
            raise BacktestError(f"{strategy.name} runs on option chains: no bar warm-up")
        return _run_chains(path, strategy, registry)
    result = _run_symbols(path, strategy, registry, source)
    if warmup_bars:
        _drop_warmup(result, warmup_bars)
    return result


def _drop_warmup(result: BacktestResult, warmup_bars: int) -> None:
    """Drop the signals each symbol's first `warmup_bars` bars made (module docstring)."""
    seen: dict[str, int] = {}
    warm_after: dict[str, int] = {}
    for symbol, bar in result.bars:
        seen[symbol] = seen.get(symbol, 0) + 1
        if seen[symbol] == warmup_bars:
            warm_after[symbol] = bar.ts_close
    kept = [s for s in result.signals if s.ts_event > warm_after.get(s.symbol, 2**63)]
    result.warmup_signals = len(result.signals) - len(kept)
    result.signals = kept


def _run_symbols(
    path: Path | list[Path],
    strategy: StrategyConfig,
    registry: StrategyRegistry,
    source: str | None,
) -> BacktestResult:
    """A per-symbol strategy over every symbol of a file."""
    result = BacktestResult()

    def observe(symbol: str, slot: Slot, bar: Bar, state: Any) -> None:
        result.indicators.append((symbol, slot.name, bar.ts_close, indicator_values(state)))

    roster = Roster([strategy], registry)
    interval = INTERVALS_NS[strategy.bar_interval]
    engine = Engine(roster, publish_intervals=[interval], observer=observe)
    entries: dict[str, SymbolEntry] = {}
    for symbol, records in _frames(path, source):
        entry = entries.get(symbol, SymbolEntry())
        position = (0, entry.offset + 1)
        outcome: Outcome | None
        if is_bars(records):
            bars = frame_bars(records)
            outcome = engine.absorb_bars(symbol, entry, position, bars)
            if outcome is not None:
                result.bars += [(symbol, bar) for bar in bars]
        else:
            outcome = engine.absorb_trades(symbol, entry, position, trade_columns(records))
            if outcome is not None:
                result.bars += [(symbol, bar) for bar in outcome.bars]
        if outcome is not None:
            entries[symbol] = outcome.entry
            result.signals += outcome.signals
            result.records += outcome.ticks
    return result


def _run_chains(
    path: Path | list[Path], strategy: StrategyConfig, registry: StrategyRegistry
) -> BacktestResult:
    """A chain strategy (0DTE) over every option chain of a file."""
    result = BacktestResult()

    def observe(underlying: str, slot: Slot, bar: Bar, state: Any) -> None:
        result.indicators.append((underlying, slot.name, bar.ts_close, indicator_values(state)))

    roster = Roster([strategy], registry, chains=True)
    interval = INTERVALS_NS[strategy.bar_interval]
    engine = ChainEngine(roster, publish_intervals=(interval,), observer=observe)
    entries: dict[str, ChainEntry] = {}
    for underlying, frame in chain_frames(path):
        entry = entries.get(underlying, ChainEntry())
        outcome = engine.absorb(underlying, entry, (0, entry.offset + 1), frame)
        if outcome is None:
            continue
        entries[underlying] = outcome.entry
        result.bars += [(underlying, bar) for bar in outcome.bars]
        result.signals += outcome.signals
        result.records += count_records(frame)
    if not entries:
        raise BacktestError(
            f"{source_name(path)} holds no option chain: {strategy.name} needs option definitions "
            "(instrument class C or P naming their underlying) with the options' quotes"
        )
    return result


def write_csvs(result: BacktestResult, out: Path) -> dict[str, int]:
    """DIR/bars.csv, DIR/indicators.csv and DIR/signals.csv; returns rows written per file."""
    out.mkdir(parents=True, exist_ok=True)
    bars = sorted(result.bars, key=lambda item: (item[1].ts_close, item[0]))
    with (out / "bars.csv").open("w", newline="") as fh:
        writer = _writer(fh, BAR_COLUMNS)
        for symbol, b in bars:
            writer.writerow(
                (
                    b.ts_close,
                    symbol,
                    b.ts_event,
                    b.interval_ns,
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    b.vwap,
                    b.trade_count,
                )
            )
    names: list[str] = []
    for *_, values in result.indicators:
        names += [name for name in values if name not in names]
    rows = sorted(result.indicators, key=lambda item: (item[2], item[0]))
    with (out / "indicators.csv").open("w", newline="") as fh:
        writer = _writer(fh, ("ts_event", "symbol", "strategy", *names))
        for symbol, strategy, ts, values in rows:
            cells = [_indicator_cell(n, values.get(n)) for n in names]
            writer.writerow((ts, symbol, strategy, *cells))
    signals = sorted(result.signals, key=lambda s: (s.ts_event, s.symbol, s.sequence))
    with (out / "signals.csv").open("w", newline="") as fh:
        writer = _writer(fh, SIGNAL_COLUMNS)
        for s in signals:
            price = "" if s.reference_price is None else s.reference_price
            writer.writerow(
                (
                    s.ts_event,
                    s.symbol,
                    s.strategy,
                    s.target_position,
                    s.signal_id,
                    s.sequence,
                    price,
                    s.reason,
                )
            )
    return {"bars": len(bars), "indicators": len(rows), "signals": len(signals)}


def _writer(fh: TextIO, header: tuple[str, ...]) -> Any:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(header)
    return writer


def _indicator_cell(name: str, value: float | None) -> str:
    """An indicator in price units (the engine keeps 1e-9 units); a direction as it is."""
    if value is None:
        return ""
    return repr(value) if name.endswith("_direction") else repr(value / PRICE_SCALE)


@dataclass
class Performance:
    """What a backtest's signals made at the simulated venue, and its statistics."""

    simulation: SimulationResult
    trips: list[RoundTrip]
    curve: list[EquityPoint]
    pnl_by_symbol: dict[str, int]
    stats: Statistics


def evaluate(
    path: Path | list[Path], result: BacktestResult, settings: Settings, capital: int
) -> Performance:
    """Send a backtest's signals through the executor's rules and the paper venue over the
    file's market data (`agents.simulation`), and measure what they made."""
    simulation = simulate(path, result.signals, settings)
    multipliers = {
        symbol: settings.executor.multipliers.get(symbol, settings.executor.default_multiplier)
        for symbol in {f.symbol for f in simulation.fills}
    }
    trips = round_trips(simulation.fills, multipliers)
    # Marked at the closes of the symbols it traded: the curve's points, and so the
    # per-bar returns, are those of its own markets (as `ticklane demo` measures it).
    closes = sorted(
        (bar.ts_close, symbol, bar.close) for symbol, bar in result.bars if symbol in multipliers
    )
    curve, by_symbol = equity_curve(simulation.fills, closes, multipliers)
    stats = statistics(trips, curve, by_symbol, capital)
    return Performance(simulation, trips, curve, by_symbol, stats)


ORDER_COLUMNS: Final = (
    "ts_event",
    "client_order_id",
    "signal_id",
    "symbol",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "status",
    "filled_quantity",
    "reason",
)
FILL_COLUMNS: Final = (
    "ts_event",
    "fill_id",
    "client_order_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
)
EQUITY_COLUMNS: Final = ("ts_event", "pnl", "fees", "equity", "exposed")
TRADE_COLUMNS: Final = (
    "opened_ns",
    "closed_ns",
    "symbol",
    "direction",
    "quantity",
    "entry_price",
    "exit_price",
    "pnl",
    "fees",
    "net",
)


def _cells(item: object, columns: tuple[str, ...]) -> list[object]:
    """A row of `item`'s attributes: enums by value, booleans as 0/1, None as empty."""
    cells: list[object] = []
    for column in columns:
        value = getattr(item, column)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        cells.append("" if value is None else value)
    return cells


def write_performance(performance: Performance, out: Path) -> dict[str, int]:
    """DIR/orders.csv, fills.csv, equity.csv, trades.csv and stats.json (prices and money
    as integers in 1e-9 units); returns rows written per file."""
    out.mkdir(parents=True, exist_ok=True)
    sim = performance.simulation
    tables: list[tuple[str, tuple[str, ...], list[Any]]] = [
        ("orders", ORDER_COLUMNS, list(sim.orders)),
        ("fills", FILL_COLUMNS, list(sim.fills)),
        ("equity", EQUITY_COLUMNS, list(performance.curve)),
        ("trades", TRADE_COLUMNS, list(performance.trips)),
    ]
    for name, columns, items in tables:
        with (out / f"{name}.csv").open("w", newline="") as fh:
            writer = _writer(fh, columns)
            writer.writerows(_cells(item, columns) for item in items)
    stats = msgspec.to_builtins(performance.stats) | {"fill_source": sim.source.value}
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return {name: len(items) for name, _, items in tables}


def _money(value: int | None) -> str:
    return "-" if value is None else f"{Decimal(value) / PRICE_SCALE:,.2f}"


def _ratio(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:.2f}"


def _duration(ns: int) -> str:
    seconds = ns // 1_000_000_000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours}h{rest // 60:02d}m"
    return f"{days}d {text}" if days else text


def stats_rows(stats: Statistics, source: FillSource) -> list[tuple[str, str]]:
    """The statistics as a person reads them: money and prices in currency units."""
    rows = [
        ("fills against", source.value),
        ("trades (closed)", f"{stats.trades} ({stats.open_trades} open at the end)"),
        ("win rate", _ratio(stats.win_rate, percent=True)),
        ("average win", _money(stats.average_win)),
        ("average loss", _money(stats.average_loss)),
        ("profit factor", _ratio(stats.profit_factor)),
        ("total P&L (net)", _money(stats.total_pnl)),
        ("fees", _money(stats.fees)),
    ]
    rows += [(f"  P&L {symbol}", _money(pnl)) for symbol, pnl in stats.pnl_by_symbol.items()]
    rows += [
        ("exposure", _ratio(stats.exposure, percent=True)),
        ("max drawdown", _money(stats.max_drawdown)),
        ("max drawdown duration", _duration(stats.max_drawdown_duration_ns)),
        (f"Sharpe ({stats.periods_per_year:,.0f} bars/yr)", _ratio(stats.sharpe)),
        ("Sortino", _ratio(stats.sortino)),
    ]
    return rows
