"""WAL checkpoints of a SQLite file, off the writer's path.

SQLite checkpoints a WAL file from inside the commit that fills it past 1,000 pages: that
commit copies the pages into the database and syncs it, and the signal waiting behind it
waits too (in a burst, several milliseconds at a time). The writer's connection turns that
off (`wal_autocheckpoint=0`) and this thread checkpoints instead, on a connection of its own
(PASSIVE: it never blocks the writer, and what it cannot copy yet it copies next time). The
sqlite3 module releases the GIL while SQLite works, so the copy runs beside the writer.
"""

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

EVERY_S: Final = 0.5


class WalCheckpointer:
    """Checkpoints `path` every `every_s` seconds until `close`; the writer must have set
    `PRAGMA wal_autocheckpoint=0` on its own connection (`writer_pragmas`)."""

    def __init__(self, path: Path, every_s: float = EVERY_S) -> None:
        self._path = path
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"wal-checkpoint {path.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self._every_s):
                self._checkpoint(db)
            self._checkpoint(db)  # what the last commits left, before the file is closed
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # busy or closing: the next round copies it
            log.debug("checkpoint of %s: %s", self._path, exc)

    def close(self) -> None:
        """Stop after one last checkpoint."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(10)


WRITER_PRAGMA: Final = "PRAGMA wal_autocheckpoint=0"
"""For the writer's connection when a `WalCheckpointer` checkpoints its file."""

WRITER_CACHE_PRAGMA: Final = "PRAGMA cache_size=-65536"
"""The writer's page cache, 64 MiB at most (SQLite's default is 2 MiB): every order, fill
and signal lands at a random place in its table's key index, and once those pages outgrow
the cache each write reads them back from the file: with 60,000 orders in the table an
order's insert and updates took a sixth less time with it."""
