"""The API's store in PostgreSQL: the API process over it end to end, and its errors.

Checked: `ticklane api` with `api.store = "postgres"` materializes the topics into its own
schema, a restarted API resumes at the stored offsets, and one that reads every message again
(its offsets lost) changes no answer and appends no event; a batch applied twice through
`open_store` gives the same answers; a missing DSN, a bad schema name, the ledger's schema or
an unreachable server stop it with a clear `StoreError` that never shows the password.
"""

import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pydantic
import pytest
from psycopg import sql

from api.store import Located, StoreError, open_postgres_store, open_store
from executors.stores import open_postgres
from tests.conftest import poll_until
from tests.integration.api.harness import answers
from tests.integration.executors.scenario import create_topics, producer
from ticklane import wire
from ticklane.settings import ApiSettings, Settings
from ticklane.topics import resolve
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Position, Side

pytestmark = [pytest.mark.integration]

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
SECRET = "pa55-never-shown-7c1d"  # noqa: S105 - a test value searched for in messages
SCALE = 10**9
NS = 1_700_000_000 * SCALE


@pytest.fixture
def schema(postgres_dsn: str) -> Iterator[str]:
    """A schema of the session's server no other test uses, dropped afterwards."""
    name = f"api_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def on_postgres(settings: Settings, dsn: str | None, schema: str) -> Settings:
    api = settings.api.model_copy(
        update={
            "store": "postgres",
            "postgres_dsn": None if dsn is None else pydantic.SecretStr(dsn),
            "postgres_schema": schema,
        }
    )
    return settings.model_copy(update={"api": api})


def trades(symbol: str, n: int) -> list[Order | Fill | Position]:
    """An order's two events, its fill and the position it leaves, `n` times."""
    made: list[Order | Fill | Position] = []
    for i in range(n):
        cid = f"c-{symbol}-{i}"
        made += [
            Order(cid, f"s-{i}", "s1", symbol, Side.BUY, 1, OrderType.MARKET, status, NS + i)
            for status in (OrderStatus.PENDING_SUBMIT, OrderStatus.FILLED)
        ]
        made.append(
            Fill(
                f"f-{symbol}-{i}", cid, "v", symbol, Side.BUY, 1, 50 * SCALE, NS + i, strategy="s1"
            )
        )
        made.append(Position("s1", symbol, i + 1, 50 * SCALE, 0, NS + i))
    return made


def publish(settings: Settings, messages: list[Order | Fill | Position]) -> None:
    out = producer(settings)
    for message in messages:
        topic = {Order: "orders", Fill: "fills", Position: "positions"}[type(message)]
        out.produce(
            resolve(settings.topics, topic),
            key=message.symbol.encode(),
            value=wire.encode(message),
        )
    assert out.flush(30) == 0


