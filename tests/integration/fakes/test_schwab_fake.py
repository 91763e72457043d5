"""The fake Schwab server, driven through the real schwab-py (never patched).

The SDK reaches the fake only through what `client_from_access_functions` builds plus one
transport (`fakes/schwab/client.py`); the `StreamClient` finds the fake's streamer through
`userPreference`. Waiting is done with deadlines: `poll_until`, or `asyncio.wait_for` on the
streamer's next message.
"""

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from aiohttp import ClientSession, WSMsgType
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from confluent_kafka import Producer
from schwab.auth import TOKEN_ENDPOINT, get_auth_context
from schwab.orders.common import (
    ComplexOrderStrategyType,
    OptionInstruction,
    OrderStrategyType,
    OrderType,
)
from schwab.orders.equities import (
    equity_buy_limit,
    equity_buy_market,
    equity_sell_short_market,
)
from schwab.orders.generic import OrderBuilder
from schwab.orders.options import bull_call_vertical_open
from schwab.streaming import StreamClient
from schwab.utils import UnsuccessfulOrderException, Utils
from websockets.exceptions import ConnectionClosed

from executors.brokers.transport import RewritingTransport
from fakes.schwab.accounts import DEFAULT_ACCOUNT, account_hash
from fakes.schwab.background import FakeSchwabServer
from fakes.schwab.client import APP_KEY, APP_SECRET, sdk_client
from fakes.schwab.record import Record
from fakes.schwab.server import FakeConfig
from tests.conftest import poll_until
from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue, resolve

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SCALE = 1_000_000_000
WAIT_S = 10.0
DAY_S = 24 * 3600
HASH = account_hash(DEFAULT_ACCOUNT)

pytestmark = pytest.mark.integration
MBP_1 = 0x01
DEFINITION = 0x13


@pytest.fixture(autouse=True)
def no_leaked_servers():
    """Every fake started by a test is stopped, its thread joined."""
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("fake-schwab")]
    assert not leaked, f"server threads still running: {leaked}"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeSchwabServer]:
    with FakeSchwabServer(tmp_path / "fake") as server:
        yield server


