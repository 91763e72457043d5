"""How an order is priced when it is sent: at market, or as a marketable limit.

Pure. A marketable limit is a limit a number of ticks through the reference price (the
signal's, else the last mark): a buy at `reference + n * tick`, a sell at `reference - n *
tick`. It trades at once like a market order in a normal market, and in a gap or a thin book
it cannot fill far from where the strategy decided: the safe default for a real account.
The price is set when the order is decided, before the ledger's write-ahead, so a resend is
the same order.
"""

from typing import Literal

import msgspec

from ticklane.trading import Order, OrderType, Side, TimeInForce


class OrderStyle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the executor's orders are sent."""

    kind: Literal["market", "marketable_limit"] = "market"
    ticks_through: int = 4
    """For a marketable limit: how many ticks through the reference price."""
    time_in_force: TimeInForce = TimeInForce.DAY


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
        return Unpriced(f"no reference price for a marketable limit in {order.symbol}")
    if tick is None or tick <= 0:
        return Unpriced(f"no tick size for {order.symbol} (executor.tick_sizes)")
    through = style.ticks_through * tick
    # Onto the tick grid away from the market first (a buy up, a sell down), so the limit is
    # at least `ticks_through` ticks through the reference, whatever its grid.
    down = reference - reference % tick
    up = down if down == reference else down + tick
    limit = up + through if order.side is Side.BUY else down - through
    return msgspec.structs.replace(
        order,
        order_type=OrderType.LIMIT,
        limit_price=limit,
        time_in_force=style.time_in_force,
    )
