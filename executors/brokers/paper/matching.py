"""Fill simulation at tick level: pure functions from an order and a tick to a fill price.

A tick is top of book (a quote) or a trade, with its exchange time. Only ticks strictly after
the order's time (the signal time it answers, `Order.ts_event`) can fill it, so the price is a
function of the market data alone and a replay, a restart or a slow executor fill the same
order at the same price.

- market: buys at the ask of a quote, or at a trade whose aggressor bought (or is unknown);
  sells at the bid, or at a trade whose aggressor sold; plus slippage against the order.
- limit: fills at the executable price (ask or trade for a buy) once it is at or better than
  the limit; never worse than the limit, and no slippage.
- stop: triggers once the executable price reaches the stop (buy: at or above), then fills as
  a market order on that tick; stop-limit then applies its limit on the same tick.

The whole quantity fills on one tick: the simulation has no size or queue model.
"""

from typing import Final

import msgspec

from ticklane.market import BookSide, Quote, Trade
from ticklane.trading import Order, OrderType, Side
from ticklane.units import UNDEF_PRICE

NO_PRICE: Final = UNDEF_PRICE


class Tick(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One market event for a symbol: a quote (bid/ask) or a trade (price and aggressor)."""

    ts_event: int
    bid: int = NO_PRICE
    ask: int = NO_PRICE
    trade_price: int = NO_PRICE
    aggressor: BookSide = BookSide.NONE


def tick_from_quote(quote: Quote) -> Tick:
    """A quote tick from a top-of-book record."""
    return Tick(quote.ts_event, bid=quote.bid_px, ask=quote.ask_px)


def tick_from_trade(trade: Trade) -> Tick:
    """A trade tick."""
    return Tick(trade.ts_event, trade_price=trade.price, aggressor=trade.side)


def executable_price(side: Side, tick: Tick) -> int | None:
    """The price an order on `side` could trade at on this tick, or None."""
    if tick.trade_price != NO_PRICE:
        wanted = BookSide.BID if side is Side.BUY else BookSide.ASK
        return tick.trade_price if tick.aggressor in {wanted, BookSide.NONE} else None
    price = tick.ask if side is Side.BUY else tick.bid
    return None if price == NO_PRICE else price


def _with_slippage(side: Side, price: int, slippage: int) -> int:
    return price + slippage if side is Side.BUY else price - slippage


def _reaches(side: Side, price: int, level: int) -> bool:
    """Whether `price` is at or beyond `level` in the direction a buy (up) or sell (down) pays."""
    return price >= level if side is Side.BUY else price <= level


def _within_limit(side: Side, price: int, limit: int) -> bool:
    return price <= limit if side is Side.BUY else price >= limit


def fill_price(order: Order, tick: Tick, slippage: int = 0) -> int | None:
    """The price this tick fills the whole order at, or None if it does not fill it."""
    if tick.ts_event <= order.ts_event:
        return None
    price = executable_price(order.side, tick)
    if price is None:
        return None
    if order.order_type in _STOPS and not _reaches(
        order.side, price, _required(order.stop_price, "stop")
    ):
        return None
    if order.order_type in _LIMITS:
        limit = _required(order.limit_price, "limit")
        return price if _within_limit(order.side, price, limit) else None
    return _with_slippage(order.side, price, slippage)


_STOPS: Final = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_LIMITS: Final = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})


def _required(price: int | None, what: str) -> int:
    if price is None:
        raise ValueError(f"a {what} order needs a {what} price")
    return price


def first_fill(order: Order, ticks: list[Tick], slippage: int = 0) -> tuple[Tick, int] | None:
    """The first tick (in order) that fills the order, and its price."""
    for tick in ticks:
        price = fill_price(order, tick, slippage)
        if price is not None:
            return tick, price
    return None
