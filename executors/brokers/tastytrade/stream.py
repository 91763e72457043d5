"""The account streamer: order updates and fills pushed as they happen, reconnecting forever.

The SDK's `AlertStreamer` (13.x) neither reconnects nor heartbeats, so this loop does: on any
error it waits (0.5 s, doubling to 30 s) and connects again. A stream that was down missed
whatever happened meanwhile, so after every (re)connect the day's orders are read by REST and
pushed too; repeats are harmless downstream (fills count once by id, statuses go through the
order table). Only ticklane's own orders (an `external-identifier` a client order id fills)
are pushed: a trader's orders placed by hand are none of the executor's business.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from tastytrade import Account, AlertStreamer, Session
from tastytrade.order import PlacedOrder

log = logging.getLogger(__name__)

FIRST_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 30.0
OWN_PREFIX: Final = "ord-"
"""Client order ids start with it (`ticklane.ids.client_order_id`)."""


def is_own(placed: PlacedOrder) -> bool:
    """Whether ticklane placed this order (it carries one of its client order ids)."""
    return (placed.external_identifier or "").startswith(OWN_PREFIX)


async def stream_orders(
    session: Session,
    account: Account,
    push: Callable[[PlacedOrder], None],
    catch_up: Callable[[], Awaitable[list[PlacedOrder]]],
    on_state: Callable[[bool], None] = lambda connected: None,
) -> None:
    """Push every update of ticklane's orders, until cancelled; `on_state` says up or down."""
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            async with AlertStreamer(session) as streamer:
                await streamer.subscribe_accounts([account])
                on_state(True)
                backoff = FIRST_BACKOFF_S
                for placed in await catch_up():
                    if is_own(placed):
                        push(placed)
                async for placed in streamer.listen(PlacedOrder):
                    if is_own(placed):
                        push(placed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the stream: reconnect
            on_state(False)
            # The type and message only: the SDK's errors carry no token, but a traceback
            # holds the session, whose repr is not ours to trust.
            log.warning(
                "tastytrade account stream down (%s: %s); reconnecting in %.1fs",
                type(exc).__name__,
                exc,
                backoff,
            )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)
