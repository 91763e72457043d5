"""The API against a real broker: the executor's positions, orders and fills, materialized.

An executor runs a seeded scenario on the paper venue; the API reads its topics into its own
store. Checked: what the API answers equals the executor's ledger, within a second of the
executor's last event; replayed messages change nothing; a restarted API (after SIGKILL too)
and a new one with an empty store give the same answers; and nothing a client sends, per the
API's own OpenAPI document, makes a 5xx or a response outside the schema.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient

from api.app import ApiState, create_app
from api.materializer import Materializer
from api.metrics import ApiMetrics
from api.service import URL_FILE
from api.store import Store
from executors.stores import open_sqlite, sqlite_path
from tests.conftest import poll_until
from tests.integration.executors.scenario import (
    Scenario,
    create_topics,
    produce_market_data,
    produce_signals,
    producer,
    run_until_done,
)
from ticklane import wire
from ticklane.settings import Settings
from ticklane.topics import resolve
from ticklane.trading import Fill, Side

pytestmark = [pytest.mark.integration]

TICKLANE = str(Path(sys.executable).with_name("ticklane"))


class Api:
    """A store, a materializer in a thread and a test client over the app."""

    def __init__(self, settings: Settings, path: Path) -> None:
        self.store = Store(path)
        self.metrics = ApiMetrics()
        bootstrap = str(settings.kafka.bootstrap_servers)
        self.materializer = Materializer(settings, bootstrap, self.store, self.metrics)
        self.state = ApiState(self.store, self.metrics, self.materializer, page_size=7)
        self.app = create_app(self.state)
        self.client = TestClient(self.app)
        self._stop = threading.Event()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self.materializer.run, args=(self._stop, started.set), daemon=True
        )
        self._thread.start()
        assert started.wait(30), "the materializer did not start"

    def caught_up(self) -> bool:
        self.materializer.refresh_lag()
        return self.materializer.behind() == 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.materializer.close()
        self.store.close()


def answers(client: TestClient | httpx.Client) -> dict[str, list[dict[str, object]]]:
    """Everything the API says: positions, and every page of orders and fills."""
    result: dict[str, list[dict[str, object]]] = {}
    response = client.get("/api/v1/positions")
    assert response.status_code == 200, response.text
    result["positions"] = response.json()
    for kind in ("orders", "fills"):
        items: list[dict[str, object]] = []
        cursor = ""
        while True:
            page = client.get(f"/api/v1/{kind}", params={"cursor": cursor} if cursor else {})
            assert page.status_code == 200, page.text
            body = page.json()
            items += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                break
        result[kind] = items
    return result


def ledger_view(settings: Settings) -> tuple[dict[tuple[str, str], int], dict[str, str], set[str]]:
    """The executor's truth: positions, each order's status, the fill ids."""
    ledger = open_sqlite(sqlite_path(settings))
    try:
        positions = {
            (h.position.strategy, h.position.symbol): h.position.quantity for h in ledger.holdings()
        }
        orders = {o.client_order_id: o.status.value for o in ledger.all_orders()}
        fills = {f.fill_id for f in ledger.fills()}
    finally:
        ledger.close()
    return positions, orders, fills


def api_view(
    said: dict[str, list[dict[str, object]]],
) -> tuple[dict[tuple[str, str], int], dict[str, str], set[str]]:
    positions = {
        (str(p["strategy"]), str(p["symbol"])): int(str(p["quantity"])) for p in said["positions"]
    }
    orders = {str(o["client_order_id"]): str(o["status"]) for o in said["orders"]}
    fills = {str(f["fill_id"]) for f in said["fills"]}
    return positions, orders, fills


@pytest.fixture
def traded(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Api]]:
    """An API started first, then an executor that trades a scenario to its end."""
    scenario = Scenario(symbols=("AAA", "BBB"), signals_per_symbol=10)
    create_topics(settings)
    api = Api(settings, tmp_path / "api" / "api.sqlite")
    try:
        produce_market_data(settings, scenario)
        produce_signals(producer(settings), settings, scenario.signals)
        run_until_done(settings, scenario)
        finished = time.monotonic()
        truth = ledger_view(settings)
        poll_until(lambda: api_view(answers(api.client)) == truth, timeout_s=10, what="the API")
        # Every event was in Kafka when the executor stopped: the API had it within a second.
        assert time.monotonic() - finished < 1.0
        yield settings, api
    finally:
        api.close()


def test_the_api_answers_what_the_executor_did_and_a_replay_changes_nothing(traded, read_topic):
    settings, api = traded
    before = answers(api.client)
    assert before["orders"]
    assert before["fills"]
    assert before["positions"]
    # Every message of the three topics again, as a redelivery would.
    again = producer(settings)
    for base in ("positions", "orders", "fills"):
        topic = resolve(settings.topics, base)
        for partition, _, key, value in read_topic(topic):
            again.produce(topic, key=key, value=value, partition=partition)
    assert again.flush(30) == 0
    poll_until(api.caught_up, timeout_s=10, what="the replay read")
    assert answers(api.client) == before
    assert api.client.get("/ready").json() == {"ready": True, "behind": 0, "reasons": []}
    metrics = api.client.get("/metrics").text
    assert 'ticklane_api_materialized_events_total{kind="fill"}' in metrics
    assert 'ticklane_api_requests_total{route="/api/v1/orders",status="200"}' in metrics


def test_a_restarted_api_and_a_new_one_give_the_same_answers(traded, tmp_path):
    settings, api = traded
    before = answers(api.client)
    path = api.store.path
    api.close()
    restarted = Api(settings, path)
    try:
        assert answers(restarted.client) == before  # from its store, at once
    finally:
        restarted.close()
    fresh = Api(settings, tmp_path / "fresh" / "api.sqlite")
    try:
        poll_until(lambda: answers(fresh.client) == before, timeout_s=10, what="the rebuild")
    finally:
        fresh.close()


def test_the_api_process_killed_with_sigkill_restarts_with_the_same_answers(traded, cli_env):
    _, api = traded
    before = answers(api.client)
    data = Path(cli_env["TICKLANE_DATA_DIR"])
    url_file = data / "api" / URL_FILE

    def start() -> tuple[subprocess.Popen[bytes], httpx.Client]:
        process = subprocess.Popen(
            [TICKLANE, "api", "--port", "0"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = poll_until(
            lambda: url_file.exists() and url_file.read_text().strip(),
            timeout_s=30,
            what="the API's URL",
        )
        return process, httpx.Client(base_url=str(url), timeout=10)

    process, client = start()
    try:
        poll_until(lambda: answers(client) == before, timeout_s=15, what="the API process")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        client.close()
    assert process.returncode == -signal.SIGKILL
    url_file.unlink()  # a killed process leaves its URL behind
    process, client = start()
    try:
        assert answers(client) == before  # from the store it left, before any new read
        assert client.get("/health").json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        client.close()


def read_events(response: httpx.Response, count: int) -> list[tuple[int, str, dict[str, object]]]:
    """The next `count` events of an SSE response, as (id, event, data)."""
    found: list[tuple[int, str, dict[str, object]]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if "id" in fields:
            found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            if len(found) == count:
                break
        fields = {}
    return found


def test_a_stream_client_away_for_3s_gets_every_change_it_missed_once(traded, cli_env):
    settings, api = traded
    url_file = Path(cli_env["TICKLANE_DATA_DIR"]) / "api" / URL_FILE
    process = subprocess.Popen(
        [TICKLANE, "api", "--port", "0"], env=cli_env, stdout=subprocess.DEVNULL
    )
    try:
        url = poll_until(
            lambda: url_file.exists() and url_file.read_text().strip(), what="the API's URL"
        )
        client = httpx.Client(base_url=str(url), timeout=httpx.Timeout(10, read=30))
        poll_until(lambda: answers(client) == answers(api.client), what="the API caught up")
        backlog = api.store.last_event()  # this API's count of changes; the other's is equal
        with client.stream("GET", "/api/v1/stream", params={"after": 0}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen = read_events(response, backlog)
        ids = [event_id for event_id, _, _ in seen]
        assert ids == sorted(set(ids))
        away = time.monotonic()
        # While it is away: five new fills reach the topic and the API.
        out = producer(settings)
        new = [fill_for_stream(i) for i in range(5)]
        for made in new:
            out.produce(
                resolve(settings.topics, "fills"), key=made.symbol.encode(), value=wire.encode(made)
            )
        assert out.flush(10) == 0

        def back() -> bool:
            got = {f["fill_id"] for f in answers(client)["fills"]}
            return time.monotonic() - away >= 3.0 and {f.fill_id for f in new} <= got

        poll_until(back, what="3 s away, and the new fills in the API")
        headers = {"Last-Event-ID": str(ids[-1])}
        with client.stream("GET", "/api/v1/stream", headers=headers) as response:
            missed = read_events(response, len(new))
        assert [kind for _, kind, _ in missed] == ["fill"] * len(new)
        assert {data["fill_id"] for _, _, data in missed} == {f.fill_id for f in new}
        assert [event_id for event_id, _, _ in missed] == list(range(ids[-1] + 1, ids[-1] + 6))
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def fill_for_stream(n: int) -> Fill:
    return Fill(
        f"stream-fill-{n}", "c-stream", "v-stream", "ZZZ", Side.BUY, 1, 10**9, 1 + n, strategy="s"
    )


def test_nothing_a_client_sends_makes_a_5xx_or_breaks_the_schema(traded):
    _, api = traded
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # The live stream never ends, so a generated call to it would never return; its own test
    # above checks it.
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path != "/api/v1/stream"
    ]
    assert len(operations) >= 8
    calls: dict[str, int] = {}
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            # Every check but "valid data accepted": a cursor is any text by the schema, and
            # one the API did not make is refused with a 400 that says so.
            case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])

        check()
    assert set(calls) == {operation.label for operation in operations}
