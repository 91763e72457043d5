"""The order ledger: one interface, one SQL implementation, two stores (`stores.py`).

Write-ahead: an order is written before the broker is called and its answer after; a signal,
its orders and their events are one transaction; a fill, its order's new state, the holding it
changes and the venue cursor that delivered it are one transaction, and fill_id is unique, so
a fill is counted once whatever is replayed. A second order with a known client order id is
refused (`DuplicateOrderError`).

Events for the `orders`, `fills` and `positions` topics are written in the same transactions
into an outbox, which the service publishes and then deletes: a crash between a ledger write
and its publication resends the event (consumers are idempotent on its ids), never loses it.
A transaction's events are one outbox entry (one row): a batch of signals writes hundreds of
events, and a row each was a fifth of the executor's time.
"""

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from executors.order_state import TERMINAL
from executors.positions import Holding
from ticklane import ids, wire
from ticklane.trading import Fill, Order, OrderStatus, Signal


class LedgerError(RuntimeError):
    """The ledger cannot be opened or used."""


class DuplicateOrderError(LedgerError):
    """An order whose client order id the ledger already holds."""


class OutboxEvent(msgspec.Struct, frozen=True, array_like=True):
    """An event waiting to be published: base topic name, key and wire-encoded value."""

    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """The events one transaction wrote, in order, under the entry's sequence number."""

    seq: int
    events: tuple[OutboxEvent, ...]