def test_the_api_process_keeps_its_store_in_postgres_and_a_reread_changes_nothing(
    settings, cli_env, postgres_dsn, schema
):
    create_topics(settings)
    messages = trades("AAA", 4) + trades("BBB", 3)
    publish(settings, messages)
    env = cli_env | {
        "TICKLANE_API__STORE": "postgres",
        "TICKLANE_API__POSTGRES_DSN": postgres_dsn,
        "TICKLANE_API__POSTGRES_SCHEMA": schema,
        "TICKLANE_API__OPEN_READS": "true",
    }
    url_file = settings.data_dir / "api" / "server.url"

    def serve() -> tuple[subprocess.Popen[bytes], httpx.Client]:
        process = subprocess.Popen(
            [TICKLANE, "api", "--port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = poll_until(
            lambda: url_file.exists() and url_file.read_text().strip(), what="the API's URL"
        )
        return process, httpx.Client(base_url=str(url), timeout=10)

    def stop(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err.decode(errors="replace")
        assert postgres_dsn.encode() not in err  # a secret: never logged

    def ready(client: httpx.Client) -> bool:
        return bool(client.get("/ready").json()["ready"])

    topics = {resolve(settings.topics, name) for name in ("orders", "fills", "positions")}
    reader = open_postgres_store(postgres_dsn, schema, settings.data_dir / "reader")

    def changes() -> list[str]:
        # The API's own status beacon comes through `status` too; these are the trades.
        kinds = ("order", "fill", "position")
        return [e.kind for e in reader.events(0, 10_000) if e.kind in kinds]

    def read() -> dict[tuple[str, int], int]:
        return {k: v for k, v in reader.offsets().items() if k[0] in topics}

    try:
        process, client = serve()
        try:
            poll_until(lambda: len(answers(client)["fills"]) == 7, what="the fills")
            poll_until(lambda: ready(client), what="/ready")
            before, events, offsets = answers(client), changes(), read()
            assert len(events) == 4 * 7  # two order events, a fill and a position each
            assert sum(offsets.values()) == len(messages)  # each partition's next offset
        finally:
            stop(process)
        assert not url_file.exists()
        process, client = serve()  # a restart: resumes at the stored offsets
        try:
            poll_until(lambda: ready(client), what="/ready after the restart")
            assert answers(client) == before
            assert (changes(), read()) == (events, offsets)
        finally:
            stop(process)
        # Offsets lost (as if the API died before it committed): every message is read again.
        with psycopg.connect(postgres_dsn, autocommit=True) as db:
            db.execute(sql.SQL("DELETE FROM {}.offsets").format(sql.Identifier(schema)))
        process, client = serve()
        try:
            poll_until(lambda: read() == offsets, what="the topics read again")
            assert answers(client) == before
            assert changes() == events  # nothing changed, so nothing was appended
        finally:
            stop(process)
    finally:
        reader.close()
    assert not (settings.data_dir / "api" / "api.sqlite").exists()  # nothing in SQLite


def test_a_batch_applied_twice_gives_the_same_answers_and_survives_a_reopen(
    tmp_path, postgres_dsn, schema
):
    settings = on_postgres(Settings(data_dir=tmp_path / "data"), postgres_dsn, schema)
    part = {Order: 0, Fill: 1, Position: 2}  # one key: each topic's in one partition
    batch = [Located(part[type(m)], 100 + i, m) for i, m in enumerate(trades("ES", 5))]
    offsets = {("orders", 0): 120, ("fills", 1): 119, ("positions", 2): 118}
    store = open_store(settings)
    try:
        store.apply(batch, offsets)
        before = (store.positions(), store.orders(limit=50), store.fills(limit=50))
        events = store.last_event()
        store.apply(batch, offsets)
        store.apply(batch[:4], {("orders", 0): 104})  # older offsets never go back
        assert (store.positions(), store.orders(limit=50), store.fills(limit=50)) == before
        assert store.last_event() == events == 4 * 5
        assert store.writable()
    finally:
        store.close()
    again = open_store(settings)  # the schema exists already: opened as it is
    try:
        assert (again.positions(), again.orders(limit=50), again.fills(limit=50)) == before
        assert again.offsets() == offsets
        assert again.last_event() == events
    finally:
        again.close()
    assert (settings.data_dir / "api").is_dir()  # where server.url goes


def test_postgres_without_a_dsn_stops_start_up_naming_the_variable(cli_env, tmp_path):
    settings = on_postgres(Settings(data_dir=tmp_path), None, "api_x")
    with pytest.raises(StoreError, match="TICKLANE_API__POSTGRES_DSN"):
        open_store(settings)
    env = cli_env | {"TICKLANE_API__STORE": "postgres"}
    env.pop("TICKLANE_API__POSTGRES_DSN", None)
    done = subprocess.run(
        [TICKLANE, "api", "--port", "0"], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert b"TICKLANE_API__POSTGRES_DSN" in done.stderr


def test_the_settings_come_from_the_environment_and_keep_the_dsn_secret(monkeypatch):
    dsn = f"host=db user=u password={SECRET} dbname=d"
    monkeypatch.setenv("TICKLANE_API__STORE", "postgres")
    monkeypatch.setenv("TICKLANE_API__POSTGRES_DSN", dsn)
    monkeypatch.setenv("TICKLANE_API__POSTGRES_SCHEMA", "api_store")
    api = Settings().api
    assert (api.store, api.postgres_schema) == ("postgres", "api_store")
    assert api.postgres_dsn is not None
    assert api.postgres_dsn.get_secret_value() == dsn
    assert SECRET not in repr(api) + str(api)
    with pytest.raises(pydantic.ValidationError):
        ApiSettings(postgres_schema="Robert'); DROP TABLE orders;--")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "dsn",
    [
        "host=127.0.0.1 port={port} user=u password={secret} dbname=d connect_timeout=5",
        "postgresql://u:{secret}@127.0.0.1:{port}/d",
        "host=127.0.0.1 port=notaport user=u password={secret}",
        "host=127.0.0.1 user=u password={secret} trailing words",  # not a connection string
    ],
)
def test_an_unreachable_or_garbled_server_is_a_store_error_without_the_password(dsn, tmp_path):
    given = dsn.format(port=closed_port(), secret=SECRET)
    settings = on_postgres(Settings(data_dir=tmp_path), given, "api_x")
    with pytest.raises(StoreError) as raised:
        open_store(settings)
    message = str(raised.value)
    assert "PostgreSQL schema api_x" in message
    assert SECRET not in message
    # Nor does the driver's error travel with it, in a traceback or a log line.
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None


def test_the_executors_ledger_schema_is_refused(postgres_dsn, schema, tmp_path):
    open_postgres(postgres_dsn, schema).close()
    with pytest.raises(StoreError, match="ledger"):
        open_postgres_store(postgres_dsn, schema, tmp_path / "api" / "x")


def test_a_lost_connection_makes_the_store_unwritable_not_an_error(postgres_dsn, schema, tmp_path):
    store = open_postgres_store(postgres_dsn, schema, tmp_path / "api" / "x")
    try:
        assert store.writable()
        with psycopg.connect(postgres_dsn, autocommit=True) as db:
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND datname = current_database()"
                " AND backend_type = 'client backend'"
            )
        assert not store.writable()  # /ready says so, and names the store
    finally:
        store.close()
