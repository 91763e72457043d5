"""Instrument bodies: `Equity`, `Future`, `Option`, `NestedOptionChain`, `FutureOption` and
`NestedFutureOptionChain` as the SDK parses them.

Pure; `today` is passed in so days-to-expiration are the caller's (New York) date's.
"""

import datetime as dt
from collections import defaultdict
from typing import Final

import msgspec

from fakes.tastytrade.instruments import (
    MONTH_YEAR,
    Instrument,
    future_option_symbol,
    md_symbol_of,
    product_of,
)
from fakes.tastytrade.render import Json, decimal
from fakes.tastytrade.vocab import InstrumentType

_CLOSE_UTC: Final = dt.time(21, 0, tzinfo=dt.UTC)
"""When the fake says an expiring contract stops trading (16:00 New York in winter)."""


def _stops_at(day: dt.date) -> str:
    return dt.datetime.combine(day, _CLOSE_UTC).isoformat()


def _tick_sizes(i: Instrument) -> list[Json]:
    finer = [{"value": decimal(t), "threshold": decimal(below)} for t, below in i.finer_ticks]
    return [*finer, {"value": decimal(i.tick)}]


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


def _contract(i: Instrument) -> str:
    """A future option's CME contract (`ESM4`, `EW4M4`): its Databento symbol's first part."""
    return i.md_symbol.partition(" ")[0]


def _mic(exchange: str) -> str:
    """The market identifier dxFeed suffixes a futures symbol with (`XCME`)."""
    return exchange if len(exchange) == 4 and exchange.startswith("X") else f"X{exchange[:3]}"


def future_option_streamer_symbol(i: Instrument) -> str:
    """dxFeed's symbol of a future option: `./ESM24P5230:XCME`, the contract's year in two
    digits (taken from the expiry's decade), the strike without trailing zeros."""
    contract = _contract(i)
    found = MONTH_YEAR.match(contract)
    expiry = i.expiration or dt.date(1970, 1, 1)
    if found is None:
        series = f"{contract}{expiry:%y}"
    else:
        product, month, year = found.groups()
        series = f"{product}{month}{expiry.year // 10 % 10}{year[-1]}"
    return f"./{series}{i.option_type}{decimal(i.strike)}:{_mic(i.exchange)}"


def _exchange(i: Instrument) -> str:
    """TastyTrade's exchange code (`CME`) for a market identifier (`XCME`)."""
    return i.exchange.removeprefix("X") if len(i.exchange) == 4 else i.exchange


def future_option_json(i: Instrument, today: dt.date) -> Json:
    """A `FutureOption`."""
    expiry = i.expiration or today
    contract = _contract(i)
    return {
        "symbol": i.symbol,
        "instrument-type": InstrumentType.FUTURE_OPTION.value,
        "underlying-symbol": i.underlying,
        "product-code": product_of(contract),
        "expiration-date": expiry.isoformat(),
        "root-symbol": f"/{i.root}",
        "option-root-symbol": product_of(contract),
        "strike-price": decimal(i.strike),
        "exchange": _exchange(i),
        "exchange-symbol": i.md_symbol,
        "security-exchange": "2",
        "sx-id": "0",
        "streamer-symbol": future_option_streamer_symbol(i),
        "option-type": i.option_type,
        "exercise-style": "American",
        "is-vanilla": True,
        "is-primary-deliverable": True,
        "future-price-ratio": "1.0",
        "multiplier": str(i.multiplier),
        "underlying-count": "1.0",
        "is-confirmed": True,
        "notional-value": "1.0",
        "display-factor": "1",
        "settlement-type": "Future",
        "strike-factor": "1.0",
        "maturity-date": expiry.isoformat(),
        "is-exercisable-weekly": True,
        "last-trade-time": "0",
        "days-to-expiration": (expiry - today).days,
        "is-closing-only": False,
        "active": True,
        "stops-trading-at": _stops_at(expiry),
        "expires-at": _stops_at(expiry),
    }


