"""A backtest's orders and fills: its signals through the executor's own engine, with its
netting, risk checks and order styles, into the paper venue's matching, over the same
file's market data, in time order, in one process.

Nothing here re-implements a rule: the `executors.engine.Engine` answers each signal as
it would live (a reversal is one order where the venue allows it, limits refuse what they
refuse), writing to a ledger of its own in a scratch directory, and the
`executors.brokers.paper.venue.PaperBroker` fills each order at the first tick strictly
after its signal, as it does live. The engine's clock is the market's: a signal is
answered at its own time, after every tick up to that time and before any later one, so
rate limits and the daily loss limit count market time.

What the venue fills against, from the records the file holds:
- `quotes`: book records (mbp-1, tbbo) of the schemas the paper venue reads
  (`executor.paper.market_data`, mbp-1 by default), as live;
- `trades`: the file's trades, when it holds no such book records;
- `bar opens`: OHLCV bars, when it holds neither: a market order fills at the open of
  the symbol's next bar (a trade at that bar's start plus 1 ns, so after the signal made
  at the previous bar's close); limits and stops never see the bar's high or low.
"""

import contextlib
import tempfile
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry

from agents.ticks import SOURCE_RTYPES
from executors.brokers.paper.feed import ticks_of
from executors.brokers.paper.matching import Tick
from executors.brokers.paper.store import VenueStore
from executors.brokers.paper.venue import PaperBroker
from executors.engine import Engine
from executors.metrics import ExecutorMetrics
from executors.service import engine_config
from executors.stores import open_sqlite
from ticklane import dbn
from ticklane.dbn_files import open_dbn
from ticklane.market import MarketFrame
from ticklane.routing import Router, keying_router
from ticklane.settings import Settings
from ticklane.trading import Fill, Order, Signal

_TRADES: Final = SOURCE_RTYPES["trades"]
_BOOK: Final = SOURCE_RTYPES["mbp-1"]
_BOOK_SCHEMAS: Final = frozenset({"mbp-1", "tbbo"})
"""Schemas whose records are rtype mbp-1: top-of-book quotes the venue fills against."""


class FillSource(StrEnum):
    """What the simulated venue fills against (module docstring)."""

    QUOTES = "quotes"
    TRADES = "trades"
    BAR_OPENS = "bar opens"


_SOURCE_RTYPES: Final = {
    FillSource.QUOTES: frozenset({_BOOK}),
    FillSource.TRADES: frozenset({_TRADES}),
    FillSource.BAR_OPENS: frozenset(dbn.OHLCV_INTERVALS_NS),
}
"""The records each kind of fill source is made of."""


@dataclass
class SimulationResult:
    """The executor's answer to a backtest's signals."""

    source: FillSource
    orders: list[Order] = field(default_factory=list)
    """Every order the engine made (rejected ones too), as the ledger holds it at the end."""
    fills: list[Fill] = field(default_factory=list)
    """The venue's fills, in time order."""


def _symbol_batches(
    path: Path | list[Path], rtypes: frozenset[int]
) -> Iterator[list[tuple[str, int, bytes]]]:
    """Per decoded batch of the file: (symbol, rtype, records) for each symbol and each of
    `rtypes` (every record still routed: mapping and definition records teach symbols)."""
    dbn_file = open_dbn(path)
    router: Router | None = None
    for batch in dbn_file.batches():
        if router is None:
            router = keying_router(dbn_file.metadata.mappings, dbn_file.metadata.schema)
        grouped: dict[tuple[str, int], list[bytes]] = {}
        for record in batch.records:
            routed = router(record)  # control records too: they teach it symbols
            if routed is not None and record[1] in rtypes:
                grouped.setdefault((routed[1], record[1]), []).append(record)
        yield [(symbol, rtype, b"".join(rs)) for (symbol, rtype), rs in grouped.items()]


def _bar_open_ticks(records: bytes) -> list[Tick]:
    return [Tick(bar.ts_event + 1, trade_price=bar.open) for bar in dbn.to_bars(records)]


def fill_source(path: Path | list[Path], book_schemas: Sequence[str]) -> FillSource:
    """What the venue will fill against in this file (module docstring). Book records
    count only when the paper venue reads their schema (`book_schemas`)."""
    rtypes: set[int] = set()
    for batch in open_dbn(path).batches():
        rtypes.update(record[1] for record in batch.records)
    if _BOOK in rtypes and _BOOK_SCHEMAS & set(book_schemas):
        return FillSource.QUOTES
    if _TRADES in rtypes:
        return FillSource.TRADES
    if rtypes & _SOURCE_RTYPES[FillSource.BAR_OPENS]:
        return FillSource.BAR_OPENS
    return FillSource.QUOTES  # nothing to fill against: every order stays working


