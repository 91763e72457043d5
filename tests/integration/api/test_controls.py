"""Controls through the API against a real broker: traders only, checked before writing,
sessions with CSRF, limited logins, every call audited, no secret in any log line."""

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.control_feed import ControlFeed
from agents.controls import ControlBook
from executors.service import ExecutorService
from tests.conftest import poll_until
from tests.integration.api.harness import AS_TRADER, PASSWORD, TRADER_KEY, VIEWER_KEY, Api
from tests.integration.executors.scenario import create_topics, producer
from ticklane import wire
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.settings import Settings
from ticklane.topics import resolve

pytestmark = [pytest.mark.integration]

AS_VIEWER = {"Authorization": f"Bearer {VIEWER_KEY}"}
Reader = Callable[[str], list[tuple[int, int, bytes | None, bytes]]]


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    create_topics(settings)
    served = Api(settings, tmp_path / "api.sqlite")
    yield served
    served.close()


def commands(settings: Settings, read_topic: Reader) -> list[ControlCommand]:
    return [
        wire.decode_as(value, ControlCommand)
        for *_, value in read_topic(resolve(settings.topics, "control"))
    ]


def audit(settings: Settings, read_topic: Reader) -> list[dict[str, object]]:
    return [json.loads(value) for *_, value in read_topic(resolve(settings.topics, "audit"))]


def test_a_control_needs_a_trader_and_every_call_is_audited(api, settings, read_topic):
    path = "/api/v1/controls/strategies/ema_cross/disable"
    anonymous = api.client.post(path, json={"symbol": "ES"}, headers={"Authorization": ""})
    viewer = api.client.post(path, json={"symbol": "ES"}, headers=AS_VIEWER)
    trader = api.client.post(path, json={"symbol": "ES"})
    assert (anonymous.status_code, viewer.status_code, trader.status_code) == (401, 403, 200)
    assert "trader" in viewer.json()["detail"]
    [written] = commands(settings, read_topic)
    assert (written.action, written.strategy, written.symbol) == (
        ControlAction.DISABLE,
        "ema_cross",
        "ES",
    )
    assert written.issued_by == "ann"
    assert trader.json()["command_id"] == written.command_id
    trail = audit(settings, read_topic)
    assert [(r["user"], r["status"]) for r in trail] == [("", 401), ("vic", 403), ("ann", 200)]
    assert all(r["path"] == path for r in trail)
    assert trail[-1]["command_id"] == written.command_id


def test_parameters_are_checked_before_anything_is_written(api, settings, read_topic):
    path = "/api/v1/controls/strategies/ema_cross/params"
    unknown = api.client.post(path, json={"params": {"fastest": 3}})
    bad = api.client.post(path, json={"params": {"fast": "many"}})
    crossed = api.client.post(path, json={"params": {"fast": 30, "slow": 10}})
    stranger = api.client.post("/api/v1/controls/strategies/nope/params", json={"params": {}})
    assert [r.status_code for r in (unknown, bad, crossed, stranger)] == [422, 422, 422, 422]
    assert "fastest" in unknown.json()["detail"]
    assert "fast" in bad.json()["detail"]
    assert "nope" in stranger.json()["detail"]
    assert commands(settings, read_topic) == []
    good = api.client.post(path, json={"symbol": "ES", "params": {"fast": 5, "slow": 30}})
    assert good.status_code == 200, good.text
    [written] = commands(settings, read_topic)
    assert written.params == {"fast": 5, "slow": 30}


def test_kill_switch_and_flatten_write_their_commands(api, settings, read_topic):
    halted = api.client.post("/api/v1/controls/kill-switch", json={"state": "halted"})
    flatten = api.client.post("/api/v1/controls/flatten", json={"symbol": "ES"})
    bad = api.client.post("/api/v1/controls/kill-switch", json={"state": "paused"})
    assert (halted.status_code, flatten.status_code, bad.status_code) == (200, 200, 422)
    kill, flat = commands(settings, read_topic)
    assert (kill.action, kill.kill_switch) == (ControlAction.KILL_SWITCH, KillSwitchState.HALTED)
    assert (flat.action, flat.symbol) == (ControlAction.FLATTEN, "ES")


