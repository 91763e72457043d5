"""`ticklane agents` and `ticklane backtest`: the agents' commands."""

import typer


def register(app: typer.Typer) -> None:
    """Add the agents' commands to the `ticklane` command line (none yet)."""
    del app
