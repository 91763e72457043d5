"""Position accounting from fills, exactly in integers.

A `Holding` is a `Position` plus its exact cost basis: the signed sum of price x quantity over
the open quantity, in 1e-9 price units (before the multiplier). The wire `Position.avg_price` is
derived from it, rounded half to even; the basis itself is never rounded except when a partial
close takes its share of it, and that share is subtracted from the basis, so nothing is lost:
for any fills, realized + unrealized == cash flows - fees, exactly.

Fees are subtracted from `realized_pnl` when paid (opening fills included) and summed in `fees`.
A reversal realizes the closed part and opens the rest at the fill's price; its whole fee is paid
in the reversal's realized PnL.

Idempotency: a fill whose id equals `last_fill_id` is skipped. That is sound (a fill id names
one execution) and catches the usual replay, the last fill redelivered after a crash, but it is
not complete: an older fill replayed out of order would count twice. Complete idempotency is the
ledger's job, where fill_id is unique and the holding is written in the same transaction.
"""

from collections.abc import Iterable

import msgspec

from ticklane.trading import Fill, Position, Side


class PositionFillError(ValueError):
    """A fill for another symbol or strategy, or one that cannot be accounted (size, multiplier)."""


class Holding(msgspec.Struct, frozen=True, array_like=True):
    """A position and the exact cost basis of its open quantity (module docstring)."""

    position: Position
    cost_basis: int = 0
    """Signed sum of price x quantity over the open quantity; same sign as the quantity."""


def open_holding(strategy: str, symbol: str, *, instrument_id: int = 0, ts: int = 0) -> Holding:
    """A flat holding with nothing realized."""
    position = Position(
        strategy=strategy,
        symbol=symbol,
        quantity=0,
        avg_price=0,
        realized_pnl=0,
        ts_event=ts,
        instrument_id=instrument_id,
    )
    return Holding(position)


def holding_from_position(position: Position) -> Holding:
    """A holding rebuilt from a wire position, lossy: its basis is avg_price x quantity."""
    # The rounding of avg_price becomes part of the basis; prefer a stored holding or a replay.
    return Holding(position, position.avg_price * position.quantity)


def div_round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even; exact for any ints."""
    if denominator == 0:
        raise ZeroDivisionError("division by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def average_price(quantity: int, cost_basis: int) -> int:
    """Average open price in 1e-9 units, rounded half to even; 0 when flat."""
    return 0 if quantity == 0 else div_round_half_even(cost_basis, quantity)


def signed_quantity(fill: Fill) -> int:
    """The fill's quantity with the sign of its effect on the position (buy +, sell -)."""
    return fill.quantity if fill.side is Side.BUY else -fill.quantity


def apply_fill(holding: Holding, fill: Fill, multiplier: int) -> Holding:
    """The holding after one fill: quantity, basis, realized PnL net of fees, fees, last fill."""
    pos = holding.position
    if fill.fill_id and fill.fill_id == pos.last_fill_id:
        return holding  # the last fill redelivered (module docstring)
    _check(pos, fill, multiplier)
    delta = signed_quantity(fill)
    quantity, basis = pos.quantity, holding.cost_basis
    realized = 0
    if quantity != 0 and (quantity > 0) != (delta > 0):
        # Closing part (or all) of the position: it takes its share of the basis with it.
        closed = min(abs(delta), abs(quantity))
        closed_signed = closed if quantity > 0 else -closed
        removed = div_round_half_even(basis * closed, abs(quantity))
        realized = (fill.price * closed_signed - removed) * multiplier
        quantity -= closed_signed
        basis -= removed
        delta += closed_signed
    # Whatever is left of the fill opens or adds at the fill's price.
    quantity += delta
    basis += fill.price * delta
    updated = msgspec.structs.replace(
        pos,
        quantity=quantity,
        avg_price=average_price(quantity, basis),
        realized_pnl=pos.realized_pnl + realized - fill.fee,
        fees=pos.fees + fill.fee,
        ts_event=fill.ts_event,
        last_fill_id=fill.fill_id,
    )
    return Holding(updated, basis)


def _check(position: Position, fill: Fill, multiplier: int) -> None:
    """Raise `PositionFillError` unless the fill can be accounted in this position."""
    if fill.symbol != position.symbol:
        raise PositionFillError(f"fill {fill.fill_id} is for {fill.symbol}, not {position.symbol}")
    if fill.strategy and fill.strategy != position.strategy:
        raise PositionFillError(
            f"fill {fill.fill_id} is for strategy {fill.strategy}, not {position.strategy}"
        )
    if fill.quantity <= 0:
        raise PositionFillError(f"fill {fill.fill_id} has non-positive quantity {fill.quantity}")
    if multiplier <= 0:
        raise PositionFillError(f"multiplier must be positive, got {multiplier}")


def unrealized_pnl(holding: Holding, mark_price: int, multiplier: int) -> int:
    """Money the open quantity would realize at `mark_price`, before fees: exact."""
    return (mark_price * holding.position.quantity - holding.cost_basis) * multiplier


def apply_fills(holding: Holding, fills: Iterable[Fill], multiplier: int) -> Holding:
    """The holding after fills in the given order."""
    for fill in fills:
        holding = apply_fill(holding, fill, multiplier)
    return holding
