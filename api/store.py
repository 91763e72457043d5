"""The API's own store: positions, orders and fills as the topics last said, and the offsets.

Written only by the materializer, from the `positions`, `orders` and `fills` topics, never from
another process's files: a lost store is rebuilt by reading the topics again. Each batch of
messages and the next offset of every partition it read are one transaction, so a restart
resumes exactly where the last commit ended and a message is applied at most once in effect.

Idempotent on the messages' own identity: a fill is kept once by its id; an order or a position
is replaced only by a message later in its partition (an order's events and a position's
updates share one key, so one partition holds each one's history in order), so a replay of
the same messages, or of older ones, changes nothing.

Reads page newest first with an opaque cursor (the last item's time and id), so a page is
stable while new items arrive.

Every change is also appended to `events`, numbered, in the same transaction: the live
stream's source. A message that changes nothing (a replay) appends nothing, so a client that
resumes after its last event number receives each change once.
"""

import base64
import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from ticklane.control import ControlAck, ControlCommand
from ticklane.market import Bar
from ticklane.trading import Fill, Order, Position, Signal


class DeadLetter(msgspec.Struct, frozen=True):
    """A message some process could not use, as `dlq` holds it: why, and where it was read."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: str
    size: int
    """The undecodable value's length in bytes (the bytes stay in `dlq`)."""
    ts_ms: int
    """When it was dead-lettered (the dlq message's timestamp, ms)."""


Stored = Position | Order | Fill | ControlCommand | ControlAck | Bar | Signal | DeadLetter
"""What the store keeps, one table each."""

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS positions (strategy TEXT NOT NULL, symbol TEXT NOT NULL,"
    " part INTEGER NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,"
    " PRIMARY KEY (strategy, symbol))",
    "CREATE TABLE IF NOT EXISTS orders (client_order_id TEXT PRIMARY KEY,"
    " strategy TEXT NOT NULL, symbol TEXT NOT NULL, status TEXT NOT NULL,"
    " ts_event INTEGER NOT NULL, part INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS orders_time ON orders (ts_event, client_order_id)",
    "CREATE TABLE IF NOT EXISTS fills (fill_id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL,"
    " strategy TEXT NOT NULL, symbol TEXT NOT NULL, ts_event INTEGER NOT NULL,"
    " body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fills_time ON fills (ts_event, fill_id)",
    "CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, part INTEGER NOT NULL,"
    " next_offset INTEGER NOT NULL, PRIMARY KEY (topic, part))",
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS commands (command_id TEXT PRIMARY KEY,"
    " ts_event INTEGER NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS commands_time ON commands (ts_event, command_id)",
    "CREATE TABLE IF NOT EXISTS acks (command_id TEXT NOT NULL, by TEXT NOT NULL,"
    " seq INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (command_id, by))",
    "CREATE TABLE IF NOT EXISTS marks (symbol TEXT PRIMARY KEY, bar_end INTEGER NOT NULL,"
    " close INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bars (symbol TEXT NOT NULL, interval_ns INTEGER NOT NULL,"
    " ts_event INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (symbol, interval_ns, ts_event))",
    "CREATE TABLE IF NOT EXISTS signals (signal_id TEXT PRIMARY KEY, strategy TEXT NOT NULL,"
    " symbol TEXT NOT NULL, ts_event INTEGER NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS signals_time ON signals (ts_event, signal_id)",
    "CREATE TABLE IF NOT EXISTS dead_letters (part INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " body BLOB NOT NULL, PRIMARY KEY (part, seq))",
)
_DEAD: Final = msgspec.msgpack.Decoder(DeadLetter)
_BAR: Final = msgspec.msgpack.Decoder(Bar)
_SIGNAL: Final = msgspec.msgpack.Decoder(Signal)
Streamed = Position | Order | Fill | ControlCommand | ControlAck | Signal
"""What the live stream carries (bars only move the marks)."""
KINDS: Final[dict[type[Streamed], str]] = {
    Position: "position",
    Order: "order",
    Fill: "fill",
    ControlCommand: "command",
    ControlAck: "ack",
    Signal: "signal",
}
"""The live stream's event kinds, by what changed."""
_DECODERS: Final[dict[str, msgspec.msgpack.Decoder[Any]]] = {
    kind: msgspec.msgpack.Decoder(typ) for typ, kind in KINDS.items()
}
_ENCODE: Final = msgspec.msgpack.Encoder().encode
_POSITION: Final = msgspec.msgpack.Decoder(Position)
_ORDER: Final = msgspec.msgpack.Decoder(Order)
_FILL: Final = msgspec.msgpack.Decoder(Fill)


