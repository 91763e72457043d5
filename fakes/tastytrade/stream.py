"""The account streamer: the websocket the SDK's `AlertStreamer` connects to.

Protocol (as the SDK speaks it): the client sends `{"auth-token": "Bearer <access>",
"action": "connect", "value": [accounts], "request-id": n, "source": ...}`; the fake answers
`{"status": "ok", "action": "connect", "value": [...], "request-id": n,
"web-socket-session-id": ...}`, or `"status": "error"` with a `message`. Every later action
(`heartbeat`, the watchlist and quote-alert subscriptions) is answered the same way, and
`connect-not-completed` before a connect. Notifications are `{"type": "Order", "data": {...},
"timestamp": ms}` for each subscribed account.

Each connection has its own queue and writer task, so notifications leave in the order the
venue made them unless a fault says otherwise (`faults.py`: drop, duplicate, reorder).
"""

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from fakes.tastytrade.faults import Fault, FaultBook

log = logging.getLogger(__name__)

_CLOSE: Final = object()
"""Queue sentinel: close this connection after what is queued before it."""


class _Connection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.accounts: set[str] = set()
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    async def write(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _CLOSE:
                await self.ws.close()
                return
            await self.ws.send_str(str(item))


class AccountStreamer:
    """Open account-streamer connections and the notifications sent to them."""

    def __init__(
        self, faults: FaultBook, authorized: Callable[[str | None], bool], accounts: tuple[str, ...]
    ) -> None:
        self._faults = faults
        self._authorized = authorized
        self._accounts = accounts
        self._connections: set[_Connection] = set()
        self._held: list[tuple[str, str]] = []
        self._flush: asyncio.TimerHandle | None = None
        self.connects = 0
        self.sent = 0

    @property
    def open(self) -> int:
        """Connections subscribed to at least one account."""
        return sum(1 for c in self._connections if c.accounts)

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
            message: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            return
        action = str(message.get("action", ""))
        reply: dict[str, Any] = {"action": action, "request-id": message.get("request-id")}
        if action == "connect":
            reply |= self._connect(conn, message)
        elif not conn.accounts:
            reply |= {"status": "error", "message": "connect-not-completed"}
        elif not self._authorized(message.get("auth-token")):
            reply |= {"status": "error", "message": "invalid auth token"}
        else:
            reply |= {"status": "ok"}
        conn.queue.put_nowait(json.dumps(reply))

    def _connect(self, conn: _Connection, message: dict[str, Any]) -> dict[str, Any]:
        if not self._authorized(message.get("auth-token")):
            return {"status": "error", "message": "invalid auth token"}
        wanted = message.get("value") or []
        accounts = [a for a in wanted if a in self._accounts] if isinstance(wanted, list) else []
        if not accounts:
            return {"status": "error", "message": "no such account"}
        conn.accounts.update(accounts)
        self.connects += 1
        return {
            "status": "ok",
            "value": accounts,
            "web-socket-session-id": secrets.token_hex(8),
        }

    def publish(self, account: str, kind: str, data: dict[str, Any], is_fill: bool) -> None:
        """Send a notification to every connection subscribed to `account` (faults permitting)."""
        if self._faults.take(Fault.DROP_STREAM):
            log.info("fault: dropping %d account stream(s)", len(self._connections))
            self.drop()
            return
        text = json.dumps({"type": kind, "data": data, "timestamp": time.time_ns() // 1_000_000})
        holdable = kind == "Order" and not is_fill and not self._held
        if holdable and self._faults.take(Fault.REORDER_FILLS):
            # Held until the next fill has gone out: the client sees the fill first and this
            # older status after it, as a late redelivery would show it.
            self._held.append((account, text))
            hold_s = self._faults.settings.reorder_hold_s
            self._flush = asyncio.get_running_loop().call_later(hold_s, self._release)
            return
        self._send(account, text)
        if is_fill:
            if self._faults.take(Fault.DUPLICATE_FILLS):
                self._send(account, text)
            self._release()

    def _release(self) -> None:
        held, self._held = self._held, []
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for account, text in held:
            self._send(account, text)

    def _send(self, account: str, text: str) -> None:
        for conn in self._connections:
            if account in conn.accounts:
                conn.queue.put_nowait(text)
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
