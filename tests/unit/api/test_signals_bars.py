"""Signals and bars over the store, as the dashboard's blotter and charts read them."""

from fastapi.testclient import TestClient

from agents.roster import INTERVALS_NS
from api.access import Access
from api.app import INTERVAL_NS, ApiState, create_app
from api.auth import LoginLimiter, Sessions, Users
from api.metrics import ApiMetrics
from api.store import Located, Store
from ticklane.market import Bar
from ticklane.topics import BAR_INTERVALS
from ticklane.trading import Signal

SCALE = 10**9
MIN = 60 * SCALE


def client_over(store: Store) -> TestClient:
    access = Access(Users(), Sessions(60.0), LoginLimiter(5, 60.0), open_reads=True)
    return TestClient(create_app(ApiState(store, ApiMetrics(), access=access)))


def test_the_api_knows_the_agents_bar_intervals():
    assert INTERVAL_NS == INTERVALS_NS
    assert tuple(INTERVAL_NS) == BAR_INTERVALS


def test_bars_come_oldest_first_a_page_at_a_time_and_the_latest_version_wins(tmp_path):
    store = Store(tmp_path / "api.sqlite")
    bars = [
        Located(
            0,
            i,
            Bar(i * MIN, MIN, 100 * SCALE, 101 * SCALE, 99 * SCALE, (100 + i) * SCALE, 5),
            b"ES",
        )
        for i in range(5)
    ]
    grown = Bar(4 * MIN, MIN, 100 * SCALE, 110 * SCALE, 99 * SCALE, 109 * SCALE, 9)
    other = Bar(0, MIN, 1, 1, 1, 1, 1)
    store.apply([*bars, Located(0, 9, grown, b"ES"), Located(1, 1, other, b"NQ")], {})
    client = client_over(store)
    first = client.get("/api/v1/bars", params={"symbol": "ES", "interval": "1m", "limit": 3}).json()
    assert [b["close"] for b in first["bars"]] == ["100", "101", "102"]
    assert first["next_since"] == 3 * MIN
    rest = client.get(
        "/api/v1/bars", params={"symbol": "ES", "interval": "1m", "since": first["next_since"]}
    ).json()
    assert [b["close"] for b in rest["bars"]] == ["103", "109"]
    assert rest["bars"][-1]["volume"] == 9
    assert rest["next_since"] is None
    assert client.get("/api/v1/bars", params={"symbol": "ES", "interval": "2m"}).status_code == 422
    assert client.get("/api/v1/bars", params={"interval": "1m"}).status_code == 422
    store.close()


def test_signals_page_newest_first_with_filters(tmp_path):
    store = Store(tmp_path / "api.sqlite")
    made = [
        Signal.create("ema", "ES", i, i % 3 - 1, reference_price=5000 * SCALE) for i in range(12)
    ]
    made.append(Signal.create("trend", "NQ", 99, 1))
    store.apply([Located(0, i, s) for i, s in enumerate(made)], {})
    store.apply([Located(0, 0, made[0])], {})  # again: still once
    client = client_over(store)
    page = client.get("/api/v1/signals", params={"strategy": "ema", "limit": 5}).json()
    assert [s["ts_event"] for s in page["items"]] == [11, 10, 9, 8, 7]
    assert page["items"][0]["reference_price"] == "5000"
    seen = page["items"]
    while page["next_cursor"]:
        page = client.get(
            "/api/v1/signals", params={"strategy": "ema", "cursor": page["next_cursor"]}
        ).json()
        seen += page["items"]
    assert [s["ts_event"] for s in seen] == list(range(11, -1, -1))
    assert [
        s["symbol"] for s in client.get("/api/v1/signals", params={"symbol": "NQ"}).json()["items"]
    ] == ["NQ"]
    store.close()
