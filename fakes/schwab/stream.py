"""The streamer: the websocket schwab-py's `StreamClient` connects to, ACCT_ACTIVITY only.

Protocol (as schwab-py 1.5.1 speaks it, `schwab/streaming.py`): the client sends
`{"requests": [{"service", "requestid", "command", "SchwabClientCustomerId",
"SchwabClientCorrelId", "parameters"}]}`; each request is answered with `{"response":
[{"service", "command", "requestid", "SchwabClientCorrelId", "timestamp", "content":
{"code", "msg"}}]}`, code 0 for success. `ADMIN/LOGIN` carries the access token as
`parameters.Authorization`; a bad one is answered with code 3 and the connection closed.
`ACCT_ACTIVITY/SUBS` is answered, then followed by a SUBSCRIBED data message, then by one data
message per account activity (`activity.py`) for every account of the login, as long as the
subscription lasts. Other services are answered with code 11: the fake streams no quotes.

Each connection has its own queue and writer task, so messages leave in the order the venue
made them unless a fault says otherwise (`faults.py`: drop, duplicate, reorder). Every
message carries a `seq` from one counter; a duplicate repeats its `seq`, a reordered one
arrives with an older `seq` than the message before it.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from fakes.schwab.activity import Activity, content, data_message
from fakes.schwab.faults import SchwabFaults
from fakes.schwab.vocab import MessageType
from fakes.tastytrade.faults import Fault

log = logging.getLogger(__name__)

PATH: Final = "/ws"
SUCCESS: Final = 0
LOGIN_DENIED: Final = 3
NOT_AVAILABLE: Final = 11
_CLOSE: Final = object()
"""Queue sentinel: close this connection after what is queued before it."""


class _Connection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.logged_in = False
        self.key: str | None = None
        """The ACCT_ACTIVITY subscription key while subscribed."""
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    async def write(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _CLOSE:
                await self.ws.close()
                return
            await self.ws.send_str(str(item))


def _response(request: dict[str, Any], correl_id: str, code: int, msg: str) -> str:
    answer = {
        "service": request.get("service"),
        "command": request.get("command"),
        "requestid": str(request.get("requestid", "")),
        "SchwabClientCorrelId": correl_id,
        "timestamp": time.time_ns() // 1_000_000,
        "content": {"code": code, "msg": msg},
    }
    return json.dumps({"response": [answer]})


class ActivityStreamer:
    """Open streamer connections and the account-activity messages sent to them."""

    def __init__(
        self, faults: SchwabFaults, authorized: Callable[[str | None], bool], correl_id: str
    ) -> None:
        self._faults = faults
        self._authorized = authorized
        self.correl_id = correl_id
        self._connections: set[_Connection] = set()
        self._held: list[tuple[int, Activity]] = []
        self._flush: asyncio.TimerHandle | None = None
        self._seq = 0
        self.logins = 0
        self.sent = 0

    @property
    def open(self) -> int:
        """Connections subscribed to account activity."""
        return sum(1 for c in self._connections if c.key is not None)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One websocket connection, from handshake to close."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Connection(ws)
        writer = asyncio.ensure_future(conn.write())
        self._connections.add(conn)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._answer(conn, message.data)
        finally:
            self._connections.discard(conn)
            writer.cancel()
            # A client that vanished mid-send ended the writer with a connection error.
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
        return ws

    def _answer(self, conn: _Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            return
        requests = message.get("requests") if isinstance(message, dict) else None
        for request in requests if isinstance(requests, list) else []:
            if isinstance(request, dict):
                self._request(conn, request)

    def _request(self, conn: _Connection, request: dict[str, Any]) -> None:
        service, command = request.get("service"), request.get("command")
        parameters = request.get("parameters") or {}
        if service == "ADMIN" and command == "LOGIN":
            if not self._authorized(parameters.get("Authorization")):
                conn.queue.put_nowait(
                    _response(request, self.correl_id, LOGIN_DENIED, "Login denied")
                )
                conn.queue.put_nowait(_CLOSE)
                return
            conn.logged_in = True
            self.logins += 1
            ok = "server=ticklane-fake;status=PN"
            conn.queue.put_nowait(_response(request, self.correl_id, SUCCESS, ok))
        elif not conn.logged_in:
            conn.queue.put_nowait(_response(request, self.correl_id, LOGIN_DENIED, "Not logged in"))
        elif service == "ADMIN" and command == "LOGOUT":
            conn.queue.put_nowait(_response(request, self.correl_id, SUCCESS, "Logout successful"))
            conn.queue.put_nowait(_CLOSE)
        elif service == "ACCT_ACTIVITY" and command in {"SUBS", "ADD"}:
            conn.key = str(parameters.get("keys") or self.correl_id)
            msg = f"{command} command succeeded"
            conn.queue.put_nowait(_response(request, self.correl_id, SUCCESS, msg))
            subscribed = Activity("", MessageType.SUBSCRIBED, "")
            conn.queue.put_nowait(data_message([content(subscribed, 0, conn.key)], time.time_ns()))
        elif service == "ACCT_ACTIVITY" and command == "UNSUBS":
            conn.key = None
            conn.queue.put_nowait(
                _response(request, self.correl_id, SUCCESS, "UNSUBS command succeeded")
            )
        else:
            msg = f"the fake streams ACCT_ACTIVITY only, not {service} {command}"
            conn.queue.put_nowait(_response(request, self.correl_id, NOT_AVAILABLE, msg))

    def publish(self, activity: Activity) -> None:
        """Send one activity to every subscribed connection (faults permitting)."""
        if self._faults.take(Fault.DROP_STREAM):
            log.info("fault: dropping %d streamer connection(s)", len(self._connections))
            self.drop()
            return
        self._seq += 1
        if not activity.is_fill and not self._held and self._faults.take(Fault.REORDER_FILLS):
            # Held until the next fill has gone out: the client sees the fill first and this
            # older message after it, as a late redelivery would show it.
            self._held.append((self._seq, activity))
            hold_s = self._faults.settings.reorder_hold_s
            self._flush = asyncio.get_running_loop().call_later(hold_s, self._release)
            return
        self._send(self._seq, activity)
        if activity.is_fill:
            if self._faults.take(Fault.DUPLICATE_FILLS):
                self._send(self._seq, activity)
            self._release()

    def _release(self) -> None:
        held, self._held = self._held, []
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for seq, activity in held:
            self._send(seq, activity)

    def _send(self, seq: int, activity: Activity) -> None:
        now = time.time_ns()
        for conn in self._connections:
            if conn.key is not None:
                conn.queue.put_nowait(data_message([content(activity, seq, conn.key)], now))
                self.sent += 1

    def drop(self) -> None:
        """Close every connection (after what is already queued to it)."""
        for conn in self._connections:
            conn.queue.put_nowait(_CLOSE)

    async def close(self) -> None:
        """Close every connection now (server shutdown)."""
        self._release()
        for conn in list(self._connections):
            await conn.ws.close()
