"""How an order is priced when it is sent: at market, as a marketable limit, a limit or a stop.

Pure. A marketable limit is a limit a number of ticks through the reference price (the
signal's, else the last mark): a buy at `reference + n * tick`, a sell at `reference - n *
tick`. It trades at once like a market order in a normal market, and in a gap or a thin book
it cannot fill far from where the strategy decided: the safe default for a real account.
The price is set when the order is decided, before the ledger's write-ahead, so a resend is
the same order.

A limit rests on the strategy's side of the reference: a buy at `reference - n * tick`, a sell
at `reference + n * tick` (n = `ticks_away`, 0 joins the reference), for entries that wait for
a better price. A stop triggers beyond it: a buy stop at `reference + n * tick`, a sell stop at
`reference - n * tick`, for entries that wait for the move to confirm itself. Both may never
trade (their time in force ends them); a new signal for the symbol first cancels what rests
(see the engine), so a stale order is never netted against as if it would fill.
"""

from typing import Literal

import msgspec

from ticklane.trading import Order, OrderType, Side, TimeInForce


class OrderStyle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the executor's orders are sent."""

    kind: Literal["market", "marketable_limit", "limit", "stop"] = "market"
    ticks_through: int = 4
    """For a marketable limit: how many ticks through the reference price."""
    time_in_force: TimeInForce = TimeInForce.DAY
    ticks_away: int = 0
    """For a limit or a stop: how many ticks from the reference, away from the market for a
    limit (a better price), beyond it for a stop (a trigger the move must reach)."""

    @property
    def rests(self) -> bool:
        """Whether orders of this style are meant to wait at the venue rather than trade now."""
        return self.kind in ("limit", "stop")


class Unpriced(msgspec.Struct, frozen=True):
    """An order that cannot be priced as asked; the reason is recorded as its rejection."""

    reason: str


def price_order(
    order: Order, style: OrderStyle, reference: int | None, tick: int | None
) -> Order | Unpriced:
    """The order as `style` sends it; `reference` and `tick` in 1e-9 price units."""
    if style.kind == "market":
        return msgspec.structs.replace(
            order, order_type=OrderType.MARKET, time_in_force=style.time_in_force
        )
    if reference is None:
        what = style.kind.replace("_", " ")
        return Unpriced(f"no reference price for a {what} order in {order.symbol}")
    if tick is None or tick <= 0:
        return Unpriced(f"no tick size for {order.symbol} (executor.tick_sizes)")
    down = reference - reference % tick
    up = down if down == reference else down + tick
    buy = order.side is Side.BUY
    if style.kind == "stop":
        # Onto the grid beyond the reference (a buy up, a sell down), then further.
        away = style.ticks_away * tick
        trigger = up + away if buy else down - away
        return msgspec.structs.replace(
            order,
            order_type=OrderType.STOP,
            stop_price=trigger,
            time_in_force=style.time_in_force,
        )
    if style.kind == "limit":
        # Onto the grid on the better side (a buy down, a sell up), then further.
        away = style.ticks_away * tick
        limit = down - away if buy else up + away
    else:
        # Onto the grid away from the market first (a buy up, a sell down), so the limit is
        # at least `ticks_through` ticks through the reference, whatever its grid.
        through = style.ticks_through * tick
        limit = up + through if buy else down - through
    return msgspec.structs.replace(
        order,
        order_type=OrderType.LIMIT,
        limit_price=limit,
        time_in_force=style.time_in_force,
    )
