"""Positions and cash from the fills: the TastyTrade fake's arithmetic, fed Schwab fills.

Pure. `fakes.tastytrade.portfolio` nets fills into holdings (average open price, realized
P&L) and cash; it reads a fill's symbol, direction, quantity, price and kind, so a Schwab
fill is shown to it in that fake's terms. Equities and options pay their notional in cash
(the Trader API has no futures).
"""

from collections.abc import Callable, Iterable

from fakes.schwab.instruments import catalogue_type
from fakes.schwab.orders import FakeFill
from fakes.tastytrade import orders as tt
from fakes.tastytrade import portfolio
from fakes.tastytrade.portfolio import Holding
from fakes.tastytrade.vocab import OrderAction

__all__ = ["Holding", "cash_after", "holdings", "market_value"]

market_value = portfolio.market_value


def _as_counted(fill: FakeFill) -> tt.FakeFill:
    action = OrderAction.BUY_TO_OPEN if fill.instruction.sign > 0 else OrderAction.SELL_TO_OPEN
    return tt.FakeFill(
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        account=fill.account,
        leg=fill.leg,
        symbol=fill.symbol,
        instrument_type=catalogue_type(fill.asset_type),
        action=action,
        quantity=fill.quantity,
        price=fill.price,
        filled_at=fill.filled_at,
        recorded_at=fill.recorded_at,
        seq=fill.seq,
    )


def holdings(fills: Iterable[FakeFill], multiplier: Callable[[str], int]) -> dict[str, Holding]:
    """Net position per symbol from fills in the order made (closed ones kept, at zero)."""
    return portfolio.holdings((_as_counted(f) for f in fills), multiplier)


def cash_after(start: int, fills: list[FakeFill], multiplier: Callable[[str], int]) -> int:
    """Cash after paying for (or receiving) every fill's notional."""
    counted = [_as_counted(f) for f in fills]
    return portfolio.cash_after(start, counted, portfolio.holdings(counted, multiplier), multiplier)
