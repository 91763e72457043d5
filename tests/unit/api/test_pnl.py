"""P&L over the store: realized from the positions, unrealized at the latest bar's close,
a day's realized from that day's fills."""

from fastapi.testclient import TestClient

from api.access import Access
from api.app import ApiState, create_app
from api.auth import LoginLimiter, Sessions, Users
from api.metrics import ApiMetrics
from api.store import Located, Store
from ticklane.market import Bar
from ticklane.trading import Fill, Position, Side

SCALE = 10**9
DAY = 86_400 * SCALE
DAY0 = 20_000 * DAY  # 2024-10-04 00:00 UTC


def bar(close: int, ts: int) -> Bar:
    return Bar(ts, 60 * SCALE, close, close, close, close, 10)


def test_pnl_marks_open_positions_at_the_latest_close_and_sums_the_day(tmp_path):
    store = Store(tmp_path / "api.sqlite")
    fills = [  # bought 2 at 100 yesterday, sold 1 at 110 today, fee 1 each
        Fill("f1", "c1", "v1", "ES", Side.BUY, 2, 100 * SCALE, DAY0 - 3_600 * SCALE, SCALE, "s1"),
        Fill("f2", "c2", "v2", "ES", Side.SELL, 1, 110 * SCALE, DAY0 + 3_600 * SCALE, SCALE, "s1"),
    ]
    # What the executor publishes after those fills (multiplier 50): 10 x 50 - 2 in fees.
    held = Position("s1", "ES", 1, 100 * SCALE, 498 * SCALE, fills[1].ts_event, "f2", 2 * SCALE)
    flat = Position("s2", "NQ", 0, 0, -5 * SCALE, 1, "f9", 0)
    store.apply(
        [
            Located(0, 1, fills[0]),
            Located(0, 2, fills[1]),
            Located(1, 1, held),
            Located(2, 1, flat),
            Located(3, 1, bar(104 * SCALE, DAY0), b"ES"),
            Located(3, 2, bar(103 * SCALE, DAY0 - 60 * SCALE), b"ES"),  # older: not the mark
        ],
        {},
    )
    access = Access(Users(), Sessions(60.0), LoginLimiter(5, 60.0), open_reads=True)
    state = ApiState(store, ApiMetrics(), access=access, multipliers={"ES": 50})
    client = TestClient(create_app(state))
    answer = client.get("/api/v1/pnl", params={"day": "2024-10-04"}).json()
    rows = {(r["strategy"], r["symbol"]): r for r in answer["rows"]}
    es = rows[("s1", "ES")]
    assert (es["mark"], es["mark_ts"]) == ("104", DAY0 + 60 * SCALE)
    assert es["unrealized"] == "200"  # (104 - 100) x 1 x 50
    assert es["total"] == "698"
    assert rows[("s2", "NQ")]["unrealized"] == "0"
    assert (answer["realized"], answer["unrealized"], answer["total"]) == ("493", "200", "693")
    assert answer["fees"] == "2"
    # The day's realized: the sale's 10 x 50 less its fee (yesterday's fee was yesterday's).
    assert answer["day_realized"] == "499"
    assert client.get("/api/v1/pnl", params={"day": "2024-13-01"}).status_code == 422
    store.close()
