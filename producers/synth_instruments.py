"""The synthetic instruments: underlyings with their market character, and option chains.

Everything here is a plain value drawn from a seeded generator, so the same seed gives
the same universe. Each underlying draws from its own stream keyed by (seed, index), so
asking for more symbols adds instruments without changing the ones already there.
"""

import datetime as dt
import math
from dataclasses import dataclass
from functools import cache
from typing import Final

import databento_dbn as dbn
import numpy as np

from ticklane import calendars

PRICE_SCALE: Final = 1_000_000_000
UNDEF_PRICE: Final = 2**63 - 1
UNDEF_TIMESTAMP: Final = 2**64 - 1

SYNTH_PUBLISHER_ID: Final = 0
"""No real Databento publisher has id 0, so no record can pass for a real venue's."""

SYNTH_EXCHANGE: Final = "SYNX"
UNDERLYING_ID_BASE: Final = 1_000
OPTION_ID_BASE: Final = 900_000

# Futures-like templates: (tick in 1e-9, opening price, contract multiplier). The first
# one is index-future-like (tick 0.25 near 5,500) because it carries the option chain.
_FUTURES: Final = (
    (250_000_000, 5_500.0, 50),
    (250_000_000, 19_800.0, 20),
    (10_000_000, 82.0, 1_000),
    (100_000_000, 2_350.0, 100),
    (15_625_000, 110.0, 1_000),  # 1/64: exact in 1e-9 units, as for Treasury futures
)
_STOCK_TICK: Final = 10_000_000  # 0.01
_STRIKE_STEPS: Final = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)


@dataclass(frozen=True)
class Underlying:
    """One futures-like or equity-like instrument and the character of its market."""

    index: int
    instrument_id: int
    symbol: str
    instrument_class: str  # DBN code: "F" future, "K" stock
    tick: int  # min price increment, 1e-9 units
    open_ticks: int  # opening best bid, in ticks
    multiplier: int
    expiration: int  # ns, UNDEF_TIMESTAMP for stocks
    event_rate: float  # book and trade events per second
    trade_share: float  # fraction of events that are trades
    depth: float  # typical resting size at the touch
    tightness: float  # how much more often spreads narrow than widen
    lot: int  # typical order size: sets order counts from level sizes


@dataclass(frozen=True)
class OptionSpec:
    """One option contract of a chain expiring at `expiration`."""

    instrument_id: int
    symbol: str
    underlying: Underlying
    is_call: bool
    strike: int  # 1e-9 units
    tick: int
    expiration: int


