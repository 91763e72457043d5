"""Request bodies the fake accepts, decoded from the wire and checked as the fake checks them.

Pure. Order bodies are the spec's `OrderRequest` (camelCase; schwab-py sends prices as
strings, the spec says numbers: both are taken) and become integers at 1e-9 here. Every
refusal is an `ApiError` carrying the spec's `ServiceError` body, `{"message", "errors"}`.

What Schwab itself refuses beyond the spec is mostly unknown (brokers.md 2b, 9); the fake's
own rules are named in each message so a test can tell them from Schwab's.
"""

import base64
import binascii
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from fakes.schwab.orders import OrderLeg
from fakes.schwab.vocab import (
    EQUITY_INSTRUCTIONS,
    FAKE_TRADES,
    NET,
    OPTION_INSTRUCTIONS,
    TRADED,
    AssetType,
    ComplexOrderStrategyType,
    Duration,
    Instruction,
    OrderStrategyType,
    OrderType,
    Session,
)
from ticklane.units import PriceError, decimal_to_price

MAX_LEGS: Final = 4
"""Schwab's maximum is unknown (brokers.md 9); four covers an iron condor."""

_NEEDS_PRICE: Final = frozenset(
    {OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.NET_DEBIT, OrderType.NET_CREDIT}
)
_NEEDS_STOP: Final = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_MULTI_LEG: Final = frozenset({OrderType.MARKET, *NET})
_SHAPES: Final = {
    ComplexOrderStrategyType.VERTICAL: (2, 1),
    ComplexOrderStrategyType.IRON_CONDOR: (4, 2),
}
"""Option legs a strategy has, and how many of them buy."""


