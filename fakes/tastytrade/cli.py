"""`ticklane fake tastytrade`: serve the fake until Ctrl-C, or print its record.

    ticklane fake tastytrade [--port N] [--data-dir D] [--fault rate_limit=1 ...]
    ticklane fake tastytrade orders --json [--data-dir D]
    ticklane fake tastytrade fills --json [--data-dir D]

Serving prints the URL alone on stdout (for scripts) and writes it, with the pid, to
`D/server.url`. Market data and instrument definitions come from md.* when Kafka is
configured (`--bootstrap`, KAFKA_BOOTSTRAP_SERVERS, the settings, or a running `ticklane
broker`), through the same settings and topic prefix as every other command.
"""

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Annotated, Final

import typer

from fakes.serving import start_site
from fakes.tastytrade.faults import FaultError, request_from_flags
from fakes.tastytrade.lines import fill_line, order_line
from fakes.tastytrade.record import RECORD_FILE, Record, RecordError
from fakes.tastytrade.server import DEFAULT_ACCOUNT, FakeConfig, FakeTastytrade
from ticklane import kafka
from ticklane.cli import ConfigOption, err, fail, print_records, settings_or_exit
from ticklane.kafka import ClientConfig
from ticklane.settings import Settings
from ticklane.topics import resolve

FAKE_DIR: Final = "fake-tastytrade"
URL_FILE: Final = "server.url"

tastytrade_app = typer.Typer(
    help="A local TastyTrade server (REST, OAuth, account streamer) and its record.",
    invoke_without_command=True,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"The fake's record dir, or a ticklane data dir (its {FAKE_DIR}/); "
        "default: settings'.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON line per record.")]


def _kafka(
    settings: Settings, bootstrap: str | None, no_kafka: bool
) -> tuple[ClientConfig, list[str]] | None:
    if no_kafka:
        return None
    if bootstrap is None:
        try:
            bootstrap = kafka.bootstrap_servers(settings)
        except kafka.NoBrokerError:
            err.print("no Kafka configured: market data only from POST /__fake/ticks")
            return None
    config = kafka.client_config(settings.kafka, bootstrap) | {
        "group.id": f"ticklane-fake-tastytrade-{os.getpid()}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
    }
    schemas = ("definition", *settings.executor.paper.market_data)
    return config, [resolve(settings.topics, f"md.{schema}") for schema in schemas]


async def _serve(fake: FakeTastytrade, port: int, url_file: Path) -> None:
    runner, bound = await start_site(fake, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    url = f"http://127.0.0.1:{bound}"
    try:
        # Whole, then renamed: whoever polls for the file never reads half a URL.
        partial = url_file.with_name(f".{url_file.name}.{os.getpid()}")
        partial.write_text(f"{url} {os.getpid()}\n")
        partial.replace(url_file)
        print(url, flush=True)  # alone on stdout, so scripts can capture it
        err.print(
            f"fake TastyTrade answering at {url}, accounts {', '.join(fake.config.accounts)}, "
            f"record {fake.record.path}. Ctrl-C stops it.",
            highlight=False,
        )
        await stop.wait()
    finally:
        with contextlib.suppress(OSError):
            url_file.unlink()
        await runner.cleanup()
        err.print("fake TastyTrade stopped")


@tastytrade_app.callback()
def serve(  # noqa: PLR0917 - a typer command's options are its positional parameters
    ctx: typer.Context,
    config: ConfigOption = None,
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.", min=0, max=65535)] = 0,
    data_dir: DataDirOption = None,
    account: Annotated[
        list[str] | None, typer.Option(help=f"Account number (repeatable); {DEFAULT_ACCOUNT}.")
    ] = None,
    token_lifetime: Annotated[
        int,
        typer.Option(min=1, help="Access-token lifetime in seconds (the SDK renews 60s early)."),
    ] = 900,
    any_symbol: Annotated[
        bool, typer.Option("--any-symbol", help="Trade symbols it has no definition of.")
    ] = False,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Arm a fault, NAME[=N] or a setting NAME=VALUE (repeatable)."),
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers for md.* (default: settings').")
    ] = None,
    no_kafka: Annotated[
        bool, typer.Option("--no-kafka", help="Take market data only from POST /__fake/ticks.")
    ] = False,
) -> None:
    """Serve a local TastyTrade API on 127.0.0.1 until Ctrl-C or SIGTERM; prints its URL."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit(config)
    directory = data_dir if data_dir is not None else settings.data_dir / FAKE_DIR
    try:
        faults = request_from_flags(fault or [])
    except FaultError as exc:
        fail(str(exc), 2)
    fake_config = FakeConfig(
        accounts=tuple(account or (DEFAULT_ACCOUNT,)),
        token_lifetime_s=token_lifetime,
        any_symbol=any_symbol,
        faults=faults,
    )
    fake = FakeTastytrade(fake_config, directory, kafka=_kafka(settings, bootstrap, no_kafka))
    try:
        asyncio.run(_serve(fake, port, directory / URL_FILE))
    except OSError as exc:
        fail(f"cannot serve on port {port}: {exc}")
    finally:
        fake.close()


def _open(data_dir: Path | None, config: Path | None) -> Record:
    directory = data_dir if data_dir is not None else settings_or_exit(config).data_dir / FAKE_DIR
    if not (directory / RECORD_FILE).exists() and (directory / FAKE_DIR / RECORD_FILE).exists():
        directory = directory / FAKE_DIR
    try:
        return Record(directory, read_only=True)
    except RecordError as exc:
        fail(str(exc))


@tastytrade_app.command("orders")
def orders(
    as_json: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Every order the fake received, in arrival order."""
    record = _open(data_dir, config)
    try:
        fills = record.fills()
        lines = [order_line(o, [f for f in fills if f.order_id == o.id]) for o in record.orders()]
    finally:
        record.close()
    columns = ("client_order_id", "venue_order_id", "symbol", "side", "quantity", "type", "status")
    print_records(list(lines), as_json, columns)


@tastytrade_app.command("fills")
def fills(
    as_json: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Every fill the fake made, in order."""
    record = _open(data_dir, config)
    try:
        by_id = {o.id: o for o in record.orders()}
        lines = [fill_line(f, by_id.get(f.order_id)) for f in record.fills()]
    finally:
        record.close()
    print_records(
        list(lines),
        as_json,
        ("seq", "client_order_id", "symbol", "side", "quantity", "price", "ts"),
    )
