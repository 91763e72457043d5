"""Schwab's closed vocabularies, each value the exact wire string of the Trader API.

Values are the enums of Schwab's OpenAPI document (`/work/shared/data/schwab/`) and the
account streamer's message types (QuantConnect's `MessageType.cs`, brokers.md 2d). The fake
keeps its own copy instead of importing schwab-py's enums: it is the server, and a mismatch
between the two is what its SDK-driven tests are there to catch.
"""

from enum import StrEnum
from typing import Final


class AssetType(StrEnum):
    """`instrument.assetType` (spec `assetType`); the fake trades EQUITY and OPTION only."""

    EQUITY = "EQUITY"
    OPTION = "OPTION"
    MUTUAL_FUND = "MUTUAL_FUND"
    FUTURE = "FUTURE"
    FOREX = "FOREX"
    INDEX = "INDEX"
    CASH_EQUIVALENT = "CASH_EQUIVALENT"
    FIXED_INCOME = "FIXED_INCOME"
    PRODUCT = "PRODUCT"
    CURRENCY = "CURRENCY"
    COLLECTIVE_INVESTMENT = "COLLECTIVE_INVESTMENT"


TRADED: Final = frozenset({AssetType.EQUITY, AssetType.OPTION})


class Instruction(StrEnum):
    """A leg's `instruction` (spec `instruction`)."""

    BUY = "BUY"
    SELL = "SELL"
    BUY_TO_COVER = "BUY_TO_COVER"
    SELL_SHORT = "SELL_SHORT"
    BUY_TO_OPEN = "BUY_TO_OPEN"
    BUY_TO_CLOSE = "BUY_TO_CLOSE"
    SELL_TO_OPEN = "SELL_TO_OPEN"
    SELL_TO_CLOSE = "SELL_TO_CLOSE"
    EXCHANGE = "EXCHANGE"
    SELL_SHORT_EXEMPT = "SELL_SHORT_EXEMPT"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the direction the leg moves the position."""
        return 1 if self.value.startswith("BUY") else -1


EQUITY_INSTRUCTIONS: Final = frozenset(
    {Instruction.BUY, Instruction.SELL, Instruction.BUY_TO_COVER, Instruction.SELL_SHORT}
)
"""What an equity leg may say (schwab-py `EquityInstruction`)."""
OPTION_INSTRUCTIONS: Final = frozenset(
    {
        Instruction.BUY_TO_OPEN,
        Instruction.BUY_TO_CLOSE,
        Instruction.SELL_TO_OPEN,
        Instruction.SELL_TO_CLOSE,
    }
)
"""What an option leg may say (schwab-py `OptionInstruction`)."""
OPENING: Final = frozenset(
    {Instruction.BUY, Instruction.SELL_SHORT, Instruction.BUY_TO_OPEN, Instruction.SELL_TO_OPEN}
)
"""Instructions whose `positionEffect` is OPENING (the rest close)."""


class OrderType(StrEnum):
    """An order's `orderType` (spec `orderType`; requests may not say UNKNOWN)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"
    CABINET = "CABINET"
    NON_MARKETABLE = "NON_MARKETABLE"
    MARKET_ON_CLOSE = "MARKET_ON_CLOSE"
    EXERCISE = "EXERCISE"
    TRAILING_STOP_LIMIT = "TRAILING_STOP_LIMIT"
    NET_DEBIT = "NET_DEBIT"
    NET_CREDIT = "NET_CREDIT"
    NET_ZERO = "NET_ZERO"
    LIMIT_ON_CLOSE = "LIMIT_ON_CLOSE"
    UNKNOWN = "UNKNOWN"


NET: Final = frozenset({OrderType.NET_DEBIT, OrderType.NET_CREDIT, OrderType.NET_ZERO})
"""Net-priced types: a multi-leg order's one price for all its legs."""
FAKE_TRADES: Final = frozenset(
    {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, *NET}
)


class ComplexOrderStrategyType(StrEnum):
    """`complexOrderStrategyType` (spec); the fake checks the shape of VERTICAL and IRON_CONDOR."""

    NONE = "NONE"
    COVERED = "COVERED"
    VERTICAL = "VERTICAL"
    BACK_RATIO = "BACK_RATIO"
    CALENDAR = "CALENDAR"
    DIAGONAL = "DIAGONAL"
    STRADDLE = "STRADDLE"
    STRANGLE = "STRANGLE"
    COLLAR_SYNTHETIC = "COLLAR_SYNTHETIC"
    BUTTERFLY = "BUTTERFLY"
    CONDOR = "CONDOR"
    IRON_CONDOR = "IRON_CONDOR"
    VERTICAL_ROLL = "VERTICAL_ROLL"
    COLLAR_WITH_STOCK = "COLLAR_WITH_STOCK"
    DOUBLE_DIAGONAL = "DOUBLE_DIAGONAL"
    UNBALANCED_BUTTERFLY = "UNBALANCED_BUTTERFLY"
    UNBALANCED_CONDOR = "UNBALANCED_CONDOR"
    UNBALANCED_IRON_CONDOR = "UNBALANCED_IRON_CONDOR"
    UNBALANCED_VERTICAL_ROLL = "UNBALANCED_VERTICAL_ROLL"
    MUTUAL_FUND_SWAP = "MUTUAL_FUND_SWAP"
    CUSTOM = "CUSTOM"


