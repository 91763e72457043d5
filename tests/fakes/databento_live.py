"""A fake Databento Live Subscription Gateway on 127.0.0.1, for the real `databento.Live` client.

The protocol is the one the SDK speaks (databento 0.88, DBN v3): text control lines
(`lsg_version=`, `cram=`, `auth=...`, `success=...`, subscription lines, `start_session`),
then a DBN stream: metadata, subscription acks, symbol mappings, intraday replay, live records,
heartbeats when idle. The gateway has a controllable clock: a record has "happened" once
it is released (all at the first session start, on `release()`, or one per `pacing` seconds).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import databento
import databento_dbn as dbn
import zstandard
from databento_dbn import DBNRecord, Schema, SType

log = logging.getLogger(__name__)

FAKE_API_KEY = "db-TicklaneFakeKey0000000000abcde"  # 32 characters, like a real key
LSG_VERSION = "0.0.0+ticklane.fake"
DEFAULT_HEARTBEAT_S = 30  # the SDK always sends heartbeat_interval_s (its own default is 30)
AUTH_FAILED = "Authentication failed."
ALL_SYMBOLS = "ALL_SYMBOLS"
BUCKET_ID_LENGTH = 5
# Intraday replay filters on ts_event, but on ts_recv for (C)BBO schemas (Databento docs).
TS_RECV_REPLAY_SCHEMAS = frozenset({Schema.BBO_1S, Schema.BBO_1M, Schema.CBBO_1S, Schema.CBBO_1M})
_YIELD_EVERY = 256  # records written between yields, so one fast session cannot starve the loop

DropHow = Literal["reset", "close", "stall"]
Pacing = Literal["burst", "manual"] | float


@dataclasses.dataclass(frozen=True)
class DbnData:
    """The records of one schema from a DBN file, with the instrument_id → raw symbol map."""

    dataset: str
    schema: Schema
    records: tuple[DBNRecord, ...]
    symbols: Mapping[int, str]


def load_dbn(path: str | Path) -> DbnData:
    """Read a DBN (or DBN+zstd) file the way the SDK does: records upgraded to DBN v3."""
    store = databento.DBNStore.from_file(path)
    symbols = {
        int(interval["symbol"]): raw
        for raw, intervals in store.metadata.mappings.items()
        for interval in intervals
    }
    if store.schema is None:
        raise ValueError(f"{path}: a file of mixed schemas cannot be served by schema")
    return DbnData(store.metadata.dataset, store.schema, tuple(store), symbols)


def merge_files(
    paths: Iterable[str | Path],
) -> tuple[dict[Schema | str, list[DBNRecord]], dict[int, str], str]:
    """Records by schema, instrument_id → raw symbol, and the dataset, of several DBN files."""
    loaded = [load_dbn(p) for p in paths]
    records: dict[Schema | str, list[DBNRecord]] = {}
    symbols: dict[int, str] = {}
    for data in loaded:
        records.setdefault(data.schema, []).extend(data.records)
        symbols.update(data.symbols)
    return records, symbols, loaded[0].dataset


@dataclasses.dataclass(frozen=True)
class Subscription:
    """One subscription line as the gateway received it."""

    session: int
    schema: str
    stype_in: str
    symbols: tuple[str, ...]
    start: int | None
    snapshot: bool
    id: int | None
    is_last: bool


@dataclasses.dataclass(frozen=True)
class _Entry:
    schema: Schema
    instrument_id: int
    ts_order: int  # the record's index timestamp: when the gateway "received" it
    ts_replay: int  # what a replay `start` is compared with
    raw: bytes


@dataclasses.dataclass
class _Drop:
    remaining: int
    how: DropHow
    mid_record: bool


@dataclasses.dataclass
class _Filter:
    ids: frozenset[int] | None  # None: every instrument
    start: int | None


class _SessionOverError(Exception):
    """The session is over: the client left, or a fault was injected."""


def _parse_control(line: bytes) -> dict[str, str]:
    fields = line.decode("utf-8").rstrip("\n").split("|")
    return {key: value for key, _, value in (f.partition("=") for f in fields)}


def challenge_response(cram: str, key: str) -> str:
    """What a client must answer to `cram` with `key`: sha256 of `cram|key`, dash, bucket id."""
    digest = hashlib.sha256(f"{cram}|{key}".encode()).hexdigest()
    return f"{digest}-{key[-BUCKET_ID_LENGTH:]}"


class _Session:
    def __init__(self, number: int, writer: asyncio.StreamWriter) -> None:
        self.number = number
        self.id = f"fake-{number}-{secrets.token_hex(4)}"
        self.writer = writer
        self.ts_out = False
        self.zstd: zstandard.ZstdCompressionObj | None = None
        self.heartbeat_s: float = DEFAULT_HEARTBEAT_S
        self.pending: list[Subscription] = []
        self.filters: dict[Schema, list[_Filter]] = {}
        self.drop: _Drop | None = None
        self.client_gone = False
        self.wake = asyncio.Event()
        self.last_send = 0.0
        self.sent = 0

    def encode(self, data: bytes, *, record: bool = True) -> bytes:
        if record and self.ts_out:
            # ts_out appends the send time and grows the length byte (in 4-byte words) by two.
            data = bytes([data[0] + 2]) + data[1:] + struct.pack("<Q", time.time_ns())
        if self.zstd is not None:
            data = self.zstd.compress(data) + self.zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return data

    def send(self, data: bytes, *, record: bool = True) -> None:
        self.writer.write(self.encode(data, record=record))
        self.last_send = asyncio.get_running_loop().time()

    def wants(self, entry: _Entry, *, replay: bool) -> bool:
        for flt in self.filters.get(entry.schema, ()):
            if flt.ids is not None and entry.instrument_id not in flt.ids:
                continue
            if not replay or (flt.start is not None and entry.ts_replay >= flt.start):
                return True
        return False


class FakeLiveGateway:
    """Live gateway serving supplied DBN v3 records by schema; a context manager."""

    def __init__(
        self,
        records: Mapping[Schema | str, Iterable[DBNRecord]],
        symbols: Mapping[int, str],
        *,
        dataset: str = "GLBX.MDP3",
        api_key: str = FAKE_API_KEY,
        now_ns: int | None = None,
        pacing: Pacing = "burst",
        replay_window_ns: int | None = None,
        heartbeat_s: float | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.dataset = dataset
        self.api_key = api_key
        self.symbols = dict(symbols)
        self.host = host
        self.replay_window_ns = replay_window_ns
        self._pacing = pacing
        self._heartbeat_override = heartbeat_s
        self._schemas = {Schema.from_str(str(s)) for s in records}
        self._timeline = self._build_timeline(records)
        first = self._timeline[0].ts_order if self._timeline else 1
        self._base_now = now_ns if now_ns is not None else first - 1
        self._released = 0
        while (
            self._released < len(self._timeline)
            and self._timeline[self._released].ts_order <= self._base_now
        ):
            self._released += 1
        self._lock = threading.Lock()
        self._drops: collections.deque[_Drop] = collections.deque()
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._port = 0
        # Counters, read by tests from their own thread.
        self.sessions = 0
        self.auth_attempts = 0
        self.auth_failures = 0
        self.starts = 0
        self.records_sent = 0
        self.heartbeats_sent = 0
        self.drops = 0
        self._subscriptions: list[Subscription] = []
        self._auth_requests: list[dict[str, str]] = []

    @classmethod
    def from_files(cls, *paths: str | Path, **kwargs: object) -> Self:
        """A gateway serving the given DBN files, one schema each, all of one dataset."""
        records, symbols, dataset = merge_files(paths)
        kwargs.setdefault("dataset", dataset)
        return cls(records, symbols, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def _build_timeline(records: Mapping[Schema | str, Iterable[DBNRecord]]) -> list[_Entry]:
        entries = []
        for key, recs in records.items():
            schema = Schema.from_str(str(key))
            for rec in recs:
                ts_replay = rec.ts_recv if schema in TS_RECV_REPLAY_SCHEMAS else rec.ts_event
                entries.append(
                    _Entry(schema, rec.instrument_id, rec.ts_index, ts_replay, bytes(rec))
                )
        # A stable sort keeps each schema's own order among records of equal time.
        entries.sort(key=lambda e: e.ts_order)
        return entries

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the gateway listens on (after `start`)."""
        return self._port

    def start(self) -> Self:
        """Listen on a free port, serving from a background thread."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fake-lsg", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Close every connection and the listener, and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
        # Cut connections instead of cancelling their handlers: asyncio (3.11) logs a cancelled
        # client_connected_cb task as an error. Each handler then ends on its own.
        for sess in self._sessions:
            sess.client_gone = True
            sess.wake.set()
            sess.writer.transport.abort()
        tasks = [*self._tasks, *([self._ticker] if self._ticker else [])]
        _, pending = await asyncio.wait(tasks, timeout=5) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    # -- clock and fault controls (called from the test's thread) ----------------------------

    @property
    def total(self) -> int:
        """How many records the gateway holds, all schemas together."""
        return len(self._timeline)

    @property
    def released(self) -> int:
        """How many records (in time order, all schemas) have happened so far."""
        return self._released

    @property
    def now_ns(self) -> int:
        """The gateway's clock: the index time of the last record that has happened."""
        if self._released == 0:
            return self._base_now
        return max(self._base_now, self._timeline[self._released - 1].ts_order)

    def release(self, n: int = 1) -> int:
        """Let the next `n` records happen (streamed to matching sessions); returns `released`."""
        with self._lock:
            self._released = min(len(self._timeline), self._released + n)
        self._wake_all()
        return self._released

    def release_all(self) -> int:
        """Let every remaining record happen."""
        return self.release(len(self._timeline))

    def release_until(self, ts_ns: int) -> int:
        """Let every record with index time <= `ts_ns` happen."""
        with self._lock:
            while (
                self._released < len(self._timeline)
                and self._timeline[self._released].ts_order <= ts_ns
            ):
                self._released += 1
        self._wake_all()
        return self._released

    def drop_after(self, n: int, *, how: DropHow = "reset", mid_record: bool = False) -> None:
        """Queue a fault: a streaming session sends `n` more data records, then is cut.

        Queued faults are taken one per session, in order. `how`: "reset" aborts with a TCP RST,
        "close" sends a FIN (what the SDK takes for a normal end), "stall" goes silent, sending
        nothing more, not even heartbeats. `mid_record` first sends half of the next record.
        """
        with self._lock:
            self._drops.append(_Drop(n, how, mid_record))
        self._wake_all()

    @property
    def subscriptions(self) -> list[Subscription]:
        """Every subscription line received, in order, all sessions."""
        with self._lock:
            return list(self._subscriptions)

    @property
    def start_values(self) -> list[int | None]:
        """The `start` of every subscription received (None: live only)."""
        return [s.start for s in self.subscriptions]

    @property
    def auth_requests(self) -> list[dict[str, str]]:
        """The fields of every authentication line received (auth, dataset, compression...)."""
        with self._lock:
            return [dict(r) for r in self._auth_requests]

    @property
    def active_sessions(self) -> int:
        """Connections open now."""
        return len(self._sessions)

    def _wake_all(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                loop.call_soon_threadsafe(self._wake_sessions)

    def _wake_sessions(self) -> None:
        for sess in self._sessions:
            sess.wake.set()

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    # -- one connection ----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._count("sessions")
        sess = _Session(self.sessions, writer)
        self._sessions.add(sess)
        try:
            if await self._negotiate(sess, reader):
                await self._stream(sess, reader)
        except (_SessionOverError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(sess)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _hang_up(self, sess: _Session) -> None:
        """Close gracefully (FIN after everything written), as the gateway does after an error."""
        with contextlib.suppress(ConnectionError):
            await sess.writer.drain()
        sess.writer.close()
        with contextlib.suppress(ConnectionError):
            await sess.writer.wait_closed()

    async def _negotiate(self, sess: _Session, reader: asyncio.StreamReader) -> bool:
        """Greeting, challenge, authentication and subscriptions, up to `start_session`."""
        cram = secrets.token_urlsafe(24)[:32]
        sess.writer.write(f"lsg_version={LSG_VERSION}\ncram={cram}\n".encode())
        authed = False
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                return False  # the client left
            fields = _parse_control(line)
            if "auth" in fields and not authed:
                authed = self._authenticate(fields, cram)
                if not authed:
                    sess.writer.write(f"success=0|error={AUTH_FAILED}\n".encode())
                    await self._hang_up(sess)
                    return False
                self._configure(sess, fields)
                sess.writer.write(f"success=1|session_id={sess.id}\n".encode())
            elif not authed:
                await self._hang_up(sess)
                return False
            elif "schema" in fields:
                self._record_subscription(sess, fields)
            elif "start_session" in fields:
                return True
            else:
                log.warning("fake gateway: unexpected control line %r", line)
                await self._hang_up(sess)
                return False

    def _authenticate(self, fields: Mapping[str, str], cram: str) -> bool:
        with self._lock:
            self.auth_attempts += 1
            self._auth_requests.append(dict(fields))
        expected = challenge_response(cram, self.api_key)
        ok = hmac.compare_digest(fields["auth"], expected) and fields.get("dataset") == self.dataset
        if not ok:
            self._count("auth_failures")
        return ok

    def _configure(self, sess: _Session, fields: Mapping[str, str]) -> None:
        sess.ts_out = fields.get("ts_out") == "1"
        if fields.get("compression", "none") == "zstd":
            sess.zstd = zstandard.ZstdCompressor().compressobj()
        negotiated = float(fields.get("heartbeat_interval_s") or DEFAULT_HEARTBEAT_S)
        sess.heartbeat_s = self._heartbeat_override or negotiated

    def _record_subscription(self, sess: _Session, fields: Mapping[str, str]) -> None:
        sub = Subscription(
            session=sess.number,
            schema=fields["schema"],
            stype_in=fields.get("stype_in", str(SType.RAW_SYMBOL)),
            symbols=tuple(s for s in fields.get("symbols", "").split(",") if s),
            start=int(fields["start"]) if fields.get("start") else None,
            snapshot=fields.get("snapshot", "0") == "1",
            id=int(fields["id"]) if fields.get("id") else None,
            is_last=fields.get("is_last", "1") == "1",
        )
        with self._lock:
            self._subscriptions.append(sub)
        sess.pending.append(sub)
        sess.wake.set()

    async def _read_more(self, sess: _Session, reader: asyncio.StreamReader) -> None:
        """After the start, keep reading: new (live-only) subscriptions, or the client leaving."""
        with contextlib.suppress(ConnectionError, ValueError):
            while (line := await reader.readline()).endswith(b"\n"):
                fields = _parse_control(line)
                if "schema" in fields:
                    self._record_subscription(sess, fields)
        sess.client_gone = True
        sess.wake.set()

    # -- the DBN stream ----------------------------------------------------------------------

    async def _stream(self, sess: _Session, reader: asyncio.StreamReader) -> None:
        self._count("starts")
        if self._ticker is None and not isinstance(self._pacing, str):
            self._ticker = asyncio.create_task(self._tick(float(self._pacing)))
        live_from = self._released
        now = self.now_ns
        floor = now - self.replay_window_ns if self.replay_window_ns is not None else 0
        if self._pacing == "burst":
            self.release_all()
        subs, sess.pending = sess.pending, []
        starts = [max(s.start, floor) for s in subs if s.start is not None]
        meta = dbn.Metadata(
            dataset=self.dataset,
            start=min(starts) if starts else now,
            stype_in=None,
            stype_out=SType.INSTRUMENT_ID,
            schema=None,
            ts_out=sess.ts_out,
            version=dbn.DBN_VERSION,
        )
        sess.send(meta.encode(), record=False)
        await self._accept(sess, subs, floor, now)
        reading = asyncio.create_task(self._read_more(sess, reader))
        try:
            for entry in self._timeline[:live_from]:
                if sess.wants(entry, replay=True):
                    await self._send_data(sess, entry.raw)
            for schema in sorted({s.schema for s in subs if s.start is not None}):
                self._send_system(
                    sess, f"Finished {schema} replay", dbn.SystemCode.REPLAY_COMPLETED
                )
            await self._live(sess, live_from, floor)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    async def _accept(
        self, sess: _Session, subs: Sequence[Subscription], floor: int, now: int
    ) -> None:
        """Acknowledge subscriptions, report what cannot be served, send symbol mappings."""
        for sub in subs:
            try:
                schema = Schema.from_str(sub.schema)
                stype = SType.from_str(sub.stype_in)
            except dbn.DBNError:
                schema, stype = None, None
            if schema not in self._schemas or stype not in (SType.RAW_SYMBOL, SType.INSTRUMENT_ID):
                # Fatal: the gateway closes the session after the error record (Databento docs).
                err = f"Invalid subscription: schema {sub.schema} stype_in {sub.stype_in}"
                self._send_error(sess, err, dbn.ErrorCode.INVALID_SUBSCRIPTION, is_last=True)
                await self._hang_up(sess)
                raise _SessionOverError
            resolved, unknown = self._resolve(stype, sub.symbols)
            for i, symbol in enumerate(unknown):
                code = dbn.ErrorCode.SYMBOL_RESOLUTION_FAILED
                last = i == len(unknown) - 1
                self._send_error(sess, f"Failed to resolve symbol: {symbol}", code, is_last=last)
            ids = None if resolved is None else frozenset(iid for iid, _ in resolved)
            start = None if sub.start is None else max(sub.start, floor)
            sess.filters.setdefault(schema, []).append(_Filter(ids, start))
            self._send_system(
                sess,
                f"Subscription request {sub.id} for {schema} data succeeded",
                dbn.SystemCode.SUBSCRIPTION_ACK,
            )
            if resolved is None:  # ALL_SYMBOLS
                by_id = stype == SType.INSTRUMENT_ID
                resolved = [(i, str(i) if by_id else raw) for i, raw in self.symbols.items()]
            for iid, in_sym in resolved:  # (publisher, id, ts_event, in, out, valid from/to)
                out_sym = self.symbols[iid]
                mapping = dbn.SymbolMappingMsg(
                    0, iid, now, stype, in_sym, SType.RAW_SYMBOL, out_sym, now, dbn.UNDEF_TIMESTAMP
                )
                sess.send(bytes(mapping))

    def _resolve(
        self, stype: SType, symbols: Sequence[str]
    ) -> tuple[list[tuple[int, str]] | None, list[str]]:
        if ALL_SYMBOLS in symbols:
            return None, []
        resolved, unknown = [], []
        for symbol in symbols:
            if stype == SType.INSTRUMENT_ID:
                ids = [int(symbol)] if symbol.isdigit() and int(symbol) in self.symbols else []
            else:
                ids = [iid for iid, raw in self.symbols.items() if raw == symbol]
            resolved.extend((iid, symbol) for iid in ids)
            if not ids:
                unknown.append(symbol)
        return resolved, unknown

    def _send_system(self, sess: _Session, msg: str, code: dbn.SystemCode) -> None:
        sess.send(bytes(dbn.SystemMsg(ts_event=self.now_ns, msg=msg, code=code)))

    def _send_error(self, sess: _Session, err: str, code: dbn.ErrorCode, *, is_last: bool) -> None:
        record = dbn.ErrorMsg(ts_event=self.now_ns, err=err, is_last=is_last, code=code)
        sess.send(bytes(record))

    async def _live(self, sess: _Session, cursor: int, floor: int) -> None:
        """Stream records as they happen; heartbeat when idle; apply queued faults."""
        loop = asyncio.get_running_loop()
        while True:
            sess.wake.clear()
            while cursor < self._released:
                entry = self._timeline[cursor]
                cursor += 1
                if sess.wants(entry, replay=False):
                    await self._send_data(sess, entry.raw)
            if sess.pending:
                subs, sess.pending = sess.pending, []
                # Subscriptions made after the start are live only (Databento docs).
                live_only = [dataclasses.replace(s, start=None) for s in subs]
                await self._accept(sess, live_only, floor, self.now_ns)
            drop = self._active_drop(sess)
            if drop is not None and drop.remaining <= 0 and not drop.mid_record:
                await self._inject(sess, drop, None)
            if sess.client_gone:
                raise _SessionOverError
            idle = loop.time() - sess.last_send
            if idle >= sess.heartbeat_s:
                self._send_system(sess, "Heartbeat", dbn.SystemCode.HEARTBEAT)
                self._count("heartbeats_sent")
                await sess.writer.drain()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sess.wake.wait(), sess.heartbeat_s - idle)

    def _active_drop(self, sess: _Session) -> _Drop | None:
        if sess.drop is None:
            with self._lock:
                if self._drops:
                    sess.drop = self._drops.popleft()
        return sess.drop

    async def _send_data(self, sess: _Session, raw: bytes) -> None:
        """Send one data record, unless a fault is due first."""
        drop = self._active_drop(sess)
        if drop is not None and drop.remaining <= 0:
            await self._inject(sess, drop, raw if drop.mid_record else None)
        sess.send(raw)
        self._count("records_sent")
        if drop is not None:
            drop.remaining -= 1
            if drop.remaining <= 0 and not drop.mid_record:
                await self._inject(sess, drop, None)
        sess.sent += 1
        await sess.writer.drain()
        if sess.sent % _YIELD_EVERY == 0:
            await asyncio.sleep(0)

    async def _inject(self, sess: _Session, drop: _Drop, partial: bytes | None) -> None:
        """Cut the session as `drop` says; never returns."""
        if partial is not None:
            encoded = sess.encode(partial)
            sess.writer.write(encoded[: max(1, len(encoded) // 2)])
        self._count("drops")
        if drop.how == "close":
            await self._hang_up(sess)
        elif drop.how == "reset":
            with contextlib.suppress(ConnectionError):
                await sess.writer.drain()
            sock = sess.writer.get_extra_info("socket")
            # Linger 0: closing sends RST, as a crashed gateway or a broken path would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sess.writer.transport.abort()
        else:
            with contextlib.suppress(ConnectionError):
                await sess.writer.drain()
            while not sess.client_gone:
                sess.wake.clear()
                await sess.wake.wait()
        raise _SessionOverError

    async def _tick(self, interval_s: float) -> None:
        """The paced clock: one more record happens every `interval_s` seconds."""
        while self._released < len(self._timeline):
            await asyncio.sleep(interval_s)
            self._released += 1
            self._wake_sessions()
