"""A batch of independent signals for the venue adapters' tests, and waiting for it to fill."""

from typing import Any

from tests.conftest import poll_until
from ticklane.trading import Signal

SCALE = 1_000_000_000


def strategies_buying(symbol: str, targets: list[int]) -> list[tuple[Signal, None]]:
    """One signal per strategy (s1, s2, ...), each to its target in `symbol`: independent orders."""
    return [
        (Signal.create(f"s{i}", symbol, 1_700_000_000 * SCALE, target, reference_price=SCALE), None)
        for i, target in enumerate(targets, 1)
    ]


def settle_batch(desk: Any, symbol: str, targets: list[int]) -> None:
    """Take pushed updates and resolve lost answers until strategy i holds targets[i-1]
    (`desk`: a venue test's engine, ledger and adapter)."""

    def settled() -> bool:
        desk.engine.take_updates()
        desk.engine.resolve_unknown()
        held = [desk.position(symbol, f"s{i}") for i in range(1, len(targets) + 1)]
        return held == targets

    poll_until(settled, timeout_s=20, interval_s=0.05, what=f"the batch in {symbol} filled")
