"""The fake TastyTrade server's pure parts: faults, order life, request checks, matching, books."""

import datetime as dt

import msgspec
import pytest

from executors.brokers.paper.matching import Tick
from fakes.tastytrade.auth import TokenBook, TokenState
from fakes.tastytrade.faults import Fault, FaultBook, FaultError, FaultRequest, request_from_flags
from fakes.tastytrade.instruments import (
    from_definition,
    future_option_symbol,
    md_symbol_of,
    occ_symbol,
    quarterly_month,
)
from fakes.tastytrade.lines import order_line
from fakes.tastytrade.matching import match_leg, match_net
from fakes.tastytrade.orders import (
    TRANSITIONS,
    FakeFill,
    FakeOrder,
    IllegalTransitionError,
    OrderEvent,
    OrderLeg,
    transition,
)
from fakes.tastytrade.payloads import ApiError, decode_order, order_terms
from fakes.tastytrade.portfolio import holdings
from fakes.tastytrade.vocab import (
    TERMINAL,
    InstrumentType,
    OrderAction,
    OrderStatus,
    OrderType,
    PriceEffect,
    TimeInForce,
)
from ticklane.market import InstrumentClass, InstrumentDef

S = 1_000_000_000
SPY = InstrumentType.EQUITY


def order(*legs: OrderLeg, kind=OrderType.MARKET, price=None, effect=None, market_ts=100):
    return FakeOrder(
        id=7,
        account="A",
        order_type=kind,
        time_in_force=TimeInForce.DAY,
        legs=legs,
        status=OrderStatus.LIVE,
        received_at=1,
        updated_at=1,
        market_ts=market_ts,
        visible_at=1,
        price=price,
        price_effect=effect,
    )


def fill(action: OrderAction, quantity: int, price: int, leg: int = 0) -> FakeFill:
    return FakeFill(
        f"f{action}{quantity}{price}", 7, "A", leg, "SPY", SPY, action, quantity, price, 1, 1
    )


def test_fault_flags_add_up_and_bad_ones_are_refused() -> None:
    request = request_from_flags(["rate_limit", "rate-limit=2", "list_lag_s=3", "drop_stream=1"])
    assert (request.rate_limit, request.drop_stream, request.list_lag_s) == (3, 1, 3.0)
    for bad in (["nonsense"], ["rate_limit=x"], ["timeout_hold_s=soon"], ["clear=1"]):
        with pytest.raises(FaultError):
            request_from_flags(bad)


def test_a_fault_fires_as_often_as_armed_and_is_counted() -> None:
    book = FaultBook()
    book.arm(FaultRequest(rate_limit=2, list_lag_s=1.5))
    assert [book.take(Fault.RATE_LIMIT) for _ in range(3)] == [True, True, False]
    book.arm(FaultRequest(refuse_refresh=4, clear=True))
    view = book.view()
    assert view.fired["rate_limit"] == 2
    assert view.armed["refuse_refresh"] == 4
    assert view.settings.list_lag_s == 0.0
    with pytest.raises(FaultError):
        book.arm(FaultRequest(server_error_status=404))


def test_every_edge_of_the_order_table_and_an_illegal_one() -> None:
    for (status, event), target in TRANSITIONS.items():
        moved = transition(msgspec.structs.replace(order(), status=status), event, now=9)
        assert moved.status is target
        assert (moved.terminal_at == 9) == (target in TERMINAL)
    filled = msgspec.structs.replace(order(), status=OrderStatus.FILLED)
    with pytest.raises(IllegalTransitionError):
        transition(filled, OrderEvent.CANCEL, now=9)


def test_order_requests_are_checked_like_tastytrades() -> None:
    body = b'{"order-type":"Limit","price":"150.25","price-effect":"Debit","legs":[{"instrument-type":"Equity","symbol":"AAPL","action":"Buy to Open","quantity":10}],"behavior":"immediate"}'  # noqa: E501 - the SDK's wire bytes
    terms = order_terms(decode_order(body))
    assert (terms.price, terms.price_effect, terms.legs[0].quantity) == (
        150_250_000_000,
        PriceEffect.DEBIT,
        10,
    )
    refused = (
        b'{"order-type":"Limit","legs":[{"instrument-type":"Equity","symbol":"A","action":"Buy to Open","quantity":1}]}',  # noqa: E501
        b'{"order-type":"Market","legs":[{"instrument-type":"Equity","symbol":"A","action":"Buy to Open","quantity":"1.5"}]}',  # noqa: E501
        b'{"order-type":"Market","legs":[]}',
        b'{"order-type":"Sideways","legs":[]}',
    )
    for raw in refused:
        with pytest.raises(ApiError):
            order_terms(decode_order(raw))


def test_a_leg_fills_only_on_ticks_after_the_order_arrived() -> None:
    buy = order(OrderLeg(SPY, "SPY", OrderAction.BUY_TO_OPEN, 1), market_ts=100)
    seen = Tick(100, bid=99 * S, ask=101 * S)
    assert match_leg(buy, 0, "SPY", [seen]) is None
    assert match_leg(buy, 0, "SPY", [seen], arriving=True) == (seen, 101 * S)
    later = Tick(101, bid=98 * S, ask=100 * S)
    assert match_leg(buy, 0, "SPY", [later]) == (later, 100 * S)


