"""The fake Databento servers, driven through the real `databento` SDK (never patched)."""

import gc
import random
import threading
import time
from pathlib import Path

import databento as db
import databento_dbn as dbn
import pandas as pd
import pytest
from databento.common.error import BentoClientError, BentoError, BentoServerError

from tests.fakes.databento_historical import FakeHistoricalServer
from tests.fakes.databento_live import FAKE_API_KEY, FakeLiveGateway, load_dbn

DATASET = "GLBX.MDP3"
TRADES = "glbx-esu4-20240701.trades.dbn.zst"
WRONG_KEY = "db-SomebodyElsesKey0000000000zzzzz"


@pytest.fixture(autouse=True)
def no_leaked_servers():
    """Every fake started by a test is stopped, its threads joined."""
    yield
    # Finalize the test's SDK clients (`Live.__del__` terminates) now, not inside a later
    # ast.parse: a GC-run finalizer there trips CPython 3.11.7's "AST constructor recursion
    # depth mismatch" SystemError (fixed in 3.11.8) when pytest rewrites a module at exit.
    gc.collect()
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("fake-")]
    assert not leaked, f"server threads still running: {leaked}"


@pytest.fixture
def trades_path(databento_dir: Path) -> Path:
    return databento_dir / TRADES


@pytest.fixture
def trades(trades_path: Path) -> list[bytes]:
    """The file's records as the SDK reads them (DBN v3), raw."""
    return [bytes(r) for r in load_dbn(trades_path).records]


class Collector:
    """A `Live` callback that keeps what arrives, for polling from the test thread."""

    def __init__(self) -> None:
        self.records: list[dbn.DBNRecord] = []

    def __call__(self, record: dbn.DBNRecord) -> None:
        self.records.append(record)

    def of(self, kind: type) -> list:
        return [r for r in list(self.records) if isinstance(r, kind)]

    def data(self) -> list[bytes]:
        return [bytes(r) for r in self.of(dbn.TradeMsg)]

    def heartbeats(self) -> int:
        return sum(1 for r in self.of(dbn.SystemMsg) if r.is_heartbeat())


def live_client(gw: FakeLiveGateway, **kwargs) -> tuple[db.Live, Collector]:
    client = db.Live(
        key=kwargs.pop("key", FAKE_API_KEY), gateway="127.0.0.1", port=gw.port, **kwargs
    )
    collector = Collector()
    client.add_callback(collector)
    return client, collector


# -- live ---------------------------------------------------------------------------------------


def test_live_streams_every_record_of_the_file(trades_path, trades, poll):
    with FakeLiveGateway.from_files(trades_path) as gw:
        client, got = live_client(gw)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols=["ESU4"])
            client.start()
            poll(lambda: len(got.data()) >= len(trades), timeout_s=10, what="every trade")
            metadata = client.metadata
        finally:
            client.terminate()

    assert got.data() == trades
    assert metadata.dataset == DATASET
    assert metadata.version == dbn.DBN_VERSION
    # Before any data: the ack, then the symbol mapping the SDK builds its symbology map from.
    acks = [r for r in got.of(dbn.SystemMsg) if r.code == dbn.SystemCode.SUBSCRIPTION_ACK]
    assert len(acks) == 1
    assert got.records.index(acks[0]) < got.records.index(got.of(dbn.TradeMsg)[0])
    assert client.symbology_map == {118: "ESU4"}
    (sub,) = gw.subscriptions
    assert (sub.schema, sub.stype_in, sub.symbols, sub.start) == (
        "trades",
        "raw_symbol",
        ("ESU4",),
        None,
    )
    assert (sub.id, sub.is_last, sub.snapshot) == (0, True, False)
    (auth,) = gw.auth_requests
    assert auth["dataset"] == DATASET
    assert (auth["encoding"], auth["compression"], auth["ts_out"]) == ("dbn", "none", "0")
    assert auth["heartbeat_interval_s"] == "30"  # what the SDK sends when given none
    assert (gw.sessions, gw.auth_attempts, gw.auth_failures, gw.starts) == (1, 1, 0, 1)


def test_live_zstd_and_ts_out_as_negotiated(trades_path, trades, poll):
    with FakeLiveGateway.from_files(trades_path) as gw:
        client, got = live_client(gw, ts_out=True, compression=dbn.Compression.ZSTD)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
            before = time.time_ns()
            client.start()
            poll(lambda: len(got.data()) >= len(trades), timeout_s=10, what="every trade")
        finally:
            client.terminate()
    received = got.of(dbn.TradeMsg)
    # With ts_out each record carries 8 more bytes (the send time) and a longer length byte.
    assert [bytes(r)[1 : len(t)] for r, t in zip(received, trades, strict=True)] == [
        t[1:] for t in trades
    ]
    assert all(before <= r.ts_out <= time.time_ns() for r in received)
    assert gw.auth_requests[0]["compression"] == "zstd"


