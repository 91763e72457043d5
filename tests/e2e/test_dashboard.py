"""The dashboard in a real browser (Playwright driving Debian's Chromium) against the demo's
processes on the real broker: the page the API serves at `/`, updating live from its stream.

One replay, watched from the page: a strategy switched off for a symbol and a kill switch set
to halted from the page first; then the overview's positions and P&L change while the replay
runs, without a reload; the agents never signal for the switched-off pair and the executor
opens nothing under the halt; the chart shows the bars and the signals as markers. A viewer's
page has no controls, and a control forged from a viewer's session is refused. Every view is
screenshotted under `test-results/dashboard/`, and no request leaves for another host.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import sync_playwright

from api.auth import Role, User, hash_password, save_users
from tests.conftest import chromium, poll_until
from tests.integration.executors.scenario import create_topics
from ticklane import wire
from ticklane.demo import demo_config, process
from ticklane.settings import Settings
from ticklane.topics import resolve
from ticklane.trading import Order, OrderStatus, Signal

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TICKLANE_TEST_OUTPUT", ROOT / "test-results")) / "dashboard"
TRADER, VIEWER = ("ann", "trader password 5c1d-e2e"), ("vic", "viewer password 9a2b-e2e")
SYMBOLS = ["SYN000", "SYN001", "SYN002", "SYN003"]  # ema_cross on 000-001, supertrend on 002-003


@pytest.fixture
def stack(settings: Settings, cli_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The demo's agents, executor and API on the test's topics; yields the API's URL."""
    if not (ROOT / "web" / "out" / "index.html").is_file():
        pytest.fail("the dashboard is not built: run `make web` (make test does)")
    create_topics(settings)
    (tmp_path / "demo.toml").write_text(demo_config(SYMBOLS))
    save_users(
        settings.data_dir / "api" / "users.json",
        [
            User(TRADER[0], Role.TRADER, hash_password(TRADER[1])),
            User(VIEWER[0], Role.VIEWER, hash_password(VIEWER[1])),
        ],
    )
    env = cli_env | {"TICKLANE_AGENTS__APP_ID": f"agents-{os.getpid()}"}
    logs, config = tmp_path / "logs", str(tmp_path / "demo.toml")
    with (
        process(["agents", "--config", config], env, logs / "agents.log"),
        process(["execute", "--config", config], env, logs / "executor.log"),
        process(["api", "--config", config, "--port", "0"], env, logs / "api.log"),
    ):
        url_file = settings.data_dir / "api" / "server.url"
        yield poll_until(lambda: url_file.exists() and url_file.read_text().strip(), what="API")


def synth(cli_env: dict[str, str], out: Path) -> Path:
    args = ["synth", "--out", str(out), "--symbols", "4", "--minutes", "6", "--seed", "3"]
    subprocess.run([TICKLANE, *args, "--no-options"], env=cli_env, check=True, capture_output=True)
    return out


def login(page, base: str, who: tuple[str, str]) -> None:
    page.goto(f"{base}/login/")
    page.get_by_test_id("login-username").fill(who[0])
    page.get_by_test_id("login-password").fill(who[1])
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("whoami").filter(has_text=who[0]).wait_for()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def commands(base: str, cookies: dict[str, str]) -> dict[str, list[dict[str, object]]]:
    listed = httpx.get(f"{base}/api/v1/controls/commands", cookies=cookies).json()["items"]
    out: dict[str, list[dict[str, object]]] = {}
    for c in listed:
        out.setdefault(str(c["action"]), []).append(c)
    return out


