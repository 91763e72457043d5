"""Pre-trade risk: each limit at its boundary, the kill switch, and the day's PnL from fills."""

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executors.positions import apply_fills, open_holding, signed_quantity
from executors.risk import (
    APPROVED,
    RATE_WINDOW_NS,
    Approved,
    Rejected,
    RejectReason,
    RiskContext,
    RiskLimits,
    UnknownMultiplierError,
    check_order,
    daily_pnl,
)
from ticklane.control import KillSwitchState
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Side

NOW = 10 * RATE_WINDOW_NS
LIMITS = RiskLimits(
    max_position=10,
    max_notional=1_000_000,
    max_orders_per_minute=3,
    daily_loss_limit=5_000,
)


def order(side: Side, quantity: int, **changes: object) -> Order:
    base = Order(
        client_order_id="ord-1",
        signal_id="sig-1",
        strategy="ema",
        symbol="ESU4",
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET,
        status=OrderStatus.NEW,
        ts_event=NOW,
    )
    return msgspec.structs.replace(base, **changes) if changes else base


def ctx(**changes: object) -> RiskContext:
    base = RiskContext(
        now=NOW,
        position=0,
        pending=0,
        kill_switch=KillSwitchState.ACTIVE,
        day_pnl=0,
        price=100,
    )
    return msgspec.structs.replace(base, **changes) if changes else base


def reason(decision: Approved | Rejected) -> RejectReason | None:
    return decision.reason if isinstance(decision, Rejected) else None


def test_plain_order_is_approved() -> None:
    assert check_order(order(Side.BUY, 1), ctx(), LIMITS) == APPROVED


# --- kill switch


def test_halted_rejects_everything_even_closing() -> None:
    decision = check_order(
        order(Side.SELL, 1), ctx(position=1, kill_switch=KillSwitchState.HALTED), LIMITS
    )
    assert isinstance(decision, Rejected)
    assert decision.reason is RejectReason.HALTED
    assert decision.detail


@pytest.mark.parametrize(
    ("side", "quantity", "position", "pending", "allowed"),
    [
        (Side.SELL, 3, 5, 0, True),  # reduce
        (Side.SELL, 5, 5, 0, True),  # flatten
        (Side.BUY, 2, -2, 0, True),
        (Side.BUY, 1, 5, 0, False),  # grow
        (Side.SELL, 1, 0, 0, False),  # open
        (Side.SELL, 6, 5, 0, False),  # reversal through zero
        (Side.SELL, 5, 5, -5, False),  # a working sell already flattens: this would go short
        (Side.SELL, 5, 5, 3, True),  # reduces whether or not the working buy fills
        (Side.SELL, 5, 0, 5, False),  # the working buy may never fill: this could open a short
    ],
)
def test_reducing_allows_only_orders_that_reduce(
    side: Side, quantity: int, position: int, pending: int, allowed: bool
) -> None:
    state = ctx(position=position, pending=pending, kill_switch=KillSwitchState.REDUCING)
    decision = check_order(order(side, quantity), state, LIMITS)
    assert reason(decision) is (None if allowed else RejectReason.REDUCING_ONLY)


# --- daily loss


def test_daily_loss_stops_new_exposure_at_the_limit_but_lets_positions_close() -> None:
    assert reason(check_order(order(Side.BUY, 1), ctx(day_pnl=-4_999), LIMITS)) is None
    at_limit = ctx(day_pnl=-5_000, position=4)
    assert reason(check_order(order(Side.BUY, 1), at_limit, LIMITS)) is RejectReason.DAILY_LOSS
    assert reason(check_order(order(Side.SELL, 4), at_limit, LIMITS)) is None


# --- order rate


def test_order_rate_is_a_sliding_minute() -> None:
    just_outside = NOW - RATE_WINDOW_NS
    inside = (NOW - RATE_WINDOW_NS + 1, NOW - 5, NOW)
    full = ctx(recent_submits=inside)
    assert reason(check_order(order(Side.BUY, 1), full, LIMITS)) is RejectReason.ORDER_RATE
    slid = ctx(recent_submits=(just_outside, *inside[1:]))
    assert reason(check_order(order(Side.BUY, 1), slid, LIMITS)) is None


# --- position


