"""The API's figures: how fast the materializer fills the store from Kafka, how fast reads
answer with 100,000 orders in it, and how late the live stream reaches 100 clients."""

import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import uvicorn
from fastapi.testclient import TestClient

from api.access import Access
from api.app import ApiState, create_app
from api.auth import LoginLimiter, Sessions, Users
from api.materializer import Materializer
from api.metrics import ApiMetrics
from api.store import Located, Store
from tests.bench.rows import Row, guard
from ticklane import kafka, wire
from ticklane.settings import KafkaSettings, Settings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue, resolve
from ticklane.trading import Fill, Order, OrderStatus, OrderType, Side

ORDERS: Final = 100_000
SYMBOLS: Final = tuple(f"S{i:03d}" for i in range(50))
READS: Final = 300
CLIENTS: Final = int(os.environ.get("TICKLANE_BENCH_STREAM_CLIENTS", "100"))
STREAM_RATE: Final = 1_000
STREAM_SECONDS: Final = 3.0
VISIBILITY_SAMPLES: Final = 100


def _order(n: int) -> Order:
    return Order(
        f"ord-{n:07d}",
        f"sig-{n:07d}",
        "bench",
        SYMBOLS[n % len(SYMBOLS)],
        Side.BUY if n % 2 else Side.SELL,
        1,
        OrderType.MARKET,
        OrderStatus.FILLED,
        1_700_000_000_000_000_000 + n,
        filled_quantity=1,
        filled_notional=100 * 10**9,
    )


def _open_access() -> Access:
    return Access(Users(), Sessions(60.0), LoginLimiter(5, 60.0), open_reads=True)


def _materializer_row(settings: Settings, bootstrap: str, store: Store) -> Row:
    from confluent_kafka import Producer  # noqa: PLC0415 - only this row writes

    producer = Producer(kafka.producer_config(settings.kafka, bootstrap, linger_ms=5))
    topic = resolve(settings.topics, "orders")
    for n in range(ORDERS):
        order = _order(n)
        producer.produce(topic, key=order.symbol.encode(), value=wire.encode(order))
        if n % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    materializer = Materializer(settings, bootstrap, store, ApiMetrics())
    try:
        started = time.perf_counter()
        materializer.start()
        deadline = time.monotonic() + 300
        while store.last_event() < ORDERS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{store.last_event():,} of {ORDERS:,} orders in 300 s")
            materializer.step(0.05)
        elapsed = time.perf_counter() - started
    finally:
        materializer.close()
    return Row(
        "api materializer, orders topic → store",
        "events/s",
        value=store.last_event() / elapsed,
        note=f"{ORDERS:,} orders, one transaction per batch",
    )


def _visibility_row(settings: Settings, bootstrap: str, store: Store) -> Row:
    """From a fill's write to Kafka to the API answering it, with the materializer running."""
    from confluent_kafka import Producer  # noqa: PLC0415 - only this row writes

    producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
    materializer = Materializer(settings, bootstrap, store, ApiMetrics())
    stop = threading.Event()
    started = threading.Event()
    reader = threading.Thread(target=materializer.run, args=(stop, started.set), daemon=True)
    reader.start()
    client = TestClient(create_app(ApiState(store, ApiMetrics(), access=_open_access())))
    topic = resolve(settings.topics, "fills")
    times: list[float] = []
    try:
        if not started.wait(60):
            raise RuntimeError("the materializer did not start")
        for n in range(VISIBILITY_SAMPLES):
            fill = Fill(f"seen-{n}", "c", "v", "S001", Side.BUY, 1, 10**9, n, strategy="seen")
            sent = time.perf_counter()
            producer.produce(topic, key=b"S001", value=wire.encode(fill))
            producer.flush(10)
            deadline = time.monotonic() + 10
            while [f["fill_id"] for f in newest(client)] != [fill.fill_id]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{fill.fill_id} not in the API within 10 s")
                time.sleep(0.001)  # polling the API as a client would
            times.append((time.perf_counter() - sent) * 1000)
    finally:
        stop.set()
        reader.join(10)
        materializer.close()
    cuts = statistics.quantiles(times, n=100)
    return Row(
        "api: a fill written to Kafka → in GET /fills",
        "ms",
        p50=statistics.median(times),
        p99=cuts[98],
        note=f"{VISIBILITY_SAMPLES} fills, one at a time (issue 13: within 1 s)",
        decimals=1,
    )


