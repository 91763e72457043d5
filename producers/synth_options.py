"""Same-day option chain quotes: Black-Scholes prices on a volatility smile, as MBP-1 records.

Market makers requote every option on a fixed grid from the underlying's mid. A quote
brackets the model price on the option's tick grid (so the ask never sits below intrinsic
value and the bid never above the no-arbitrage ceiling), and a side with no positive bid
is empty, as listed markets show worthless options. Each requote lands before the
underlying's next change, so a quote always belongs to the mid in force when it appears.
"""

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from producers.synth_book import BookOutput
from producers.synth_instruments import PRICE_SCALE, OptionSpec, Underlying
from producers.synth_records import (
    EMPTY,
    F_LAST,
    I64,
    MBP1_DTYPE,
    Batch,
    blank,
    capture_latency,
    fill_book,
)

F64 = npt.NDArray[np.float64]

RISK_FREE_RATE: Final = 0.05
YEAR_NS: Final = 365 * 86_400 * PRICE_SCALE
QUOTE_GRID_NS: Final = 500_000_000
SKEW: Final = -1.5  # vol per unit log-moneyness: puts below the money are dearer
CURVATURE: Final = 40.0  # the smile's wings
_ADD, _CANCEL = ord("A"), ord("C")
_BID, _ASK = ord("B"), ord("A")

_erfc = np.frompyfunc(math.erfc, 1, 1)


def norm_cdf(x: F64) -> F64:
    """Standard normal CDF, exact to double precision."""
    return np.asarray(0.5 * _erfc(-x / math.sqrt(2.0)), dtype=np.float64)


def carry_rate(u: Underlying) -> float:
    """Cost of carry: zero for a future (Black-76), the rate for a non-dividend stock."""
    return 0.0 if u.instrument_class == "F" else RISK_FREE_RATE


def smile_vol(atm_vol: float, spot: F64, strike: float) -> F64:
    """Implied volatility at `strike`: a quadratic smile in log-moneyness, floored at 5%."""
    x = np.log(strike / spot)
    return np.maximum(0.05, atm_vol + SKEW * x + CURVATURE * x * x)


def atm_volatility(seed: int, u: Underlying) -> float:
    """The at-the-money implied volatility of the chain on `u`: 12-22%, fixed by the seed."""
    return float(np.random.default_rng([seed, u.index, 3]).uniform(0.12, 0.22))


def black_scholes(
    spot: F64, strike: float, years: F64, vol: F64, *, is_call: bool, carry: float
) -> F64:
    """Generalised Black-Scholes value (carry 0 gives Black-76), at least its intrinsic bound."""
    discount = np.exp(-RISK_FREE_RATE * years)
    forward = spot * np.exp(carry * years)
    sd = vol * np.sqrt(years)
    d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if is_call:
        value = discount * (forward * norm_cdf(d1) - strike * norm_cdf(d2))
        bound = discount * np.maximum(forward - strike, 0.0)
    else:
        value = discount * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1))
        bound = discount * np.maximum(strike - forward, 0.0)
    # The closed form loses a few ulps deep in the money; the bound is exact.
    return np.asarray(np.maximum(value, bound), dtype=np.float64)


def quote_ticks(value: F64, tick: float) -> tuple[I64, I64]:
    """Bid and ask in ticks around `value`: at least a tick wide, bid EMPTY when not positive."""
    half = np.maximum(0.5 * tick, 0.01 * value)
    bid = np.floor((value - half) / tick).astype(np.int64)
    ask = np.ceil((value + half) / tick).astype(np.int64)
    return np.where(bid > 0, bid, EMPTY), ask


def _grid(book: BookOutput, end_ns: int, expiration: int) -> tuple[I64, F64, I64]:
    """Requote times, the mid in force at each, and the time of the mid's next change."""
    stop = min(end_ns, expiration - QUOTE_GRID_NS)
    grid = np.arange(int(book.mid_ts[0]), stop, QUOTE_GRID_NS, dtype=np.int64)
    at = np.searchsorted(book.mid_ts, grid, side="right") - 1
    following = np.append(book.mid_ts, np.int64(end_ns))[at + 1]
    return grid, book.mid[at], following


def _fresh_sizes(rng: np.random.Generator, changed: npt.NDArray[np.bool_]) -> I64:
    """A new displayed size where a side changed, carried forward where it did not."""
    draws = np.maximum(1, np.rint(rng.lognormal(math.log(40.0), 0.8, changed.shape))).astype(
        np.int64
    )
    cols = np.arange(changed.shape[1])
    source = np.maximum.accumulate(np.where(changed, cols, 0), axis=1)
    return np.take_along_axis(draws, source, axis=1)


def _shifted(a: I64, first: int) -> I64:
    """Each row's previous column, with `first` before the first column."""
    return np.concatenate([np.full((a.shape[0], 1), first, dtype=np.int64), a[:, :-1]], axis=1)


def _side_records(
    new: dict[str, I64], old: dict[str, I64], is_bid: bool, other_first: npt.NDArray[np.bool_]
) -> dict[str, I64]:
    """Records of one side's changes; the other side shows its new state if it went first."""
    me, them = ("bid", "ask") if is_bid else ("ask", "bid")
    better = new[me] > old[me] if is_bid else (new[me] < old[me]) | (old[me] == EMPTY)
    cols = {
        "action": np.where(better, _ADD, _CANCEL),
        "side": np.full(better.shape, _BID if is_bid else _ASK),
        "price": np.where(better, new[me], old[me]),
        "size": np.where(better, new[f"{me}_sz"], old[f"{me}_sz"]),
    }
    for field in (me, f"{me}_sz", f"{me}_ct"):
        cols[field] = new[field]
    for field in (them, f"{them}_sz", f"{them}_ct"):
        cols[field] = np.where(other_first, new[field], old[field])
    return cols