class ApiError(Exception):
    """A refusal with an HTTP status and the spec's `ServiceError` body."""

    def __init__(self, status: int, message: str, *errors: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.errors = list(errors) or [message]

    def body(self) -> dict[str, Any]:
        """`{"message": ..., "errors": [...]}`."""
        return {"message": self.message, "errors": self.errors}


def bad_request(message: str, *errors: str) -> ApiError:
    """A 400: the request is malformed or names something the fake will not trade."""
    return ApiError(400, message, *errors)


Amount = str | int | float
"""A decimal amount as JSON may carry it."""


class InstrumentBody(msgspec.Struct, rename="camel", frozen=True):
    """A leg's `instrument`: what the order trades."""

    asset_type: AssetType
    symbol: str


class LegBody(msgspec.Struct, rename="camel", frozen=True):
    """One entry of `orderLegCollection`."""

    instruction: Instruction
    instrument: InstrumentBody
    quantity: Amount


class OrderBody(msgspec.Struct, rename="camel", frozen=True):
    """`POST .../orders`, `PUT .../orders/{id}` and `POST .../previewOrder`.

    Fields the fake has no use for (`positionEffect`, `taxLotMethod`, a `tag`, ...) are
    accepted and ignored: Schwab's treatment of most of them is unknown (brokers.md 3).
    """

    order_type: OrderType
    session: Session = Session.NORMAL
    duration: Duration = Duration.DAY
    order_strategy_type: OrderStrategyType = OrderStrategyType.SINGLE
    complex_order_strategy_type: ComplexOrderStrategyType = ComplexOrderStrategyType.NONE
    quantity: Amount | None = None
    price: Amount | None = None
    stop_price: Amount | None = None
    order_leg_collection: list[LegBody] = msgspec.field(default_factory=list)
    child_order_strategies: list[Any] | None = None


class OrderTerms(msgspec.Struct, frozen=True):
    """A checked order request: what the venue records and matches."""

    order_type: OrderType
    session: Session
    duration: Duration
    strategy: ComplexOrderStrategyType
    quantity: int
    legs: tuple[OrderLeg, ...]
    price: int | None
    stop_price: int | None


def decode_order(body: bytes) -> OrderBody:
    """The request body as an order, or a 400 naming what is wrong."""
    try:
        return msgspec.json.decode(body, type=OrderBody)
    except msgspec.ValidationError as exc:
        raise bad_request("Invalid order", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise bad_request("Request body is not JSON", str(exc)) from None


def _amount(value: Amount | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        price = decimal_to_price(Decimal(str(value)))
    except (InvalidOperation, PriceError) as exc:
        raise bad_request(f"{name} {value!r} is not a price", str(exc)) from None
    if price < 0:
        raise bad_request(f"{name} must not be negative")
    return price


def _whole(value: Amount, what: str) -> int:
    try:
        quantity = Decimal(str(value))
    except InvalidOperation:
        raise bad_request(f"{what}: quantity {value!r} is not a number") from None
    if quantity <= 0 or quantity != quantity.to_integral_value():
        # Fractional shares are dollar-quantity orders, which the fake does not trade.
        raise bad_request(f"{what}: quantity must be a positive whole number")
    return int(quantity)


def _leg(leg: LegBody) -> OrderLeg:
    asset = leg.instrument.asset_type
    symbol = leg.instrument.symbol
    if asset not in TRADED:
        # The Trader API places equity and option orders only (brokers.md 0.5).
        raise bad_request(f"{asset.value} orders are not supported", f"{symbol}: {asset.value}")
    allowed = EQUITY_INSTRUCTIONS if asset is AssetType.EQUITY else OPTION_INSTRUCTIONS
    if leg.instruction not in allowed:
        raise bad_request(
            f"instruction {leg.instruction.value} is not valid for {asset.value}", symbol
        )
    return OrderLeg(asset, symbol, leg.instruction, _whole(leg.quantity, symbol))


def _legs(body: OrderBody) -> tuple[OrderLeg, ...]:
    if not body.order_leg_collection:
        raise bad_request("orderLegCollection must have at least one leg")
    if len(body.order_leg_collection) > MAX_LEGS:
        raise bad_request(f"the fake takes at most {MAX_LEGS} legs")
    return tuple(_leg(leg) for leg in body.order_leg_collection)


def _check_type(body: OrderBody, legs: tuple[OrderLeg, ...]) -> None:
    kind = body.order_type
    if kind not in FAKE_TRADES:
        raise bad_request(f"the fake does not trade {kind.value} orders")
    if len(legs) > 1 and kind not in _MULTI_LEG:
        raise bad_request(f"a multi-leg order is MARKET or NET_*, not {kind.value}")
    if len(legs) == 1 and kind in NET:
        raise bad_request(f"{kind.value} is for multi-leg orders")
    if kind in _NEEDS_PRICE and body.price is None:
        raise bad_request(f"a {kind.value} order needs a price")
    if kind in _NEEDS_STOP and body.stop_price is None:
        raise bad_request(f"a {kind.value} order needs a stopPrice")


def _check_strategy(strategy: ComplexOrderStrategyType, legs: tuple[OrderLeg, ...]) -> None:
    shape = _SHAPES.get(strategy)
    if shape is None:
        return
    count, buys = shape
    options = [leg for leg in legs if leg.asset_type is AssetType.OPTION]
    bought = sum(1 for leg in options if leg.instruction.sign > 0)
    if len(legs) != count or len(options) != count or bought != buys:
        raise bad_request(
            f"a {strategy.value} has {count} option legs, {buys} of them buying",
            f"got {len(legs)} legs, {len(options)} options, {bought} buying",
        )


def _quantity(body: OrderBody, legs: tuple[OrderLeg, ...]) -> int:
    whole = math.gcd(*(leg.quantity for leg in legs))
    if body.quantity is None:
        return legs[0].quantity if len(legs) == 1 else whole
    quantity = _whole(body.quantity, "order")
    if any(leg.quantity % quantity for leg in legs):
        raise bad_request("every leg's quantity must be a multiple of the order's quantity")
    return quantity


def order_terms(body: OrderBody) -> OrderTerms:
    """Check an order request (placed, replacing or previewed alike)."""
    if body.order_strategy_type is not OrderStrategyType.SINGLE or body.child_order_strategies:
        raise bad_request("the fake places SINGLE orders only (no OCO or TRIGGER)")
    legs = _legs(body)
    _check_type(body, legs)
    _check_strategy(body.complex_order_strategy_type, legs)
    price = _amount(body.price, "price")
    if body.order_type is OrderType.NET_ZERO:
        price = 0
    return OrderTerms(
        order_type=body.order_type,
        session=body.session,
        duration=body.duration,
        strategy=body.complex_order_strategy_type,
        quantity=_quantity(body, legs),
        legs=legs,
        price=price if body.order_type is not OrderType.MARKET else None,
        stop_price=_amount(body.stop_price, "stopPrice"),
    )


class TokenRequest(msgspec.Struct, frozen=True):
    """`POST /v1/oauth/token`'s form, as authlib sends it (the app's key and secret go in Basic)."""

    grant_type: str = ""
    refresh_token: str = ""
    code: str = ""
    redirect_uri: str = ""


def token_request(form: Mapping[str, str]) -> TokenRequest:
    """The form's fields the endpoint reads; others are ignored."""
    return TokenRequest(
        grant_type=form.get("grant_type", ""),
        refresh_token=form.get("refresh_token", ""),
        code=form.get("code", ""),
        redirect_uri=form.get("redirect_uri", ""),
    )


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The app key and secret of an `Authorization: Basic ...` header, or None."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        raw = base64.b64decode(header.removeprefix("Basic ").strip(), validate=True)
    except binascii.Error:
        return None
    decoded = raw.decode("latin-1")  # authlib encodes `key:secret` as latin-1
    key, sep, secret = decoded.partition(":")
    return (key, secret) if sep and key else None
