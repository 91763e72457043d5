"""What a backtest made: round trips, the equity curve and the statistics a trader reads.

Pure: fills and bar closes in, values out. Money is integer 1e-9 currency units, prices
integer 1e-9 price units, as everywhere inside ticklane; a fill's money is quantity x
price x the symbol's contract multiplier. Ratios (win rate, Sharpe, ...) are floats.

A round trip is a position from flat back to flat (a reversal closes one and opens the
next at the same fill). Its P&L is what its fills made, at their prices, net of their fees.
The equity curve marks every open position at each bar close, so drawdowns and the
per-bar returns behind Sharpe and Sortino see open losses, not only realised ones.
"""

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from ticklane.trading import Fill, Side

TRADING_DAYS: Final = 252
"""Days a year for annualising per-bar returns (with the bars a day the data shows)."""
DAY_NS: Final = 86_400 * 1_000_000_000


@dataclass
class RoundTrip:
    """One position from flat back to flat, in one symbol."""

    symbol: str
    direction: int
    """+1 long, -1 short."""
    opened_ns: int
    closed_ns: int = -1
    """-1 while still open at the end of the data."""
    quantity: int = 0
    """The largest absolute position held."""
    entry_price: int = 0
    """Average price of the fills that built the position (1e-9, rounded to nearest)."""
    exit_price: int = 0
    """Average price of the fills that closed it (0 while open)."""
    pnl: int = 0
    """Gross: what the prices made, before fees (open trips: realised part only)."""
    fees: int = 0

    @property
    def net(self) -> int:
        """P&L after fees."""
        return self.pnl - self.fees

    @property
    def closed(self) -> bool:
        """Whether the position came back to flat within the data."""
        return self.closed_ns >= 0


@dataclass
class _Book:
    """One symbol's position while fills are applied: size, cost, and the trip it is in."""

    position: int = 0
    cost: int = 0
    """Sum of price x quantity over the open position, what it cost (before multiplier)."""
    trip: RoundTrip | None = None
    entry_notional: int = 0
    entry_quantity: int = 0
    exit_notional: int = 0
    exit_quantity: int = 0


def _close_part(book: _Book, quantity: int, price: int, multiplier: int) -> int:
    """Take `quantity` (>0) off the open position at `price`; the gross P&L it realises.
    The last part takes the rest of the cost, so a whole trip's P&L is exact."""
    held = abs(book.position)
    part = book.cost if quantity == held else book.cost * quantity // held
    direction = 1 if book.position > 0 else -1
    book.cost -= part
    book.position -= direction * quantity
    book.exit_notional += price * quantity
    book.exit_quantity += quantity
    return direction * (price * quantity - part) * multiplier


