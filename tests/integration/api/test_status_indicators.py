"""Processes' status, the strategies' indicators and instruments, from their topics to the API:
shown as the messages say, judged live (silent, stopped), and unchanged by a replay."""

import time
from pathlib import Path

import pytest

from producers.pipeline import produce_file
from tests.conftest import poll_until
from tests.integration.api.harness import Api
from tests.integration.executors.scenario import create_topics, producer
from ticklane import wire
from ticklane.market import Bar
from ticklane.settings import Settings
from ticklane.status import ProcessState, ProcessStatus
from ticklane.topics import resolve
from ticklane.trading import Indicators

pytestmark = [pytest.mark.integration]

SECOND = 1_000_000_000
T0 = 1_719_840_600 * SECOND


def statuses(now: int) -> list[ProcessStatus]:
    interval = 5 * SECOND
    return [
        ProcessStatus("executor", "executor/ex@h", ProcessState.RUNNING, now, interval),
        ProcessStatus(
            "agents", "agents/a@h", ProcessState.DEGRADED, now, interval, "3 lost", -1, {"k": "v"}
        ),
        # Last heard from a minute ago: silent, whatever it said.
        ProcessStatus(
            "producer", "producer/p@h", ProcessState.RUNNING, now - 60 * SECOND, interval
        ),
        ProcessStatus("api", "api/8080@h", ProcessState.STOPPED, now - 600 * SECOND, interval),
    ]


def snapshots() -> list[Indicators]:
    return [
        Indicators(
            "ema_cross",
            "ES",
            SECOND,
            T0 + i * SECOND,
            {"ema_3": 5_000 * SECOND + i * 250_000_000, "ema_8": None if i < 7 else 4_999 * SECOND},
        )
        for i in range(10)
    ] + [Indicators("supertrend", "ES", SECOND, T0, {"supertrend_10_3": None}, {})]


def send_all(settings: Settings) -> None:
    out = producer(settings)
    for status in statuses(time.time_ns()):
        out.produce(
            resolve(settings.topics, "status"), key=status.key.encode(), value=wire.encode(status)
        )
    for snap in snapshots():
        out.produce(resolve(settings.topics, "indicators"), key=b"ES", value=wire.encode(snap))
    bar = Bar(T0, SECOND, 5_000 * SECOND, 5_001 * SECOND, 4_999 * SECOND, 5_000 * SECOND, 7)
    out.produce(resolve(settings.topics, "bars.1s"), key=b"ES", value=wire.encode(bar))
    assert out.flush(10) == 0


def test_processes_indicators_and_instruments_as_their_topics_say(
    settings: Settings, tmp_path: Path, databento_dir: Path
) -> None:
    create_topics(settings)
    for name in (
        "glbx-es-20240701.definition.dbn.zst",
        "glbx-esm4-options-20240509.definition.dbn.zst",
    ):
        produce_file(databento_dir / name, settings)
    send_all(settings)
    api = Api(settings, tmp_path / "api.sqlite")
    try:
        client = api.client

        def processes() -> dict[str, dict[str, object]] | None:
            found = {p["process"]: p for p in client.get("/api/v1/processes").json()}
            return found if len(found) == 4 else None

        shown = poll_until(processes, what="four processes")
        assert {k: v["health"] for k, v in shown.items()} == {
            "executor": "up",
            "agents": "degraded",
            "producer": "silent",
            "api": "stopped",
        }
        assert shown["agents"]["reason"] == "3 lost"
        assert shown["agents"]["details"] == {"k": "v"}
        assert shown["agents"]["lag"] is None
        assert shown["producer"]["seconds_since"] >= 60

        def points() -> list[dict[str, object]] | None:
            query = {"symbol": "ES", "interval": "1s", "strategy": "ema_cross", "limit": 100}
            found = client.get("/api/v1/indicators", params=query).json()["points"]
            return found if len(found) == 10 else None

        got = poll_until(points, what="ten indicator points")
        assert [p["ts_event"] for p in got] == [T0 + i * SECOND for i in range(10)]
        assert got[0]["values"] == {"ema_3": "5000", "ema_8": None}
        assert got[9]["values"] == {"ema_3": "5002.25", "ema_8": "4999"}
        every = {"symbol": "ES", "interval": "1s", "limit": 100}
        both = client.get("/api/v1/indicators", params=every).json()
        assert len(both["points"]) == 11
        page = client.get(
            "/api/v1/indicators",
            params={"symbol": "ES", "interval": "1s", "strategy": "ema_cross", "limit": 4},
        ).json()
        assert len(page["points"]) == 4
        assert page["next_since"] == T0 + 4 * SECOND

        def instruments() -> list[dict[str, object]] | None:
            found = client.get("/api/v1/instruments", params={"limit": 1000}).json()["items"]
            return found if len(found) == 4 else None

        listed = poll_until(instruments, what="four instruments")
        assert [i["symbol"] for i in listed] == sorted(i["symbol"] for i in listed)
        puts = client.get("/api/v1/instruments", params={"underlying": "ESM4"}).json()["items"]
        assert len(puts) == 2
        assert all(p["instrument_class"] == "put" for p in puts)
        assert sorted(p["strike"] for p in puts) == ["5230", "5250"]
        # CME options tick by a price table, so their definitions leave the tick undefined.
        assert {p["tick_size"] for p in puts} == {None}
        futures = {i["symbol"]: i for i in listed if i["instrument_class"] == "future"}
        # The real CME definitions: $50 and $20 a point, a quarter-point tick, Sept. 20 2024.
        assert {s: f["multiplier"] for s, f in futures.items()} == {"ESU4": "50", "NQU4": "20"}
        assert {f["tick_size"] for f in futures.values()} == {"0.25"}
        assert {f["expiration"] for f in futures.values()} == {1_726_839_000_000_000_000}
        first = client.get("/api/v1/instruments", params={"limit": 3}).json()
        rest = client.get(
            "/api/v1/instruments", params={"limit": 3, "cursor": first["next_cursor"]}
        ).json()
        assert [i["symbol"] for i in first["items"] + rest["items"]] == [
            i["symbol"] for i in listed
        ]
        assert rest["next_cursor"] == ""

        # The same messages again change nothing, and nothing new reaches the stream.
        events = api.store.last_event()
        before = client.get("/api/v1/indicators", params=every).json()
        send_all(settings)  # new heartbeats (newer times) do change the processes, as they should
        poll_until(lambda: api.store.last_event() > events, what="the new heartbeats")
        after = client.get("/api/v1/indicators", params=every).json()
        assert after == before
        kinds = [e.kind for e in api.store.events(events, 100)]
        assert set(kinds) == {"status"}
    finally:
        api.close()
