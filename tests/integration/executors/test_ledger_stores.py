"""The ledger contract on both stores: SQLite and PostgreSQL (the session's server, new schema)."""

import uuid

import msgspec
import psycopg
import pytest
from psycopg import sql

from executors.ledger import DuplicateOrderError, SendState
from executors.positions import apply_fill, open_holding
from executors.stores import LedgerLockedError, open_postgres, open_sqlite
from ticklane import ids, wire
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Side, Signal

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request, tmp_path):
    if request.param == "sqlite":
        yield lambda **kw: open_sqlite(tmp_path / "ledger.sqlite", **kw)
        return
    dsn = request.getfixturevalue("postgres_dsn")
    schema = f"ledger_{uuid.uuid4().hex[:12]}"
    yield lambda **kw: open_postgres(dsn, schema, **kw)
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def order_for(signal: Signal, status=OrderStatus.PENDING_SUBMIT) -> Order:
    return Order(
        client_order_id=ids.client_order_id(signal.signal_id, 0),
        signal_id=signal.signal_id,
        strategy=signal.strategy,
        symbol=signal.symbol,
        side=Side.BUY,
        quantity=2,
        order_type=OrderType.MARKET,
        status=status,
        ts_event=signal.ts_event,
    )


def fill_of(order: Order, fill_id: str, venue_order_id: str, ts_event: int = 1_001) -> Fill:
    """A fill of the whole order, at 10."""
    return Fill(
        fill_id=fill_id,
        client_order_id=order.client_order_id,
        venue_order_id=venue_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        price=10 * 10**9,
        ts_event=ts_event,
        strategy=order.strategy,
    )


def test_write_ahead_orders_fills_and_holdings_survive_a_reopen(opener):
    ledger = opener()
    signal = Signal.create("s", "ES", 1_000, 2)
    order = order_for(signal)
    assert ledger.record_signal(signal, [order], now=5)
    assert not ledger.record_signal(signal, [order], now=6)  # a replayed signal
    with pytest.raises(DuplicateOrderError):
        ledger.record_signal(Signal.create("s", "ES", 2_000, 2), [order], now=7)
    fill = fill_of(order, "fil-1", "v1")
    filled = msgspec.structs.replace(order, status=OrderStatus.FILLED, filled_quantity=2)
    holding = apply_fill(open_holding("s", "ES"), fill, 1)
    assert ledger.save_fill(fill, filled, holding, cursor=3)
    assert not ledger.save_fill(fill, filled, holding, cursor=4)  # fill_id is unique
    ledger.close()

    ledger = opener()
    try:
        assert ledger.cursor() == 4
        assert ledger.has_signal(signal.signal_id)
        assert ledger.unfinished_orders() == []
        assert ledger.order(order.client_order_id) == filled
        assert [h.position.quantity for h in ledger.holdings()] == [2]
        assert ledger.fills() == [fill]
        assert ledger.recent_submits(0) == [5]
        # An entry per transaction: the signal's order, then the fill with its order and holding.
        entries = [[e.topic for e in entry.events] for entry in ledger.outbox(100)]
        assert entries == [["orders"], ["fills", "orders", "positions"]]
        ledger.outbox_done(ledger.outbox(100)[-1].seq)
        assert ledger.outbox(100) == []
    finally:
        ledger.close()


def test_one_executor_per_ledger(opener):
    first = opener()
    try:
        with pytest.raises(LedgerLockedError):
            opener(lock_wait_s=0.2)
    finally:
        first.close()
    opener().close()  # released with its holder


def test_orders_are_found_by_venue_order_id_and_sends_are_counted(opener):
    ledger = opener()
    try:
        signal = Signal.create("s", "ES", 1_000, 2)
        order = order_for(signal)
        assert ledger.record_signal(signal, [order], now=5)
        assert ledger.order_by_venue_id("v-7") is None
        assert ledger.send_state(order.client_order_id) == SendState(5, 1)
        accepted = msgspec.structs.replace(order, status=OrderStatus.ACCEPTED, venue_order_id="v-7")
        ledger.save_order(accepted)
        assert ledger.order_by_venue_id("v-7") == accepted
        assert ledger.order_by_venue_id("") is None
        ledger.save_order(accepted, submitted_at=9)  # a resend
        assert ledger.send_state(order.client_order_id) == SendState(9, 2)
        assert ledger.send_state("ord-none") is None
    finally:
        ledger.close()