@pytest.mark.parametrize(
    ("side", "quantity", "position", "pending", "allowed"),
    [
        (Side.BUY, 10, 0, 0, True),
        (Side.BUY, 11, 0, 0, False),
        (Side.SELL, 10, 0, 0, True),
        (Side.SELL, 21, 10, 0, False),  # reversal to -11
        (Side.BUY, 3, 0, 8, False),  # the working buy counts
        (Side.BUY, 3, 8, -8, False),  # ...and so does its not filling
        (Side.SELL, 2, 14, 0, True),  # above a lowered limit, but reducing
        (Side.BUY, 1, 14, 0, False),
    ],
)
def test_max_position(
    side: Side, quantity: int, position: int, pending: int, allowed: bool
) -> None:
    decision = check_order(order(side, quantity), ctx(position=position, pending=pending), LIMITS)
    assert reason(decision) is (None if allowed else RejectReason.MAX_POSITION)


def test_position_override_per_symbol() -> None:
    limits = msgspec.structs.replace(LIMITS, position_overrides={"ESU4": 2, "NQU4": 50})
    assert reason(check_order(order(Side.BUY, 3), ctx(), limits)) is RejectReason.MAX_POSITION
    assert reason(check_order(order(Side.BUY, 30, symbol="NQU4"), ctx(), limits)) is None


# --- notional


def test_max_notional_uses_price_quantity_and_multiplier() -> None:
    limits = msgspec.structs.replace(LIMITS, max_position=1_000)
    exact = ctx(price=1_000, multiplier=100)  # 10 x 1000 x 100 = 1,000,000: at the limit
    assert reason(check_order(order(Side.BUY, 10), exact, limits)) is None
    over = ctx(price=1_001, multiplier=100)
    assert reason(check_order(order(Side.BUY, 10), over, limits)) is RejectReason.MAX_NOTIONAL
    negative = ctx(price=-1_001, multiplier=100)  # spreads can trade below zero
    assert reason(check_order(order(Side.BUY, 10), negative, limits)) is RejectReason.MAX_NOTIONAL


def test_limit_price_is_valued_before_the_reference() -> None:
    big = order(Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=2_000_000)
    assert reason(check_order(big, ctx(price=1), LIMITS)) is RejectReason.MAX_NOTIONAL
    stop = order(Side.BUY, 1, order_type=OrderType.STOP, stop_price=2_000_000)
    assert reason(check_order(stop, ctx(price=None), LIMITS)) is RejectReason.MAX_NOTIONAL


def test_an_order_without_any_price_cannot_be_valued() -> None:
    assert reason(check_order(order(Side.BUY, 1), ctx(price=None), LIMITS)) is RejectReason.NO_PRICE


def test_first_failing_check_is_reported() -> None:
    state = ctx(kill_switch=KillSwitchState.HALTED, day_pnl=-(10**9), price=None)
    assert reason(check_order(order(Side.BUY, 100), state, LIMITS)) is RejectReason.HALTED


# --- limits and context are validated


def test_limits_reject_unknown_fields_and_bad_values() -> None:
    raw = b'{"max_position":1,"max_notional":1,"max_orders_per_minute":1,"daily_loss_limit":1}'
    assert msgspec.json.decode(raw, type=RiskLimits).max_position == 1
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw[:-1] + b',"max_loss":1}', type=RiskLimits)
    with pytest.raises(ValueError, match="negative"):
        RiskLimits(max_position=-1, max_notional=1, max_orders_per_minute=1, daily_loss_limit=1)
    with pytest.raises(ValueError, match="positive"):
        RiskLimits(max_position=1, max_notional=1, max_orders_per_minute=1, daily_loss_limit=0)
    with pytest.raises(ValueError, match="multiplier"):
        ctx(multiplier=0)


# --- the day's PnL from fills

DAY = 1_000_000


def fill(
    n: int, side: Side, quantity: int, price: int, *, ts: int, fee: int = 0, **kw: str
) -> Fill:
    return Fill(
        fill_id=f"f{n}",
        client_order_id=f"o{n}",
        venue_order_id=f"v{n}",
        symbol=kw.get("symbol", "ESU4"),
        side=side,
        quantity=quantity,
        price=price,
        ts_event=ts,
        fee=fee,
        strategy=kw.get("strategy", "ema"),
    )


