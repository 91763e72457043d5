"""The fake venue: orders in, fills out, against the market it has seen; no HTTP here.

It records each order before answering, routes it (Received, then Live), trades it against
the market as it found it and then against each new tick, and tells the account streamer
about every status change and fill through `notify`. The server (`server.py`) is the HTTP
shell around it; the record (`record.py`) is the truth it reloads after a restart.
"""

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from executors.brokers.paper.matching import Tick
from fakes.tastytrade.faults import Fault, FaultBook
from fakes.tastytrade.instruments import Catalogue, Instrument, md_symbol_of
from fakes.tastytrade.market import MarketState
from fakes.tastytrade.matching import LegFill, is_net_priced, match_leg, match_net
from fakes.tastytrade.order_lists import new_york_date
from fakes.tastytrade.orders import (
    FakeFill,
    FakeOrder,
    IllegalTransitionError,
    OrderEvent,
    is_complete,
    legs_filled,
    transition,
)
from fakes.tastytrade.payloads import ApiError, OrderTerms, validation_error
from fakes.tastytrade.portfolio import Holding, cash_after, holdings, market_value
from fakes.tastytrade.record import Record
from fakes.tastytrade.render import (
    Json,
    balance_json,
    order_json,
    placed_order_response,
    position_json,
    underlying_of,
)
from fakes.tastytrade.vocab import InstrumentType, OrderStatus, OrderType
from ticklane import ids

log = logging.getLogger(__name__)

VENUE: Final = "tastytrade-fake"
_STOPS: Final = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})

Notify = Callable[[str, str, Json, bool], None]
"""`notify(account, type, data, is_fill)`: an account-streamer notification."""


def not_found(what: str) -> ApiError:
    """TastyTrade's answer for an id or symbol it does not have."""
    return ApiError(404, "record_not_found", f"{what} not found")