def test_a_session_change_needs_its_csrf_token_and_logout_ends_it(api):
    client = api.client
    client.headers.pop("Authorization")
    assert client.get("/api/v1/positions").status_code == 401
    login = client.post("/api/v1/login", json={"username": "ann", "password": PASSWORD})
    assert login.status_code == 200, login.text
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    token = login.json()["csrf_token"]
    assert client.get("/api/v1/positions").status_code == 200  # reads need no token
    path = "/api/v1/controls/strategies/ema_cross/enable"
    assert client.post(path, json={}).status_code == 403
    assert client.post(path, json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post(path, json={}, headers={"X-CSRF-Token": token}).status_code == 200
    assert client.post("/api/v1/logout").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_failed_logins_are_limited_per_user_and_address(api):
    client = api.client
    for _ in range(5):
        wrong = client.post("/api/v1/login", json={"username": "ann", "password": "guess"})
        assert wrong.status_code == 401
    limited = client.post("/api/v1/login", json={"username": "ann", "password": PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    other = client.post("/api/v1/login", json={"username": "vic", "password": "guess"})
    assert other.status_code == 401  # another user is not locked out by ann's failures


def test_reads_need_a_user_unless_open_and_a_viewer_may_read(api, settings, tmp_path):
    assert api.client.get("/api/v1/orders", headers={"Authorization": ""}).status_code == 401
    assert api.client.get("/api/v1/orders", headers=AS_VIEWER).status_code == 200
    assert api.client.get("/api/v1/me", headers=AS_VIEWER).json() == {
        "user": "vic",
        "role": "viewer",
    }
    unknown = api.client.get("/api/v1/orders", headers={"Authorization": "Bearer tl_forged"})
    assert unknown.status_code == 401
    opened = Api(settings, tmp_path / "open.sqlite", open_reads=True)
    try:
        anonymous = opened.client.get("/api/v1/orders", headers={"Authorization": ""})
        assert anonymous.status_code == 200
        flatten = opened.client.post(
            "/api/v1/controls/flatten", json={}, headers={"Authorization": ""}
        )
        assert flatten.status_code == 401  # open reads never open controls
    finally:
        opened.close()


def test_no_password_or_key_reaches_a_log_line(api, caplog):
    caplog.set_level(logging.DEBUG)
    client = api.client
    client.post("/api/v1/login", json={"username": "ann", "password": PASSWORD})
    client.post("/api/v1/login", json={"username": "ann", "password": PASSWORD + "x"})
    client.get("/api/v1/orders", headers={"Authorization": f"Bearer {TRADER_KEY}x"})
    client.post("/api/v1/controls/flatten", json={}, headers=AS_TRADER)
    said = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (PASSWORD, TRADER_KEY, VIEWER_KEY):
        assert secret not in said


def test_a_command_is_pending_until_each_process_that_acts_on_it_answers(api, settings):
    halt = api.client.post("/api/v1/controls/kill-switch", json={"state": "halted"}).json()
    off = api.client.post(
        "/api/v1/controls/strategies/ema_cross/disable", json={"symbol": "ES"}
    ).json()

    def states() -> dict[str, tuple[str, list[str]]]:
        listed = api.client.get("/api/v1/controls/commands").json()["items"]
        return {c["command_id"]: (c["status"], [a["by"] for a in c["acks"]]) for c in listed}

    poll_until(lambda: len(states()) == 2, what="the commands read back")
    assert states() == {halt["command_id"]: ("pending", []), off["command_id"]: ("pending", [])}
    # The processes that act on them start, read the topic, and answer.
    bootstrap = str(settings.kafka.bootstrap_servers)
    executor = ExecutorService(settings, bootstrap)
    feed = ControlFeed(
        ControlBook(),
        settings.kafka,
        bootstrap,
        resolve(settings.topics, "control"),
        acks_topic=resolve(settings.topics, "control.acks"),
        app_id="agents-test",
    )
    try:
        executor.start()
        feed.catch_up()
        feed.stop()
        expected = {
            halt["command_id"]: ("applied", ["executor/ticklane-executor"]),
            off["command_id"]: ("applied", [feed.name]),
        }
        poll_until(lambda: states() == expected, what="each command applied by its process")
    finally:
        executor.close()
    one = api.client.get(f"/api/v1/controls/commands/{halt['command_id']}").json()
    assert (one["kill_switch"], one["issued_by"]) == ("halted", "ann")
    assert api.client.get("/api/v1/controls/commands/nope").status_code == 404


def test_dead_letters_are_counted_with_their_reasons(api, settings):
    out = producer(settings)
    out.produce(resolve(settings.topics, "orders"), key=b"ES", value=b"not an order")
    # As executors wrote them before the shared format: `error` and `source` headers.
    out.produce(
        resolve(settings.topics, "dlq"),
        key=None,
        value=b"\x00\x01",
        headers=[("error", b"bad magic"), ("source", b"t.signals:3:17")],
    )
    assert out.flush(10) == 0

    def counted() -> dict | None:
        answer = api.client.get("/api/v1/dead-letters").json()
        return answer if answer["count"] == 2 else None

    answer = poll_until(counted, what="both dead letters in the API")
    by_topic = {d["topic"]: d for d in answer["latest"]}
    ours = by_topic[resolve(settings.topics, "orders")]
    assert (ours["key"], ours["size"]) == ("ES", len(b"not an order"))
    assert ours["reason"]  # the wire codec's own words
    theirs = by_topic["t.signals"]
    assert (theirs["reason"], theirs["partition"], theirs["offset"]) == ("bad magic", 3, 17)
    # The undecodable order changed nothing the API answers.
    assert api.client.get("/api/v1/orders").json()["items"] == []
