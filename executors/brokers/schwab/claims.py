"""The adapter's own write-ahead: which Schwab order each client order id is.

Schwab orders carry no client order id, so before every POST the adapter records the order's
fingerprint and when it was sent (`begin`), and after the answer the venue order id it got
(`claim`). A lost answer is resolved by searching the account's orders for the fingerprint
and claiming an unclaimed match (`client.py`). A small SQLite file in the data dir, each
write committed (synchronous FULL) before the request it describes goes out.
"""

import sqlite3
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

from executors.brokers.schwab.orders import Fingerprint

FILE_NAME: Final = "schwab-claims.sqlite"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS claims (
    client_order_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    fingerprint BLOB NOT NULL,
    entered_ns INTEGER NOT NULL,
    venue_order_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS claims_venue ON claims (venue_order_id)
    WHERE venue_order_id IS NOT NULL;
"""


class Claim(NamedTuple):
    """One client order id's send: its fingerprint, when, and its venue order id if known."""

    client_order_id: str
    seq: int
    fingerprint: Fingerprint
    entered_ns: int
    venue_order_id: str | None


class Claims:
    """Client order id <-> Schwab order id, durable across restarts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def begin(self, client_order_id: str, fingerprint: Fingerprint, entered_ns: int) -> None:
        """Record a send about to happen (a resend moves it to the end of the sequence)."""
        (seq,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM claims").fetchone()
        self._db.execute(
            "INSERT INTO claims VALUES (?, ?, ?, ?, NULL) ON CONFLICT (client_order_id) DO "
            "UPDATE SET seq = excluded.seq, fingerprint = excluded.fingerprint, "
            "entered_ns = excluded.entered_ns WHERE venue_order_id IS NULL",
            (client_order_id, seq, msgspec.json.encode(fingerprint), entered_ns),
        )

    def drop(self, client_order_id: str) -> None:
        """Forget a send that certainly did not happen (a definite refusal)."""
        self._db.execute(
            "DELETE FROM claims WHERE client_order_id = ? AND venue_order_id IS NULL",
            (client_order_id,),
        )

    def claim(self, client_order_id: str, venue_order_id: str) -> None:
        """Record the venue order id a client order id turned out to be."""
        self._db.execute(
            "UPDATE claims SET venue_order_id = ? WHERE client_order_id = ?",
            (venue_order_id, client_order_id),
        )

    def get(self, client_order_id: str) -> Claim | None:
        """A client order id's claim."""
        row = self._db.execute(
            "SELECT * FROM claims WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
        return None if row is None else _claim(row)

    def owner(self, venue_order_id: str) -> str | None:
        """The client order id that claimed a venue order, if any."""
        row = self._db.execute(
            "SELECT client_order_id FROM claims WHERE venue_order_id = ?", (venue_order_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def unresolved_like(self, fingerprint: Fingerprint, since_ns: int) -> list[Claim]:
        """Unclaimed sends of the same fingerprint since `since_ns`, in send order."""
        rows = self._db.execute(
            "SELECT * FROM claims WHERE venue_order_id IS NULL AND fingerprint = ? "
            "AND entered_ns >= ? ORDER BY seq",
            (msgspec.json.encode(fingerprint), since_ns),
        ).fetchall()
        return [_claim(row) for row in rows]


def _claim(row: tuple[object, ...]) -> Claim:
    cid, seq, fp, entered, venue = row
    return Claim(
        str(cid),
        int(str(seq)),
        msgspec.json.decode(
            bytes(fp) if isinstance(fp, (bytes, bytearray)) else str(fp), type=Fingerprint
        ),
        int(str(entered)),
        None if venue is None else str(venue),
    )
