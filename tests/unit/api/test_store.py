"""The API's store: idempotent on the messages' identity, offsets with the data, stable pages."""

import pytest

from api.store import CursorError, Located, Store, Window, decode_cursor, encode_cursor
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Position, Side


def order(cid: str, status: OrderStatus, ts: int = 1, symbol: str = "ES") -> Order:
    return Order(cid, "sig", "s1", symbol, Side.BUY, 2, OrderType.MARKET, status, ts)


def fill(fid: str, ts: int, symbol: str = "ES") -> Fill:
    return Fill(fid, "c1", "v1", symbol, Side.BUY, 1, 100 * 10**9, ts, strategy="s1")


def position(quantity: int, ts: int) -> Position:
    return Position("s1", "ES", quantity, 100 * 10**9, 0, ts)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "api.sqlite")
    yield s
    s.close()


def test_a_batch_and_its_offsets_are_applied_together_and_a_replay_changes_nothing(store):
    batch = [
        Located(0, 10, order("c1", OrderStatus.PENDING_SUBMIT)),
        Located(0, 11, order("c1", OrderStatus.FILLED)),
        Located(1, 5, fill("f1", 3)),
        Located(2, 7, position(2, 3)),
    ]
    offsets = {("orders", 0): 12, ("fills", 1): 6, ("positions", 2): 8}
    store.apply(batch, offsets)
    before = (store.positions(), store.orders(limit=10), store.fills(limit=10), store.offsets())
    store.apply(batch, offsets)  # the same messages again
    store.apply(batch[:1], {("orders", 0): 11})  # and an older one alone, with an older offset
    after = (store.positions(), store.orders(limit=10), store.fills(limit=10), store.offsets())
    assert before == after
    [latest] = store.orders(limit=10).items
    assert latest.status is OrderStatus.FILLED
    assert store.offsets()[("orders", 0)] == 12


def test_a_later_message_replaces_an_order_or_a_position(store):
    store.apply([Located(0, 1, position(2, 1))], {("positions", 0): 2})
    store.apply([Located(0, 9, position(-1, 2))], {("positions", 0): 10})
    [held] = store.positions()
    assert held.quantity == -1
    assert store.positions(strategy="other") == []


def test_pages_run_newest_first_and_stay_stable_while_new_items_arrive(store):
    store.apply([Located(0, i, fill(f"f{i:02d}", ts=i // 2)) for i in range(25)], {})
    first = store.fills(limit=10)
    assert [f.fill_id for f in first.items] == [f"f{i:02d}" for i in range(24, 14, -1)]
    store.apply([Located(0, 99, fill("f99", ts=1_000))], {})  # newer: not in later pages
    second = store.fills(limit=10, cursor=first.next_cursor)
    third = store.fills(limit=10, cursor=second.next_cursor)
    assert [f.fill_id for f in second.items] == [f"f{i:02d}" for i in range(14, 4, -1)]
    assert [f.fill_id for f in third.items] == [f"f{i:02d}" for i in range(4, -1, -1)]
    assert third.next_cursor == ""


def test_filters_combine(store):
    store.apply(
        [
            Located(0, 1, order("a", OrderStatus.FILLED, ts=5, symbol="ES")),
            Located(0, 2, order("b", OrderStatus.REJECTED, ts=6, symbol="ES")),
            Located(1, 1, order("c", OrderStatus.FILLED, ts=7, symbol="NQ")),
        ],
        {},
    )
    found = store.orders(limit=10, window=Window(symbol="ES"), status="filled")
    assert [o.client_order_id for o in found.items] == ["a"]
    assert [o.client_order_id for o in store.orders(limit=10, window=Window(since=6)).items] == [
        "c",
        "b",
    ]
    assert [o.client_order_id for o in store.orders(limit=10, window=Window(until=6)).items] == [
        "a"
    ]


def test_a_cursor_round_trips_and_a_forged_one_is_refused():
    assert decode_cursor(encode_cursor(123, "ord-9:x")) == (123, "ord-9:x")
    for forged in ("", "bm90IGEgY3Vyc29y", "!!!", encode_cursor(1, "x")[:-3] + "$"):
        with pytest.raises(CursorError):
            decode_cursor(forged)


def test_every_change_is_one_numbered_event_and_a_replay_adds_none(store):
    batch = [
        Located(0, 1, order("c1", OrderStatus.PENDING_SUBMIT)),
        Located(0, 2, order("c1", OrderStatus.FILLED)),
        Located(1, 1, fill("f1", 3)),
    ]
    store.apply(batch, {})
    store.apply(batch, {})  # redelivered: no change, no event
    events = store.events(0, 10)
    assert [(e.seq, e.kind) for e in events] == [(1, "order"), (2, "order"), (3, "fill")]
    assert events[1].message.status is OrderStatus.FILLED
    assert store.events(2, 10) == events[2:]
    assert store.last_event() == 3
