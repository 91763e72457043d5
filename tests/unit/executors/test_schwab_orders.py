"""The pure half of the Schwab adapter: order specs, statuses, fills, fingerprints, activity."""

import json

import pytest

from executors.brokers.base import VenueStatus
from executors.brokers.schwab import config, orders
from executors.brokers.schwab.stream import order_ids
from ticklane import ids
from ticklane.trading import (
    ComboLeg,
    Order,
    OrderStatus,
    OrderType,
    PositionEffect,
    Side,
    TimeInForce,
)

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

SCALE = 1_000_000_000
OPTION = "SPY   261218C00600000"


def order(symbol: str = "AAPL", **kwargs: object) -> Order:
    fields: dict[str, object] = {
        "client_order_id": "ord-1",
        "signal_id": "sig-1",
        "strategy": "s1",
        "symbol": symbol,
        "side": Side.BUY,
        "quantity": 5,
        "order_type": OrderType.MARKET,
        "status": OrderStatus.NEW,
        "ts_event": 0,
    } | kwargs
    return Order(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("side", "effect", "equity", "option"),
    [
        (Side.BUY, PositionEffect.OPEN, "BUY", "BUY_TO_OPEN"),
        (Side.SELL, PositionEffect.CLOSE, "SELL", "SELL_TO_CLOSE"),
        (Side.SELL, PositionEffect.OPEN, "SELL_SHORT", "SELL_TO_OPEN"),
        (Side.BUY, PositionEffect.CLOSE, "BUY_TO_COVER", "BUY_TO_CLOSE"),
    ],
)
def test_instructions_come_from_side_and_position_effect(side, effect, equity, option):
    stock = orders.build(order(side=side, position_effect=effect))
    contract = orders.build(order(OPTION, side=side, position_effect=effect))
    assert stock["orderLegCollection"][0]["instruction"] == equity
    assert stock["orderLegCollection"][0]["instrument"]["assetType"] == "EQUITY"
    assert contract["orderLegCollection"][0]["instruction"] == option
    assert contract["orderLegCollection"][0]["instrument"]["assetType"] == "OPTION"


def test_a_reversal_and_a_future_are_refused_before_sending():
    with pytest.raises(orders.OrderBuildError, match="cannot reverse"):
        orders.build(order(side=Side.SELL, position_effect=PositionEffect.REVERSE))
    for future in ("ESZ6", "ESM4 P5230", "/ESZ6"):
        with pytest.raises(orders.OrderBuildError, match="cannot trade futures"):
            orders.build(order(future))
    assert not orders.is_future("AAPL")
    assert not orders.is_future(OPTION)


def test_prices_are_decimal_strings_at_the_tick_never_worse():
    buy = orders.build(order(order_type=OrderType.LIMIT, limit_price=600_129_000_000))
    sell = orders.build(
        order(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=600_121_000_000)
    )
    penny = orders.build(order(order_type=OrderType.LIMIT, limit_price=512_345_678))
    assert (buy["orderType"], buy["price"]) == ("LIMIT", "600.12")
    assert sell["price"] == "600.13"
    assert penny["price"] == "0.5123"
    cheap = orders.build(order(OPTION, order_type=OrderType.LIMIT, limit_price=2_030_000_000))
    dear = orders.build(order(OPTION, order_type=OrderType.LIMIT, limit_price=3_190_000_000))
    assert (cheap["price"], dear["price"]) == ("2.00", "3.10")


def test_stop_stop_limit_and_durations():
    stop = orders.build(order(order_type=OrderType.STOP, stop_price=700_004_000_000))
    assert (stop["orderType"], stop["stopPrice"], stop.get("price")) == ("STOP", "700.00", None)
    both = orders.build(
        order(
            order_type=OrderType.STOP_LIMIT,
            stop_price=700 * SCALE,
            limit_price=701 * SCALE,
            time_in_force=TimeInForce.GTC,
        )
    )
    assert (both["orderType"], both["price"], both["duration"]) == (
        "STOP_LIMIT",
        "701.00",
        "GOOD_TILL_CANCEL",
    )
    with pytest.raises(orders.OrderBuildError, match="lacks a price"):
        orders.build(order(order_type=OrderType.LIMIT))


def test_every_schwab_status_is_mapped():
    assert set(orders.STATUSES) == set(orders.SchwabStatus)
    assert orders.STATUSES[orders.SchwabStatus.CANCELED] is VenueStatus.CANCELLED
    assert orders.SchwabStatus.PENDING_CANCEL in orders.WORKING
    with pytest.raises(KeyError):
        orders.status_of({"status": "SOMETHING_NEW"})


LISTED = {
    "orderId": 1001,
    "orderType": "LIMIT",
    "price": 600.1,
    "status": "WORKING",
    "filledQuantity": 3,
    "orderLegCollection": [
        {
            "legId": 1,
            "instruction": "BUY",
            "quantity": 5,
            "instrument": {"assetType": "EQUITY", "symbol": "SPY"},
        }
    ],
    "orderActivityCollection": [
        {
            "activityType": "EXECUTION",
            "activityId": 100101,
            "executionLegs": [
                {"legId": 1, "quantity": 3, "price": 600.08, "time": "2026-12-04T15:36:12+0000"}
            ],
        }
    ],
}


def test_the_fingerprint_of_a_spec_and_of_its_listed_order_agree():
    spec = orders.build(order("SPY", order_type=OrderType.LIMIT, limit_price=600_100_000_000))
    assert orders.fingerprint("H", spec) == orders.fingerprint("H", LISTED)
    other = orders.build(order("SPY", order_type=OrderType.LIMIT, limit_price=600_110_000_000))
    assert orders.fingerprint("H", other) != orders.fingerprint("H", LISTED)