@pytest.mark.parametrize("key", [WRONG_KEY, FAKE_API_KEY[:-5] + "zzzzz"], ids=["key", "bucket"])
def test_live_wrong_key_raises_the_sdk_auth_error(trades_path, key):
    with FakeLiveGateway.from_files(trades_path) as gw:
        client, _ = live_client(gw, key=key)
        with pytest.raises(BentoError, match=r"^Authentication failed\.$"):
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
        assert (gw.auth_attempts, gw.auth_failures, gw.starts) == (1, 1, 0)


def test_live_without_start_sends_only_what_happens_from_now(trades_path, trades, poll):
    records = load_dbn(trades_path).records
    with FakeLiveGateway.from_files(trades_path, now_ns=records[59].ts_recv) as gw:
        client, got = live_client(gw)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
            client.start()
            poll(lambda: len(got.data()) >= 60, timeout_s=10, what="records after now")
        finally:
            client.terminate()
    assert got.data() == trades[60:]


def test_live_intraday_replay_from_start_returns_the_suffix(trades_path, trades, poll):
    records = load_dbn(trades_path).records
    start = records[70].ts_event
    expected = [bytes(r) for r in records if r.ts_event >= start]  # replay filters on ts_event
    with FakeLiveGateway.from_files(trades_path, now_ns=records[-1].ts_recv) as gw:
        client, got = live_client(gw)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4", start=start)
            client.start()
            poll(
                lambda: any(
                    r.code == dbn.SystemCode.REPLAY_COMPLETED for r in got.of(dbn.SystemMsg)
                ),
                timeout_s=10,
                what="replay completed",
            )
            metadata = client.metadata
        finally:
            client.terminate()
    assert got.data() == expected
    assert gw.start_values == [start]
    assert metadata.start == start


def test_live_replay_window_leaves_an_unfillable_gap(trades_path, trades, poll):
    records = load_dbn(trades_path).records
    now = records[-1].ts_recv
    window = now - records[100].ts_event  # only the last 20 records are still retained
    with FakeLiveGateway.from_files(trades_path, now_ns=now, replay_window_ns=window) as gw:
        client, got = live_client(gw)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4", start=0)
            client.start()
            poll(lambda: len(got.data()) >= 20, timeout_s=10, what="retained records")
            metadata = client.metadata
        finally:
            client.terminate()
    assert got.data() == [bytes(r) for r in records if r.ts_event >= now - window]
    assert got.data()[0] == trades[100]
    assert metadata.start == now - window  # where replay really began, after the gap


def test_live_paced_release_emits_records_on_demand(trades_path, trades, poll):
    with FakeLiveGateway.from_files(trades_path, pacing="manual", heartbeat_s=0.05) as gw:
        client, got = live_client(gw)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
            client.start()
            # A heartbeat means the gateway had nothing to send: no record before a release.
            poll(lambda: got.heartbeats() >= 1, timeout_s=5, what="first heartbeat")
            assert got.data() == []
            gw.release(5)
            poll(lambda: len(got.data()) >= 5, timeout_s=5, what="five records")
            seen = got.heartbeats()
            poll(lambda: got.heartbeats() > seen, timeout_s=5, what="idle again")
            assert got.data() == trades[:5]
            gw.release(3)
            poll(lambda: len(got.data()) >= 8, timeout_s=5, what="three more")
        finally:
            client.terminate()
    assert got.data() == trades[:8]
    assert gw.released == 8


def test_live_heartbeats_at_the_negotiated_interval(trades_path, poll):
    with FakeLiveGateway.from_files(trades_path, pacing="manual") as gw:
        client, got = live_client(gw, heartbeat_interval_s=1)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
            started = time.monotonic()
            client.start()
            poll(lambda: got.heartbeats() >= 2, timeout_s=5, what="two heartbeats")
            elapsed = time.monotonic() - started
        finally:
            client.terminate()
    assert gw.auth_requests[0]["heartbeat_interval_s"] == "1"
    # Two heartbeats cannot come sooner than 1.5 intervals; the poll's deadline bounds it above
    # (a slow machine only makes this later, never earlier: no timing flake).
    assert elapsed >= 1.5
    assert got.data() == []


