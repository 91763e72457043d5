"""Pre-trade risk checks and the day's PnL they use: pure functions of the values passed in.

Nothing here reads the clock or a store: the caller passes the time, the timestamps of recent
submits, the kill switch state and the day's PnL computed from the durable fills, which is what
lets a restart keep the daily loss (the fills are in the ledger, not in memory).

Working orders count against the position both ways: an order passes a limit only if it does so
whether every working order fills or none does, because either may still happen.
"""

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Final

import msgspec

from executors.netting import is_reducing
from executors.positions import Holding, apply_fill, open_holding, unrealized_pnl
from ticklane.control import KillSwitchState
from ticklane.trading import Fill, Order, Side
from ticklane.units import Money

RATE_WINDOW_NS: Final = 60 * 1_000_000_000
"""The order-rate window: one minute, sliding."""


class RejectReason(StrEnum):
    """Why risk refused an order (a metric label and the order's recorded reason)."""

    HALTED = "halted"
    REDUCING_ONLY = "reducing_only"
    DAILY_LOSS = "daily_loss"
    ORDER_RATE = "order_rate"
    MAX_POSITION = "max_position"
    MAX_NOTIONAL = "max_notional"
    NO_PRICE = "no_price"
    UNRESOLVED_ORDER = "unresolved_order"


class RiskLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits for one account; `position_overrides` replaces `max_position` for some symbols."""

    max_position: int
    """Largest absolute position per symbol, in contracts or shares."""
    max_notional: Money
    """Largest |price| x quantity x multiplier of one order, in 1e-9 currency units."""
    max_orders_per_minute: int
    daily_loss_limit: Money
    """Positive: new exposure stops once the day's PnL is at or below minus this."""
    position_overrides: dict[str, int] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse limits that would make every check meaningless."""
        numbers = (self.max_position, self.max_notional, self.max_orders_per_minute)
        if min(numbers, default=0) < 0 or any(v < 0 for v in self.position_overrides.values()):
            raise ValueError("risk limits must not be negative")
        if self.daily_loss_limit <= 0:
            raise ValueError("daily_loss_limit must be positive")

    def max_position_for(self, symbol: str) -> int:
        """The position limit for a symbol."""
        return self.position_overrides.get(symbol, self.max_position)


class RiskContext(msgspec.Struct, frozen=True):
    """Everything about the moment an order is checked, passed in rather than looked up."""

    now: int
    """Time of the check, ns."""
    position: int
    """Signed position in the order's symbol (strategy scope chosen by the caller)."""
    pending: int
    """Signed unfilled quantity of working orders in the same scope."""
    kill_switch: KillSwitchState
    day_pnl: Money
    """From `daily_pnl` over the durable fills."""
    recent_submits: tuple[int, ...] = ()
    """ns timestamps of orders submitted recently (older ones are ignored)."""
    price: int | None = None
    """Reference or mark price for orders without a limit or stop price, 1e-9 units."""
    multiplier: int = 1
    state_reason: str = ""
    """Why the kill switch state is what it is, when the venue set it (its words)."""
    unresolved: tuple[str, ...] = ()
    """Client order ids in the order's symbol whose fate at the venue is not known (UNKNOWN)."""

    def __post_init__(self) -> None:
        """A non-positive multiplier would make every notional pass."""
        if self.multiplier <= 0:
            raise ValueError(f"multiplier must be positive, got {self.multiplier}")


class Approved(msgspec.Struct, frozen=True):
    """The order may be sent."""


class Rejected(msgspec.Struct, frozen=True):
    """The order must not be sent; recorded as an event with this reason, never raised."""

    reason: RejectReason
    detail: str


RiskDecision = Approved | Rejected
APPROVED: Final = Approved()


def signed(order: Order) -> int:
    """The order's quantity with the sign of its effect on the position."""
    return order.quantity if order.side is Side.BUY else -order.quantity


def reduces_exposure(order: Order, position: int, pending: int) -> bool:
    """Whether the order only reduces |position|, whether or not the working orders fill."""
    change = signed(order)
    effective = position + pending
    return is_reducing(position, position + change) and is_reducing(effective, effective + change)


def _kill_switch(order: Order, ctx: RiskContext, limits: RiskLimits) -> Rejected | None:
    why = f" ({ctx.state_reason})" if ctx.state_reason else ""
    if ctx.kill_switch is KillSwitchState.HALTED:
        return Rejected(RejectReason.HALTED, f"kill switch is halted: no orders{why}")
    if ctx.kill_switch is KillSwitchState.REDUCING and not reduces_exposure(
        order, ctx.position, ctx.pending
    ):
        return Rejected(
            RejectReason.REDUCING_ONLY,
            f"kill switch is reducing: {order.side} {order.quantity} does not reduce "
            f"position {ctx.position} (working {ctx.pending}){why}",
        )
    return None


