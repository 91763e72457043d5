"""`ticklane execute` and `ticklane paper`: the executor's commands."""

import typer


def register(app: typer.Typer) -> None:
    """Add the executor's commands to the `ticklane` command line (none yet)."""
    del app
