"""The executor at Schwab: engine, ledger and adapter, the real schwab-py, the local fake.

Each test runs the engine over a real SQLite ledger and `SchwabBroker`, whose real schwab-py
client (built from a token file, as `client_from_access_functions` builds one) reaches the
fake only through the adapter's `api_url` transport. Faults are armed at the fake; what it
recorded is the audit: no order twice, every signal answered by one order or a recorded
rejection, and the fake's positions equal to the ledger's.
"""

import logging
import time
from decimal import Decimal
from pathlib import Path

import httpx2
import msgspec
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from executors.brokers.base import AmbiguousAnswerError, BrokerError
from executors.brokers.factory import build_broker
from executors.brokers.schwab import config
from executors.brokers.schwab.client import SchwabBroker
from executors.engine import Engine, EngineConfig
from executors.pricing import OrderStyle
from executors.reconcile import reconcile
from executors.risk import RiskLimits
from executors.stores import open_sqlite
from fakes.schwab.background import FakeSchwabServer
from fakes.schwab.record import Record
from fakes.schwab.server import FakeConfig
from fakes.tastytrade.instruments import occ_symbol
from fakes.tastytrade.order_lists import new_york_date
from tests.conftest import poll_until
from tests.integration.executors.batches import settle_batch, strategies_buying
from ticklane.secrets import SecretError
from ticklane.settings import ExecutorSettings, SchwabSettings, Settings
from ticklane.trading import ComboLeg, Order, OrderStatus, OrderType, Side, Signal

pytestmark = [
    pytest.mark.integration,
    # schwab-py's streamer imports websockets.legacy, which warns; not ours to change.
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]

SCALE = 1_000_000_000
APP_KEY = "app-key-3c1d"
SECRET = "app-secret-9e4b-do-not-log"  # noqa: S105 - a test value to search logs for
LIMITS = RiskLimits(
    max_position=1_000,
    max_notional=10**20,
    max_orders_per_minute=10_000,
    daily_loss_limit=10**15,
)


class Desk:
    """Ledger, Schwab adapter and engine; `restart()` rebuilds both from their stores."""

    def __init__(self, root: Path, fake: FakeSchwabServer, **settings: object) -> None:
        self.root, self.fake = root, fake
        root.mkdir(parents=True, exist_ok=True)
        config.write_token_file(root / config.TOKEN_FILE_NAME, fake.token_file())
        self.settings = SchwabSettings(api_url=fake.url, timeout_s=1.0, **settings)
        self.config = EngineConfig(LIMITS, settle_ns=10 * SCALE)
        self.open()

    def open(self) -> None:
        self.ledger = open_sqlite(self.root / "ledger.sqlite")
        self.registry = CollectorRegistry()  # new with each adapter: its gauges register once
        self.broker = SchwabBroker(
            self.settings,
            config.AppCredentials(SecretStr(APP_KEY), SecretStr(SECRET)),
            self.root,
            registry=self.registry,
        )
        self.engine = Engine(self.ledger, self.broker, self.config)
        self.engine.load()
        reconcile(self.engine)

    def close(self) -> None:
        self.broker.close()
        self.ledger.close()

    def restart(self) -> None:
        self.close()
        self.open()

    def quote(self, symbol: str, bid: str, ask: str) -> None:
        tick = {
            "ts_event": time.time_ns(),
            "bid": int(Decimal(bid) * SCALE),
            "ask": int(Decimal(ask) * SCALE),
        }
        control(self.fake, "ticks", {"symbol": symbol, "ticks": [tick]})

    def position(self, symbol: str, strategy: str = "s1") -> int:
        held = {(h.position.strategy, h.position.symbol): h for h in self.engine.holdings()}
        holding = held.get((strategy, symbol))
        return holding.position.quantity if holding else 0

    def settle(self, symbol: str, quantity: int, what: str = "") -> None:
        """Take pushed updates until the ledger holds `quantity` of `symbol`."""

        def done() -> bool:
            self.engine.take_updates()
            self.engine.resolve_unknown()
            return self.position(symbol) == quantity

        poll_until(done, timeout_s=20, interval_s=0.05, what=what or f"{symbol} at {quantity}")

    def received(self) -> list:
        record = Record(self.fake.data_dir, read_only=True)
        try:
            return record.orders()
        finally:
            record.close()

    def audit(self) -> list:
        """The fake's record: each ledger order matched to its own venue order, positions equal."""
        received = self.received()
        venue_ids = [o.venue_order_id for o in self.ledger.all_orders() if o.venue_order_id]
        assert len(venue_ids) == len(set(venue_ids)), f"two orders matched one: {venue_ids}"
        assert sorted(venue_ids) == sorted(str(o.id) for o in received)
        assert self.broker.positions() == self.engine.positions_by_symbol()
        return received


