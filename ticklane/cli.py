"""The `ticklane` command line: one entry point for every process and tool."""

import contextlib
import faulthandler
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from ticklane import __version__, kafka
from ticklane.broker import BrokerError, EmbeddedBroker
from ticklane.logs import quiet_repeats
from ticklane.settings import ConfigError, Settings, load_settings
from ticklane.tail import TailError, consume, deadline_stop, tail
from ticklane.topic_admin import TopicAdmin, TopicAdminError, TopicCheck, TopicState
from ticklane.topics import catalogue, resolve, retention_summary

app = typer.Typer(
    name="ticklane",
    help="Automated trading pipeline on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
topics_app = typer.Typer(help="Create, check and read the catalogued topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")

err = Console(stderr=True, soft_wrap=True)
out = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file (also TICKLANE_CONFIG).", show_default=False
    ),
]

EXIT_USAGE = 2
EXIT_DRIFT = 3
EXIT_KAFKA = 4
"""Kafka did not answer at start within kafka.connect_timeout_s."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error for a person and exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def print_records(rows: Sequence[Any], as_json: bool, columns: tuple[str, ...]) -> None:
    """Records (structs or dataclasses) as one JSON line each, or as a table of `columns`."""
    dicts = [msgspec.to_builtins(row) for row in rows]
    if as_json:
        for item in dicts:
            sys.stdout.write(json.dumps(item) + "\n")
        return
    table = Table(*columns)
    for item in dicts:
        table.add_row(*(str(item[c]) for c in columns))
    out.print(table)


def settings_or_exit(config: Path | None) -> Settings:
    """Load settings; bad settings stop start-up with a message naming each bad value."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_repeats()
    return settings


def bootstrap_or_exit(settings: Settings) -> str:
    """The Kafka address to use once it answers, or exit saying how to provide one (2) or
    that it did not answer within `kafka.connect_timeout_s` (4)."""
    try:
        bootstrap = kafka.bootstrap_servers(settings)
    except kafka.NoBrokerError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        kafka.probe(settings.kafka, bootstrap)
    except kafka.KafkaUnreachableError as exc:
        fail(str(exc), EXIT_KAFKA)
    return bootstrap


@app.command()
def version() -> None:
    """Print the ticklane version."""
    out.print(__version__)


@app.command()
def broker(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.", min=0, max=65535)] = 0,
    create_topics: Annotated[
        bool, typer.Option("--create-topics", help="Create the catalogued topics once it answers.")
    ] = False,
) -> None:
    """Run a local Kafka-protocol broker (tansu, in-memory) until Ctrl-C."""
    settings = settings_or_exit(config)
    data_dir = settings.data_dir
    embedded = EmbeddedBroker(host=host, port=port, log_path=data_dir / "broker.log")
    try:
        embedded.start()
    except BrokerError as exc:
        fail(str(exc))
    address_file = data_dir / kafka.ADDRESS_FILE
    stopped = threading.Event()
    # Both set explicitly: a process started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then leaves it ignored (Ctrl-C would do nothing).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        address_file.write_text(f"{embedded.bootstrap_servers} {os.getpid()}\n")
        if create_topics:
            _print_checks(_ensure(settings, embedded.bootstrap_servers))
        # The address alone on stdout, so scripts can capture it.
        print(embedded.bootstrap_servers, flush=True)
        err.print(
            f"broker answering at {embedded.bootstrap_servers} (in-memory; data is lost on stop). "
            "Ctrl-C stops it.",
            highlight=False,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not stopped.wait(0.5):
                pass
    finally:
        with contextlib.suppress(OSError):
            address_file.unlink()
        embedded.stop()
        err.print("broker stopped")


def _ensure(settings: Settings, bootstrap: str) -> list[TopicCheck]:
    admin = TopicAdmin(kafka.client_config(settings.kafka, bootstrap))
    try:
        return admin.ensure(catalogue(settings.topics), settings.topics.replication_factor)
    except TopicAdminError as exc:
        fail(str(exc))


def _print_checks(checks: list[TopicCheck]) -> None:
    table = Table("topic", "partitions", "key", "retention", "state")
    colours = {TopicState.OK: "green", TopicState.CREATED: "cyan", TopicState.MISSING: "yellow"}
    for check in checks:
        spec = check.spec
        parts = str(spec.partitions)
        if check.actual_partitions not in (None, spec.partitions):
            parts = f"{check.actual_partitions} (want {spec.partitions})"
        config = retention_summary(spec.config)
        colour = colours.get(check.state, "red")
        state = f"[{colour}]{check.state.value}[/]" + (f": {check.detail}" if check.detail else "")
        table.add_row(spec.name, parts, spec.key.value, config, state)
    out.print(table)


def _exit_on_drift(checks: list[TopicCheck]) -> None:
    drifted = [c for c in checks if c.is_error]
    if drifted:
        names = ", ".join(f"{c.spec.name} ({c.detail})" for c in drifted)
        fail(f"{len(drifted)} topic(s) differ from the catalogue: {names}", EXIT_DRIFT)


@topics_app.command("create")
def topics_create(config: ConfigOption = None) -> None:
    """Create every catalogued topic that is missing; report drift as an error."""
    settings = settings_or_exit(config)
    checks = _ensure(settings, bootstrap_or_exit(settings))
    _print_checks(checks)
    _exit_on_drift(checks)


@topics_app.command("list")
def topics_list(config: ConfigOption = None) -> None:
    """Show every catalogued topic and its state on the cluster; exits 3 on drift."""
    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    admin = TopicAdmin(kafka.client_config(settings.kafka, bootstrap))
    try:
        checks = admin.check(catalogue(settings.topics))
    except Exception as exc:  # noqa: BLE001 - any cluster failure is reported, not traced
        fail(f"cannot read topics from {bootstrap}: {exc}")
    _print_checks(checks)
    _exit_on_drift(checks)


@topics_app.command("tail")
def topics_tail(
    topic: Annotated[str, typer.Argument(help="Catalogue name (signals, md.trades) or full name.")],
    config: ConfigOption = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest message.")
    ] = False,
    max_records: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after printing N records.")
    ] = None,
    until_end: Annotated[
        bool, typer.Option("--until-end", help="Exit once every partition's end is reached.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Exit after this many seconds in any case.")
    ] = None,
) -> None:
    """Print a topic's messages decoded, one JSON line per record (frames expanded)."""
    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    name = resolve(settings.topics, topic)
    consumer_config = kafka.consumer_config(
        settings.kafka, bootstrap, f"ticklane-tail-{os.getpid()}", from_beginning=from_beginning
    )
    messages = consume(
        consumer_config,
        name,
        from_beginning=from_beginning,
        until_end=until_end,
        stop=deadline_stop(timeout),
    )
    try:
        with contextlib.closing(messages):
            tail(messages, lambda line: sys.stdout.write(line + "\n"), max_records)
    except TailError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `| head` closed the pipe: a normal way to stop
        sys.stderr.close()
    sys.stdout.flush()


