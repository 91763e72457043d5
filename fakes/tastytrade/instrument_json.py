"""Instrument bodies: `Equity`, `Future`, `Option` and `NestedOptionChain` as the SDK parses them.

Pure; `today` is passed in so days-to-expiration are the caller's (New York) date's.
"""

import datetime as dt
from collections import defaultdict
from typing import Final

from fakes.tastytrade.instruments import Instrument
from fakes.tastytrade.render import Json, decimal
from fakes.tastytrade.vocab import InstrumentType

_CLOSE_UTC: Final = dt.time(21, 0, tzinfo=dt.UTC)
"""When the fake says an expiring contract stops trading (16:00 New York in winter)."""


def _stops_at(day: dt.date) -> str:
    return dt.datetime.combine(day, _CLOSE_UTC).isoformat()


def _tick_sizes(i: Instrument) -> list[Json]:
    return [{"value": decimal(i.tick)}]


def equity_json(i: Instrument, instrument_id: int) -> Json:
    """An `Equity`."""
    return {
        "id": instrument_id,
        "symbol": i.symbol,
        "instrument-type": InstrumentType.EQUITY.value,
        "short-description": i.description,
        "description": i.description,
        "is-index": i.is_index,
        "listed-market": i.exchange,
        "lendability": "Easy To Borrow",
        "market-time-instrument-collection": "Equity",
        "is-closing-only": False,
        "is-options-closing-only": False,
        "active": True,
        "is-illiquid": False,
        "is-etf": False,
        "is-fractional-quantity-eligible": False,
        "streamer-symbol": i.symbol,
        "tick-sizes": _tick_sizes(i),
        "option-tick-sizes": [{"value": "0.01"}],
    }


def future_json(i: Instrument, today: dt.date) -> Json:
    """A `Future`."""
    expiry = i.expiration or today + dt.timedelta(days=90)
    return {
        "symbol": i.symbol,
        "instrument-type": InstrumentType.FUTURE.value,
        "product-code": i.root,
        "tick-size": decimal(i.tick),
        "notional-multiplier": str(i.multiplier),
        "display-factor": "1",
        "contract-size": str(i.multiplier),
        "last-trade-date": expiry.isoformat(),
        "expiration-date": expiry.isoformat(),
        "active": True,
        "active-month": True,
        "next-active-month": False,
        "is-closing-only": False,
        "is-tradeable": True,
        "stops-trading-at": _stops_at(expiry),
        "expires-at": _stops_at(expiry),
        "product-group": i.root,
        "exchange": i.exchange,
        "streamer-exchange-code": i.exchange,
        "streamer-symbol": f"{i.symbol}:X{i.exchange[:3]}",
        "back-month-first-calendar-symbol": False,
        "tick-sizes": _tick_sizes(i),
    }


def streamer_symbol(i: Instrument) -> str:
    """The dxFeed symbol of an option: `.SPXW261204C5900`, the strike without trailing zeros."""
    strike = decimal(i.strike)
    expiry = i.expiration or dt.date(1970, 1, 1)
    return f".{i.root}{expiry:%y%m%d}{i.option_type}{strike}"


def option_json(i: Instrument, today: dt.date) -> Json:
    """An `Option` (equity option)."""
    expiry = i.expiration or today
    return {
        "symbol": i.symbol,
        "instrument-type": InstrumentType.EQUITY_OPTION.value,
        "active": True,
        "strike-price": decimal(i.strike),
        "root-symbol": i.root,
        "underlying-symbol": i.underlying or i.root,
        "expiration-date": expiry.isoformat(),
        "exercise-style": "European" if i.root.startswith("SPX") else "American",
        "shares-per-contract": i.multiplier,
        "option-type": i.option_type,
        "option-chain-type": "Standard",
        "expiration-type": "Weekly" if i.root.endswith("W") else "Regular",
        "settlement-type": "PM",
        "stops-trading-at": _stops_at(expiry),
        "expires-at": _stops_at(expiry),
        "market-time-instrument-collection": "Equity Option",
        "days-to-expiration": (expiry - today).days,
        "is-closing-only": False,
        "streamer-symbol": streamer_symbol(i),
        "listed-market": i.exchange,
    }


def nested_chains_json(options: list[Instrument], today: dt.date) -> list[Json]:
    """`NestedOptionChain` items, one per root (SPX gives SPX and SPXW), strikes paired C/P."""
    by_root: dict[str, dict[dt.date, dict[int, dict[str, Instrument]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for o in options:
        expiry = o.expiration or today
        by_root[o.root][expiry].setdefault(o.strike, {})[o.option_type] = o
    chains = []
    for root, expirations in sorted(by_root.items()):
        sample = next(iter(next(iter(expirations.values())).values()))
        any_option = next(iter(sample.values()))
        chains.append(
            {
                "underlying-symbol": any_option.underlying or root,
                "root-symbol": root,
                "option-chain-type": "Standard",
                "shares-per-contract": any_option.multiplier,
                "tick-sizes": _tick_sizes(any_option),
                "deliverables": [],
                "expirations": [
                    _expiration_json(expiry, strikes, today)
                    for expiry, strikes in sorted(expirations.items())
                ],
            }
        )
    return chains


def _expiration_json(
    expiry: dt.date, strikes: dict[int, dict[str, Instrument]], today: dt.date
) -> Json:
    rows = []
    for strike, pair in sorted(strikes.items()):
        call, put = pair.get("C"), pair.get("P")
        if call is None or put is None:
            continue  # the model needs both sides of a strike
        rows.append(
            {
                "strike-price": decimal(strike),
                "call": call.symbol,
                "put": put.symbol,
                "call-streamer-symbol": streamer_symbol(call),
                "put-streamer-symbol": streamer_symbol(put),
            }
        )
    sample = next(iter(next(iter(strikes.values())).values()))
    return {
        "expiration-type": "Weekly" if sample.root.endswith("W") else "Regular",
        "expiration-date": expiry.isoformat(),
        "days-to-expiration": (expiry - today).days,
        "settlement-type": "PM",
        "strikes": rows,
    }


def instrument_json(i: Instrument, today: dt.date, instrument_id: int) -> Json:
    """The body for any instrument, by its kind."""
    if i.instrument_type is InstrumentType.FUTURE:
        return future_json(i, today)
    if i.instrument_type is InstrumentType.EQUITY_OPTION:
        return option_json(i, today)
    return equity_json(i, instrument_id)
