"""The paper venue's own durable record: every order it received, every fill it made.

A SQLite file (WAL) of its own, apart from the executor's ledger, written before the venue
answers. Like a real venue it is idempotent on client order id: a second submit with a known id
creates nothing, is counted in `duplicate_submits` (an audit of resends) and gets the existing
order back. `ticklane paper orders|fills` print these tables.
"""

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

from executors.brokers.base import VenueOrder, VenueStatus
from executors.wal import WRITER_CACHE_PRAGMA, WRITER_PRAGMA, WalCheckpointer
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Side, TimeInForce

STORE_FILE: Final = "venue.sqlite"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE,
    -- Derived from the client order id, so unique with it; nothing is looked up by it, and an
    -- index of its own cost every order a random page (a record made before keeps its own).
    venue_order_id TEXT NOT NULL,
    strategy TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    order_type TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    limit_price INTEGER,
    stop_price INTEGER,
    ts_event INTEGER NOT NULL,
    ts_received INTEGER NOT NULL,
    status TEXT NOT NULL,
    filled_quantity INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS orders_working ON orders (status);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    fill_id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL,
    venue_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price INTEGER NOT NULL,
    fee INTEGER NOT NULL,
    ts_event INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicate_submits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL,
    ts_received INTEGER NOT NULL
);
"""

_WORKING: Final = (VenueStatus.ACCEPTED.value, VenueStatus.PARTIALLY_FILLED.value)
_SIDES: Final = {s.value: s for s in Side}
_TYPES: Final = {t.value: t for t in OrderType}
_TIFS: Final = {t.value: t for t in TimeInForce}
_STATUSES: Final = {s.value: s for s in VenueStatus}


class VenueRecord(msgspec.Struct, frozen=True, rename={"order_type": "type", "ts_event": "ts"}):
    """One order as the venue recorded it (a line of `ticklane paper orders --json`).

    `ts` is the order's time (the signal time it answers), `ts_received` the wall clock when
    the venue recorded it; prices are integers in 1e-9 units.
    """

    client_order_id: str
    venue_order_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price: int | None
    stop_price: int | None
    ts_event: int
    ts_received: int
    status: VenueStatus
    filled_quantity: int
    reason: str

    def as_venue_order(self) -> VenueOrder:
        """The venue's answer about this order."""
        return VenueOrder(
            self.client_order_id,
            self.venue_order_id,
            self.status,
            self.filled_quantity,
            self.reason,
        )

    def as_order(self) -> Order:
        """The order as the venue matches it (its time is the signal time it answers)."""
        return Order(
            client_order_id=self.client_order_id,
            signal_id="",
            strategy=self.strategy,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=self.order_type,
            status=OrderStatus.ACCEPTED,
            ts_event=self.ts_event,
            time_in_force=self.time_in_force,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            venue_order_id=self.venue_order_id,
            filled_quantity=self.filled_quantity,
        )


class VenueFillRecord(msgspec.Struct, frozen=True, rename={"ts_event": "ts"}):
    """One fill as the venue recorded it (a line of `ticklane paper fills --json`)."""

    seq: int
    fill_id: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    quantity: int
    price: int
    fee: int
    ts_event: int

    def as_fill(self) -> Fill:
        """The fill as the venue reports it to the executor (strategy unknown to the venue)."""
        return Fill(
            fill_id=self.fill_id,
            client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id,
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            price=self.price,
            ts_event=self.ts_event,
            fee=self.fee,
        )


_ORDER_COLUMNS: Final = (
    "client_order_id, venue_order_id, strategy, symbol, side, quantity, order_type, "
    "time_in_force, limit_price, stop_price, ts_event, ts_received, status, filled_quantity, "
    "reason"
)
_FILL_COLUMNS: Final = (
    "seq, fill_id, client_order_id, venue_order_id, symbol, side, quantity, price, fee, ts_event"
)


def _order_record(row: tuple[Any, ...]) -> VenueRecord:
    return VenueRecord(
        client_order_id=row[0],
        venue_order_id=row[1],
        strategy=row[2],
        symbol=row[3],
        side=_SIDES[row[4]],
        quantity=row[5],
        order_type=_TYPES[row[6]],
        time_in_force=_TIFS[row[7]],
        limit_price=row[8],
        stop_price=row[9],
        ts_event=row[10],
        ts_received=row[11],
        status=_STATUSES[row[12]],
        filled_quantity=row[13],
        reason=row[14],
    )


def received(order: Order, venue_order_id: str, now: int) -> VenueRecord:
    """A new order's record, as the venue writes it on receipt."""
    return VenueRecord(
        client_order_id=order.client_order_id,
        venue_order_id=venue_order_id,
        strategy=order.strategy,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        time_in_force=order.time_in_force,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        ts_event=order.ts_event,
        ts_received=now,
        status=VenueStatus.ACCEPTED,
        filled_quantity=0,
        reason="",
    )


def filled(record: VenueRecord) -> VenueRecord:
    """A record after the fill of all it had left (the paper venue fills an order whole)."""
    return msgspec.structs.replace(
        record, status=VenueStatus.FILLED, filled_quantity=record.quantity
    )


