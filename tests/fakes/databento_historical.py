"""A fake Databento historical HTTP API on 127.0.0.1, for the real `databento.Historical` client.

The SDK rewrites any gateway URL to https (`validate_gateway`), so the fake speaks TLS with a
test-only certificate for 127.0.0.1; clients trust it through `env()` (REQUESTS_CA_BUNDLE for
the SDK's requests calls, SSL_CERT_FILE for its aiohttp ones). It answers what
`Historical.timeseries.get_range` sends (databento 0.88): `POST /v0/timeseries.get_range`,
form fields dataset, start, end, symbols, schema, stype_in, stype_out, encoding=dbn,
compression=zstd, limit; HTTP basic auth with the key as user name.
The body is DBN v3 (metadata, then records), zstd-compressed when asked, sent chunked. Errors are
JSON `{"detail": "..."}`, which the SDK turns into BentoClientError / BentoServerError.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hmac
import http.server
import json
import logging
import shutil
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import databento_dbn as dbn
import pandas as pd
import zstandard
from databento_dbn import DBNRecord, Schema, SType

from tests.fakes.databento_live import ALL_SYMBOLS, FAKE_API_KEY, merge_files

log = logging.getLogger(__name__)

API_PREFIX = "/v0"
_CHUNK = 4096
_ONE_DAY_NS = 86_400 * 10**9

# Test-only TLS material (EC P-256, valid 2020-2120), made once with `openssl ca`: a CA, and
# a server certificate it signed for IP 127.0.0.1 and localhost. It protects nothing.
TEST_CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBhzCCAS6gAwIBAgICEAAwCgYIKoZIzj0EAwIwKjEoMCYGA1UEAwwfdGlja2xh
bmUgZmFrZSBEYXRhYmVudG8gdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIw
MDEwMTAwMDAwMFowKjEoMCYGA1UEAwwfdGlja2xhbmUgZmFrZSBEYXRhYmVudG8g
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIVcSHe2vCI+OLaB2yNr
gF2zALnbbelXD6lvepubtjy6XTK5hcWN/ymLWUyXe7lLZySY5nNL4aQd3Fld1rVQ
cbGjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQW
BBRpxb/IVsEolqZIZjBCgzOGahoB/zAKBggqhkjOPQQDAgNHADBEAiBqrXarq91F
r96p+XgwWtxRuxPYRL0tJJ/ecxtOd5udnAIgMH4N8wXI++NyU+V2sCNc0XOHdYXw
bKXb6moimJ6joQg=
-----END CERTIFICATE-----
"""
_SERVER_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBxDCCAWmgAwIBAgICEAEwCgYIKoZIzj0EAwIwKjEoMCYGA1UEAwwfdGlja2xh
bmUgZmFrZSBEYXRhYmVudG8gdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIw
MDEwMTAwMDAwMFowFDESMBAGA1UEAwwJMTI3LjAuMC4xMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEixLfhet2f/N+fv6VonAzf1vNsSi9MHV8a686FZrBrul7EVtf
O+rxTNk4Ent2E55lat993CLR0vu/L5ujF1tC+6OBkjCBjzAMBgNVHRMBAf8EAjAA
MA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAaBgNVHREEEzAR
hwR/AAABgglsb2NhbGhvc3QwHQYDVR0OBBYEFEzbpHUIhFKWlOCtufD5ULbaaVOn
MB8GA1UdIwQYMBaAFGnFv8hWwSiWpkhmMEKDM4ZqGgH/MAoGCCqGSM49BAMCA0kA
MEYCIQD8gofnzA4RRO9kMDi7fJF9xhL4XjGjsiWaeq0Dx4g4DgIhAP7oj4niBtp3
n/chPwCKtb3bTKqplO7heux5TqzpOdlw
-----END CERTIFICATE-----
"""
_SERVER_KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwRZ8GEPfGI6fRx9v
kkbCLOB0XyqiaZ0OkNy++OsM+dyhRANCAASLEt+F63Z/835+/pWicDN/W82xKL0w
dXxrrzoVmsGu6XsRW1876vFM2TgSe3YTnmVq333cItHS+78vm6MXW0L7
-----END PRIVATE KEY-----
"""


