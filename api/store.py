"""The API's own store: positions, orders and fills as the topics last said, and the offsets.

Written only by the materializer, from the `positions`, `orders` and `fills` topics, never from
another process's files: a lost store is rebuilt by reading the topics again. Each batch of
messages and the next offset of every partition it read are one transaction, so a restart
resumes exactly where the last commit ended and a message is applied at most once in effect.

In SQLite (one file, the default) or PostgreSQL (a schema of its own): the SQL is written once,
with `?` placeholders, and a `Dialect` supplies what differs.

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
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, cast

import msgspec

from ticklane.control import ControlAck, ControlCommand
from ticklane.market import Bar, InstrumentDef
from ticklane.settings import Settings
from ticklane.status import ProcessStatus
from ticklane.trading import Fill, Indicators, Order, Position, Signal


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


class KeyedBar(msgspec.Struct, frozen=True):
    """A bar with the symbol its key names, as the stream carries it."""

    symbol: str
    bar: Bar


Stored = (
    Position
    | Order
    | Fill
    | ControlCommand
    | ControlAck
    | Bar
    | Signal
    | DeadLetter
    | Indicators
    | ProcessStatus
    | InstrumentDef
)
"""What the store keeps, one table each."""


class Dialect(msgspec.Struct, frozen=True):
    """What differs between the SQL the store speaks to SQLite and to PostgreSQL."""

    name: str
    placeholder: str
    """How a statement's parameters are written (the store's SQL uses `?`)."""
    blob: str
    serial: str
    """The type of a column numbered by the database, as a primary key."""
    greatest: str
    """The larger of two values: SQLite's scalar MAX, PostgreSQL's GREATEST."""
    begin: str
    """The statement that opens a write transaction."""

    def sql(self, text: str) -> str:
        """`text`, written with `?` placeholders, in this dialect."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE: Final = Dialect(
    "sqlite", "?", "BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", "MAX", "BEGIN IMMEDIATE"
)
POSTGRES: Final = Dialect("postgres", "%s", "BYTEA", "BIGSERIAL PRIMARY KEY", "GREATEST", "BEGIN")


def _schema(d: Dialect) -> tuple[str, ...]:
    """The store's tables and indexes in a dialect (integers are 64-bit: times are in ns)."""
    b = d.blob
    return (
        "CREATE TABLE IF NOT EXISTS positions (strategy TEXT NOT NULL, symbol TEXT NOT NULL,"
        f" part BIGINT NOT NULL, seq BIGINT NOT NULL, body {b} NOT NULL,"
        " PRIMARY KEY (strategy, symbol))",
        "CREATE TABLE IF NOT EXISTS orders (client_order_id TEXT PRIMARY KEY,"
        " strategy TEXT NOT NULL, symbol TEXT NOT NULL, status TEXT NOT NULL,"
        " ts_event BIGINT NOT NULL, part BIGINT NOT NULL, seq BIGINT NOT NULL,"
        f" body {b} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS orders_time ON orders (ts_event, client_order_id)",
        "CREATE TABLE IF NOT EXISTS fills (fill_id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL,"
        " strategy TEXT NOT NULL, symbol TEXT NOT NULL, ts_event BIGINT NOT NULL,"
        f" body {b} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS fills_time ON fills (ts_event, fill_id)",
        "CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, part BIGINT NOT NULL,"
        " next_offset BIGINT NOT NULL, PRIMARY KEY (topic, part))",
        f"CREATE TABLE IF NOT EXISTS events (seq {d.serial}, kind TEXT NOT NULL,"
        f" body {b} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS commands (command_id TEXT PRIMARY KEY,"
        f" ts_event BIGINT NOT NULL, body {b} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS commands_time ON commands (ts_event, command_id)",
        "CREATE TABLE IF NOT EXISTS acks (command_id TEXT NOT NULL, by TEXT NOT NULL,"
        f" seq BIGINT NOT NULL, body {b} NOT NULL, PRIMARY KEY (command_id, by))",
        "CREATE TABLE IF NOT EXISTS marks (symbol TEXT PRIMARY KEY, bar_end BIGINT NOT NULL,"
        " close BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bars (symbol TEXT NOT NULL, interval_ns BIGINT NOT NULL,"
        f" ts_event BIGINT NOT NULL, body {b} NOT NULL,"
        " PRIMARY KEY (symbol, interval_ns, ts_event))",
        "CREATE TABLE IF NOT EXISTS signals (signal_id TEXT PRIMARY KEY, strategy TEXT NOT NULL,"
        f" symbol TEXT NOT NULL, ts_event BIGINT NOT NULL, body {b} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS signals_time ON signals (ts_event, signal_id)",
        "CREATE TABLE IF NOT EXISTS dead_letters (part BIGINT NOT NULL, seq BIGINT NOT NULL,"
        f" body {b} NOT NULL, PRIMARY KEY (part, seq))",
        "CREATE TABLE IF NOT EXISTS indicators (symbol TEXT NOT NULL, interval_ns BIGINT NOT NULL,"
        f" ts_event BIGINT NOT NULL, strategy TEXT NOT NULL, body {b} NOT NULL,"
        " PRIMARY KEY (symbol, interval_ns, ts_event, strategy))",
        "CREATE INDEX IF NOT EXISTS indicators_latest ON indicators (strategy, symbol, ts_event)",
        "CREATE TABLE IF NOT EXISTS statuses (instance TEXT PRIMARY KEY, ts_event BIGINT NOT NULL,"
        f" body {b} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS instruments (symbol TEXT PRIMARY KEY, underlying TEXT NOT NULL,"
        f" ts_recv BIGINT NOT NULL, body {b} NOT NULL)",
    )