def utc_date(ts_ns: int) -> dt.date:
    """UTC calendar date of a nanosecond timestamp."""
    return dt.datetime.fromtimestamp(ts_ns // PRICE_SCALE, tz=dt.UTC).date()


@cache
def session_close_ns(day: dt.date) -> int:
    """Close of the XNYS session on `day` in ns, from the exchange calendar (early closes too)."""
    week = dt.timedelta(days=7)  # a short window keeps building the calendar fast
    calendar = calendars.exchange_calendar(
        "XNYS", start=(day - week).isoformat(), end=(day + week).isoformat()
    )
    with calendars.quiet():
        if not calendar.is_session(day.isoformat()):
            raise ValueError(f"{day} is not an XNYS trading day: no same-day expiry exists")
        return int(calendar.session_close(day.isoformat()).value)


def quarterly_expiration(day: dt.date) -> int:
    """Third Friday 13:30 UTC of the next quarterly month after `day` (index-future style)."""
    year, month = day.year, day.month
    while True:
        if month % 3 == 0:
            first = dt.date(year, month, 1)
            friday = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
            if friday > day:
                moment = dt.datetime.combine(friday, dt.time(13, 30), tzinfo=dt.UTC)
                return int(moment.timestamp()) * PRICE_SCALE
        month += 1
        if month > 12:
            year, month = year + 1, 1


def make_underlying(seed: int, index: int, day: dt.date, *, busy: bool | None = None) -> Underlying:
    """Draw the `index`-th underlying: every third is futures-like, the rest equity-like.
    `busy` (default: the first) marks the one that carries the option chain."""
    busy = index == 0 if busy is None else busy
    rng = np.random.default_rng([seed, index])
    is_future = index % 3 == 0
    if is_future:
        tick, price, multiplier = _FUTURES[(index // 3) % len(_FUTURES)]
        price *= math.exp(rng.normal(0.0, 0.05))
        expiration = quarterly_expiration(day)
    else:
        tick, multiplier = _STOCK_TICK, 1
        price = float(np.clip(math.exp(rng.normal(math.log(60.0), 0.9)), 5.0, 800.0))
        expiration = UNDEF_TIMESTAMP
    # The option underlying is a busy market; the others range from quiet to busy.
    rate = 25.0 if busy else float(np.clip(rng.lognormal(math.log(0.9), 1.0), 0.02, 20.0))
    return Underlying(
        index=index,
        instrument_id=UNDERLYING_ID_BASE + index,
        symbol=f"SYN{index:03d}",
        instrument_class="F" if is_future else "K",
        tick=tick,
        open_ticks=round(price * PRICE_SCALE / tick),
        multiplier=multiplier,
        expiration=expiration,
        event_rate=rate,
        trade_share=float(rng.uniform(0.15, 0.35)),
        depth=float(rng.uniform(5.0, 60.0)),
        tightness=0.2 if busy else float(rng.uniform(0.0, 0.15)),
        lot=int(rng.integers(2, 12)),
    )


def strike_step(price: float) -> float:
    """A listed-looking strike spacing of about 0.1% of the price."""
    return next((s for s in _STRIKE_STEPS if s >= price * 0.001), _STRIKE_STEPS[-1])


def option_chain(
    underlying: Underlying, expiration: int, strikes_each_side: int, first_id: int
) -> list[OptionSpec]:
    """Calls and puts at strikes centred on the opening price, all expiring at `expiration`."""
    spot = underlying.open_ticks * underlying.tick / PRICE_SCALE
    step = strike_step(spot)
    centre = round(spot / step)
    tick = 50_000_000 if spot >= 100.0 else 10_000_000  # 0.05 or 0.01, as listed options
    yymmdd = utc_date(expiration).strftime("%y%m%d")
    chain: list[OptionSpec] = []
    for offset in range(-strikes_each_side, strikes_each_side + 1):
        strike = round((centre + offset) * step * PRICE_SCALE)
        for is_call in (True, False):
            # OCC-style symbol: root padded to 6, expiry, C/P, strike in thousandths.
            cp = "C" if is_call else "P"
            symbol = f"{underlying.symbol:<6}{yymmdd}{cp}{strike // 1_000_000:08d}"
            chain.append(
                OptionSpec(
                    first_id + len(chain), symbol, underlying, is_call, strike, tick, expiration
                )
            )
    return chain


def underlying_definition(u: Underlying, ts_event: int, ts_recv: int) -> bytes:
    """The DBN definition record of an underlying."""
    future = u.instrument_class == "F"
    record = dbn.InstrumentDefMsg(
        publisher_id=SYNTH_PUBLISHER_ID,
        instrument_id=u.instrument_id,
        ts_event=ts_event,
        ts_recv=ts_recv,
        min_price_increment=u.tick,
        display_factor=PRICE_SCALE,
        raw_symbol=u.symbol,
        asset=u.symbol,
        security_type="FUT" if future else "STK",
        instrument_class=dbn.InstrumentClass(u.instrument_class),
        security_update_action=dbn.SecurityUpdateAction("A"),
        expiration=u.expiration,
        unit_of_measure_qty=u.multiplier * PRICE_SCALE,
        min_price_increment_amount=u.tick * u.multiplier,
        raw_instrument_id=u.instrument_id,
        min_lot_size_round_lot=1 if future else 100,
        min_trade_vol=1,
        currency="USD",
        group="SYNTH",
        exchange=SYNTH_EXCHANGE,
        cfi="FFICSX" if future else "ESXXXX",
        unit_of_measure="IPNT" if future else "",
        user_defined_instrument=dbn.UserDefinedInstrument("N"),
    )
    return bytes(record)


def option_definition(o: OptionSpec, ts_event: int, ts_recv: int) -> bytes:
    """The DBN definition record of an option, linked to its underlying."""
    u = o.underlying
    multiplier = u.multiplier if u.instrument_class == "F" else 100
    record = dbn.InstrumentDefMsg(
        publisher_id=SYNTH_PUBLISHER_ID,
        instrument_id=o.instrument_id,
        ts_event=ts_event,
        ts_recv=ts_recv,
        min_price_increment=o.tick,
        display_factor=PRICE_SCALE,
        raw_symbol=o.symbol,
        asset=u.symbol,
        security_type="OOF" if u.instrument_class == "F" else "OOC",
        instrument_class=dbn.InstrumentClass("C" if o.is_call else "P"),
        security_update_action=dbn.SecurityUpdateAction("A"),
        expiration=o.expiration,
        unit_of_measure_qty=multiplier * PRICE_SCALE,
        strike_price=o.strike,
        raw_instrument_id=o.instrument_id,
        underlying_id=u.instrument_id,
        min_trade_vol=1,
        currency="USD",
        strike_price_currency="USD",
        group="SYNTH",
        exchange=SYNTH_EXCHANGE,
        cfi="OCEFPS" if o.is_call else "OPEFPS",
        underlying=u.symbol,
        user_defined_instrument=dbn.UserDefinedInstrument("N"),
    )
    return bytes(record)