def test_a_signals_legs_are_found_and_a_fill_keeps_the_venue_id_an_answer_wrote(opener):
    ledger = opener()
    try:
        signal = Signal.create("s", "ES", 1_000, -2)
        close, reopen = (
            msgspec.structs.replace(
                order_for(signal, OrderStatus.NEW),
                client_order_id=ids.client_order_id(signal.signal_id, leg),
                leg=leg,
            )
            for leg in (0, 1)
        )
        assert ledger.record_signal(signal, [close, reopen], now=5)
        assert ledger.orders_of_signal(signal.signal_id) == [close, reopen]
        assert ledger.orders_of_signal("sig-none") == []
        accepted = msgspec.structs.replace(close, status=OrderStatus.ACCEPTED, venue_order_id="v-1")
        ledger.save_order(accepted)
        done = msgspec.structs.replace(accepted, status=OrderStatus.FILLED, filled_quantity=2)
        fill = fill_of(done, "fil-1", "v-1")
        holding = apply_fill(open_holding("s", "ES"), fill, 1)
        assert ledger.save_fill(fill, done, holding, None)
        assert ledger.order_by_venue_id("v-1") == done
        assert ledger.orders_of_signal(signal.signal_id) == [done, reopen]
    finally:
        ledger.close()


def test_a_ledger_from_before_the_venue_id_column_is_migrated(opener):
    ledger = opener()
    signal = Signal.create("s", "ES", 1_000, 2)
    order = msgspec.structs.replace(order_for(signal), venue_order_id="v-old")
    ledger.record_signal(signal, [order], now=5)
    # Back to the first schema: no venue_order_id column or index, no sends column.
    cur = ledger._db.cursor()
    cur.execute("CREATE INDEX orders_signal ON orders (signal_id)")  # dropped since
    cur.execute("DROP INDEX orders_venue")
    cur.execute("ALTER TABLE orders DROP COLUMN venue_order_id")
    cur.execute("ALTER TABLE orders DROP COLUMN sends")
    ledger._db.commit()
    ledger.close()

    ledger = opener()
    try:
        assert ledger.order_by_venue_id("v-old") == order
        assert ledger.send_state(order.client_order_id) == SendState(5, 1)
        assert ledger.orders_of_signal(signal.signal_id) == [order]
        cur = ledger._db.cursor()
        cur.execute("CREATE INDEX orders_signal ON orders (signal_id)")  # it is gone
        ledger._db.rollback()
    finally:
        ledger.close()


def test_an_outbox_from_before_entries_is_migrated_with_its_events_in_order(opener):
    ledger = opener()
    ledger.close()
    # The first outbox: a row per event. Two events wait in it, unpublished.
    ledger = opener()
    blob = ledger._dialect.blob
    cur = ledger._db.cursor()
    cur.execute("DROP TABLE outbox")
    cur.execute(
        f"CREATE TABLE outbox (seq {ledger._dialect.serial}, topic TEXT NOT NULL,"
        f" key {blob} NOT NULL, value {blob} NOT NULL)"
    )
    insert = ledger._sql("INSERT INTO outbox (topic, key, value) VALUES (?, ?, ?)")
    cur.execute(insert, ("orders", b"ES", b"first"))
    cur.execute(insert, ("fills", b"NQ", b"second"))
    ledger._db.commit()
    ledger.close()

    ledger = opener()
    try:
        entries = ledger.outbox(100)
        waiting = [(e.topic, e.key, e.value) for entry in entries for e in entry.events]
        assert waiting == [("orders", b"ES", b"first"), ("fills", b"NQ", b"second")]
        signal = Signal.create("s", "ES", 1_000, 2)
        assert ledger.record_signal(signal, [order_for(signal)], now=5)
        newest = ledger.outbox(100)[-1]
        assert newest.seq > entries[-1].seq
        assert [e.topic for e in newest.events] == ["orders"]
    finally:
        ledger.close()


