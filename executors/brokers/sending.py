"""Sending a batch's orders without waiting for each other's answers (issue 18's bursts).

Every symbol's bar closes at the same instant, so a venue adapter is handed many independent
orders at once. Sent one after another, the last waits for every round trip before it; sent
together, the batch takes about one round trip per `SENDS_AT_ONCE` orders. Orders in one
*lane* still go one after another, in the batch's order: an adapter that tells its orders
apart by their send order (Schwab's orders carry no client order id, so two identical ones are
matched to their sends by the order the venue numbered them) gives identical orders one lane.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Final

from executors.brokers.base import BrokerError, VenueOrder
from ticklane.trading import Order

SENDS_AT_ONCE: Final = 8
"""Order requests one adapter has in flight at once. Neither venue publishes a concurrency
limit (Schwab's is per minute, kept by its adapter's throttle); eight keeps a burst to a few
round trips without opening a connection per order."""


def lanes_of(orders: Sequence[Order], lane_of: Callable[[Order], Hashable]) -> list[list[int]]:
    """The orders' indexes grouped by lane, each lane in the batch's order, lanes in the order
    of their first order."""
    grouped: dict[Hashable, list[int]] = {}
    for index, order in enumerate(orders):
        grouped.setdefault(lane_of(order), []).append(index)
    return list(grouped.values())


def rounds(lanes: Sequence[Sequence[int]], at_once: int = SENDS_AT_ONCE) -> int:
    """How many round trips the slowest schedule of these lanes can take: what a wait for the
    whole batch is bounded by, in units of one order's bound."""
    total = sum(len(lane) for lane in lanes)
    longest = max((len(lane) for lane in lanes), default=0)
    return max(longest, math.ceil(total / at_once))


async def send_together(
    orders: Sequence[Order],
    submit: Callable[[Order], Awaitable[VenueOrder]],
    lanes: Sequence[Sequence[int]],
    at_once: int = SENDS_AT_ONCE,
) -> list[VenueOrder | BrokerError]:
    """Each order's answer, or the `BrokerError` it met, in the batch's order. Lanes run side by
    side, at most `at_once` requests in flight; anything else an order raises is raised once
    every lane has finished (the answers the others got are then lost to the caller, which
    resolves them by lookup, as after a crash)."""
    answers: list[VenueOrder | BrokerError | None] = [None] * len(orders)
    gate = asyncio.Semaphore(at_once)

    async def run(lane: Sequence[int]) -> None:
        for index in lane:
            async with gate:
                try:
                    answers[index] = await submit(orders[index])
                except BrokerError as exc:
                    answers[index] = exc

    failures = await asyncio.gather(*(run(lane) for lane in lanes), return_exceptions=True)
    for failure in failures:
        if isinstance(failure, BaseException):
            raise failure
    done = [a for a in answers if a is not None]
    if len(done) != len(orders):
        raise RuntimeError("an order of the batch was left without an answer")
    return done