_DEAD: Final = msgspec.msgpack.Decoder(DeadLetter)
_BAR: Final = msgspec.msgpack.Decoder(Bar)
_SIGNAL: Final = msgspec.msgpack.Decoder(Signal)
Streamed = (
    Position
    | Order
    | Fill
    | ControlCommand
    | ControlAck
    | Signal
    | KeyedBar
    | Indicators
    | ProcessStatus
)
"""What the live stream carries (not dead letters or instruments)."""
KINDS: Final[dict[type[Streamed], str]] = {
    Position: "position",
    Order: "order",
    Fill: "fill",
    ControlCommand: "command",
    ControlAck: "ack",
    Signal: "signal",
    KeyedBar: "bar",
    Indicators: "indicators",
    ProcessStatus: "status",
}
"""The live stream's event kinds, by what changed."""
_DECODERS: Final[dict[str, msgspec.msgpack.Decoder[Any]]] = {
    kind: msgspec.msgpack.Decoder(typ) for typ, kind in KINDS.items()
}
_ENCODE: Final = msgspec.msgpack.Encoder().encode
_POSITION: Final = msgspec.msgpack.Decoder(Position)
_ORDER: Final = msgspec.msgpack.Decoder(Order)
_FILL: Final = msgspec.msgpack.Decoder(Fill)
_INSTRUMENT: Final = msgspec.msgpack.Decoder(InstrumentDef)
_INDICATORS: Final = msgspec.msgpack.Decoder(Indicators)
_STATUS: Final = msgspec.msgpack.Decoder(ProcessStatus)


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


class Opened(msgspec.Struct, frozen=True):
    """A connection to a store's database, open, and how to speak to it."""

    connection: Any
    """A DB-API connection (sqlite3 or psycopg) outside any transaction, in autocommit mode."""
    dialect: Dialect
    errors: tuple[type[Exception], ...]
    """What its driver raises when the database refuses or fails."""
    where: str
    """The store, named for messages (never with a password)."""


