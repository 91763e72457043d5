"""The fake Schwab server's pure parts: request checks, order life, lists, tokens, faults."""

import json

import msgspec
import pytest
from multidict import MultiDict

from executors.brokers.paper.matching import Tick
from fakes.schwab.accounts import Accounts, account_hash
from fakes.schwab.activity import activity, content
from fakes.schwab.auth import RefreshState, TokenBook, token_file
from fakes.schwab.faults import (
    SchwabFault,
    SchwabFaultRequest,
    SchwabFaults,
    schwab_request_from_flags,
)
from fakes.schwab.lines import order_line
from fakes.schwab.matching import match_leg, match_net
from fakes.schwab.order_lists import listed
from fakes.schwab.orders import (
    TRANSITIONS,
    FakeFill,
    FakeOrder,
    IllegalTransitionError,
    OrderEvent,
    OrderLeg,
    order_filled,
    transition,
)
from fakes.schwab.payloads import ApiError, basic_credentials, decode_order, order_terms
from fakes.schwab.render import activities, number, when
from fakes.schwab.vocab import (
    TERMINAL,
    AssetType,
    ComplexOrderStrategyType,
    Duration,
    Instruction,
    MessageType,
    OrderType,
    Session,
    Status,
)
from fakes.tastytrade.auth import TokenState
from fakes.tastytrade.faults import Fault, FaultError

S = 1_000_000_000
CALL = "SPY   261218C00600000"
CALL_2 = "SPY   261218C00605000"


def body(kind: str = "MARKET", legs=(("BUY", "EQUITY", "SPY", 10),), **extra) -> bytes:
    return msgspec.json.encode(
        {
            "orderType": kind,
            "session": "NORMAL",
            "duration": "DAY",
            "orderStrategyType": "SINGLE",
            "orderLegCollection": [
                {"instruction": i, "instrument": {"assetType": a, "symbol": s}, "quantity": q}
                for i, a, s, q in legs
            ],
            **extra,
        }
    )


def terms(raw: bytes):
    return order_terms(decode_order(raw))


def fake_order(*legs: OrderLeg, kind=OrderType.MARKET, quantity=1, price=None, stop=None):
    return FakeOrder(
        id=7,
        account="10000001",
        order_type=kind,
        session=Session.NORMAL,
        duration=Duration.DAY,
        strategy=ComplexOrderStrategyType.NONE,
        quantity=quantity,
        legs=legs,
        status=Status.WORKING,
        entered_at=1_700_000_000 * S,
        updated_at=1_700_000_000 * S,
        market_ts=100,
        visible_at=1_700_000_000 * S,
        price=price,
        stop_price=stop,
    )


def fill(order: FakeOrder, leg: int, quantity: int, activity_no: int, price=S) -> FakeFill:
    the_leg = order.legs[leg]
    return FakeFill(
        fill_id=f"f{leg}-{activity_no}",
        order_id=order.id,
        account=order.account,
        leg=leg,
        symbol=the_leg.symbol,
        asset_type=the_leg.asset_type,
        instruction=the_leg.instruction,
        quantity=quantity,
        price=price,
        filled_at=200,
        recorded_at=300,
        activity=activity_no,
    )


# --- request checks


def test_an_sdk_limit_order_becomes_terms_at_1e9():
    checked = terms(body("LIMIT", price="150.25"))
    assert (checked.order_type, checked.price, checked.quantity) == (
        OrderType.LIMIT,
        150_250_000_000,
        10,
    )
    assert checked.legs == (OrderLeg(AssetType.EQUITY, "SPY", Instruction.BUY, 10),)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (body(legs=(("BUY", "FUTURE", "/ESZ6", 1),)), "FUTURE orders are not supported"),
        (body(legs=(("BUY_TO_OPEN", "EQUITY", "SPY", 1),)), "not valid for EQUITY"),
        (body(legs=(("BUY", "OPTION", CALL, 1),)), "not valid for OPTION"),
        (body(legs=(("BUY", "EQUITY", "SPY", 1.5),)), "positive whole number"),
        (body("LIMIT"), "needs a price"),
        (body("STOP"), "needs a stopPrice"),
        (body("NET_DEBIT", price="1"), "multi-leg orders"),
        (body("TRAILING_STOP"), "does not trade TRAILING_STOP"),
        (body(orderStrategyType="OCO"), "SINGLE orders only"),
        (body("LIMIT", price="-1"), "must not be negative"),
        (body(legs=()), "at least one leg"),
        (body("NOT_A_TYPE"), "Invalid order"),
        (b"{", "not JSON"),
    ],
)
def test_refusals_are_400s_naming_the_problem(raw, words):
    with pytest.raises(ApiError) as caught:
        terms(raw)
    assert caught.value.status == 400
    assert words in caught.value.message
    assert set(caught.value.body()) == {"message", "errors"}