def test_a_listed_order_and_its_fills():
    venue = orders.venue_order(LISTED, "ord-1")
    assert (venue.status, venue.filled_quantity, venue.venue_order_id) == (
        VenueStatus.PARTIALLY_FILLED,
        3,
        "1001",
    )
    [fill] = orders.fills(LISTED, "ord-1")
    assert fill.fill_id == ids.fill_id("schwab", "1001", "100101-1")
    assert (fill.side, fill.quantity, fill.price) == (Side.BUY, 3, 600_080_000_000)
    assert fill.ts_event == 1_796_398_572 * SCALE
    assert orders.fills(LISTED, "ord-1") == [fill]  # the same id every time


def test_activity_messages_name_their_orders():
    message = {
        "content": [
            {"MESSAGE_DATA": json.dumps({"SchwabOrderID": "7"})},
            {"MESSAGE_DATA": ""},
            {"MESSAGE_DATA": "not json"},
            {"MESSAGE_DATA": json.dumps({"SchwabOrderID": 8})},
        ]
    }
    assert order_ids(message) == ["7", "8"]


def test_the_login_state_follows_the_refresh_tokens_age():
    day = 24 * 3600
    assert config.login_state(5.9 * day, 6.0) is config.LoginState.OK
    assert config.login_state(6.0 * day, 6.0) is config.LoginState.REDUCING
    assert config.login_state(7.0 * day, 6.0) is config.LoginState.HALTED
    assert config.login_advice(config.LoginState.OK, day) == ""
    for state in (config.LoginState.REDUCING, config.LoginState.HALTED):
        assert "ticklane auth schwab" in config.login_advice(state, 6.5 * day)


def test_the_token_file_is_written_atomically_and_private(tmp_path):
    path = tmp_path / "t" / "schwab-token.json"
    config.write_token_file(path, {"creation_timestamp": 100, "token": {"a": 1}})
    assert path.stat().st_mode & 0o777 == 0o600
    assert config.read_token_file(path)["token"] == {"a": 1}
    assert config.token_age_s(config.read_token_file(path), now=160.0) == 60.0
    assert [p.name for p in path.parent.iterdir()] == ["schwab-token.json"]
    with pytest.raises(config.TokenFileError, match="ticklane auth schwab"):
        config.read_token_file(tmp_path / "missing.json")


# --- multi-leg orders

C600, C605 = "SPY   261218C00600000", "SPY   261218C00605000"
P600, P605 = "SPY   261218P00600000", "SPY   261218P00605000"


def combo(legs: dict[str, int], **kwargs: object) -> Order:
    pairs = tuple(ComboLeg(symbol, ratio) for symbol, ratio in legs.items())
    return order("combo", legs=pairs, **kwargs)


@pytest.mark.parametrize(
    ("legs", "named"),
    [
        ({C600: 1, C605: -1}, "VERTICAL"),
        ({P600: 1, P605: -1, C600: -1, C605: 1}, "IRON_CONDOR"),
        ({C600: 1, P600: 1}, "CUSTOM"),  # a straddle is not spelled out here: custom
        ({C600: 1, C605: -2}, "CUSTOM"),
        ({"SPY": 100, C605: -1}, "CUSTOM"),
    ],
)
def test_a_combination_is_named_as_schwab_names_it(legs, named):
    assert orders.build(combo(legs))["complexOrderStrategyType"] == named


@pytest.mark.parametrize(
    ("side", "net", "order_type", "price"),
    [
        (Side.BUY, 2_031_000_000, "NET_DEBIT", "2.00"),  # pays at most 2.031: 2.00 at the tick
        (Side.BUY, -4_919_000_000, "NET_CREDIT", "5.00"),  # receives at least 4.919: 5.00
        (Side.SELL, 2_031_000_000, "NET_CREDIT", "2.05"),  # receives at least 2.031
        (Side.SELL, -1_000_000_000, "NET_DEBIT", "1.00"),
    ],
)
def test_a_net_limit_is_unsigned_debit_or_credit_never_worse(side, net, order_type, price):
    spec = orders.build(
        combo({C600: 1, C605: -1}, side=side, order_type=OrderType.LIMIT, limit_price=net)
    )
    assert (spec["orderType"], spec["price"]) == (order_type, price)
    instructions = [leg["instruction"] for leg in spec["orderLegCollection"]]
    assert instructions == (
        ["BUY_TO_OPEN", "SELL_TO_OPEN"] if side is Side.BUY else ["SELL_TO_OPEN", "BUY_TO_OPEN"]
    )


def test_legs_trade_the_order_quantity_times_their_ratio_and_fingerprint_alike_listed():
    spec = orders.build(combo({C600: 1, C605: -2}, quantity=3))
    assert [leg["quantity"] for leg in spec["orderLegCollection"]] == [3, 6]
    listed = json.loads(json.dumps(spec)) | {"orderId": 7, "status": "WORKING"}
    assert orders.fingerprint("h", spec) == orders.fingerprint("h", listed)
    assert orders.fingerprint("h", spec).symbol == f"{C600};{C605}"


def test_a_combination_with_a_future_or_a_stop_is_refused():
    with pytest.raises(orders.OrderBuildError, match="futures"):
        orders.build(combo({"ESZ6 C6000": 1, C605: -1}))
    with pytest.raises(orders.OrderBuildError, match="net limit"):
        orders.build(combo({C600: 1, C605: -1}, order_type=OrderType.STOP, stop_price=SCALE))