class FakeVenue:
    """Orders, fills, positions and balances of the fake's accounts."""

    def __init__(
        self,
        record: Record,
        catalogue: Catalogue,
        faults: FaultBook,
        *,
        accounts: Sequence[str],
        starting_cash: int,
        wall_ns: Callable[[], int],
        notify: Notify,
        any_symbol: bool = False,
    ) -> None:
        self.record = record
        self.catalogue = catalogue
        self.market = MarketState()
        self.faults = faults
        self.accounts = tuple(accounts)
        self.starting_cash = starting_cash
        self._wall_ns = wall_ns
        self._notify = notify
        self._any_symbol = any_symbol
        self._working = {o.id: o for o in record.working()}

    # --- orders

    def _instrument(self, symbol: str, kind: InstrumentType) -> Instrument:
        instrument = self.catalogue.get(symbol)
        if instrument is None and self._any_symbol:
            instrument = Instrument(symbol, md_symbol_of(symbol), kind, description=symbol)
            self.catalogue.add(instrument)
        if instrument is None:
            raise ApiError(422, "invalid_symbol", f"unknown symbol {symbol!r}")
        if instrument.instrument_type is not kind:
            raise validation_error(
                f"{symbol} is an {instrument.instrument_type.value}, not an {kind.value}"
            )
        return instrument

    def _checked(self, terms: OrderTerms) -> list[Instrument]:
        if len(terms.legs) > 1 and terms.order_type in _STOPS:
            raise ApiError(422, "unsupported_order_type", "the fake triggers stops on one leg only")
        return [self._instrument(leg.symbol, leg.instrument_type) for leg in terms.legs]

    def _impact(self, terms: OrderTerms, instruments: list[Instrument]) -> int:
        """What the order would cost (negative) or bring in, at its price or the market's."""
        total = 0
        for leg, instrument in zip(terms.legs, instruments, strict=True):
            if instrument.instrument_type is InstrumentType.FUTURE:
                continue  # margined, not paid for
            price = self.market.mark(instrument.md_symbol) or terms.price or 0
            total -= leg.action.sign * price * leg.quantity * instrument.multiplier
        return total

    def _new_order(
        self, account: str, terms: OrderTerms, instruments: list[Instrument]
    ) -> FakeOrder:
        now = self._wall_ns()
        lag_ns = int(self.faults.settings.list_lag_s * 1e9)
        return FakeOrder(
            id=0,
            account=account,
            order_type=terms.order_type,
            time_in_force=terms.time_in_force,
            legs=terms.legs,
            status=OrderStatus.RECEIVED,
            received_at=now,
            updated_at=now,
            market_ts=max(self.market.now(i.md_symbol) for i in instruments),
            visible_at=now + lag_ns,
            external_identifier=terms.external_identifier,
            source=terms.source,
            price=terms.price,
            price_effect=terms.price_effect,
            stop_trigger=terms.stop_trigger,
            gtc_date=terms.gtc_date,
        )

    def dry_run(self, account: str, terms: OrderTerms) -> Json:
        """A `PlacedOrderResponse` for an order that is checked, not recorded."""
        instruments = self._checked(terms)
        order = self._new_order(account, terms, instruments)
        body = order_json(order, [], instruments[0], placed=False)
        return placed_order_response(body, self._impact(terms, instruments), self.cash(account))

    def place(self, account: str, terms: OrderTerms, *, replaces: int | None = None) -> Json:
        """Record, route and try to fill an order; the answer shows it as it was received."""
        instruments = self._checked(terms)
        order = self._new_order(account, terms, instruments)
        order = self.record.insert_order(msgspec.structs.replace(order, replaces_order_id=replaces))
        if order.visible_at > order.received_at:
            self.faults.count(Fault.LIST_LAG)
        log.info("order %d received: %s %s", order.id, order.order_type.value, _legs_text(order))
        received = order_json(order, [], instruments[0])
        self._publish(order)
        self._route(order)
        return placed_order_response(received, self._impact(terms, instruments), self.cash(account))

    def _route(self, order: FakeOrder) -> None:
        live = transition(order, OrderEvent.ROUTE, self._wall_ns())
        self.record.save(live)
        self._working[live.id] = live
        self._publish(live)
        self._match_arriving(live)

    def get(self, account: str, order_id: int) -> FakeOrder:
        """One order of the account, whatever its status (the list lag does not hide it)."""
        order = self.record.order(order_id)
        if order is None or order.account != account:
            raise not_found(f"order {order_id}")
        return order

    def cancel(self, account: str, order_id: int) -> FakeOrder:
        """Cancel a working order."""
        order = self._step(self.get(account, order_id), OrderEvent.CANCEL)
        self.record.save(order)
        self._working.pop(order.id, None)
        self._publish(order)
        return order

    def replace(self, account: str, order_id: int, terms: OrderTerms) -> Json:
        """A new order with the old one's legs takes its place; the old one ends Cancelled."""
        old = self.get(account, order_id)
        self._step(old, OrderEvent.REPLACE)  # checked before anything is written
        answer = self.place(account, terms, replaces=old.id)
        new_id = int(answer["order"]["id"])
        ended = msgspec.structs.replace(
            self._step(old, OrderEvent.REPLACE), replacing_order_id=new_id
        )
        self.record.save(ended)
        self._working.pop(ended.id, None)
        self._publish(ended)
        return self.order_body(self.get(account, new_id))

    def reject(self, account: str, order_id: int, reason: str) -> FakeOrder:
        """Reject an order after it was accepted (a test's lever: rejections can follow a 201)."""
        order = self._step(self.get(account, order_id), OrderEvent.REJECT)
        order = msgspec.structs.replace(order, reject_reason=reason)
        self.record.save(order)
        self._working.pop(order.id, None)
        self._publish(order)
        return order

    def _step(self, order: FakeOrder, event: OrderEvent) -> FakeOrder:
        try:
            return transition(order, event, self._wall_ns())
        except IllegalTransitionError as exc:
            raise ApiError(422, "invalid_order_state", str(exc)) from None

    def visible_orders(self, account: str) -> list[FakeOrder]:
        """The account's orders that order lists show now (the list lag hides the newest)."""
        now = self._wall_ns()
        return [o for o in self.record.orders(account) if o.visible_at <= now]

    def order_body(self, order: FakeOrder) -> Json:
        """A `PlacedOrder` body with its fills."""
        first = self.catalogue.get(order.legs[0].symbol)
        return order_json(order, self.record.fills(order_id=order.id), first)

    def _publish(self, order: FakeOrder, *, is_fill: bool = False) -> None:
        self._notify(order.account, "Order", self.order_body(order), is_fill)

    # --- market data and fills

    def on_ticks(self, md_symbol: str, ticks: list[Tick]) -> None:
        """New ticks of one symbol, in time order: fill the working orders they trigger."""
        self.market.update(md_symbol, ticks)
        for order in list(self._working.values()):
            symbols = [self._md(leg.symbol) for leg in order.legs]
            if md_symbol not in symbols:
                continue
            if is_net_priced(order):
                self._match_net(order)
                continue
            current = order
            for index, symbol in enumerate(symbols):
                if symbol == md_symbol:
                    found = match_leg(current, index, symbol, ticks)
                    if found is not None:
                        current = self._fill(current, index, found)

    def _md(self, symbol: str) -> str:
        instrument = self.catalogue.get(symbol)
        return instrument.md_symbol if instrument is not None else md_symbol_of(symbol)

    def _match_arriving(self, order: FakeOrder) -> None:
        if is_net_priced(order):
            self._match_net(order)
            return
        for index, leg in enumerate(order.legs):
            symbol = self._md(leg.symbol)
            found = match_leg(order, index, symbol, self.market.current(symbol), arriving=True)
            if found is not None:
                order = self._fill(order, index, found)

    def _match_net(self, order: FakeOrder) -> None:
        latest = [self.market.current(self._md(leg.symbol)) for leg in order.legs]
        found = match_net(order, latest)
        for index, leg_fill in enumerate(found or []):
            order = self._fill(order, index, leg_fill)

    def _fill(self, order: FakeOrder, index: int, found: LegFill) -> FakeOrder:
        tick, price = found
        leg = order.legs[index]
        fills = self.record.fills(order_id=order.id)
        remaining = leg.quantity - legs_filled(order, fills)[index]
        if remaining <= 0:
            return order
        fill = FakeFill(
            fill_id=ids.fill_id(VENUE, str(order.id), str(index)),
            order_id=order.id,
            account=order.account,
            leg=index,
            symbol=leg.symbol,
            instrument_type=leg.instrument_type,
            action=leg.action,
            quantity=remaining,
            price=price,
            filled_at=tick.ts_event,
            recorded_at=self._wall_ns(),
        )
        done = is_complete(order, [*fills, fill])
        after = transition(order, OrderEvent.FILL, fill.recorded_at) if done else order
        if self.record.add_fill(fill, after) is None:
            return order
        log.info("order %d leg %d filled: %d %s", order.id, index, remaining, leg.symbol)
        if done:
            self._working.pop(order.id, None)
        else:
            self._working[order.id] = after
        self._publish(after, is_fill=True)
        self._notify(
            order.account, "CurrentPosition", self._position(order.account, leg.symbol), False
        )
        return after

    # --- positions and balances

    def _multiplier(self, symbol: str) -> int:
        instrument = self.catalogue.get(symbol)
        return instrument.multiplier if instrument is not None else 1

    def _holdings(self, account: str) -> dict[str, Holding]:
        return holdings(self.record.fills(account=account), self._multiplier)

    def _mark(self, h: Holding) -> int:
        return self.market.mark(self._md(h.symbol)) or h.average_open

    def _position_json(self, account: str, h: Holding) -> Json:
        underlying, _ = underlying_of(self.catalogue.get(h.symbol), h.symbol)
        return position_json(account, h, underlying, self._mark(h))

    def _position(self, account: str, symbol: str) -> Json:
        return self._position_json(account, self._holdings(account)[symbol])

    def positions(self, account: str) -> list[Json]:
        """`CurrentPosition`s of the open positions."""
        return [
            self._position_json(account, h) for h in self._holdings(account).values() if h.quantity
        ]

    def cash(self, account: str) -> int:
        """Cash after every fill."""
        fills = self.record.fills(account=account)
        return cash_after(
            self.starting_cash, fills, holdings(fills, self._multiplier), self._multiplier
        )

    def balance(self, account: str) -> Json:
        """An `AccountBalance`."""
        held = self._holdings(account)
        values = [market_value(h, self._mark(h)) for h in held.values() if h.quantity]
        cash = self.cash(account)
        longs = sum(v for v in values if v > 0)
        return balance_json(account, cash, longs, cash + sum(values), self._wall_ns())

    def today(self) -> dt.date:
        """The wall clock's New York date: the trading day, for days-to-expiration."""
        return new_york_date(self._wall_ns())

    def underlying_symbol(self, order: FakeOrder) -> str:
        """An order's `underlying-symbol`, from its first leg."""
        first = order.legs[0].symbol
        return underlying_of(self.catalogue.get(first), first)[0]


def _legs_text(order: FakeOrder) -> str:
    return ", ".join(f"{leg.action.value} {leg.quantity} {leg.symbol}" for leg in order.legs)
