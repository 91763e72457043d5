"""The fake TastyTrade server, driven through the real `tastytrade` SDK (never patched).

The SDK reaches the fake only through its public transport argument (`RewritingTransport`),
for REST and the account streamer alike. Waiting is done with deadlines: `poll_until`, or
`asyncio.wait_for` on the next streamer message.
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
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from confluent_kafka import Producer
from tastytrade import Account, AlertStreamer, Session
from tastytrade.instruments import Equity, Future, NestedOptionChain, Option, get_option_chain
from tastytrade.order import (
    InstrumentType,
    Leg,
    LimitOrder,
    MarketOrder,
    OrderAction,
    OrderStatus,
    PlacedOrder,
    StopOrder,
)
from tastytrade.utils import TastytradeError

from executors.brokers.transport import RewritingTransport
from fakes.tastytrade.background import FakeTastytradeServer
from fakes.tastytrade.instruments import quarterly_month
from fakes.tastytrade.record import Record
from fakes.tastytrade.server import DEFAULT_ACCOUNT, FakeConfig
from tests.conftest import poll_until
from ticklane import dbn, kafka, wire
from ticklane.market import MarketFrame
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue, resolve

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SCALE = 1_000_000_000
WAIT_S = 10.0

pytestmark = [
    pytest.mark.integration,
    # The SDK posts its JSON as `data=`, which httpx2 deprecates; not ours to change.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]
MBP_1 = 0x01
DEFINITION = 0x13


@pytest.fixture(autouse=True)
def no_leaked_servers():
    """Every fake started by a test is stopped, its thread joined."""
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("fake-tastytrade")]
    assert not leaked, f"server threads still running: {leaked}"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeTastytradeServer]:
    with FakeTastytradeServer(tmp_path / "fake") as server:
        yield server


def session(fake: FakeTastytradeServer, **client_kwargs: Any) -> Session:
    return Session("any-secret", "any-refresh", transport=fake.transport(), **client_kwargs)


def control(fake: FakeTastytradeServer, path: str, body: object) -> Any:
    response = httpx2.post(f"{fake.url}/__fake/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def faults(fake: FakeTastytradeServer) -> Any:
    return httpx2.get(f"{fake.url}/__fake/faults").json()


def quote(fake: FakeTastytradeServer, symbol: str, bid: str, ask: str, ts: int) -> None:
    tick = {"ts_event": ts, "bid": int(Decimal(bid) * SCALE), "ask": int(Decimal(ask) * SCALE)}
    control(fake, "ticks", {"symbol": symbol, "ticks": [tick]})


def record_of(fake: FakeTastytradeServer) -> Record:
    return Record(fake.data_dir, read_only=True)


def equity_leg(symbol: str, action: OrderAction, quantity: int) -> Leg:
    return Leg(
        instrument_type=InstrumentType.EQUITY, symbol=symbol, action=action, quantity=quantity
    )


def buy(symbol: str = "SPY", quantity: int = 10, external_id: str | None = None) -> MarketOrder:
    leg = equity_leg(symbol, OrderAction.BUY_TO_OPEN, quantity)
    return MarketOrder(legs=[leg], external_identifier=external_id)


async def next_order(orders: AsyncIterator[PlacedOrder]) -> PlacedOrder:
    return await asyncio.wait_for(anext(orders), WAIT_S)


async def account_of(s: Session) -> Account:
    return await Account.get(s, DEFAULT_ACCOUNT)


# --- auth, accounts, instruments


def test_refresh_issues_tokens_and_accounts_parse(tmp_path: Path) -> None:
    # A 60 s token is "about to expire" for the SDK (it renews 60 s early): every call renews.
    config = FakeConfig(token_lifetime_s=60)

    async def scenario(fake: FakeTastytradeServer) -> None:
        async with session(fake) as s:
            await s.refresh()
            assert s.session_token != "kyrieeleison"  # noqa: S105 - the SDK's placeholder
            accounts = await Account.get(s)
            assert [a.account_number for a in accounts] == [DEFAULT_ACCOUNT]
            one = await account_of(s)
            assert one.is_futures_approved
            assert (await one.get_balances(s)).cash_balance == Decimal(1_000_000)

    with FakeTastytradeServer(tmp_path, config) as fake:
        asyncio.run(scenario(fake))
        assert fake.call(lambda f: f.tokens.issued) >= 4


def test_calls_without_a_valid_token_or_user_agent_get_tastytrades_401s(fake) -> None:
    missing = httpx2.get(f"{fake.url}/customers/me/accounts")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    forged = httpx2.get(
        f"{fake.url}/customers/me/accounts", headers={"Authorization": "Bearer forged"}
    )
    assert forged.status_code == 401
    assert "forged" not in forged.text  # tokens are never echoed
    no_agent = httpx2.get(f"{fake.url}/customers/me/accounts", headers={"User-Agent": "x"})
    assert no_agent.status_code == 401
    assert no_agent.headers["Content-Type"].startswith("text/html")


def test_instruments_and_chains_parse_into_the_sdks_models(fake) -> None:
    code, _ = quarterly_month(dt.datetime.now(tz=dt.UTC).date())

    async def scenario() -> None:
        async with session(fake) as s:
            spy = await Equity.get(s, "SPY")
            assert spy.symbol == "SPY"
            assert not spy.is_index
            es = await Future.get(s, f"/ES{code}")
            assert (es.symbol, es.notional_multiplier, es.tick_size) == (
                f"/ES{code}",
                Decimal(50),
                Decimal("0.25"),
            )
            assert [f.symbol for f in await Future.get(s, product_codes=["ES"])] == [es.symbol]
            chains = await NestedOptionChain.get(s, "SPX")
            assert [c.root_symbol for c in chains] == ["SPXW"]
            zero_dte = chains[0].expirations[0]
            strike = zero_dte.strikes[0]
            assert strike.call.startswith("SPXW  ")
            assert strike.call_streamer_symbol.startswith(".SPXW")
            option = await Option.get(s, strike.call)
            assert option.days_to_expiration == zero_dte.days_to_expiration
            assert option.streamer_symbol == strike.call_streamer_symbol
            flat = await get_option_chain(s, "SPY")
            assert sum(len(v) for v in flat.values()) == 4

    asyncio.run(scenario())


# --- orders


def test_dry_run_answers_and_records_nothing(fake) -> None:
    async def scenario() -> None:
        async with session(fake) as s:
            answer = await (await account_of(s)).place_order(s, buy(), dry_run=True)
            assert answer.order.status is OrderStatus.RECEIVED
            assert answer.buying_power_effect is not None

    asyncio.run(scenario())
    record = record_of(fake)
    assert record.orders() == []
    record.close()


def test_market_order_fills_on_the_next_quote_and_streams_its_fill(fake) -> None:
    async def scenario() -> PlacedOrder:
        async with session(fake) as s, AlertStreamer(s) as streamer:
            account = await account_of(s)
            await streamer.subscribe_accounts([account])
            orders = streamer.listen(PlacedOrder)
            placed = await account.place_order(s, buy(external_id="intent-1"), dry_run=False)
            assert placed.order.status is OrderStatus.RECEIVED
            assert placed.order.external_identifier == "intent-1"
            statuses = [(await next_order(orders)).status for _ in range(2)]
            assert statuses == [OrderStatus.RECEIVED, OrderStatus.LIVE]
            live = await account.get_live_orders(s)
            assert [(o.id, o.status) for o in live] == [(placed.order.id, OrderStatus.LIVE)]

            quote(fake, "SPY", "600.10", "600.12", ts=1_000)
            filled = await next_order(orders)
            positions = await account.get_positions(s)
            assert [(p.symbol, p.quantity, p.quantity_direction) for p in positions] == [
                ("SPY", Decimal(10), "Long")
            ]
            assert positions[0].average_open_price == Decimal("600.12")
            balance = await account.get_balances(s)
            assert balance.cash_balance == Decimal(1_000_000) - Decimal("6001.2")
            return filled

    filled = asyncio.run(scenario())
    assert filled.status is OrderStatus.FILLED
    assert filled.external_identifier == "intent-1"
    fills = filled.legs[0].fills or []
    assert [(f.quantity, f.fill_price) for f in fills] == [(Decimal(10), Decimal("600.12"))]
    assert filled.average_fill_price() == Decimal("600.12")
    record = record_of(fake)
    [order] = record.orders()
    assert (order.id, order.external_identifier, order.status.value) == (
        filled.id,
        "intent-1",
        "Filled",
    )
    assert [(f.fill_id, f.price) for f in record.fills()] == [(fills[0].fill_id, 600_120_000_000)]
    record.close()


def test_futures_limit_order_rests_until_the_market_reaches_it(fake) -> None:
    code, _ = quarterly_month(dt.datetime.now(tz=dt.UTC).date())
    symbol = f"/ES{code}"
    quote(fake, symbol, "5899.75", "5900.25", ts=1_000)  # md symbol or venue symbol: both work
    leg = Leg(
        instrument_type=InstrumentType.FUTURE, symbol=symbol, action=OrderAction.BUY, quantity=2
    )

    async def scenario() -> PlacedOrder:
        async with session(fake) as s:
            account = await account_of(s)
            placed = await account.place_order(
                s, LimitOrder(legs=[leg], price=Decimal("-5899.50")), dry_run=False
            )
            assert (await account.get_order(s, placed.order.id)).status is OrderStatus.LIVE
            quote(fake, f"ES{code}", "5899.00", "5899.25", ts=2_000)
            order = await account.get_order(s, placed.order.id)
            positions = await account.get_positions(s)
            assert [(p.symbol, p.quantity, p.multiplier) for p in positions] == [
                (symbol, Decimal(2), Decimal(50))
            ]
            return order

    order = asyncio.run(scenario())
    assert order.status is OrderStatus.FILLED
    assert [f.fill_price for f in order.legs[0].fills or []] == [Decimal("5899.25")]


def test_cancel_and_replace(fake) -> None:
    leg = equity_leg("AAPL", OrderAction.BUY_TO_OPEN, 5)

    async def scenario() -> None:
        async with session(fake) as s:
            account = await account_of(s)
            first = await account.place_order(
                s,
                LimitOrder(legs=[leg], price=Decimal("-100"), external_identifier="a"),
                dry_run=False,
            )
            replaced = await account.replace_order(
                s, first.order.id, LimitOrder(legs=[], price=Decimal("-101.5"))
            )
            assert replaced.id != first.order.id
            assert replaced.replaces_order_id == first.order.id
            assert replaced.price == Decimal("-101.5")
            assert replaced.legs[0].symbol == "AAPL"
            old = await account.get_order(s, first.order.id)
            assert (old.status, old.replacing_order_id) == (OrderStatus.CANCELLED, replaced.id)

            await account.delete_order(s, replaced.id)
            assert (await account.get_order(s, replaced.id)).status is OrderStatus.CANCELLED
            with pytest.raises(TastytradeError, match="invalid_order_state"):
                await account.delete_order(s, replaced.id)
            history = await account.get_order_history(s, statuses=[OrderStatus.CANCELLED])
            assert sorted(o.id for o in history) == [first.order.id, replaced.id]

    asyncio.run(scenario())


def test_a_rejection_after_the_201_reaches_rest_and_the_stream(fake) -> None:
    async def scenario() -> tuple[PlacedOrder, PlacedOrder]:
        async with session(fake) as s, AlertStreamer(s) as streamer:
            account = await account_of(s)
            await streamer.subscribe_accounts([account])
            orders = streamer.listen(PlacedOrder)
            placed = await account.place_order(s, buy(external_id="r"), dry_run=False)
            control(fake, f"orders/{placed.order.id}/reject", {})
            seen = [await next_order(orders) for _ in range(3)]
            return seen[-1], await account.get_order(s, placed.order.id)

    streamed, fetched = asyncio.run(scenario())
    for order in (streamed, fetched):
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason
        assert order.external_identifier == "r"


def test_orders_the_fake_does_not_take_are_refused_with_tastytrades_envelope(fake) -> None:
    async def scenario() -> None:
        async with session(fake) as s:
            account = await account_of(s)
            with pytest.raises(TastytradeError, match="invalid_symbol"):
                await account.place_order(s, buy("NOPE"), dry_run=False)
            futures_action = MarketOrder(legs=[equity_leg("SPY", OrderAction.BUY, 1)])
            with pytest.raises(TastytradeError, match="for outright futures only"):
                await account.place_order(s, futures_action, dry_run=False)
            with pytest.raises(TastytradeError, match="not_permitted"):
                await Account.get(s, "5WT99999")

    asyncio.run(scenario())
    record = record_of(fake)
    assert record.orders() == []
    record.close()


def test_iron_condor_fills_when_the_net_credit_reaches_its_limit(fake) -> None:
    expiry = dt.date(2026, 12, 18)
    strikes = [(5850, "P", "Buy to Open"), (5875, "P", "Sell to Open")]
    strikes += [(5925, "C", "Sell to Open"), (5950, "C", "Buy to Open")]
    symbols = [f"SPXW  {expiry:%y%m%d}{kind}{strike * 1000:08d}" for strike, kind, _ in strikes]
    specs = [
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
        for symbol, (strike, kind, _) in zip(symbols, strikes, strict=True)
    ]
    control(fake, "instruments", specs)
    legs = [
        Leg(
            instrument_type=InstrumentType.EQUITY_OPTION,
            symbol=symbol,
            action=OrderAction(action),
            quantity=1,
        )
        for symbol, (_, _, action) in zip(symbols, strikes, strict=True)
    ]
    condor = LimitOrder(legs=legs, price=Decimal("1.10"), external_identifier="ic-1")

    def quote_all(mids: tuple[str, ...], ts: int) -> None:
        for symbol, mid in zip(symbols, mids, strict=True):
            m = Decimal(mid)
            quote(fake, symbol, str(m - Decimal("0.05")), str(m + Decimal("0.05")), ts)

    async def scenario() -> PlacedOrder:
        async with session(fake) as s:
            account = await account_of(s)
            placed = await account.place_order(s, condor, dry_run=False)
            # Sells fill at the bid, buys at the ask: a net credit of 1.95 * 2 - 1.45 * 2 = 1.00.
            quote_all(("1.40", "2.00", "2.00", "1.40"), ts=1_000)
            assert (await account.get_order(s, placed.order.id)).status is OrderStatus.LIVE
            quote(fake, symbols[3], "1.15", "1.25", ts=2_000)  # 3.90 - 1.45 - 1.25 = 1.20
            return await account.get_order(s, placed.order.id)

    order = asyncio.run(scenario())
    assert order.status is OrderStatus.FILLED
    prices = [f.fill_price for leg in order.legs for f in leg.fills or []]
    assert prices == [Decimal("1.45"), Decimal("1.95"), Decimal("1.95"), Decimal("1.25")]


def test_a_restarted_fake_keeps_its_record_and_fills_working_orders(tmp_path: Path) -> None:
    async def place(fake: FakeTastytradeServer) -> int:
        async with session(fake) as s:
            stop = StopOrder(
                legs=[equity_leg("SPY", OrderAction.SELL_TO_OPEN, 3)], stop_trigger=Decimal("590")
            )
            placed = await (await account_of(s)).place_order(s, stop, dry_run=False)
            return placed.order.id

    async def read(fake: FakeTastytradeServer, order_id: int) -> PlacedOrder:
        async with session(fake) as s:
            return await (await account_of(s)).get_order(s, order_id)

    with FakeTastytradeServer(tmp_path) as first:
        quote(first, "SPY", "600", "600.02", ts=5_000)
        order_id = asyncio.run(place(first))
    with FakeTastytradeServer(tmp_path) as second:
        assert asyncio.run(read(second, order_id)).status is OrderStatus.LIVE
        quote(second, "SPY", "589.99", "590.01", ts=6_000)
        order = asyncio.run(read(second, order_id))
    assert order.status is OrderStatus.FILLED
    assert [f.fill_price for f in order.legs[0].fills or []] == [Decimal("589.99")]


# --- faults


def test_rate_limit_refuses_and_records_nothing(fake) -> None:
    control(fake, "faults", {"rate_limit": 1})

    async def scenario() -> None:
        async with session(fake) as s:
            account = await account_of(s)
            with pytest.raises(TastytradeError, match="too_many_requests"):
                await account.place_order(s, buy(external_id="limited"), dry_run=False)
            assert await account.get_live_orders(s) == []
            await account.place_order(s, buy(external_id="next"), dry_run=False)

    asyncio.run(scenario())
    assert faults(fake)["fired"]["rate_limit"] == 1
    record = record_of(fake)
    assert [o.external_identifier for o in record.orders()] == ["next"]
    record.close()


def test_timeout_after_accepting_leaves_the_order_at_the_venue(fake) -> None:
    control(fake, "faults", {"timeout_after_accept": 1, "timeout_hold_s": 5})

    async def scenario() -> list[PlacedOrder]:
        async with session(fake, timeout=0.5) as s:
            account = await account_of(s)
            with pytest.raises(httpx2.TimeoutException):
                await account.place_order(s, buy(external_id="lost-answer"), dry_run=False)
            return await account.get_live_orders(s)

    live = asyncio.run(scenario())
    assert [o.external_identifier for o in live] == ["lost-answer"]
    assert faults(fake)["fired"]["timeout_after_accept"] == 1


def test_server_error_after_accepting_leaves_the_order_at_the_venue(fake) -> None:
    control(fake, "faults", {"server_error_after_accept": 1, "server_error_status": 502})

    async def scenario() -> list[PlacedOrder]:
        async with session(fake) as s:
            account = await account_of(s)
            with pytest.raises(TastytradeError, match="internal_server_error"):
                await account.place_order(s, buy(external_id="5xx"), dry_run=False)
            return await account.get_order_history(s)

    history = asyncio.run(scenario())
    assert [(o.external_identifier, o.status) for o in history] == [("5xx", OrderStatus.LIVE)]


def test_access_token_expiring_mid_submit_gives_the_next_call_one_401(fake) -> None:
    control(fake, "faults", {"token_expiry_mid_submit": 1})

    async def scenario() -> None:
        async with session(fake) as s:
            account = await account_of(s)
            placed = await account.place_order(s, buy(external_id="t"), dry_run=False)
            with pytest.raises(TastytradeError, match="unauthorized"):
                await account.get_order(s, placed.order.id)
            await s.refresh(force=True)
            assert (await account.get_order(s, placed.order.id)).external_identifier == "t"

    asyncio.run(scenario())


def test_refused_refresh_token(fake) -> None:
    control(fake, "faults", {"refuse_refresh": 1})

    async def scenario() -> None:
        async with session(fake) as s:
            with pytest.raises(TastytradeError, match="User is not a TastyTrade customer"):
                await Account.get(s)
            assert await Account.get(s)  # refused once, then renewed

    asyncio.run(scenario())


def test_dropped_stream_loses_notifications_that_rest_still_shows(fake) -> None:
    async def scenario() -> list[PlacedOrder]:
        async with session(fake) as s:
            account = await account_of(s)
            with pytest.raises(ExceptionGroup) as caught:  # noqa: PT012 - the drop ends the block
                async with AlertStreamer(s) as streamer:
                    await streamer.subscribe_accounts([account])
                    control(fake, "faults", {"drop_stream": 1})
                    await account.place_order(s, buy(external_id="unseen"), dry_run=False)
                    async for _ in streamer.listen(PlacedOrder):
                        pass
            assert "WebSocketDisconnect" in repr(caught.value)
            return await account.get_live_orders(s)

    live = asyncio.run(scenario())
    assert [o.external_identifier for o in live] == ["unseen"]
    assert faults(fake)["fired"]["drop_stream"] == 1


def test_duplicated_and_reordered_fill_notifications(fake) -> None:
    quote(fake, "SPY", "600", "600.02", ts=1_000)

    async def statuses(order_count: int, armed: dict[str, int]) -> list[tuple[int, str]]:
        async with session(fake) as s, AlertStreamer(s) as streamer:
            account = await account_of(s)
            await streamer.subscribe_accounts([account])
            orders = streamer.listen(PlacedOrder)
            control(fake, "faults", armed)
            await account.place_order(s, buy(), dry_run=False)
            seen = [await next_order(orders) for _ in range(order_count)]
            return [(o.id, o.status.value) for o in seen]

    duplicated = asyncio.run(statuses(4, {"duplicate_fills": 1}))
    assert [s for _, s in duplicated] == ["Received", "Live", "Filled", "Filled"]
    reordered = asyncio.run(statuses(3, {"reorder_fills": 1}))
    assert [s for _, s in reordered] == ["Live", "Filled", "Received"]
    fired = faults(fake)["fired"]
    assert (fired["duplicate_fills"], fired["reorder_fills"]) == (1, 1)


def test_order_lists_show_an_accepted_order_only_after_the_lag(fake) -> None:
    control(fake, "faults", {"list_lag_s": 1.5})

    async def place() -> int:
        async with session(fake) as s:
            account = await account_of(s)
            placed = await account.place_order(s, buy(external_id="late"), dry_run=False)
            assert await account.get_live_orders(s) == []
            assert await account.get_order_history(s) == []
            assert (await account.get_order(s, placed.order.id)).external_identifier == "late"
            return placed.order.id

    async def live_ids() -> list[int]:
        async with session(fake) as s:
            return [o.id for o in await (await account_of(s)).get_live_orders(s)]

    started = time.monotonic()
    order_id = asyncio.run(place())
    poll_until(lambda: order_id in asyncio.run(live_ids()), timeout_s=WAIT_S, interval_s=0.1)
    assert time.monotonic() - started >= 1.5
    assert faults(fake)["fired"]["list_lag"] == 1


# --- market data and instruments from Kafka


def test_instruments_and_fills_come_from_md_topics(settings: Settings, tmp_path: Path) -> None:
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
    config = kafka.client_config(settings.kafka, bootstrap) | {"group.id": "fake-tt-test"}
    topics = [resolve(settings.topics, "md.definition"), resolve(settings.topics, "md.mbp-1")]

    async def place(server: FakeTastytradeServer) -> int:
        async with session(server) as s:
            assert (await Equity.get(s, "SYN001")).symbol == "SYN001"
            placed = await (await account_of(s)).place_order(s, buy("SYN001", 7), dry_run=False)
            return placed.order.id

    async def status(server: FakeTastytradeServer, order_id: int) -> OrderStatus:
        async with session(server) as s:
            return (await (await account_of(s)).get_order(s, order_id)).status

    with FakeTastytradeServer(tmp_path, kafka=(config, topics)) as server:
        poll_until(
            lambda: server.call(lambda f: f.venue.catalogue.get("SYN001")), timeout_s=30, what="def"
        )
        order_id = asyncio.run(place(server))
        producer.produce(
            resolve(settings.topics, "md.mbp-1"),
            key=b"SYN001",
            value=wire.encode(MarketFrame("SYN001", book)),
        )
        assert producer.flush(10) == 0
        poll_until(
            lambda: asyncio.run(status(server, order_id)) is OrderStatus.FILLED,
            timeout_s=30,
            interval_s=0.1,
            what="a fill from md.mbp-1",
        )
        record = record_of(server)
        assert [f.price for f in record.fills()] == [42 * SCALE]
        record.close()


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
    server = subprocess.Popen(
        [
            TICKLANE,
            "fake",
            "tastytrade",
            "--port",
            "0",
            "--data-dir",
            str(record_dir),
            "--no-kafka",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), server.stderr.read() if server.stderr else ""
        port = int(url.rsplit(":", 1)[1])

        async def trade() -> None:
            s = Session(
                "secret", "refresh", transport=RewritingTransport(f"http://127.0.0.1:{port}")
            )
            async with s:
                account = await account_of(s)
                await account.place_order(s, buy("AAPL", 3, "cli-intent"), dry_run=False)

        asyncio.run(trade())
        httpx2.post(
            f"{url}/__fake/ticks",
            json={
                "symbol": "AAPL",
                "ticks": [{"ts_event": 9, "bid": 200 * SCALE, "ask": 201 * SCALE}],
            },
        )
        orders = subprocess.run(
            [TICKLANE, "fake", "tastytrade", "orders", "--json", "--data-dir", str(record_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        fills = subprocess.run(
            [TICKLANE, "fake", "tastytrade", "fills", "--json", "--data-dir", str(record_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert orders.returncode == 0, orders.stderr
    [order] = [json.loads(line) for line in orders.stdout.splitlines()]
    assert order["client_order_id"] == order["external_identifier"] == "cli-intent"
    assert (order["symbol"], order["side"], order["quantity"], order["type"]) == (
        "AAPL",
        "buy",
        3,
        "market",
    )
    assert order["status"] == "filled"
    [fill] = [json.loads(line) for line in fills.stdout.splitlines()]
    assert (fill["client_order_id"], fill["price"], fill["ts"]) == ("cli-intent", 201 * SCALE, 9)
    assert server.returncode == 0
