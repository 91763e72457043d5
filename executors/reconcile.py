"""Reconciliation: the ledger against the broker, on start and periodically.

Every unfinished order is resolved by looking it up at the broker (an order whose submit
answer was lost is never resent blindly: only a venue that has never heard of it gets it
again); the broker's new fills are taken; legs whose turn has come are released; then net
positions per symbol are compared, over the symbols this executor trades (holds or has held a
position in, or has orders working in). Any difference halts trading (the kill switch reads
HALTED for every order), counts in a metric and is logged symbol by symbol; a later clean
reconciliation lifts that halt.

A venue position in any other symbol is not this executor's (a trader's own, or another
executor's on the same account): it is reported (a gauge per symbol, and a log line whenever
the set changes) and halts trading only where `halt_on_foreign_positions` says so.
"""

import logging

import msgspec
from prometheus_client import Gauge

from executors.engine import Engine

log = logging.getLogger(__name__)


class PositionDiff(msgspec.Struct, frozen=True):
    """One symbol whose net position differs."""

    symbol: str
    ledger: int
    broker: int


def compare_positions(ledger: dict[str, int], broker: dict[str, int]) -> list[PositionDiff]:
    """Symbols whose net positions differ (absent means flat)."""
    symbols = sorted(set(ledger) | set(broker))
    return [
        PositionDiff(s, ledger.get(s, 0), broker.get(s, 0))
        for s in symbols
        if ledger.get(s, 0) != broker.get(s, 0)
    ]


def reconcile(engine: Engine) -> list[PositionDiff]:
    """Resolve open orders, take fills, release legs, compare positions; halt on a difference."""
    engine.resolve_open_orders()
    engine.sync_fills()
    engine.release_pending_legs()
    engine.sync_fills()
    traded = engine.traded_symbols()
    venue = engine.broker.positions()
    ours = {s: q for s, q in venue.items() if s in traded}
    diffs = compare_positions(engine.positions_by_symbol(), ours)
    foreign = {s: q for s, q in venue.items() if s not in traded and q}
    _report_foreign(engine, foreign)
    reasons = [f"{d.symbol}: ledger {d.ledger}, broker {d.broker}" for d in diffs]
    if engine.config.halt_on_foreign_positions:
        reasons += [f"{s}: {q} not opened by this executor" for s, q in foreign.items()]
    if diffs:
        engine.metrics.mismatches.inc()
    if reasons:
        engine.metrics.halted.set(1)
        engine.halted_reason = "; ".join(reasons)
        log.error("reconciliation: trading halted: %s", engine.halted_reason)
    elif engine.halted_reason:
        log.warning("reconciliation clean again; lifting the halt (%s)", engine.halted_reason)
        engine.halted_reason = ""
        engine.metrics.halted.set(0)
    return diffs


def _report_foreign(engine: Engine, foreign: dict[str, int]) -> None:
    gauge = engine.metrics.foreign_position
    reported = {labels[0]: int(value) for labels, value in _gauge_values(gauge).items()}
    if reported == foreign:
        return
    for symbol in reported.keys() - foreign.keys():
        gauge.remove(symbol)
    for symbol, quantity in foreign.items():
        gauge.labels(symbol).set(quantity)
    if foreign:
        log.warning(
            "the venue holds positions this executor did not open (left alone%s): %s",
            "; halting" if engine.config.halt_on_foreign_positions else "",
            ", ".join(f"{s} {q}" for s, q in sorted(foreign.items())),
        )


def _gauge_values(gauge: Gauge) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels.values()): sample.value
        for metric in gauge.collect()
        for sample in metric.samples
    }
