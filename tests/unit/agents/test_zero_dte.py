"""0DTE: option math against textbook values, contract selection, exits, real exchange calendar."""

import datetime as dt
import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.options import (
    OptionContract,
    Right,
    bs_delta,
    bs_price,
    implied_vol,
    select_by_delta,
    select_by_moneyness,
    year_fraction,
)
from agents.strategies import Context, ParamError, Session
from agents.strategies.zero_dte import (
    ExchangeSessions,
    ZeroDte,
    ZeroDteState,
    exit_time,
    is_zero_dte,
)
from agents.ticks import TickBatch
from ticklane import dbn, ids
from ticklane.chains import cut_chains
from ticklane.market import Bar, InstrumentClass, InstrumentDef, Quote, Trade
from ticklane.units import UNDEF_PRICE

S = 1_000_000_000
MIN = 60 * S
PX = 1_000_000_000  # one currency unit in 1e-9 price units
CENT = PX // 100
UNDERLYING = "SPY"
UNDERLYING_ID = 15144


def utc(day: str, hh: int, mm: int = 0) -> int:
    y, m, d = map(int, day.split("-"))
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=dt.UTC).timestamp()) * S


DAY = "2024-11-29"  # Black Friday: XNYS closes early, at 13:00 New York (18:00 UTC)
OPEN = utc(DAY, 14, 30)
CLOSE = utc(DAY, 18)
XNYS = ExchangeSessions("XNYS")


# --- Black-Scholes and implied volatility ------------------------------------------------


@pytest.mark.parametrize(
    ("right", "args", "price", "delta"),
    [
        # Hull, Options, Futures and Other Derivatives, example 15.6.
        (Right.CALL, (42, 40, 0.5, 0.2, 0.1, 0.0), 4.7594, 0.7791),
        (Right.PUT, (42, 40, 0.5, 0.2, 0.1, 0.0), 0.8086, 0.7791 - 1),
        # The classic at-the-money case: S = K = 100, one year, r = 5%, vol 20%.
        (Right.CALL, (100, 100, 1.0, 0.2, 0.05, 0.0), 10.4506, 0.6368),
        (Right.PUT, (100, 100, 1.0, 0.2, 0.05, 0.0), 5.5735, 0.6368 - 1),
        # Haug, The Complete Guide to Option Pricing Formulas, generalised BSM put (q = 5%).
        (Right.PUT, (100, 95, 0.5, 0.2, 0.1, 0.05), 2.4648, None),
    ],
)
def test_black_scholes_matches_textbook_values(right, args, price, delta):
    spot, strike, t, vol, rate, div = args
    assert bs_price(right, spot, strike, t, vol, rate=rate, div=div) == pytest.approx(
        price, abs=5e-5
    )
    if delta is not None:
        got = bs_delta(right, spot, strike, t, vol, rate=rate, div=div)
        assert got == pytest.approx(delta, abs=5e-5)


@given(
    spot=st.floats(50, 200),
    strike=st.floats(50, 200),
    t=st.floats(1e-4, 2.0),
    vol=st.floats(0.05, 1.5),
    rate=st.floats(0.0, 0.1),
)
def test_put_call_parity_and_scale_invariance(spot, strike, t, vol, rate):
    call = bs_price(Right.CALL, spot, strike, t, vol, rate=rate)
    put = bs_price(Right.PUT, spot, strike, t, vol, rate=rate)
    assert call - put == pytest.approx(spot - strike * math.exp(-rate * t), abs=1e-9)
    # The strategy passes 1e-9 fixed-point prices as they are: the scale must cancel.
    scaled = bs_price(Right.CALL, spot * PX, strike * PX, t, vol, rate=rate)
    assert scaled == pytest.approx(call * PX, rel=1e-9, abs=1e-6)


@settings(max_examples=200)
@given(
    right=st.sampled_from(Right),
    moneyness=st.floats(0.9, 1.1),
    hours=st.floats(0.05, 24 * 30),
    vol=st.floats(0.05, 2.0),
)
def test_implied_vol_inverts_the_price(right, moneyness, hours, vol):
    spot, strike, t = 590.0 * PX, 590.0 * PX * moneyness, hours / (24 * 365)
    price = bs_price(right, spot, strike, t, vol, rate=0.03)
    intrinsic = bs_price(right, spot, strike, t, 0.0, rate=0.03)
    # Only where the price says something about volatility (not lost in float rounding).
    if price - intrinsic < 1e-6 * spot:
        return
    got = implied_vol(price, right, spot, strike, t, rate=0.03)
    assert got is not None
    assert bs_price(right, spot, strike, t, got, rate=0.03) == pytest.approx(price, rel=1e-9)
    assert got == pytest.approx(vol, rel=1e-5)


