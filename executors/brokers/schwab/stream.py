"""The streamer's account activity: which orders changed, reconnecting forever.

schwab-py's `StreamClient` neither reconnects nor heartbeats, so this loop does: on any
error it waits (0.5 s, doubling to 30 s) and logs in again with a new `StreamClient`. An
activity message says little (Schwab documents neither its types nor its data): only its
`SchwabOrderID` is used, and the order itself is read by REST (`on_order`). A stream that was
down missed whatever happened meanwhile, so after every (re)connect `catch_up` reads the
day's orders by REST; repeats are harmless downstream (fills count once by id).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from schwab.streaming import StreamClient  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 30.0
CLOSE_S: Final = 2.0


def order_ids(message: dict[str, Any]) -> list[str]:
    """The `SchwabOrderID`s an ACCT_ACTIVITY message names, in order (pure)."""
    found: list[str] = []
    for entry in message.get("content") or []:
        raw = entry.get("MESSAGE_DATA")
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("SchwabOrderID"):
            found.append(str(data["SchwabOrderID"]))
    return found


async def stream_activity(
    client: Any,
    on_order: Callable[[str], Awaitable[None]],
    catch_up: Callable[[], Awaitable[None]],
    on_state: Callable[[bool], None] = lambda connected: None,
) -> None:
    """Call `on_order(venue_order_id)` for every order the activity names, until cancelled."""
    backoff = FIRST_BACKOFF_S
    changed: list[str] = []

    def collect(message: dict[str, Any]) -> None:
        changed.extend(order_ids(message))

    while True:
        stream = StreamClient(client)
        changed.clear()
        try:
            await stream.login()
            stream.add_account_activity_handler(collect)
            await stream.account_activity_sub()
            on_state(True)
            backoff = FIRST_BACKOFF_S
            await catch_up()
            while True:
                await stream.handle_message()
                while changed:
                    await on_order(changed.pop(0))
        except asyncio.CancelledError:
            await _close(stream)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the stream: reconnect
            on_state(False)
            await _close(stream)
            # The type only: a websocket error may quote the login request, token included.
            log.warning(
                "schwab account activity down (%s); reconnecting in %.1fs",
                type(exc).__name__,
                backoff,
            )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)


async def _close(stream: StreamClient) -> None:
    """Close the stream's websocket (schwab-py has no close but `logout`, which needs an
    answer a broken connection cannot give)."""
    socket = getattr(stream, "_socket", None)
    if socket is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(socket.close(), CLOSE_S)
