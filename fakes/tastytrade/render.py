"""The JSON bodies the fake answers with, in the shapes the SDK's pydantic models require.

Pure. Keys are kebab-case; amounts are decimal strings with a separate `-effect` where the
API signs them so; times are ISO 8601 in UTC. Each function names the SDK model it feeds.
"""

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from fakes.tastytrade.instruments import Instrument
from fakes.tastytrade.orders import FakeFill, FakeOrder, legs_filled
from fakes.tastytrade.portfolio import Holding
from fakes.tastytrade.vocab import TERMINAL, InstrumentType, PriceEffect
from ticklane.units import PRICE_SCALE, price_to_decimal

Json = dict[str, Any]

DESTINATION: Final = "TICKLANE_FAKE"
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def decimal(units: int) -> str:
    """A 1e-9 amount as the API writes it: a plain decimal string, no exponent."""
    value = price_to_decimal(units).normalize()
    return format(value if value != 0 else Decimal(0), "f")


def money(units: int) -> tuple[str, str]:
    """An unsigned amount and its effect: negative money is a Debit."""
    effect = (
        PriceEffect.NONE if units == 0 else PriceEffect.DEBIT if units < 0 else PriceEffect.CREDIT
    )
    return decimal(abs(units)), effect.value


def when(ns: int | None) -> str | None:
    """Nanoseconds since the epoch as the API's UTC timestamp."""
    if ns is None:
        return None
    moment = _EPOCH + dt.timedelta(microseconds=ns // 1_000)
    return moment.isoformat(timespec="milliseconds")


def underlying_of(instrument: Instrument | None, symbol: str) -> tuple[str, str]:
    """An order's `underlying-symbol` and `underlying-instrument-type` from its first leg."""
    if instrument is None:
        return symbol, InstrumentType.EQUITY.value
    if instrument.instrument_type is InstrumentType.FUTURE:
        return f"/{instrument.root}", InstrumentType.FUTURE.value
    if instrument.instrument_type is InstrumentType.FUTURE_OPTION:
        return instrument.underlying or symbol, InstrumentType.FUTURE.value
    if instrument.instrument_type is InstrumentType.EQUITY_OPTION:
        return instrument.underlying or instrument.root, InstrumentType.EQUITY.value
    return instrument.symbol, InstrumentType.EQUITY.value


def _fill_json(fill: FakeFill) -> Json:
    return {
        "fill-id": fill.fill_id,
        "quantity": str(fill.quantity),
        "fill-price": decimal(fill.price),
        "filled-at": when(fill.filled_at),
        "destination-venue": DESTINATION,
        "ext-exec-id": fill.fill_id,
        "ext-group-fill-id": f"{fill.order_id}-{fill.leg}",
    }


def order_json(
    order: FakeOrder,
    fills: Sequence[FakeFill],
    first_leg: Instrument | None,
    *,
    placed: bool = True,
) -> Json:
    """A `PlacedOrder` (or, with `placed=False`, a dry run's `UnplacedOrder`)."""
    done = legs_filled(order, list(fills))
    legs = []
    for index, (leg, filled) in enumerate(zip(order.legs, done, strict=True)):
        leg_fills = [_fill_json(f) for f in fills if f.order_id == order.id and f.leg == index]
        legs.append(
            {
                "instrument-type": leg.instrument_type.value,
                "symbol": leg.symbol,
                "action": leg.action.value,
                "quantity": str(leg.quantity),
                "remaining-quantity": str(max(0, leg.quantity - filled)),
                "fills": leg_fills,
            }
        )
    underlying, underlying_type = underlying_of(first_leg, order.legs[0].symbol)
    body: Json = {
        "account-number": order.account,
        "time-in-force": order.time_in_force.value,
        "order-type": order.order_type.value,
        "size": str(math.gcd(*(leg.quantity for leg in order.legs))),
        "underlying-symbol": underlying,
        "underlying-instrument-type": underlying_type,
        "status": order.status.value,
        "cancellable": order.status not in TERMINAL,
        "editable": order.status not in TERMINAL,
        "edited": order.replaces_order_id is not None,
        "received-at": when(order.received_at),
        "updated-at": when(order.updated_at),
        "legs": legs,
    }
    optional: Json = {
        "id": order.id if placed else None,
        "price": None if order.price is None else decimal(order.price),
        "price-effect": None if order.price_effect is None else order.price_effect.value,
        "stop-trigger": None if order.stop_trigger is None else decimal(order.stop_trigger),
        "gtc-date": order.gtc_date,
        "live-at": when(order.live_at),
        "in-flight-at": when(order.live_at),
        "terminal-at": when(order.terminal_at),
        "cancelled-at": when(order.cancelled_at),
        "reject-reason": order.reject_reason,
        "replaces-order-id": order.replaces_order_id,
        "replacing-order-id": order.replacing_order_id,
        "source": order.source,
        "external-identifier": order.external_identifier,
        "ext-client-order-id": f"fake{order.id:012d}" if placed else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def buying_power_effect(impact: int, cash: int) -> Json:
    """A `BuyingPowerEffect`: `impact` is what the order costs (negative) or frees, in 1e-9."""
    change, change_effect = money(impact)
    current, current_effect = money(cash)
    new, new_effect = money(cash + impact)
    zero, none = money(0)
    return {
        "change-in-margin-requirement": zero,
        "change-in-margin-requirement-effect": none,
        "change-in-buying-power": change,
        "change-in-buying-power-effect": change_effect,
        "current-buying-power": current,
        "current-buying-power-effect": current_effect,
        "new-buying-power": new,
        "new-buying-power-effect": new_effect,
        "isolated-order-margin-requirement": zero,
        "isolated-order-margin-requirement-effect": none,
        "is-spread": False,
        "impact": change,
        "effect": change_effect,
    }


def fee_calculation() -> Json:
    """A `FeeCalculation`: the fake charges nothing."""
    zero, none = money(0)
    fees = ("regulatory-fees", "clearing-fees", "commission", "proprietary-index-option-fees")
    body: Json = {}
    for name in (*fees, "total-fees"):
        body[name] = zero
        body[f"{name}-effect"] = none
    return body


def placed_order_response(order_body: Json, impact: int, cash: int) -> Json:
    """A `PlacedOrderResponse`: the order with its buying-power effect and fees."""
    return {
        "order": order_body,
        "buying-power-effect": buying_power_effect(impact, cash),
        "fee-calculation": fee_calculation(),
        "warnings": [],
    }


def account_json(account: str, opened_at: int) -> Json:
    """An `Account`."""
    return {
        "account-number": account,
        "external-id": f"A{account}",
        "opened-at": when(opened_at),
        "nickname": "ticklane fake",
        "account-type-name": "Individual",
        "day-trader-status": False,
        "is-closed": False,
        "is-firm-error": False,
        "is-firm-proprietary": False,
        "is-futures-approved": True,
        "is-test-drive": False,
        "margin-or-cash": "Margin",
        "is-foreign": False,
        "created-at": when(opened_at),
        "suitable-options-level": "No Restrictions",
    }


def position_json(account: str, h: Holding, underlying: str, mark: int) -> Json:
    """A `CurrentPosition`."""
    realized, realized_effect = money(h.realized)
    return {
        "account-number": account,
        "symbol": h.symbol,
        "instrument-type": h.instrument_type.value,
        "underlying-symbol": underlying,
        "quantity": str(abs(h.quantity)),
        "quantity-direction": "Long" if h.quantity > 0 else "Short" if h.quantity else "Zero",
        "close-price": decimal(mark),
        "average-open-price": decimal(h.average_open),
        "multiplier": str(h.multiplier),
        "cost-effect": PriceEffect.DEBIT.value if h.quantity >= 0 else PriceEffect.CREDIT.value,
        "is-suppressed": False,
        "is-frozen": False,
        "realized-day-gain": realized,
        "realized-day-gain-effect": realized_effect,
        "realized-today": realized,
        "realized-today-effect": realized_effect,
        "created-at": when(h.opened_at),
        "updated-at": when(h.updated_at),
        "mark": decimal(mark),
        "mark-price": decimal(mark),
    }


_BALANCE_ZEROES: Final = (
    "long-derivative-value",
    "short-derivative-value",
    "long-futures-value",
    "short-futures-value",
    "long-futures-derivative-value",
    "short-futures-derivative-value",
    "short-margineable-value",
    "futures-margin-requirement",
    "maintenance-requirement",
    "maintenance-call-value",
    "reg-t-call-value",
    "day-trading-call-value",
    "day-equity-call-value",
    "pending-cash",
    "long-cryptocurrency-value",
    "short-cryptocurrency-value",
    "cryptocurrency-margin-requirement",
    "unsettled-cryptocurrency-fiat-amount",
    "closed-loop-available-balance",
    "equity-offering-margin-requirement",
    "long-bond-value",
    "bond-margin-requirement",
    "used-derivative-buying-power",
    "reg-t-margin-requirement",
    "futures-overnight-margin-requirement",
    "futures-intraday-margin-requirement",
    "pending-margin-interest",
    "effective-cryptocurrency-buying-power",
    "short-equity-value",
)


def balance_json(account: str, cash: int, long_value: int, net_liq: int, now: int) -> Json:
    """An `AccountBalance`: cash, long market value and net liquidating value; no margin model."""
    body: Json = dict.fromkeys(_BALANCE_ZEROES, "0")
    body.update(
        {
            "account-number": account,
            "cash-balance": decimal(cash),
            "long-equity-value": decimal(long_value),
            "long-margineable-value": decimal(long_value),
            "margin-equity": decimal(net_liq),
            "equity-buying-power": decimal(max(cash, 0)),
            "derivative-buying-power": decimal(max(cash, 0)),
            "day-trading-buying-power": decimal(max(cash, 0)),
            "available-trading-funds": decimal(max(cash, 0)),
            "net-liquidating-value": decimal(net_liq),
            "cash-available-to-withdraw": decimal(max(cash, 0)),
            "day-trade-excess": decimal(max(cash, 0)),
            "maintenance-excess": decimal(max(net_liq, 0)),
            "pending-cash-effect": PriceEffect.NONE.value,
            "snapshot-date": dt.datetime.fromtimestamp(now // PRICE_SCALE, tz=dt.UTC)
            .date()
            .isoformat(),
            "updated-at": when(now),
        }
    )
    return body


def envelope(data: Json) -> web.Response:
    """A success body."""
    return web.json_response({"data": data, "context": "ticklane-fake"})


def items(rows: list[Json]) -> Json:
    """A list response's `data`."""
    return {"items": rows}