def test_net_limit_of_a_spread() -> None:
    legs = (
        OrderLeg(SPY, "X", OrderAction.BUY_TO_OPEN, 2),
        OrderLeg(SPY, "Y", OrderAction.SELL_TO_OPEN, 2),
    )
    debit = order(*legs, kind=OrderType.LIMIT, price=S, effect=PriceEffect.DEBIT)
    x, y = Tick(1, bid=290 * S // 100, ask=3 * S), Tick(1, bid=2 * S, ask=210 * S // 100)
    assert match_net(debit, [[x], [y]]) == [(x, 3 * S), (y, 2 * S)]  # 3 - 2 = 1.00 debit
    tighter = msgspec.structs.replace(debit, price=99 * S // 100)
    assert match_net(tighter, [[x], [y]]) is None
    assert match_net(debit, [[x], []]) is None


def test_positions_average_in_realize_out_and_reopen_across_zero() -> None:
    book = holdings(
        [
            fill(OrderAction.BUY_TO_OPEN, 10, 100 * S),
            fill(OrderAction.BUY_TO_OPEN, 10, 110 * S),
            fill(OrderAction.SELL_TO_CLOSE, 25, 120 * S),
        ],
        lambda _symbol: 100,
    )
    spy = book["SPY"]
    assert (spy.quantity, spy.average_open) == (-5, 120 * S)
    assert spy.realized == (120 - 105) * 20 * 100 * S


def test_definitions_become_instruments_with_tastytrade_symbols() -> None:
    def definition(symbol: str, kind: InstrumentClass, **extra) -> InstrumentDef:
        return InstrumentDef(1, 1, 1, symbol, kind, **extra)

    future = from_definition(
        definition("ESZ6", InstrumentClass.FUTURE, asset="ES", unit_of_measure_qty=50 * S)
    )
    assert future is not None
    assert (future.symbol, future.md_symbol, future.multiplier, future.root) == (
        "/ESZ6",
        "ESZ6",
        50,
        "ES",
    )
    occ = occ_symbol("SPXW", dt.date(2026, 12, 4), "C", 5900 * S)
    assert occ == "SPXW  261204C05900000"
    option = from_definition(
        definition(occ, InstrumentClass.CALL, strike_price=5900 * S, underlying="SPX")
    )
    assert option is not None
    assert (option.instrument_type, option.root, option.multiplier) == (
        InstrumentType.EQUITY_OPTION,
        "SPXW",
        100,
    )
    # As Databento defines CME's ESM4 P5230 (glbx-esm4-options-20240509.definition).
    cme = from_definition(
        definition(
            "ESM4 P5230",
            InstrumentClass.PUT,
            underlying="ESM4",
            asset="ES",
            exchange="XCME",
            strike_price=5230 * S,
            expiration=1_718_976_600 * S,
            unit_of_measure_qty=50 * S,
        )
    )
    assert cme is not None
    assert (cme.instrument_type, cme.symbol, cme.underlying, cme.root, cme.multiplier) == (
        InstrumentType.FUTURE_OPTION,
        "./ESM4 ESM4  240621P5230",
        "/ESM4",
        "ES",
        50,
    )
    assert md_symbol_of(cme.symbol) == "ESM4 P5230"
    # Databento gives an option no increment: the fake quotes CME's index-option ticks.
    assert (cme.tick, cme.finer_ticks) == (S // 4, ((S // 20, 5 * S),))
    weekly = future_option_symbol("ESM4", "EW4M4", dt.date(2024, 6, 28), "C", 5232_500_000_000)
    assert weekly == "./ESM4 EW4M4 240628C5232.5"
    assert md_symbol_of(weekly) == "EW4M4 C5232.5"
    # Without the future it delivers, its expiry or strike, a CME option cannot be named.
    assert from_definition(definition("ESZ6 C5900", InstrumentClass.CALL)) is None
    assert from_definition(definition("ESZ6-ESH7", InstrumentClass.FUTURE_SPREAD)) is None
    assert quarterly_month(dt.date(2026, 12, 4)) == ("Z6", dt.date(2026, 12, 18))
    assert quarterly_month(dt.date(2026, 12, 18)) == ("H7", dt.date(2027, 3, 19))


def test_tokens_expire_by_time_and_once_by_fault() -> None:
    book = TokenBook(lifetime_s=10)
    grant = book.issue(now=0)
    header = f"Bearer {grant.access_token}"
    assert book.check(header, now=5) is TokenState.VALID
    book.expire_once(header)
    assert book.check(header, now=5) is TokenState.EXPIRED
    assert book.check(header, now=5) is TokenState.VALID
    assert book.check(header, now=10) is TokenState.EXPIRED
    assert book.check("Bearer nope", now=0) is TokenState.UNKNOWN
    assert book.check(None, now=0) is TokenState.MISSING


def test_record_lines_use_the_paper_venues_vocabulary() -> None:
    working = order(OrderLeg(SPY, "SPY", OrderAction.SELL_TO_CLOSE, 4))
    line = order_line(working, [fill(OrderAction.SELL_TO_CLOSE, 1, S)])
    assert (line.side.value, line.status.value, line.filled_quantity) == (
        "sell",
        "partially_filled",
        1,
    )
    assert msgspec.to_builtins(line)["type"] == "market"
