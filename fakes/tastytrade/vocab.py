"""TastyTrade's closed vocabularies, each value the exact wire string the API uses.

The fake keeps its own copy instead of importing the SDK's enums: it is the server, and a
mismatch between the two is exactly what its SDK-driven tests are there to catch.
"""

from enum import StrEnum
from typing import Final


class InstrumentType(StrEnum):
    """`instrument-type` of a leg, position or instrument (the kinds the fake trades)."""

    EQUITY = "Equity"
    EQUITY_OPTION = "Equity Option"
    FUTURE = "Future"
    FUTURE_OPTION = "Future Option"


class OrderAction(StrEnum):
    """A leg's `action`; Buy and Sell are for outright futures only."""

    BUY_TO_OPEN = "Buy to Open"
    BUY_TO_CLOSE = "Buy to Close"
    SELL_TO_OPEN = "Sell to Open"
    SELL_TO_CLOSE = "Sell to Close"
    BUY = "Buy"
    SELL = "Sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the direction the leg moves the position."""
        return -1 if self.value.startswith("Sell") else 1


class OrderStatus(StrEnum):
    """An order's `status` (the fake uses Received, Live and the terminal ones)."""

    RECEIVED = "Received"
    ROUTED = "Routed"
    IN_FLIGHT = "In Flight"
    CONTINGENT = "Contingent"
    LIVE = "Live"
    CANCEL_REQUESTED = "Cancel Requested"
    REPLACE_REQUESTED = "Replace Requested"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    REMOVED = "Removed"
    PARTIALLY_REMOVED = "Partially Removed"


TERMINAL: Final = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.REMOVED,
        OrderStatus.PARTIALLY_REMOVED,
    }
)
"""Statuses an order never leaves (developer.tastytrade.com/order-flow, "Terminal")."""


class OrderType(StrEnum):
    """An order's `order-type`."""

    LIMIT = "Limit"
    MARKET = "Market"
    MARKETABLE_LIMIT = "Marketable Limit"
    STOP = "Stop"
    STOP_LIMIT = "Stop Limit"
    NOTIONAL_MARKET = "Notional Market"


class TimeInForce(StrEnum):
    """An order's `time-in-force`."""

    DAY = "Day"
    GTC = "GTC"
    GTD = "GTD"
    EXT = "Ext"
    EXT_OVERNIGHT = "Ext Overnight"
    GTC_EXT = "GTC Ext"
    GTC_EXT_OVERNIGHT = "GTC Ext Overnight"
    IOC = "IOC"


class PriceEffect(StrEnum):
    """The sign of an amount on the wire: a debit is paid, a credit received."""

    DEBIT = "Debit"
    CREDIT = "Credit"
    NONE = "None"
