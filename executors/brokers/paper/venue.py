"""The paper broker: the `Broker` interface over the venue store, the market feed and matching.

Submit records the order in the venue's own store (idempotent on client order id), filled
on arrival if the ticks already seen after its signal time reach it (then written once, as
filled, with its fill); later ticks fill the working orders as they arrive (`pump`). Every
fill is written to the venue store before the executor can see it: pushed, as a real venue's
stream would (`updates`: the order's status and the fill, naming the venue's order id), and
by cursor (`fills_since`, the fallback).
After a restart the venue reloads its working orders and reads the market data again, so
they fill at the same ticks as they would have.

Fault injection (`lose_answer_every`): the venue records the order (and may fill it) but the
call raises `AmbiguousAnswerError`, as a timeout after the venue acted would; `answer_delay_ms`
holds every answer back after the venue has acted (a slow link), which widens the window in
which a crash leaves the executor not knowing.
"""

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from executors.brokers.base import (
    AmbiguousAnswerError,
    BrokerError,
    TradingPermit,
    VenueFill,
    VenueOrder,
    VenueStatus,
    VenueUpdate,
)
from executors.brokers.paper.feed import TickBuffer
from executors.brokers.paper.matching import Tick, first_fill
from executors.brokers.paper.store import VenueRecord, VenueStore, filled, received
from executors.netting import BrokerCaps
from ticklane import ids
from ticklane.trading import Fill, Order

log = logging.getLogger(__name__)

VENUE: Final = "paper"


