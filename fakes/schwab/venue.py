"""The fake venue: orders in, fills out, against the market it has seen; no HTTP here.

It records each order before answering (under a new id, every time: Schwab has no client
order id, so nothing is deduplicated), routes it (ACCEPTED, then WORKING), trades it against
the market as it found it and then against each new tick, and tells the streamer about
every change through `publish` (`activity.py` lists the messages). The server
(`server.py`) is the HTTP shell around it; the record (`record.py`) is the truth it reloads
after a restart.
"""

import logging
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from executors.brokers.paper.matching import NO_PRICE, Tick
from fakes.schwab.activity import Activity, activity
from fakes.schwab.faults import SchwabFaults
from fakes.schwab.instruments import asset_type_of, catalogue_type
from fakes.schwab.matching import LegFill, is_net_priced, match_leg, match_net
from fakes.schwab.orders import (
    FakeFill,
    FakeOrder,
    IllegalTransitionError,
    OrderEvent,
    is_complete,
    legs_filled,
    transition,
)
from fakes.schwab.payloads import ApiError, OrderTerms, bad_request
from fakes.schwab.portfolio import Holding, cash_after, holdings, market_value
from fakes.schwab.record import Record
from fakes.schwab.render import (
    Balances,
    Json,
    LegQuote,
    order_json,
    position_json,
    preview_json,
)
from fakes.schwab.vocab import AssetType, MessageType, Status
from fakes.tastytrade.faults import Fault
from fakes.tastytrade.instruments import Catalogue, Instrument, md_symbol_of
from fakes.tastytrade.market import MarketState
from ticklane import ids

log = logging.getLogger(__name__)

VENUE: Final = "schwab-fake"

Publish = Callable[[Activity], None]
"""Hands an account-activity message to the streamer."""


def not_found(what: str) -> ApiError:
    """The answer for an order id the account does not have."""
    return ApiError(404, f"{what} not found")


