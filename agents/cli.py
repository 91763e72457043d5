"""`ticklane agents` and `ticklane backtest`: the agents' commands."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.table import Table

from ticklane.cli import ConfigOption, bootstrap_or_exit, err, fail, settings_or_exit
from ticklane.control import ParamValue
from ticklane.secrets import SecretError, read_secret, redact_logs
from ticklane.settings import BarInterval, Settings, StrategyConfig
from ticklane.units import decimal_to_price

EXIT_USAGE = 2


def agents_command(
    config: ConfigOption = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes to run; they share partitions.")
    ] = 1,
    worker_id: Annotated[
        str, typer.Option(help="Names this worker's state directory, data_dir/agents/<id>.")
    ] = "0",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Serve /metrics, /health, /ready here (worker i: port + i)."
        ),
    ] = None,
) -> None:
    """Run agents worker(s): md.* frames → bars.* and signals, per-symbol state in RocksDB."""
    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    if workers > 1:
        raise typer.Exit(_run_children(workers, worker_id, metrics_port))
    from agents.roster import RosterError  # noqa: PLC0415 - Faust is slow to import
    from agents.service import run_worker  # noqa: PLC0415

    databento_key = None
    if settings.agents.warmup_dataset is not None:
        try:
            databento_key = read_secret("DATABENTO_API_KEY")
        except SecretError as exc:
            fail(f"agents.warmup_dataset is set, but {exc}", EXIT_USAGE)
        redact_logs(databento_key)  # the databento library logs pieces of it at DEBUG
    state_dir = settings.data_dir / "agents" / worker_id
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        run_worker(
            settings,
            bootstrap,
            state_dir,
            metrics_port=metrics_port or 0,
            databento_key=databento_key,
        )
    except RosterError as exc:
        fail(f"agents.strategies: {exc}", EXIT_USAGE)


def _run_children(workers: int, worker_id: str, metrics_port: int | None) -> int:
    """Run `workers` single-worker processes with the same arguments; stop them together."""
    base = _without_options(sys.argv[1:], ("--workers", "--worker-id", "--metrics-port"))
    children = []
    for i in range(workers):
        args = [*base, "--worker-id", f"{worker_id}-{i}"]
        if metrics_port:
            args += ["--metrics-port", str(metrics_port + i)]
        children.append(subprocess.Popen([sys.argv[0], *args]))  # noqa: S603

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


def _without_options(args: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in names:
            skip = True
            continue
        if not any(arg.startswith(name + "=") for name in names):
            out.append(arg)
    return out


def _params(pairs: list[str]) -> dict[str, ParamValue]:
    params: dict[str, ParamValue] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--param {pair!r}: expected NAME=VALUE", EXIT_USAGE)
        params[name.strip()] = value.strip()
    return params


def backtest_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="DBN files (.dbn or .dbn.zst); several are merged by time into one stream.",
            metavar="FILE",
        ),
    ],
    strategy: Annotated[str, typer.Option(help="Strategy name (ema_cross, supertrend, ...).")],
    out: Annotated[Path, typer.Option(help="Directory for bars.csv, indicators.csv, signals.csv.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Strategy parameter NAME=VALUE; repeatable. NAME=V1,V2,... sweeps: every "
            "combination is run, in parallel, and ranked (DIR/sweep.csv)."
        ),
    ] = None,
    bar_interval: Annotated[
        str, typer.Option(help="Bars built from trades: " + ", ".join(get_args(BarInterval)))
    ] = "1m",
    source: Annotated[
        str | None,
        typer.Option(help="Records to take: trades, mbp-1 or ohlcv-*; default: the file's."),
    ] = None,
    config: ConfigOption = None,
    fee_per_unit: Annotated[
        str | None,
        typer.Option(
            help="Fee per contract or share in currency units (default: executor.paper's).",
            show_default=False,
        ),
    ] = None,
    slippage: Annotated[
        str | None,
        typer.Option(
            help="Slippage against market and stop fills, in price units "
            "(default: executor.paper's).",
            show_default=False,
        ),
    ] = None,
    capital: Annotated[
        str, typer.Option(help="Account size the returns (Sharpe, Sortino) are measured on.")
    ] = "100000",
    report: Annotated[
        bool,
        typer.Option(
            "--report", help="Also write DIR/report.html: plots and statistics, opens offline."
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Sweep: processes at once (default: one per core)."),
    ] = None,
    sort_by: Annotated[
        str, typer.Option(help="Sweep: the statistic that ranks the combinations.")
    ] = "sharpe",
    warmup_bars: Annotated[
        int,
        typer.Option(
            min=0,
            help="Each symbol's first N bars only warm the strategy up: no signal from them.",
        ),
    ] = 0,
    symbols: Annotated[
        str | None,
        typer.Option(
            help="Run the strategy on these symbols only (comma-separated).", show_default=False
        ),
    ] = None,
) -> None:
    """Run a strategy over a DBN file in-process, as the agents would, then its signals
    through the executor's rules and the paper venue over the same file's market data;
    write CSV files and the statistics, and print them."""
    from agents.roster import RosterError  # noqa: PLC0415
    from agents.strategies.registry import registry  # noqa: PLC0415
    from agents.sweep import RANKABLE, grid, label  # noqa: PLC0415
    from agents.ticks import SOURCE_RTYPES  # noqa: PLC0415

    if bar_interval not in get_args(BarInterval):
        fail(f"--bar-interval must be one of {', '.join(get_args(BarInterval))}", EXIT_USAGE)
    if source is not None and source not in SOURCE_RTYPES:
        fail(f"--source must be one of {', '.join(SOURCE_RTYPES)}", EXIT_USAGE)
    if sort_by not in RANKABLE:
        fail(f"--sort-by must be one of {', '.join(RANKABLE)}", EXIT_USAGE)
    for path in paths:
        if not path.is_file():
            fail(f"{path} is not a file", EXIT_USAGE)
    settings = _backtest_settings(config, fee_per_unit, slippage)
    account = _units("--capital", capital, 0)
    if account <= 0:
        fail("--capital must be more than 0", EXIT_USAGE)
    combos = grid(_param_values(param or []))
    for combo in combos:  # every combination checked before any runs
        try:
            registry().create(strategy).parse_params(combo)
        except (LookupError, ValueError, RosterError) as exc:
            fail(f"{strategy} {label(combo)}: {exc}", EXIT_USAGE)
    chosen = tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else None
    run = _Run(
        paths, strategy, bar_interval, source, settings, account, out, report, chosen, warmup_bars
    )
    if len(combos) == 1:
        _single(run, combos[0])
    else:
        _sweep(run, combos, workers or os.cpu_count() or 1, sort_by)


@dataclass(frozen=True)
class _Run:
    """What every backtest of one command shares."""

    paths: list[Path]
    strategy: str
    bar_interval: str
    source: str | None
    settings: Settings
    capital: int
    out: Path
    report: bool
    symbols: tuple[str, ...] | None = None
    warmup_bars: int = 0

    def config(self, params: dict[str, ParamValue]) -> StrategyConfig:
        return StrategyConfig(
            name=self.strategy,
            params=params,
            bar_interval=self.bar_interval,  # type: ignore[arg-type]
            symbols=self.symbols or "*",
        )


def _single(run: _Run, params: dict[str, ParamValue]) -> None:
    """One backtest: its files, its statistics printed, its report on request."""
    from agents.backtest import (  # noqa: PLC0415
        BacktestError,
        evaluate,
        run_backtest,
        stats_rows,
        write_csvs,
        write_performance,
    )
    from agents.roster import RosterError  # noqa: PLC0415
    from agents.strategies.registry import registry  # noqa: PLC0415
    from ticklane.dbn_files import DbnFileError, source_name  # noqa: PLC0415

    paths, out = run.paths, run.out
    try:
        result = run_backtest(
            paths, run.config(params), registry(), source=run.source, warmup_bars=run.warmup_bars
        )
        performance = evaluate(paths, result, run.settings, run.capital)
    except RosterError as exc:
        fail(str(exc), EXIT_USAGE)
    except (BacktestError, DbnFileError) as exc:
        fail(str(exc))
    counts = write_csvs(result, out) | write_performance(performance, out)
    title = f"{run.strategy} on {source_name(paths)}"
    if run.report:
        from agents.report import write_report  # noqa: PLC0415 - Plotly is slow to import

        write_report(out / "report.html", title, result, performance)
    table = Table(title=title, show_header=False)
    for name, value in stats_rows(performance.stats, performance.simulation.source):
        table.add_row(name, value)
    Console().print(table)
    err.print(
        f"{source_name(paths)}: {result.records:,} records → {counts['bars']:,} bars, "
        f"{counts['signals']:,} signals, {counts['orders']:,} orders, {counts['fills']:,} "
        f"fills; written to {out}"
        + (f" ({result.warmup_signals:,} warm-up signal(s) dropped)" if run.warmup_bars else ""),
        highlight=False,
    )


_SWEEP_COLUMNS = ("trades", "win_rate", "total_pnl", "max_drawdown", "sharpe", "sortino")


def _sweep(run: _Run, combos: list[dict[str, ParamValue]], workers: int, sort_by: str) -> None:
    """Every combination in `workers` processes, each into DIR/<combination>/, then ranked
    into DIR/sweep.csv and printed."""
    from agents.backtest import BacktestError  # noqa: PLC0415
    from agents.sweep import Job, label, rank, run_sweep, write_sweep  # noqa: PLC0415
    from ticklane.dbn_files import DbnFileError, source_name  # noqa: PLC0415

    jobs = [
        Job(
            tuple(run.paths),
            run.config(combo),
            run.source,
            run.settings,
            run.capital,
            run.out / label(combo),
            run.report,
            run.warmup_bars,
        )
        for combo in combos
    ]
    err.print(f"{len(jobs)} combinations, {min(workers, len(jobs))} at a time", highlight=False)

    def progress(done: int, combo: dict[str, ParamValue], stats: dict[str, object]) -> None:
        figure = stats.get(sort_by)
        err.print(f"[{done}/{len(jobs)}] {label(combo)}: {sort_by} {figure}", highlight=False)

    try:
        rows = rank(run_sweep(jobs, combos, workers, progress), sort_by)
    except (BacktestError, DbnFileError) as exc:
        fail(str(exc))
    run.out.mkdir(parents=True, exist_ok=True)
    write_sweep(rows, run.out / "sweep.csv")
    names = list(combos[0])
    table = Table(title=f"{run.strategy} on {source_name(run.paths)}, by {sort_by}")
    for column in [*names, *_SWEEP_COLUMNS]:
        table.add_column(column, justify="right")
    for combo, stats in rows:
        cells = [_sweep_cell(column, stats.get(column)) for column in _SWEEP_COLUMNS]
        table.add_row(*(str(combo[n]) for n in names), *cells)
    Console().print(table)
    err.print(f"written to {run.out} (sweep.csv and one directory per combination)")


def _sweep_cell(column: str, value: object) -> str:
    if value is None:
        return "-"
    if column in {"total_pnl", "max_drawdown"} and isinstance(value, int):
        return f"{value / 1_000_000_000:,.2f}"
    if isinstance(value, float):
        return f"{value:.1%}" if column == "win_rate" else f"{value:.2f}"
    return str(value)


def _param_values(pairs: list[str]) -> dict[str, list[ParamValue]]:
    """NAME=VALUE options, a comma-separated VALUE being several values to sweep."""
    values: dict[str, list[ParamValue]] = {}
    for name, value in _params(pairs).items():
        values[name] = [v.strip() for v in str(value).split(",")]
        if not all(values[name]):
            fail(f"--param {name}={value}: an empty value in the list", EXIT_USAGE)
    return values


def _backtest_settings(config: Path | None, fee: str | None, slippage: str | None) -> Settings:
    """The settings file's, with the paper venue's fee and slippage as the options say."""
    settings = settings_or_exit(config)
    paper = settings.executor.paper
    overrides = {
        "fee_per_unit": _units("--fee-per-unit", fee, paper.fee_per_unit),
        "slippage": _units("--slippage", slippage, paper.slippage),
    }
    executor = settings.executor.model_copy(update={"paper": paper.model_copy(update=overrides)})
    return settings.model_copy(update={"executor": executor})


def _units(option: str, value: str | None, default: int) -> int:
    """A price or money amount given in units (`2.25`) as ticklane's 1e-9 integer."""
    if value is None:
        return default
    try:
        amount = decimal_to_price(value)
    except (ValueError, ArithmeticError):
        fail(f"{option} {value!r}: expected a number such as 2.25", EXIT_USAGE)
    if amount < 0:
        fail(f"{option} must not be negative", EXIT_USAGE)
    return amount


def register(app: typer.Typer) -> None:
    """Add the agents' commands to the `ticklane` command line."""
    app.command("agents")(agents_command)
    app.command("backtest")(backtest_command)