def test_implied_vol_refuses_prices_no_volatility_explains():
    t = 2 / (24 * 365)
    assert implied_vol(4.0, Right.CALL, 100.0, 95.0, t) is None  # below intrinsic 5
    assert implied_vol(101.0, Right.CALL, 100.0, 95.0, t) is None  # above the spot
    assert implied_vol(1.0, Right.CALL, 100.0, 95.0, 0.0) is None  # expired


def test_year_fraction_counts_365_day_years_and_never_goes_negative():
    assert year_fraction(0, 365 * 24 * 3600 * S) == 1.0
    assert year_fraction(OPEN, CLOSE) == pytest.approx(3.5 / (24 * 365))
    assert year_fraction(CLOSE, OPEN) == 0.0


# --- a chain of definitions -------------------------------------------------------------

OPRA_EXPIRY = utc(DAY, 0)  # OPRA stamps only the date: midnight UTC of the expiry day
STRIKES = range(590, 601)


def definition(iid, right, strike, *, expiration=OPRA_EXPIRY, underlying=UNDERLYING, action="A"):
    code = InstrumentClass.CALL if right is Right.CALL else InstrumentClass.PUT
    return InstrumentDef(
        ts_event=utc(DAY, 10),
        ts_recv=utc(DAY, 10),
        instrument_id=iid,
        raw_symbol=f"{UNDERLYING}  241129{right.value}{strike * 1000:08d}",
        instrument_class=code,
        strike_price=strike * PX,
        expiration=expiration,
        underlying=underlying,
        underlying_id=UNDERLYING_ID,
        security_update_action=action,
    )


def chain_defs() -> list[InstrumentDef]:
    defs = [
        definition(1000 + 2 * k + (right is Right.PUT), right, k)
        for k in STRIKES
        for right in Right
    ]
    defs.append(definition(5000, Right.CALL, 595, expiration=utc("2024-12-02", 0)))
    defs.append(definition(5001, Right.CALL, 595, underlying="QQQ"))
    return defs


def contracts() -> list[OptionContract]:
    return [
        OptionContract(
            d.instrument_id,
            d.raw_symbol,
            Right(d.instrument_class.value),
            d.strike_price,
            d.expiration,
        )
        for d in chain_defs()[:-2]
    ]


def test_select_by_moneyness_atm_and_n_strikes_out_of_the_money():
    chain = contracts()
    spot = 595 * PX + 30 * CENT
    atm_call = select_by_moneyness(chain, Right.CALL, spot, 0)
    assert (atm_call.strike, atm_call.right) == (595 * PX, Right.CALL)
    assert select_by_moneyness(chain, Right.PUT, spot, 0).strike == 595 * PX
    assert select_by_moneyness(chain, Right.CALL, spot, 2).strike == 597 * PX
    assert select_by_moneyness(chain, Right.PUT, spot, 2).strike == 594 * PX
    assert select_by_moneyness(chain, Right.CALL, spot, 5).strike == 600 * PX
    assert select_by_moneyness(chain, Right.CALL, spot, 6) is None  # not that many strikes
    # Exactly between two strikes: the lower one, whatever order the chain is in.
    half = 595 * PX + 50 * CENT
    assert select_by_moneyness(chain, Right.CALL, half, 0).strike == 595 * PX
    assert select_by_moneyness(chain[::-1], Right.CALL, half, 0).strike == 595 * PX


def test_select_by_delta_uses_each_contracts_implied_vol():
    spot, t, vol = 595 * PX, 2 / (24 * 365), 0.18
    rows = [(c, bs_price(c.right, spot, c.strike, t, vol), t) for c in contracts()]
    for right, target in [(Right.CALL, 0.3), (Right.PUT, 0.3), (Right.CALL, 0.5)]:
        picked, greeks = select_by_delta(rows, right, spot, target)
        brute = min(
            (c for c in contracts() if c.right is right),
            key=lambda c: abs(abs(bs_delta(right, spot, c.strike, t, vol)) - target),
        )
        assert picked == brute
        assert greeks.vol == pytest.approx(vol, rel=1e-6)
        assert math.copysign(1, greeks.delta) == (1 if right is Right.CALL else -1)
    call_30 = select_by_delta(rows, Right.CALL, spot, 0.3)[0]
    assert call_30.strike > spot  # a 30-delta call is out of the money