def _unresolved(order: Order, ctx: RiskContext, limits: RiskLimits) -> Rejected | None:
    # An order whose answer was lost may be working at the venue: until the venue says, the
    # symbol's position is not known, and any new order could double it.
    if not ctx.unresolved:
        return None
    return Rejected(
        RejectReason.UNRESOLVED_ORDER,
        f"{order.symbol} has orders the venue has not confirmed or denied: "
        f"{', '.join(ctx.unresolved)}",
    )


def _daily_loss(order: Order, ctx: RiskContext, limits: RiskLimits) -> Rejected | None:
    # Once the limit is reached, only closing is allowed: blocking it would trap the loss.
    if ctx.day_pnl > -limits.daily_loss_limit or reduces_exposure(order, ctx.position, ctx.pending):
        return None
    return Rejected(
        RejectReason.DAILY_LOSS,
        f"day PnL {ctx.day_pnl} is at or past the loss limit {limits.daily_loss_limit}",
    )


def _order_rate(order: Order, ctx: RiskContext, limits: RiskLimits) -> Rejected | None:
    # Stamps after `now` count too: a clock step back must not reopen the window.
    recent = sum(1 for ts in ctx.recent_submits if ts > ctx.now - RATE_WINDOW_NS)
    if recent < limits.max_orders_per_minute:
        return None
    return Rejected(
        RejectReason.ORDER_RATE,
        f"{recent} orders in the last minute, limit {limits.max_orders_per_minute}",
    )


def _max_position(order: Order, ctx: RiskContext, limits: RiskLimits) -> Rejected | None:
    limit = limits.max_position_for(order.symbol)
    ends = (ctx.position, ctx.position + ctx.pending)
    before = max(abs(end) for end in ends)
    after = max(abs(end + signed(order)) for end in ends)
    # An order that does not grow the worst case passes even above the limit (limits lowered).
    if after <= limit or after <= before:
        return None
    return Rejected(
        RejectReason.MAX_POSITION,
        f"{order.symbol} position could reach {after}, limit {limit}",
    )


def _max_notional(order: Order, ctx: RiskContext, limits: RiskLimits) -> Rejected | None:
    price = next(
        (p for p in (order.limit_price, order.stop_price, ctx.price) if p is not None), None
    )
    if price is None:
        return Rejected(RejectReason.NO_PRICE, "no limit, stop or reference price to value it")
    notional = abs(price) * order.quantity * ctx.multiplier
    if notional <= limits.max_notional:
        return None
    return Rejected(
        RejectReason.MAX_NOTIONAL, f"notional {notional} exceeds limit {limits.max_notional}"
    )


_CHECKS: Final[tuple[Callable[[Order, RiskContext, RiskLimits], Rejected | None], ...]] = (
    _kill_switch,
    _unresolved,
    _daily_loss,
    _order_rate,
    _max_position,
    _max_notional,
)
"""In order: the first refusal is the reason reported."""


def check_order(order: Order, ctx: RiskContext, limits: RiskLimits) -> RiskDecision:
    """Approve the order, or reject it with the first failing check's reason."""
    for check in _CHECKS:
        rejected = check(order, ctx, limits)
        if rejected is not None:
            return rejected
    return APPROVED


class UnknownMultiplierError(ValueError):
    """A fill for a symbol whose contract multiplier was not given."""


def daily_pnl(
    fills: Iterable[Fill],
    *,
    day_start: int,
    multipliers: Mapping[str, int],
    opening: Iterable[Holding] = (),
    marks: Mapping[str, int] | None = None,
) -> Money:
    """The day's PnL: realized net of fees by fills at or after `day_start`, plus unrealized.

    `fills` may start before the day (they build the cost basis the day's closes realize
    against) or `opening` may give the holdings at their start; never both for the same fills.
    Fills are taken in ts_event order and counted once per fill_id. With `marks`, open
    positions in marked symbols add their unrealized PnL against cost basis: the ledger keeps no
    prior-day marks, so a gain carried into the day offsets today's losses.
    """
    holdings = {(h.position.strategy, h.position.symbol): h for h in opening}
    seen: set[str] = set()
    total = 0
    for fill in sorted(fills, key=lambda f: f.ts_event):
        if fill.fill_id in seen:
            continue
        seen.add(fill.fill_id)
        key = (fill.strategy, fill.symbol)
        before = holdings.get(key)
        if before is None:
            before = open_holding(fill.strategy, fill.symbol)
        after = apply_fill(before, fill, _multiplier(multipliers, fill.symbol))
        holdings[key] = after
        if fill.ts_event >= day_start:
            total += after.position.realized_pnl - before.position.realized_pnl
    for (_, symbol), holding in holdings.items():
        if marks and symbol in marks and holding.position.quantity:
            total += unrealized_pnl(holding, marks[symbol], _multiplier(multipliers, symbol))
    return total


def _multiplier(multipliers: Mapping[str, int], symbol: str) -> int:
    # No default of 1: an option priced per share but traded per 100 would understate losses.
    if symbol not in multipliers:
        raise UnknownMultiplierError(f"no multiplier for {symbol}")
    return multipliers[symbol]