def _fill_record(row: tuple[Any, ...]) -> VenueFillRecord:
    return VenueFillRecord(
        seq=row[0],
        fill_id=row[1],
        client_order_id=row[2],
        venue_order_id=row[3],
        symbol=row[4],
        side=_SIDES[row[5]],
        quantity=row[6],
        price=row[7],
        fee=row[8],
        ts_event=row[9],
    )


class VenueStore:
    """The venue's SQLite file; every method is one transaction."""

    def __init__(self, directory: Path, *, synchronous: str = "NORMAL") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / STORE_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(WRITER_PRAGMA)
        self._db.execute(WRITER_CACHE_PRAGMA)
        self._db.executescript(_SCHEMA)
        self._in_batch = False
        self._checkpointer = WalCheckpointer(self.path)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Every write until it closes in one transaction (a batch of orders received at
        once: one commit for all); a batch inside another joins it."""
        if self._in_batch:
            yield
            return
        with self._transaction():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._in_batch:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the file."""
        self._db.close()
        self._checkpointer.close()

    def receive(self, record: VenueRecord, fill: Fill | None = None) -> tuple[VenueRecord, bool]:
        """Record a submitted order (`received`, or `filled` with the `fill` that filled it on
        arrival: the order written once, with its fill); `(existing, True)` if its client
        order id is known, and then the fill is not written."""
        with self._transaction():
            if self._insert(record):
                if fill is not None:
                    self._insert_fill(fill)
                return record, False
            existing = self.get(record.client_order_id)
        if existing is None:  # pragma: no cover - the row was already there
            raise RuntimeError(f"venue lost order {record.client_order_id}")
        return existing, True

    def _insert(self, record: VenueRecord) -> bool:
        """Write a new order's record; False (and the resend counted) if its id is known."""
        cursor = self._db.execute(
            f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608 - constant column list
            "ON CONFLICT (client_order_id) DO NOTHING",
            (
                record.client_order_id,
                record.venue_order_id,
                record.strategy,
                record.symbol,
                record.side.value,
                record.quantity,
                record.order_type.value,
                record.time_in_force.value,
                record.limit_price,
                record.stop_price,
                record.ts_event,
                record.ts_received,
                record.status.value,
                record.filled_quantity,
                record.reason,
            ),
        )
        if cursor.rowcount == 0:
            self._db.execute(
                "INSERT INTO duplicate_submits (client_order_id, ts_received) VALUES (?, ?)",
                (record.client_order_id, record.ts_received),
            )
        return cursor.rowcount == 1

    def get(self, client_order_id: str) -> VenueRecord | None:
        """One order by client order id."""
        row = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?",  # noqa: S608
            (client_order_id,),
        ).fetchone()
        return None if row is None else _order_record(row)

    def orders(self, *, working_only: bool = False) -> list[VenueRecord]:
        """Orders in the order received."""
        where = "WHERE status IN (?, ?)" if working_only else ""
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders {where} ORDER BY seq",  # noqa: S608
            _WORKING if working_only else (),
        ).fetchall()
        return [_order_record(row) for row in rows]

    def set_status(self, client_order_id: str, status: VenueStatus, reason: str = "") -> None:
        """Change an order's status (cancel, reject, expire)."""
        self._db.execute(
            "UPDATE orders SET status = ?, reason = ? WHERE client_order_id = ?",
            (status.value, reason, client_order_id),
        )

    def record_fill(self, fill: Fill, status: VenueStatus) -> None:
        """A fill and the order's new status and filled quantity, in one transaction."""
        with self._transaction():
            self._insert_fill(fill)
            self._db.execute(
                "UPDATE orders SET status = ?, filled_quantity = filled_quantity + ? "
                "WHERE client_order_id = ?",
                (status.value, fill.quantity, fill.client_order_id),
            )

    def _insert_fill(self, fill: Fill) -> None:
        self._db.execute(
            f"INSERT INTO fills ({_FILL_COLUMNS.removeprefix('seq, ')}) "  # noqa: S608
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (
                fill.fill_id,
                fill.client_order_id,
                fill.venue_order_id,
                fill.symbol,
                fill.side.value,
                fill.quantity,
                fill.price,
                fill.fee,
                fill.ts_event,
            ),
        )

    def fills(self, since: int = 0) -> list[VenueFillRecord]:
        """Fills after sequence number `since`, in the order made."""
        rows = self._db.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills WHERE seq > ? ORDER BY seq",  # noqa: S608
            (since,),
        ).fetchall()
        return [_fill_record(row) for row in rows]

    def positions(self) -> dict[str, int]:
        """Net signed position per symbol from the fills."""
        rows = self._db.execute(
            "SELECT symbol, SUM(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) "
            "FROM fills GROUP BY symbol"
        ).fetchall()
        return {symbol: int(qty) for symbol, qty in rows}

    def duplicate_submits(self) -> list[tuple[str, int]]:
        """Every submit that repeated a known client order id: (client order id, ts received)."""
        rows = self._db.execute(
            "SELECT client_order_id, ts_received FROM duplicate_submits ORDER BY seq"
        ).fetchall()
        return [(str(cid), int(ts)) for cid, ts in rows]