class Ledger(Protocol):
    """What the executor needs from durable storage (module docstring)."""

    def record_signal(self, signal: Signal, orders: Sequence[Order], now: int) -> bool:
        """Write a signal and the orders answering it; False if the signal was recorded before."""
        ...

    def save_order(self, order: Order, *, submitted_at: int | None = None) -> None:
        """Write an order's new state (and its event); `submitted_at` stamps a send, wall ns."""
        ...

    def save_fill(
        self, fill: Fill, order: Order | None, holding: Holding | None, cursor: int | None
    ) -> bool:
        """Write a fill, its order and holding, and the venue cursor (None: a pushed fill, the
        cursor stays); False if already counted."""
        ...

    def has_fill(self, fill_id: str) -> bool:
        """Whether a fill is counted already."""
        ...

    def set_cursor(self, cursor: int) -> None:
        """Advance the venue fill cursor alone (a fill the ledger cannot account)."""
        ...

    def cursor(self) -> int:
        """The venue fill cursor: fills up to it are in the ledger."""
        ...

    def order(self, client_order_id: str) -> Order | None:
        """One order by client order id."""
        ...

    def order_by_venue_id(self, venue_order_id: str) -> Order | None:
        """One order by the id the venue gave it (what a pushed update or fill names)."""
        ...

    def send_state(self, client_order_id: str) -> "SendState | None":
        """When an order was last sent and how many times; None when the ledger lacks it."""
        ...

    def unfinished_orders(self) -> list[Order]:
        """Orders not yet filled, cancelled, expired or rejected."""
        ...

    def orders_of_signal(self, signal_id: str) -> list[Order]:
        """Every order (leg) answering a signal."""
        ...

    def all_orders(self) -> list[Order]:
        """Every order, in the order written."""
        ...

    def has_signal(self, signal_id: str) -> bool:
        """Whether the signal was recorded."""
        ...

    def defer_signal(self, signal: Signal, now: int) -> str:
        """Keep a signal to answer once its symbol's resting orders are done, in place of the
        one kept before for the same strategy and symbol, which is recorded as answered with
        no order (superseded); that one's id, or ""."""
        ...

    def deferred_signals(self) -> list[Signal]:
        """The signals kept by `defer_signal` and not yet recorded."""
        ...

    def holdings(self) -> list[Holding]:
        """Every strategy/symbol holding."""
        ...

    def fills(self) -> list[Fill]:
        """Every fill, in time order."""
        ...

    def fills_of_order(self, client_order_id: str) -> list[Fill]:
        """One order's fills, in time order (a multi-leg order's, leg by leg)."""
        ...

    def recent_submits(self, since: int) -> list[int]:
        """Wall-clock ns of sends at or after `since` (the order-rate window)."""
        ...

    def last_prices(self) -> dict[str, int]:
        """Each symbol's latest fill price (the marks a restart starts from)."""
        ...

    def outbox(self, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        """The oldest unpublished entries (up to `limit`) with a sequence number above `after`."""
        ...

    def outbox_done(self, up_to: int) -> None:
        """Forget the entries published, up to and including sequence `up_to`."""
        ...

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """While open, every write joins one transaction, committed when it closes (none of
        them if it raises). The executor writes a whole batch of signals' orders this way
        before it sends any of them: one commit for many, still written ahead."""
        ...

    def close(self) -> None:
        """Release the connection and the single-writer lock."""
        ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL stores."""

    name: str
    placeholder: str
    blob: str
    serial: str
    begin: str | None
    """Statement that opens a write transaction, None where the driver opens one itself."""


def _outbox_table(dialect: Dialect) -> str:
    """The outbox: an entry (a transaction's events, msgpack) per row."""
    serial, blob = dialect.serial, dialect.blob
    return f"CREATE TABLE IF NOT EXISTS outbox (seq {serial}, events {blob} NOT NULL)"


def schema(dialect: Dialect) -> list[str]:
    """DDL of the ledger's tables."""
    b = dialect.blob
    return [
        "CREATE TABLE IF NOT EXISTS signals (signal_id TEXT PRIMARY KEY, strategy TEXT NOT NULL,"
        " symbol TEXT NOT NULL, ts_event BIGINT NOT NULL, target BIGINT NOT NULL,"
        " received_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS orders (client_order_id TEXT PRIMARY KEY,"
        " signal_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,"
        " leg INTEGER NOT NULL, status TEXT NOT NULL, finished INTEGER NOT NULL,"
        f" submitted_at BIGINT, created_at BIGINT NOT NULL, body {b} NOT NULL,"
        f" {_VENUE_ID_COLUMN}, {_SENDS_COLUMN})",
        "CREATE INDEX IF NOT EXISTS orders_unfinished ON orders (finished)",
        "CREATE INDEX IF NOT EXISTS orders_submitted ON orders (submitted_at)",
        "CREATE TABLE IF NOT EXISTS fills (fill_id TEXT PRIMARY KEY,"
        " client_order_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,"
        f" ts_event BIGINT NOT NULL, body {b} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS fills_order ON fills (client_order_id)",
        "CREATE TABLE IF NOT EXISTS holdings (strategy TEXT NOT NULL, symbol TEXT NOT NULL,"
        f" body {b} NOT NULL, PRIMARY KEY (strategy, symbol))",
        "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS deferred (strategy TEXT NOT NULL, symbol TEXT NOT NULL,"
        f" signal_id TEXT NOT NULL, body {b} NOT NULL, PRIMARY KEY (strategy, symbol))",
        _outbox_table(dialect),
    ]


# Columns added after the first ledgers were written; `_migrate` adds them to those.
_VENUE_ID_COLUMN: Final = "venue_order_id TEXT NOT NULL DEFAULT ''"
_SENDS_COLUMN: Final = "sends INTEGER NOT NULL DEFAULT 0"
_VENUE_ID_INDEX: Final = "CREATE INDEX IF NOT EXISTS orders_venue ON orders (venue_order_id)"


class SendState(msgspec.Struct, frozen=True):
    """When an order was last sent (wall ns; None: never) and how many times it was sent."""

    submitted_at: int | None
    sends: int


_ORDER: Final = msgspec.msgpack.Decoder(Order)
_FILL: Final = msgspec.msgpack.Decoder(Fill)
_HOLDING: Final = msgspec.msgpack.Decoder(Holding)
_SIGNAL: Final = msgspec.msgpack.Decoder(Signal)
_EVENTS: Final = msgspec.msgpack.Decoder(tuple[OutboxEvent, ...])
_ENCODE: Final = msgspec.msgpack.Encoder().encode
_CURSOR_KEY: Final = "venue_fill_cursor"


def latest_positions(events: list[OutboxEvent]) -> list[OutboxEvent]:
    """A transaction's events with only the last of each position: `positions` is compacted
    state, latest per strategy/symbol, so an earlier one in the same commit says nothing a
    reader keeps, and a batch filling one symbol many times would publish it as many times.
    Orders and fills are events, every one kept, in order."""
    last = {e.key: n for n, e in enumerate(events) if e.topic == "positions"}
    if len(last) == sum(e.topic == "positions" for e in events):
        return events
    return [e for n, e in enumerate(events) if e.topic != "positions" or last[e.key] == n]


def _order_event(order: Order) -> OutboxEvent:
    return OutboxEvent("orders", order.symbol.encode(), wire.encode(order))


class SqlLedger:
    """The ledger over a DB-API connection (sqlite3 or psycopg); one writer, this process."""

    def __init__(self, connection: Any, dialect: Dialect, release: Any = None) -> None:
        self._db = connection
        self._dialect = dialect
        self._release = release
        self._cursor: Any = None
        """The open batch's cursor (`batch`), which every write joins; None outside one."""
        self._events: list[OutboxEvent] = []
        """The open transaction's events: its outbox entry, written just before it commits."""
        self._maybe_deferred: set[str] | None = None
        """Ids of the signals `deferred` may hold (None: to be read): a signal recorded is
        taken out of it only if it is there, so the common one costs no statement."""
        with self._transaction() as cur:
            for statement in schema(dialect):
                cur.execute(statement)
            self._migrate(cur)
            cur.execute(_VENUE_ID_INDEX)

    def _columns(self, cur: Any, table: str) -> set[str]:
        if self._dialect.placeholder == "?":
            cur.execute(f"PRAGMA table_info({table})")
            return {str(row[1]) for row in cur.fetchall()}
        cur.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return {str(row[0]) for row in cur.fetchall()}

    def _migrate(self, cur: Any) -> None:
        """Bring a ledger written by an older version to this one's tables: the columns it
        lacks, filled from the bodies; its outbox's events (a row each) as entries of one."""
        if "topic" in self._columns(cur, "outbox"):
            cur.execute("SELECT topic, key, value FROM outbox ORDER BY seq")
            waiting = [OutboxEvent(str(t), bytes(k), bytes(v)) for t, k, v in cur.fetchall()]
            cur.execute("DROP TABLE outbox")
            cur.execute(_outbox_table(self._dialect))
            for event in waiting:
                cur.execute(
                    self._sql("INSERT INTO outbox (events) VALUES (?)"), (_ENCODE((event,)),)
                )
        # Legs are found by their ids (`orders_of_signal`); the index cost every write.
        cur.execute("DROP INDEX IF EXISTS orders_signal")
        columns = self._columns(cur, "orders")
        if "sends" not in columns:
            cur.execute(f"ALTER TABLE orders ADD COLUMN {_SENDS_COLUMN}")
            cur.execute("UPDATE orders SET sends = 1 WHERE submitted_at IS NOT NULL")
        if "venue_order_id" not in columns:
            cur.execute(f"ALTER TABLE orders ADD COLUMN {_VENUE_ID_COLUMN}")
            cur.execute("SELECT body FROM orders")
            for order in (_ORDER.decode(row[0]) for row in cur.fetchall()):
                if order.venue_order_id:
                    cur.execute(
                        self._sql("UPDATE orders SET venue_order_id = ? WHERE client_order_id = ?"),
                        (order.venue_order_id, order.client_order_id),
                    )

    # --- plumbing

    def _sql(self, text: str) -> str:
        return text if self._dialect.placeholder == "?" else text.replace("?", "%s")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write until it closes (see the Ledger protocol); a
        batch opened inside another joins it."""
        if self._cursor is not None:
            yield
            return
        with self._transaction() as cur:
            self._cursor = cur
            try:
                yield
            finally:
                self._cursor = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        if self._cursor is not None:
            yield self._cursor  # inside a batch: its commit is the batch's
            return
        cur = self._db.cursor()
        try:
            if self._dialect.begin:
                cur.execute(self._dialect.begin)
            yield cur
            if self._events:
                entry = _ENCODE(latest_positions(self._events))
                cur.execute(self._sql("INSERT INTO outbox (events) VALUES (?)"), (entry,))
        except BaseException:
            self._db.rollback()
            self._maybe_deferred = None  # it may have changed with what was rolled back
            raise
        else:
            self._db.commit()
        finally:
            self._events = []
            cur.close()

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._db.cursor()
        try:
            cur.execute(self._sql(text), tuple(params))
            rows: list[tuple[Any, ...]] = cur.fetchall()
        finally:
            cur.close()
        if self._dialect.begin is None and self._cursor is None:
            self._db.commit()  # psycopg opened a transaction for the read; end it
        return rows

    def _emit(self, events: Sequence[OutboxEvent]) -> None:
        """Events of the open transaction (`_transaction` writes them as its entry)."""
        self._events.extend(events)

    def _upsert_order(self, cur: Any, order: Order, submitted_at: int | None) -> None:
        cur.execute(
            self._sql(
                "UPDATE orders SET status = ?, finished = ?, body = ?, venue_order_id = ?,"
                " submitted_at = COALESCE(?, submitted_at), sends = sends + ?"
                " WHERE client_order_id = ?"
            ),
            (
                order.status.value,
                int(order.status in TERMINAL),
                _ENCODE(order),
                order.venue_order_id,
                submitted_at,
                int(submitted_at is not None),
                order.client_order_id,
            ),
        )
        self._check_updated(cur, order)

    def _update_filled(self, cur: Any, order: Order) -> None:
        """An order after a fill. A fill never names the venue's order id to an order (an
        answer or a status does, written by `save_order`), so the column and its index are
        left alone: writing an index entry back unchanged still costs a page."""
        cur.execute(
            self._sql(
                "UPDATE orders SET status = ?, finished = ?, body = ? WHERE client_order_id = ?"
            ),
            (
                order.status.value,
                int(order.status in TERMINAL),
                _ENCODE(order),
                order.client_order_id,
            ),
        )
        self._check_updated(cur, order)

    def _check_updated(self, cur: Any, order: Order) -> None:
        if cur.rowcount != 1:
            raise LedgerError(f"order {order.client_order_id} is not in the ledger")

    # --- writes

    def record_signal(self, signal: Signal, orders: Sequence[Order], now: int) -> bool:
        """Write a signal and its orders (module docstring); False if seen before."""
        with self._transaction() as cur:
            deferred = self._deferred_ids(cur)
            if signal.signal_id in deferred:
                cur.execute(
                    self._sql("DELETE FROM deferred WHERE signal_id = ?"), (signal.signal_id,)
                )
                deferred.discard(signal.signal_id)
            cur.execute(
                self._sql(
                    "INSERT INTO signals (signal_id, strategy, symbol, ts_event, target,"
                    " received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (signal_id) DO NOTHING"
                ),
                (
                    signal.signal_id,
                    signal.strategy,
                    signal.symbol,
                    signal.ts_event,
                    signal.target_position,
                    now,
                ),
            )
            if cur.rowcount == 0:
                return False
            for order in orders:
                self._insert_order(cur, order, now)
            self._emit([_order_event(o) for o in orders])
        return True

    def _deferred_ids(self, cur: Any) -> set[str]:
        if self._maybe_deferred is None:
            cur.execute("SELECT signal_id FROM deferred")
            self._maybe_deferred = {str(row[0]) for row in cur.fetchall()}
        return self._maybe_deferred

    def _insert_order(self, cur: Any, order: Order, now: int) -> None:
        sent = now if order.status not in _NOT_SENT else None
        cur.execute(
            self._sql(
                "INSERT INTO orders (client_order_id, signal_id, strategy, symbol, leg, status,"
                " finished, submitted_at, created_at, body, venue_order_id, sends)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (client_order_id) DO NOTHING"
            ),
            (
                order.client_order_id,
                order.signal_id,
                order.strategy,
                order.symbol,
                order.leg,
                order.status.value,
                int(order.status in TERMINAL),
                sent,
                now,
                _ENCODE(order),
                order.venue_order_id,
                int(sent is not None),
            ),
        )
        if cur.rowcount == 0:
            raise DuplicateOrderError(f"the ledger already holds order {order.client_order_id}")

    def save_order(self, order: Order, *, submitted_at: int | None = None) -> None:
        """Write an order's new state and its event."""
        with self._transaction() as cur:
            self._upsert_order(cur, order, submitted_at)
            self._emit([_order_event(order)])

    def save_fill(
        self, fill: Fill, order: Order | None, holding: Holding | None, cursor: int | None
    ) -> bool:
        """Write a fill with its order, holding and cursor; False if its id was counted before."""
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO fills (fill_id, client_order_id, strategy, symbol, ts_event, body)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fill_id) DO NOTHING"
                ),
                (
                    fill.fill_id,
                    fill.client_order_id,
                    fill.strategy,
                    fill.symbol,
                    fill.ts_event,
                    _ENCODE(fill),
                ),
            )
            fresh = bool(cur.rowcount)
            if fresh and order is not None and holding is not None:
                self._update_filled(cur, order)
                position = holding.position
                cur.execute(
                    self._sql(
                        "INSERT INTO holdings (strategy, symbol, body) VALUES (?, ?, ?)"
                        " ON CONFLICT (strategy, symbol) DO UPDATE SET body = excluded.body"
                    ),
                    (position.strategy, position.symbol, _ENCODE(holding)),
                )
                self._emit(
                    [
                        OutboxEvent("fills", fill.symbol.encode(), wire.encode(fill)),
                        _order_event(order),
                        OutboxEvent("positions", position.key.encode(), wire.encode(position)),
                    ]
                )
            if cursor is not None:
                self._write_cursor(cur, cursor)
        return fresh

    def _write_cursor(self, cur: Any, cursor: int) -> None:
        cur.execute(
            self._sql(
                "INSERT INTO state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            (_CURSOR_KEY, str(cursor)),
        )

    def set_cursor(self, cursor: int) -> None:
        """Advance the venue fill cursor alone."""
        with self._transaction() as cur:
            self._write_cursor(cur, cursor)

    def outbox_done(self, up_to: int) -> None:
        """Delete published events."""
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM outbox WHERE seq <= ?"), (up_to,))

    # --- reads

    def cursor(self) -> int:
        """The venue fill cursor."""
        rows = self._query("SELECT value FROM state WHERE key = ?", (_CURSOR_KEY,))
        return int(rows[0][0]) if rows else 0

    def order(self, client_order_id: str) -> Order | None:
        """One order."""
        rows = self._query("SELECT body FROM orders WHERE client_order_id = ?", (client_order_id,))
        return _ORDER.decode(rows[0][0]) if rows else None

    def order_by_venue_id(self, venue_order_id: str) -> Order | None:
        """One order by the id the venue gave it."""
        if not venue_order_id:
            return None
        rows = self._query("SELECT body FROM orders WHERE venue_order_id = ?", (venue_order_id,))
        return _ORDER.decode(rows[0][0]) if rows else None

    def send_state(self, client_order_id: str) -> SendState | None:
        """When an order was last sent and how often; None when the ledger lacks it."""
        rows = self._query(
            "SELECT submitted_at, sends FROM orders WHERE client_order_id = ?", (client_order_id,)
        )
        if not rows:
            return None
        submitted_at, sends = rows[0]
        return SendState(None if submitted_at is None else int(submitted_at), int(sends))

    def unfinished_orders(self) -> list[Order]:
        """Orders still open."""
        rows = self._query("SELECT body FROM orders WHERE finished = 0 ORDER BY created_at, leg")
        return [_ORDER.decode(row[0]) for row in rows]

    def orders_of_signal(self, signal_id: str) -> list[Order]:
        """A signal's legs, found by their ids (`ids.client_order_id(signal_id, leg)`, legs
        numbered from 0): an index on the signal id cost every order written a tenth of a
        signal's time, for a read made only when a two-step reversal's first leg fills."""
        legs: list[Order] = []
        while (leg := self.order(ids.client_order_id(signal_id, len(legs)))) is not None:
            legs.append(leg)
        return legs

    def all_orders(self) -> list[Order]:
        """Every order."""
        rows = self._query("SELECT body FROM orders ORDER BY created_at, leg")
        return [_ORDER.decode(row[0]) for row in rows]

    def has_fill(self, fill_id: str) -> bool:
        """Whether a fill is counted."""
        return bool(self._query("SELECT 1 FROM fills WHERE fill_id = ?", (fill_id,)))

    def has_signal(self, signal_id: str) -> bool:
        """Whether a signal is recorded."""
        return bool(self._query("SELECT 1 FROM signals WHERE signal_id = ?", (signal_id,)))

    def defer_signal(self, signal: Signal, now: int) -> str:
        """Keep a signal until its symbol's resting orders are done (see the Ledger protocol)."""
        with self._transaction() as cur:
            cur.execute(
                self._sql("SELECT body FROM deferred WHERE strategy = ? AND symbol = ?"),
                (signal.strategy, signal.symbol),
            )
            row = cur.fetchone()
            before = _SIGNAL.decode(row[0]) if row else None
            if before is not None and before.signal_id == signal.signal_id:
                return ""
            if before is not None:
                cur.execute(
                    self._sql(
                        "INSERT INTO signals (signal_id, strategy, symbol, ts_event, target,"
                        " received_at) VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (signal_id) DO NOTHING"
                    ),
                    (
                        before.signal_id,
                        before.strategy,
                        before.symbol,
                        before.ts_event,
                        before.target_position,
                        now,
                    ),
                )
                cur.execute(
                    self._sql("DELETE FROM deferred WHERE strategy = ? AND symbol = ?"),
                    (signal.strategy, signal.symbol),
                )
            cur.execute(
                self._sql(
                    "INSERT INTO deferred (strategy, symbol, signal_id, body) VALUES (?, ?, ?, ?)"
                ),
                (signal.strategy, signal.symbol, signal.signal_id, _ENCODE(signal)),
            )
            deferred = self._deferred_ids(cur)
            deferred.add(signal.signal_id)
            if before is not None:
                deferred.discard(before.signal_id)
        return before.signal_id if before is not None else ""

    def deferred_signals(self) -> list[Signal]:
        """The signals kept by `defer_signal` and not yet recorded."""
        rows = self._query("SELECT body FROM deferred ORDER BY strategy, symbol")
        return [_SIGNAL.decode(row[0]) for row in rows]

    def holdings(self) -> list[Holding]:
        """Every holding."""
        return [_HOLDING.decode(row[0]) for row in self._query("SELECT body FROM holdings")]

    def fills(self) -> list[Fill]:
        """Every fill, in time order."""
        rows = self._query("SELECT body FROM fills ORDER BY ts_event, fill_id")
        return [_FILL.decode(row[0]) for row in rows]

    def fills_of_order(self, client_order_id: str) -> list[Fill]:
        """One order's fills, in time order (a multi-leg order's, leg by leg)."""
        rows = self._query(
            "SELECT body FROM fills WHERE client_order_id = ? ORDER BY ts_event, fill_id",
            (client_order_id,),
        )
        return [_FILL.decode(row[0]) for row in rows]

    def recent_submits(self, since: int) -> list[int]:
        """Send times in the window."""
        rows = self._query("SELECT submitted_at FROM orders WHERE submitted_at >= ?", (since,))
        return [int(row[0]) for row in rows]

    def last_prices(self) -> dict[str, int]:
        """The price of each symbol's latest fill."""
        rows = self._query(
            "SELECT f.body FROM fills f JOIN (SELECT symbol, MAX(ts_event) AS ts FROM fills"
            " GROUP BY symbol) latest ON f.symbol = latest.symbol AND f.ts_event = latest.ts"
            " ORDER BY f.fill_id"
        )
        return {fill.symbol: fill.price for fill in (_FILL.decode(row[0]) for row in rows)}

    def outbox(self, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        """Unpublished entries after `after`, oldest first."""
        rows = self._query(
            "SELECT seq, events FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        )
        return [OutboxEntry(int(seq), _EVENTS.decode(events)) for seq, events in rows]

    def close(self) -> None:
        """Close the connection and release the lock."""
        self._db.close()
        if self._release is not None:
            self._release()


_NOT_SENT: Final = frozenset({OrderStatus.NEW, OrderStatus.REJECTED, OrderStatus.CANCELLED})