class FakeVenue:
    """Orders, fills, positions and balances of the fake's accounts."""

    def __init__(
        self,
        record: Record,
        catalogue: Catalogue,
        faults: SchwabFaults,
        *,
        accounts: Sequence[str],
        starting_cash: int,
        wall_ns: Callable[[], int],
        publish: Publish,
        any_symbol: bool = False,
    ) -> None:
        self.record = record
        self.catalogue = catalogue
        self.market = MarketState()
        self.faults = faults
        self.accounts = tuple(accounts)
        self.starting_cash = starting_cash
        self._wall_ns = wall_ns
        self._publish_activity = publish
        self._any_symbol = any_symbol
        self._working = {o.id: o for o in record.working()}

    # --- orders

    def _instrument(self, symbol: str, asset: AssetType) -> Instrument:
        instrument = self.catalogue.get(symbol)
        if instrument is None and self._any_symbol:
            instrument = Instrument(
                symbol, md_symbol_of(symbol), catalogue_type(asset), description=symbol
            )
            self.catalogue.add(instrument)
        if instrument is None:
            raise bad_request(f"Symbol {symbol!r} is not valid", f"no instrument {symbol!r}")
        actual = asset_type_of(instrument.instrument_type)
        if actual is None:
            kind = instrument.instrument_type.value
            raise bad_request(f"{kind} orders are not supported", f"{symbol}: {kind}")
        if actual is not asset:
            raise bad_request(f"{symbol} is an {actual.value}, not an {asset.value}")
        return instrument

    def _checked(self, terms: OrderTerms) -> list[Instrument]:
        return [self._instrument(leg.symbol, leg.asset_type) for leg in terms.legs]

    def _new_order(
        self, account: str, terms: OrderTerms, instruments: list[Instrument]
    ) -> FakeOrder:
        now = self._wall_ns()
        lag_ns = int(self.faults.settings.list_lag_s * 1e9)
        return FakeOrder(
            id=0,
            account=account,
            order_type=terms.order_type,
            session=terms.session,
            duration=terms.duration,
            strategy=terms.strategy,
            quantity=terms.quantity,
            legs=terms.legs,
            status=Status.ACCEPTED,
            entered_at=now,
            updated_at=now,
            market_ts=max(self.market.now(i.md_symbol) for i in instruments),
            visible_at=now + lag_ns,
            price=terms.price,
            stop_price=terms.stop_price,
        )

    def _quote(self, instrument: Instrument) -> LegQuote:
        ticks = self.market.current(instrument.md_symbol)
        quote = next((t for t in ticks if t.trade_price == NO_PRICE), None)
        trade = next((t for t in ticks if t.trade_price != NO_PRICE), None)
        return LegQuote(
            bid=None if quote is None or quote.bid == NO_PRICE else quote.bid,
            ask=None if quote is None or quote.ask == NO_PRICE else quote.ask,
            last=None if trade is None else trade.trade_price,
            mark=self.market.mark(instrument.md_symbol),
        )

    def _value(self, terms: OrderTerms, instruments: list[Instrument]) -> int:
        """What the order would cost (negative) or bring in, at the market's prices or its own."""
        total = 0
        for leg, instrument in zip(terms.legs, instruments, strict=True):
            price = self.market.mark(instrument.md_symbol) or terms.price or 0
            total -= leg.instruction.sign * price * leg.quantity * instrument.multiplier
        return total

    def preview(self, account: str, terms: OrderTerms) -> Json:
        """A `PreviewOrder` for an order that is checked and priced, never recorded."""
        instruments = self._checked(terms)
        order = self._new_order(account, terms, instruments)
        quotes = [self._quote(i) for i in instruments]
        return preview_json(order, quotes, self._value(terms, instruments), self.cash(account))

    def place(self, account: str, terms: OrderTerms) -> FakeOrder:
        """Record, route and try to fill an order; the order as it was recorded."""
        order = self.record.insert_order(self._new_order(account, terms, self._checked(terms)))
        self._accepted(order)
        return order

    def _accepted(self, order: FakeOrder) -> None:
        if order.visible_at > order.entered_at:
            self.faults.count(Fault.LIST_LAG)
        log.info("order %d entered: %s %s", order.id, order.order_type.value, _legs_text(order))
        self._publish(order, MessageType.ORDER_CREATED)
        working = transition(order, OrderEvent.ROUTE, self._wall_ns())
        self.record.save(working)
        self._working[working.id] = working
        self._publish(working, MessageType.ORDER_ACCEPTED)
        self._match_arriving(working)

    def get(self, account: str, order_id: int) -> FakeOrder:
        """One order of the account, whatever its status (the list lag does not hide it)."""
        order = self.record.order(order_id)
        if order is None or order.account != account:
            raise not_found(f"Order {order_id}")
        return order

    def cancel(self, account: str, order_id: int) -> FakeOrder:
        """Cancel a working order."""
        order = self._step(self.get(account, order_id), OrderEvent.CANCEL)
        self.record.save(order)
        self._working.pop(order.id, None)
        self._publish(order, MessageType.CANCEL_ACCEPTED)
        self._publish(order, MessageType.ORDER_UR_OUT_COMPLETED)
        return order

    def replace(self, account: str, order_id: int, terms: OrderTerms) -> FakeOrder:
        """A new order under a new id takes the old one's place; the old one ends REPLACED."""
        old = self.get(account, order_id)
        self._step(old, OrderEvent.REPLACE)  # checked before anything is written
        instruments = self._checked(terms)
        new = self.record.insert_order(
            msgspec.structs.replace(
                self._new_order(account, terms, instruments), replaces_order_id=old.id
            )
        )
        ended = msgspec.structs.replace(
            self._step(old, OrderEvent.REPLACE), replaced_by_order_id=new.id
        )
        self.record.save(ended)
        self._working.pop(ended.id, None)
        self._publish(ended, MessageType.CHANGE_CREATED)
        self._publish(ended, MessageType.CHANGE_ACCEPTED)
        self._accepted(new)
        return new

    def reject(self, account: str, order_id: int, reason: str) -> FakeOrder:
        """Reject an order after its 201 (a test's lever: rejections can follow acceptance)."""
        order = self._step(self.get(account, order_id), OrderEvent.REJECT)
        order = msgspec.structs.replace(order, status_description=reason)
        self.record.save(order)
        self._working.pop(order.id, None)
        self._publish(order, MessageType.ORDER_UR_OUT_COMPLETED)
        return order

    def _step(self, order: FakeOrder, event: OrderEvent) -> FakeOrder:
        try:
            return transition(order, event, self._wall_ns())
        except IllegalTransitionError as exc:
            raise bad_request(f"Order {order.id} is {order.status.value}", str(exc)) from None

    def visible_orders(self, account: str | None) -> list[FakeOrder]:
        """Orders (of one account or all) that order lists show now (the list lag hides some)."""
        now = self._wall_ns()
        return [o for o in self.record.orders(account) if o.visible_at <= now]

    def order_body(self, order: FakeOrder) -> Json:
        """An `Order` with its executions."""
        return order_json(order, self.record.fills(order_id=order.id), self.catalogue.get)

    def _publish(self, order: FakeOrder, kind: MessageType) -> None:
        self._publish_activity(activity(order, kind, self._wall_ns()))

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
                        current = self._fill(current, [(index, found)])

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
                order = self._fill(order, [(index, found)])

    def _match_net(self, order: FakeOrder) -> None:
        latest = [self.market.current(self._md(leg.symbol)) for leg in order.legs]
        found = match_net(order, latest)
        if found is not None:
            self._fill(order, list(enumerate(found)))

    def _fill(self, order: FakeOrder, found: list[tuple[int, LegFill]]) -> FakeOrder:
        """Fill legs together (one execution); the order after them."""
        before = self.record.fills(order_id=order.id)
        activity_no = 1 + max((f.activity for f in before), default=0)
        now = self._wall_ns()
        new: list[FakeFill] = []
        for index, (tick, price) in found:
            leg = order.legs[index]
            remaining = leg.quantity - legs_filled(order, [*before, *new])[index]
            if remaining <= 0:
                continue
            new.append(
                FakeFill(
                    fill_id=ids.fill_id(VENUE, str(order.id), str(index)),
                    order_id=order.id,
                    account=order.account,
                    leg=index,
                    symbol=leg.symbol,
                    asset_type=leg.asset_type,
                    instruction=leg.instruction,
                    quantity=remaining,
                    price=price,
                    filled_at=tick.ts_event,
                    recorded_at=now,
                    activity=activity_no,
                )
            )
        done = is_complete(order, [*before, *new])
        after = transition(order, OrderEvent.FILL, now) if done else order
        if not new or not self.record.add_fills(new, after):
            return order
        log.info("order %d filled: %s", order.id, _legs_text(order))
        if done:
            self._working.pop(order.id, None)
        else:
            self._working[order.id] = after
        kind = MessageType.ORDER_FILL_COMPLETED if done else MessageType.EXECUTION_CREATED
        self._publish(after, kind)
        return after

    # --- positions and balances

    def _multiplier(self, symbol: str) -> int:
        instrument = self.catalogue.get(symbol)
        return instrument.multiplier if instrument is not None else 1

    def _holdings(self, account: str) -> list[Holding]:
        held = holdings(self.record.fills(account=account), self._multiplier)
        return [h for h in held.values() if h.quantity]

    def _mark(self, h: Holding) -> int:
        return self.market.mark(self._md(h.symbol)) or h.average_open

    def positions(self, account: str) -> list[Json]:
        """`Position`s of the open positions."""
        rows = []
        for h in self._holdings(account):
            asset = asset_type_of(h.instrument_type) or AssetType.EQUITY
            rows.append(position_json(h, asset, self.catalogue.get(h.symbol), self._mark(h)))
        return rows

    def cash(self, account: str) -> int:
        """Cash after every fill."""
        return cash_after(self.starting_cash, self.record.fills(account=account), self._multiplier)

    def balances(self, account: str) -> Balances:
        """Cash and the market value of the open positions."""
        values = [market_value(h, self._mark(h)) for h in self._holdings(account)]
        return Balances(
            start=self.starting_cash,
            cash=self.cash(account),
            long_value=sum(v for v in values if v > 0),
            short_value=sum(v for v in values if v < 0),
        )


def _legs_text(order: FakeOrder) -> str:
    return ", ".join(f"{leg.instruction.value} {leg.quantity} {leg.symbol}" for leg in order.legs)
