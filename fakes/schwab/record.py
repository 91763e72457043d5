"""The fake's own durable record: every order it received, every change to it, every fill.

A SQLite file (WAL, so `ticklane fake schwab orders|fills` and tests read it from other
processes while the server writes) apart from anything a client keeps. Each order is written
before the client hears of it, under a new order id: two identical orders are two rows, as
at Schwab, which has no client order id to dedupe on. Saving an order writes its whole row
again, and a fill whose id is known is not written twice.
"""

import sqlite3
from pathlib import Path
from typing import Any, Final

import msgspec

from fakes.schwab.orders import FakeFill, FakeOrder, OrderLeg
from fakes.schwab.vocab import TERMINAL

RECORD_FILE: Final = "schwab.sqlite"
FIRST_ORDER_ID: Final = 1_000_000_001
"""Schwab order ids are large integers; the first the fake gives."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    order_type TEXT NOT NULL,
    session TEXT NOT NULL,
    duration TEXT NOT NULL,
    strategy TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    legs TEXT NOT NULL,
    status TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    market_ts INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    price INTEGER,
    stop_price INTEGER,
    close_at INTEGER,
    status_description TEXT,
    replaces_order_id INTEGER,
    replaced_by_order_id INTEGER
);
CREATE INDEX IF NOT EXISTS orders_entered ON orders (account, entered_at);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    fill_id TEXT NOT NULL UNIQUE,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    account TEXT NOT NULL,
    leg INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    asset_type TEXT NOT NULL,
    instruction TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price INTEGER NOT NULL,
    filled_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    activity INTEGER NOT NULL
);
"""

_ORDER_FIELDS: Final = FakeOrder.__struct_fields__
_FILL_FIELDS: Final = tuple(f for f in FakeFill.__struct_fields__ if f != "seq")
_LEGS: Final = msgspec.json.Encoder()
_LEGS_DECODER: Final = msgspec.json.Decoder(tuple[OrderLeg, ...])


class RecordError(RuntimeError):
    """The record cannot be opened or read."""


def _order_row(order: FakeOrder) -> tuple[Any, ...]:
    values = msgspec.to_builtins(order)
    values["legs"] = _LEGS.encode(order.legs).decode()
    return tuple(values.get(f) for f in _ORDER_FIELDS)


def _order_from(row: sqlite3.Row) -> FakeOrder:
    values = dict(row)
    values["legs"] = _LEGS_DECODER.decode(values["legs"])
    return msgspec.convert(values, FakeOrder, strict=False)


def _fill_from(row: sqlite3.Row) -> FakeFill:
    return msgspec.convert(dict(row), FakeFill, strict=False)


class Record:
    """The record's SQLite file; every method is one transaction."""

    def __init__(self, directory: Path, *, read_only: bool = False) -> None:
        self.path = directory / RECORD_FILE
        if read_only:
            if not self.path.exists():
                raise RecordError(f"no fake Schwab record at {self.path}")
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def insert_order(self, order: FakeOrder) -> FakeOrder:
        """Write a new order under the next order id (its `id` is ignored); the written order."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (last,) = self._db.execute("SELECT MAX(id) FROM orders").fetchone()
            placed = msgspec.structs.replace(order, id=(last or FIRST_ORDER_ID - 1) + 1)
            self._write(placed)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return placed

    def save(self, *orders: FakeOrder) -> None:
        """Write orders' current state (whole rows, so writing one twice changes nothing)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for order in orders:
                self._write(order)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, order: FakeOrder) -> None:
        columns = ", ".join(_ORDER_FIELDS)
        marks = ", ".join("?" * len(_ORDER_FIELDS))
        self._db.execute(
            f"INSERT OR REPLACE INTO orders ({columns}) VALUES ({marks})",  # noqa: S608 - constant columns
            _order_row(order),
        )

    def add_fills(self, fills: list[FakeFill], order: FakeOrder) -> list[FakeFill]:
        """Write fills and their order's new state together; the fills written (new ids only)."""
        written: list[FakeFill] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for fill in fills:
                values = msgspec.to_builtins(fill)
                cursor = self._db.execute(
                    f"INSERT INTO fills ({', '.join(_FILL_FIELDS)}) "  # noqa: S608 - constant columns
                    f"VALUES ({', '.join('?' * len(_FILL_FIELDS))}) "
                    "ON CONFLICT (fill_id) DO NOTHING",
                    tuple(values[f] for f in _FILL_FIELDS),
                )
                if cursor.rowcount:
                    written.append(msgspec.structs.replace(fill, seq=int(cursor.lastrowid or 0)))
            if written:
                self._write(order)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return written

    def order(self, order_id: int) -> FakeOrder | None:
        """One order by id."""
        row = self._db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return None if row is None else _order_from(row)

    def orders(self, account: str | None = None) -> list[FakeOrder]:
        """Orders in the order received, of one account or all."""
        if account is None:
            rows = self._db.execute("SELECT * FROM orders ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM orders WHERE account = ? ORDER BY id", (account,)
            ).fetchall()
        return [_order_from(r) for r in rows]

    def working(self) -> list[FakeOrder]:
        """Orders not yet in a terminal status."""
        return [o for o in self.orders() if o.status not in TERMINAL]

    def fills(self, account: str | None = None, order_id: int | None = None) -> list[FakeFill]:
        """Fills in the order made, of one account, one order, or all."""
        query = "SELECT * FROM fills"
        args: tuple[object, ...] = ()
        if order_id is not None:
            query, args = query + " WHERE order_id = ?", (order_id,)
        elif account is not None:
            query, args = query + " WHERE account = ?", (account,)
        return [_fill_from(r) for r in self._db.execute(query + " ORDER BY seq", args).fetchall()]
