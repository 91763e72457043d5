"""`ticklane fake ...`: the local venue servers' commands."""

import typer

from fakes.schwab.cli import schwab_app
from fakes.tastytrade.cli import tastytrade_app

fake_app = typer.Typer(help="Local venue servers for tests and demos.", no_args_is_help=True)
fake_app.add_typer(tastytrade_app, name="tastytrade")
fake_app.add_typer(schwab_app, name="schwab")


def register(app: typer.Typer) -> None:
    """Add the fakes' commands to the `ticklane` command line."""
    app.add_typer(fake_app, name="fake")
