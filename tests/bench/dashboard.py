"""The dashboard's figures, in Chromium (Playwright): how soon the overview first shows the
positions, and how often it redraws (and how late it is) while the stream carries 1,000
position changes a second. The API serves the export from `web/out` over a store filled here."""

import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import uvicorn

from api.app import ApiState, create_app
from api.dashboard import DEFAULT_DIR, mount_dashboard
from api.metrics import ApiMetrics
from api.store import Located, Store
from tests.bench.api import _open_access
from tests.bench.rows import Row, guard
from ticklane.trading import Position

SYMBOLS: Final = tuple(f"S{i:03d}" for i in range(50))
STRATEGIES: Final = ("ema_cross", "supertrend")
LOADS: Final = 7
RATE: Final = 1_000
SECONDS: Final = 5.0
COUNT_REDRAWS: Final = """() => {
    window.__redraws = [];
    const table = document.querySelector('[data-testid="position-row"]').closest('table');
    new MutationObserver(() => {
        const now = performance.now();
        const last = window.__redraws[window.__redraws.length - 1];
        if (last === undefined || now - last > 16) window.__redraws.push(now);
    }).observe(table, {subtree: true, childList: true, characterData: true});
}"""


def _position(strategy: str, symbol: str, quantity: int, ts: int) -> Position:
    return Position(strategy, symbol, quantity, 100 * 10**9, quantity * 10**9, ts, f"f-{ts}")


def _serve(store: Store) -> tuple[str, uvicorn.Server, threading.Thread]:
    app = create_app(ApiState(store, ApiMetrics(), access=_open_access()))
    if not mount_dashboard(app, None):
        raise RuntimeError(f"the dashboard is not built at {DEFAULT_DIR}: run `make web`")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def _first_render(browser: Any, url: str) -> Row:
    samples = []
    for _ in range(LOADS):
        context = browser.new_context()
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url + "/")
        page.locator('[data-testid="position-row"]').first.wait_for(timeout=30_000)
        samples.append((time.perf_counter() - started) * 1000)
        context.close()
    return Row(
        "dashboard: overview's first render",
        "ms",
        p50=statistics.median(samples),
        p99=max(samples),
        note=f"goto → positions shown, {len(SYMBOLS) * len(STRATEGIES)} rows; p99 is the max "
        f"of {LOADS} cold loads",
        decimals=0,
    )


def _under_load(browser: Any, url: str, store: Store) -> Iterator[Row]:
    page = browser.new_context().new_page()
    page.goto(url + "/")
    page.locator('[data-testid="position-row"]').first.wait_for(timeout=30_000)
    page.evaluate(COUNT_REDRAWS)
    total = int(RATE * SECONDS)
    batch = RATE // 20  # every 50 ms
    base = store.last_event() + 1
    start = time.monotonic()
    for i in range(0, total, batch):
        now = time.time_ns()
        changes = [
            Located(
                0,
                base + n,
                _position(STRATEGIES[n % 2], SYMBOLS[(n // 2) % len(SYMBOLS)], n % 7 - 3, now),
            )
            for n in range(i, i + batch)
        ]
        store.apply(changes, {})
        pause = start + (i + batch) / RATE - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # the offered rate: 1,000 changes a second
    written = time.perf_counter()
    # The last change written: S049 of supertrend, whatever its quantity became.
    final = (total - 1) % 7 - 3
    row = page.locator(
        '[data-testid="position-row"][data-strategy="supertrend"][data-symbol="S049"]'
    )
    deadline = time.monotonic() + 30
    while row.get_by_test_id("position-qty").inner_text().strip() != str(final):
        if time.monotonic() > deadline:
            raise TimeoutError("the overview never showed the last change")
        time.sleep(0.01)  # polling the page for the value, with a deadline
    shown_after = (time.perf_counter() - written) * 1000
    redraws = page.evaluate("window.__redraws.length")
    yield Row(
        f"dashboard: overview redraws under {RATE:,} events/s",
        "redraws/s",
        value=redraws / SECONDS,
        note=f"position changes for {len(SYMBOLS) * 2} rows over {SECONDS:.0f} s; the page "
        "refreshes at most every 250 ms, however many events arrive",
        decimals=1,
    )
    yield Row(
        "dashboard: last change written → shown",
        "ms",
        value=shown_after,
        note=f"after {total:,} changes at {RATE:,}/s",
        decimals=0,
    )


def dashboard_rows() -> Iterator[Row]:
    """The dashboard's rows (Chromium: `apt-get install chromium` or TICKLANE_CHROMIUM)."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a dev dependency

    chromium = os.environ.get("TICKLANE_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        yield Row.failed("dashboard", RuntimeError("no Chromium: apt-get install chromium"))
        return
    with tempfile.TemporaryDirectory(prefix="ticklane-bench-web-") as directory:
        store = Store(Path(directory) / "api.sqlite")
        now = time.time_ns()
        store.apply(
            [
                Located(0, n, _position(strategy, symbol, 1, now))
                for n, (strategy, symbol) in enumerate(
                    (s, sym) for s in STRATEGIES for sym in SYMBOLS
                )
            ],
            {},
        )
        url, server, thread = _serve(store)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True)
                yield guard(
                    "dashboard: overview's first render", lambda: _first_render(browser, url)
                )
                try:
                    yield from _under_load(browser, url, store)
                except Exception as exc:  # noqa: BLE001 - reported as a failed row
                    yield Row.failed(f"dashboard under {RATE:,} events/s", exc)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            store.close()