def _records(
    new: dict[str, I64], old: dict[str, I64], cells: I64
) -> tuple[dict[str, I64], I64, npt.NDArray[np.bool_]]:
    """Flat record columns for changed sides, their (cell, position) order and F_LAST marks."""
    bid_changed = (new["bid"] != old["bid"]).ravel()
    ask_changed = (new["ask"] != old["ask"]).ravel()
    # Widening before narrowing keeps every intermediate book uncrossed.
    ask_first = (ask_changed & bid_changed & (new["ask"] > old["ask"]).ravel()) | ~bid_changed
    flat_new = {k: v.ravel() for k, v in new.items()}
    flat_old = {k: v.ravel() for k, v in old.items()}
    bid = _side_records(flat_new, flat_old, True, ask_first & ask_changed)
    ask = _side_records(flat_new, flat_old, False, ~ask_first)
    cols = {k: np.concatenate([bid[k][bid_changed], ask[k][ask_changed]]) for k in bid}
    # Position within a requote: the bid goes second only when the ask went first.
    bid_key = cells * 2 + ask_first
    ask_key = cells * 2 + ~ask_first
    key = np.concatenate([bid_key[bid_changed], ask_key[ask_changed]])
    bid_last = ask_first | ~ask_changed
    ask_last = ~ask_first | ~bid_changed
    last = np.concatenate([bid_last[bid_changed], ask_last[ask_changed]])
    return cols, key, last


def quote_chain(
    chain: list[OptionSpec], book: BookOutput, seed: int, end_ns: int, order_base: int
) -> Batch:
    """MBP-1 quote records for every option of a chain on one underlying."""
    rng = np.random.default_rng([seed, chain[0].underlying.index, 2])
    atm_vol = atm_volatility(seed, chain[0].underlying)
    grid, spot, following = _grid(book, end_ns, chain[0].expiration)
    new = _quote_matrix(chain, grid, spot, atm_vol)
    for side in ("bid", "ask"):
        changed = new[side] != _shifted(new[side], EMPTY)
        new[f"{side}_sz"] = np.where(new[side] == EMPTY, 0, _fresh_sizes(rng, changed))
        new[f"{side}_ct"] = np.where(new[side] == EMPTY, 0, 1 + (new[f"{side}_sz"] - 1) // 10)
    old = {k: _shifted(v, EMPTY if k in ("bid", "ask") else 0) for k, v in new.items()}
    cells = np.arange(new["bid"].size, dtype=np.int64)
    cols, key, last = _records(new, old, cells)
    # A requote trails its grid time but lands before the underlying's next change.
    delay = np.minimum(
        rng.integers(50_000, 500_000, new["bid"].shape), following - grid - 1
    ).ravel()
    ts_event = np.tile(grid, len(chain)) + delay
    return _to_batch(
        chain, cols=cols, key=key, last=last, ts_event=ts_event, rng=rng, order_base=order_base
    )


def _quote_matrix(chain: list[OptionSpec], grid: I64, spot: F64, atm_vol: float) -> dict[str, I64]:
    """Bid and ask ticks of every option (rows) at every requote time (columns)."""
    years = np.maximum(chain[0].expiration - grid, 1) / YEAR_NS
    carry = carry_rate(chain[0].underlying)
    bids, asks = [], []
    for o in chain:
        strike = o.strike / PRICE_SCALE
        vol = smile_vol(atm_vol, spot, strike)
        value = black_scholes(spot, strike, years, vol, is_call=o.is_call, carry=carry)
        bid, ask = quote_ticks(value, o.tick / PRICE_SCALE)
        bids.append(bid)
        asks.append(ask)
    return {"bid": np.array(bids), "ask": np.array(asks)}


def _to_batch(
    chain: list[OptionSpec],
    *,
    cols: dict[str, I64],
    key: I64,
    last: npt.NDArray[np.bool_],
    ts_event: I64,
    rng: np.random.Generator,
    order_base: int,
) -> Batch:
    """Records in (option, time, position) order, with sequences and timestamps."""
    order = np.argsort(key, kind="stable")
    key, last = key[order], last[order]
    cols = {k: v[order] for k, v in cols.items()}
    cell = key // 2
    option = cell // (len(ts_event) // len(chain))
    records: npt.NDArray[Any] = blank(MBP1_DTYPE, 1, len(key))
    ids = np.array([o.instrument_id for o in chain], dtype=np.int64)
    records["instrument_id"] = ids[option]
    records["ts_event"] = ts_event[cell]
    records["ts_recv"] = ts_event[cell] + capture_latency(rng, len(key)) + (key % 2) * 4_000
    records["ts_in_delta"] = rng.integers(10_000, 20_000, len(key))
    tick = chain[0].tick
    records["price"] = cols["price"] * tick
    records["size"] = cols["size"]
    records["action"] = cols["action"].astype(np.uint8).view("S1")
    records["side"] = cols["side"].astype(np.uint8).view("S1")
    records["flags"] = np.where(last, F_LAST, 0)
    starts = np.searchsorted(option, np.arange(len(chain)))
    records["sequence"] = 1_000_000 + np.arange(len(key)) - starts[option]
    fill_book(records, tick, cols)
    return Batch(records, order_base + key)
