"""The JSON bodies the fake answers with, in the shapes of Schwab's OpenAPI document.

Pure. Keys are the spec's camelCase; amounts are JSON numbers written from exact decimals
(never through a float); times are `2020-03-30T15:36:12+0000`, the form Schwab's orders carry
(schwab-py `tests/utils.py`). Each function names the spec schema it answers with.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Any, Final

import msgspec
from aiohttp import web

from fakes.schwab.instruments import instrument_id, put_call
from fakes.schwab.orders import FakeFill, FakeOrder, OrderLeg, order_filled
from fakes.schwab.portfolio import Holding, market_value
from fakes.schwab.vocab import TERMINAL, AssetType
from fakes.tastytrade.instruments import Instrument
from ticklane.units import PRICE_SCALE, price_to_decimal

Json = dict[str, Any]
Lookup = Callable[[str], Instrument | None]
"""A catalogue lookup by symbol."""

TAG: Final = "API_TICKLANE:FakeSchwab"
"""The system-set `tag` (Schwab's own look like `API_TDAM:App`)."""
DESTINATION: Final = "TICKLANE_FAKE"
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def number(units: int) -> Decimal:
    """A 1e-9 amount as an exact JSON number: `600.12`, `600`."""
    return Decimal(format(price_to_decimal(units).normalize(), "f"))


def when(ns: int) -> str:
    """Nanoseconds since the epoch as Schwab writes a time (whole seconds, UTC)."""
    moment = _EPOCH + dt.timedelta(seconds=ns // PRICE_SCALE)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def respond(body: object, status: int = 200) -> web.Response:
    """A JSON answer with decimals as numbers."""
    return web.Response(body=_ENCODER.encode(body), status=status, content_type="application/json")


def instrument_json(symbol: str, asset: AssetType, instrument: Instrument | None) -> Json:
    """An `AccountsInstrument`: `AccountEquity`, or `AccountOption` with its contract terms."""
    body: Json = {
        "assetType": asset.value,
        "symbol": symbol,
        "instrumentId": instrument_id(symbol),
        "description": instrument.description if instrument is not None else symbol,
    }
    if asset is AssetType.OPTION and instrument is not None:
        body |= {
            "putCall": put_call(instrument),
            "underlyingSymbol": instrument.underlying or instrument.root,
            "optionMultiplier": instrument.multiplier,
            "type": "VANILLA",
        }
    return body


def _leg_json(index: int, leg: OrderLeg, lookup: Lookup) -> Json:
    return {
        "orderLegType": leg.asset_type.value,
        "legId": index + 1,
        "instrument": instrument_json(leg.symbol, leg.asset_type, lookup(leg.symbol)),
        "instruction": leg.instruction.value,
        "positionEffect": leg.position_effect,
        "quantity": leg.quantity,
    }


def activities(order: FakeOrder, fills: Sequence[FakeFill]) -> list[Json]:
    """`orderActivityCollection`: one EXECUTION per activity, its legs' fills inside."""
    mine = sorted((f for f in fills if f.order_id == order.id), key=lambda f: f.activity)
    done: list[FakeFill] = []
    rows: list[Json] = []
    for activity, group in groupby(mine, key=lambda f: f.activity):
        legs = list(group)
        before = order_filled(order, done)
        done.extend(legs)
        after = order_filled(order, done)
        rows.append(
            {
                "activityType": "EXECUTION",
                "activityId": order.id * 100 + activity,
                "executionType": "FILL",
                "quantity": after - before,
                "orderRemainingQuantity": order.quantity - after,
                "executionLegs": [
                    {
                        "legId": f.leg + 1,
                        "quantity": f.quantity,
                        "mismarkedQuantity": 0,
                        "price": number(f.price),
                        "time": when(f.filled_at),
                    }
                    for f in legs
                ],
            }
        )
    return rows


def order_json(order: FakeOrder, fills: Sequence[FakeFill], lookup: Lookup) -> Json:
    """An `Order`, with its executions in `orderActivityCollection`."""
    filled = order_filled(order, list(fills))
    body: Json = {
        "session": order.session.value,
        "duration": order.duration.value,
        "orderType": order.order_type.value,
        "complexOrderStrategyType": order.strategy.value,
        "quantity": order.quantity,
        "filledQuantity": filled,
        "remainingQuantity": order.quantity - filled,
        "requestedDestination": "AUTO",
        "destinationLinkName": DESTINATION,
        "orderLegCollection": [_leg_json(i, leg, lookup) for i, leg in enumerate(order.legs)],
        "orderStrategyType": "SINGLE",
        "orderId": order.id,
        "cancelable": order.status not in TERMINAL,
        "editable": order.status not in TERMINAL,
        "status": order.status.value,
        "enteredTime": when(order.entered_at),
        "tag": TAG,
        "accountNumber": int(order.account),
    }
    optional: Json = {
        "price": None if order.price is None else number(order.price),
        "stopPrice": None if order.stop_price is None else number(order.stop_price),
        "closeTime": None if order.close_at is None else when(order.close_at),
        "statusDescription": order.status_description,
        "orderActivityCollection": activities(order, fills) or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


class LegQuote(msgspec.Struct, frozen=True):
    """What the market shows for one leg's symbol, 1e-9 (None: nothing seen)."""

    bid: int | None = None
    ask: int | None = None
    last: int | None = None
    mark: int | None = None


def _maybe(units: int | None) -> Decimal:
    return number(units) if units is not None else Decimal(0)


def preview_json(
    order: FakeOrder, quotes: Sequence[LegQuote], value: int, buying_power: int
) -> Json:
    """A `PreviewOrder`: the order as it would be placed, priced, with nothing to reject."""
    legs = [
        {
            "legId": index + 1,
            "assetType": leg.asset_type.value,
            "finalSymbol": leg.symbol,
            "instruction": leg.instruction.value,
            "quantity": leg.quantity,
            "bidPrice": _maybe(quote.bid),
            "askPrice": _maybe(quote.ask),
            "lastPrice": _maybe(quote.last),
            "markPrice": _maybe(quote.mark),
            "projectedCommission": 0,
        }
        for index, (leg, quote) in enumerate(zip(order.legs, quotes, strict=True))
    ]
    strategy: Json = {
        "accountNumber": order.account,
        "advancedOrderType": "NONE",
        "session": order.session.value,
        "duration": order.duration.value,
        "orderType": order.order_type.value,
        "strategy": order.strategy.value,
        "orderStrategyType": "SINGLE",
        "status": order.status.value,
        "quantity": order.quantity,
        "filledQuantity": 0,
        "remainingQuantity": order.quantity,
        "orderValue": number(abs(value)),
        "allOrNone": False,
        "discretionary": False,
        "sellNonMarginableFirst": False,
        "settlementInstruction": "REGULAR",
        "amountIndicator": "SHARES",
        "orderVersion": 0,
        "orderBalance": {
            "orderValue": number(abs(value)),
            "projectedAvailableFund": number(buying_power + value),
            "projectedBuyingPower": number(buying_power + value),
            "projectedCommission": 0,
        },
        "orderLegs": legs,
    }
    if order.price is not None:
        strategy["price"] = number(order.price)
    return {
        "orderId": 0,
        "orderStrategy": strategy,
        "orderValidationResult": {
            "alerts": [],
            "accepts": [],
            "rejects": [],
            "reviews": [],
            "warns": [],
        },
        "commissionAndFee": {
            "commission": {"commissionLegs": []},
            "fee": {"feeLegs": []},
            "trueCommission": {"commissionLegs": []},
        },
    }


def position_json(h: Holding, asset: AssetType, instrument: Instrument | None, mark: int) -> Json:
    """A `Position`: long or short quantity, average price, market value and open P&L."""
    long_qty, short_qty = max(h.quantity, 0), max(-h.quantity, 0)
    value = market_value(h, mark)
    open_pl = (mark - h.average_open) * h.quantity * h.multiplier
    average = number(h.average_open)
    body: Json = {
        "shortQuantity": short_qty,
        "longQuantity": long_qty,
        "averagePrice": average,
        "settledLongQuantity": long_qty,
        "settledShortQuantity": short_qty,
        "previousSessionLongQuantity": 0,
        "previousSessionShortQuantity": 0,
        "agedQuantity": 0,
        "currentDayProfitLoss": number(open_pl),
        "currentDayProfitLossPercentage": 0,
        "currentDayCost": number(h.average_open * h.quantity * h.multiplier),
        "marketValue": number(value),
        "maintenanceRequirement": 0,
        "instrument": instrument_json(h.symbol, asset, instrument),
    }
    side = "Long" if h.quantity > 0 else "Short"
    body |= {
        f"average{side}Price": average,
        f"taxLotAverage{side}Price": average,
        f"{side.lower()}OpenProfitLoss": number(open_pl),
    }
    return body


class Balances(msgspec.Struct, frozen=True):
    """An account's money, 1e-9: cash, long and short market value, liquidation value."""

    start: int
    cash: int
    long_value: int
    short_value: int

    @property
    def liquidation(self) -> int:
        """Cash plus the market value of every position."""
        return self.cash + self.long_value + self.short_value


def _current(b: Balances) -> Json:
    cash = number(b.cash)
    free = number(max(b.cash, 0))
    return {
        "availableFunds": free,
        "availableFundsNonMarginableTrade": free,
        "buyingPower": free,
        "buyingPowerNonMarginableTrade": free,
        "dayTradingBuyingPower": free,
        "dayTradingBuyingPowerCall": 0,
        "equity": number(b.liquidation),
        "equityPercentage": 100,
        "isInCall": 0,
        "longMarginValue": number(b.long_value),
        "maintenanceCall": 0,
        "maintenanceRequirement": 0,
        "marginBalance": 0,
        "optionBuyingPower": free,
        "regTCall": 0,
        "shortBalance": 0,
        "shortMarginValue": number(-b.short_value),
        "sma": 0,
        "stockBuyingPower": free,
        # Not in the spec's MarginBalance, but in Schwab's answers; clients read them.
        "cashBalance": cash,
        "liquidationValue": number(b.liquidation),
        "longMarketValue": number(b.long_value),
    }


def _initial(b: Balances) -> Json:
    start = number(b.start)
    return {
        "accountValue": start,
        "availableFundsNonMarginableTrade": start,
        "buyingPower": start,
        "cashAvailableForTrading": start,
        "cashBalance": start,
        "dayTradingBuyingPower": start,
        "equity": start,
        "equityPercentage": 100,
        "isInCall": 0,
        "liquidationValue": start,
        "longStockValue": 0,
        "longOptionMarketValue": 0,
        "shortOptionMarketValue": 0,
        "margin": 0,
        "marginBalance": 0,
        "totalCash": start,
    }


def account_json(account: str, balances: Balances, positions: list[Json] | None) -> Json:
    """An `Account` holding a `MarginAccount`; `positions` only when asked for."""
    securities: Json = {
        "type": "MARGIN",
        "accountNumber": account,
        "roundTrips": 0,
        "isDayTrader": False,
        "isClosingOnlyRestricted": False,
        "pfcbFlag": False,
        "initialBalances": _initial(balances),
        "currentBalances": _current(balances),
        "projectedBalances": _current(balances),
    }
    if positions is not None:
        securities["positions"] = positions
    return {"securitiesAccount": securities}


def user_preference_json(
    accounts: Sequence[str], streamer_url: str, correl_id: str, customer_id: str
) -> Json:
    """A `UserPreference`; `streamerInfo[0]` is where schwab-py's `StreamClient` connects."""
    return {
        "accounts": [
            {
                "accountNumber": account,
                "primaryAccount": index == 0,
                "type": "BROKERAGE",
                "nickName": "Individual",
                "displayAcctId": f"...{account[-3:]}",
                "autoPositionEffect": False,
                "accountColor": "Green",
            }
            for index, account in enumerate(accounts)
        ],
        "streamerInfo": [
            {
                "streamerSocketUrl": streamer_url,
                "schwabClientCustomerId": customer_id,
                "schwabClientCorrelId": correl_id,
                "schwabClientChannel": "N9",
                "schwabClientFunctionId": "APIAPP",
            }
        ],
        "offers": [{"level2Permissions": True, "mktDataPermission": "NP"}],
    }