# --- calendar ---------------------------------------------------------------------------


def test_real_calendar_knows_the_early_close_and_the_holiday():
    friday = XNYS.on(DAY)
    assert friday == Session(DAY, OPEN, CLOSE)  # 09:30 to 13:00 New York
    assert XNYS.on("2024-11-28") is None  # Thanksgiving: no session
    assert XNYS.on("2024-11-30") is None  # a Saturday
    assert XNYS.on("2024-11-27").close_ns == utc("2024-11-27", 21)  # a full day, 16:00 ET
    # During Thanksgiving the session in force is the next one, Friday's.
    assert XNYS.at(utc("2024-11-28", 15)) == friday
    assert XNYS.at(CLOSE - 1) == friday
    assert XNYS.at(CLOSE).date == "2024-12-02"
    cme = ExchangeSessions("CMES")
    assert cme.on("2024-11-28") is not None  # CME trades a short Thanksgiving session


def test_which_options_expire_in_the_session():
    friday = XNYS.on(DAY)
    assert is_zero_dte(OPRA_EXPIRY, friday)
    assert not is_zero_dte(utc("2024-11-28", 0), friday)
    assert not is_zero_dte(utc("2024-12-02", 0), friday)
    # A date-only stamp is taken to expire at the close; an intraday one at its time.
    assert exit_time(OPRA_EXPIRY, friday, 15 * MIN) == CLOSE - 15 * MIN
    assert is_zero_dte(utc(DAY, 17), friday)
    assert exit_time(utc(DAY, 17), friday, 15 * MIN) == utc(DAY, 16, 45)
    # The real ES June 2024 options: expire 13:30 UTC on 2024-06-21 (AM settlement).
    cme = ExchangeSessions("CMES")
    es_expiry = 1_718_976_600_000_000_000
    assert is_zero_dte(es_expiry, cme.on("2024-06-21"))
    assert not is_zero_dte(es_expiry, cme.on("2024-06-20"))


# --- the strategy -----------------------------------------------------------------------

STRATEGY = ZeroDte()


def params(**raw):
    base = {"fast": 2, "slow": 4, "quantity": 3, "cutoff_minutes": 15}
    return STRATEGY.parse_params(base | raw)


def quote(iid, bid, ask, ts):
    return Quote(ts_event=ts, ts_recv=ts, instrument_id=iid, bid_px=bid, ask_px=ask)


def priced_quotes(spot, ts, vol=0.2):
    """Two-sided quotes for every contract, around its BSM value, on a one-cent grid."""
    t = year_fraction(ts, CLOSE)
    out = []
    for c in contracts():
        fair = bs_price(c.right, spot, c.strike, t, vol)
        bid = max(CENT, round(fair / CENT) * CENT - 2 * CENT)
        out.append(quote(c.instrument_id, bid, bid + 4 * CENT, ts))
    return out


def bars(closes, start):
    return [
        Bar(
            start + i * MIN,
            MIN,
            c,
            c + 10 * CENT,
            c - 10 * CENT,
            c,
            100,
            instrument_id=UNDERLYING_ID,
        )
        for i, c in enumerate(closes)
    ]


DOWN_UP = [596, 595.5, 595, 594.5, 594, 594.5, 595.5, 596]
UP_DOWN = [594, 594.5, 595, 595.5, 596, 595.5, 594.5, 594]


class Run:
    """Drives the strategy as an agent would: session from the real calendar every call."""

    def __init__(self, state: ZeroDteState, sessions: ExchangeSessions = XNYS) -> None:
        self.state, self.sessions, self.signals = state, sessions, []
        self.symbol = UNDERLYING

    def ctx(self, ts):
        return Context(self.symbol, self.sessions.at(ts))

    def feed(self, record):
        if isinstance(record, InstrumentDef):
            ts = record.ts_recv
            step = STRATEGY.on_definition(self.state, record, self.ctx(ts))
        elif isinstance(record, Bar):
            step = STRATEGY.on_bar(self.state, record, self.ctx(record.ts_close))
        elif isinstance(record, int):
            step = STRATEGY.on_time(self.state, record, self.ctx(record))
        else:
            step = STRATEGY.on_tick(self.state, record, self.ctx(record.ts_recv))
        self.state, new = step
        self.signals.extend(new)
        return new

    def feed_all(self, records):
        return [s for r in records for s in self.feed(r)]