def test_live_reset_surfaces_as_a_bento_error(trades_path, trades):
    with FakeLiveGateway.from_files(trades_path) as gw:
        gw.drop_after(10, how="reset", mid_record=True)
        client, got = live_client(gw)
        client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
        client.start()
        # The SDK (0.88, reconnect_policy none) ends the session and raises from block_for_close.
        with pytest.raises(BentoError, match="Connection reset by peer"):
            client.block_for_close(timeout=10)
    # A reset can lose what was in flight, never invents: a prefix, whole records only.
    assert 1 <= len(got.data()) <= 10
    assert got.data() == trades[: len(got.data())]
    assert gw.drops == 1


def test_live_graceful_close_mid_record_ends_silently(trades_path, trades):
    with FakeLiveGateway.from_files(trades_path) as gw:
        gw.drop_after(10, how="close", mid_record=True)
        client, got = live_client(gw)
        client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4")
        client.start()
        # A FIN looks like a normal end to the SDK: no exception, the half record dropped.
        client.block_for_close(timeout=10)
    assert got.data() == trades[:10]
    assert not client.is_connected()


def test_live_sdk_reconnect_policy_resubscribes_without_replay(trades_path, trades, poll):
    """What the SDK's own reconnect does: a new session, live only, and a gap callback."""
    with FakeLiveGateway.from_files(trades_path, pacing="manual") as gw:
        gw.release(5)
        gw.drop_after(3)
        client, got = live_client(gw, reconnect_policy="reconnect")
        gaps = []
        client.add_reconnect_callback(lambda start, end: gaps.append((start.value, end.value)))
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4", start=0)
            client.start()
            poll(lambda: gw.starts >= 2, timeout_s=10, what="the SDK's second session")
            poll(lambda: gaps or None, timeout_s=5, what="the reconnect callback")
            gw.release(2)
            poll(lambda: len(got.data()) >= 5, timeout_s=5, what="records after reconnect")
        finally:
            client.terminate()
    assert gw.start_values == [0, None]  # the SDK drops the replay start when it reconnects
    assert got.data() == trades[:3] + trades[5:7]  # records 3 and 4 are lost: the gap
    load = load_dbn(trades_path).records
    assert gaps == [(load[2].ts_event, load[4].ts_recv)]  # last ts_event seen, new session start


def test_live_unknown_symbol_is_reported_and_the_rest_streams(trades_path, trades, poll):
    with FakeLiveGateway.from_files(trades_path) as gw:
        client, got = live_client(gw)
        try:
            client.subscribe(dataset=DATASET, schema="trades", symbols=["ESU4", "NOPE5"])
            client.start()
            poll(lambda: len(got.data()) >= len(trades), timeout_s=10, what="every trade")
        finally:
            client.terminate()
    (error,) = got.of(dbn.ErrorMsg)
    assert error.code == dbn.ErrorCode.SYMBOL_RESOLUTION_FAILED
    assert "NOPE5" in error.err
    assert got.data() == trades


def test_live_unknown_schema_is_fatal(trades_path):
    with FakeLiveGateway.from_files(trades_path) as gw:
        client, got = live_client(gw)
        client.subscribe(dataset=DATASET, schema="mbo", symbols="ESU4")
        client.start()
        # The gateway closes after a fatal ErrorMsg; the SDK raises it when the session ends.
        with pytest.raises(BentoError, match="Invalid subscription: schema mbo"):
            client.block_for_close(timeout=10)
    (error,) = got.of(dbn.ErrorMsg)
    assert error.code == dbn.ErrorCode.INVALID_SUBSCRIPTION


def test_live_random_drops_recovered_by_replay_from_the_last_ts_event(trades_path, trades, poll):
    """The producer's pattern: reconnect with start = last ts_event, drop what was seen again."""
    rng = random.Random(7)
    plan = [(rng.randrange(2, 40), rng.choice(["reset", "close"])) for _ in range(8)]
    with FakeLiveGateway.from_files(trades_path) as gw:
        for n, how in plan:
            gw.drop_after(n, how=how, mid_record=True)
        kept: list[bytes] = []
        last_ts: int | None = None
        while len(kept) < len(trades):
            client, got = live_client(gw)
            client.subscribe(dataset=DATASET, schema="trades", symbols="ESU4", start=last_ts)
            client.start()
            poll(
                lambda c=client, g=got: not c.is_connected() or g.data()[-1:] == trades[-1:],
                timeout_s=10,
                what="the session to end or catch up",
            )
            client.terminate()
            for rec in got.of(dbn.TradeMsg):
                if bytes(rec) not in kept:  # real data has no byte-identical records
                    kept.append(bytes(rec))
                    last_ts = rec.ts_event
    assert kept == trades
    assert gw.drops == len(plan)
    assert gw.start_values[0] is None
    assert all(s is not None for s in gw.start_values[1:])
    assert gw.sessions == len(plan) + 1


