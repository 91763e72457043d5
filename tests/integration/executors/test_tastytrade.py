"""The executor at TastyTrade: engine, ledger and adapter, the real SDK, the local fake.

Each test runs the engine over a real SQLite ledger and `TastytradeBroker`, whose real
`tastytrade` SDK reaches the fake only through the adapter's `api_url` transport. Faults are
armed at the fake; what it recorded is the audit: no order twice, every signal answered by
one order or a recorded rejection, and the fake's positions equal to the ledger's.
"""

import logging
import time
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from executors.brokers.sending import SENDS_AT_ONCE
from executors.brokers.tastytrade.client import TastytradeBroker
from executors.brokers.tastytrade.config import Credentials
from executors.engine import Engine, EngineConfig
from executors.pricing import OrderStyle
from executors.reconcile import reconcile
from executors.risk import RiskLimits
from executors.stores import open_sqlite
from fakes.tastytrade.background import FakeTastytradeServer
from fakes.tastytrade.instruments import occ_symbol, quarterly_month
from fakes.tastytrade.order_lists import new_york_date
from fakes.tastytrade.record import Record
from fakes.tastytrade.server import FakeConfig
from tests.conftest import poll_until
from tests.integration.executors.batches import settle_batch, strategies_buying
from ticklane.settings import TastytradeSettings
from ticklane.trading import ComboLeg, OrderStatus, Signal

