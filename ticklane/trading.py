"""Signals, orders, fills and positions: the facts that flow from strategies to the broker and back.

Each carries a deterministic id derived from what caused it (see `ticklane.ids`), so a
replay produces the same ids and every sink can be idempotent on them.
"""

from enum import StrEnum

import msgspec

from ticklane import ids
from ticklane.units import Money, Nanos, OrderQuantity, Price, Quantity, UInt32


class Side(StrEnum):
    """Direction of an order or fill."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """How an order may execute."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class PositionEffect(StrEnum):
    """What an order does to the position; options at every venue and equities at some need it
    (TastyTrade's "Buy to Open", Schwab's BUY_TO_COVER)."""

    OPEN = "open"
    """Opens or adds to a position (or may: it is not certain to only reduce one)."""
    CLOSE = "close"
    """Only brings the position toward zero, whether or not working orders fill first."""
    REVERSE = "reverse"
    """Closes and opens the other way in one order: only where the venue allows (futures)."""


class TimeInForce(StrEnum):
    """How long an order stays working."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    """Where an order is in its life; the allowed transitions live with the executor."""

    NEW = "new"
    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    """The broker's answer was lost (timeout, 5xx); resolved by looking the order up."""


class ComboLeg(msgspec.Struct, frozen=True, array_like=True):
    """One leg of a multi-leg position (a vertical, an iron condor): its symbol and how many of
    it one unit of the combination holds, signed (+ long, - short)."""

    symbol: str
    ratio: int
    instrument_id: UInt32 = 0


class Indicators(msgspec.Struct, frozen=True, array_like=True):
    """A strategy's indicator values right after it absorbed one bar of a symbol: what it
    acted on, for charts beside the bars (`indicators` topic, keyed by symbol)."""

    strategy: str
    symbol: str
    interval_ns: int
    ts_event: Nanos
    """The bar's open time, as `Bar.ts_event`."""
    prices: dict[str, Price | None]
    """Price-valued indicators by name (`ema_12`, `atr_14`, `supertrend_10_3`), in 1e-9
    units; None while one is still warming up."""
    directions: dict[str, int] = msgspec.field(default_factory=dict)
    """Trend directions by name (`supertrend_10_3`: +1 up, -1 down), once defined."""


class Signal(msgspec.Struct, frozen=True, array_like=True):
    """A strategy's statement of the position it wants in a symbol, not a buy or a sell.

    With `legs`, the position is in a combination traded as one multi-leg order: `symbol`
    names the combination (any name, unique within the strategy), `target_position` counts
    units of it, and `reference_price` is one unit's net price (the sum of ratio x leg price:
    negative for a credit). The positions held are the legs', each in its own symbol.
    """

    signal_id: str
    strategy: str
    symbol: str
    ts_event: Nanos
    sequence: UInt32
    target_position: Quantity
    instrument_id: UInt32 = 0
    reference_price: Price | None = None
    reason: str = ""
    legs: tuple[ComboLeg, ...] = ()

    @classmethod
    def create(
        cls,
        strategy: str,
        symbol: str,
        ts_event: int,
        target_position: int,
        *,
        sequence: int = 0,
        instrument_id: int = 0,
        reference_price: int | None = None,
        reason: str = "",
        legs: tuple[ComboLeg, ...] = (),
    ) -> "Signal":
        """A signal with its deterministic id computed from strategy, symbol, time and sequence."""
        return cls(
            signal_id=ids.signal_id(strategy, symbol, ts_event, sequence),
            strategy=strategy,
            symbol=symbol,
            ts_event=ts_event,
            sequence=sequence,
            target_position=target_position,
            instrument_id=instrument_id,
            reference_price=reference_price,
            reason=reason,
            legs=legs,
        )


class Order(msgspec.Struct, frozen=True, array_like=True):
    """An order as the ledger and the `orders` topic know it at one point of its life."""

    client_order_id: str
    signal_id: str
    strategy: str
    symbol: str
    side: Side
    quantity: OrderQuantity
    order_type: OrderType
    status: OrderStatus
    ts_event: Nanos
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Price | None = None
    stop_price: Price | None = None
    leg: UInt32 = 0
    venue_order_id: str = ""
    filled_quantity: Quantity = 0
    filled_notional: Money = 0
    """Sum of price x quantity over the fills, in 1e-9 units: average price without rounding."""
    reason: str = ""
    instrument_id: UInt32 = 0
    position_effect: PositionEffect = PositionEffect.OPEN
    legs: tuple[ComboLeg, ...] = ()
    """A multi-leg order's legs (`Signal.legs`): `quantity` then counts units of the
    combination, a leg trades `quantity x |ratio|`, and the prices are net prices per unit."""


class Fill(msgspec.Struct, frozen=True, array_like=True):
    """One execution reported by the venue."""

    fill_id: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    quantity: OrderQuantity
    price: Price
    ts_event: Nanos
    fee: Money = 0
    strategy: str = ""
    instrument_id: UInt32 = 0


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Net position in one symbol for one strategy (the `positions` topic is compacted on it)."""

    strategy: str
    symbol: str
    quantity: Quantity
    avg_price: Price
    realized_pnl: Money
    ts_event: Nanos
    last_fill_id: str = ""
    fees: Money = 0
    instrument_id: UInt32 = 0

    @property
    def key(self) -> str:
        """The compaction key: one live record per strategy and symbol."""
        return f"{self.strategy}/{self.symbol}"
