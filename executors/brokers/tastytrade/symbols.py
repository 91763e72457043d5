"""Symbols between Databento and TastyTrade, taken from the API's instrument answers.

ticklane names an instrument by its Databento raw symbol (`ESU4`, `AAPL`, the OSI option
`SPXW  261124C05900000`). TastyTrade names futures `/ESU4` and options by their padded OCC
symbol. Nothing here builds a venue symbol by hand: the kind of a symbol is read from its shape
only to choose which instrument endpoint to ask, and the venue symbol, tick sizes and
multiplier come from the answer (brokers.md: the SDKs' own symbol helpers have known bugs).
"""

import re
from decimal import Decimal
from typing import Final

import msgspec
from tastytrade import Session
from tastytrade.instruments import Equity, Future, NestedOptionChain, Option, TickSize
from tastytrade.order import InstrumentType

from ticklane.units import decimal_to_price

_OSI: Final = re.compile(r"^[A-Z0-9.]{1,6} *\d{6}[CP]\d{8}$")
"""An OPRA option as Databento names it: root padded to 6, yymmdd, C/P, strike x 1000."""
_FUTURE: Final = re.compile(r"^[A-Z0-9]{1,5}[FGHJKMNQUVXZ]\d{1,2}$")
"""A CME outright as Databento names it: product code, month code, one or two year digits."""
_FUTURE_OPTION: Final = re.compile(r"^\S+ [CP]\d+$")
"""A CME option as Databento names it (`ESM4 P5230`)."""


class SymbolError(ValueError):
    """A symbol TastyTrade cannot trade, or that the adapter does not map yet."""


class Tick(msgspec.Struct, frozen=True, array_like=True):
    """One tick-size band: `size` applies below `below` (None: at any higher price)."""

    size: int
    below: int | None = None


class Instrument(msgspec.Struct, frozen=True):
    """A tradable instrument as ticklane and TastyTrade both know it."""

    symbol: str
    """ticklane's name (Databento raw symbol)."""
    venue_symbol: str
    """TastyTrade's name, as its instrument endpoint answered."""
    kind: InstrumentType
    ticks: tuple[Tick, ...]

    def tick_at(self, price: int) -> int:
        """The tick size (1e-9 units) that applies at `price`."""
        for band in self.ticks:
            if band.below is None or abs(price) < band.below:
                return band.size
        return self.ticks[-1].size


def kind_of(symbol: str) -> InstrumentType:
    """Which instrument endpoint to ask for a Databento symbol (its shape says which)."""
    if _OSI.match(symbol):
        return InstrumentType.EQUITY_OPTION
    if _FUTURE.match(symbol):
        return InstrumentType.FUTURE
    if _FUTURE_OPTION.match(symbol):
        return InstrumentType.FUTURE_OPTION
    return InstrumentType.EQUITY


def bands(ticks: list[TickSize] | None, fallback: Decimal | None = None) -> tuple[Tick, ...]:
    """Tick-size bands from an instrument answer, lowest threshold first."""
    found = [
        Tick(
            decimal_to_price(t.value),
            None if t.threshold is None else decimal_to_price(t.threshold),
        )
        for t in ticks or []
    ]
    found.sort(key=lambda b: (b.below is None, b.below or 0))
    if not found and fallback is not None:
        found = [Tick(decimal_to_price(fallback))]
    if not found:
        raise SymbolError("the venue's instrument answer gives no tick size")
    return tuple(found)


def kinds_to_try(symbol: str) -> tuple[InstrumentType, ...]:
    """Endpoints to ask, most likely first: a symbol's shape says which is likely, not which
    is true (a synthetic or unusual future looks like a stock), so a "not found" from one
    endpoint moves on to the next."""
    first = kind_of(symbol)
    if first in (InstrumentType.EQUITY, InstrumentType.FUTURE):
        other = InstrumentType.FUTURE if first is InstrumentType.EQUITY else InstrumentType.EQUITY
        return (first, other)
    return (first,)


async def resolve(session: Session, symbol: str, kind: InstrumentType) -> Instrument:
    """Ask TastyTrade's `kind` endpoint for the instrument a Databento symbol names."""
    if kind is InstrumentType.FUTURE:
        future = await Future.get(session, symbol)
        return Instrument(symbol, future.symbol, kind, bands(future.tick_sizes, future.tick_size))
    if kind is InstrumentType.EQUITY_OPTION:
        option = await Option.get(session, symbol)
        # Option tick sizes are the chain's (per root: SPX and SPXW differ).
        chains = await NestedOptionChain.get(session, option.underlying_symbol)
        chain = next((c for c in chains if c.root_symbol == option.root_symbol), None)
        if chain is None:
            raise SymbolError(f"{symbol}: no option chain {option.root_symbol} at the venue")
        return Instrument(symbol, option.symbol, kind, bands(chain.tick_sizes))
    if kind is InstrumentType.FUTURE_OPTION:
        raise SymbolError(
            f"{symbol}: options on futures are not mapped to TastyTrade yet (their venue "
            "symbols come from the future's option chain); trade them at another venue"
        )
    equity = await Equity.get(session, symbol)
    return Instrument(symbol, equity.symbol, kind, bands(equity.tick_sizes))
