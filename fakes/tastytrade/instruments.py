"""The instruments the fake trades: built in, from md.definition, or added by a test.

Pure. Each instrument has its TastyTrade symbol and the Databento raw symbol its market data
is keyed by in md.*: futures are `/ESZ6` at TastyTrade and `ESZ6` in Databento; equities are
plain in both; equity options are the padded OCC symbol in both (`SPXW  261204C05900000`).
Options on futures are `ESM4 P5230` in Databento (CME's option contract, right, strike) and
`./ESM4 ESM4  240621P5230` at TastyTrade (the future, the option contract padded to 6, expiry,
right, strike): the fake, being the venue, makes up its own symbols in TastyTrade's shape; a
client must read them from its chain answers.
"""

import datetime as dt
import re
from typing import Final

import msgspec

from fakes.tastytrade.vocab import InstrumentType
from ticklane.market import InstrumentClass, InstrumentDef
from ticklane.units import (
    PRICE_SCALE,
    UNDEF_PRICE,
    UNDEF_TIMESTAMP,
    decimal_to_price,
    price_to_decimal,
)

OCC: Final = re.compile(r"^([A-Z][A-Z0-9 ]{5})(\d{6})([CP])(\d{8})$")
"""An OCC option symbol: root padded to 6, YYMMDD, C or P, strike in thousandths."""

_FUTURE_OPTION_SYMBOL: Final = re.compile(r"^\./\S+ (\S+) *\d{6}([CP])(\S+)$")
"""The fake's TastyTrade symbol of an option on a future: contract, right and strike."""
MONTH_YEAR: Final = re.compile(r"^(.+?)([FGHJKMNQUVXZ])(\d{1,2})$")
"""A CME contract code: product (`ES`, `EW4`), month code, year digits."""

_CENT: Final = PRICE_SCALE // 100
_NICKEL: Final = PRICE_SCALE // 20
_FIVE: Final = 5 * PRICE_SCALE


class Instrument(msgspec.Struct, frozen=True):
    """One tradable instrument; prices and ticks in 1e-9 units.

    `underlying` is the TastyTrade symbol of an option's underlying; `root` an equity option's
    root (`SPXW`), or a future's or future option's product code (`ES`); `expiration` a UTC
    date or None.
    """

    symbol: str
    md_symbol: str
    instrument_type: InstrumentType
    tick: int = _CENT
    multiplier: int = 1
    description: str = ""
    underlying: str = ""
    root: str = ""
    expiration: dt.date | None = None
    strike: int = 0
    option_type: str = ""
    is_index: bool = False
    exchange: str = "XNYS"
    finer_ticks: tuple[tuple[int, int], ...] = ()
    """(tick, below): a finer tick below a price, lowest first; `tick` applies above them."""

    @property
    def is_option(self) -> bool:
        """Whether this is an equity or future option."""
        return self.instrument_type in {InstrumentType.EQUITY_OPTION, InstrumentType.FUTURE_OPTION}


class InstrumentSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /__fake/instruments`: one instrument, decimal amounts as strings.

    The md symbol defaults from the TastyTrade symbol (a future's without its slash).
    """

    symbol: str
    instrument_type: InstrumentType
    md_symbol: str | None = None
    tick: str = "0.01"
    multiplier: int = 1
    description: str = ""
    underlying: str = ""
    root: str = ""
    expiration: dt.date | None = None
    strike: str = "0"
    option_type: str = ""
    is_index: bool = False


def md_symbol_of(symbol: str) -> str:
    """The Databento symbol of a TastyTrade symbol (a future loses its leading slash; a future
    option in the fake's symbology becomes CME's `ESM4 P5230`)."""
    option = _FUTURE_OPTION_SYMBOL.match(symbol)
    if option is not None:
        contract, right, strike = option.groups()
        return f"{contract} {right}{strike}"
    return symbol.removeprefix("/")


def product_of(contract: str) -> str:
    """A CME contract's product code (`ESM4` -> `ES`, `EW4M4` -> `EW4`)."""
    found = MONTH_YEAR.match(contract)
    return found.group(1) if found else contract


def from_spec(spec: InstrumentSpec) -> Instrument:
    """A test's instrument; raises `PriceError` for a tick or strike that is not a price."""
    return Instrument(
        symbol=spec.symbol,
        md_symbol=spec.md_symbol or md_symbol_of(spec.symbol),
        instrument_type=spec.instrument_type,
        tick=decimal_to_price(spec.tick),
        multiplier=spec.multiplier,
        description=spec.description or spec.symbol,
        underlying=spec.underlying,
        root=spec.root,
        expiration=spec.expiration,
        strike=decimal_to_price(spec.strike),
        option_type=spec.option_type,
        is_index=spec.is_index,
    )


def _date(ns: int) -> dt.date | None:
    if ns in (UNDEF_TIMESTAMP, 0):
        return None
    return dt.datetime.fromtimestamp(ns // PRICE_SCALE, tz=dt.UTC).date()


def _multiplier(d: InstrumentDef, default: int) -> int:
    if d.unit_of_measure_qty not in (UNDEF_PRICE, 0):
        return max(1, d.unit_of_measure_qty // PRICE_SCALE)
    return d.contract_multiplier or default


def _tick(d: InstrumentDef) -> int:
    return d.min_price_increment if d.min_price_increment not in (UNDEF_PRICE, 0) else _CENT


def _equity_option(d: InstrumentDef, occ: re.Match[str]) -> Instrument:
    return Instrument(
        symbol=d.raw_symbol,
        md_symbol=d.raw_symbol,
        instrument_type=InstrumentType.EQUITY_OPTION,
        tick=_tick(d),
        multiplier=_multiplier(d, 100),
        description=d.raw_symbol,
        underlying=d.underlying,
        root=occ.group(1).strip(),
        expiration=_date(d.expiration),
        strike=0 if d.strike_price == UNDEF_PRICE else d.strike_price,
        option_type=d.instrument_class.value,
        exchange=d.exchange,
    )


def future_option_symbol(
    future: str, contract: str, expiry: dt.date, right: str, strike: int
) -> str:
    """The fake's TastyTrade symbol of an option on a future (`./ESM4 ESM4  240621P5230`);
    `future` without its slash, `strike` in 1e-9 units."""
    return f"./{future} {contract:<6}{expiry:%y%m%d}{right}{decimal_text(strike)}"


def decimal_text(units: int) -> str:
    """A 1e-9 amount as a plain decimal string (`5230`, `4.25`)."""
    return format(price_to_decimal(units).normalize(), "f")


def _future_option(d: InstrumentDef) -> Instrument | None:
    """An option on a future; None without what its venue symbol is made of (a future to
    deliver, an expiry, a strike), which every CME definition Databento sends has."""
    contract = d.raw_symbol.partition(" ")[0]
    expiry = _date(d.expiration)
    if not d.underlying or expiry is None or d.strike_price == UNDEF_PRICE:
        return None
    right = d.instrument_class.value
    # Databento leaves an option's increment undefined; the fake then quotes CME's rule for
    # its equity-index options: 0.05 for a premium below 5.00, 0.25 above.
    undefined = d.min_price_increment in (UNDEF_PRICE, 0)
    return Instrument(
        symbol=future_option_symbol(d.underlying, contract, expiry, right, d.strike_price),
        md_symbol=d.raw_symbol,
        instrument_type=InstrumentType.FUTURE_OPTION,
        tick=PRICE_SCALE // 4 if undefined else d.min_price_increment,
        multiplier=_multiplier(d, 1),
        description=d.raw_symbol,
        underlying=f"/{d.underlying}",
        root=product_of(d.underlying),
        expiration=expiry,
        strike=d.strike_price,
        option_type=right,
        exchange=d.exchange or "XCME",
        finer_ticks=((_NICKEL, _FIVE),) if undefined else (),
    )


def from_definition(d: InstrumentDef) -> Instrument | None:
    """The instrument an md.definition record describes; None for kinds the fake does not trade."""
    if d.instrument_class is InstrumentClass.FUTURE:
        return Instrument(
            symbol=f"/{d.raw_symbol}",
            md_symbol=d.raw_symbol,
            instrument_type=InstrumentType.FUTURE,
            tick=_tick(d),
            multiplier=_multiplier(d, 1),
            description=d.raw_symbol,
            root=d.asset or d.raw_symbol,
            expiration=_date(d.expiration),
            exchange=d.exchange or "XNYS",
        )
    if d.instrument_class is InstrumentClass.STOCK:
        return Instrument(
            symbol=d.raw_symbol,
            md_symbol=d.raw_symbol,
            instrument_type=InstrumentType.EQUITY,
            tick=_tick(d),
            description=d.raw_symbol,
            exchange=d.exchange or "XNYS",
        )
    if d.instrument_class in {InstrumentClass.CALL, InstrumentClass.PUT}:
        # An OCC symbol is an equity option's; anything else (CME's `ESM4 P5230`) a future's.
        occ = OCC.match(d.raw_symbol)
        return _equity_option(d, occ) if occ else _future_option(d)
    return None


def occ_symbol(root: str, expiration: dt.date, option_type: str, strike: int) -> str:
    """The padded OCC symbol; `strike` in 1e-9 units."""
    return f"{root:<6}{expiration:%y%m%d}{option_type}{strike // 1_000_000:08d}"


def quarterly_month(day: dt.date) -> tuple[str, dt.date]:
    """The front quarterly index future after `day`: its code (`Z6`) and third-Friday expiry."""
    year, month = day.year, day.month
    while True:
        if month % 3 == 0:
            first = dt.date(year, month, 1)
            friday = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
            if friday > day:
                code = "HMUZ"[month // 3 - 1]
                return f"{code}{year % 10}", friday
        month += 1
        if month > 12:
            year, month = year + 1, 1


def builtin(today: dt.date) -> list[Instrument]:
    """The default set: an ES future, SPY, AAPL and the SPX index, and 0DTE SPY and SPXW options."""
    code, es_expiry = quarterly_month(today)
    items = [
        Instrument(
            symbol=f"/ES{code}",
            md_symbol=f"ES{code}",
            instrument_type=InstrumentType.FUTURE,
            tick=PRICE_SCALE // 4,
            multiplier=50,
            description="E-mini S&P 500",
            root="ES",
            expiration=es_expiry,
            exchange="CME",
        ),
        Instrument("SPY", "SPY", InstrumentType.EQUITY, description="SPDR S&P 500 ETF"),
        Instrument("AAPL", "AAPL", InstrumentType.EQUITY, description="Apple Inc."),
        Instrument("SPX", "SPX", InstrumentType.EQUITY, description="S&P 500 Index", is_index=True),
    ]
    for root, underlying, strikes in (("SPY", "SPY", (600, 605)), ("SPXW", "SPX", (5900, 5925))):
        for strike in strikes:
            for kind in ("C", "P"):
                symbol = occ_symbol(root, today, kind, strike * PRICE_SCALE)
                items.append(
                    Instrument(
                        symbol=symbol,
                        md_symbol=symbol,
                        instrument_type=InstrumentType.EQUITY_OPTION,
                        tick=_CENT * 5 if root == "SPXW" else _CENT,
                        multiplier=100,
                        description=symbol,
                        underlying=underlying,
                        root=root,
                        expiration=today,
                        strike=strike * PRICE_SCALE,
                        option_type=kind,
                    )
                )
    return items


class Catalogue:
    """Instruments by TastyTrade symbol and by md symbol; a later definition replaces one."""

    def __init__(self, instruments: list[Instrument] | None = None) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        self._by_md: dict[str, Instrument] = {}
        for instrument in instruments or []:
            self.add(instrument)

    def add(self, instrument: Instrument) -> None:
        """Add or replace an instrument."""
        self._by_symbol[instrument.symbol] = instrument
        self._by_md[instrument.md_symbol] = instrument

    def get(self, symbol: str) -> Instrument | None:
        """By TastyTrade symbol; a future also by its symbol without the slash."""
        return self._by_symbol.get(symbol) or self._by_symbol.get(f"/{symbol}")

    def by_md_symbol(self, md_symbol: str) -> Instrument | None:
        """By the symbol its market data is keyed by."""
        return self._by_md.get(md_symbol)

    def of_type(self, kind: InstrumentType) -> list[Instrument]:
        """Every instrument of one kind, by symbol."""
        return sorted(
            (i for i in self._by_symbol.values() if i.instrument_type is kind),
            key=lambda i: i.symbol,
        )

    def options_on(self, underlying: str) -> list[Instrument]:
        """Equity options whose underlying (or root) is `underlying`, by symbol."""
        return [
            i
            for i in self.of_type(InstrumentType.EQUITY_OPTION)
            if underlying in {i.underlying, i.root}
        ]

    def future_options_on(self, product: str) -> list[Instrument]:
        """Options on the futures of one product (`ES` or `/ES`), by symbol."""
        code = product.removeprefix("/")
        return [i for i in self.of_type(InstrumentType.FUTURE_OPTION) if i.root == code]

    def futures_of(self, product: str) -> list[Instrument]:
        """The futures of one product (`ES` or `/ES`), by symbol."""
        code = product.removeprefix("/")
        return [i for i in self.of_type(InstrumentType.FUTURE) if i.root == code]

    def __len__(self) -> int:
        return len(self._by_symbol)
