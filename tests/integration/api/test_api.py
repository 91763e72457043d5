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
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis

from api.auth import save_users
from api.service import URL_FILE
from executors.stores import open_sqlite, sqlite_path
from tests.conftest import poll_until
from tests.integration.api.harness import AS_TRADER, USERS, Api, answers, api_view, ledger_view
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
        truth = ledger_view(settings)
        # How soon is `make bench`'s to measure ("api: a fill in Kafka → in the API").
        poll_until(lambda: api_view(answers(api.client)) == truth, timeout_s=10, what="the API")
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
    poll_until(api.caught_up, timeout_s=30, what="the replay read")
    assert answers(api.client) == before
    assert api.client.get("/ready").json() == {"ready": True, "behind": 0, "reasons": []}
    ledger = open_sqlite(sqlite_path(settings))
    try:
        realized = sum(h.position.realized_pnl for h in ledger.holdings())
    finally:
        ledger.close()
    pnl = api.client.get("/api/v1/pnl").json()
    assert Decimal(pnl["realized"]) * 10**9 == realized  # the executor's own figure, exactly
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
    save_users(data / "api" / "users.json", USERS)

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
        return process, httpx.Client(base_url=str(url), timeout=10, headers=AS_TRADER)

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


def read_events(
    response: httpx.Response, count: int, kind: str | None = None
) -> list[tuple[int, str, dict[str, object]]]:
    """The next events of an SSE response, as (id, event, data): until `count` of them (of
    `kind`, when given) are in."""
    found: list[tuple[int, str, dict[str, object]]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if "id" in fields:
            found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            if sum(1 for _, event, _ in found if kind in (None, event)) == count:
                break
        fields = {}
    return found


def test_a_stream_client_away_for_3s_gets_every_change_it_missed_once(traded, cli_env):
    settings, api = traded
    url_file = Path(cli_env["TICKLANE_DATA_DIR"]) / "api" / URL_FILE
    save_users(url_file.with_name("users.json"), USERS)
    process = subprocess.Popen(
        [TICKLANE, "api", "--port", "0"], env=cli_env, stdout=subprocess.DEVNULL
    )
    try:
        url = poll_until(
            lambda: url_file.exists() and url_file.read_text().strip(), what="the API's URL"
        )
        timeout = httpx.Timeout(10, read=30)
        client = httpx.Client(base_url=str(url), timeout=timeout, headers=AS_TRADER)
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
            missed = read_events(response, len(new), kind="fill")
        # Beside the fills, only the processes' own heartbeats may have come (every 5 s).
        fills = [data for _, kind, data in missed if kind == "fill"]
        assert {kind for _, kind, _ in missed} <= {"fill", "status"}
        assert sorted(data["fill_id"] for data in fills) == sorted(f.fill_id for f in new)
        first = ids[-1] + 1
        assert [event_id for event_id, _, _ in missed] == list(range(first, first + len(missed)))
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def fill_for_stream(n: int) -> Fill:
    return Fill(
        f"stream-fill-{n}", "c-stream", "v-stream", "ZZZ", Side.BUY, 1, 10**9, 1 + n, strategy="s"
    )


@pytest.mark.parametrize("as_user", [True, False], ids=["as-trader", "anonymous"])
def test_nothing_a_client_sends_makes_a_5xx_or_breaks_the_schema(traded, as_user):
    _, api = traded
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # The live stream never ends, so a generated call to it would never return; its own test
    # above checks it.
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path != "/api/v1/stream"
    ]
    assert len(operations) >= 14
    headers = AS_TRADER if as_user else {}
    statuses: dict[str, set[int]] = {}
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # Every check but "valid data accepted": a cursor is any text by the schema, and
            # one the API did not make is refused with a 400 that says so; likewise a
            # strategy name the install does not have.
            response = case.call_and_validate(
                headers=headers,
                excluded_checks=[schemathesis.checks.positive_data_acceptance],
            )
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        check()
    assert set(statuses) == {operation.label for operation in operations}
    if not as_user:
        # Without a key, every read and control is refused, and /health still answers.
        assert statuses["GET /api/v1/orders"] == {401}
        assert statuses["POST /api/v1/controls/flatten"] == {401}
        assert statuses["GET /health"] == {200}