def test_multi_leg_orders_are_net_priced_and_shaped_like_their_strategy():
    legs = (("BUY_TO_OPEN", "OPTION", CALL, 2), ("SELL_TO_OPEN", "OPTION", CALL_2, 2))
    vertical = terms(
        body("NET_DEBIT", legs, price="1.05", quantity=2, complexOrderStrategyType="VERTICAL")
    )
    assert (vertical.quantity, vertical.price, vertical.strategy) == (
        2,
        1_050_000_000,
        ComplexOrderStrategyType.VERTICAL,
    )
    with pytest.raises(ApiError, match="multi-leg order is MARKET or NET"):
        terms(body("LIMIT", legs, price="1"))
    with pytest.raises(ApiError, match="IRON_CONDOR has 4"):
        terms(body("NET_CREDIT", legs, price="1", complexOrderStrategyType="IRON_CONDOR"))
    with pytest.raises(ApiError, match="multiple of the order's quantity"):
        terms(body("NET_DEBIT", legs, price="1", quantity=3))
    assert terms(body("NET_ZERO", legs)).price == 0


def test_basic_credentials_as_authlib_sends_them():
    assert basic_credentials("Basic a2V5OnNlY3JldA==") == ("key", "secret")
    assert basic_credentials("Bearer x") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials(None) is None


# --- order life


def test_transitions_end_in_terminal_statuses_and_refuse_the_rest():
    leg = OrderLeg(AssetType.EQUITY, "SPY", Instruction.BUY, 1)
    accepted = msgspec.structs.replace(fake_order(leg), status=Status.ACCEPTED)
    working = transition(accepted, OrderEvent.ROUTE, 5)
    assert working.status is Status.WORKING
    replaced = transition(working, OrderEvent.REPLACE, 6)
    assert (replaced.status, replaced.close_at) == (Status.REPLACED, 6)
    for status in TERMINAL:
        for event in OrderEvent:
            assert (status, event) not in TRANSITIONS
    with pytest.raises(IllegalTransitionError, match="REPLACED cannot take cancel"):
        transition(replaced, OrderEvent.CANCEL, 7)


