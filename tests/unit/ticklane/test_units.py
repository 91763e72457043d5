"""Fixed-point prices convert to Decimal exactly and round to tick sizes correctly."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticklane.units import (
    INT64_MAX,
    INT64_MIN,
    UNDEF_PRICE,
    PriceError,
    decimal_to_price,
    price_for_broker,
    price_to_decimal,
    round_to_tick,
)


@given(st.integers(INT64_MIN, INT64_MAX - 1))
def test_decimal_round_trip_is_exact(price: int) -> None:
    assert decimal_to_price(price_to_decimal(price)) == price


def test_known_values() -> None:
    assert price_to_decimal(5_528_750_000_000) == Decimal("5528.75")
    assert decimal_to_price("0.000000001") == 1
    assert decimal_to_price(Decimal("-12.5")) == -12_500_000_000


@pytest.mark.parametrize("bad", ["0.0000000001", "NaN", "Infinity", str(2**64)])
def test_unrepresentable_decimals_are_refused(bad: str) -> None:
    with pytest.raises(PriceError):
        decimal_to_price(bad)


def test_undefined_price_is_never_converted() -> None:
    with pytest.raises(PriceError, match="undefined"):
        price_to_decimal(UNDEF_PRICE)
    with pytest.raises(PriceError, match="undefined"):
        round_to_tick(UNDEF_PRICE, 250_000_000)


@pytest.mark.parametrize(
    ("price", "tick", "expected"),
    [
        (5_528_760_000_000, 250_000_000, 5_528_750_000_000),
        (5_528_870_000_000, 250_000_000, 5_528_750_000_000),  # .12 above .75, .13 below 29.00
        (5_528_880_000_000, 250_000_000, 5_529_000_000_000),  # .13 above .75, .12 below 29.00
        (5_528_875_000_000, 250_000_000, 5_529_000_000_000),  # a tie goes to the even tick
        (5_528_625_000_000, 250_000_000, 5_528_500_000_000),  # a tie goes to the even tick
        (-1_130_000_000, 50_000_000, -1_150_000_000),  # 1.13 is 22.6 ticks of .05: 23 ticks
        (1_000_000_001, 1, 1_000_000_001),
    ],
)
def test_round_to_tick(price: int, tick: int, expected: int) -> None:
    assert round_to_tick(price, tick) == expected


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**10))
def test_rounded_price_is_a_multiple_of_the_tick_and_nearest(price: int, tick: int) -> None:
    rounded = round_to_tick(price, tick)
    assert rounded % tick == 0
    assert abs(rounded - price) * 2 <= tick


def test_price_for_broker_is_a_rounded_decimal() -> None:
    assert price_for_broker(5_528_760_000_000, 250_000_000) == Decimal("5528.75")
    with pytest.raises(PriceError, match="positive"):
        price_for_broker(1, 0)
