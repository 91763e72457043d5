"""Sending a batch's orders together: lanes, the bound on requests in flight, errors per order."""

import asyncio

import pytest

from executors.brokers.base import AmbiguousAnswerError, BrokerError, VenueOrder, VenueStatus
from executors.brokers.sending import lanes_of, rounds, send_together
from ticklane.trading import Order, OrderStatus, OrderType, Side


def order(cid: str, symbol: str = "SPY") -> Order:
    return Order(
        client_order_id=cid,
        signal_id=f"sig-{cid}",
        strategy="s1",
        symbol=symbol,
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.MARKET,
        status=OrderStatus.NEW,
        ts_event=0,
    )


class Venue:
    """Answers each order after yielding to the loop, counting requests in flight."""

    def __init__(self, refuse: dict[str, BrokerError] | None = None) -> None:
        self.refuse = refuse or {}
        self.in_flight = 0
        self.most = 0
        self.sent: list[str] = []

    async def submit(self, order: Order) -> VenueOrder:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self.sent.append(order.client_order_id)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if order.client_order_id in self.refuse:
                raise self.refuse[order.client_order_id]
            return VenueOrder(
                order.client_order_id, f"v-{order.client_order_id}", VenueStatus.ACCEPTED
            )
        finally:
            self.in_flight -= 1


def test_lanes_keep_the_batch_order_within_a_lane():
    batch = [order("a", "SPY"), order("b", "QQQ"), order("c", "SPY"), order("d", "IWM")]
    assert lanes_of(batch, lambda o: o.symbol) == [[0, 2], [1], [3]]


def test_rounds_are_the_longest_lane_or_the_batch_over_the_bound():
    assert rounds([[0], [1], [2]], at_once=2) == 2
    assert rounds([[0, 1, 2, 3], [4]], at_once=8) == 4
    assert rounds([], at_once=8) == 0


def test_answers_come_back_in_batch_order_with_errors_in_their_place():
    refused = BrokerError("no")
    lost = AmbiguousAnswerError("lost")
    venue = Venue({"b": refused, "d": lost})
    batch = [order(c) for c in "abcde"]
    lanes = lanes_of(batch, lambda o: o.client_order_id)
    answers = asyncio.run(send_together(batch, venue.submit, lanes, at_once=3))
    assert [a if isinstance(a, BrokerError) else a.client_order_id for a in answers] == [
        "a",
        refused,
        "c",
        lost,
        "e",
    ]
    assert venue.most == 3


def test_one_lane_goes_one_at_a_time_in_order():
    venue = Venue()
    batch = [order(c) for c in "abc"]
    answers = asyncio.run(send_together(batch, venue.submit, [[0, 1, 2]]))
    assert venue.most == 1
    assert venue.sent == ["a", "b", "c"]
    assert len(answers) == 3


def test_an_unexpected_failure_is_raised_after_every_lane_finished():
    venue = Venue()

    async def submit(order: Order) -> VenueOrder:
        if order.client_order_id == "a":
            raise ValueError("a bug")
        return await venue.submit(order)

    batch = [order(c) for c in "abc"]
    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(send_together(batch, submit, [[0], [1], [2]]))
    assert venue.sent == ["b", "c"]