def test_executions_group_legs_into_activities_in_order_units():
    legs = (
        OrderLeg(AssetType.OPTION, CALL, Instruction.BUY_TO_OPEN, 2),
        OrderLeg(AssetType.OPTION, CALL_2, Instruction.SELL_TO_OPEN, 2),
    )
    spread = fake_order(*legs, kind=OrderType.MARKET, quantity=2)
    first = [fill(spread, 0, 2, 1)]
    assert order_filled(spread, first) == 0
    both = [*first, fill(spread, 1, 2, 2, price=S // 2)]
    assert order_filled(spread, both) == 2
    rows = activities(spread, both)
    assert [(r["quantity"], r["orderRemainingQuantity"]) for r in rows] == [(0, 2), (2, 0)]
    assert rows[1]["executionLegs"] == [
        {
            "legId": 2,
            "quantity": 2,
            "mismarkedQuantity": 0,
            "price": number(S // 2),
            "time": "1970-01-01T00:00:00+0000",
        }
    ]


def test_prices_and_times_are_written_as_schwab_writes_them():
    assert str(number(600_120_000_000)) == "600.12"
    assert str(number(600 * S)) == "600"
    assert when(1_585_582_572 * S + 999) == "2020-03-30T15:36:12+0000"


def test_matching_reads_instructions_by_direction_and_net_types_by_effect():
    buy = fake_order(OrderLeg(AssetType.EQUITY, "SPY", Instruction.BUY_TO_COVER, 1))
    quote = Tick(200, bid=99 * S, ask=100 * S)
    assert match_leg(buy, 0, "SPY", [quote]) == (quote, 100 * S)
    legs = (
        OrderLeg(AssetType.OPTION, CALL, Instruction.BUY_TO_OPEN, 1),
        OrderLeg(AssetType.OPTION, CALL_2, Instruction.SELL_TO_OPEN, 1),
    )
    latest = [[Tick(200, bid=2 * S, ask=3 * S)], [Tick(200, bid=1 * S, ask=S + S // 2)]]
    assert match_net(fake_order(*legs, kind=OrderType.NET_DEBIT, price=2 * S), latest)
    assert match_net(fake_order(*legs, kind=OrderType.NET_DEBIT, price=S), latest) is None
    assert match_net(fake_order(*legs, kind=OrderType.NET_CREDIT, price=S), latest) is None


# --- lists


def test_order_lists_take_the_spec_query_in_whole_seconds():
    leg = OrderLeg(AssetType.EQUITY, "SPY", Instruction.BUY, 1)
    base = fake_order(leg)
    early = msgspec.structs.replace(base, id=1, entered_at=1_700_000_000 * S)
    late = msgspec.structs.replace(
        base, id=2, entered_at=1_700_000_060 * S + 500_000_000, status=Status.FILLED
    )
    range_ = {"fromEnteredTime": "2023-11-14T22:13:20Z", "toEnteredTime": "2023-11-14T22:14:20Z"}

    def query(**more: str) -> MultiDict[str]:
        return MultiDict(range_ | more)

    # `late` was entered at 22:14:20.5: in the same second as `toEnteredTime`, so listed.
    assert [o.id for o in listed([early, late], query())] == [2, 1]
    assert [o.id for o in listed([early, late], query(status="FILLED"))] == [2]
    assert [o.id for o in listed([early, late], query(maxResults="1"))] == [2]
    for bad in (
        MultiDict(fromEnteredTime="2023-11-14T22:13:20Z"),
        query(status="NOPE"),
        query(toEnteredTime="2022-01-01T00:00:00.000Z"),
        query(fromEnteredTime="yesterday"),
        query(fromEnteredTime="2021-01-01T00:00:00.000Z"),
    ):
        with pytest.raises(ApiError):
            listed([early], bad)


def test_lines_have_no_client_order_id_and_map_statuses():
    leg = OrderLeg(AssetType.EQUITY, "SPY", Instruction.SELL_SHORT, 4)
    replaced = msgspec.structs.replace(fake_order(leg), status=Status.REPLACED)
    line = msgspec.to_builtins(order_line(replaced, []))
    assert "client_order_id" not in line
    assert (line["side"], line["status"], line["venue_status"]) == ("sell", "cancelled", "REPLACED")
    partly = order_line(fake_order(leg), [fill(fake_order(leg), 0, 1, 1)])
    assert partly.status.value == "partially_filled"


# --- tokens, accounts, activity


def test_refresh_tokens_die_seven_days_after_their_login_and_refreshing_keeps_them():
    book = TokenBook()
    grant = book.login(1_000_000.0, age_s=7 * 86_400 - 10)
    assert book.refresh_state(grant.refresh_token, 1_000_000.0) is RefreshState.VALID
    renewed = book.refresh(grant.refresh_token, 1_000_000.0)
    assert renewed.refresh_token == grant.refresh_token
    assert book.refresh_state(grant.refresh_token, 1_000_011.0) is RefreshState.EXPIRED
    assert book.refresh_state("other", 0.0) is RefreshState.UNKNOWN
    book.adopt("other", 5.0)
    assert book.refresh_state("other", 6.0) is RefreshState.VALID
    book.expire_refresh("other")
    assert book.refresh_state("other", 6.0) is RefreshState.EXPIRED
    assert book.check(f"Bearer {renewed.access_token}", 1_000_000.0) is TokenState.VALID
    book.expire(f"Bearer {renewed.access_token}")
    assert book.check(renewed.access_token, 1_000_000.0) is TokenState.EXPIRED
    assert book.check(None, 0.0) is TokenState.MISSING
    file = token_file(grant, 123.9)
    assert file["creation_timestamp"] == 123
    assert file["token"]["expires_at"] == grant.expires_at
    code = book.new_code(0.0)
    assert book.take_code(code, 1.0)
    assert not book.take_code(code, 1.0)


def test_account_hashes_are_stable_and_match_extract_order_ids_pattern():
    accounts = Accounts(["10000001", "10000002"])
    first = account_hash("10000001")
    assert first.isalnum()
    assert len(first) == 64
    assert accounts.number(first) == "10000001"
    assert accounts.number("nope") is None


def test_activity_messages_carry_the_order_id_in_message_data():
    leg = OrderLeg(AssetType.EQUITY, "SPY", Instruction.BUY, 1)
    message = activity(fake_order(leg), MessageType.ORDER_FILL_COMPLETED, 1_700_000_000 * S)
    assert message.is_fill
    entry = content(message, 4, "key")
    assert (entry["seq"], entry["key"], entry["1"], entry["2"]) == (
        4,
        "key",
        "10000001",
        "OrderFillCompleted",
    )
    data = json.loads(entry["3"])
    assert data["SchwabOrderID"] == "7"
    stamp = data["BaseEvent"]["OrderFillCompletedEventOrderLegQuantityInfo"]["ExecutionInfo"]
    assert stamp["ExecutionTimeStamp"]["DateTimeString"] == "2023-11-14 22:13:20.000"
    rejected = msgspec.structs.replace(fake_order(leg), status_description="no")
    out = json.loads(activity(rejected, MessageType.ORDER_UR_OUT_COMPLETED, 0).data)
    assert out["BaseEvent"]["OrderUROutCompletedEvent"]["OutCancelType"] == "SystemReject"


# --- faults


def test_faults_add_refresh_expired_to_the_shared_book():
    faults = SchwabFaults()
    faults.arm(SchwabFaultRequest(refresh_expired=1, rate_limit=1))
    assert faults.take(SchwabFault.REFRESH_EXPIRED)
    assert not faults.take(SchwabFault.REFRESH_EXPIRED)
    assert faults.take(Fault.RATE_LIMIT)
    faults.count(SchwabFault.REFRESH_EXPIRED)
    view = faults.view()
    assert (view.fired["refresh_expired"], view.fired["rate_limit"]) == (2, 1)
    assert view.armed["refresh_expired"] == 0
    faults.arm(SchwabFaultRequest(refresh_expired=3, clear=True))
    faults.arm(SchwabFaultRequest(clear=True))
    assert faults.view().armed["refresh_expired"] == 0
    with pytest.raises(FaultError):
        faults.arm(SchwabFaultRequest(refresh_expired=-1))


def test_the_unauthorized_fault_counts_down_and_clears():
    faults = SchwabFaults()
    faults.arm(SchwabFaultRequest(unauthorized=2))
    assert faults.take(SchwabFault.UNAUTHORIZED)
    assert faults.view().armed["unauthorized"] == 1
    faults.arm(SchwabFaultRequest(unauthorized=100))
    faults.arm(SchwabFaultRequest(clear=True))  # the end of an outage
    assert not faults.take(SchwabFault.UNAUTHORIZED)
    assert faults.view().fired["unauthorized"] == 1
    with pytest.raises(FaultError):
        faults.arm(SchwabFaultRequest(unauthorized=-1))
    flags = schwab_request_from_flags(["unauthorized=5", "refresh_expired", "unauthorized"])
    assert (flags.unauthorized, flags.refresh_expired) == (6, 1)


def test_fault_flags_take_schwabs_own_and_the_shared_ones():
    request = schwab_request_from_flags(["refresh-expired", "refresh_expired=2", "rate_limit=3"])
    assert (request.refresh_expired, request.rate_limit) == (3, 3)
    assert schwab_request_from_flags(["list_lag_s=1.5"]).list_lag_s == 1.5
    with pytest.raises(FaultError):
        schwab_request_from_flags(["refresh_expired=x"])
    with pytest.raises(FaultError):
        schwab_request_from_flags(["nope"])
