"""Data files the tests and the bench read, all inside the repository."""

import os
from pathlib import Path

DATABENTO_IN_REPO = Path(__file__).resolve().parent / "databento"


def databento_dir() -> Path:
    """The real Databento sample files: TICKLANE_DATABENTO_DIR if set, else the repository's."""
    override = os.environ.get("TICKLANE_DATABENTO_DIR")
    directory = Path(override) if override else DATABENTO_IN_REPO
    if not (directory / "README.md").is_file():
        source = "TICKLANE_DATABENTO_DIR" if override else "the repository"
        raise FileNotFoundError(
            f"Databento sample files not found in {directory} (from {source}); "
            f"unset TICKLANE_DATABENTO_DIR to use {DATABENTO_IN_REPO}"
        )
    return directory