def _average(notional: int, quantity: int) -> int:
    return (notional + quantity // 2) // quantity if quantity else 0


def round_trips(fills: Iterable[Fill], multipliers: Mapping[str, int]) -> list[RoundTrip]:
    """Every round trip the fills (in time order) make, in the order they opened."""
    books: dict[str, _Book] = {}
    trips: list[RoundTrip] = []
    for fill in fills:
        book = books.setdefault(fill.symbol, _Book())
        multiplier = multipliers.get(fill.symbol, 1)
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        remaining = signed
        # The fee goes to the trip the fill closes, or, for the part that opens, to the new.
        closing = 0
        if book.position and (book.position > 0) != (signed > 0):
            closing = min(abs(signed), abs(book.position))
            assert book.trip is not None  # noqa: S101 - a position always has its trip
            book.trip.pnl += _close_part(book, closing, fill.price, multiplier)
            book.trip.fees += fill.fee * closing // fill.quantity
            remaining = signed - (closing if signed > 0 else -closing)
            if book.position == 0:
                book.trip.closed_ns = fill.ts_event
                book.trip.exit_price = _average(book.exit_notional, book.exit_quantity)
                book.trip = None
        if remaining:
            if book.trip is None:
                book.trip = RoundTrip(fill.symbol, 1 if remaining > 0 else -1, fill.ts_event)
                book.entry_notional = book.entry_quantity = 0
                book.exit_notional = book.exit_quantity = 0
                trips.append(book.trip)
            book.position += remaining
            book.cost += fill.price * abs(remaining)
            book.entry_notional += fill.price * abs(remaining)
            book.entry_quantity += abs(remaining)
            book.trip.fees += fill.fee - fill.fee * closing // fill.quantity
            book.trip.quantity = max(book.trip.quantity, abs(book.position))
            book.trip.entry_price = _average(book.entry_notional, book.entry_quantity)
    return trips


class EquityPoint(msgspec.Struct, frozen=True, array_like=True):
    """The account at one bar close: what its fills made, open positions at the closes."""

    ts_event: int
    pnl: int
    """Gross P&L so far, open positions marked at the latest closes (1e-9 currency units)."""
    fees: int
    equity: int
    """pnl - fees: the account's gain so far (add the capital for its value)."""
    exposed: bool
    """Whether any position was open at this close."""


class _Marked:
    """Positions and the money paid for them, per symbol, marked at the latest closes."""

    def __init__(self, multipliers: Mapping[str, int]) -> None:
        self.multipliers = multipliers
        self.positions: dict[str, int] = {}
        self.cash: dict[str, int] = {}
        self.fees: dict[str, int] = {}
        self.marks: dict[str, int] = {}

    def apply(self, fill: Fill) -> None:
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        multiplier = self.multipliers.get(fill.symbol, 1)
        self.positions[fill.symbol] = self.positions.get(fill.symbol, 0) + signed
        self.cash[fill.symbol] = self.cash.get(fill.symbol, 0) - signed * fill.price * multiplier
        self.fees[fill.symbol] = self.fees.get(fill.symbol, 0) + fill.fee
        self.marks[fill.symbol] = fill.price  # the latest price known, until a close

    def pnl(self, symbol: str) -> int:
        """Gross P&L of one symbol at its latest mark."""
        held = self.positions.get(symbol, 0)
        mark = self.marks.get(symbol, 0)
        return self.cash.get(symbol, 0) + held * mark * self.multipliers.get(symbol, 1)


def equity_curve(
    fills: Sequence[Fill],
    closes: Iterable[tuple[int, str, int]],
    multipliers: Mapping[str, int],
) -> tuple[list[EquityPoint], dict[str, int]]:
    """The account at every bar close `(ts_close, symbol, close)` (time order): the fills up
    to that time applied, every open position marked at its symbol's latest close. Also
    each symbol's net P&L at the end (fills after the last close marked at their price)."""
    book = _Marked(multipliers)
    at = 0
    points: dict[int, EquityPoint] = {}
    for ts, symbol, close in closes:
        while at < len(fills) and fills[at].ts_event <= ts:
            book.apply(fills[at])
            at += 1
        book.marks[symbol] = close
        pnl = sum(book.pnl(name) for name in book.positions)
        fees = sum(book.fees.values())
        exposed = any(book.positions.values())
        # Several symbols close at one time: the point after the last of them counts.
        points[ts] = EquityPoint(ts, pnl, fees, pnl - fees, exposed)
    for fill in fills[at:]:
        book.apply(fill)
    by_symbol = {name: book.pnl(name) - book.fees[name] for name in sorted(book.positions)}
    return [points[ts] for ts in sorted(points)], by_symbol


class Drawdown(msgspec.Struct, frozen=True):
    """The deepest fall of equity from a previous high."""

    amount: int
    """1e-9 currency units (>= 0)."""
    peak_ns: int
    trough_ns: int
    recovered_ns: int
    """When equity first got back to the peak (-1: not within the data)."""

    @property
    def duration_ns(self) -> int:
        """From the peak to recovery, or to the trough when it never recovered."""
        end = self.recovered_ns if self.recovered_ns >= 0 else self.trough_ns
        return end - self.peak_ns


def max_drawdown(curve: Sequence[EquityPoint]) -> Drawdown:
    """The largest fall of the equity curve from a previous high (flat at 0 before the
    first point), and when it recovered."""
    worst = Drawdown(0, -1, -1, -1)
    if not curve:
        return worst
    peak, peak_ns, worst_peak = 0, curve[0].ts_event, 0
    for point in curve:
        if point.equity >= peak:
            peak, peak_ns = point.equity, point.ts_event
        elif peak - point.equity > worst.amount:
            worst = Drawdown(peak - point.equity, peak_ns, point.ts_event, -1)
            worst_peak = peak
        if worst.amount and worst.recovered_ns < 0 and point.equity >= worst_peak:
            worst = msgspec.structs.replace(worst, recovered_ns=point.ts_event)
    return worst


def bar_returns(curve: Sequence[EquityPoint], capital: int) -> list[float]:
    """Per-bar returns of an account holding `capital` plus the curve's P&L."""
    values = [capital + p.equity for p in curve]
    return [(after - before) / before for before, after in itertools.pairwise(values) if before > 0]


def periods_per_year(curve: Sequence[EquityPoint]) -> float:
    """Bar closes a year, from the closes a day the data shows, over `TRADING_DAYS` days."""
    days = {p.ts_event // DAY_NS for p in curve}
    return TRADING_DAYS * len(curve) / len(days) if days else 0.0


def sharpe(returns: Sequence[float], per_year: float) -> float | None:
    """Annualised Sharpe ratio (no risk-free rate; sample deviation), None when undefined."""
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(per_year)


def sortino(returns: Sequence[float], per_year: float) -> float | None:
    """Annualised Sortino ratio: the mean over the downside deviation (target 0)."""
    if not returns:
        return None
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    if downside <= 0:
        return None
    mean = sum(returns) / len(returns)
    return mean / downside * math.sqrt(per_year)


@dataclass
class Statistics:
    """A backtest's figures; money in 1e-9 currency units, durations in ns."""

    trades: int
    """Round trips closed within the data."""
    open_trades: int
    wins: int
    losses: int
    win_rate: float | None
    average_win: int | None
    average_loss: int | None
    """Negative (a loss)."""
    profit_factor: float | None
    """Gross wins over gross losses (net of fees); None without losses."""
    total_pnl: int
    """Final equity: realised and open P&L, net of fees."""
    fees: int
    pnl_by_symbol: dict[str, int] = field(default_factory=dict)
    """Net P&L of each symbol's closed and open trips (open ones at their last marks)."""
    exposure: float = 0.0
    """Share of bar closes with a position open."""
    max_drawdown: int = 0
    max_drawdown_duration_ns: int = 0
    sharpe: float | None = None
    sortino: float | None = None
    periods_per_year: float = 0.0
    capital: int = 0
    """The account the returns are measured against (1e-9 currency units)."""


def statistics(
    trips: Sequence[RoundTrip],
    curve: Sequence[EquityPoint],
    by_symbol: Mapping[str, int],
    capital: int,
) -> Statistics:
    """The statistics table of a backtest from its round trips and equity curve."""
    closed = [t for t in trips if t.closed]
    wins = [t.net for t in closed if t.net > 0]
    losses = [t.net for t in closed if t.net <= 0]
    gross_loss = -sum(losses)
    returns = bar_returns(curve, capital)
    per_year = periods_per_year(curve)
    drawdown = max_drawdown(curve)
    final = curve[-1] if curve else None
    return Statistics(
        trades=len(closed),
        open_trades=len(trips) - len(closed),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(closed) if closed else None,
        average_win=sum(wins) // len(wins) if wins else None,
        average_loss=-(gross_loss // len(losses)) if losses else None,
        profit_factor=sum(wins) / gross_loss if gross_loss > 0 else None,
        total_pnl=final.equity if final else 0,
        fees=final.fees if final else 0,
        pnl_by_symbol=dict(sorted(by_symbol.items())),
        exposure=sum(p.exposed for p in curve) / len(curve) if curve else 0.0,
        max_drawdown=drawdown.amount,
        max_drawdown_duration_ns=max(drawdown.duration_ns, 0),
        sharpe=sharpe(returns, per_year),
        sortino=sortino(returns, per_year),
        periods_per_year=per_year,
        capital=capital,
    )