def test_a_batch_writes_its_events_as_one_entry_and_a_failed_batch_writes_none(opener):
    ledger = opener()
    try:
        first, second, third = (Signal.create("s", s, 1_000, 2) for s in ("ES", "NQ", "RTY"))

        def failing_batch() -> None:
            with ledger.batch():
                ledger.record_signal(first, [order_for(first)], now=5)
                raise RuntimeError("the batch fails before it commits")

        with pytest.raises(RuntimeError, match="before it commits"):
            failing_batch()
        assert ledger.outbox(100) == []
        with ledger.batch():
            ledger.record_signal(second, [order_for(second)], now=6)
            ledger.record_signal(third, [order_for(third)], now=6)
        [entry] = ledger.outbox(100)
        assert [e.key for e in entry.events] == [b"NQ", b"RTY"]
    finally:
        ledger.close()


def test_a_deferred_signal_recorded_in_a_failed_batch_is_still_deferred_and_taken_out_later(
    opener,
):
    """The ledger keeps in memory which signals may be deferred (a recorded signal costs no
    statement otherwise): a batch rolled back must not leave it believing one taken out."""
    ledger = opener()
    try:
        signal = Signal.create("s", "ES", 1_000, 2)
        assert ledger.defer_signal(signal, now=5) == ""

        def failing_batch() -> None:
            with ledger.batch():
                ledger.record_signal(signal, [order_for(signal)], now=6)
                raise RuntimeError("the batch fails before it commits")

        with pytest.raises(RuntimeError, match="before it commits"):
            failing_batch()
        assert [s.signal_id for s in ledger.deferred_signals()] == [signal.signal_id]
        assert ledger.record_signal(signal, [order_for(signal)], now=7)
        assert ledger.deferred_signals() == []
    finally:
        ledger.close()
    reopened = opener()
    try:
        assert reopened.deferred_signals() == []
        later = Signal.create("s", "ES", 2_000, 3)
        reopened.defer_signal(later, now=8)
        assert reopened.record_signal(later, [order_for(later)], now=9)
        assert reopened.deferred_signals() == []
    finally:
        reopened.close()


def test_a_batch_publishes_each_position_once_its_latest_and_every_order_and_fill(opener):
    """`positions` is compacted state: a commit filling a symbol twice publishes its holding
    once, as it stands after both; orders and fills are events, all of them kept in order."""
    ledger = opener()
    try:
        signals = [Signal.create("s", s, ts, 2) for s, ts in (("ES", 1), ("NQ", 2), ("ES", 3))]
        holdings: dict[str, object] = {}
        with ledger.batch():
            for n, signal in enumerate(signals):
                order = order_for(signal)
                assert ledger.record_signal(signal, [order], now=5)
                fill = fill_of(order, f"fil-{n}", f"v{n}", signal.ts_event)
                before = holdings.get(signal.symbol) or open_holding("s", signal.symbol)
                holdings[signal.symbol] = after = apply_fill(before, fill, 1)
                filled = msgspec.structs.replace(
                    order, status=OrderStatus.FILLED, filled_quantity=2
                )
                assert ledger.save_fill(fill, filled, after, None)
        [entry] = ledger.outbox(100)
        topics = [(e.topic, e.key) for e in entry.events]
        assert [t for t in topics if t[0] != "positions"] == [
            ("orders", b"ES"),
            ("fills", b"ES"),
            ("orders", b"ES"),
            ("orders", b"NQ"),
            ("fills", b"NQ"),
            ("orders", b"NQ"),
            ("orders", b"ES"),
            ("fills", b"ES"),
            ("orders", b"ES"),
        ]
        positions = [e for e in entry.events if e.topic == "positions"]
        assert [wire.decode(p.value).symbol for p in positions] == ["NQ", "ES"]
        assert [wire.decode(p.value).quantity for p in positions] == [2, 4]
    finally:
        ledger.close()
