"""An API in this process over a real broker, its users, and what it answers."""

import threading
import time
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient

from agents.strategies.registry import StrategyRegistry
from api.access import Access
from api.app import ApiState, create_app
from api.auth import LoginLimiter, Role, Sessions, User, Users, hash_api_key, hash_password
from api.materializer import Materializer
from api.metrics import ApiMetrics
from api.service import KafkaPublisher
from api.store import Store
from executors.stores import open_sqlite, sqlite_path
from ticklane.settings import Settings

TRADER_KEY = "tl_trader-key-3f9a1c-do-not-log"
VIEWER_KEY = "tl_viewer-key-82bd4e-do-not-log"
PASSWORD = "correct horse battery staple 7d1e"  # noqa: S105 - a test value searched for in logs
USERS = [
    User("ann", Role.TRADER, hash_password(PASSWORD), (hash_api_key(TRADER_KEY),)),
    User("vic", Role.VIEWER, "", (hash_api_key(VIEWER_KEY),)),
]
AS_TRADER = {"Authorization": f"Bearer {TRADER_KEY}"}


class Api:
    """A store, a materializer in a thread and a test client over the app."""

    def __init__(self, settings: Settings, path: Path, *, open_reads: bool = False) -> None:
        self.store = Store(path)
        self._reached: float | None = None
        """When the store was first seen at the topics' ends (`caught_up`)."""
        self.metrics = ApiMetrics()
        bootstrap = str(settings.kafka.bootstrap_servers)
        self._bootstrap = bootstrap
        self.materializer = Materializer(settings, bootstrap, self.store, self.metrics)
        self.publisher = KafkaPublisher(settings, bootstrap)
        access = Access(
            Users(tuple(USERS)), Sessions(600.0), LoginLimiter(5, 60.0), open_reads=open_reads
        )
        self.state = ApiState(
            self.store,
            self.metrics,
            self.materializer,
            access=access,
            publisher=self.publisher,
            registry=StrategyRegistry(),
            page_size=7,
        )
        self.app = create_app(self.state)
        self.client = TestClient(self.app, headers=AS_TRADER)
        self._stop = threading.Event()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self.materializer.run, args=(self._stop, started.set), daemon=True
        )
        self._thread.start()
        assert started.wait(30), "the materializer did not start"

    def caught_up(self) -> bool:
        """The store holds every message up to the topics' ends, and the materializer's own
        look, made since, finds nothing behind (what `/ready` reports). Its thread measures:
        a second measurer here would race it and could leave an older look standing."""
        if self._reached is None:
            if self._store_at_ends():
                self._reached = time.monotonic()
            return False
        return self.materializer.last_lag_at > self._reached and self.materializer.behind() == 0

    def _store_at_ends(self) -> bool:
        stored = self.store.offsets()
        consumer = Consumer({"bootstrap.servers": self._bootstrap, "group.id": "api-harness"})
        try:
            for topic in self.materializer.topics:
                for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                    part = TopicPartition(topic, p)
                    high = consumer.get_watermark_offsets(part, timeout=10, cached=False)[1]
                    if stored.get((topic, p), 0) < high:
                        return False
            return True
        finally:
            consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.materializer.close()
        self.publisher.close()
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
