"""Request bodies the fake accepts, decoded from the wire and checked as TastyTrade checks them.

Pure. Field names are the API's kebab-case; decimal amounts arrive as strings (the SDK
serialises `Decimal` so) or numbers and become integers at 1e-9 here. Every refusal is an
`ApiError` carrying the code and message the error envelope shows.
"""

from decimal import Decimal, InvalidOperation
from typing import Final

import msgspec

from fakes.tastytrade.orders import OrderLeg
from fakes.tastytrade.vocab import (
    InstrumentType,
    OrderAction,
    OrderType,
    PriceEffect,
    TimeInForce,
)
from ticklane.units import PriceError, decimal_to_price

MAX_LEGS: Final = 4
"""The documented maximum is unknown (brokers.md 2a); four covers an iron condor."""

_LIMITS: Final = frozenset({OrderType.LIMIT, OrderType.MARKETABLE_LIMIT, OrderType.STOP_LIMIT})
_STOPS: Final = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_FUTURE_ONLY: Final = frozenset({OrderAction.BUY, OrderAction.SELL})


class ApiError(Exception):
    """A refusal with an HTTP status and TastyTrade's `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def validation_error(message: str) -> ApiError:
    """A request the API refuses as malformed (422, as TastyTrade answers bad orders)."""
    return ApiError(422, "validation_error", message)


Amount = str | int | float
"""A decimal amount as JSON may carry it."""


class LegBody(msgspec.Struct, rename="kebab", frozen=True):
    """One leg of an order request."""

    instrument_type: InstrumentType
    symbol: str
    action: OrderAction
    quantity: Amount | None = None


class OrderBody(msgspec.Struct, rename="kebab", frozen=True):
    """`POST /accounts/{acct}/orders[/dry-run]` and `PUT /accounts/{acct}/orders/{id}`.

    A replacement carries no legs (the SDK excludes them). Fields of tastyware's paper API
    that the SDK always sends (`behavior`, `schedule`, `delay`) are accepted and ignored.
    """

    order_type: OrderType
    time_in_force: TimeInForce = TimeInForce.DAY
    legs: list[LegBody] = msgspec.field(default_factory=list)
    price: Amount | None = None
    price_effect: PriceEffect | None = None
    stop_trigger: Amount | None = None
    value: Amount | None = None
    value_effect: PriceEffect | None = None
    gtc_date: str | None = None
    external_identifier: str | None = None
    source: str | None = None
    partition_key: str | None = None
    preflight_id: str | None = None
    automated_source: bool | None = None
    behavior: str | None = None


class OrderTerms(msgspec.Struct, frozen=True):
    """A checked order request: what the venue records and matches."""

    order_type: OrderType
    time_in_force: TimeInForce
    legs: tuple[OrderLeg, ...]
    price: int | None
    price_effect: PriceEffect | None
    stop_trigger: int | None
    gtc_date: str | None
    external_identifier: str | None
    source: str | None


class TokenBody(msgspec.Struct, frozen=True):
    """`POST /oauth/token` as the SDK sends it (snake_case, OAuth's own names)."""

    grant_type: str = ""
    client_secret: str = ""
    refresh_token: str = ""


def decode_order(body: bytes) -> OrderBody:
    """The request body as an order, or a 422 naming what is wrong."""
    try:
        return msgspec.json.decode(body, type=OrderBody)
    except msgspec.ValidationError as exc:
        raise validation_error(f"invalid order: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not JSON: {exc}") from None


def _amount(value: Amount | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        price = decimal_to_price(Decimal(str(value)))
    except (InvalidOperation, PriceError) as exc:
        raise validation_error(f"{name} {value!r} is not a price: {exc}") from None
    if price < 0:
        raise validation_error(f"{name} must not be negative; the sign goes in {name}-effect")
    return price


def _quantity(leg: LegBody) -> int:
    try:
        quantity = Decimal(str(leg.quantity))
    except InvalidOperation:
        raise validation_error(f"leg {leg.symbol}: quantity {leg.quantity!r}") from None
    if quantity <= 0 or quantity != quantity.to_integral_value():
        # Fractional shares need notional orders, which the fake does not trade.
        raise validation_error(f"leg {leg.symbol}: quantity must be a positive whole number")
    return int(quantity)


def _legs(body: OrderBody) -> tuple[OrderLeg, ...]:
    if not body.legs:
        raise validation_error("an order needs at least one leg")
    if len(body.legs) > MAX_LEGS:
        raise validation_error(f"an order has at most {MAX_LEGS} legs")
    legs = []
    for leg in body.legs:
        if leg.action in _FUTURE_ONLY and leg.instrument_type is not InstrumentType.FUTURE:
            raise validation_error(f"action {leg.action.value} is for outright futures only")
        legs.append(OrderLeg(leg.instrument_type, leg.symbol, leg.action, _quantity(leg)))
    return tuple(legs)


def order_terms(body: OrderBody, *, legs: tuple[OrderLeg, ...] | None = None) -> OrderTerms:
    """Check an order request; `legs` are the replaced order's when the body has none."""
    if body.order_type is OrderType.NOTIONAL_MARKET:
        raise ApiError(422, "unsupported_order_type", "the fake does not trade notional orders")
    price = _amount(body.price, "price")
    stop = _amount(body.stop_trigger, "stop-trigger")
    if body.order_type in _LIMITS and price is None:
        raise validation_error(f"a {body.order_type.value} order needs a price")
    if body.order_type in _STOPS and stop is None:
        raise validation_error(f"a {body.order_type.value} order needs a stop-trigger")
    if price is not None and body.price_effect is None:
        raise validation_error("price-effect is required with price")
    return OrderTerms(
        order_type=body.order_type,
        time_in_force=body.time_in_force,
        legs=legs if legs is not None and not body.legs else _legs(body),
        price=price if body.order_type in _LIMITS else None,
        price_effect=body.price_effect if body.order_type in _LIMITS else None,
        stop_trigger=stop if body.order_type in _STOPS else None,
        gtc_date=body.gtc_date,
        external_identifier=body.external_identifier,
        source=body.source,
    )


def decode_token_request(body: bytes) -> TokenBody:
    """The token request, or a 400 in OAuth's own error shape's terms."""
    try:
        return msgspec.json.decode(body, type=TokenBody)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise ApiError(400, "invalid_request", "malformed token request") from None
