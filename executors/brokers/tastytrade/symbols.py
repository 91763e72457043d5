"""Symbols between Databento and TastyTrade, taken from the API's instrument answers.

ticklane names an instrument by its Databento raw symbol (`ESU4`, `AAPL`, the OSI option
`SPXW  261124C05900000`, the CME option `ESM4 P5230`). TastyTrade names futures `/ESU4`, equity
options by their padded OCC symbol and options on futures `./ESM4 ESM4  240621P5230` (future,
option contract, expiry, right, strike). Nothing here builds a venue symbol by hand: the kind of
a symbol is read from its shape only to choose which instrument endpoint to ask, and the venue
symbol, tick sizes and multiplier come from the answer (brokers.md: the SDKs' own symbol helpers
have known bugs). A CME option's parts (contract, right, strike) are read only to find it in its
future's option chain.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Final

import msgspec
from tastytrade import Session
from tastytrade.instruments import (
    Equity,
    Future,
    NestedFutureOptionChain,
    NestedFutureOptionChainExpiration,
    NestedOptionChain,
    Option,
    Strike,
    TickSize,
)
from tastytrade.order import InstrumentType

from ticklane.units import decimal_to_price

_OSI: Final = re.compile(r"^[A-Z0-9.]{1,6} *\d{6}[CP]\d{8}$")
"""An OPRA option as Databento names it: root padded to 6, yymmdd, C/P, strike x 1000."""
_FUTURE: Final = re.compile(r"^[A-Z0-9]{1,5}[FGHJKMNQUVXZ]\d{1,2}$")
"""A CME outright as Databento names it: product code, month code, one or two year digits."""
_FUTURE_OPTION: Final = re.compile(r"^(\S+) ([CP])(\d+(?:\.\d+)?)$")
"""A CME option as Databento names it (`ESM4 P5230`): its contract, right and strike."""


class SymbolError(ValueError):
    """A symbol TastyTrade cannot trade, or that the adapter does not map yet."""


class FutureOptionSymbol(msgspec.Struct, frozen=True):
    """The parts of a Databento CME option symbol, to search a futures option chain with.

    `contract` is CME's code of the option's series: for the quarterly options on a future it
    is the future's own symbol (`ESM4`), for weeklies their own (`EW4M4`).
    """

    contract: str
    right: str
    """`C` or `P`."""
    strike: Decimal


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


def parse_future_option(symbol: str) -> FutureOptionSymbol:
    """A Databento CME option symbol's parts; `SymbolError` if it is not one."""
    found = _FUTURE_OPTION.match(symbol)
    if found is None:
        raise SymbolError(f"{symbol!r} is not a CME option symbol like 'ESM4 P5230'")
    contract, right, strike = found.groups()
    return FutureOptionSymbol(contract, right, Decimal(strike))


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
        return await _future_option(session, symbol)
    equity = await Equity.get(session, symbol)
    return Instrument(symbol, equity.symbol, kind, bands(equity.tick_sizes))


async def _future_option(session: Session, symbol: str) -> Instrument:
    """A CME option, found in its future's option chain: the venue symbol and the tick sizes
    are the chain's. The future is asked first: its answer names the product whose chain to
    read (`ES`) and the future as the chain names it (`/ESM4`).

    Several expirations on one future can list the same strike (ES quarterlies and the EW3
    weeklies expire the same day); the option whose contract is Databento's is the one, then
    the one expiring with the future. Anything still ambiguous is refused, never guessed.
    """
    wanted = parse_future_option(symbol)
    future = await Future.get(session, wanted.contract)
    chain = await NestedFutureOptionChain.get(session, future.product_code)
    found = [
        (expiration, strike)
        for subchain in chain.option_chains
        for expiration in subchain.expirations
        if expiration.underlying_symbol == future.symbol
        for strike in expiration.strikes
        if strike.strike_price == wanted.strike
    ]
    if not found:
        right = "call" if wanted.right == "C" else "put"
        raise SymbolError(
            f"{symbol}: TastyTrade's option chain of {future.symbol} has no {right} at strike "
            f"{wanted.strike}"
        )
    preferences: list[Callable[[NestedFutureOptionChainExpiration], bool]] = [
        lambda e: e.option_contract_symbol == wanted.contract,
        lambda e: e.expiration_date == future.expiration_date,
    ]
    for prefer in preferences:
        narrowed = [(e, k) for e, k in found if prefer(e)]
        if len(found) > 1 and narrowed:
            found = narrowed
    if len(found) > 1:
        listed = ", ".join(_venue_symbol(k, wanted.right) for _, k in found)
        raise SymbolError(f"{symbol}: several options at TastyTrade match it ({listed})")
    [(expiration, strike)] = found
    return Instrument(
        symbol,
        _venue_symbol(strike, wanted.right),
        InstrumentType.FUTURE_OPTION,
        bands(expiration.tick_sizes),
    )


def _venue_symbol(strike: Strike, right: str) -> str:
    return strike.call if right == "C" else strike.put
