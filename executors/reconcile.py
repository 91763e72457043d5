"""Reconciliation: the ledger against the broker, on start and periodically.

Every unfinished order is resolved by looking it up at the broker (an order whose submit
answer was lost is never resent blindly: only a venue that has never heard of it gets it
again); the broker's new fills are taken; legs whose turn has come are released; then net
positions per symbol are compared. Any difference halts trading (the kill switch reads HALTED
for every order), counts in a metric and is logged symbol by symbol; a later clean
reconciliation lifts that halt.
"""

import logging

import msgspec

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
    diffs = compare_positions(engine.positions_by_symbol(), engine.broker.positions())
    if diffs:
        engine.metrics.mismatches.inc()
        engine.metrics.halted.set(1)
        engine.halted_reason = "; ".join(
            f"{d.symbol}: ledger {d.ledger}, broker {d.broker}" for d in diffs
        )
        log.error("reconciliation mismatch, trading halted: %s", engine.halted_reason)
    elif engine.halted_reason:
        log.warning("reconciliation clean again; lifting the halt (%s)", engine.halted_reason)
        engine.halted_reason = ""
        engine.metrics.halted.set(0)
    return diffs