class StoreError(RuntimeError):
    """The store cannot be opened or written."""


class CursorError(ValueError):
    """A page cursor this store did not make."""


class Located(msgspec.Struct, frozen=True):
    """A decoded message and where it was read (its partition and offset)."""

    partition: int
    offset: int
    message: Stored
    key: bytes = b""
    """The message's key (a bar names its symbol only there)."""


class Event(msgspec.Struct, frozen=True):
    """One change, numbered in the order the store applied it."""

    seq: int
    kind: str
    """`position`, `order`, `fill`, `command`, `ack` or `signal`."""
    message: Streamed


class CommandState(msgspec.Struct, frozen=True):
    """A command and every process's answer to it so far."""

    command: ControlCommand
    acks: list[ControlAck]


class Window(msgspec.Struct, frozen=True):
    """Which items a list holds: a strategy's, a symbol's (None: any), in [since, until) ns."""

    strategy: str | None = None
    symbol: str | None = None
    since: int | None = None
    until: int | None = None


class Page(msgspec.Struct, frozen=True):
    """One page of a list, newest first, and the cursor of the next ("" at the end)."""

    items: list[Any]
    next_cursor: str


class Store:
    """The SQLite store; one writer (the materializer thread), any number of readers."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the API store at {path}: {exc}") from None
        self.path = path
        self.version = 0
        """Bumped after each applied batch: a cheap "anything new?" for stream clients."""
        self._lock = threading.Lock()
        """One connection, shared by the materializer and request threads, one at a time."""

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
            except BaseException:
                self._db.rollback()
                raise
            else:
                self._db.commit()
            finally:
                cur.close()

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(text, tuple(params)).fetchall()

    # --- writes

    def apply(self, batch: Sequence[Located], offsets: dict[tuple[str, int], int]) -> None:
        """Apply a batch of messages and advance the offsets read, in one transaction."""
        with self._transaction() as cur:
            for located in batch:
                self._apply_one(cur, located)
                if cur.rowcount > 0 and not isinstance(located.message, Bar | DeadLetter):
                    kind = KINDS[type(located.message)]
                    cur.execute(
                        "INSERT INTO events (kind, body) VALUES (?, ?)",
                        (kind, _ENCODE(located.message)),
                    )
            for (topic, partition), next_offset in offsets.items():
                cur.execute(
                    "INSERT INTO offsets (topic, part, next_offset) VALUES (?, ?, ?)"
                    " ON CONFLICT (topic, part) DO UPDATE SET next_offset ="
                    " MAX(next_offset, excluded.next_offset)",
                    (topic, partition, next_offset),
                )
        self.version += 1

    @staticmethod
    def _apply_one(cur: sqlite3.Cursor, located: Located) -> None:
        message, where = located.message, (located.partition, located.offset)
        if isinstance(message, DeadLetter):
            cur.execute(
                "INSERT INTO dead_letters (part, seq, body) VALUES (?, ?, ?)"
                " ON CONFLICT (part, seq) DO NOTHING",
                (*where, _ENCODE(message)),
            )
        elif isinstance(message, Signal):
            cur.execute(
                "INSERT INTO signals (signal_id, strategy, symbol, ts_event, body)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (signal_id) DO NOTHING",
                (
                    message.signal_id,
                    message.strategy,
                    message.symbol,
                    message.ts_event,
                    _ENCODE(message),
                ),
            )
        elif isinstance(message, Bar):
            symbol = located.key.decode(errors="replace")
            # A bar is republished as it grows until it closes: the latest version wins.
            cur.execute(
                "INSERT INTO bars (symbol, interval_ns, ts_event, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (symbol, interval_ns, ts_event) DO UPDATE SET body = excluded.body",
                (symbol, message.interval_ns, message.ts_event, _ENCODE(message)),
            )
            # The latest close per symbol is the mark unrealized P&L is taken at.
            cur.execute(
                "INSERT INTO marks (symbol, bar_end, close) VALUES (?, ?, ?)"
                " ON CONFLICT (symbol) DO UPDATE SET bar_end = excluded.bar_end,"
                " close = excluded.close WHERE excluded.bar_end > marks.bar_end",
                (
                    located.key.decode(errors="replace"),
                    message.ts_event + message.interval_ns,
                    message.close,
                ),
            )
        elif isinstance(message, ControlCommand):
            cur.execute(
                "INSERT INTO commands (command_id, ts_event, body) VALUES (?, ?, ?)"
                " ON CONFLICT (command_id) DO NOTHING",
                (message.command_id, message.ts_event, _ENCODE(message)),
            )
        elif isinstance(message, ControlAck):
            cur.execute(
                "INSERT INTO acks (command_id, by, seq, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (command_id, by) DO UPDATE SET seq = excluded.seq,"
                " body = excluded.body WHERE excluded.seq > acks.seq",
                (message.command_id, message.by, located.offset, _ENCODE(message)),
            )
        elif isinstance(message, Fill):
            cur.execute(
                "INSERT INTO fills (fill_id, client_order_id, strategy, symbol, ts_event, body)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fill_id) DO NOTHING",
                (
                    message.fill_id,
                    message.client_order_id,
                    message.strategy,
                    message.symbol,
                    message.ts_event,
                    _ENCODE(message),
                ),
            )
        elif isinstance(message, Order):
            cur.execute(
                "INSERT INTO orders (client_order_id, strategy, symbol, status, ts_event,"
                " part, seq, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (client_order_id) DO UPDATE SET status = excluded.status,"
                " ts_event = excluded.ts_event, part = excluded.part, seq = excluded.seq,"
                " body = excluded.body"
                " WHERE excluded.part != orders.part OR excluded.seq > orders.seq",
                (
                    message.client_order_id,
                    message.strategy,
                    message.symbol,
                    message.status.value,
                    message.ts_event,
                    *where,
                    _ENCODE(message),
                ),
            )
        else:
            cur.execute(
                "INSERT INTO positions (strategy, symbol, part, seq, body)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (strategy, symbol) DO UPDATE SET"
                " part = excluded.part, seq = excluded.seq, body = excluded.body"
                " WHERE excluded.part != positions.part OR excluded.seq > positions.seq",
                (message.strategy, message.symbol, *where, _ENCODE(message)),
            )

    # --- reads

    def offsets(self) -> dict[tuple[str, int], int]:
        """The next offset to read per topic and partition."""
        rows = self._query("SELECT topic, part, next_offset FROM offsets")
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def writable(self) -> bool:
        """Whether a write can be committed now (for /ready)."""
        try:
            with self._transaction() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
        except sqlite3.Error:
            return False
        return True

    def positions(self, strategy: str | None = None, symbol: str | None = None) -> list[Position]:
        """Every position as last published, by strategy and symbol."""
        where, params = _filters(Window(strategy, symbol), {})
        # Column names are this module's own; every value is a parameter.
        text = f"SELECT body FROM positions{where} ORDER BY strategy, symbol"  # noqa: S608
        rows = self._query(text, params)
        return [_POSITION.decode(row[0]) for row in rows]

    def orders(
        self, *, limit: int, cursor: str = "", window: Window | None = None, status: str = ""
    ) -> Page:
        """Orders in their latest state, newest first (by signal time, then id)."""
        extra = {"status": status} if status else {}
        return self._page(
            "orders", "client_order_id", _ORDER, limit, cursor, window=window, extra=extra
        )

    def fills(self, *, limit: int, cursor: str = "", window: Window | None = None) -> Page:
        """Fills, newest first."""
        return self._page("fills", "fill_id", _FILL, limit, cursor, window=window)

    def events(self, after: int, limit: int) -> list[Event]:
        """The changes numbered after `after`, oldest first, at most `limit`."""
        rows = self._query(
            "SELECT seq, kind, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        )
        return [Event(int(q), str(k), _DECODERS[str(k)].decode(b)) for q, k, b in rows]

    def last_event(self) -> int:
        """The number of the latest change (0: none)."""
        rows = self._query("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(rows[0][0])

    def commands(self, *, limit: int, cursor: str = "") -> Page:
        """Commands newest first, each with its answers (`CommandState` items)."""
        page = self._page("commands", "command_id", _DECODERS["command"], limit, cursor)
        return Page([self._with_acks(c) for c in page.items], page.next_cursor)

    def command(self, command_id: str) -> CommandState | None:
        """One command and its answers."""
        rows = self._query("SELECT body FROM commands WHERE command_id = ?", (command_id,))
        return self._with_acks(_DECODERS["command"].decode(rows[0][0])) if rows else None

    def _with_acks(self, command: ControlCommand) -> CommandState:
        rows = self._query(
            "SELECT body FROM acks WHERE command_id = ? ORDER BY by", (command.command_id,)
        )
        return CommandState(command, [_DECODERS["ack"].decode(row[0]) for row in rows])

    def signals(self, *, limit: int, cursor: str = "", window: Window | None = None) -> Page:
        """Signals, newest first."""
        return self._page("signals", "signal_id", _SIGNAL, limit, cursor, window=window)

    def bars(
        self, symbol: str, interval_ns: int, *, since: int, until: int | None, limit: int
    ) -> list[Bar]:
        """A symbol's bars of one interval opening in [since, until), oldest first."""
        rows = self._query(
            "SELECT body FROM bars WHERE symbol = ? AND interval_ns = ? AND ts_event >= ?"
            " AND ts_event < ? ORDER BY ts_event LIMIT ?",
            (symbol, interval_ns, since, until if until is not None else 2**63 - 1, limit),
        )
        return [_BAR.decode(row[0]) for row in rows]

    def all_commands(self) -> list[ControlCommand]:
        """Every command, in issue order (the order the agents apply them in)."""
        rows = self._query("SELECT body FROM commands ORDER BY ts_event, command_id")
        return [_DECODERS["command"].decode(row[0]) for row in rows]

    def last_signal(self, strategy: str, symbol: str) -> Signal | None:
        """A strategy's latest signal in a symbol."""
        rows = self._query(
            "SELECT body FROM signals WHERE strategy = ? AND symbol = ?"
            " ORDER BY ts_event DESC, signal_id DESC LIMIT 1",
            (strategy, symbol),
        )
        return _SIGNAL.decode(rows[0][0]) if rows else None

    def signalled_symbols(self, strategy: str) -> list[str]:
        """The symbols a strategy has signalled in."""
        rows = self._query(
            "SELECT DISTINCT symbol FROM signals WHERE strategy = ? ORDER BY symbol", (strategy,)
        )
        return [str(row[0]) for row in rows]

    def dead_letters(self, limit: int) -> tuple[int, list[DeadLetter]]:
        """How many dead letters there are, and the latest `limit`, newest first."""
        count = int(self._query("SELECT COUNT(*) FROM dead_letters")[0][0])
        rows = self._query(
            "SELECT body FROM dead_letters ORDER BY seq DESC, part DESC LIMIT ?", (limit,)
        )
        return count, [_DEAD.decode(row[0]) for row in rows]

    def marks(self) -> dict[str, tuple[int, int]]:
        """Per symbol, the latest bar's close and the time it closed (ns)."""
        rows = self._query("SELECT symbol, close, bar_end FROM marks")
        return {str(sym): (int(close), int(end)) for sym, close, end in rows}

    def all_fills(self) -> list[Fill]:
        """Every fill, oldest first (for P&L by day)."""
        rows = self._query("SELECT body FROM fills ORDER BY ts_event, fill_id")
        return [_FILL.decode(row[0]) for row in rows]

    def order(self, client_order_id: str) -> Order | None:
        """One order by client order id."""
        rows = self._query("SELECT body FROM orders WHERE client_order_id = ?", (client_order_id,))
        return _ORDER.decode(rows[0][0]) if rows else None

    def _page(
        self,
        table: str,
        id_column: str,
        decoder: msgspec.msgpack.Decoder[Any],
        limit: int,
        cursor: str,
        *,
        window: Window | None = None,
        extra: dict[str, str] | None = None,
    ) -> Page:
        where, params = _filters(window or Window(), extra or {})
        if cursor:
            ts, last = decode_cursor(cursor)
            where += " AND " if where else " WHERE "
            where += f"(ts_event < ? OR (ts_event = ? AND {id_column} < ?))"
            params += [ts, ts, last]
        # Table and column names are this module's own; every value is a parameter.
        text = (
            f"SELECT body, ts_event, {id_column} FROM {table}{where}"  # noqa: S608
            f" ORDER BY ts_event DESC, {id_column} DESC LIMIT ?"
        )
        rows = self._query(text, [*params, limit + 1])
        items = [decoder.decode(row[0]) for row in rows[:limit]]
        more = len(rows) > limit
        next_cursor = (
            encode_cursor(int(rows[limit - 1][1]), str(rows[limit - 1][2])) if more else ""
        )
        return Page(items, next_cursor)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


def _filters(window: Window, equal: dict[str, str]) -> tuple[str, list[Any]]:
    """A WHERE clause: the window's strategy, symbol and time bounds, and `equal` columns."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("strategy", window.strategy), ("symbol", window.symbol), *equal.items()):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if window.since is not None:
        clauses.append("ts_event >= ?")
        params.append(window.since)
    if window.until is not None:
        clauses.append("ts_event < ?")
        params.append(window.until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def encode_cursor(ts_event: int, item_id: str) -> str:
    """An opaque cursor: the last item's time and id."""
    return base64.urlsafe_b64encode(f"{ts_event}:{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The time and id a cursor holds; `CursorError` for anything else."""
    bad = CursorError(f"not a cursor this API made: {cursor[:40]!r}")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, item_id = text.partition(":")
        moment = int(ts)
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if not item_id:
        raise bad
    return moment, item_id
