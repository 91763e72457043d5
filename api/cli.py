"""`ticklane api`: the API's command."""

import contextlib
import signal
import threading
from typing import Annotated

import typer
from confluent_kafka import KafkaException

from api.service import ApiService
from api.store import StoreError
from ticklane.cli import ConfigOption, bootstrap_or_exit, fail, settings_or_exit


def api(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default: api.port; 0: any).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve positions, orders and fills from the topics over HTTP, until Ctrl-C or SIGTERM."""
    settings = settings_or_exit(config)
    if port is not None:
        settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"port": port})}
        )
    bootstrap = bootstrap_or_exit(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service = ApiService(settings, bootstrap)
    except (StoreError, KafkaException) as exc:
        fail(str(exc))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            service.serve(stop)
    except OSError as exc:
        fail(f"cannot listen on {settings.api.host}:{settings.api.port}: {exc.strerror or exc}")
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    """Add the API's command to the `ticklane` command line."""
    app.command("api")(api)
