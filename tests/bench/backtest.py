"""`ticklane backtest` throughput on a 1,000,000-trade synthetic file: the agents' engine
alone (signals), and with the executor's rules and the paper venue (fills and P&L) over the
same file's trades, in-process as the command runs them."""

import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from agents.backtest import evaluate, run_backtest
from agents.strategies.registry import registry
from producers.synth import generate
from tests.bench.rows import Row, guard
from ticklane.settings import ExecutorSettings, PaperSettings, Settings, StrategyConfig

SYMBOLS = 55
MINUTES = 600
"""About 1,000,000 trades over the symbols (the synthetic market trades ~30 a minute each)."""
ROUNDS = 3
STRATEGY = StrategyConfig(name="ema_cross", params={"fast": 5, "slow": 20}, bar_interval="1s")
CAPITAL = 100_000 * 1_000_000_000


def _timed(path: Path, settings: Settings | None) -> tuple[float, int, int]:
    """Seconds for one backtest (with fills when `settings`), its trades and its fills."""
    started = time.perf_counter()
    result = run_backtest(path, STRATEGY, registry())
    fills = 0
    if settings is not None:
        fills = len(evaluate(path, result, settings, CAPITAL).simulation.fills)
    return time.perf_counter() - started, result.records, fills


def backtest_rows() -> Iterator[Row]:
    """Rows for `make bench`: the bare engine's figure, then with fills and P&L."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.dbn.zst"
        generate(path, symbols=SYMBOLS, minutes=MINUTES, seed=9, options=False)
        # Fills against the file's trades: the venue reads no book schema here.
        paper = PaperSettings(market_data=("trades",))
        settings = Settings(executor=ExecutorSettings(paper=paper))
        for name, with_fills in (("signals only", None), ("with fills and P&L", settings)):
            label = f"backtest {name}, ema_cross on 1s bars"

            def measure(with_fills: Settings | None = with_fills, label: str = label) -> Row:
                runs = [_timed(path, with_fills) for _ in range(ROUNDS)]
                trades, fills = runs[0][1], runs[0][2]
                rate = statistics.median(trades / seconds for seconds, *_ in runs)
                note = f"{trades:,} trades, {SYMBOLS} symbols"
                note += f", {fills:,} fills" if with_fills else ""
                return Row(label, "trades/s", value=rate, note=f"{note}; median of {ROUNDS}")

            yield guard(label, measure)