class Store:
    """The store, in SQLite (`Store(path)`) or PostgreSQL (`open_postgres_store`): one writer
    (the materializer thread), any number of readers."""

    def __init__(self, path: Path, *, over: Opened | None = None) -> None:
        """The SQLite store at `path`; or, `over` a connection already open, the store in
        that database, `path` then only placing the API's local files (`server.url` beside it).
        """
        opened = over or _open_sqlite(path)
        self._db = opened.connection
        self._dialect = opened.dialect
        self._errors = opened.errors
        self.path = path
        self.where = opened.where
        """The store, named for messages: its file, or its PostgreSQL schema."""
        self.version = 0
        """Bumped after each applied batch: a cheap "anything new?" for stream clients."""
        self._lock = threading.Lock()
        """One connection, shared by the materializer and request threads, one at a time."""
        try:
            with self._transaction() as cur:
                for statement in _schema(self._dialect):
                    cur.execute(statement)
        except self._errors as exc:
            with contextlib.suppress(*self._errors):
                self._db.close()
            raise StoreError(f"cannot open the API store {self.where}: {exc}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator["_Cursor"]:
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute(self._dialect.begin)
                yield _Cursor(cur, self._dialect)
            except BaseException:
                self._db.rollback()
                raise
            else:
                self._db.commit()
            finally:
                cur.close()

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute(self._dialect.sql(text), tuple(params))
                rows: list[tuple[Any, ...]] = cur.fetchall()
            finally:
                cur.close()
            return rows

    # --- writes

    def apply(self, batch: Sequence[Located], offsets: dict[tuple[str, int], int]) -> None:
        """Apply a batch of messages and advance the offsets read, in one transaction."""
        with self._transaction() as cur:
            for located in batch:
                streamed = self._apply_one(cur, located)
                if streamed is not None:
                    cur.execute(
                        "INSERT INTO events (kind, body) VALUES (?, ?)",
                        (KINDS[type(streamed)], _ENCODE(streamed)),
                    )
            for (topic, partition), next_offset in offsets.items():
                # The function's name is the dialect's own; every value is a parameter.
                cur.execute(
                    "INSERT INTO offsets (topic, part, next_offset) VALUES (?, ?, ?)"  # noqa: S608
                    " ON CONFLICT (topic, part) DO UPDATE SET next_offset ="
                    f" {self._dialect.greatest}(offsets.next_offset, excluded.next_offset)",
                    (topic, partition, next_offset),
                )
        self.version += 1

    @staticmethod
    def _apply_one(cur: "_Cursor", located: Located) -> Streamed | None:
        """Write one message; what the stream should carry if it changed anything."""
        return _WRITERS[type(located.message)](cur, located)

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
        except self._errors:
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

    def indicators(
        self,
        symbol: str,
        interval_ns: int,
        *,
        strategy: str | None,
        since: int,
        until: int | None,
        limit: int,
    ) -> list[Indicators]:
        """A symbol's indicator snapshots of one interval at bars opening in [since, until),
        oldest first (one strategy's, or every strategy's)."""
        where = "symbol = ? AND interval_ns = ? AND ts_event >= ? AND ts_event < ?"
        params: list[Any] = [symbol, interval_ns, since, until if until is not None else 2**63 - 1]
        if strategy is not None:
            where += " AND strategy = ?"
            params.append(strategy)
        # Column names are this module's own; every value is a parameter.
        text = f"SELECT body FROM indicators WHERE {where} ORDER BY ts_event, strategy LIMIT ?"  # noqa: S608
        rows = self._query(text, [*params, limit])
        return [_INDICATORS.decode(row[0]) for row in rows]

    def latest_indicators(self, strategy: str, symbol: str) -> Indicators | None:
        """A strategy's indicators after the last bar it absorbed in a symbol."""
        rows = self._query(
            "SELECT body FROM indicators WHERE strategy = ? AND symbol = ?"
            " ORDER BY ts_event DESC LIMIT 1",
            (strategy, symbol),
        )
        return _INDICATORS.decode(rows[0][0]) if rows else None

    def statuses(self) -> list[ProcessStatus]:
        """Every process's latest status, by instance."""
        rows = self._query("SELECT body FROM statuses ORDER BY instance")
        return [_STATUS.decode(row[0]) for row in rows]

    def instruments(
        self,
        *,
        limit: int,
        cursor: str = "",
        symbol: str | None = None,
        underlying: str | None = None,
    ) -> Page:
        """Instruments' latest definitions by symbol, a page at a time."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("symbol", symbol), ("underlying", underlying)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if cursor:
            clauses.append("symbol > ?")
            params.append(decode_cursor(cursor)[1])
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        # Column names are this module's own; every value is a parameter.
        text = f"SELECT body, symbol FROM instruments{where} ORDER BY symbol LIMIT ?"  # noqa: S608
        rows = self._query(text, [*params, limit + 1])
        items = [_INSTRUMENT.decode(row[0]) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(0, str(rows[limit - 1][1])) if more else "")

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


CONNECT_TIMEOUT_S: Final = 10
"""How long a connection to PostgreSQL may take, unless the connection string says."""


def _open_sqlite(path: Path) -> Opened:
    """A connection to the SQLite file at `path` (created, with its folder, if missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the API store at {path}: {exc}") from None
    return Opened(db, SQLITE, (sqlite3.Error,), f"at {path}")


def open_postgres_store(dsn: str, schema: str, path: Path) -> Store:
    """The store in PostgreSQL's `schema` (created if missing) of the database `dsn` names.

    `path` places the API's local files (`server.url` beside it): its folder is created, the
    path itself is never written. A `StoreError` names what failed, never the connection
    string's password, and carries no driver error that might (no cause, no context).
    """
    import psycopg  # noqa: PLC0415 - only needed with the PostgreSQL store

    where = f"in PostgreSQL schema {schema}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot make the API's folder {path.parent}: {exc}") from None
    db, failure = _connect_postgres(dsn)
    if db is None:
        raise StoreError(f"cannot connect to the API store {where}: {failure}")
    failure = _enter_schema(db, schema)
    if failure:
        with contextlib.suppress(psycopg.Error):
            db.close()
        raise StoreError(f"cannot open the API store {where}: {failure}")
    return Store(path, over=Opened(db, POSTGRES, (psycopg.Error,), where))


def _connect_postgres(dsn: str) -> tuple[Any, str]:
    """A connection in autocommit mode to the database `dsn` names; or None, and why not,
    without the password. (Returned, not raised: the driver's error, whose text can quote
    the connection string, then becomes no exception's context.)"""
    import psycopg  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return None, "the connection string is not valid"  # the driver's text quotes it
    if "connect_timeout" not in params:
        dsn = make_conninfo(dsn, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        return psycopg.connect(dsn, autocommit=True), ""
    except psycopg.Error as exc:
        return None, _without(str(exc), params.get("password"))


def _enter_schema(db: Any, schema: str) -> str:
    """Create `schema` if missing and make it the connection's; why not ("": done)."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    try:
        db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        # The ledger's tables share names with the store's (orders, fills, signals).
        ledger = db.execute("SELECT to_regclass('outbox')").fetchone()
    except psycopg.Error as exc:
        return str(exc)  # the server's words: no connection string in them
    return "it holds the executor's ledger" if ledger and ledger[0] is not None else ""


def _without(message: str, password: object) -> str:
    """`message` with the password (if any, as given or URL-quoted) blotted out."""
    if isinstance(password, str) and password:
        for form in {password, urllib.parse.quote(password, safe="")}:
            message = message.replace(form, "***")
    return message


def sqlite_path(settings: Settings) -> Path:
    """Where the SQLite store lives."""
    return settings.api.store_path or settings.data_dir / "api" / "api.sqlite"


def open_store(settings: Settings) -> Store:
    """The store the settings name: SQLite (the default) or PostgreSQL."""
    api = settings.api
    if api.store == "postgres":
        if api.postgres_dsn is None:
            raise StoreError(
                "api.store is postgres but api.postgres_dsn is not set "
                "(env TICKLANE_API__POSTGRES_DSN)"
            )
        local = settings.data_dir / "api" / f"postgres-{api.postgres_schema}"
        return open_postgres_store(api.postgres_dsn.get_secret_value(), api.postgres_schema, local)
    return Store(sqlite_path(settings))


class _Cursor:
    """A cursor that takes the store's SQL (`?` placeholders) in its dialect."""

    def __init__(self, cur: Any, dialect: Dialect) -> None:
        self._cur = cur
        self._dialect = dialect

    def execute(self, text: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(self._dialect.sql(text), tuple(params))

    @property
    def rowcount(self) -> int:
        """Rows the last statement inserted or changed (0 for an upsert that did nothing)."""
        return int(self._cur.rowcount)


# --- one writer per stored type: the upsert that keeps the store idempotent on the message's
# own identity, and what the stream carries when the write changed something.

Cursor = _Cursor


def _changed(cur: Cursor, message: Streamed) -> Streamed | None:
    return message if cur.rowcount > 0 else None


def _instrument(cur: Cursor, located: Located) -> Streamed | None:
    d = cast(InstrumentDef, located.message)
    cur.execute(
        "INSERT INTO instruments (symbol, underlying, ts_recv, body) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (symbol) DO UPDATE SET underlying = excluded.underlying,"
        " ts_recv = excluded.ts_recv, body = excluded.body"
        " WHERE excluded.ts_recv >= instruments.ts_recv",
        (d.raw_symbol, d.underlying, d.ts_recv, _ENCODE(d)),
    )
    return None  # reference data: not on the stream


def _indicators(cur: Cursor, located: Located) -> Streamed | None:
    i = cast(Indicators, located.message)
    cur.execute(
        "INSERT INTO indicators (symbol, interval_ns, ts_event, strategy, body)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (symbol, interval_ns, ts_event, strategy) DO NOTHING",
        (i.symbol, i.interval_ns, i.ts_event, i.strategy, _ENCODE(i)),
    )
    return _changed(cur, i)


def _status(cur: Cursor, located: Located) -> Streamed | None:
    s = cast(ProcessStatus, located.message)
    cur.execute(
        "INSERT INTO statuses (instance, ts_event, body) VALUES (?, ?, ?)"
        " ON CONFLICT (instance) DO UPDATE SET ts_event = excluded.ts_event,"
        " body = excluded.body WHERE excluded.ts_event > statuses.ts_event",
        (s.instance, s.ts_event, _ENCODE(s)),
    )
    return _changed(cur, s)


def _dead_letter(cur: Cursor, located: Located) -> Streamed | None:
    cur.execute(
        "INSERT INTO dead_letters (part, seq, body) VALUES (?, ?, ?)"
        " ON CONFLICT (part, seq) DO NOTHING",
        (located.partition, located.offset, _ENCODE(located.message)),
    )
    return None  # counted by /dead-letters, not streamed


def _signal(cur: Cursor, located: Located) -> Streamed | None:
    s = cast(Signal, located.message)
    cur.execute(
        "INSERT INTO signals (signal_id, strategy, symbol, ts_event, body)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (signal_id) DO NOTHING",
        (s.signal_id, s.strategy, s.symbol, s.ts_event, _ENCODE(s)),
    )
    return _changed(cur, s)


def _bar(cur: Cursor, located: Located) -> Streamed | None:
    bar = cast(Bar, located.message)
    symbol = located.key.decode(errors="replace")
    # A bar is republished as it grows until it closes: the latest version wins.
    cur.execute(
        "INSERT INTO bars (symbol, interval_ns, ts_event, body) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (symbol, interval_ns, ts_event) DO UPDATE SET body = excluded.body"
        " WHERE bars.body != excluded.body",
        (symbol, bar.interval_ns, bar.ts_event, _ENCODE(bar)),
    )
    changed = cur.rowcount > 0
    # The latest close per symbol is the mark unrealized P&L is taken at.
    cur.execute(
        "INSERT INTO marks (symbol, bar_end, close) VALUES (?, ?, ?)"
        " ON CONFLICT (symbol) DO UPDATE SET bar_end = excluded.bar_end,"
        " close = excluded.close WHERE excluded.bar_end >= marks.bar_end",
        (symbol, bar.ts_event + bar.interval_ns, bar.close),
    )
    return KeyedBar(symbol, bar) if changed else None


def _command(cur: Cursor, located: Located) -> Streamed | None:
    c = cast(ControlCommand, located.message)
    cur.execute(
        "INSERT INTO commands (command_id, ts_event, body) VALUES (?, ?, ?)"
        " ON CONFLICT (command_id) DO NOTHING",
        (c.command_id, c.ts_event, _ENCODE(c)),
    )
    return _changed(cur, c)


def _ack(cur: Cursor, located: Located) -> Streamed | None:
    a = cast(ControlAck, located.message)
    cur.execute(
        "INSERT INTO acks (command_id, by, seq, body) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (command_id, by) DO UPDATE SET seq = excluded.seq,"
        " body = excluded.body WHERE excluded.seq > acks.seq",
        (a.command_id, a.by, located.offset, _ENCODE(a)),
    )
    return _changed(cur, a)


def _fill(cur: Cursor, located: Located) -> Streamed | None:
    f = cast(Fill, located.message)
    cur.execute(
        "INSERT INTO fills (fill_id, client_order_id, strategy, symbol, ts_event, body)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fill_id) DO NOTHING",
        (f.fill_id, f.client_order_id, f.strategy, f.symbol, f.ts_event, _ENCODE(f)),
    )
    return _changed(cur, f)


def _order(cur: Cursor, located: Located) -> Streamed | None:
    o = cast(Order, located.message)
    # Only a later event of the order's partition replaces it (a replay changes nothing).
    cur.execute(
        "INSERT INTO orders (client_order_id, strategy, symbol, status, ts_event,"
        " part, seq, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (client_order_id) DO UPDATE SET status = excluded.status,"
        " ts_event = excluded.ts_event, part = excluded.part, seq = excluded.seq,"
        " body = excluded.body"
        " WHERE excluded.part != orders.part OR excluded.seq > orders.seq",
        (
            o.client_order_id,
            o.strategy,
            o.symbol,
            o.status.value,
            o.ts_event,
            located.partition,
            located.offset,
            _ENCODE(o),
        ),
    )
    return _changed(cur, o)


def _position(cur: Cursor, located: Located) -> Streamed | None:
    p = cast(Position, located.message)
    cur.execute(
        "INSERT INTO positions (strategy, symbol, part, seq, body)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (strategy, symbol) DO UPDATE SET"
        " part = excluded.part, seq = excluded.seq, body = excluded.body"
        " WHERE excluded.part != positions.part OR excluded.seq > positions.seq",
        (p.strategy, p.symbol, located.partition, located.offset, _ENCODE(p)),
    )
    return _changed(cur, p)


_WRITERS: Final[dict[type, Callable[[Cursor, Located], Streamed | None]]] = {
    InstrumentDef: _instrument,
    Indicators: _indicators,
    ProcessStatus: _status,
    DeadLetter: _dead_letter,
    Signal: _signal,
    Bar: _bar,
    ControlCommand: _command,
    ControlAck: _ack,
    Fill: _fill,
    Order: _order,
    Position: _position,
}


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