@pytest.fixture
def connect() -> Iterator[Callable[..., Any]]:
    """`connect(fake, token=None, written=None, asyncio=False)`: a schwab-py client on the fake.

    `written` collects the token files the client writes back after each refresh. Sync
    clients are closed at the end of the test; an async one closes itself in its loop.
    """
    made: list[Any] = []

    def make(
        fake: FakeSchwabServer,
        token: dict[str, Any] | None = None,
        written: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        write = written.append if written is not None else lambda _file: None
        c = sdk_client(fake.url, token or fake.token_file(), write, **kwargs)
        if not kwargs.get("asyncio"):
            made.append(c)
        return c

    yield make
    for c in made:
        c.session.close()


def control(fake: FakeSchwabServer, path: str, body: object) -> Any:
    response = httpx2.post(f"{fake.url}/__fake/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def fired(fake: FakeSchwabServer) -> dict[str, int]:
    return httpx2.get(f"{fake.url}/__fake/faults").json()["fired"]


def quote(fake: FakeSchwabServer, symbol: str, bid: str, ask: str, ts: int) -> None:
    tick = {"ts_event": ts, "bid": int(Decimal(bid) * SCALE), "ask": int(Decimal(ask) * SCALE)}
    control(fake, "ticks", {"symbol": symbol, "ticks": [tick]})


def recorded(fake: FakeSchwabServer) -> tuple[list[Any], list[Any]]:
    record = Record(fake.data_dir, read_only=True)
    try:
        return record.orders(), record.fills()
    finally:
        record.close()


def place(c: Any, order: Any) -> int:
    response = c.place_order(HASH, order)
    assert response.status_code == 201, response.text
    order_id = Utils(c, HASH).extract_order_id(response)
    assert isinstance(order_id, int)
    return order_id


def status_of(c: Any, order_id: int) -> str:
    return str(c.get_order(order_id, HASH).json()["status"])


def recent(c: Any, **kwargs: Any) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    response = c.get_orders_for_account(
        HASH,
        from_entered_datetime=now - dt.timedelta(hours=1),
        to_entered_datetime=now + dt.timedelta(minutes=1),
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return list(response.json())


# --- auth and accounts


def test_refresh_renews_the_access_token_and_keeps_the_login_time(tmp_path: Path, connect) -> None:
    # A 300 s token is "expired" under schwab-py's 300 s leeway: every call refreshes.
    with FakeSchwabServer(tmp_path, FakeConfig(token_lifetime_s=300)) as fake:
        stale = fake.token_file(age_s=2 * DAY_S, access_expired=True)
        written: list[dict[str, Any]] = []
        c = connect(fake, stale, written)
        assert c.get_account_numbers().status_code == 200
        assert c.get_account_numbers().status_code == 200
        assert len(written) == 2
        assert {f["creation_timestamp"] for f in written} == {stale["creation_timestamp"]}
        assert written[-1]["token"]["refresh_token"] == stale["token"]["refresh_token"]
        assert written[-1]["token"]["access_token"] != stale["token"]["access_token"]
        assert 2 * DAY_S <= c.token_age() < 2 * DAY_S + 60
        assert fake.call(lambda f: f.tokens.issued) == 3


def test_api_calls_need_a_valid_token_and_the_token_endpoint_the_app_key(fake) -> None:
    url = f"{fake.url}/trader/v1/accounts/accountNumbers"
    missing = httpx2.get(url)
    assert missing.status_code == 401
    assert set(missing.json()) == {"message", "errors"}
    forged = httpx2.get(url, headers={"Authorization": "Bearer forged-token-value"})
    assert forged.status_code == 401
    assert "forged-token-value" not in forged.text
    no_app = httpx2.post(
        f"{fake.url}/v1/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x"}
    )
    assert no_app.status_code == 401
    assert no_app.json()["error"] == "invalid_client"


def test_the_login_flow_trades_a_code_for_tokens(fake, connect) -> None:
    # schwab-py's own login steps (`get_auth_context`, then what `client_from_received_url`
    # does), the browser and the token request sent to the fake.
    context = get_auth_context(APP_KEY, "https://127.0.0.1:8182")
    with httpx2.Client(transport=RewritingTransport(fake.url)) as browser:
        redirect = browser.get(context.authorization_url)
    assert redirect.status_code == 302
    received = redirect.headers["Location"]
    assert received.startswith(context.callback_url)
    assert "code=" in received
    with OAuth2Client(
        APP_KEY, redirect_uri=context.callback_url, transport=RewritingTransport(fake.url)
    ) as oauth:
        token = oauth.fetch_token(
            TOKEN_ENDPOINT,
            authorization_response=received,
            client_id=APP_KEY,
            auth=(APP_KEY, APP_SECRET),
            state=context.state,
        )
    assert token["token_type"] == "Bearer"  # noqa: S105 - a token type, not a secret
    assert token["expires_in"] == 1800
    c = connect(fake, {"creation_timestamp": int(time.time()), "token": dict(token)})
    assert c.get_account_numbers().status_code == 200


def test_account_numbers_give_the_hash_every_account_call_uses(fake, connect) -> None:
    c = connect(fake)
    numbers = c.get_account_numbers()
    assert numbers.status_code == 200
    assert numbers.headers["Schwab-Client-CorrelId"]
    assert numbers.json() == [{"accountNumber": DEFAULT_ACCOUNT, "hashValue": HASH}]
    account = c.get_account(HASH, fields=[c.Account.Fields.POSITIONS]).json()
    securities = account["securitiesAccount"]
    assert (securities["accountNumber"], securities["type"]) == (DEFAULT_ACCOUNT, "MARGIN")
    assert securities["positions"] == []
    assert securities["currentBalances"]["cashBalance"] == 1_000_000
    assert "positions" not in c.get_account(HASH).json()["securitiesAccount"]
    [listed] = c.get_accounts(fields=[c.Account.Fields.POSITIONS]).json()
    assert listed["securitiesAccount"]["positions"] == []
    assert c.get_account(account_hash("99999999")).status_code == 404
    assert [a["accountNumber"] for a in c.get_user_preferences().json()["accounts"]] == [
        DEFAULT_ACCOUNT
    ]


# --- orders


def test_place_answers_201_with_a_location_extract_order_id_reads(fake, connect) -> None:
    c = connect(fake)
    response = c.place_order(HASH, equity_buy_limit("AAPL", 10, "150.25"))
    assert response.status_code == 201
    assert response.content == b""
    order_id = Utils(c, HASH).extract_order_id(response)
    assert response.headers["Location"] == (
        f"https://api.schwabapi.com/trader/v1/accounts/{HASH}/orders/{order_id}"
    )
    order = c.get_order(order_id, HASH).json()
    assert (order["orderId"], order["status"], order["orderType"]) == (order_id, "WORKING", "LIMIT")
    assert order["price"] == 150.25
    assert (order["quantity"], order["filledQuantity"], order["remainingQuantity"]) == (10, 0, 10)
    [leg] = order["orderLegCollection"]
    assert (leg["instruction"], leg["instrument"]["symbol"], leg["quantity"]) == ("BUY", "AAPL", 10)
    assert leg["positionEffect"] == "OPENING"
    assert "orderActivityCollection" not in order


def test_identical_orders_are_two_orders(fake, connect) -> None:
    c = connect(fake)
    first = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    second = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    assert second == first + 1
    assert [o.id for o in recorded(fake)[0]] == [first, second]


def test_orders_are_listed_by_entered_time_and_status_newest_first(fake, connect) -> None:
    c = connect(fake)
    older = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    newer = place(c, equity_buy_limit("SPY", 2, "500.00"))
    assert c.cancel_order(older, HASH).status_code == 200
    assert [o["orderId"] for o in recent(c)] == [newer, older]
    assert [o["orderId"] for o in recent(c, status=c.Order.Status.CANCELED)] == [older]
    assert [o["orderId"] for o in recent(c, max_results=1)] == [newer]
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    earlier = c.get_orders_for_account(
        HASH,
        from_entered_datetime=hour_ago - dt.timedelta(hours=1),
        to_entered_datetime=hour_ago,
    )
    assert earlier.json() == []
    linked = c.get_orders_for_all_linked_accounts().json()
    assert [o["orderId"] for o in linked] == [newer, older]
    no_range = httpx2.get(
        f"{fake.url}/trader/v1/accounts/{HASH}/orders",
        headers={"Authorization": f"Bearer {c.session.token['access_token']}"},
    )
    assert no_range.status_code == 400


def test_cancel_and_replace(fake, connect) -> None:
    c = connect(fake)
    cancelled = place(c, equity_buy_limit("AAPL", 5, "100.00"))
    response = c.cancel_order(cancelled, HASH)
    assert (response.status_code, response.content) == (200, b"")
    assert status_of(c, cancelled) == "CANCELED"
    again = c.cancel_order(cancelled, HASH)
    assert again.status_code == 400
    assert "CANCELED" in again.json()["message"]

    old = place(c, equity_buy_limit("AAPL", 5, "100.00"))
    replaced = c.replace_order(HASH, old, equity_buy_limit("AAPL", 5, "101.00"))
    assert replaced.status_code == 201
    new = Utils(c, HASH).extract_order_id(replaced)
    assert new not in {None, old}
    assert status_of(c, old) == "REPLACED"
    order = c.get_order(new, HASH).json()
    assert (order["status"], order["price"]) == ("WORKING", 101)
    assert c.replace_order(HASH, old, equity_buy_limit("AAPL", 5, "102.00")).status_code == 400
    orders, _ = recorded(fake)
    assert [(o.id, o.replaced_by_order_id, o.replaces_order_id) for o in orders[1:]] == [
        (old, new, None),
        (new, None, old),
    ]


def test_a_rejection_can_follow_the_201(fake, connect) -> None:
    c = connect(fake)
    order_id = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    control(fake, f"orders/{order_id}/reject", {})
    order = c.get_order(order_id, HASH).json()
    assert (order["status"], order["statusDescription"]) == (
        "REJECTED",
        "rejected by the fake's control",
    )
    assert order["cancelable"] is False


def test_preview_checks_and_prices_but_records_nothing(fake, connect) -> None:
    c = connect(fake)
    quote(fake, "SPY", "600.00", "600.10", ts=1_000)
    response = c.preview_order(HASH, equity_buy_market("SPY", 10))
    assert response.status_code == 200
    body = response.json()
    assert body["orderValidationResult"]["rejects"] == []
    [leg] = body["orderStrategy"]["orderLegs"]
    assert (leg["finalSymbol"], leg["bidPrice"], leg["askPrice"]) == ("SPY", 600, 600.1)
    assert body["orderStrategy"]["orderBalance"]["orderValue"] == 6000.5
    # A position reversal in one order (brokers.md 2c): the fake takes the shape, unjudged.
    reversal = {
        "session": "NORMAL",
        "duration": "DAY",
        "orderType": "MARKET",
        "orderStrategyType": "SINGLE",
        "orderLegCollection": [
            {
                "instruction": i,
                "instrument": {"assetType": "EQUITY", "symbol": "SPY"},
                "quantity": 1,
            }
            for i in ("SELL", "SELL_SHORT")
        ],
    }
    assert c.preview_order(HASH, reversal).status_code == 200
    assert recorded(fake) == ([], [])


def test_futures_and_malformed_orders_are_refused_with_400(fake, connect) -> None:
    c = connect(fake)
    future = {
        "orderType": "MARKET",
        "session": "NORMAL",
        "duration": "DAY",
        "orderStrategyType": "SINGLE",
        "orderLegCollection": [
            {
                "instruction": "BUY",
                "instrument": {"assetType": "FUTURE", "symbol": "/ESZ6"},
                "quantity": 1,
            }
        ],
    }
    refused = c.place_order(HASH, future)
    assert refused.status_code == 400
    assert "FUTURE orders are not supported" in refused.json()["message"]
    with pytest.raises(UnsuccessfulOrderException):
        Utils(c, HASH).extract_order_id(refused)
    assert c.place_order(HASH, equity_buy_limit("NOPE", 1, "1.00")).status_code == 400
    net_single = equity_buy_limit("SPY", 1, "1.00").set_order_type(OrderType.NET_DEBIT)
    assert c.place_order(HASH, net_single).status_code == 400
    stock_as_option = (
        OrderBuilder()
        .set_order_type(OrderType.MARKET)
        .set_order_strategy_type(OrderStrategyType.SINGLE)
        .add_option_leg(OptionInstruction.BUY_TO_OPEN, "SPY", 1)
    )
    assert c.place_order(HASH, stock_as_option).status_code == 400
    option_words = equity_buy_market("SPY", 1).build()
    option_words["orderLegCollection"][0]["instruction"] = "BUY_TO_OPEN"
    assert c.place_order(HASH, option_words).status_code == 400
    assert recorded(fake) == ([], [])


def _condor_symbols(fake: FakeSchwabServer) -> list[str]:
    expiry = dt.date(2026, 12, 18)
    strikes = [(5850, "P"), (5875, "P"), (5925, "C"), (5950, "C")]
    symbols = [f"SPXW  {expiry:%y%m%d}{kind}{strike * 1000:08d}" for strike, kind in strikes]
    control(
        fake,
        "instruments",
        [
            {
                "symbol": symbol,
                "instrument_type": "Equity Option",
                "tick": "0.05",
                "multiplier": 100,
                "underlying": "SPX",
                "root": "SPXW",
                "expiration": expiry.isoformat(),
                "strike": str(strike),
                "option_type": kind,
            }
            for symbol, (strike, kind) in zip(symbols, strikes, strict=True)
        ],
    )
    return symbols


def test_vertical_and_iron_condor_fill_all_legs_at_their_net_price(fake, connect) -> None:
    c = connect(fake)
    symbols = _condor_symbols(fake)
    vertical = place(c, bull_call_vertical_open(symbols[2], symbols[3], 1, "1.00"))
    condor = (
        OrderBuilder()
        .set_order_type(OrderType.NET_CREDIT)
        .set_complex_order_strategy_type(ComplexOrderStrategyType.IRON_CONDOR)
        .set_order_strategy_type(OrderStrategyType.SINGLE)
        .set_quantity(1)
        .set_price("1.10")
        .add_option_leg(OptionInstruction.BUY_TO_OPEN, symbols[0], 1)
        .add_option_leg(OptionInstruction.SELL_TO_OPEN, symbols[1], 1)
        .add_option_leg(OptionInstruction.SELL_TO_OPEN, symbols[2], 1)
        .add_option_leg(OptionInstruction.BUY_TO_OPEN, symbols[3], 1)
    )
    condor_id = place(c, condor)

    def quote_all(mids: tuple[str, ...], ts: int) -> None:
        for symbol, mid in zip(symbols, mids, strict=True):
            m = Decimal(mid)
            quote(fake, symbol, str(m - Decimal("0.05")), str(m + Decimal("0.05")), ts)

    # Sells at the bid, buys at the ask: credit 1.95 * 2 - 1.45 * 2 = 1.00 < 1.10; vertical's
    # debit 2.05 - 1.35 = 0.70 <= 1.00.
    quote_all(("1.40", "2.00", "2.00", "1.40"), ts=1_000)
    assert (status_of(c, vertical), status_of(c, condor_id)) == ("FILLED", "WORKING")
    quote(fake, symbols[3], "1.15", "1.25", ts=2_000)  # 3.90 - 1.45 - 1.25 = 1.20
    order = c.get_order(condor_id, HASH).json()
    assert (order["status"], order["complexOrderStrategyType"]) == ("FILLED", "IRON_CONDOR")
    [execution] = order["orderActivityCollection"]
    assert (execution["quantity"], execution["orderRemainingQuantity"]) == (1, 0)
    prices = [(leg["legId"], leg["price"]) for leg in execution["executionLegs"]]
    assert prices == [(1, 1.45), (2, 1.95), (3, 1.95), (4, 1.25)]
    account = c.get_account(HASH, fields=[c.Account.Fields.POSITIONS]).json()
    held = {
        (
            p["instrument"]["symbol"],
            p["instrument"]["putCall"],
            p["longQuantity"],
            p["shortQuantity"],
        )
        for p in account["securitiesAccount"]["positions"]
    }
    assert held == {(symbols[0], "PUT", 1, 0), (symbols[1], "PUT", 0, 1)}  # the calls netted out
    bad_shape = bull_call_vertical_open(symbols[2], symbols[3], 1, "1.00")
    bad_shape.set_complex_order_strategy_type(ComplexOrderStrategyType.IRON_CONDOR)
    assert c.place_order(HASH, bad_shape).status_code == 400


def test_a_restarted_fake_keeps_its_record_and_fills_working_orders(
    tmp_path: Path, connect
) -> None:
    with FakeSchwabServer(tmp_path) as first:
        quote(first, "SPY", "600", "600.02", ts=5_000)
        stop = equity_sell_short_market("SPY", 3).set_order_type(OrderType.STOP)
        stop.set_stop_price("590.00")
        order_id = place(connect(first), stop)
    with FakeSchwabServer(tmp_path) as second:
        c = connect(second)
        assert status_of(c, order_id) == "WORKING"
        quote(second, "SPY", "589.99", "590.01", ts=6_000)
        order = c.get_order(order_id, HASH).json()
    assert order["status"] == "FILLED"
    assert order["orderActivityCollection"][0]["executionLegs"][0]["price"] == 589.99


# --- the streamer


class Activity:
    """A `StreamClient` logged in and subscribed to ACCT_ACTIVITY, collecting its messages."""

    def __init__(self, c: Any) -> None:
        self.stream = StreamClient(c)
        self.raw: list[dict[str, Any]] = []

    async def __aenter__(self) -> "Activity":
        await self.stream.login()
        self.stream.add_account_activity_handler(self.raw.append)
        await self.stream.account_activity_sub()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.stream.logout()

    @property
    def messages(self) -> list[tuple[int, str, dict[str, Any] | None]]:
        return [
            (
                e["seq"],
                e["MESSAGE_TYPE"],
                json.loads(e["MESSAGE_DATA"]) if e["MESSAGE_DATA"] else None,
            )
            for m in self.raw
            for e in m["content"]
        ]

    async def until(self, done: Callable[[list[str]], bool]) -> list[str]:
        while not done(kinds := [kind for _, kind, _ in self.messages]):
            await asyncio.wait_for(self.stream.handle_message(), WAIT_S)
        return kinds


def test_a_fill_arrives_as_account_activity_and_positions_follow(fake, connect) -> None:
    async def scenario() -> None:
        c = connect(fake, asyncio=True)
        async with Activity(c) as activity:
            response = await c.place_order(HASH, equity_buy_market("SPY", 10))
            order_id = Utils(c, HASH).extract_order_id(response)
            quote(fake, "SPY", "600.10", "600.12", ts=1_000)
            kinds = await activity.until(lambda k: "OrderFillCompleted" in k)
            assert kinds == ["SUBSCRIBED", "OrderCreated", "OrderAccepted", "OrderFillCompleted"]
            data = activity.messages[-1][2]
            assert data is not None
            assert (data["SchwabOrderID"], data["AccountNumber"]) == (
                str(order_id),
                DEFAULT_ACCOUNT,
            )
            assert data["BaseEvent"]["EventType"] == "OrderFillCompletedEvent"
            assert [seq for seq, _, _ in activity.messages] == [0, 1, 2, 3]
            order = (await c.get_order(order_id, HASH)).json()
            assert order["orderActivityCollection"][0]["executionLegs"][0]["price"] == 600.12
            account = await c.get_account(HASH, fields=[c.Account.Fields.POSITIONS])
            [position] = account.json()["securitiesAccount"]["positions"]
            assert (position["instrument"]["symbol"], position["longQuantity"]) == ("SPY", 10)
            assert (position["shortQuantity"], position["averagePrice"]) == (0, 600.12)
            assert position["marketValue"] == 6001.1  # at the quote's mid, 600.11
        await c.close_async_session()

    asyncio.run(scenario())
    orders, fills = recorded(fake)
    assert [(o.status.value, f.price) for o, f in zip(orders, fills, strict=True)] == [
        ("FILLED", 600_120_000_000)
    ]


def test_a_streamer_login_with_a_bad_token_is_denied_and_closed(fake, connect) -> None:
    login = {
        "requests": [
            {
                "service": "ADMIN",
                "requestid": "0",
                "command": "LOGIN",
                "parameters": {"Authorization": "not-a-token"},
            }
        ]
    }

    async def scenario() -> tuple[dict[str, Any], WSMsgType]:
        async with ClientSession() as http, http.ws_connect(f"{fake.url}/ws") as ws:
            await ws.send_json(login)
            answer = await ws.receive_json(timeout=WAIT_S)
            closed = await ws.receive(timeout=WAIT_S)
            return answer, closed.type

    answer, closed = asyncio.run(scenario())
    content = answer["response"][0]["content"]
    assert (content["code"], closed) == (3, WSMsgType.CLOSE)
    assert "not-a-token" not in json.dumps(answer)


# --- faults, each seen through the SDK


def test_rate_limit_refuses_and_records_nothing(fake, connect) -> None:
    control(fake, "faults", {"rate_limit": 1})
    c = connect(fake)
    limited = c.place_order(HASH, equity_buy_limit("AAPL", 1, "100.00"))
    assert limited.status_code == 429
    with pytest.raises(UnsuccessfulOrderException):
        Utils(c, HASH).extract_order_id(limited)
    assert recent(c) == []
    placed = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    assert [o.id for o in recorded(fake)[0]] == [placed]
    assert fired(fake)["rate_limit"] == 1


def test_server_error_after_accepting_leaves_the_order_at_the_venue(fake, connect) -> None:
    control(fake, "faults", {"server_error_after_accept": 1, "server_error_status": 503})
    c = connect(fake)
    failed = c.place_order(HASH, equity_buy_limit("AAPL", 1, "100.00"))
    assert failed.status_code == 503
    assert "Location" not in failed.headers
    assert [
        (o["status"], o["orderLegCollection"][0]["instrument"]["symbol"]) for o in recent(c)
    ] == [("WORKING", "AAPL")]


def test_timeout_after_accepting_leaves_the_order_at_the_venue(fake, connect) -> None:
    control(fake, "faults", {"timeout_after_accept": 1, "timeout_hold_s": 3})
    c = connect(fake)
    c.set_timeout(0.5)
    with pytest.raises(httpx2.TimeoutException):
        c.place_order(HASH, equity_buy_limit("AAPL", 1, "100.00"))
    c.set_timeout(30.0)
    assert [o["status"] for o in recent(c)] == ["WORKING"]
    assert fired(fake)["timeout_after_accept"] == 1


def test_an_access_token_expiring_mid_submit_gets_401_until_refreshed(fake, connect) -> None:
    control(fake, "faults", {"token_expiry_mid_submit": 1})
    written: list[dict[str, Any]] = []
    c = connect(fake, written=written)
    order_id = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    assert c.get_order(order_id, HASH).status_code == 401
    assert c.get_order(order_id, HASH).status_code == 401  # authlib does not refresh on a 401
    c.session.refresh_token(TOKEN_ENDPOINT)
    assert c.get_order(order_id, HASH).status_code == 200
    assert len(written) == 1


def test_a_refused_refresh_raises_oauth_error_once(fake, connect) -> None:
    control(fake, "faults", {"refuse_refresh": 1})
    c = connect(fake, fake.token_file(access_expired=True))
    with pytest.raises(OAuthError, match="invalid_client: refresh token invalid"):
        c.get_account_numbers()
    assert c.get_account_numbers().status_code == 200
    assert fired(fake)["refuse_refresh"] == 1


def test_a_refresh_token_older_than_seven_days_is_refused(fake, connect) -> None:
    fresh = connect(fake, fake.token_file(age_s=7 * DAY_S - 600, access_expired=True))
    assert fresh.get_account_numbers().status_code == 200
    old = connect(fake, fake.token_file(age_s=7 * DAY_S + 60, access_expired=True))
    assert old.token_age() > 7 * DAY_S
    for _ in range(2):
        with pytest.raises(OAuthError, match="invalid_client: refresh token invalid"):
            old.get_account_numbers()
    assert fired(fake)["refresh_expired"] == 2


def test_the_expired_refresh_fault_kills_the_refresh_token_for_good(fake, connect) -> None:
    control(fake, "faults", {"refresh_expired": 1})
    c = connect(fake, fake.token_file(access_expired=True))
    for _ in range(2):
        with pytest.raises(OAuthError, match="invalid_client: refresh token invalid"):
            c.get_account_numbers()
    assert (
        connect(fake, fake.token_file(access_expired=True)).get_account_numbers().status_code == 200
    )
    assert fired(fake)["refresh_expired"] == 2


def test_a_dropped_stream_loses_messages_that_rest_still_shows(fake, connect) -> None:
    async def scenario() -> None:
        c = connect(fake, asyncio=True)
        activity = await Activity(c).__aenter__()
        control(fake, "faults", {"drop_stream": 1})
        order_id = Utils(c, HASH).extract_order_id(
            await c.place_order(HASH, equity_buy_limit("AAPL", 1, "100.00"))
        )
        with pytest.raises(ConnectionClosed):
            await activity.until(lambda _: False)
        assert "OrderCreated" not in [kind for _, kind, _ in activity.messages]
        assert (await c.get_order(order_id, HASH)).json()["status"] == "WORKING"
        await c.close_async_session()

    asyncio.run(scenario())
    assert fired(fake)["drop_stream"] == 1


def test_duplicated_and_reordered_activity_messages(fake, connect) -> None:
    quote(fake, "SPY", "600", "600.02", ts=1_000)

    async def kinds(armed: dict[str, int], count: int) -> list[tuple[int, str]]:
        c = connect(fake, asyncio=True)
        async with Activity(c) as activity:
            control(fake, "faults", armed)
            await c.place_order(HASH, equity_buy_market("SPY", 1))
            await activity.until(lambda k: len(k) >= count)
            seen = [(seq, kind) for seq, kind, _ in activity.messages[1:]]
        await c.close_async_session()
        return seen

    duplicated = asyncio.run(kinds({"duplicate_fills": 1}, 5))
    assert [k for _, k in duplicated] == [
        "OrderCreated",
        "OrderAccepted",
        "OrderFillCompleted",
        "OrderFillCompleted",
    ]
    assert duplicated[2][0] == duplicated[3][0]  # a duplicate repeats its seq
    reordered = asyncio.run(kinds({"reorder_fills": 1}, 4))
    assert [k for _, k in reordered] == ["OrderAccepted", "OrderFillCompleted", "OrderCreated"]
    assert reordered[2][0] < reordered[1][0]
    assert (fired(fake)["duplicate_fills"], fired(fake)["reorder_fills"]) == (1, 1)


def test_order_lists_show_an_accepted_order_only_after_the_lag(fake, connect) -> None:
    control(fake, "faults", {"list_lag_s": 1.5})
    c = connect(fake)
    started = time.monotonic()
    order_id = place(c, equity_buy_limit("AAPL", 1, "100.00"))
    assert recent(c) == []
    assert c.get_order(order_id, HASH).status_code == 200
    poll_until(lambda: recent(c) or None, timeout_s=WAIT_S, interval_s=0.1, what="the lagged order")
    assert time.monotonic() - started >= 1.5
    assert fired(fake)["list_lag"] == 1


# --- market data and instruments from Kafka


def test_instruments_and_fills_come_from_md_topics(
    settings: Settings, tmp_path: Path, connect
) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure(catalogue(settings.topics))
    definition = dbn.encode_records(
        DEFINITION,
        [
            {
                "ts_event": 1_000,
                "ts_recv": 1_000,
                "instrument_id": 1001,
                "raw_symbol": "SYN001",
                "instrument_class": "K",
                "min_price_increment": SCALE // 100,
                "security_update_action": "A",
            }
        ],
    )
    book = dbn.encode_records(
        MBP_1,
        [
            {
                "ts_event": 2_000,
                "ts_recv": 2_000,
                "instrument_id": 1001,
                "bid_px_00": 41 * SCALE,
                "ask_px_00": 42 * SCALE,
            }
        ],
    )
    producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
    producer.produce(
        resolve(settings.topics, "md.definition"),
        key=b"SYN001",
        value=wire.encode(MarketFrame("SYN001", definition)),
    )
    assert producer.flush(10) == 0
    config = kafka.client_config(settings.kafka, bootstrap) | {"group.id": "fake-schwab-test"}
    topics = [resolve(settings.topics, "md.definition"), resolve(settings.topics, "md.mbp-1")]
    with FakeSchwabServer(tmp_path, kafka=(config, topics)) as server:
        poll_until(
            lambda: server.call(lambda f: f.venue.catalogue.get("SYN001")), timeout_s=30, what="def"
        )
        c = connect(server)
        order_id = place(c, equity_buy_market("SYN001", 7))
        producer.produce(
            resolve(settings.topics, "md.mbp-1"),
            key=b"SYN001",
            value=wire.encode(MarketFrame("SYN001", book)),
        )
        assert producer.flush(10) == 0
        poll_until(
            lambda: status_of(c, order_id) == "FILLED",
            timeout_s=30,
            interval_s=0.1,
            what="a fill from md.mbp-1",
        )
        assert [f.price for f in recorded(server)[1]] == [42 * SCALE]


# --- the command line


@pytest.mark.e2e
def test_cli_serves_and_prints_its_record(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TICKLANE_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(tmp_path / "data")
    record_dir = tmp_path / "record"
    command = [TICKLANE, "fake", "schwab", "--port", "0", "--data-dir", str(record_dir)]
    with subprocess.Popen(
        [*command, "--no-kafka"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), (
                server.stderr.read() if server.stderr else ""
            )
            token = httpx2.post(f"{url}/__fake/tokens", json={}).json()
            c = sdk_client(url, token, lambda _: None)
            order_id = Utils(c, HASH).extract_order_id(
                c.place_order(HASH, equity_buy_market("AAPL", 3))
            )
            c.session.close()
            tick = {"ts_event": 9, "bid": 200 * SCALE, "ask": 201 * SCALE}
            httpx2.post(f"{url}/__fake/ticks", json={"symbol": "AAPL", "ticks": [tick]})
            orders, fills = (
                subprocess.run(
                    [TICKLANE, "fake", "schwab", what, "--json", "--data-dir", str(record_dir)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                for what in ("orders", "fills")
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    assert orders.returncode == 0, orders.stderr
    [order] = [json.loads(line) for line in orders.stdout.splitlines()]
    assert order["venue_order_id"] == str(order_id)
    assert "client_order_id" not in order  # a Schwab order carries none
    assert (order["symbol"], order["side"], order["quantity"], order["type"]) == (
        "AAPL",
        "buy",
        3,
        "market",
    )
    assert (order["status"], order["account_hash"]) == ("filled", HASH)
    [fill] = [json.loads(line) for line in fills.stdout.splitlines()]
    assert (fill["venue_order_id"], fill["price"], fill["ts"]) == (str(order_id), 201 * SCALE, 9)
    assert server.returncode == 0