def test_the_dashboard_watches_and_controls_a_replay(
    stack: str, settings: Settings, cli_env: dict[str, str], tmp_path: Path, read_topic
) -> None:
    base = stack
    host = urlparse(base).netloc
    data = synth(cli_env, tmp_path / "synth.dbn.zst")
    elsewhere: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True)
        trader = browser.new_context(viewport={"width": 1280, "height": 900})
        page = trader.new_page()
        page.on(
            "request",
            lambda r: elsewhere.append(r.url) if urlparse(r.url).netloc != host else None,
        )
        login(page, base, TRADER)
        cookies = {c["name"]: c["value"] for c in trader.cookies()}

        # Switch ema_cross off for SYN001 in the Strategies view; the agents apply it.
        page.get_by_test_id("nav-strategies").click()
        row = page.locator(
            '[data-testid="strategy-row"][data-strategy="ema_cross"][data-symbol="SYN001"]'
        )
        row.get_by_test_id("strategy-toggle").click()
        row.and_(page.locator('[data-enabled="false"]')).wait_for()
        poll_until(
            lambda: (
                [c["status"] for c in commands(base, cookies).get("disable", [])] == ["applied"]
            ),
            timeout_s=60,
            what="the disable applied by the agents",
        )
        shoot(page, "strategies")

        # Halt supertrend from the Controls view; the executor applies it.
        page.get_by_test_id("nav-controls").click()
        page.get_by_test_id("ks-strategy-input").fill("supertrend")
        page.get_by_test_id("ks-set-halted").click()
        page.locator('[data-testid="command-row"][data-action="kill_switch"]').wait_for()
        poll_until(
            lambda: (
                [c["status"] for c in commands(base, cookies).get("kill_switch", [])] == ["applied"]
            ),
            timeout_s=60,
            what="the kill switch applied by the executor",
        )
        for action in ("kill_switch", "disable"):  # the view shows each command applied
            page.locator(
                f'[data-testid="command-row"][data-action="{action}"][data-status="applied"]'
            ).wait_for(timeout=30_000)
        shoot(page, "controls")

        # The overview while the replay runs: positions and P&L change with no reload.
        page.get_by_test_id("nav-overview").click()
        page.get_by_test_id("pnl-total").wait_for()
        page.evaluate("window.__noReload = true")  # a reload would forget it
        replay = subprocess.Popen(
            [TICKLANE, "produce", "file", str(data), "--speed", "30x"],
            env=cli_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seen: set[tuple[str, ...]] = set()
        try:

            def changed_twice() -> bool:
                cells = page.locator('[data-testid="position-row"][data-strategy="ema_cross"]')
                shown = (
                    *tuple(cells.all_inner_texts()),
                    page.get_by_test_id("pnl-total").inner_text(),
                )
                if cells.count():
                    seen.add(shown)
                return len(seen) >= 3

            poll_until(changed_twice, timeout_s=120, interval_s=0.2, what="the overview to change")
            assert replay.wait(timeout=300) == 0
        finally:
            if replay.poll() is None:
                replay.kill()
        assert page.evaluate("window.__noReload") is True  # all live, from the stream
        shoot(page, "overview")

        # Every signal answered; then what the processes did under the page's controls.
        def done() -> list[Signal] | None:
            signals = [
                wire.decode_as(v, Signal)
                for *_, v in read_topic(resolve(settings.topics, "signals"))
            ]
            orders = httpx.get(f"{base}/api/v1/orders", params={"limit": 1000}, cookies=cookies)
            working = [
                o
                for o in orders.json()["items"]
                if o["status"] in ("pending_submit", "submitted", "accepted")
            ]
            return signals if signals and not working else None

        signals = poll_until(done, timeout_s=240, interval_s=0.5, what="the replay answered")
        made = {(s.strategy, s.symbol) for s in signals}
        assert ("ema_cross", "SYN000") in made
        assert ("ema_cross", "SYN001") not in made  # switched off from the page
        orders = [
            wire.decode_as(v, Order) for *_, v in read_topic(resolve(settings.topics, "orders"))
        ]
        latest = {o.client_order_id: o for o in orders}
        halted = [o for o in latest.values() if o.strategy == "supertrend"]
        assert halted  # supertrend did signal...
        assert all(o.status is OrderStatus.REJECTED for o in halted)  # ...and opened nothing
        assert any(
            o.status is OrderStatus.FILLED for o in latest.values() if o.strategy == "ema_cross"
        )

        # The chart of SYN000: bars, and the strategy's signals as markers at their bars.
        page.get_by_test_id("nav-chart").click()
        page.get_by_test_id("chart-symbol").select_option("SYN000")
        chart = page.get_by_test_id("chart")
        poll_until(
            lambda: (
                int(chart.get_attribute("data-bars") or 0) > 0
                and int(chart.get_attribute("data-markers") or 0) > 0
            ),
            timeout_s=30,
            what="bars and markers drawn",
        )
        drawn = {int(t) for t in (chart.get_attribute("data-signal-times") or "").split(",") if t}
        # A signal's time is its bar's close: the marker sits on that bar (1 s bars here).
        wanted = {(s.ts_event - 10**9) // 10**9 for s in signals if s.symbol == "SYN000"}
        assert drawn & wanted  # at least one marker at a signal's bar time
        assert "ema_8" in (chart.get_attribute("data-indicators") or "")
        shoot(page, "chart")
        page.get_by_test_id("nav-blotter").click()
        page.get_by_test_id("order-row").first.wait_for()
        page.get_by_test_id("order-row").first.click()
        page.get_by_test_id("order-detail").wait_for()
        shoot(page, "blotter")

        # A viewer: no control anywhere, and a control forged from the session is refused.
        viewer = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
        vpage = viewer.new_page()
        vpage.on(
            "request",
            lambda r: elsewhere.append(r.url) if urlparse(r.url).netloc != host else None,
        )
        login(vpage, base, VIEWER)
        for view in ("overview", "blotter", "strategies", "chart", "controls"):
            vpage.get_by_test_id(f"nav-{view}").click()
            vpage.wait_for_load_state("networkidle")
            assert vpage.locator("[data-control]").count() == 0, view
            shoot(vpage, f"viewer-{view}")
        status = vpage.evaluate(
            """async () => {
                const r = await fetch('/api/v1/controls/flatten', {method: 'POST',
                    headers: {'Content-Type': 'application/json',
                              'X-CSRF-Token': sessionStorage.getItem('ticklane.csrf') || ''},
                    body: JSON.stringify({strategy: '', symbol: ''})});
                return r.status;
            }"""
        )
        assert status == 403
        browser.close()
    assert elsewhere == []  # the page asked nothing of any host but the API's