def entered(start=None, closes=DOWN_UP, **raw) -> Run:
    start = start or utc(DAY, 15)
    run = Run(STRATEGY.initial_state(params(**raw)))
    run.feed_all(chain_defs())
    run.feed_all(priced_quotes(595 * PX, start - MIN))
    run.feed_all(bars([round(c * PX) for c in closes], start))
    return run


def test_cross_up_buys_the_atm_call_of_today():
    run = entered()
    assert set(run.state.chain) == {c.instrument_id for c in contracts()}  # not 5000, 5001
    [sig] = run.signals
    holding = run.state.holding
    assert holding.contract.right is Right.CALL
    # The cross comes on the bar closing at 595.50, halfway: the lower strike is taken.
    assert holding.contract.strike == 595 * PX
    assert sig.symbol == holding.contract.symbol
    assert sig.symbol == "SPY  241129C00595000"
    assert sig.target_position == 3
    assert sig.instrument_id == holding.contract.instrument_id
    assert sig.reference_price == holding.entry_price == run.state.quotes[sig.instrument_id].ask
    assert sig.ts_event == utc(DAY, 15, 7)  # close of the bar where EMA(2) crossed EMA(4)
    assert sig.signal_id == ids.signal_id("zero_dte", sig.symbol, sig.ts_event, 0)
    assert holding.exit_by == CLOSE - 15 * MIN
    assert run.state.target == 3


def test_cross_down_buys_a_put_and_a_reversal_sells_the_call_first():
    run = entered(closes=UP_DOWN)
    assert run.state.holding.contract.right is Right.PUT
    before = len(run.signals)
    more = run.feed_all(bars([round(c * PX) for c in DOWN_UP], utc(DAY, 15, 8)))
    assert len(run.signals) > before
    close_put, buy_call = more[:2]
    assert (close_put.target_position, buy_call.target_position) == (0, 3)
    assert close_put.ts_event == buy_call.ts_event
    assert (close_put.sequence, buy_call.sequence) == (0, 1)
    assert close_put.signal_id != buy_call.signal_id
    assert "P" in close_put.symbol[-9:]
    assert "C" in buy_call.symbol[-9:]


def test_delta_selection_from_the_quotes():
    run = entered(select="delta", target_delta=0.25)
    contract = run.state.holding.contract
    assert contract.right is Right.CALL
    assert contract.strike > 596 * PX
    assert "delta +0.2" in run.signals[0].reason


def test_stop_loss_and_take_profit_on_the_option_bid():
    run = entered(stop_loss=0.5, take_profit=1.25)
    h = run.state.holding
    iid, entry = h.contract.instrument_id, h.entry_price
    t = utc(DAY, 15, 30)
    assert run.feed(quote(iid, entry - 50 * CENT + 1, entry, t)) == []
    assert run.feed(quote(iid, entry + 125 * CENT - 1, entry + 130 * CENT, t + S)) == []
    [stop] = run.feed(quote(iid, entry - 50 * CENT, entry - 40 * CENT, t + 2 * S))
    assert (stop.target_position, stop.reason, stop.symbol) == (0, "stop-loss", h.contract.symbol)
    assert stop.reference_price == entry - 50 * CENT
    assert run.state.holding is None

    run = entered(stop_loss=0.5, take_profit=1.25)
    [take] = run.feed(quote(iid, entry + 125 * CENT, entry + 130 * CENT, t))
    assert (take.target_position, take.reason) == (0, "take-profit")
    # Other contracts' quotes never close the holding.
    run = entered(stop_loss=0.5)
    assert run.feed(quote(iid + 2, CENT, 2 * CENT, t)) == []
    assert run.state.holding is not None


def test_cut_off_before_the_early_close_from_the_real_calendar():
    run = entered()
    cutoff = CLOSE - 15 * MIN  # 12:45 New York on Black Friday, not 15:45
    assert run.feed(cutoff - 1) == []
    [out] = run.feed(cutoff)
    assert (out.target_position, out.reason) == (0, "cut-off before close/expiry")
    assert run.state.holding is None
    # No new entry after the cut-off, even on a fresh cross.
    assert run.feed_all(bars([round(c * PX) for c in UP_DOWN], cutoff)) == []


