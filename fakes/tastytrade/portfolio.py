"""Positions and cash from the fills: what `positions` and `balances` report.

Pure. Money is integers at 1e-9 of a dollar: a price (1e-9) times quantity times multiplier.
Futures are marked to market (their price moves cash only through realized P&L); everything
else pays its notional in cash.
"""

from collections.abc import Callable, Iterable

import msgspec

from fakes.tastytrade.orders import FakeFill
from fakes.tastytrade.vocab import InstrumentType


class Holding(msgspec.Struct, frozen=True):
    """A net position in one symbol: signed quantity, average open price, realized P&L."""

    symbol: str
    instrument_type: InstrumentType
    quantity: int
    average_open: int
    realized: int
    multiplier: int
    opened_at: int
    updated_at: int


def _apply(h: Holding, fill: FakeFill) -> Holding:
    """The position after one fill: adds average in, reductions realize, a cross re-opens."""
    signed = fill.action.sign * fill.quantity
    qty, avg, realized = h.quantity, h.average_open, h.realized
    if qty == 0 or (qty > 0) == (signed > 0):
        total = qty + signed
        avg = (avg * abs(qty) + fill.price * abs(signed)) // abs(total)
        qty = total
    else:
        closed = min(abs(qty), abs(signed))
        direction = 1 if qty > 0 else -1
        realized += (fill.price - avg) * closed * direction * h.multiplier
        qty += signed
        if qty == 0:
            avg = 0
        elif (qty > 0) != (direction > 0):
            avg = fill.price  # crossed zero: the rest opened at this fill's price
    return msgspec.structs.replace(
        h, quantity=qty, average_open=avg, realized=realized, updated_at=fill.recorded_at
    )


def holdings(fills: Iterable[FakeFill], multiplier: Callable[[str], int]) -> dict[str, Holding]:
    """Net position per symbol from fills in the order made (closed ones kept, at zero)."""
    book: dict[str, Holding] = {}
    for fill in fills:
        current = book.get(fill.symbol) or Holding(
            fill.symbol,
            fill.instrument_type,
            0,
            0,
            0,
            multiplier(fill.symbol),
            fill.recorded_at,
            fill.recorded_at,
        )
        book[fill.symbol] = _apply(current, fill)
    return book


def cash_after(
    start: int,
    fills: Iterable[FakeFill],
    holdings_: dict[str, Holding],
    multiplier: Callable[[str], int],
) -> int:
    """Cash after paying for (or receiving) every non-future fill and every realized future P&L."""
    cash = start
    for fill in fills:
        if fill.instrument_type is not InstrumentType.FUTURE:
            notional = fill.price * fill.quantity * multiplier(fill.symbol)
            cash -= fill.action.sign * notional
    return cash + sum(
        h.realized for h in holdings_.values() if h.instrument_type is InstrumentType.FUTURE
    )


def market_value(h: Holding, mark: int) -> int:
    """What a position adds to net liquidating value at `mark`."""
    if h.instrument_type is InstrumentType.FUTURE:
        return (mark - h.average_open) * h.quantity * h.multiplier
    return mark * h.quantity * h.multiplier