@app.command()
def demo(
    config: ConfigOption = None,
    data: Annotated[
        Path | None, typer.Option(help="A DBN file to replay (default: synthetic data).")
    ] = None,
    symbols: Annotated[int, typer.Option(min=1, help="Synthetic underlyings.")] = 8,
    minutes: Annotated[int, typer.Option(min=1, help="Synthetic minutes of trading.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="Synthetic data seed.")] = 1,
    speed: Annotated[str, typer.Option(help="Replay pace: max, realtime or e.g. 10x.")] = "max",
    until_done: Annotated[
        bool, typer.Option("--until-done", help="Exit once the replay is fully processed.")
    ] = False,
    summary_json: Annotated[
        Path | None, typer.Option("--summary-json", help="Also write the summary here.")
    ] = None,
    broker: Annotated[
        str,
        typer.Option(help="Where orders go: paper, tastytrade or schwab (local fakes, real SDKs)."),
    ] = "paper",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65533,
            help="Serve /metrics, /health and /ready: agents here, executor +1, producer +2; "
            "writes Prometheus scrape targets to the data dir.",
        ),
    ] = None,
) -> None:
    """The whole pipeline locally: broker, replay, agents, executor on paper; then a summary."""
    from ticklane.dbn_files import DbnFileError, check_readable  # noqa: PLC0415
    from ticklane.demo import VENUES, DemoError, DemoOptions, run_demo  # noqa: PLC0415

    settings = settings_or_exit(config)
    if data is not None and not data.is_file():
        fail(f"{data} is not a file", EXIT_USAGE)
    if data is not None:
        try:
            check_readable(data)
        except DbnFileError as exc:
            fail(f"--data: {exc}", EXIT_USAGE)
    if broker not in VENUES:
        fail(f"unknown broker {broker!r}; available: {', '.join(VENUES)}", EXIT_USAGE)
    options = DemoOptions(
        data,
        symbols,
        minutes,
        seed,
        speed,
        until_done,
        summary_json,
        broker=broker,
        metrics_port=metrics_port,
    )
    try:
        summary = run_demo(settings, options)
    except (DemoError, BrokerError) as exc:
        fail(str(exc))
    table = Table("strategy", "signals", "symbols", "realized P&L", "open positions")
    for column in ("trades", "win rate", "P&L (marked)", "max drawdown", "Sharpe"):
        table.add_column(column, justify="right")
    for name, row in summary.strategies.items():
        opened = ", ".join(f"{s} {q:+d}" for s, q in row["open_positions"].items()) or "-"
        win_rate, sharpe = row.get("win_rate"), row.get("sharpe")
        table.add_row(
            name,
            str(row["signals"]),
            str(row["symbols"]),
            f"{row['realized_pnl']:,.2f}",
            opened,
            str(row.get("trades", 0)),
            "-" if win_rate is None else f"{win_rate:.0%}",
            f"{row.get('total_pnl', 0.0):,.2f}",
            f"{row.get('max_drawdown', 0.0):,.2f}",
            "-" if sharpe is None else f"{sharpe:.2f}",
        )
    out.print(table)
    out.print(
        f"{summary.symbols} symbols, {summary.ticks:,} trades, {summary.signals:,} signals, "
        f"{summary.orders:,} orders and {summary.fills:,} fills at {summary.broker}, "
        f"in {summary.seconds:.0f}s",
        highlight=False,
    )


_PROCESS_CLIS = ("producers.cli", "agents.cli", "executors.cli", "api.cli", "fakes.cli")
"""Modules whose `register(app)` adds a process's commands to the one console script."""


def _add_process_commands() -> None:
    # The processes' commands live with the processes; imported here, late, because they
    # import this module for its shared options and error helpers.
    for name in _PROCESS_CLIS:
        importlib.import_module(name).register(app)


def main() -> None:
    """Console-script entry point."""
    # A crash in native code (librdkafka, RocksDB, the DBN decoder) leaves a Python
    # traceback in the process's log instead of a bare exit status.
    faulthandler.enable()
    _add_process_commands()
    app()