def test_day_pnl_realizes_today_against_yesterdays_basis() -> None:
    fills = [
        fill(1, Side.BUY, 2, 100, ts=DAY - 10, fee=7),  # yesterday: builds the basis only
        fill(2, Side.SELL, 1, 90, ts=DAY, fee=1),  # today: realizes -10 x 5 - 1
        fill(3, Side.BUY, 1, 80, ts=DAY + 5, symbol="NQU4", fee=2),  # today: opens, pays a fee
    ]
    multipliers = {"ESU4": 5, "NQU4": 20}
    assert daily_pnl(fills, day_start=DAY, multipliers=multipliers) == -50 - 1 - 2
    marked = daily_pnl(fills, day_start=DAY, multipliers=multipliers, marks={"NQU4": 85})
    assert marked == -50 - 1 - 2 + 5 * 20


def test_day_pnl_counts_a_redelivered_fill_once_and_ignores_input_order() -> None:
    fills = [fill(1, Side.BUY, 1, 100, ts=DAY), fill(2, Side.SELL, 1, 70, ts=DAY + 1)]
    replayed = [fills[1], fills[0], fills[1], fills[0]]
    assert daily_pnl(replayed, day_start=DAY, multipliers={"ESU4": 1}) == -30
    # Same timestamp: the redelivery is not next to the original once sorted.
    same_ts = [fill(1, Side.BUY, 1, 100, ts=DAY), fill(2, Side.BUY, 1, 90, ts=DAY)]
    redelivered = [*same_ts, same_ts[0]]
    marks = {"ESU4": 120}
    assert daily_pnl(redelivered, day_start=DAY, multipliers={"ESU4": 1}, marks=marks) == 20 + 30


def test_day_pnl_needs_every_multiplier() -> None:
    with pytest.raises(UnknownMultiplierError, match="ESU4"):
        daily_pnl([fill(1, Side.BUY, 1, 1, ts=DAY)], day_start=DAY, multipliers={})


def test_day_pnl_from_durable_fills_survives_a_restart() -> None:
    # The limit is a function of the ledger's fills: a fresh process computes the same breach.
    fills = [fill(1, Side.BUY, 10, 1_000, ts=DAY), fill(2, Side.SELL, 10, 400, ts=DAY + 1)]
    after_restart = daily_pnl(list(fills), day_start=DAY, multipliers={"ESU4": 1})
    assert after_restart == -6_000
    state = ctx(day_pnl=after_restart)
    assert reason(check_order(order(Side.BUY, 1), state, LIMITS)) is RejectReason.DAILY_LOSS


raw_fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50),
        st.integers(1, 10**6),
        st.integers(0, 2 * DAY),
        st.integers(0, 100),
    ),
    max_size=25,
)


@given(raw_fills, st.integers(1, 10**6))
def test_whole_history_day_pnl_is_the_cash_flow(
    raw: list[tuple[Side, int, int, int, int]], mark: int
) -> None:
    fills = [fill(i, s, q, p, ts=ts, fee=fee) for i, (s, q, p, ts, fee) in enumerate(raw)]
    pnl = daily_pnl(fills, day_start=0, multipliers={"ESU4": 10}, marks={"ESU4": mark})
    position = sum(signed_quantity(f) for f in fills)
    cash = sum(-f.price * signed_quantity(f) for f in fills) + mark * position
    assert pnl == cash * 10 - sum(f.fee for f in fills)


@given(raw_fills, st.integers(0, 2 * DAY))
def test_opening_holdings_equal_replaying_the_earlier_fills(
    raw: list[tuple[Side, int, int, int, int]], day_start: int
) -> None:
    fills = [fill(i, s, q, p, ts=ts, fee=fee) for i, (s, q, p, ts, fee) in enumerate(raw)]
    earlier = sorted((f for f in fills if f.ts_event < day_start), key=lambda f: f.ts_event)
    today = [f for f in fills if f.ts_event >= day_start]
    opening = apply_fills(open_holding("ema", "ESU4"), earlier, 3)
    full = daily_pnl(fills, day_start=day_start, multipliers={"ESU4": 3}, marks={"ESU4": 500})
    split = daily_pnl(
        today,
        day_start=day_start,
        multipliers={"ESU4": 3},
        opening=[opening],
        marks={"ESU4": 500},
    )
    assert full == split