class PaperBroker:
    """A simulated venue with tick-level fills and its own durable record."""

    name = VENUE

    def __init__(
        self,
        store: VenueStore,
        *,
        poll_market: Callable[[Callable[[str, list[Tick]], None]], int] | None = None,
        close_market: Callable[[], None] | None = None,
        reverse_in_one_order: bool = True,
        fee_per_unit: int = 0,
        slippage: int = 0,
        tick_buffer: int = 100_000,
        lose_answer_every: int = 0,
        answer_delay_ms: int = 0,
    ) -> None:
        self.caps = BrokerCaps(can_reverse_in_one_order=reverse_in_one_order)
        self.store = store
        self._poll_market = poll_market
        self._close_market = close_market
        self._fee_per_unit = fee_per_unit
        self._slippage = slippage
        self._tick_buffer = tick_buffer
        self._lose_every = lose_answer_every
        self._answer_delay_s = answer_delay_ms / 1000
        self._submits = 0
        self._buffers: dict[str, TickBuffer] = {}
        self._working: dict[str, dict[str, VenueRecord]] = {}
        self._pushed: list[VenueUpdate] = []
        for record in store.orders(working_only=True):
            self._working.setdefault(record.symbol, {})[record.client_order_id] = record

    # --- Broker interface

    def caps_for(self, symbol: str) -> BrokerCaps:
        """The same for every symbol: `reverse_in_one_order` as configured."""
        return self.caps

    def trading_state(self) -> TradingPermit:
        """Always everything."""
        return TradingPermit()

    def tick_size(self, symbol: str, price: int) -> int | None:
        """Not known here (the venue reads no definitions): `executor.tick_sizes` says."""
        return None

    def submit(self, order: Order) -> VenueOrder:
        """Record the order (or find it) and try to fill it; fault injection may lose the answer."""
        if order.legs:
            # Its matching fills one symbol at a time against that symbol's ticks; a
            # combination needs every leg's book at once. Refused before anything is recorded.
            raise BrokerError(
                "the paper venue does not fill multi-leg orders; trade combinations at "
                "TastyTrade or Schwab (or their local fakes)"
            )
        venue_order_id = ids.deterministic_id("pv", order.client_order_id)
        arrived = received(order, venue_order_id, time.time_ns())
        fill = self._fill_on_arrival(arrived)
        record, duplicate = self.store.receive(arrived if fill is None else filled(arrived), fill)
        if duplicate:
            log.warning("paper venue: duplicate submit of %s refused", order.client_order_id)
        elif fill is None:
            self._pushed.append(record.as_venue_order())
            self._working.setdefault(record.symbol, {})[record.client_order_id] = record
        else:
            # Accepted, then filled at once: the stream says both, as a venue's would.
            self._pushed += [arrived.as_venue_order(), *self._filled_updates(record, fill)]
        self._submits += 1
        if self._answer_delay_s:
            time.sleep(self._answer_delay_s)  # the simulated link: the venue has acted, we wait
        if self._lose_every and self._submits % self._lose_every == 0:
            raise AmbiguousAnswerError(f"paper venue: answer to {order.client_order_id} lost")
        return record.as_venue_order()

    def submit_all(self, orders: Sequence[Order]) -> list[VenueOrder | BrokerError]:
        """Many orders received at once: one write to the venue's record for all of them."""
        outcomes: list[VenueOrder | BrokerError] = []
        with self.store.batch():
            for order in orders:
                try:
                    outcomes.append(self.submit(order))
                except BrokerError as exc:
                    outcomes.append(exc)
        return outcomes

    def cancel(self, client_order_id: str) -> VenueOrder | None:
        """Cancel a working order; a finished one is returned as it is."""
        record = self.store.get(client_order_id)
        if record is None:
            return None
        working = self._working.get(record.symbol, {})
        if client_order_id in working:
            del working[client_order_id]
            self.store.set_status(client_order_id, VenueStatus.CANCELLED, "cancelled by client")
            record = self.store.get(client_order_id) or record
            self._pushed.append(record.as_venue_order())
        return record.as_venue_order()

    def lookup(self, client_order_id: str) -> VenueOrder | None:
        """The venue's record of an order."""
        record = self.store.get(client_order_id)
        return None if record is None else record.as_venue_order()

    def open_orders(self) -> list[VenueOrder]:
        """Working orders."""
        return [r.as_venue_order() for r in self.store.orders(working_only=True)]

    def fills_since(self, cursor: int) -> list[VenueFill]:
        """Fills after a cursor (the venue's fill sequence number)."""
        return [VenueFill(f.seq, f.as_fill()) for f in self.store.fills(cursor)]

    def updates(self) -> list[VenueUpdate]:
        """Statuses and fills since the last call, as a stream would push them."""
        pushed, self._pushed = self._pushed, []
        return pushed

    def positions(self) -> dict[str, int]:
        """Net position per symbol from the venue's fills."""
        return {s: q for s, q in self.store.positions().items() if q}

    def pump(self) -> None:
        """Read the market data available now and fill what it triggers."""
        if self._poll_market is not None:
            with self.store.batch():  # the fills the ticks trigger: one commit for all
                self._poll_market(self.on_ticks)

    def close(self) -> None:
        """Close the feed and the store."""
        if self._close_market is not None:
            self._close_market()
        self.store.close()

    # --- market data

    def on_ticks(self, symbol: str, ticks: list[Tick]) -> None:
        """New ticks for a symbol, in time order: buffer them and fill the orders they trigger."""
        buffer = self._buffers.get(symbol)
        if buffer is None:
            buffer = self._buffers[symbol] = TickBuffer(self._tick_buffer)
        buffer.extend(ticks)
        for record in list(self._working.get(symbol, {}).values()):
            self._match(record, ticks)

    def _fill_on_arrival(self, record: VenueRecord) -> Fill | None:
        """The fill of a new order at the ticks already seen after its time, if one reaches it."""
        buffer = self._buffers.get(record.symbol)
        return None if buffer is None else self._fill_at(record, buffer.after(record.ts_event))

    def _match(self, record: VenueRecord, ticks: list[Tick]) -> None:
        """Fill a working order at the first of `ticks` that reaches it, if one does."""
        fill = self._fill_at(record, ticks)
        if fill is None:
            return
        self.store.record_fill(fill, VenueStatus.FILLED)
        del self._working[record.symbol][record.client_order_id]
        self._pushed += self._filled_updates(filled(record), fill)

    def _filled_updates(self, record: VenueRecord, fill: Fill) -> list[VenueUpdate]:
        """What the stream pushes for a fill: the fill, naming the venue's order id (the
        client order id comes with the status), then the order's filled status."""
        return [msgspec.structs.replace(fill, client_order_id=""), record.as_venue_order()]

    def _fill_at(self, record: VenueRecord, ticks: list[Tick]) -> Fill | None:
        """The fill of what an order has left at the first of `ticks` that reaches it."""
        found = first_fill(record.as_order(), ticks, self._slippage)
        if found is None:
            return None
        tick, price = found
        quantity = record.quantity - record.filled_quantity
        return Fill(
            fill_id=ids.fill_id(VENUE, record.venue_order_id, str(record.filled_quantity)),
            client_order_id=record.client_order_id,
            venue_order_id=record.venue_order_id,
            symbol=record.symbol,
            side=record.side,
            quantity=quantity,
            price=price,
            ts_event=tick.ts_event,
            fee=self._fee_per_unit * quantity,
        )