def test_an_intraday_expiry_before_the_close_ends_the_position_earlier():
    run = Run(STRATEGY.initial_state(params()))
    expiry = utc(DAY, 16)
    run.feed_all(definition(1000 + 2 * k, Right.CALL, k, expiration=expiry) for k in STRIKES)
    run.feed_all(quote(1000 + 2 * k, 50 * CENT, 60 * CENT, utc(DAY, 14, 59)) for k in STRIKES)
    run.feed_all(bars([round(c * PX) for c in DOWN_UP], utc(DAY, 15)))
    assert run.state.holding.exit_by == expiry - 15 * MIN
    [out] = run.feed(quote(1000 + 2 * 596, 55 * CENT, 65 * CENT, expiry - 15 * MIN))
    assert out.target_position == 0


def test_no_entry_on_a_holiday_or_without_quotes():
    run = entered(start=utc("2024-11-28", 15))  # Thanksgiving: Friday's session is next
    assert run.signals == []
    run = Run(STRATEGY.initial_state(params()))
    run.feed_all(chain_defs())
    run.feed_all(bars([round(c * PX) for c in DOWN_UP], utc(DAY, 15)))
    assert run.signals == []  # no two-sided quote for any contract


def test_deleted_definitions_leave_the_chain_and_other_days_are_pruned():
    run = entered()
    run.feed(definition(1000 + 2 * 590, Right.CALL, 590, action="D"))
    assert 1000 + 2 * 590 not in run.state.chain
    monday = "2024-12-02"
    later = definition(9000, Right.CALL, 600, expiration=utc(monday, 0))
    run.feed(msgspec.structs.replace(later, ts_event=utc(monday, 10), ts_recv=utc(monday, 10)))
    assert set(run.state.chain) == {9000}
    assert set(run.state.quotes) == set()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    split=st.integers(0, 400),
    stop=st.sampled_from([0.0, 0.3]),
    take=st.sampled_from([0.0, 0.4]),
)
def test_never_holds_past_the_cut_off_and_resumes_exactly(seed, split, stop, take):
    rng = np.random.default_rng(seed)
    spot = 595.0
    records: list = list(chain_defs())
    for minute in range(int((CLOSE - OPEN) / MIN) + 30):
        ts = OPEN - 10 * MIN + minute * MIN
        spot += float(rng.normal(0, 0.3))
        records.extend(priced_quotes(round(spot * PX), ts))
        records.append(bars([round(spot * PX)], ts)[0])
    p = {"stop_loss": stop, "take_profit": take}
    whole = Run(STRATEGY.initial_state(params(**p)))
    for record in records:
        whole.feed(record)
        h = whole.state.holding
        now = record.ts_close if isinstance(record, Bar) else record.ts_recv
        if h is not None:
            assert now < h.exit_by <= CLOSE - 15 * MIN
    assert whole.state.holding is None
    assert len(whole.signals) >= 2
    assert len({s.signal_id for s in whole.signals}) == len(whole.signals)
    # Interrupted anywhere, stored as msgpack and resumed: the same signals.
    cut = min(split * len(records) // 400, len(records))
    first = Run(STRATEGY.initial_state(params(**p)))
    first.feed_all(records[:cut])
    second = Run(STRATEGY.decode_state(msgspec.msgpack.encode(first.state)))
    second.feed_all(records[cut:])
    assert first.signals + second.signals == whole.signals


def test_underlying_ticks_move_the_spot_and_unknown_ids_are_ignored():
    run = entered()
    ts = utc(DAY, 15, 20)
    run.feed(quote(UNDERLYING_ID, 600 * PX, 600 * PX + 2 * CENT, ts))
    assert run.state.spot == 600 * PX + CENT
    run.feed(Trade(ts + 1, ts + 1, UNDERLYING_ID, 601 * PX, 5))
    assert run.state.spot == 601 * PX
    before = run.state
    run.feed(quote(424242, PX, 2 * PX, ts + 2))
    assert run.state == before
    # An option whose book turns one-sided has no usable quote until it is two-sided again.
    iid = next(iter(run.state.quotes))
    run.feed(quote(iid, 2**63 - 1, PX, ts + 3))
    assert iid not in run.state.quotes


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"select": "gamma"}, "select"),
        ({"target_delta": 1.0}, "target_delta"),
        ({"cutoff_minutes": 0}, "cutoff_minutes"),
        ({"stop_loss": -1.0}, "stop_loss"),
        ({"stop_loss": 1e-12}, None),
        ({"fast": 20, "slow": 5}, None),
    ],
)
def test_zero_dte_parameters_are_validated(raw, param):
    with pytest.raises(ParamError) as err:
        STRATEGY.parse_params(raw)
    assert err.value.param == param


# --- ticks in bulk ------------------------------------------------------------------------