# -- historical ---------------------------------------------------------------------------------


@pytest.fixture
def historical(trades_path, monkeypatch):
    with FakeHistoricalServer.from_files(trades_path) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def test_historical_get_range_returns_the_files_records(historical, trades):
    client = db.Historical(key=FAKE_API_KEY, gateway=historical.url)
    store = client.timeseries.get_range(
        dataset=DATASET, schema="trades", symbols=["ESU4"], start="2024-07-01", end="2024-07-03"
    )
    assert [bytes(r) for r in store] == trades
    assert store.metadata.mappings["ESU4"][0]["symbol"] == "118"
    assert list(store.to_df()["symbol"].unique()) == ["ESU4"]
    (request,) = historical.requests
    assert request.authorized
    assert (request.path, request.fields["encoding"], request.fields["compression"]) == (
        "/v0/timeseries.get_range",
        "dbn",
        "zstd",
    )


def test_historical_filters_by_time_and_honours_limit(historical, trades_path, trades):
    records = load_dbn(trades_path).records
    client = db.Historical(key=FAKE_API_KEY, gateway=historical.url)
    # start inclusive, end exclusive, both on ts_recv where the schema has it
    store = client.timeseries.get_range(
        dataset=DATASET, symbols="ESU4", start=records[10].ts_recv, end=records[20].ts_recv
    )
    assert [bytes(r) for r in store] == trades[10:20]
    limited = client.timeseries.get_range(
        dataset=DATASET, symbols="ESU4", start=records[10].ts_recv, limit=7
    )
    assert [bytes(r) for r in limited] == trades[10:17]


def test_historical_client_errors_carry_the_message(historical):
    client = db.Historical(key=FAKE_API_KEY, gateway=historical.url)
    with pytest.raises(BentoClientError, match="Schema 'mbo' is not available") as info:
        client.timeseries.get_range(
            dataset=DATASET, schema="mbo", symbols="ESU4", start="2024-07-01"
        )
    assert info.value.http_status == 422
    stranger = db.Historical(key=WRONG_KEY, gateway=historical.url)
    with pytest.raises(BentoClientError, match="Authentication failed") as info:
        stranger.timeseries.get_range(dataset=DATASET, symbols="ESU4", start="2024-07-01")
    assert info.value.http_status == 401


def test_historical_server_errors_then_success(historical, trades):
    client = db.Historical(key=FAKE_API_KEY, gateway=historical.url)
    historical.fail_next(2, status=503, detail="Service unavailable, retry.")
    for _ in range(2):
        with pytest.raises(BentoServerError, match="retry") as info:
            client.timeseries.get_range(dataset=DATASET, symbols="ESU4", start=0)
        assert info.value.http_status == 503
    store = client.timeseries.get_range(dataset=DATASET, symbols="ESU4", start=0)
    assert [bytes(r) for r in store] == trades
    assert [r.status for r in historical.requests] == [503, 503, 200]


def test_historical_stream_cut_is_detected(historical, trades, tmp_path):
    client = db.Historical(key=FAKE_API_KEY, gateway=historical.url)
    whole = tmp_path / "whole.dbn.zst"
    client.timeseries.get_range(dataset=DATASET, symbols="ESU4", start=0, path=whole)
    historical.cut_next(700)
    partial = tmp_path / "partial.dbn.zst"
    # The body ends without its last chunk: requests raises, the SDK wraps it as a BentoError.
    with pytest.raises(BentoError, match="Error streaming response: Response ended prematurely"):
        client.timeseries.get_range(dataset=DATASET, symbols="ESU4", start=0, path=partial)
    # What the SDK had written stays on disk: a prefix, never more than was sent.
    assert whole.read_bytes().startswith(partial.read_bytes())
    assert 0 < partial.stat().st_size <= 700 < whole.stat().st_size
    store = client.timeseries.get_range(dataset=DATASET, symbols="ESU4", start=0)
    assert [bytes(r) for r in store] == trades


def test_historical_dataset_range(historical, trades_path):
    records = load_dbn(trades_path).records
    client = db.Historical(key=FAKE_API_KEY, gateway=historical.url)
    span = client.metadata.get_dataset_range(DATASET)
    first, end = records[0].ts_recv, records[-1].ts_recv + 1  # end is exclusive
    assert pd.Timestamp(span["start"]).value == first
    assert pd.Timestamp(span["schema"]["trades"]["end"]).value == end
