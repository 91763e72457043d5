"""`ticklane api`: the API's command."""

import contextlib
import signal
import threading
from typing import Annotated

import typer
from confluent_kafka import KafkaException

from api.auth import (
    AuthError,
    Role,
    User,
    Users,
    hash_api_key,
    hash_password,
    new_api_key,
    save_users,
)
from api.service import ApiService, users_path
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
    except (StoreError, KafkaException, AuthError) as exc:
        fail(str(exc))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            service.serve(stop)
    except OSError as exc:
        fail(f"cannot listen on {settings.api.host}:{settings.api.port}: {exc.strerror or exc}")
    finally:
        service.close()


users_app = typer.Typer(help="The API's users: roles, passwords, API keys.", no_args_is_help=True)


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[Role, typer.Option(help="viewer reads; trader also controls.")] = Role.VIEWER,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password for logins from stdin.")
    ] = False,
    api_key: Annotated[bool, typer.Option(help="Make an API key, shown once.")] = True,
    config: ConfigOption = None,
) -> None:
    """Add a user (or replace one of that name) to the users file, written 0600."""
    settings = settings_or_exit(config)
    path = users_path(settings)
    try:
        existing = Users.load(path) if path.exists() else Users()
    except AuthError as exc:
        fail(str(exc))
    password = typer.get_text_stream("stdin").readline().rstrip("\n") if password_stdin else ""
    if password_stdin and not password:
        fail("--password-stdin read an empty password", 2)
    key = new_api_key() if api_key else ""
    user = User(
        name,
        role,
        password_hash=hash_password(password) if password else "",
        api_key_hashes=(hash_api_key(key),) if key else (),
    )
    others = [u for u in existing.all() if u.name != name]
    save_users(path, [*others, user])
    typer.echo(f"{name} ({role.value}) written to {path}", err=True)
    if key:
        typer.echo(key)  # shown once: only its hash is kept


@users_app.command("list")
def list_users(config: ConfigOption = None) -> None:
    """The users, their roles, and whether each has a password and API keys."""
    path = users_path(settings_or_exit(config))
    try:
        users = Users.load(path) if path.exists() else Users()
    except AuthError as exc:
        fail(str(exc))
    for user in users.all():
        has = f"password: {'yes' if user.password_hash else 'no'}, keys: {len(user.api_key_hashes)}"
        typer.echo(f"{user.name}\t{user.role.value}\t{has}")


def register(app: typer.Typer) -> None:
    """Add the API's commands to the `ticklane` command line."""
    app.command("api")(api)
    app.add_typer(users_app, name="api-users")