WHOSE = ["held", "held", "other", "underlying", "stranger"]
KINDS = ["two-sided", "bid only", "no bid", "crossed", "trade", "undefined trade"]


def tick_records(specs, held, entry, t):
    """(symbol, record) of DBN ticks from (whose, kind, cents off the entry, seconds on)."""
    out = []
    for whose, kind, cents, step in specs:
        t += step * S
        iid = {"held": held, "other": held + 2, "underlying": UNDERLYING_ID, "stranger": 7}[whose]
        px = entry + cents * CENT
        common = {"instrument_id": iid, "ts_event": t - 1000, "ts_recv": t}
        if kind.endswith("trade"):
            price = UNDEF_PRICE if kind == "undefined trade" else px
            fields = common | {"price": price, "size": 1, "action": "T", "side": "N"}
            out.append((whose, dbn.encode_records(0, [fields])))
            continue
        bid = UNDEF_PRICE if kind == "no bid" else px
        ask = {"two-sided": px + 4 * CENT, "crossed": px - CENT}.get(kind, UNDEF_PRICE)
        fields = common | {"bid_px_00": bid, "ask_px_00": ask, "action": "A", "side": "B"}
        out.append((whose, dbn.encode_records(1, [fields])))
    return out


def one_batch(placed):
    """The ticks of (underlying, symbol, record)s as the chain engine batches a frame's."""
    [cut] = cut_chains(placed, 1000, 1 << 20)
    layout = dbn.frame_layout(cut.frame())
    return TickBatch.of_runs(cut.records, layout, 0, len(layout.runs))


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from(WHOSE),
            st.sampled_from(KINDS),
            st.integers(-60, 140),
            st.integers(0, 3),
        ),
        min_size=10,
        max_size=60,
    ),
    exits=st.sampled_from([(0.0, 0.0), (0.5, 0.0), (0.0, 1.25), (0.5, 1.25)]),
    late=st.booleans(),
    holding=st.booleans(),
)
def test_a_batch_of_ticks_is_exactly_each_tick_in_turn(specs, exits, late, holding):
    """`on_ticks` over mixed quotes and trades, of the held option, another, the underlying
    and a stranger, across stops, targets and the cut-off: `on_tick` on each, to the byte."""
    run = entered(stop_loss=exits[0], take_profit=exits[1])
    held, entry = run.state.holding.contract.instrument_id, run.state.holding.entry_price
    start = run.state.holding.exit_by - 30 * S if late else utc(DAY, 15, 30)
    if not holding:
        run.feed(run.state.holding.exit_by)  # the cut-off closes it: nothing held
    placed = [("SPY", whose, record) for whose, record in tick_records(specs, held, entry, start)]
    batch = one_batch(placed)
    state, ctx = run.state, run.ctx(start)
    bulk, bulk_signals = STRATEGY.on_ticks(state, batch, ctx)
    each, each_signals = state, []
    for tick in batch.items():
        each, new = STRATEGY.on_tick(each, tick, ctx)
        each_signals += new
    assert bulk_signals == each_signals
    assert msgspec.msgpack.encode(bulk) == msgspec.msgpack.encode(each)
    # And in parts, as a frame cut elsewhere or a bar's close splits it.
    middle = len(batch) // 2
    first, first_signals = STRATEGY.on_ticks(state, batch.part(0, middle), ctx)
    second, second_signals = STRATEGY.on_ticks(first, batch.part(middle, len(batch)), ctx)
    assert first_signals + second_signals == each_signals
    assert msgspec.msgpack.encode(second) == msgspec.msgpack.encode(each)


def test_ticks_in_bulk_exit_where_one_at_a_time_would():
    run = entered(stop_loss=0.5, take_profit=1.25)
    h = run.state.holding
    t = utc(DAY, 15, 30)
    specs = [("other", "two-sided", 0, 1), ("held", "two-sided", -10, 1)]
    specs += [("held", "two-sided", -50, 1), ("held", "two-sided", -60, 1)]
    records = tick_records(specs, h.contract.instrument_id, h.entry_price, t)
    batch = one_batch([("SPY", w, r) for w, r in records])
    state, [stop] = STRATEGY.on_ticks(run.state, batch, run.ctx(t))
    assert (stop.reason, stop.ts_event, stop.target_position) == ("stop-loss", t + 3 * S, 0)
    assert stop.reference_price == h.entry_price - 50 * CENT
    assert state.holding is None
    assert state.quotes[h.contract.instrument_id].bid == h.entry_price - 60 * CENT
