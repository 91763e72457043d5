"""Parameter sweeps: `ticklane backtest --param fast=5,8,12 --param slow=20,26` runs every
combination, each a whole backtest with fills and P&L (`agents.backtest`), in parallel
processes, and ranks them by one statistic.

Each combination writes its own directory (`DIR/fast=5,slow=20/`, the single run's files,
its report on request); `DIR/sweep.csv` holds one row per combination: the parameters,
then every statistic of `stats.json`, best first.
"""

import concurrent.futures
import csv
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

import msgspec

from agents.backtest import evaluate, run_backtest, write_csvs, write_performance
from agents.strategies.registry import registry
from ticklane.control import ParamValue
from ticklane.performance import Statistics
from ticklane.settings import Settings, StrategyConfig

RANKABLE: Final = tuple(
    f.name
    for f in fields(Statistics)
    if f.name not in {"pnl_by_symbol", "capital", "periods_per_year"}
)
"""Statistics a sweep can be sorted by."""
LOWER_IS_BETTER: Final = frozenset(
    {"losses", "max_drawdown", "max_drawdown_duration_ns", "fees", "open_trades"}
)


def grid(values: Mapping[str, Sequence[ParamValue]]) -> list[dict[str, ParamValue]]:
    """Every combination of the parameters' values, the first parameter slowest."""
    names = list(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values.values())]


def label(params: Mapping[str, ParamValue]) -> str:
    """A combination's name, also its directory: `fast=5,slow=20`."""
    return ",".join(f"{name}={value}" for name, value in params.items())


@dataclass(frozen=True)
class Job:
    """One combination to run, with everything a worker process needs (all picklable)."""

    paths: tuple[Path, ...]
    strategy: StrategyConfig
    source: str | None
    settings: Settings
    capital: int
    out: Path
    report: bool
    warmup_bars: int = 0


def run_one(job: Job) -> dict[str, object]:
    """One combination's backtest, written to its directory; its statistics (as stats.json)."""
    paths = list(job.paths)
    result = run_backtest(
        paths, job.strategy, registry(), source=job.source, warmup_bars=job.warmup_bars
    )
    performance = evaluate(paths, result, job.settings, job.capital)
    write_csvs(result, job.out)
    write_performance(performance, job.out)
    if job.report:
        from agents.report import write_report  # noqa: PLC0415 - Plotly is slow to import

        title = f"{job.strategy.name} {label(job.strategy.params)}"
        write_report(job.out / "report.html", title, result, performance)
    return msgspec.to_builtins(performance.stats)  # type: ignore[no-any-return]


def rank(
    rows: list[tuple[dict[str, ParamValue], dict[str, object]]], metric: str
) -> list[tuple[dict[str, ParamValue], dict[str, object]]]:
    """Best first by `metric`; combinations without a value for it (no trades) last."""
    lower = metric in LOWER_IS_BETTER

    def key(row: tuple[dict[str, ParamValue], dict[str, object]]) -> tuple[bool, float]:
        value = row[1].get(metric)
        if not isinstance(value, int | float):
            return True, 0.0
        return False, float(value) if lower else -float(value)

    return sorted(rows, key=key)


def run_sweep(
    jobs: Sequence[Job],
    combos: Sequence[dict[str, ParamValue]],
    workers: int,
    progress: Callable[[int, dict[str, ParamValue], dict[str, object]], None],
) -> list[tuple[dict[str, ParamValue], dict[str, object]]]:
    """Every job in `workers` processes, `progress` told as each ends; rows in job order."""
    results: dict[int, dict[str, object]] = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_one, job): i for i, job in enumerate(jobs)}
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            progress(len(results), combos[index], results[index])
    return [(dict(combos[i]), results[i]) for i in range(len(jobs))]


def write_sweep(rows: list[tuple[dict[str, ParamValue], dict[str, object]]], path: Path) -> None:
    """DIR/sweep.csv: one row per combination, its parameters then its statistics."""
    if not rows:
        return
    params = list(rows[0][0])
    stats = [name for name in rows[0][1] if name != "pnl_by_symbol"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*params, *stats, "pnl_by_symbol"])
        for combo, figures in rows:
            cells = ["" if figures[s] is None else figures[s] for s in stats]
            by_symbol = json.dumps(figures.get("pnl_by_symbol", {}), separators=(",", ":"))
            writer.writerow([*(combo[p] for p in params), *cells, by_symbol])