pytestmark = [
    pytest.mark.integration,
    # The SDK posts its JSON as `data=`, which httpx2 deprecates; not ours to change.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

SCALE = 1_000_000_000
SECRET = "client-secret-7f3a9c-do-not-log"  # noqa: S105 - a test value to search logs for
REFRESH = "refresh-token-51be02-do-not-log"
LIMITS = RiskLimits(
    max_position=1_000,
    max_notional=10**20,
    max_orders_per_minute=10_000,
    daily_loss_limit=10**15,
)


def es() -> str:
    """The fake's built-in E-mini future, as Databento names it (`ESZ6`)."""
    code, _ = quarterly_month(new_york_date(time.time_ns()))
    return f"ES{code}"


class Desk:
    """Ledger, TastyTrade adapter and engine; `restart()` rebuilds both from their stores."""

    def __init__(self, root: Path, fake: FakeTastytradeServer, config=None, **settings) -> None:
        self.root, self.fake = root, fake
        self.settings = TastytradeSettings(api_url=fake.url, timeout_s=1.0, **settings)
        self.config = config or EngineConfig(LIMITS, settle_ns=10 * SCALE)
        self.open()

    def open(self) -> None:
        self.ledger = open_sqlite(self.root / "ledger.sqlite")
        self.broker = TastytradeBroker(
            self.settings, Credentials(SecretStr(SECRET), SecretStr(REFRESH))
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

    def audit(self) -> list:
        """The fake's record: no external id twice, and its positions equal the ledger's."""
        record = Record(self.fake.data_dir, read_only=True)
        try:
            received = record.orders()
        finally:
            record.close()
        ids = [o.external_identifier for o in received]
        assert len(ids) == len(set(ids)), f"an order was placed twice: {ids}"
        assert self.broker.positions() == self.engine.positions_by_symbol()
        return received


def control(fake: FakeTastytradeServer, path: str, body: object) -> object:
    response = httpx2.post(f"{fake.url}/__fake/{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def fired(fake: FakeTastytradeServer) -> dict[str, int]:
    return httpx2.get(f"{fake.url}/__fake/faults").json()["fired"]


def signal(symbol: str, target: int, n: int = 0, price: int = SCALE) -> Signal:
    return Signal.create("s1", symbol, 1_700_000_000 * SCALE + n, target, reference_price=price)


def spy_option(right: str, strike: int) -> str:
    """One of the fake's built-in 0DTE SPY options, as Databento names it."""
    return occ_symbol("SPY", new_york_date(time.time_ns()), right, strike * SCALE)


def combo(name: str, target: int, legs: dict[str, int], n: int = 0, price: int = SCALE) -> Signal:
    return Signal.create(
        "s1",
        name,
        1_700_000_000 * SCALE + n,
        target,
        reference_price=price,
        legs=tuple(ComboLeg(symbol, ratio) for symbol, ratio in legs.items()),
    )


@pytest.fixture
def fake(tmp_path: Path):
    with FakeTastytradeServer(tmp_path / "fake", FakeConfig()) as server:
        yield server


@pytest.fixture
def desk(tmp_path: Path, fake):
    d = Desk(tmp_path / "desk", fake)
    yield d
    d.close()


# --- orders and fills


def test_a_market_order_is_placed_once_and_its_fill_is_pushed(desk):
    sig = signal("SPY", 10)
    desk.engine.on_signal(sig)
    desk.quote("SPY", "600.00", "600.02")
    desk.settle("SPY", 10)
    [order] = desk.ledger.all_orders()
    assert order.status is OrderStatus.FILLED
    assert order.venue_order_id
    [received] = desk.audit()
    assert received.external_identifier == order.client_order_id
    assert received.source == "ticklane"
    [fill] = desk.ledger.fills()
    assert fill.price == 600_020_000_000  # the ask, as an integer at 1e-9
    assert fill.client_order_id == order.client_order_id


def test_dry_run_places_nothing_and_records_a_rejection(tmp_path, fake):
    desk = Desk(tmp_path / "desk", fake, dry_run=True)
    try:
        desk.engine.on_signal(signal("SPY", 5))
        [order] = desk.ledger.all_orders()
        assert order.status is OrderStatus.REJECTED
        assert order.reason.startswith("dry run")
        assert desk.audit() == []
    finally:
        desk.close()


def test_a_future_reverses_in_one_order(desk):
    symbol = es()
    desk.engine.on_signal(signal(symbol, 1))
    desk.quote(symbol, "5000.00", "5000.25")
    desk.settle(symbol, 1)
    desk.engine.on_signal(signal(symbol, -1, n=1))
    desk.quote(symbol, "5001.00", "5001.25")
    desk.settle(symbol, -1)
    received = desk.audit()
    assert [(o.legs[0].action, o.legs[0].quantity) for o in received] == [("Buy", 1), ("Sell", 2)]
    assert received[0].legs[0].symbol == f"/{symbol}"


def test_an_equity_reverses_in_two_orders_the_second_after_the_first_filled_across_a_crash(
    desk,
):
    desk.engine.on_signal(signal("AAPL", 10))
    desk.quote("AAPL", "200.00", "200.05")
    desk.settle("AAPL", 10)
    # The process dies once the close's fill is in the ledger, before the open is sent.
    desk.engine.release = lambda signal_id: None
    desk.engine.on_signal(signal("AAPL", -10, n=1))
    [_, close, opening] = desk.ledger.all_orders()
    assert (close.position_effect, opening.position_effect) == ("close", "open")
    assert opening.status is OrderStatus.NEW

    def close_filled() -> bool:
        desk.engine.take_updates()
        return desk.ledger.order(close.client_order_id).status is OrderStatus.FILLED

    poll_until(close_filled, what="the close filled")
    assert len(desk.audit()) == 2
    desk.restart()  # reconciliation finds the close filled and sends the open
    desk.settle("AAPL", -10)
    received = desk.audit()
    actions = [(o.legs[0].action, o.legs[0].quantity) for o in received]
    assert actions == [("Buy to Open", 10), ("Sell to Close", 10), ("Sell to Open", 10)]
    record = Record(desk.fake.data_dir, read_only=True)
    try:
        [close_fill] = record.fills(order_id=received[1].id)
    finally:
        record.close()
    assert received[2].received_at > close_fill.recorded_at


def test_marketable_limits_go_out_at_the_venues_tick_with_the_debit_or_credit(tmp_path, fake):
    style = OrderStyle("marketable_limit", ticks_through=4)
    desk = Desk(tmp_path / "desk", fake, EngineConfig(LIMITS, style=style))
    try:
        symbol = es()
        desk.quote(symbol, "5000.00", "5000.25")
        desk.engine.on_signal(signal(symbol, 1, price=5000 * SCALE))
        desk.settle(symbol, 1)
        desk.engine.on_signal(signal(symbol, -1, n=1, price=5000 * SCALE))
        desk.quote(symbol, "5000.00", "5000.25")
        desk.settle(symbol, -1)
        [buy, sell] = desk.audit()
        assert (buy.order_type, buy.price, buy.price_effect) == ("Limit", 5001 * SCALE, "Debit")
        assert (sell.order_type, sell.price, sell.price_effect) == ("Limit", 4999 * SCALE, "Credit")
        assert [f.price for f in desk.ledger.fills()] == [5000_250_000_000, 5000 * SCALE]
    finally:
        desk.close()


def test_a_resting_limit_is_cancelled_through_the_sdk_before_the_next_signal(tmp_path, fake):
    styles = {"s1": OrderStyle("limit", ticks_away=2)}
    desk = Desk(tmp_path / "desk", fake, EngineConfig(LIMITS, styles=styles))
    try:
        desk.engine.on_signal(signal("SPY", 5, price=600 * SCALE))
        desk.quote("SPY", "600.00", "600.02")  # the ask is above the limit: it rests
        [resting] = desk.ledger.all_orders()
        assert resting.limit_price == 599_980_000_000  # two cent ticks below 600.00
        desk.engine.on_signal(signal("SPY", -5, n=1, price=600 * SCALE))

        def answered() -> bool:
            desk.engine.take_updates()
            return len(desk.ledger.all_orders()) == 2

        poll_until(answered, what="the cancel confirmed and the signal answered")
        cancelled, selling = desk.ledger.all_orders()
        assert cancelled.status is OrderStatus.CANCELLED
        # Netted from the real position (0), not from the buy that never traded.
        assert (selling.side, selling.quantity) == ("sell", 5)
        received = desk.audit()
        assert [o.status for o in received] == ["Cancelled", "Live"]
    finally:
        desk.close()


# --- multi-leg orders


def test_a_vertical_opens_and_closes_as_one_order_of_two_legs(desk):
    low, high = spy_option("C", 600), spy_option("C", 605)
    legs = {low: 1, high: -1}
    desk.engine.on_signal(combo("SPY 600/605 call vertical", 2, legs, price=2 * SCALE))
    desk.quote(low, "3.00", "3.10")
    desk.quote(high, "1.00", "1.05")
    desk.settle(high, -2)
    desk.settle(low, 2)
    [opened] = desk.ledger.all_orders()
    assert (opened.status, opened.filled_quantity) == (OrderStatus.FILLED, 2)
    # The net of the legs' fills per unit: 3.10 paid, 1.00 received.
    assert opened.filled_notional // opened.filled_quantity == 2_100_000_000
    desk.engine.on_signal(combo("SPY 600/605 call vertical", 0, legs, n=1, price=2 * SCALE))
    desk.quote(low, "3.00", "3.10")
    desk.quote(high, "1.00", "1.05")
    desk.settle(low, 0)
    assert desk.position(high) == 0
    received = desk.audit()
    actions = [[(leg.action, leg.quantity, leg.symbol) for leg in o.legs] for o in received]
    assert actions == [
        [("Buy to Open", 2, low), ("Sell to Open", 2, high)],
        [("Sell to Close", 2, low), ("Buy to Close", 2, high)],
    ]
    assert [o.external_identifier for o in received] == [
        o.client_order_id for o in desk.ledger.all_orders()
    ]
    # The venue's fills are the legs', each in its own symbol.
    assert sorted({f.symbol for f in desk.ledger.fills()}) == sorted(legs)


def test_four_legs_for_a_credit_go_out_as_one_net_limit_at_the_tick(tmp_path, fake):
    style = OrderStyle("marketable_limit", ticks_through=2)
    desk = Desk(tmp_path / "desk", fake, EngineConfig(LIMITS, style=style))
    try:
        wing_put, body_put = spy_option("P", 600), spy_option("P", 605)
        body_call, wing_call = spy_option("C", 600), spy_option("C", 605)
        legs = {wing_put: 1, body_put: -1, body_call: -1, wing_call: 1}
        # One unit at the touch: wings bought at 1.05, bodies sold at 4.00 and 3.00, a credit.
        desk.engine.on_signal(combo("SPY condor", 1, legs, price=-4_900_000_000))
        for symbol, (bid, ask) in {
            wing_put: ("1.00", "1.05"),
            body_put: ("4.00", "4.10"),
            body_call: ("3.00", "3.10"),
            wing_call: ("1.00", "1.05"),
        }.items():
            desk.quote(symbol, bid, ask)
        desk.settle(wing_call, 1)
        [received] = desk.audit()
        assert received.order_type == "Limit"
        # Two of SPY's cent ticks through the net for a buyer: a credit of 4.88 or better.
        assert (received.price, received.price_effect) == (4_880_000_000, "Credit")
        assert [leg.action for leg in received.legs] == [
            "Buy to Open",
            "Sell to Open",
            "Sell to Open",
            "Buy to Open",
        ]
        assert {symbol: desk.position(symbol) for symbol in legs} == legs
    finally:
        desk.close()


def test_a_combination_the_legs_do_not_hold_whole_is_rejected_with_the_reason(desk):
    low, high = spy_option("C", 600), spy_option("C", 605)
    desk.quote(low, "3.00", "3.10")
    desk.engine.on_signal(signal(low, 1))  # the long leg alone, outside the combination
    desk.settle(low, 1)
    desk.engine.on_signal(combo("vertical", 1, {low: 1, high: -1}, n=1))
    rejected = desk.ledger.all_orders()[-1]
    assert rejected.status is OrderStatus.REJECTED
    assert "not whole units" in rejected.reason
    assert len(desk.audit()) == 1


# --- a batch sent together


def test_a_batchs_orders_are_in_flight_together_at_most_eight_at_once(desk):
    # Each answer is held half a second at the fake (the client waits a second): orders sent
    # one after another would be held one at a time.
    control(desk.fake, "faults", {"answer_delay_s": 0.5})
    batch = strategies_buying("SPY", [1] * 10)
    assert desk.engine.on_signals(batch) == 10
    orders = desk.ledger.all_orders()
    assert len(orders) == 10
    assert {o.status for o in orders} == {OrderStatus.ACCEPTED}
    assert len({o.venue_order_id for o in orders}) == 10
    view = httpx2.get(f"{desk.fake.url}/__fake/faults").json()
    assert view["most_answers_held"] == SENDS_AT_ONCE
    desk.quote("SPY", "600.00", "600.02")
    settle_batch(desk, "SPY", [1] * 10)
    received = desk.audit()
    assert sorted(o.external_identifier for o in received) == sorted(
        o.client_order_id for o in orders
    )


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


def test_a_lost_answer_while_the_order_list_lags_3s_sends_no_second_order(desk):
    # The stream drops at its first notification, so only the (lagging) lists can tell.
    armed = {"timeout_after_accept": 1, "timeout_hold_s": 3, "list_lag_s": 3, "drop_stream": 1}
    control(desk.fake, "faults", armed)
    desk.engine.on_signal(signal("SPY", 4))
    [order] = desk.ledger.all_orders()
    assert order.status is OrderStatus.UNKNOWN
    started = time.monotonic()

    def resolved() -> bool:
        # Lookups only: the account stream would tell sooner, and this is about the lists.
        desk.engine.resolve_unknown()
        return desk.ledger.order(order.client_order_id).status is not OrderStatus.UNKNOWN

    poll_until(resolved, timeout_s=20, interval_s=0.25, what="the order found at the venue")
    assert time.monotonic() - started >= 1.5  # it stayed UNKNOWN while the lists lagged
    assert desk.ledger.send_state(order.client_order_id).sends == 1
    desk.quote("SPY", "600.00", "600.02")
    desk.settle("SPY", 4)
    assert len(desk.audit()) == 1
    assert fired(desk.fake)["timeout_after_accept"] == 1


@pytest.mark.parametrize(
    "armed",
    [
        {"rate_limit": 1},
        {"server_error_after_accept": 1, "server_error_status": 502},
        {"token_expiry_mid_submit": 1},
        {"duplicate_fills": 1, "reorder_fills": 1},
        {"drop_stream": 1},
    ],
    ids=["429", "5xx-after-accept", "token-expiry", "duplicate-reordered-fills", "dropped-stream"],
)
@pytest.mark.parametrize(
    ("style", "kind"),
    [
        (OrderStyle(), "Market"),
        (OrderStyle("marketable_limit", ticks_through=2), "Limit"),
        (OrderStyle("limit"), "Limit"),
        (OrderStyle("stop"), "Stop"),
    ],
    ids=["market", "marketable-limit", "limit", "stop"],
)
def test_each_fault_and_order_kind_ends_in_one_order_per_signal_and_equal_positions(
    tmp_path, fake, armed, style, kind
):
    # Reference prices at the touch the next quote shows, so a limit or a stop at the
    # reference trades on it.
    desk = Desk(tmp_path / "desk", fake, EngineConfig(LIMITS, style=style))
    try:
        control(desk.fake, "faults", armed)
        desk.engine.on_signal(signal("SPY", 3, price=600_020_000_000))
        desk.quote("SPY", "600.00", "600.02")
        desk.settle("SPY", 3)
        desk.engine.on_signal(signal("SPY", 1, n=1, price=601 * SCALE))
        desk.quote("SPY", "601.00", "601.02")
        desk.settle("SPY", 1)
        received = desk.audit()
        assert {o.order_type for o in received} == {kind}
        _expect_clean(desk, armed, received)
    finally:
        desk.close()


def _expect_clean(desk: Desk, armed: dict, received: list) -> None:
    assert len(received) == 2 == len(desk.ledger.all_orders())
    assert {o.status for o in desk.ledger.all_orders()} == {OrderStatus.FILLED}
    errors = desk.engine.metrics.errors
    assert sum(s.value for m in errors.collect() for s in m.samples) == 0
    assert fired(desk.fake)[next(iter(armed))] >= 1


@pytest.mark.parametrize(
    "armed",
    [
        {"server_error_after_accept": 1, "server_error_status": 502},
        {"duplicate_fills": 1, "reorder_fills": 1},
        {"drop_stream": 1},
    ],
    ids=["5xx-after-accept", "duplicate-reordered-fills", "dropped-stream"],
)
def test_each_fault_on_a_multi_leg_order_ends_in_one_order_and_equal_positions(desk, armed):
    low, high = spy_option("P", 600), spy_option("P", 605)
    legs = {low: -1, high: 1}
    control(desk.fake, "faults", armed)
    desk.engine.on_signal(combo("put vertical", 3, legs))
    desk.quote(low, "1.00", "1.05")
    desk.quote(high, "4.00", "4.10")
    desk.settle(high, 3)
    [received] = desk.audit()
    assert [leg.quantity for leg in received.legs] == [3, 3]
    [order] = desk.ledger.all_orders()
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 3)
    assert desk.position(low) == -3
    assert fired(desk.fake)[next(iter(armed))] >= 1


def test_a_refused_refresh_token_rejects_the_order_and_says_what_to_do(tmp_path, caplog):
    config = FakeConfig(token_lifetime_s=60)  # the SDK refreshes within 60 s of expiry
    with FakeTastytradeServer(tmp_path / "fake", config) as fake:
        desk = Desk(tmp_path / "desk", fake)
        try:
            control(fake, "faults", {"refuse_refresh": 100})  # a revoked grant: every time
            desk.engine.on_signal(signal("SPY", 2))
            [order] = desk.ledger.all_orders()
            assert order.status is OrderStatus.REJECTED
            assert "refused the refresh token" in order.reason
            assert "TASTYTRADE_REFRESH_TOKEN" in order.reason
            record = Record(fake.data_dir, read_only=True)
            assert record.orders() == []
            record.close()
        finally:
            desk.close()


def test_no_secret_or_token_reaches_a_log_line_or_an_error(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    config = FakeConfig(token_lifetime_s=60)
    tokens: set[str] = set()
    with FakeTastytradeServer(tmp_path / "fake", config) as fake:
        desk = Desk(tmp_path / "desk", fake)
        try:
            tokens.add(desk.broker._session.session_token)
            control(fake, "faults", {"token_expiry_mid_submit": 1, "drop_stream": 1})
            desk.engine.on_signal(signal("SPY", 2))
            desk.quote("SPY", "600.00", "600.02")
            desk.settle("SPY", 2)
            tokens.add(desk.broker._session.session_token)
            control(fake, "faults", {"refuse_refresh": 100, "server_error_after_accept": 1})
            desk.engine.on_signal(signal("SPY", 0, n=1))
            reasons = [o.reason for o in desk.ledger.all_orders()]
        finally:
            desk.close()
    text = caplog.text + "\n".join(reasons)
    assert "tastytrade" in caplog.text  # the paths above did log
    for secret in (SECRET, REFRESH, *tokens):
        assert secret not in text, "a secret reached a log line or an order's reason"
