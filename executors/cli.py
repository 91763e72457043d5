"""`ticklane execute` and `ticklane paper`: the executor's commands."""

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from executors.brokers.base import BrokerError
from executors.brokers.factory import VENUES, paper_dir, venue_store_path, with_venue
from executors.brokers.paper.store import VenueStore
from executors.ledger import LedgerError
from executors.service import ExecutorService
from ticklane.cli import ConfigOption, bootstrap_or_exit, fail, print_records, settings_or_exit
from ticklane.health import serve
from ticklane.secrets import SecretError

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
    broker: Annotated[
        str | None,
        typer.Option(help="Where orders go: paper, tastytrade or schwab (default: the settings')."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="tastytrade: every order a dry run, checked and never placed."
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Turn signals into orders at the broker, exactly once, until Ctrl-C or SIGTERM."""
    settings = settings_or_exit(config)
    chosen = broker or settings.executor.broker
    if chosen not in VENUES:
        fail(f"unknown broker {chosen!r}; available: {', '.join(VENUES)}", 2)
    if dry_run and chosen != "tastytrade":
        fail("--dry-run is for --broker tastytrade (the paper venue places nothing real)", 2)
    settings = with_venue(settings, chosen, dry_run=dry_run)
    bootstrap = bootstrap_or_exit(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service = ExecutorService(settings, bootstrap)
    except (LedgerError, BrokerError, SecretError) as exc:
        fail(str(exc))
    # Ready while the executor's status is `running`: reconciled, not halted, nothing unknown.
    health = serve(
        service.beacon, settings.executor.metrics_port, registry=service.metrics.registry
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            service.run(stop)
    finally:
        service.close()
        if health is not None:
            health.stop()


def _open_store(data_dir: Path | None, config: Path | None) -> VenueStore:
    directory = data_dir if data_dir is not None else paper_dir(settings_or_exit(config))
    path = venue_store_path(directory)
    if not path.exists():
        fail(f"no paper venue record at {path}")
    return VenueStore(path.parent)


@paper_app.command("orders")
def paper_orders(
    as_json: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Every order the paper venue received, in arrival order."""
    store = _open_store(data_dir, config)
    try:
        columns = ("client_order_id", "symbol", "side", "quantity", "type", "status")
        print_records(store.orders(), as_json, columns)
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
        print_records(store.fills(), as_json, columns)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add the executor's commands to the `ticklane` command line."""
    app.command("execute")(execute)
    app.add_typer(paper_app, name="paper")
    from executors.brokers.schwab.auth import auth_app  # noqa: PLC0415 - with its SDK, late

    app.add_typer(auth_app, name="auth")