def market_ticks(
    path: Path | list[Path], source: FillSource
) -> Iterator[list[tuple[str, list[Tick]]]]:
    """Per decoded batch of the file, each symbol's ticks of the kind the venue fills
    against."""
    for groups in _symbol_batches(path, _SOURCE_RTYPES[source]):
        batch = [
            (
                symbol,
                _bar_open_ticks(records)
                if source is FillSource.BAR_OPENS
                else ticks_of(MarketFrame(symbol, records)),
            )
            for symbol, _, records in groups
        ]
        if batch:
            yield batch


@dataclass
class _Pending:
    """One symbol's ticks not yet shown to the venue, with their times for bisection."""

    ticks: list[Tick] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    start: int = 0

    def take_until(self, ts: int) -> list[Tick]:
        """The ticks up to and including `ts`, removed."""
        end = bisect_right(self.times, ts, lo=self.start)
        taken = self.ticks[self.start : end]
        self.start = end
        if self.start > 4096 and self.start * 2 > len(self.ticks):
            del self.ticks[: self.start], self.times[: self.start]
            self.start = 0
        return taken


class SimulatedExecutor:
    """The engine, a ledger and the paper venue in a scratch directory, on market time."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        paper = settings.executor.paper
        self.now = 0
        self.ledger = open_sqlite(workdir / "ledger.sqlite")
        self.venue = PaperBroker(
            VenueStore(workdir / "paper"),
            reverse_in_one_order=paper.reverse_in_one_order,
            fee_per_unit=paper.fee_per_unit,
            slippage=paper.slippage,
            tick_buffer=paper.tick_buffer,
        )
        metrics = ExecutorMetrics(CollectorRegistry())
        self.engine = Engine(
            self.ledger, self.venue, engine_config(settings), metrics, clock=lambda: self.now
        )
        self.engine.load()
        self._pending: dict[str, _Pending] = {}

    def add_ticks(self, symbol: str, ticks: list[Tick]) -> None:
        """Ticks the market will show, in time order per symbol (not shown yet)."""
        pending = self._pending.setdefault(symbol, _Pending())
        pending.ticks += ticks
        pending.times += [t.ts_event for t in ticks]

    def advance(self, ts: int) -> None:
        """Show the venue every tick up to `ts` and take what it filled."""
        for symbol, pending in self._pending.items():
            ticks = pending.take_until(ts)
            if ticks:
                self.now = max(self.now, ticks[-1].ts_event)
                self.venue.on_ticks(symbol, ticks)
        self.engine.take_updates()

    def answer(self, signal: Signal) -> None:
        """The engine's answer to a signal, at the signal's time."""
        self.now = max(self.now, signal.ts_event)
        self.engine.on_signal(signal, signal.ts_event)
        self.engine.take_updates()

    def result(self, source: FillSource) -> SimulationResult:
        """Every order and fill so far."""
        orders = sorted(self.ledger.all_orders(), key=lambda o: (o.ts_event, o.client_order_id))
        fills = sorted(self.ledger.fills(), key=lambda f: (f.ts_event, f.fill_id))
        return SimulationResult(source, orders, fills)

    def close(self) -> None:
        """Close the ledger and the venue's store."""
        self.venue.close()
        self.ledger.close()


def simulate(
    path: Path | list[Path], signals: Sequence[Signal], settings: Settings
) -> SimulationResult:
    """The orders and fills the executor and the paper venue make for `signals` over the
    file's market data (module docstring)."""
    source = fill_source(path, settings.executor.paper.market_data)
    ordered = sorted(signals, key=lambda s: (s.ts_event, s.symbol, s.sequence))
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ticklane-bt-")))
        executor = SimulatedExecutor(settings, workdir)
        stack.callback(executor.close)
        at = 0
        for batch in market_ticks(path, source):
            for symbol, ticks in batch:
                executor.add_ticks(symbol, ticks)
            last = max(ticks[-1].ts_event for _, ticks in batch if ticks)
            while at < len(ordered) and ordered[at].ts_event <= last:
                executor.advance(ordered[at].ts_event)
                executor.answer(ordered[at])
                at += 1
            # Ticks up to the next signal can be shown now: memory holds only the rest.
            executor.advance(min(last, ordered[at].ts_event) if at < len(ordered) else last)
        for signal in ordered[at:]:
            executor.advance(signal.ts_event)
            executor.answer(signal)
        executor.advance(2**63 - 1)
        return executor.result(source)