def nested_future_chain_json(
    product: str, futures: list[Instrument], options: list[Instrument], today: dt.date
) -> Json:
    """A `NestedFutureOptionChain` of one product (`ES`): its futures, and one subchain whose
    expirations are one per option contract (`ESM4`, `EW4M4`), each naming its future."""
    by_contract: dict[str, dict[int, dict[str, Instrument]]] = defaultdict(dict)
    for o in options:
        by_contract[_contract(o)].setdefault(o.strike, {})[o.option_type] = o
    expirations = [
        _future_expiration_json(contract, strikes, today)
        for contract, strikes in sorted(by_contract.items())
    ]
    # The futures the options deliver, listed even when only their options were defined.
    listed = {f.symbol: f for f in futures}
    for o in options:
        listed.setdefault(o.underlying, _future_of(o))
    return {
        "futures": [_chain_future_json(f, today) for _, f in sorted(listed.items())],
        "option-chains": [
            {
                "underlying-symbol": f"/{product}",
                "root-symbol": f"/{product}",
                "exercise-style": "American",
                "expirations": sorted(expirations, key=lambda e: str(e["expiration-date"])),
            }
        ]
        if expirations
        else [],
    }


def _future_of(o: Instrument) -> Instrument:
    return Instrument(
        symbol=o.underlying,
        md_symbol=o.underlying.removeprefix("/"),
        instrument_type=InstrumentType.FUTURE,
        root=o.root,
        expiration=o.expiration,
        exchange=o.exchange,
    )


def _other_side(o: Instrument) -> Instrument:
    """The call of a put, or the put of a call, on the same future, contract and strike."""
    right = "C" if o.option_type == "P" else "P"
    contract = _contract(o)
    symbol = future_option_symbol(
        o.underlying.removeprefix("/"),
        contract,
        o.expiration or dt.date(1970, 1, 1),
        right,
        o.strike,
    )
    return msgspec.structs.replace(
        o, symbol=symbol, md_symbol=md_symbol_of(symbol), option_type=right
    )


def _chain_future_json(f: Instrument, today: dt.date) -> Json:
    expiry = f.expiration or today + dt.timedelta(days=90)
    return {
        "symbol": f.symbol,
        "root-symbol": f"/{f.root}",
        "expiration-date": expiry.isoformat(),
        "days-to-expiration": (expiry - today).days,
        "active-month": True,
        "next-active-month": False,
        "stops-trading-at": _stops_at(expiry),
        "expires-at": _stops_at(expiry),
    }


def _future_expiration_json(
    contract: str, strikes: dict[int, dict[str, Instrument]], today: dt.date
) -> Json:
    rows = []
    for strike, pair in sorted(strikes.items()):
        # CME lists both sides of every strike, and the model needs both: a side md.definition
        # did not define is named as the fake would name it (it trades once it is defined).
        call = pair.get("C") or _other_side(pair["P"])
        put = pair.get("P") or _other_side(pair["C"])
        rows.append(
            {
                "strike-price": decimal(strike),
                "call": call.symbol,
                "put": put.symbol,
                "call-streamer-symbol": future_option_streamer_symbol(call),
                "put-streamer-symbol": future_option_streamer_symbol(put),
            }
        )
    sample = next(iter(next(iter(strikes.values())).values()))
    expiry = sample.expiration or today
    return {
        "underlying-symbol": sample.underlying,
        "root-symbol": f"/{sample.root}",
        "option-root-symbol": product_of(contract),
        "option-contract-symbol": contract,
        "asset": product_of(contract),
        "expiration-date": expiry.isoformat(),
        "days-to-expiration": (expiry - today).days,
        "expiration-type": "Regular" if product_of(contract) == sample.root else "Weekly",
        "settlement-type": "Future",
        "notional-value": "1.0",
        "display-factor": "1",
        "strike-factor": "1.0",
        "stops-trading-at": _stops_at(expiry),
        "expires-at": _stops_at(expiry),
        "tick-sizes": _tick_sizes(sample),
        "strikes": rows,
    }


def instrument_json(i: Instrument, today: dt.date, instrument_id: int) -> Json:
    """The body for any instrument, by its kind."""
    if i.instrument_type is InstrumentType.FUTURE:
        return future_json(i, today)
    if i.instrument_type is InstrumentType.FUTURE_OPTION:
        return future_option_json(i, today)
    if i.instrument_type is InstrumentType.EQUITY_OPTION:
        return option_json(i, today)
    return equity_json(i, instrument_id)
