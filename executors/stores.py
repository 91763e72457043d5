"""The ledger's two stores: SQLite (WAL, one file, the default) and PostgreSQL (psycopg 3).

Each opens a connection, takes a single-writer lock (one executor per ledger: a second one
would net against positions it does not see) and returns the one `SqlLedger`. The locks die
with the process, so a killed executor's successor gets the ledger at once.
"""

import contextlib
import fcntl
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import psycopg

from executors.ledger import Dialect, LedgerError, SqlLedger
from executors.wal import WRITER_CACHE_PRAGMA, WRITER_PRAGMA, WalCheckpointer
from ticklane.settings import Settings

SQLITE: Final = Dialect(
    "sqlite", "?", "BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", "BEGIN IMMEDIATE"
)
POSTGRES: Final = Dialect("postgres", "%s", "BYTEA", "BIGSERIAL PRIMARY KEY", None)
LOCK_WAIT_S: Final = 10.0


class LedgerLockedError(LedgerError):
    """Another executor holds this ledger."""


def sqlite_path(settings: Settings) -> Path:
    """Where the SQLite ledger lives."""
    ledger = settings.executor.ledger
    return ledger.sqlite_path or settings.data_dir / "executor" / "ledger.sqlite"


def _lock_file(path: Path, wait_s: float) -> int:
    import os  # noqa: PLC0415 - only the SQLite store needs a lock file

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LedgerLockedError(f"another executor holds {path}") from None
            time.sleep(0.05)
        else:
            return fd


def open_sqlite(
    path: Path, *, synchronous: str = "NORMAL", lock_wait_s: float = LOCK_WAIT_S
) -> SqlLedger:
    """The SQLite ledger at `path`, locked for this process."""
    import os  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock_file(path.with_suffix(".lock"), lock_wait_s)
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute(WRITER_PRAGMA)
        db.execute(WRITER_CACHE_PRAGMA)
    except sqlite3.Error as exc:
        os.close(fd)
        raise LedgerError(f"cannot open the ledger {path}: {exc}") from exc
    checkpointer = WalCheckpointer(path)

    def release() -> None:
        checkpointer.close()
        os.close(fd)

    return SqlLedger(db, SQLITE, release=release)


def open_postgres(dsn: str, schema: str, *, lock_wait_s: float = LOCK_WAIT_S) -> SqlLedger:
    """The PostgreSQL ledger in `schema` (created if missing), locked for this process."""
    import psycopg  # noqa: PLC0415 - only needed with the PostgreSQL store
    from psycopg import sql  # noqa: PLC0415

    try:
        db = psycopg.connect(dsn, autocommit=False)
    except psycopg.Error as exc:
        raise LedgerError(f"cannot connect to the PostgreSQL ledger: {exc}") from None
    try:
        db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        db.commit()
        _advisory_lock(db, schema, lock_wait_s)
    except BaseException:
        with contextlib.suppress(Exception):
            db.close()
        raise
    return SqlLedger(db, POSTGRES)


def _advisory_lock(db: "psycopg.Connection[Any]", schema: str, wait_s: float) -> None:
    """Hold PostgreSQL's session lock for the schema (released when the connection drops)."""
    deadline = time.monotonic() + wait_s
    while True:
        row = db.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (schema,)).fetchone()
        db.commit()
        if row is not None and row[0]:
            return
        if time.monotonic() >= deadline:
            raise LedgerLockedError(f"another executor holds the ledger in schema {schema}")
        time.sleep(0.05)


def open_ledger(settings: Settings) -> SqlLedger:
    """The ledger the settings name."""
    ledger = settings.executor.ledger
    if ledger.store == "postgres":
        if ledger.postgres_dsn is None:
            raise LedgerError(
                "executor.ledger.store is postgres but executor.ledger.postgres_dsn is not set "
                "(env TICKLANE_EXECUTOR__LEDGER__POSTGRES_DSN)"
            )
        return open_postgres(ledger.postgres_dsn.get_secret_value(), ledger.postgres_schema)
    return open_sqlite(sqlite_path(settings), synchronous=ledger.sqlite_synchronous)
