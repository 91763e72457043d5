"""Reading Databento symbols for the TastyTrade adapter: which endpoint, a CME option's parts."""

import re
from decimal import Decimal

import pytest
from tastytrade.order import InstrumentType

from executors.brokers.tastytrade.symbols import (
    FutureOptionSymbol,
    SymbolError,
    kind_of,
    kinds_to_try,
    parse_future_option,
)


@pytest.mark.parametrize(
    ("symbol", "parts"),
    [
        ("ESM4 P5230", FutureOptionSymbol("ESM4", "P", Decimal(5230))),
        ("ESM4 C5250", FutureOptionSymbol("ESM4", "C", Decimal(5250))),
        ("EW4M4 P5230", FutureOptionSymbol("EW4M4", "P", Decimal(5230))),
        ("NQZ24 C21000", FutureOptionSymbol("NQZ24", "C", Decimal(21000))),
    ],
)
def test_a_cme_option_symbol_splits_into_contract_right_and_strike(
    symbol: str, parts: FutureOptionSymbol
) -> None:
    assert parse_future_option(symbol) == parts
    assert kind_of(symbol) is InstrumentType.FUTURE_OPTION
    assert kinds_to_try(symbol) == (InstrumentType.FUTURE_OPTION,)


@pytest.mark.parametrize(
    "symbol", ["ESM4", "AAPL", "SPXW  261124C05900000", "ESM4 X5230", "ESM4  P5230", "ESM4 P"]
)
def test_what_is_not_a_cme_option_is_refused_naming_it(symbol: str) -> None:
    with pytest.raises(SymbolError, match=re.escape(repr(symbol))):
        parse_future_option(symbol)
    assert kind_of(symbol) is not InstrumentType.FUTURE_OPTION