class OrderStrategyType(StrEnum):
    """`orderStrategyType` (spec); the fake places SINGLE orders only."""

    SINGLE = "SINGLE"
    CANCEL = "CANCEL"
    RECALL = "RECALL"
    PAIR = "PAIR"
    FLATTEN = "FLATTEN"
    TWO_DAY_SWAP = "TWO_DAY_SWAP"
    BLAST_ALL = "BLAST_ALL"
    OCO = "OCO"
    TRIGGER = "TRIGGER"


class Duration(StrEnum):
    """`duration` (spec): the time in force. The fake records it; nothing expires by it."""

    DAY = "DAY"
    GOOD_TILL_CANCEL = "GOOD_TILL_CANCEL"
    FILL_OR_KILL = "FILL_OR_KILL"
    IMMEDIATE_OR_CANCEL = "IMMEDIATE_OR_CANCEL"
    END_OF_WEEK = "END_OF_WEEK"
    END_OF_MONTH = "END_OF_MONTH"
    NEXT_END_OF_MONTH = "NEXT_END_OF_MONTH"
    UNKNOWN = "UNKNOWN"


class Session(StrEnum):
    """`session` (spec): which trading session the order works in."""

    NORMAL = "NORMAL"
    AM = "AM"
    PM = "PM"
    SEAMLESS = "SEAMLESS"


class Status(StrEnum):
    """An order's `status` (spec `status`; the fake uses ACCEPTED, WORKING and terminal ones)."""

    AWAITING_PARENT_ORDER = "AWAITING_PARENT_ORDER"
    AWAITING_CONDITION = "AWAITING_CONDITION"
    AWAITING_STOP_CONDITION = "AWAITING_STOP_CONDITION"
    AWAITING_MANUAL_REVIEW = "AWAITING_MANUAL_REVIEW"
    ACCEPTED = "ACCEPTED"
    AWAITING_UR_OUT = "AWAITING_UR_OUT"
    PENDING_ACTIVATION = "PENDING_ACTIVATION"
    QUEUED = "QUEUED"
    WORKING = "WORKING"
    REJECTED = "REJECTED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    PENDING_REPLACE = "PENDING_REPLACE"
    REPLACED = "REPLACED"
    FILLED = "FILLED"
    EXPIRED = "EXPIRED"
    NEW = "NEW"
    AWAITING_RELEASE_TIME = "AWAITING_RELEASE_TIME"
    PENDING_ACKNOWLEDGEMENT = "PENDING_ACKNOWLEDGEMENT"
    PENDING_RECALL = "PENDING_RECALL"
    UNKNOWN = "UNKNOWN"


TERMINAL: Final = frozenset(
    {Status.REJECTED, Status.CANCELED, Status.REPLACED, Status.FILLED, Status.EXPIRED}
)
"""Statuses an order never leaves."""


class MessageType(StrEnum):
    """An ACCT_ACTIVITY `MESSAGE_TYPE` (field "2"), as QuantConnect's client names them."""

    SUBSCRIBED = "SUBSCRIBED"
    ORDER_CREATED = "OrderCreated"
    ORDER_ACCEPTED = "OrderAccepted"
    EXECUTION_REQUESTED = "ExecutionRequested"
    EXECUTION_REQUEST_CREATED = "ExecutionRequestCreated"
    EXECUTION_REQUEST_COMPLETED = "ExecutionRequestCompleted"
    EXECUTION_CREATED = "ExecutionCreated"
    CANCEL_ACCEPTED = "CancelAccepted"
    ORDER_UR_OUT_COMPLETED = "OrderUROutCompleted"
    ORDER_FILL_COMPLETED = "OrderFillCompleted"
    CHANGE_CREATED = "ChangeCreated"
    CHANGE_ACCEPTED = "ChangeAccepted"


FILL_MESSAGES: Final = frozenset({MessageType.EXECUTION_CREATED, MessageType.ORDER_FILL_COMPLETED})
"""The messages that announce a fill: the ones the duplicate and reorder faults act on."""


class OutCancelType(StrEnum):
    """Why an order left the book (`OrderUROutCompleted`'s `OutCancelType`, per QuantConnect)."""

    SYSTEM_REJECT = "SystemReject"
    CLIENT_CANCEL = "ClientCancel"
