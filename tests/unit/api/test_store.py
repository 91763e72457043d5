"""The API's store: idempotent on the messages' identity, offsets with the data, stable pages."""

import uuid

import pytest

from api.store import (
    CursorError,
    DeadLetter,
    KeyedBar,
    Located,
    Store,
    Window,
    decode_cursor,
    encode_cursor,
    open_postgres_store,
)
from ticklane.control import ControlAck, ControlAction, ControlCommand
from ticklane.market import Bar, InstrumentClass, InstrumentDef
from ticklane.status import ProcessState, ProcessStatus
from ticklane.trading import (
    Fill,
    Indicators,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Signal,
)

NS = 1_700_000_000 * 10**9  # a real time in ns: past 32 bits, as prices in 1e-9 are
MIN = 60 * 10**9


def order(cid: str, status: OrderStatus, ts: int = 1, symbol: str = "ES") -> Order:
    return Order(cid, "sig", "s1", symbol, Side.BUY, 2, OrderType.MARKET, status, ts)


def fill(fid: str, ts: int, symbol: str = "ES") -> Fill:
    return Fill(fid, "c1", "v1", symbol, Side.BUY, 1, 100 * 10**9, ts, strategy="s1")


def position(quantity: int, ts: int) -> Position:
    return Position("s1", "ES", quantity, 100 * 10**9, 0, ts)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request, tmp_path):
    """The store in SQLite, and in PostgreSQL (the session's server, a schema of its own)."""
    if request.param == "sqlite":
        s = Store(tmp_path / "api.sqlite")
        yield s
        s.close()
        return
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    dsn = request.getfixturevalue("postgres_dsn")
    schema = f"api_{uuid.uuid4().hex[:8]}"
    s = open_postgres_store(dsn, schema, tmp_path / "api" / "postgres")
    yield s
    s.close()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


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


def test_every_kind_round_trips_and_only_a_change_is_an_event(store):
    command = ControlCommand.create(ControlAction.DISABLE, NS, strategy="s1")
    acks = [ControlAck(command.command_id, by, True, NS + 1) for by in ("executor/x", "agents/y")]
    bar = Bar(NS, MIN, 5_000 * 10**9, 5_001 * 10**9, 4_999 * 10**9, 5_000 * 10**9, 7)
    grown = Bar(NS, MIN, 5_000 * 10**9, 5_002 * 10**9, 4_999 * 10**9, 5_002 * 10**9, 9)
    signal = Signal.create("s1", "ES", NS, 2, reference_price=5_000 * 10**9)
    marks = Indicators("s1", "ES", MIN, NS, {"ema_12": 5_000 * 10**9, "atr_14": None})
    status = ProcessStatus("executor", "executor/x@h", ProcessState.RUNNING, NS, 5 * 10**9)
    older = ProcessStatus("executor", "executor/x@h", ProcessState.DEGRADED, NS - 1, 5 * 10**9)
    instrument = InstrumentDef(NS, NS, 42, "ESZ5", InstrumentClass.FUTURE, underlying="ES")
    dead = DeadLetter("undecodable", "orders", 3, 17, "k", 9, NS // 10**6)
    batch = [
        Located(0, 1, command),
        Located(0, 2, acks[0]),
        Located(1, 2, acks[1]),
        Located(0, 3, bar, b"ES"),
        Located(0, 4, signal),
        Located(0, 5, marks),
        Located(0, 6, status),
        Located(0, 7, instrument),
        Located(3, 17, dead),
    ]
    store.apply(batch, {("control", 0): 8})
    assert store.last_event() == 7  # a command, 2 acks, a bar, signal, indicators, status
    store.apply(batch, {("control", 0): 8})  # a replay: nothing changed, nothing appended
    store.apply([Located(0, 1, acks[0]), Located(0, 8, older)], {})  # older: no change
    store.apply([Located(0, 3, bar, b"ES")], {})  # the same bar again
    assert store.last_event() == 7
    store.apply([Located(0, 9, grown, b"ES")], {})  # the bar grew: one change
    events = store.events(0, 100)
    assert [e.kind for e in events] == [
        "command",
        "ack",
        "ack",
        "bar",
        "signal",
        "indicators",
        "status",
        "bar",
    ]
    assert events[-1].message == KeyedBar("ES", grown)
    assert store.command(command.command_id) == store.commands(limit=5).items[0]
    assert [a.by for a in store.commands(limit=5).items[0].acks] == ["agents/y", "executor/x"]
    assert store.all_commands() == [command]
    assert store.bars("ES", MIN, since=0, until=None, limit=10) == [grown]
    assert store.marks()["ES"][1] == NS + MIN  # the bar's end
    assert store.last_signal("s1", "ES") == signal
    assert store.signalled_symbols("s1") == ["ES"]
    assert store.signals(limit=5).items == [signal]
    assert store.indicators("ES", MIN, strategy=None, since=0, until=None, limit=5) == [marks]
    assert store.latest_indicators("s1", "ES") == marks
    assert store.statuses() == [status]
    assert store.instruments(limit=5, underlying="ES").items == [instrument]
    assert store.dead_letters(5) == (1, [dead])
    assert store.offsets() == {("control", 0): 8}
    assert store.writable()
    assert store.version == 5
