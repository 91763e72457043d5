"""Option math and contract selection: Black-Scholes-Merton, implied volatility, chain picks.

Pure functions on plain values. Prices may be given in any one unit (the strategies pass
1e-9 fixed-point integers as floats unchanged): a BSM price is homogeneous in spot, strike
and premium, so the scale cancels. Time to expiry is in years of 365 days, from ns.
"""

import math
from collections.abc import Sequence
from enum import StrEnum

import msgspec

NS_PER_YEAR = 365 * 24 * 3600 * 1_000_000_000
DAY_NS = 24 * 3600 * 1_000_000_000

VOL_LO = 1e-4
VOL_HI = 5.0
"""The implied-volatility search range: 0.01% to 500% a year."""


class Right(StrEnum):
    """Call or put, with DBN's instrument-class codes as values."""

    CALL = "C"
    PUT = "P"


class OptionContract(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What selection needs of a listed option (from an `InstrumentDef`)."""

    instrument_id: int
    symbol: str
    right: Right
    strike: int
    """Strike price, 1e-9 units."""
    expiration: int
    """Expiration as the definition gives it, ns (some venues stamp only the date)."""


def norm_cdf(x: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def year_fraction(from_ns: int, to_ns: int) -> float:
    """Years (of 365 days) from one time to a later one; 0 if it is not later."""
    return max(0, to_ns - from_ns) / NS_PER_YEAR


def _d1_d2(
    spot: float, strike: float, t: float, vol: float, *, rate: float, div: float
) -> tuple[float, float]:
    sd = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - div + 0.5 * vol * vol) * t) / sd
    return d1, d1 - sd


def bs_price(
    right: Right,
    spot: float,
    strike: float,
    t: float,
    vol: float,
    *,
    rate: float = 0.0,
    div: float = 0.0,
) -> float:
    """Black-Scholes-Merton price of a European option (continuous dividend yield `div`)."""
    fwd_spot = spot * math.exp(-div * t)
    disc_strike = strike * math.exp(-rate * t)
    if t <= 0.0 or vol <= 0.0:
        # No time or no uncertainty: the discounted forward intrinsic value.
        diff = fwd_spot - disc_strike
        return max(diff, 0.0) if right is Right.CALL else max(-diff, 0.0)
    d1, d2 = _d1_d2(spot, strike, t, vol, rate=rate, div=div)
    if right is Right.CALL:
        return fwd_spot * norm_cdf(d1) - disc_strike * norm_cdf(d2)
    return disc_strike * norm_cdf(-d2) - fwd_spot * norm_cdf(-d1)


def bs_delta(
    right: Right,
    spot: float,
    strike: float,
    t: float,
    vol: float,
    *,
    rate: float = 0.0,
    div: float = 0.0,
) -> float:
    """Spot delta: in [0, 1] for a call, [-1, 0] for a put."""
    if t <= 0.0 or vol <= 0.0:
        itm = spot > strike if right is Right.CALL else spot < strike
        return (1.0 if right is Right.CALL else -1.0) if itm else 0.0
    d1, _ = _d1_d2(spot, strike, t, vol, rate=rate, div=div)
    carry = math.exp(-div * t)
    return carry * norm_cdf(d1) if right is Right.CALL else -carry * norm_cdf(-d1)


def bs_vega(
    spot: float, strike: float, t: float, vol: float, *, rate: float = 0.0, div: float = 0.0
) -> float:
    """Sensitivity of the price to volatility (same for calls and puts)."""
    if t <= 0.0 or vol <= 0.0:
        return 0.0
    d1, _ = _d1_d2(spot, strike, t, vol, rate=rate, div=div)
    return spot * math.exp(-div * t) * norm_pdf(d1) * math.sqrt(t)


def implied_vol(
    price: float,
    right: Right,
    spot: float,
    strike: float,
    t: float,
    *,
    rate: float = 0.0,
    div: float = 0.0,
    tol: float = 1e-12,
) -> float | None:
    """Volatility whose BSM price is `price`; None when no volatility in range gives it.

    Newton steps, kept inside a bracket that shrinks every iteration and replaced by
    bisection whenever they leave it, so it converges even where vega is tiny (far from
    the money, or minutes before expiry).
    """
    if t <= 0.0 or price <= 0.0:
        return None

    def gap(vol: float) -> float:
        return bs_price(right, spot, strike, t, vol, rate=rate, div=div) - price

    lo, hi = VOL_LO, VOL_HI
    if gap(lo) > 0.0 or gap(hi) < 0.0:
        return None  # below the lowest or above the highest price the range can give
    vol = 0.5 * (lo + hi)
    for _ in range(200):
        diff = gap(vol)
        if abs(diff) <= tol * price:
            return vol
        if diff > 0.0:
            hi = vol
        else:
            lo = vol
        vega = bs_vega(spot, strike, t, vol, rate=rate, div=div)
        newton = vol - diff / vega if vega > 0.0 else hi
        vol = newton if lo < newton < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15:
            break
    return vol


def select_by_moneyness(
    contracts: Sequence[OptionContract], right: Right, spot: int, strikes_otm: int
) -> OptionContract | None:
    """The contract at the strike nearest `spot` (0), or the N-th strike out of the money.

    Out of the money is above spot for a call, below for a put. At equal distance the
    lower strike wins, and at equal strike the lower instrument id, so the pick never
    depends on the order the definitions came in.
    """
    same = [c for c in contracts if c.right is right]
    strikes = sorted({c.strike for c in same})
    if not strikes:
        return None
    if strikes_otm == 0:
        strike = min(strikes, key=lambda k: (abs(k - spot), k))
    else:
        if right is Right.CALL:
            otm = [k for k in strikes if k > spot]
        else:
            otm = [k for k in reversed(strikes) if k < spot]
        if len(otm) < strikes_otm:
            return None
        strike = otm[strikes_otm - 1]
    return min((c for c in same if c.strike == strike), key=lambda c: c.instrument_id)


class Greeks(msgspec.Struct, frozen=True):
    """Implied volatility and delta of one contract at one time."""

    vol: float
    delta: float


def select_by_delta(
    priced: Sequence[tuple[OptionContract, float, float]],
    right: Right,
    spot: int,
    target_delta: float,
    rate: float = 0.0,
) -> tuple[OptionContract, Greeks] | None:
    """The contract whose |delta| is nearest `target_delta`, from (contract, mid, years) rows.

    Each delta uses the volatility implied by that contract's own mid price; contracts
    whose price no volatility explains (below intrinsic, say) are left out. Ties go to the
    strike nearer spot, then to the lower instrument id.
    """
    best: tuple[tuple[float, int, int], OptionContract, Greeks] | None = None
    for contract, mid, years in priced:
        if contract.right is not right:
            continue
        vol = implied_vol(mid, right, spot, contract.strike, years, rate=rate)
        if vol is None:
            continue
        delta = bs_delta(right, spot, contract.strike, years, vol, rate=rate)
        key = (abs(abs(delta) - target_delta), abs(contract.strike - spot), contract.instrument_id)
        if best is None or key < best[0]:
            best = (key, contract, Greeks(vol, delta))
    return None if best is None else (best[1], best[2])