def newest(client: TestClient) -> list[dict[str, object]]:
    """The newest of the row's fills, as the API answers it."""
    page = client.get("/api/v1/fills", params={"strategy": "seen", "limit": 1})
    items: list[dict[str, object]] = page.json()["items"]
    return items


def _read_rows(store: Store) -> Iterator[Row]:
    client = TestClient(create_app(ApiState(store, ApiMetrics(), access=_open_access())))
    for name, path in (
        ("api GET /api/v1/positions", "/api/v1/positions"),
        ("api GET /api/v1/orders (a page of 100)", "/api/v1/orders?limit=100"),
        ("api GET /api/v1/orders?symbol=S007", "/api/v1/orders?symbol=S007&limit=100"),
    ):
        times = []
        for _ in range(READS):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        cuts = statistics.quantiles(times, n=100)
        note = f"{ORDERS:,} orders in the store, {READS} requests, in process"
        yield Row(name, "ms", p50=statistics.median(times), p99=cuts[98], note=note, decimals=2)


def _stream_row(store: Store) -> Row:
    app = create_app(ApiState(store, ApiMetrics(), access=_open_access()))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    total = int(STREAM_RATE * STREAM_SECONDS)
    lateness: list[float] = []
    lock = threading.Lock()
    connected = threading.Barrier(CLIENTS + 1)

    def client() -> None:
        late: list[float] = []
        url = f"http://127.0.0.1:{port}/api/v1/stream"
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=30)) as http,
            http.stream("GET", url) as response,
        ):
            connected.wait(120)
            for line in response.iter_lines():
                if line.startswith("data: "):
                    sent = json.loads(line[6:])["ts_event"]
                    late.append((time.time_ns() - sent) / 1e6)
                    if len(late) == total:
                        break
        with lock:
            lateness.extend(late)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    connected.wait(120)
    try:
        batch = STREAM_RATE // 20  # every 50 ms
        base = store.last_event() + 1
        start = time.monotonic()
        for i in range(0, total, batch):
            # Fills stamped with the wall clock when applied: their lateness at the client.
            now = time.time_ns()
            fills = [Located(0, base + i + j, _fill(base + i + j, now)) for j in range(batch)]
            store.apply(fills, {})
            pause = start + (i + batch) / STREAM_RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # the offered rate: 1,000 events a second
        for thread in threads:
            thread.join(60)
    finally:
        server.should_exit = True
        serving.join(10)
    if len(lateness) < total * CLIENTS:
        raise RuntimeError(f"{len(lateness):,} of {total * CLIENTS:,} events reached clients")
    cuts = statistics.quantiles(lateness, n=100)
    return Row(
        f"api stream, {CLIENTS} clients at {STREAM_RATE:,} events/s",
        "ms",
        p50=statistics.median(lateness),
        p99=cuts[98],
        note=f"store write → client, {total:,} events each",
        decimals=1,
    )


def _fill(n: int, now: int) -> Fill:
    return Fill(f"bench-fill-{n}", "c", "v", "S000", Side.BUY, 1, 10**9, now, strategy="bench")


def api_rows(bootstrap: str) -> Iterator[Row]:
    """The API's rows, on the broker at `bootstrap`."""
    with tempfile.TemporaryDirectory(prefix="ticklane-bench-api-") as directory:
        settings = Settings(
            kafka=KafkaSettings(bootstrap_servers=bootstrap),
            topics=TopicSettings(prefix=f"bench-api-{time.time_ns()}.", partitions=6),
            data_dir=Path(directory),
        )
        TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure(
            catalogue(settings.topics)
        )
        store = Store(Path(directory) / "api.sqlite")
        try:
            yield guard(
                "api materializer, orders topic → store",
                lambda: _materializer_row(settings, bootstrap, store),
            )
            yield guard(
                "api: a fill written to Kafka → in GET /fills",
                lambda: _visibility_row(settings, bootstrap, store),
            )
            try:
                yield from _read_rows(store)
            except Exception as exc:  # noqa: BLE001 - reported as a failed row
                yield Row.failed("api reads", exc)
            yield guard(f"api stream, {CLIENTS} clients", lambda: _stream_row(store))
        finally:
            store.close()
