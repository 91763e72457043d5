"""`ticklane execute` and `ticklane paper`: the executor's commands."""

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from executors.brokers.factory import paper_dir, venue_store_path
from executors.brokers.paper.store import VenueStore
from executors.ledger import LedgerError
from executors.service import ExecutorService, serve_metrics
from ticklane.cli import ConfigOption, bootstrap_or_exit, fail, settings_or_exit

paper_app = typer.Typer(
    help="The paper venue's own record of what it received and filled.", no_args_is_help=True
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="A ticklane data dir (its paper/ venue) or a paper venue dir; default: settings'.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON line per record.")]


def execute(
    broker: Annotated[str, typer.Option(help="Where orders go: paper.")] = "paper",
    config: ConfigOption = None,
) -> None:
    """Turn signals into orders at the broker, exactly once, until Ctrl-C or SIGTERM."""
    settings = settings_or_exit(config)
    if broker != settings.executor.broker:
        fail(f"unknown broker {broker!r}; available: paper", 2)
    bootstrap = bootstrap_or_exit(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service = ExecutorService(settings, bootstrap)
    except LedgerError as exc:
        fail(str(exc))
    serve_metrics(service.metrics, settings.executor.metrics_port)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            service.run(stop)
    finally:
        service.close()


def _open_store(data_dir: Path | None, config: Path | None) -> VenueStore:
    directory = data_dir if data_dir is not None else paper_dir(settings_or_exit(config))
    path = venue_store_path(directory)
    if not path.exists():
        fail(f"no paper venue record at {path}")
    return VenueStore(path.parent)


def _print(rows: list[Any], as_json: bool, columns: tuple[str, ...]) -> None:
    dicts = [msgspec.to_builtins(row) for row in rows]
    if as_json:
        for item in dicts:
            sys.stdout.write(json.dumps(item) + "\n")
        return
    table = Table(*columns)
    for item in dicts:
        table.add_row(*(str(item[c]) for c in columns))
    Console().print(table)


@paper_app.command("orders")
def paper_orders(
    as_json: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Every order the paper venue received, in arrival order."""
    store = _open_store(data_dir, config)
    try:
        columns = ("client_order_id", "symbol", "side", "quantity", "type", "status")
        _print(store.orders(), as_json, columns)
    finally:
        store.close()


@paper_app.command("fills")
def paper_fills(
    as_json: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Every fill the paper venue made, in order."""
    store = _open_store(data_dir, config)
    try:
        columns = ("seq", "client_order_id", "symbol", "side", "quantity", "price", "ts")
        _print(store.fills(), as_json, columns)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add the executor's commands to the `ticklane` command line."""
    app.command("execute")(execute)
    app.add_typer(paper_app, name="paper")