@dataclasses.dataclass(frozen=True)
class HistoricalRequest:
    """One request as the server received it."""

    method: str
    path: str
    fields: Mapping[str, str]
    authorized: bool
    status: int


@dataclasses.dataclass(frozen=True)
class _Row:
    schema: Schema
    instrument_id: int
    ts: int  # ts_recv where the schema has it, else ts_event: what start/end filter on
    raw: bytes


@dataclasses.dataclass(frozen=True)
class _Mapping:
    """A symbol's instrument over a date range, in the shape `dbn.Metadata` takes."""

    raw_symbol: str
    intervals: list[_Interval]


@dataclasses.dataclass(frozen=True)
class _Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


class HttpError(Exception):
    """An answer with an error status and a Databento-style JSON body."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _to_ns(value: str) -> int:
    """A start/end as the SDK sends it (integer nanoseconds or ISO 8601) → UTC nanoseconds."""
    if value.lstrip("-").isdigit():
        return int(value)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")  # the API reads naive times as UTC
    return int(stamp.value)


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


class _Server(http.server.ThreadingHTTPServer):
    fake: FakeHistoricalServer
    tls: ssl.SSLContext

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:  # type: ignore[override]
        """Handshake in the request's own thread, so a slow client cannot block accepting."""
        assert isinstance(request, socket.socket)
        with self.tls.wrap_socket(request, server_side=True) as tls_sock:
            super().finish_request(tls_sock, client_address)  # type: ignore[arg-type]

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that drops or distrusts the connection is routine here, not a crash."""
        log.debug("fake historical: request from %s failed", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked transfer needs HTTP/1.1
    timeout = 10  # a silent client cannot hold a handler thread (and `stop`) for long
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Access log to `logging` at debug, not to stderr."""
        log.debug("fake historical: %s", format % args)

    def do_GET(self) -> None:
        """Serve a GET (query-string fields)."""
        query = urllib.parse.urlsplit(self.path).query
        self._serve("GET", dict(urllib.parse.parse_qsl(query)))

    def do_POST(self) -> None:
        """Serve a POST (form fields)."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self._serve("POST", dict(urllib.parse.parse_qsl(body)))

    def _serve(self, method: str, fields: dict[str, str]) -> None:
        fake = self.server.fake
        path = urllib.parse.urlsplit(self.path).path
        authorized = fake.check_auth(self.headers.get("Authorization"))
        status = 200
        try:
            answer = fake.answer(method, path, fields, authorized=authorized)
            if isinstance(answer, tuple):
                self._send_stream(*answer)
            else:
                self._send_json(200, answer)
        except HttpError as exc:
            status = exc.status
            self._send_json(exc.status, {"detail": exc.detail})
        finally:
            fake.log_request(HistoricalRequest(method, path, fields, authorized, status))

    def _send_json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _send_stream(self, body: bytes, cut: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        payload = body if cut is None else body[:cut]
        for i in range(0, len(payload), _CHUNK):
            part = payload[i : i + _CHUNK]
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        if cut is None:
            self.wfile.write(b"0\r\n\r\n")
        # When cut, the connection closes with no last chunk: the client sees the body end early.


class FakeHistoricalServer:
    """Historical API serving supplied DBN v3 records by schema; a context manager."""

    def __init__(
        self,
        records: Mapping[Schema | str, Iterable[DBNRecord]],
        symbols: Mapping[int, str],
        *,
        dataset: str = "GLBX.MDP3",
        api_key: str = FAKE_API_KEY,
        host: str = "127.0.0.1",
    ) -> None:
        self.dataset = dataset
        self.api_key = api_key
        self.symbols = dict(symbols)
        self.host = host
        self._rows: dict[Schema, list[_Row]] = {}
        for key, recs in records.items():
            schema = Schema.from_str(str(key))
            rows = self._rows.setdefault(schema, [])
            for rec in recs:
                ts = getattr(rec, "ts_recv", None)
                rows.append(
                    _Row(schema, rec.instrument_id, rec.ts_event if ts is None else ts, bytes(rec))
                )
        self._lock = threading.Lock()
        self._failures: list[tuple[int, str]] = []
        self._cuts: list[int] = []
        self._requests: list[HistoricalRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tls_dir: Path | None = None

    @classmethod
    def from_files(cls, *paths: str | Path, **kwargs: object) -> Self:
        """A server for the given DBN files, one schema each, all of one dataset."""
        records, symbols, dataset = merge_files(paths)
        kwargs.setdefault("dataset", dataset)
        return cls(records, symbols, **kwargs)  # type: ignore[arg-type]

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (after `start`)."""
        return self._httpd.server_address[1] if self._httpd else 0

    @property
    def url(self) -> str:
        """What to pass as `databento.Historical(gateway=...)`."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The PEM file of the CA that signed the server's certificate (after `start`)."""
        assert self._tls_dir is not None, "start the server first"
        return self._tls_dir / "ca.pem"

    def env(self) -> dict[str, str]:
        """Environment that makes the SDK (requests and aiohttp) trust this server."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca_file), "SSL_CERT_FILE": str(self.ca_file)}

    def start(self) -> Self:
        """Listen on a free port, serving from background threads."""
        self._tls_dir = Path(tempfile.mkdtemp(prefix="fake-databento-tls-"))
        (self._tls_dir / "ca.pem").write_text(TEST_CA_PEM)
        (self._tls_dir / "server.pem").write_text(_SERVER_CERT_PEM + _SERVER_KEY_PEM)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self._tls_dir / "server.pem")
        self._httpd = _Server((self.host, 0), _Handler)
        self._httpd.fake = self
        self._httpd.tls = tls
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-historical", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wait for requests in progress, close the socket, join the thread."""
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the request threads (block_on_close)
        self._thread.join(timeout=10)
        self._httpd = self._thread = None
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults and what was asked (called from the test's thread) ---------------------------

    def fail_next(self, n: int = 1, *, status: int = 500, detail: str = "Internal error.") -> None:
        """Answer the next `n` requests with `status` and a JSON `detail`."""
        with self._lock:
            self._failures.extend([(status, detail)] * n)

    def cut_next(self, after_bytes: int) -> None:
        """Cut the next data stream after `after_bytes` bytes of body (connection closed)."""
        with self._lock:
            self._cuts.append(after_bytes)

    @property
    def requests(self) -> list[HistoricalRequest]:
        """Every request received, in order."""
        with self._lock:
            return list(self._requests)

    # -- request handling (called from handler threads) --------------------------------------

    def check_auth(self, header: str | None) -> bool:
        """True when HTTP basic auth carries this server's key as the user name."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, _ = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.api_key)

    def answer(
        self, method: str, path: str, fields: Mapping[str, str], *, authorized: bool
    ) -> tuple[bytes, int | None] | dict[str, object]:
        """A JSON answer, or a DBN body and where to cut it; raises HttpError for errors."""
        if not authorized:
            raise HttpError(401, "Authentication failed.")
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise HttpError(*failure)
        if (method, path) == ("POST", f"{API_PREFIX}/timeseries.get_range"):
            return self.get_range(fields)
        if (method, path) == ("GET", f"{API_PREFIX}/metadata.get_dataset_range"):
            return self.dataset_range(fields)
        raise HttpError(404, f"No such endpoint: {method} {path}")

    def log_request(self, request: HistoricalRequest) -> None:
        """Remember a request for the test."""
        with self._lock:
            self._requests.append(request)

    def _check_dataset(self, fields: Mapping[str, str]) -> None:
        if fields.get("dataset") != self.dataset:
            raise HttpError(422, f"Unknown dataset '{fields.get('dataset')}'.")

    def dataset_range(self, fields: Mapping[str, str]) -> dict[str, object]:
        """`metadata.get_dataset_range`: first and last time held, overall and per schema."""
        self._check_dataset(fields)

        def iso(ns: int) -> str:
            seconds = pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%S")
            return f"{seconds}.{ns % 10**9:09d}Z"

        spans = {s: (rows[0].ts, rows[-1].ts + 1) for s, rows in self._rows.items() if rows}
        per_schema = {str(s): {"start": iso(a), "end": iso(b)} for s, (a, b) in spans.items()}
        return {
            "start": iso(min(a for a, _ in spans.values())),
            "end": iso(max(b for _, b in spans.values())),
            "schema": per_schema,
        }

    def get_range(self, fields: Mapping[str, str]) -> tuple[bytes, int | None]:
        """`timeseries.get_range`: the DBN body for the request, and where to cut it if asked."""
        self._check_dataset(fields)
        try:
            schema = Schema.from_str(fields.get("schema", "trades"))
            stype_in = SType.from_str(fields.get("stype_in", "raw_symbol"))
            start = _to_ns(fields["start"])
            end = _to_ns(fields["end"]) if fields.get("end") else None
            limit = int(fields["limit"]) if fields.get("limit") else None
        except (KeyError, ValueError, dbn.DBNError) as exc:
            raise HttpError(422, f"Invalid request: {exc}") from None
        if schema not in self._rows:
            raise HttpError(422, f"Schema '{schema}' is not available for dataset {self.dataset}.")
        if end is None and _is_date(fields["start"]):
            end = start + _ONE_DAY_NS  # the API forward-fills a date to the whole day
        if end is not None and end <= start:
            raise HttpError(422, "Invalid time range: `end` must be after `start`.")
        if limit is not None and limit < 0:
            raise HttpError(422, "Invalid `limit`: must be non-negative.")
        requested = [s for s in fields.get("symbols", "").split(",") if s]
        ids, mappings, not_found = self._resolve(stype_in, requested, start, end)
        rows = [
            r
            for r in self._rows[schema]
            if start <= r.ts
            and (end is None or r.ts < end)
            and (ids is None or r.instrument_id in ids)
        ]
        if limit:
            rows = rows[:limit]
        metadata = dbn.Metadata(
            dataset=self.dataset,
            start=start,
            end=end,
            limit=limit or None,
            stype_in=stype_in,
            stype_out=SType.INSTRUMENT_ID,
            schema=schema,
            symbols=requested or [ALL_SYMBOLS],
            partial=[],
            not_found=not_found,
            mappings=mappings,
            ts_out=False,
            version=dbn.DBN_VERSION,
        )
        body = metadata.encode() + b"".join(r.raw for r in rows)
        if fields.get("compression", "none") == "zstd":
            body = zstandard.ZstdCompressor().compress(body)
        with self._lock:
            cut = self._cuts.pop(0) if self._cuts else None
        return body, cut

    def _resolve(
        self, stype_in: SType, requested: list[str], start: int, end: int | None
    ) -> tuple[set[int] | None, list[_Mapping], list[str]]:
        if not requested or ALL_SYMBOLS in requested:
            return None, [], []
        first = pd.Timestamp(start, tz="UTC").date()
        last = pd.Timestamp(end - 1 if end is not None else start, tz="UTC").date()
        ids: set[int] = set()
        mappings, not_found = [], []
        for symbol in requested:
            if stype_in == SType.INSTRUMENT_ID:
                found = [int(symbol)] if symbol.isdigit() and int(symbol) in self.symbols else []
            else:
                found = [i for i, raw in self.symbols.items() if raw == symbol]
            if not found:
                not_found.append(symbol)
            ids.update(found)
            intervals = [_Interval(first, last + dt.timedelta(days=1), str(i)) for i in found]
            if intervals:
                mappings.append(_Mapping(symbol, intervals))
        return ids, mappings, not_found
