"""`ticklane produce` → `ticklane agents` gives what `ticklane backtest` gives on the same file."""

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from producers.synth import generate
from tests.integration.agents.workers import TICKLANE, WorkerProcess, prepare, signals_on_topic
from ticklane import wire
from ticklane.market import Bar
from ticklane.settings import Settings

pytestmark = pytest.mark.e2e

PARAMS = ["--param", "fast=3", "--param", "slow=8"]  # as in the workers' config file


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TICKLANE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_kafka_path_signals_equal_backtest_id_for_id(
    settings: Settings,
    cli_env: dict[str, str],
    read_topic,
    tmp_path: Path,
    *,
    databento_dir: Path,
    poll,
) -> None:
    synthetic = tmp_path / "synthetic.dbn.zst"
    generate(synthetic, symbols=6, minutes=30, seed=17, options=False)
    real = tmp_path / "es-trades.dbn.zst"
    shutil.copy(databento_dir / "glbx-esu4-20240701.trades.dbn.zst", real)
    expected_signals: set[str] = set()
    expected_bars: list[tuple[str, ...]] = []
    for path in (synthetic, real):
        out = tmp_path / f"backtest-{path.stem}"
        done = run(
            "backtest",
            str(path),
            "--strategy",
            "ema_cross",
            *PARAMS,
            "--out",
            str(out),
            env=cli_env,
        )
        assert done.returncode == 0, done.stderr
        for name in ("bars", "indicators", "signals"):
            with (out / f"{name}.csv").open() as fh:
                assert fh.readline().split(",")[:2] == ["ts_event", "symbol"]
        expected_signals |= {r["signal_id"] for r in rows(out / "signals.csv")}
        expected_bars += [
            (r["ts_event"], r["symbol"], r["open"], r["high"], r["low"], r["close"], r["volume"])
            for r in rows(out / "bars.csv")
        ]
    assert len(expected_signals) >= 20

    config = prepare(settings, tmp_path)
    worker = WorkerProcess(cli_env, config, tmp_path)
    signals_topic = f"{settings.topics.prefix}signals"
    try:
        for path in (synthetic, real):
            done = run("produce", "file", str(path), env=cli_env)
            assert done.returncode == 0, done.stderr
        poll(
            lambda: len(signals_on_topic(read_topic, signals_topic)) >= len(expected_signals),
            timeout_s=60,
            what="the agents' signals",
        )
        got = [s.signal_id for s in signals_on_topic(read_topic, signals_topic)]
        bars = []
        for _, _, key, value in read_topic(f"{settings.topics.prefix}bars.1m"):
            b = wire.decode_as(value, Bar)
            bars.append(
                (
                    str(b.ts_close),
                    (key or b"").decode(),
                    str(b.open),
                    str(b.high),
                    str(b.low),
                    str(b.close),
                    str(b.volume),
                )
            )
    finally:
        worker.stop()
    assert sorted(got) == sorted(expected_signals)  # id for id, each once
    assert sorted(bars) == sorted(expected_bars)


def test_backtest_reads_ohlcv_as_given_and_names_indicators(
    cli_env: dict[str, str], tmp_path: Path, databento_dir: Path
) -> None:
    path = databento_dir / "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst"
    done = run(
        "backtest", str(path), "--strategy", "supertrend", "--out", str(tmp_path), env=cli_env
    )
    assert done.returncode == 0, done.stderr
    bars, indicators = rows(tmp_path / "bars.csv"), rows(tmp_path / "indicators.csv")
    assert {r["symbol"] for r in bars} == {"ESU4", "NQU4"}
    assert all(int(r["ts_event"]) - int(r["ts_open"]) == 60_000_000_000 for r in bars)
    assert list(indicators[0]) == [
        "ts_event",
        "symbol",
        "strategy",
        "supertrend_10_3",
        "supertrend_10_3_direction",
    ]
    assert [(r["ts_event"], r["symbol"]) for r in indicators] == [
        (r["ts_event"], r["symbol"]) for r in bars
    ]
    signals = rows(tmp_path / "signals.csv")
    assert list(signals[0])[:5] == [
        "ts_event",
        "symbol",
        "strategy",
        "target_position",
        "signal_id",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "ema_cross", "--param", "fast=40"], "fast (40) must be less than slow"),
        (["--strategy", "ema_cross", "--param", "speed=1"], "unknown parameter"),
        (["--strategy", "ema_cross", "--bar-interval", "7m"], "--bar-interval must be one of"),
    ],
)
def test_backtest_refuses_bad_requests_with_exit_2(
    cli_env: dict[str, str], tmp_path: Path, databento_dir: Path, args: list[str], message: str
) -> None:
    path = databento_dir / "glbx-esu4-20240701.trades.dbn.zst"
    done = run("backtest", str(path), *args, "--out", str(tmp_path / "out"), env=cli_env)
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())


def test_backtest_zero_dte_on_a_chain_and_refuses_a_file_without_one(
    cli_env: dict[str, str], tmp_path: Path, databento_dir: Path
) -> None:
    chain = tmp_path / "chain.dbn.zst"
    summary = generate(chain, symbols=1, minutes=8, seed=3)
    out = tmp_path / "out"
    args = ["--param", "fast=5", "--param", "slow=20", "--bar-interval", "1s", "--out", str(out)]
    done = run("backtest", str(chain), "--strategy", "zero_dte", *args, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr  # the calendar library's pandas noise is silenced
    signals = rows(out / "signals.csv")
    assert signals
    assert {row["symbol"] for row in signals} <= set(summary.option_symbols)
    assert {row["symbol"] for row in rows(out / "bars.csv")} == {summary.symbols[0]}
    assert {"ema_5", "ema_20"} <= set(rows(out / "indicators.csv")[0])

    plain = databento_dir / "glbx-esu4-20240701.trades.dbn.zst"
    done = run("backtest", str(plain), "--strategy", "zero_dte", *args, env=cli_env)
    assert done.returncode == 1
    assert "holds no option chain" in " ".join(done.stderr.split())


def test_backtest_zero_dte_on_real_cme_files_merged_into_one_chain(
    cli_env: dict[str, str], tmp_path: Path, databento_dir: Path
) -> None:
    """Databento ships each schema in its own file; given together they are one chain."""
    names = [
        "glbx-esm4-20240509.definition.dbn.zst",
        "glbx-esm4-options-20240509.definition.dbn.zst",
        "glbx-esm4-options-20240509.bbo-1m.dbn.zst",
        "glbx-esm4-20240509.ohlcv-1m.dbn.zst",
    ]
    out = tmp_path / "out"
    args = ["--strategy", "zero_dte", "--param", "calendar=CMES", "--out", str(out)]
    done = run("backtest", *(str(databento_dir / n) for n in names), *args, env=cli_env)
    assert done.returncode == 0, done.stderr
    # ESM4's one-minute bars reached the strategy (its EMAs warm on them)...
    indicators = rows(out / "indicators.csv")
    assert {row["symbol"] for row in indicators} == {"ESM4"}
    assert len(indicators) == 10
    # ...but its options expire on 2024-06-21, not on the day: nothing is traded.
    assert rows(out / "signals.csv") == []
