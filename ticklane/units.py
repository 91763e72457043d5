"""Fixed-width integer types for prices, quantities and time, and conversions at the edges.

Prices are integers in units of 1e-9, exactly as Databento sends them, from the tick
to the ledger. Time is integer nanoseconds since the epoch, UTC. `Decimal` appears only
where a broker or a person needs it, through the functions here.
"""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Final

from msgspec import Meta

PRICE_SCALE: Final = 1_000_000_000
"""Price units per whole currency unit (Databento's FIXED_PRICE_SCALE)."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1

UNDEF_PRICE: Final = INT64_MAX
"""Databento's sentinel for a missing price (e.g. an empty book side)."""

UNDEF_TIMESTAMP: Final = UINT64_MAX
"""Databento's sentinel for a missing timestamp."""

Price = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
"""A price in units of 1e-9, or UNDEF_PRICE."""

Money = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
"""An amount of money (P&L, fees, notional) in units of 1e-9 of the account currency."""

Nanos = Annotated[int, Meta(ge=0)]
"""Nanoseconds since the Unix epoch, UTC, or UNDEF_TIMESTAMP."""

Quantity = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
"""A signed position or target in contracts/shares (negative is short)."""

OrderQuantity = Annotated[int, Meta(gt=0, le=INT64_MAX)]
"""An order's size: always positive; the side carries the direction."""

UInt8 = Annotated[int, Meta(ge=0, le=2**8 - 1)]
UInt16 = Annotated[int, Meta(ge=0, le=2**16 - 1)]
UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
UInt64 = Annotated[int, Meta(ge=0)]
Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]


class PriceError(ValueError):
    """A price cannot be represented or converted as asked."""


def price_to_decimal(price: int) -> Decimal:
    """Exact decimal value of a fixed-point price; UNDEF_PRICE is refused."""
    if price == UNDEF_PRICE:
        raise PriceError("cannot convert the undefined price sentinel to a Decimal")
    return Decimal(price).scaleb(-9)


def decimal_to_price(value: Decimal | str | int) -> int:
    """Fixed-point price of a decimal amount; refuses values finer than 1e-9 or out of range."""
    dec = Decimal(value)
    if not dec.is_finite():
        raise PriceError(f"price {value!r} is not a finite number")
    scaled = dec.scaleb(9)
    if scaled != scaled.to_integral_value():
        raise PriceError(f"price {value!r} has more precision than 1e-9")
    result = int(scaled)
    if not INT64_MIN <= result < UNDEF_PRICE:
        raise PriceError(f"price {value!r} is outside the int64 fixed-point range")
    return result


def round_to_tick(price: int, tick: int) -> int:
    """Round a fixed-point price to the nearest multiple of `tick`, ties to even."""
    if tick <= 0:
        raise PriceError(f"tick size must be positive, got {tick}")
    if price == UNDEF_PRICE:
        raise PriceError("cannot round the undefined price sentinel")
    ticks = Decimal(price) / Decimal(tick)
    return int(ticks.to_integral_value(rounding=ROUND_HALF_EVEN)) * tick


def price_for_broker(price: int, tick: int) -> Decimal:
    """The Decimal a broker API receives: rounded to the instrument's tick size."""
    return price_to_decimal(round_to_tick(price, tick))