def control(fake: FakeSchwabServer, path: str, body: object) -> object:
    response = httpx2.post(f"{fake.url}/__fake/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def fired(fake: FakeSchwabServer) -> dict[str, int]:
    return httpx2.get(f"{fake.url}/__fake/faults").json()["fired"]


def signal(symbol: str, target: int, n: int = 0, price: int = SCALE) -> Signal:
    return Signal.create("s1", symbol, 1_700_000_000 * SCALE + n, target, reference_price=price)


def order(cid: str, quantity: int = 5, **kwargs: object) -> Order:
    fields: dict[str, object] = {
        "signal_id": f"sig-{cid}",
        "strategy": "s1",
        "symbol": "SPY",
        "side": Side.BUY,
        "quantity": quantity,
        "order_type": OrderType.LIMIT,
        "status": OrderStatus.NEW,
        "ts_event": 0,
        "limit_price": 590 * SCALE,
    } | kwargs
    return Order(client_order_id=cid, **fields)  # type: ignore[arg-type]


@pytest.fixture
def fake(tmp_path: Path):
    with FakeSchwabServer(tmp_path / "fake", FakeConfig()) as server:
        yield server


@pytest.fixture
def desk(tmp_path: Path, fake):
    d = Desk(tmp_path / "desk", fake)
    yield d
    d.close()


# --- orders and fills


def test_a_market_order_is_placed_once_and_its_fill_is_pushed(desk, caplog):
    caplog.set_level(logging.WARNING)
    poll_until(lambda: desk.broker.stream_connected, timeout_s=10, what="the stream up")
    desk.engine.on_signal(signal("SPY", 10))
    desk.quote("SPY", "600.00", "600.02")
    desk.settle("SPY", 10)
    [placed] = desk.ledger.all_orders()
    assert placed.status is OrderStatus.FILLED
    [received] = desk.audit()
    assert str(received.id) == placed.venue_order_id
    [fill] = desk.ledger.fills()
    assert fill.price == 600_020_000_000  # the ask, as an integer at 1e-9
    assert fill.client_order_id == placed.client_order_id
    assert "activity down" not in caplog.text  # pushed by the stream, not a reconnect's catch-up


@pytest.mark.parametrize(
    ("kind", "extra", "sent"),
    [
        (OrderType.MARKET, {}, ("MARKET", None, None)),
        (OrderType.LIMIT, {"limit_price": 590_126_000_000}, ("LIMIT", 590_120_000_000, None)),
        (OrderType.STOP, {"stop_price": 700 * SCALE}, ("STOP", None, 700 * SCALE)),
    ],
    ids=["market", "limit", "stop"],
)
def test_each_order_kind_goes_out_at_the_tick(desk, kind, extra, sent):
    fields = {"limit_price": None} | extra
    answer = desk.broker.submit(order("ord-kind", order_type=kind, **fields))
    [received] = desk.received()
    assert str(received.id) == answer.venue_order_id
    assert (received.order_type.value, received.price, received.stop_price) == sent
    assert received.legs[0].instruction.value == "BUY"
    assert desk.broker.lookup("ord-kind").venue_order_id == answer.venue_order_id
    assert [o.venue_order_id for o in desk.broker.open_orders()] == [answer.venue_order_id]
    cancelled = desk.broker.cancel("ord-kind")
    assert cancelled is not None
    assert cancelled.status.value == "cancelled"


def test_instructions_follow_side_and_position_effect(desk):
    desk.engine.on_signal(signal("AAPL", 10))
    desk.quote("AAPL", "200.00", "200.05")
    desk.settle("AAPL", 10)
    desk.engine.on_signal(signal("AAPL", -10, n=1))  # a reversal: close, then open

    def both_filled() -> bool:
        desk.engine.take_updates()
        desk.quote("AAPL", "200.00", "200.05")
        return desk.position("AAPL") == -10

    poll_until(both_filled, timeout_s=20, interval_s=0.1, what="the reversal")
    received = desk.audit()
    assert [(o.legs[0].instruction.value, o.legs[0].quantity) for o in received] == [
        ("BUY", 10),
        ("SELL", 10),
        ("SELL_SHORT", 10),
    ]
    record = Record(desk.fake.data_dir, read_only=True)
    try:
        [close_fill] = record.fills(order_id=received[1].id)
    finally:
        record.close()
    assert received[2].entered_at >= close_fill.filled_at
    desk.engine.on_signal(signal("AAPL", 0, n=2))
    desk.quote("AAPL", "200.00", "200.05")
    desk.settle("AAPL", 0)
    assert desk.received()[-1].legs[0].instruction.value == "BUY_TO_COVER"


def test_a_future_is_refused_with_a_clear_reason(desk):
    desk.engine.on_signal(signal("ESZ6", 1))
    [refused] = desk.ledger.all_orders()
    assert refused.status is OrderStatus.REJECTED
    assert "Schwab cannot trade futures" in refused.reason
    assert desk.received() == []
    with pytest.raises(BrokerError, match="cannot trade futures"):
        SchwabBroker.check_symbols(["SPY", "ESZ6"])


def test_a_future_slipping_through_in_a_multi_leg_order_is_refused_unsent(desk):
    combo = order(
        "ord-combo",
        symbol="SPY-ES",
        limit_price=None,
        order_type=OrderType.MARKET,
        legs=(ComboLeg("SPY", 1), ComboLeg("ESZ6", -1)),
    )
    with pytest.raises(BrokerError, match=r"ESZ6: Schwab cannot trade futures.*not sent"):
        desk.broker.submit(combo)
    assert desk.broker.lookup("ord-combo") is None  # never claimed
    assert desk.received() == []


def test_the_factory_builds_schwab_from_the_environment_and_refuses_futures(
    tmp_path, fake, monkeypatch
):
    def settings(symbols: list[str]) -> Settings:
        schwab = SchwabSettings(api_url=fake.url, timeout_s=1.0)
        executor = ExecutorSettings(broker="schwab", schwab=schwab, symbols=symbols)
        return Settings(data_dir=tmp_path, executor=executor)

    monkeypatch.delenv("SCHWAB_APP_SECRET", raising=False)
    monkeypatch.delenv("SCHWAB_APP_SECRET_FILE", raising=False)
    monkeypatch.setenv("SCHWAB_APP_KEY", APP_KEY)
    with pytest.raises(SecretError, match="SCHWAB_APP_SECRET"):
        build_broker(settings(["SPY"]), "unused")
    monkeypatch.setenv("SCHWAB_APP_SECRET", SECRET)
    with pytest.raises(BrokerError, match="ticklane auth schwab"):
        build_broker(settings(["SPY"]), "unused")  # no token file yet
    config.write_token_file(tmp_path / config.TOKEN_FILE_NAME, fake.token_file())
    with pytest.raises(BrokerError, match=r"cannot trade futures.*ESZ6"):
        build_broker(settings(["SPY", "ESZ6"]), "unused")
    # Every symbol (no patterns), or a pattern a future matches, would route futures here.
    for routed in ([], ["*"], ["SPY", "ES*"], ["/ES*"]):
        with pytest.raises(BrokerError, match=r"cannot trade futures.*executor\.symbols"):
            build_broker(settings(routed), "unused")
    broker = build_broker(settings(["SPY"]), "unused")
    try:
        assert broker.name == "schwab"
        assert broker.positions() == {}
    finally:
        broker.close()


# --- multi-leg orders


def spy_option(right: str, strike: int) -> str:
    """One of the fake's built-in 0DTE SPY options."""
    return occ_symbol("SPY", new_york_date(time.time_ns()), right, strike * SCALE)


def combo(name: str, target: int, legs: dict[str, int], n: int = 0, price: int = SCALE) -> Signal:
    pairs = tuple(ComboLeg(symbol, ratio) for symbol, ratio in legs.items())
    ts = 1_700_000_000 * SCALE + n
    return Signal.create("s1", name, ts, target, reference_price=price, legs=pairs)


def test_a_vertical_opens_and_closes_as_one_order_named_vertical(desk):
    low, high = spy_option("C", 600), spy_option("C", 605)
    legs = {low: 1, high: -1}
    desk.engine.on_signal(combo("call vertical", 2, legs))
    desk.quote(low, "3.00", "3.10")
    desk.quote(high, "1.00", "1.05")
    desk.settle(low, 2)
    desk.settle(high, -2)
    [opened] = desk.ledger.all_orders()
    assert (opened.status, opened.filled_quantity) == (OrderStatus.FILLED, 2)
    assert opened.filled_notional // 2 == 2_100_000_000  # 3.10 paid, 1.00 received
    desk.engine.on_signal(combo("call vertical", 0, legs, n=1))
    desk.quote(low, "3.00", "3.10")
    desk.quote(high, "1.00", "1.05")
    desk.settle(low, 0)
    desk.settle(high, 0)
    received = desk.audit()
    assert [o.strategy.value for o in received] == ["VERTICAL", "VERTICAL"]
    words = [[(leg.instruction.value, leg.quantity) for leg in o.legs] for o in received]
    assert words == [
        [("BUY_TO_OPEN", 2), ("SELL_TO_OPEN", 2)],
        [("SELL_TO_CLOSE", 2), ("BUY_TO_CLOSE", 2)],
    ]


def test_an_iron_condor_for_a_credit_is_one_net_credit_order_at_the_tick(desk):
    desk.engine.config = msgspec.structs.replace(
        desk.engine.config, style=OrderStyle("marketable_limit", ticks_through=2)
    )
    wing_put, body_put = spy_option("P", 600), spy_option("P", 605)
    body_call, wing_call = spy_option("C", 600), spy_option("C", 605)
    legs = {wing_put: 1, body_put: -1, body_call: -1, wing_call: 1}
    desk.engine.on_signal(combo("condor", 1, legs, price=-4_900_000_000))
    for symbol, (bid, ask) in {
        wing_put: ("1.00", "1.05"),
        body_put: ("4.00", "4.10"),
        body_call: ("3.00", "3.10"),
        wing_call: ("1.00", "1.05"),
    }.items():
        desk.quote(symbol, bid, ask)
    desk.settle(wing_call, 1)
    [received] = desk.audit()
    assert (received.strategy.value, received.order_type.value) == ("IRON_CONDOR", "NET_CREDIT")
    # Two ticks through -4.90 for a buyer, at the dime of an option price over $3: a credit
    # of 4.70 or more.
    assert received.price == 4_700_000_000
    assert {symbol: desk.position(symbol) for symbol in legs} == legs


def test_two_identical_verticals_with_the_first_answer_lost_each_match_their_own(desk):
    low, high = spy_option("C", 600), spy_option("C", 605)
    control(desk.fake, "faults", {"timeout_after_accept": 1, "timeout_hold_s": 2})
    legs = (ComboLeg(low, 1), ComboLeg(high, -1))
    first_order = order("v-first", 1, symbol="vert", legs=legs, limit_price=2 * SCALE)
    with pytest.raises(AmbiguousAnswerError):
        desk.broker.submit(first_order)
    second = desk.broker.submit(
        order("v-second", 1, symbol="vert", legs=legs, limit_price=2 * SCALE)
    )
    first = desk.broker.lookup("v-first")
    assert first is not None
    [one, two] = desk.received()
    assert (first.venue_order_id, second.venue_order_id) == (str(one.id), str(two.id))


# --- idempotency without a client id


def test_two_identical_orders_with_the_first_answer_lost_each_match_their_own(desk):
    control(desk.fake, "faults", {"timeout_after_accept": 1, "timeout_hold_s": 2})
    with pytest.raises(AmbiguousAnswerError):
        desk.broker.submit(order("ord-first"))
    time.sleep(1.0)  # a second apart
    second = desk.broker.submit(order("ord-second"))
    first = desk.broker.lookup("ord-first")
    assert first is not None
    [one, two] = desk.received()
    assert (first.venue_order_id, second.venue_order_id) == (str(one.id), str(two.id))
    assert desk.broker.lookup("ord-second").venue_order_id == str(two.id)


def test_two_identical_lost_answers_are_matched_in_send_order(desk):
    control(desk.fake, "faults", {"timeout_after_accept": 2, "timeout_hold_s": 2})
    for cid in ("ord-a", "ord-b"):
        with pytest.raises(AmbiguousAnswerError):
            desk.broker.submit(order(cid))
    b = desk.broker.lookup("ord-b")  # looked up first, still the second order
    a = desk.broker.lookup("ord-a")
    [one, two] = desk.received()
    assert (a.venue_order_id, b.venue_order_id) == (str(one.id), str(two.id))


def test_a_lost_answer_while_the_order_list_lags_3s_sends_no_second_order(desk):
    armed = {"timeout_after_accept": 1, "timeout_hold_s": 2, "list_lag_s": 3, "drop_stream": 1}
    control(desk.fake, "faults", armed)
    desk.engine.on_signal(signal("SPY", 4))
    [placed] = desk.ledger.all_orders()
    assert placed.status is OrderStatus.UNKNOWN
    started = time.monotonic()

    def resolved() -> bool:
        desk.engine.resolve_unknown()
        return desk.ledger.order(placed.client_order_id).status is not OrderStatus.UNKNOWN

    poll_until(resolved, timeout_s=20, interval_s=0.25, what="the order found at the venue")
    assert time.monotonic() - started >= 1.5  # it stayed UNKNOWN while the lists lagged
    assert desk.ledger.send_state(placed.client_order_id).sends == 1
    desk.quote("SPY", "600.00", "600.02")
    desk.settle("SPY", 4)
    assert len(desk.audit()) == 1
    assert fired(desk.fake)["timeout_after_accept"] == 1


def test_order_requests_beyond_the_throttle_are_refused_unsent(tmp_path, fake):
    desk = Desk(tmp_path / "desk", fake, orders_per_minute=2)
    try:
        desk.broker.submit(order("ord-t1"))
        desk.broker.submit(order("ord-t2", quantity=6))
        with pytest.raises(BrokerError, match="throttled"):
            desk.broker.submit(order("ord-t3", quantity=7))
        assert len(desk.received()) == 2
        assert desk.broker.lookup("ord-t3") is None  # its claim was dropped: nothing sent
    finally:
        desk.close()


# --- a batch sent together


def test_a_batchs_different_orders_are_in_flight_together_and_identical_ones_in_turn(desk):
    # s1, s7 and s8 each buy 1 at market: one fingerprint, so one lane, sent in batch order
    # (a lost answer among them is matched by send order); the other five are one lane each.
    control(desk.fake, "faults", {"answer_delay_s": 0.5})
    targets = [1, 2, 3, 4, 5, 6, 1, 1]
    assert desk.engine.on_signals(strategies_buying("SPY", targets)) == 8
    by_strategy = {o.strategy: o for o in desk.ledger.all_orders()}
    assert {o.status for o in by_strategy.values()} == {OrderStatus.ACCEPTED}
    view = httpx2.get(f"{desk.fake.url}/__fake/faults").json()
    assert view["most_answers_held"] == 6
    same = [int(by_strategy[s].venue_order_id) for s in ("s1", "s7", "s8")]
    assert same == sorted(same)
    desk.quote("SPY", "600.00", "600.02")
    settle_batch(desk, "SPY", targets)
    assert len(desk.audit()) == 8


def test_identical_lost_answers_in_one_batch_are_matched_in_send_order(desk):
    control(desk.fake, "faults", {"timeout_after_accept": 2, "timeout_hold_s": 2})
    # One lane: the second is sent after the first's answer was lost, as `submit` would.
    answers = desk.broker.submit_all([order("ord-a"), order("ord-b")])
    assert [type(a) for a in answers] == [AmbiguousAnswerError, AmbiguousAnswerError]
    b = desk.broker.lookup("ord-b")  # looked up first, still the later send
    a = desk.broker.lookup("ord-a")
    [one, two] = desk.received()
    assert (a.venue_order_id, b.venue_order_id) == (str(one.id), str(two.id))


@pytest.mark.parametrize(
    "armed",
    [
        {"timeout_after_accept": 1, "timeout_hold_s": 2},
        {"server_error_after_accept": 1},
        {"token_expiry_mid_submit": 1},
        {"rate_limit": 1},
    ],
    ids=["lost-answer", "5xx-after-accept", "token-expiry", "429"],
)
def test_a_fault_on_one_order_of_a_batch_leaves_the_others_answered_and_none_sent_twice(
    desk, armed
):
    control(desk.fake, "faults", armed | {"answer_delay_s": 0.2})
    desk.engine.on_signals(strategies_buying("SPY", [1, 2, 3]))
    desk.quote("SPY", "600.00", "600.02")
    settle_batch(desk, "SPY", [1, 2, 3])
    assert len(desk.audit()) == 3 == len(desk.ledger.all_orders())
    assert all(
        desk.ledger.send_state(o.client_order_id).sends == 1 for o in desk.ledger.all_orders()
    )
    assert fired(desk.fake)[next(iter(armed))] == 1


# --- faults


@pytest.mark.parametrize(
    "armed",
    [
        {"rate_limit": 1},
        {"server_error_after_accept": 1, "server_error_status": 502},
        {"token_expiry_mid_submit": 1},
        {"duplicate_fills": 1, "reorder_fills": 1},
        {"drop_stream": 1},
    ],
    ids=["429", "5xx-after-accept", "token-expiry", "duplicate-reordered-activity", "dropped"],
)
@pytest.mark.parametrize(
    ("style", "kind"),
    [
        (OrderStyle(), "MARKET"),
        (OrderStyle("marketable_limit", ticks_through=2), "LIMIT"),
        (OrderStyle("limit"), "LIMIT"),
        (OrderStyle("stop"), "STOP"),
    ],
    ids=["market", "marketable-limit", "limit", "stop"],
)
def test_each_fault_and_order_kind_ends_in_one_order_per_signal_and_equal_positions(
    desk, armed, style, kind
):
    # Reference prices at the touch the next quote shows: a limit or a stop there trades.
    desk.engine.config = msgspec.structs.replace(desk.engine.config, style=style)
    control(desk.fake, "faults", armed)
    desk.engine.on_signal(signal("SPY", 3, price=600_020_000_000))
    desk.quote("SPY", "600.00", "600.02")
    desk.settle("SPY", 3)
    desk.engine.on_signal(signal("SPY", 1, n=1, price=601 * SCALE))
    desk.quote("SPY", "601.00", "601.02")
    desk.settle("SPY", 1)
    received = desk.audit()
    assert {o.order_type.value for o in received} == {kind}
    assert len(received) == 2 == len(desk.ledger.all_orders())
    assert {o.status for o in desk.ledger.all_orders()} == {OrderStatus.FILLED}
    assert fired(desk.fake)[next(iter(armed))] >= 1


def test_a_refused_refresh_rejects_the_order_and_names_the_login_command(tmp_path):
    with FakeSchwabServer(tmp_path / "fake", FakeConfig(token_lifetime_s=300)) as fake:
        desk = Desk(tmp_path / "desk", fake)  # 300 s: expired under the SDK's leeway
        try:
            control(fake, "faults", {"refresh_expired": 1})
            desk.engine.on_signal(signal("SPY", 2))
            [refused] = desk.ledger.all_orders()
            assert refused.status is OrderStatus.REJECTED
            assert "ticklane auth schwab" in refused.reason
            assert desk.received() == []
        finally:
            desk.close()


def test_the_token_age_is_a_gauge_kept_across_refreshes_and_the_file_stays_private(tmp_path):
    day = 24 * 3600
    root = tmp_path / "desk"
    registry = CollectorRegistry()
    # 300 s: expired under the SDK's leeway, so every call refreshes and rewrites the file.
    with FakeSchwabServer(tmp_path / "fake", FakeConfig(token_lifetime_s=300)) as fake:
        login = fake.token_file(age_s=6.5 * day)
        config.write_token_file(root / config.TOKEN_FILE_NAME, login)
        broker = SchwabBroker(
            SchwabSettings(api_url=fake.url, timeout_s=1.0),
            config.AppCredentials(SecretStr(APP_KEY), SecretStr(SECRET)),
            root,
            registry=registry,
        )
        try:
            assert broker.positions() == {}
            written = config.read_token_file(root / config.TOKEN_FILE_NAME)
            assert written["token"]["access_token"] != login["token"]["access_token"]
            assert written["creation_timestamp"] == login["creation_timestamp"]
            assert (root / config.TOKEN_FILE_NAME).stat().st_mode & 0o777 == 0o600
            age = broker.token_age_s()
            assert 6.5 * day <= age < 6.5 * day + 60
            gauge = registry.get_sample_value(
                "ticklane_broker_token_age_seconds", {"broker": "schwab"}
            )
            assert gauge is not None
            assert age <= gauge < age + 60
            assert broker.login_state() is config.LoginState.REDUCING
        finally:
            broker.close()


def test_no_secret_or_token_reaches_a_log_line_or_an_error(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeSchwabServer(tmp_path / "fake", FakeConfig(token_lifetime_s=300)) as fake:
        desk = Desk(tmp_path / "desk", fake)
        first = config.read_token_file(desk.root / config.TOKEN_FILE_NAME)["token"]
        tokens = {first["access_token"], first["refresh_token"]}
        try:
            control(fake, "faults", {"token_expiry_mid_submit": 1, "drop_stream": 1})
            desk.engine.on_signal(signal("SPY", 2))
            desk.quote("SPY", "600.00", "600.02")
            desk.settle("SPY", 2)
            written = config.read_token_file(desk.root / config.TOKEN_FILE_NAME)["token"]
            token = desk.broker._client.session.token
            tokens |= {token["access_token"], token["refresh_token"], written["access_token"]}
            control(fake, "faults", {"refresh_expired": 1})
            desk.engine.on_signal(signal("SPY", 0, n=1))
            reasons = [o.reason for o in desk.ledger.all_orders()]
        finally:
            desk.close()
    text = caplog.text + "\n".join(reasons)
    assert "schwab" in caplog.text  # the paths above did log
    for secret in (SECRET, *tokens):
        assert secret not in text, "a secret reached a log line or an order's reason"


def test_the_login_ages_into_reducing_then_halted_on_a_controlled_clock(tmp_path, fake):
    day = 24 * 3600
    root = tmp_path / "desk"
    root.mkdir()
    token = fake.token_file()  # a login now
    config.write_token_file(root / config.TOKEN_FILE_NAME, token)
    login = float(token["creation_timestamp"])
    now = [login + 5 * day]
    registry = CollectorRegistry()
    broker = SchwabBroker(
        SchwabSettings(api_url=fake.url, timeout_s=1.0),
        config.AppCredentials(SecretStr(APP_KEY), SecretStr(SECRET)),
        root,
        registry=registry,
        clock=lambda: now[0],
    )
    ledger = open_sqlite(root / "ledger.sqlite")
    engine = Engine(ledger, broker, EngineConfig(LIMITS, settle_ns=10 * SCALE))
    engine.load()

    def age() -> float | None:
        return registry.get_sample_value("ticklane_broker_token_age_seconds", {"broker": "schwab"})

    def position() -> int:
        return sum(h.position.quantity for h in engine.holdings() if h.position.symbol == "AAPL")

    def fill(target: int) -> None:
        tick = {"ts_event": time.time_ns(), "bid": 200 * SCALE, "ask": 200 * SCALE + 10**7}
        control(fake, "ticks", {"symbol": "AAPL", "ticks": [tick]})

        def done() -> bool:
            engine.take_updates()
            return position() == target

        poll_until(done, timeout_s=20, what=f"AAPL at {target}")

    try:
        assert engine.refresh_venue_permit().state == "active"
        assert age() == 5 * day
        assert engine.metrics.venue_state._value.get() == 0
        engine.on_signal(signal("AAPL", 10, price=200 * SCALE))
        fill(10)

        now[0] = login + 6.5 * day  # within a day of expiry: only reducing
        permit = engine.refresh_venue_permit()
        assert (permit.state, age()) == ("reducing", 6.5 * day)
        assert "ticklane auth schwab" in permit.reason
        assert engine.metrics.venue_state._value.get() == 1
        engine.on_signal(signal("AAPL", 20, n=1, price=200 * SCALE))  # opens more: refused
        refused = ledger.all_orders()[-1]
        assert refused.status is OrderStatus.REJECTED
        assert refused.reason.startswith("risk reducing_only")
        assert "ticklane auth schwab" in refused.reason
        engine.on_signal(signal("AAPL", 4, n=2, price=200 * SCALE))  # closes part: goes
        fill(4)

        now[0] = login + 7 * day + 60  # expired: nothing goes
        permit = engine.refresh_venue_permit()
        assert (permit.state, age()) == ("halted", 7 * day + 60)
        assert engine.metrics.venue_state._value.get() == 2
        engine.on_signal(signal("AAPL", 0, n=3, price=200 * SCALE))
        halted = ledger.all_orders()[-1]
        assert halted.status is OrderStatus.REJECTED
        assert halted.reason.startswith("risk halted")
        assert position() == 4
    finally:
        broker.close()
        ledger.close()


# --- the breaker on authentication failures


def auth_failures(desk: Desk) -> float | None:
    return desk.registry.get_sample_value("ticklane_broker_auth_failures", {"broker": "schwab"})


def halts_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "executors.brokers.schwab.client" and "trading halted" in r.getMessage()
    )


def test_repeated_401s_halt_trading_until_a_call_authenticates_again(tmp_path, fake, caplog):
    caplog.set_level(logging.INFO)
    desk = Desk(tmp_path / "desk", fake, auth_failures_to_halt=3)
    try:
        poll_until(lambda: desk.broker.stream_connected, timeout_s=10, what="the stream up")
        # Behind the stream's catch-up on the adapter's loop: from here only the test calls.
        assert desk.broker.positions() == {}
        assert auth_failures(desk) == 0
        control(desk.fake, "faults", {"unauthorized": 1_000})  # Schwab refuses every call
        for n in (1, 2, 3):
            assert desk.engine.refresh_venue_permit().state == "active"
            with pytest.raises(BrokerError, match="HTTP 401"):
                desk.broker.positions()  # each refused again after a forced refresh
            assert auth_failures(desk) == n
        permit = desk.engine.refresh_venue_permit()
        assert permit.state == "halted"
        assert "3 times in a row" in permit.reason
        assert "read positions: HTTP 401" in permit.reason
        assert "`ticklane auth schwab`" in permit.reason
        assert desk.engine.metrics.venue_state._value.get() == 2
        with pytest.raises(BrokerError):
            desk.broker.positions()
        assert auth_failures(desk) == 4
        assert halts_logged(caplog) == 1  # once, not per failure

        desk.engine.on_signal(signal("SPY", 5))  # an opening signal while halted
        [refused] = desk.ledger.all_orders()
        assert refused.status is OrderStatus.REJECTED
        assert refused.reason.startswith("risk halted")
        assert "ticklane auth schwab" in refused.reason
        assert desk.received() == []

        control(desk.fake, "faults", {"clear": True})  # the outage ends
        assert desk.broker.positions() == {}
        assert auth_failures(desk) == 0
        permit = desk.engine.refresh_venue_permit()
        assert (permit.state, permit.reason) == ("active", "")
        assert "authenticated again" in caplog.text
        desk.engine.on_signal(signal("SPY", 5, n=1))
        desk.quote("SPY", "600.00", "600.02")
        desk.settle("SPY", 5)
        assert len(desk.audit()) == 1
    finally:
        desk.close()


def test_a_dead_refresh_token_halts_and_a_new_login_in_the_file_resumes_without_restart(
    tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    # 300 s: expired under the SDK's leeway, so every call refreshes.
    with FakeSchwabServer(tmp_path / "fake", FakeConfig(token_lifetime_s=300)) as fake:
        desk = Desk(tmp_path / "desk", fake, auth_failures_to_halt=2)
        tokens = {desk.broker._client.session.token["refresh_token"]}
        try:
            control(fake, "faults", {"refresh_expired": 1})  # the login is dead for good
            for _ in range(2):
                with pytest.raises(BrokerError, match="ticklane auth schwab"):
                    desk.broker.positions()
            permit = desk.broker.trading_state()
            assert permit.state == "halted"
            assert "the refresh token was refused (invalid_client)" in permit.reason

            login = fake.token_file()  # what `ticklane auth schwab` writes
            tokens |= {login["token"]["refresh_token"], login["token"]["access_token"]}
            config.write_token_file(desk.root / config.TOKEN_FILE_NAME, login)
            # Taken, but trading waits for a call that authenticates.
            assert desk.broker.trading_state().state == "halted"
            assert desk.broker.positions() == {}
            assert desk.broker.trading_state().state == "active"
            assert desk.broker.token_age_s() < 60  # the new login's age
            written = config.read_token_file(desk.root / config.TOKEN_FILE_NAME)
            assert written["creation_timestamp"] == login["creation_timestamp"]
            assert written["token"]["refresh_token"] == login["token"]["refresh_token"]
        finally:
            desk.close()
    for token in tokens:
        assert token not in caplog.text, "a token reached a log line"
