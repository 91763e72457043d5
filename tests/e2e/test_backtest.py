"""`ticklane backtest` with fills and P&L: the executor's rules and the paper venue over the
file's own market data. Its trades equal an independent computation of EMA cross on bars,
fees and slippage move its P&L by exactly their sum, and its fills equal, fill for fill,
what `ticklane demo` makes on the paper venue for the same file."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import databento as db
import numpy as np
import pytest
import talib
from playwright.sync_api import sync_playwright

from producers.synth import generate, generate_bars
from tests.conftest import chromium

pytestmark = pytest.mark.e2e

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
P = 1_000_000_000


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env | {"TICKLANE_DATA_DIR": str(data_dir)}


def _backtest(path: Path, out: Path, *args: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [TICKLANE, "backtest", str(path), "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "total P&L (net)" in done.stdout  # the statistics table, printed
    stats: dict[str, object] = json.loads((out / "stats.json").read_text())
    return stats


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _independent_ema_cross_trips(path: Path, fast: int, slow: int) -> list[tuple[object, ...]]:
    """EMA cross by hand on the file's bars: ta-lib's EMAs, a target of +1 above and -1 below,
    each change traded at the symbol's next bar's open; a trip from each entry to its exit."""
    frame = db.DBNStore.from_file(path).to_df(price_type="fixed", pretty_ts=False)
    trips: list[tuple[object, ...]] = []
    for symbol, bars in frame.groupby("symbol"):
        closes = bars["close"].to_numpy(dtype=np.float64)
        opens, times = bars["open"].tolist(), bars.index.tolist()
        fast_ema, slow_ema = talib.EMA(closes, fast), talib.EMA(closes, slow)
        target, entry = 0, None
        for i in range(len(bars)):
            if np.isnan(slow_ema[i]) or fast_ema[i] == slow_ema[i]:
                continue
            wanted = 1 if fast_ema[i] > slow_ema[i] else -1
            if wanted == target:
                continue
            target = wanted
            if i + 1 == len(bars):
                break  # no next bar: the order never fills
            ts, price = int(times[i + 1]) + 1, int(opens[i + 1])
            if entry is not None:
                opened, direction, at = entry
                pnl = direction * (price - at)
                trips.append((symbol, opened, ts, direction, 1, at, price, pnl))
            entry = (ts, wanted, price)
        if entry is not None:
            opened, direction, at = entry
            trips.append((symbol, opened, -1, direction, 1, at, 0, 0))
    return sorted(trips, key=lambda t: (t[1], t[0]))


def _trips(out: Path) -> list[tuple[object, ...]]:
    rows = _rows(out / "trades.csv")
    trips = [
        (
            r["symbol"],
            int(r["opened_ns"]),
            int(r["closed_ns"]),
            int(r["direction"]),
            int(r["quantity"]),
            int(r["entry_price"]),
            int(r["exit_price"]),
            int(r["pnl"]),
        )
        for r in rows
    ]
    return sorted(trips, key=lambda t: (t[1], t[0]))


@pytest.mark.parametrize("data", ["real", "generated"])
def test_ema_cross_trades_equal_an_independent_computation_on_bars(
    data: str, tmp_path: Path, databento_dir: Path
) -> None:
    if data == "real":
        path = databento_dir / "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst"
        fast, slow = 5, 20
    else:
        path = tmp_path / "bars.dbn.zst"
        generate_bars(path, symbols=3, bars=4000, seed=11)
        fast, slow = 8, 21
    out = tmp_path / "out"
    params = ["--param", f"fast={fast}", "--param", f"slow={slow}"]
    stats = _backtest(path, out, "--strategy", "ema_cross", *params, env=_env(tmp_path / "d"))
    assert stats["fill_source"] == "bar opens"
    expected = _independent_ema_cross_trips(path, fast, slow)
    assert len(expected) >= (3 if data == "real" else 300)
    assert _trips(out) == expected  # trade for trade: times, prices, P&L
    closed = [t for t in expected if t[2] != -1]
    assert stats["trades"] == len(closed)
    assert stats["wins"] == sum(1 for t in closed if int(str(t[7])) > 0)


def test_fees_and_slippage_move_the_pnl_by_exactly_their_sum(tmp_path: Path) -> None:
    path = tmp_path / "bars.dbn.zst"
    generate_bars(path, symbols=2, bars=1500, seed=4)
    config = tmp_path / "x.toml"
    config.write_text("[executor]\nmultipliers = { GEN000 = 50, GEN001 = 20 }\n")
    env = _env(tmp_path / "d")
    args = ["--strategy", "ema_cross", "--param", "fast=5", "--param", "slow=13"]
    args += ["--config", str(config)]
    bare = _backtest(path, tmp_path / "bare", *args, env=env)
    costly = _backtest(
        path, tmp_path / "costly", *args, "--fee-per-unit", "2.25", "--slippage", "0.5", env=env
    )
    fills = _rows(tmp_path / "costly" / "fills.csv")
    bare_fills = _rows(tmp_path / "bare" / "fills.csv")
    assert [f["client_order_id"] for f in fills] == [f["client_order_id"] for f in bare_fills]
    multiplier = {"GEN000": 50, "GEN001": 20}
    fees = sum(int(f["fee"]) for f in fills)
    assert fees == sum(int(f["quantity"]) * 2_250_000_000 for f in fills) > 0
    slipped = sum(int(f["quantity"]) * P // 2 * multiplier[f["symbol"]] for f in fills)
    assert costly["fees"] == fees
    assert int(str(bare["total_pnl"])) - int(str(costly["total_pnl"])) == fees + slipped


def test_backtest_fills_equal_the_demos_fill_for_fill(tmp_path: Path) -> None:
    data = tmp_path / "syn.dbn.zst"
    generate(data, symbols=4, minutes=6, seed=5, options=False)
    env = _env(tmp_path / "data")
    summary = tmp_path / "summary.json"
    demo = subprocess.run(
        [TICKLANE, "demo", "--until-done", "--data", str(data), "--summary-json", str(summary)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    venue = subprocess.run(
        [TICKLANE, "paper", "fills", "--json"], env=env, capture_output=True, text=True, check=True
    )
    keys = ("fill_id", "client_order_id", "symbol", "side", "quantity", "price", "fee")
    made = {
        (*(str(f[k]) for k in keys), str(f["ts"]))
        for f in map(json.loads, venue.stdout.splitlines())
    }
    # The demo's configuration: EMA cross on the first two symbols, Supertrend on the rest.
    config = tmp_path / "data" / "demo.toml"
    runs = [
        ("ema_cross", ["fast=8", "slow=21", "quantity=1"], {"SYN000", "SYN001"}),
        ("supertrend", ["length=10", "multiplier=3.0", "quantity=1"], {"SYN002", "SYN003"}),
    ]
    backtested: set[tuple[str, ...]] = set()
    said = json.loads(summary.read_text())["strategies"]
    for strategy, params, symbols in runs:
        out = tmp_path / strategy
        args = ["--strategy", strategy, "--bar-interval", "1s", "--config", str(config)]
        args += ["--symbols", ",".join(sorted(symbols))]
        for param in params:
            args += ["--param", param]
        stats = _backtest(data, out, *args, env=env)
        backtested |= {(*(r[k] for k in keys), r["ts_event"]) for r in _rows(out / "fills.csv")}
        # The demo's summary says what the backtest says of the same strategy.
        assert said[strategy]["trades"] == stats["trades"]
        assert said[strategy]["win_rate"] == stats["win_rate"]
        assert said[strategy]["total_pnl"] * P == pytest.approx(stats["total_pnl"], abs=1)
        assert said[strategy]["max_drawdown"] * P == pytest.approx(stats["max_drawdown"], abs=1)
        assert said[strategy]["sharpe"] == stats["sharpe"]
    assert len(made) >= 20
    assert backtested == made


def test_the_report_opens_offline_with_every_plot_and_the_statistics_of_the_json(
    tmp_path: Path,
) -> None:
    data = tmp_path / "syn.dbn.zst"
    generate(data, symbols=3, minutes=10, seed=2, options=False)
    out = tmp_path / "out"
    args = ["--strategy", "ema_cross", "--param", "fast=5", "--param", "slow=13"]
    stats = _backtest(data, out, *args, "--bar-interval", "1s", "--report", env=_env(tmp_path))
    traded = {r["symbol"] for r in _rows(out / "fills.csv")}
    assert traded
    report = (out / "report.html").as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), headless=True)
        try:
            page = browser.new_page()
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(report)
            plots = 2 + len(traded)  # equity and drawdown, a price chart each, P&L per symbol
            page.wait_for_function(
                f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {2 * plots}"
            )
            traces = page.eval_on_selector_all(
                ".plotly-graph-div", "divs => divs.map(d => d.data.map(t => t.name))"
            )
            exact = page.eval_on_selector_all(
                "tr[data-stat]", "rows => rows.map(r => [r.dataset.stat, r.dataset.value])"
            )
        finally:
            browser.close()
    assert asked == [report]  # nothing but the file itself: no network
    assert len(traces) == plots
    assert traces[0] == ["equity (net P&L)", "drawdown"]
    for names in traces[1:-1]:  # each price chart: closes, the two EMAs, buys and sells
        assert names == ["close", "ema_13", "ema_5", "buy fills", "sell fills"]
    assert {name: json.loads(value) for name, value in exact} == {
        k: v for k, v in stats.items() if k != "fill_source"
    }


def test_a_sweep_runs_every_combination_in_parallel_and_ranks_them(tmp_path: Path) -> None:
    path = tmp_path / "bars.dbn.zst"
    generate_bars(path, symbols=2, bars=1500, seed=4)
    env = _env(tmp_path / "d")
    out = tmp_path / "sweep"
    args = ["backtest", str(path), "--out", str(out), "--strategy", "ema_cross"]
    args += ["--param", "fast=5,8", "--param", "slow=13,21", "--workers", "2"]
    swept = subprocess.run(
        [TICKLANE, *args, "--sort-by", "total_pnl"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert swept.returncode == 0, swept.stderr[-3000:]
    assert "[4/4]" in swept.stderr  # progress, one line per combination
    rows = _rows(out / "sweep.csv")
    assert sorted((r["fast"], r["slow"]) for r in rows) == [
        ("5", "13"),
        ("5", "21"),
        ("8", "13"),
        ("8", "21"),
    ]
    pnls = [int(r["total_pnl"]) for r in rows]
    assert pnls == sorted(pnls, reverse=True)  # best first
    for r in rows:  # each row is its own run's statistics
        stats = json.loads((out / f"fast={r['fast']},slow={r['slow']}" / "stats.json").read_text())
        assert int(r["total_pnl"]) == stats["total_pnl"]
        assert int(r["trades"]) == stats["trades"]
    # And a run of one combination alone gives the same figures.
    alone = _backtest(
        path,
        tmp_path / "alone",
        "--strategy",
        "ema_cross",
        "--param",
        "fast=8",
        "--param",
        "slow=13",
        env=env,
    )
    in_sweep = json.loads((out / "fast=8,slow=13" / "stats.json").read_text())
    assert alone == in_sweep
    # A combination the strategy refuses stops the sweep before anything runs.
    refused = ["--strategy", "ema_cross", "--param", "fast=5,30", "--param", "slow=20"]
    bad = subprocess.run(
        [TICKLANE, "backtest", str(path), "--out", str(tmp_path / "bad"), *refused],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "fast=30,slow=20" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_warm_up_bars_give_a_mid_session_start_the_signals_of_a_full_run(tmp_path: Path) -> None:
    path = tmp_path / "bars.dbn.zst"
    generate_bars(path, symbols=2, bars=1200, seed=21)
    env = _env(tmp_path / "d")
    args = ["--strategy", "ema_cross", "--param", "fast=8", "--param", "slow=21"]
    _backtest(path, tmp_path / "full", *args, env=env)
    _backtest(path, tmp_path / "warm", *args, "--warmup-bars", "600", env=env)
    bars = _rows(tmp_path / "full" / "bars.csv")
    started = {  # each symbol's 600th bar: where the warmed-up strategy starts to trade
        symbol: int([b for b in bars if b["symbol"] == symbol][599]["ts_event"])
        for symbol in ("GEN000", "GEN001")
    }
    columns = ("signal_id", "symbol", "ts_event", "target_position", "sequence")
    full = [tuple(r[c] for c in columns) for r in _rows(tmp_path / "full" / "signals.csv")]
    warm = [tuple(r[c] for c in columns) for r in _rows(tmp_path / "warm" / "signals.csv")]
    later = [s for s in full if int(s[2]) > started[s[1]]]
    assert warm == later  # the first at the same bar, and every one after equal, id for id
    assert len(later) >= 20
    assert len(full) - len(later) >= 20  # the warm-up's own signals were there, and dropped
