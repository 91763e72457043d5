"""Warm-up on the live path: a strategy started in the middle of a generated session, by each
source of history, signals from the same bar and with the same ids as one that ran from the
session's start (`ticklane backtest` over the whole session: the Kafka path's reference)."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import databento_dbn as dbn
import pytest

from agents.backtest import run_backtest
from agents.controls import ControlBook
from agents.engine import Engine
from agents.frames import symbol_absorber
from agents.refetch import PartitionReader
from agents.roster import Roster
from agents.strategies.registry import registry
from agents.warmup import BarsTopics, HistorySource, MarketTopic, Warmup
from producers.synth import DEFAULT_START_NS, generate
from tests.fakes.databento_historical import FakeHistoricalServer
from tests.fakes.databento_live import FAKE_API_KEY
from tests.integration.agents.test_agents_pipeline import produce_file
from tests.integration.agents.workers import (
    STRATEGY,
    WorkerProcess,
    prepare,
    signals_on_topic,
)
from ticklane import dbn as tdbn
from ticklane import wire
from ticklane.market import MarketFrame
from ticklane.settings import Settings
from ticklane.trading import Signal

pytestmark = pytest.mark.integration

MINUTE = 60_000_000_000
HALF = 60
"""Minutes in each half of the session."""
SYMBOLS = ("SYN000", "SYN001")

# The worker before the strategy was added: bars only (ema_cross on a symbol not traded).
BARS_ONLY = """
[agents]
commit_interval_s = 0.5
bar_intervals = [{intervals}]

[[agents.strategies]]
name = "ema_cross"
symbols = ["NOT-TRADED"]
"""

WITH_STRATEGY = """
[agents]
commit_interval_s = 0.5
bar_intervals = [{intervals}]
{extra}
[[agents.strategies]]
name = "ema_cross"
params = {{ fast = 3, slow = 8 }}
bar_interval = "1m"
"""


@dataclass(frozen=True)
class Session:
    """Two halves of one generated session: the second begins where the first ends."""

    first: Path
    second: Path
    middle: int

    @classmethod
    def generate(cls, directory: Path) -> "Session":
        first, second = directory / "first.dbn.zst", directory / "second.dbn.zst"
        generate(first, symbols=len(SYMBOLS), minutes=HALF, seed=4, options=False)
        middle = DEFAULT_START_NS + HALF * MINUTE
        generate(second, symbols=len(SYMBOLS), minutes=HALF, seed=5, start_ns=middle, options=False)
        return cls(first, second, middle)

    def from_the_start(self) -> list[Signal]:
        return run_backtest([self.first, self.second], STRATEGY, registry()).signals


class Harness:
    """One test's broker topics, config files and workers."""

    def __init__(
        self, settings: Settings, env: dict[str, str], read_topic, directory: Path, poll
    ) -> None:
        prepare(settings, directory)
        self.settings, self.env, self.read_topic, self.dir, self.poll = (
            settings,
            env,
            read_topic,
            directory,
            poll,
        )
        self.prefix = settings.topics.prefix

    def config(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def signals(self) -> list[Signal]:
        return signals_on_topic(self.read_topic, f"{self.prefix}signals")

    def run_second_half(self, config: Path, session: Session, expected: list[Signal]) -> str:
        """A worker with the strategy takes the second half; its log once the signals are in."""
        worker = WorkerProcess(self.env, config, self.dir, "0")
        try:
            produce_file(session.second, self.env)
            try:
                self.poll(
                    lambda: len(self.signals()) >= len(expected),
                    timeout_s=90,
                    what="as many signals as the run from the start made after the live start",
                )
            except pytest.fail.Exception:
                got = [(s.symbol, s.ts_event, s.target_position) for s in self.signals()]
                want = [(s.symbol, s.ts_event, s.target_position) for s in expected]
                pytest.fail(f"signals {sorted(got)} != {sorted(want)}")
        finally:
            worker.stop()
        assert sorted(self.signals(), key=_order) == sorted(expected, key=_order)
        return worker.log_path.read_text()


def _order(signal: Signal) -> tuple[str, int]:
    return signal.symbol, signal.ts_event


def check_first_signals(got: list[Signal], session: Session, live_from: int) -> None:
    """Each symbol's first signal is the full run's first from the live start; a start
    without history (the second half alone) would have signalled otherwise."""
    full = session.from_the_start()
    cold = run_backtest(session.second, STRATEGY, registry()).signals
    differs = []
    for symbol in SYMBOLS:
        mine = [s for s in sorted(got, key=_order) if s.symbol == symbol]
        assert mine[0] == next(s for s in full if s.symbol == symbol and s.ts_event >= live_from)
        differs.append(mine[0] != next(s for s in cold if s.symbol == symbol))
    assert any(differs)


def live_frames(read_topic, md_topic: str, middle: int) -> list[tuple[int, int, MarketFrame]]:
    """The second half's frames as Kafka holds them: (partition, offset, frame)."""
    frames = []
    for partition, offset, _key, value in read_topic(md_topic):
        frame = wire.decode_as(value, MarketFrame)
        if tdbn.ts_event(frame.records) >= middle:
            frames.append((partition, offset, frame))
    return sorted(frames, key=lambda f: (f[0], f[1]))


def warm_and_run(
    settings: Settings,
    read_topic,
    session: Session,
    source: Callable[[PartitionReader], HistorySource],
) -> list[Signal]:
    """The second half's frames through `Warmup.prepare` and the engine, with fresh state,
    as a worker that first sees the symbols at the middle of the session runs them."""
    md_topic = f"{settings.topics.prefix}md.trades"
    engine = Engine(Roster([STRATEGY], registry()), warmup_bars=500)
    absorb = symbol_absorber(engine)
    reader = PartitionReader([str(settings.kafka.bootstrap_servers)], None, "test")
    warmup = Warmup(engine, ControlBook(), [source(reader)])
    entries: dict[bytes, bytes] = {}
    signals: list[Signal] = []

    async def run() -> None:
        for partition, offset, frame in live_frames(read_topic, md_topic, session.middle):
            key, position = frame.symbol.encode(), (partition, offset)
            raw = await warmup.prepare(key, frame, entries.get(key), md_topic, position)
            out = absorb(key, frame, raw, position)
            assert out is not None
            warmup.settled(key)
            entries[key] = out.entry
            signals.extend(out.signals)
        await reader.close()

    asyncio.run(run())
    return signals


def _counts(read_topic, topic: str) -> dict[bytes, int]:
    counts: dict[bytes, int] = {}
    for _, _, key, _ in read_topic(topic):
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_history_from_the_bars_topic_gives_the_run_from_the_start(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    """The bars a worker published, read back by the bars.* source, warm a strategy that
    first sees the symbols at the middle of the session: it then signals as the run from
    the start did, from the same bar."""
    prepare(settings, tmp_path)
    session = Session.generate(tmp_path)
    config = tmp_path / "bars.toml"
    config.write_text(BARS_ONLY.format(intervals='"1m"'))
    bars_topic = f"{settings.topics.prefix}bars.1m"
    worker = WorkerProcess(cli_env, config, tmp_path, "0")
    try:
        produce_file(session.first, cli_env)
        produce_file(session.second, cli_env)
        # Minutes 0..118 are published; the last stays open.
        poll(
            lambda: _counts(read_topic, bars_topic) == {s.encode(): 2 * HALF - 1 for s in SYMBOLS},
            timeout_s=90,
            what="the session's bars",
        )
    finally:
        worker.stop()
    signals = warm_and_run(
        settings, read_topic, session, lambda r: BarsTopics(r, {MINUTE: bars_topic}, 500, 3600)
    )
    # Minute 59 (closing at the middle) is history: the first live bar is minute 60.
    expected = [s for s in session.from_the_start() if s.ts_event > session.middle]
    assert sorted(signals, key=_order) == sorted(expected, key=_order)
    check_first_signals(signals, session, session.middle + 1)


def test_history_from_the_market_data_topic_gives_the_run_from_the_start(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path
) -> None:
    """No bars were published: the md.* source rebuilds the first half's bars from the
    symbol's own frames, with the bar open at the middle, so even that bar is whole."""
    prepare(settings, tmp_path)
    session = Session.generate(tmp_path)
    produce_file(session.first, cli_env)
    produce_file(session.second, cli_env)
    signals = warm_and_run(
        settings, read_topic, session, lambda r: MarketTopic(r, [MINUTE], 500, 3600)
    )
    # The bar open at the middle (minute 59) is completed by live data: its signal is live.
    expected = [s for s in session.from_the_start() if s.ts_event >= session.middle]
    assert sorted(signals, key=_order) == sorted(expected, key=_order)
    check_first_signals(signals, session, session.middle)


def _ohlcv_1m(session: Session) -> tuple[list[dbn.OHLCVMsg], dict[int, str]]:
    """The first half as Databento's ohlcv-1m records (bars of the same trades)."""
    result = run_backtest([session.first, session.second], STRATEGY, registry())
    ids = {symbol: 100 + i for i, symbol in enumerate(SYMBOLS)}
    records = [
        dbn.OHLCVMsg(
            rtype=int(dbn.RType.OHLCV_1M),
            publisher_id=1,
            instrument_id=ids[symbol],
            ts_event=bar.ts_event,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
        )
        for symbol, bar in result.bars
        if bar.ts_event < session.middle
    ]
    return sorted(records, key=lambda r: r.ts_event), {i: s for s, i in ids.items()}


def test_a_producer_started_mid_session_warms_from_databento_historical(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    """Kafka holds only the second half (the live feed started mid-session): the history is
    Databento's ohlcv-1m, through the real SDK against a local historical API."""
    run = Harness(settings, cli_env, read_topic, tmp_path, poll)
    session = Session.generate(tmp_path)
    records, symbols = _ohlcv_1m(session)
    config = run.config(
        "agents.toml",
        WITH_STRATEGY.format(intervals='"1m"', extra='warmup_dataset = "GLBX.MDP3"\n'),
    )
    # Minute 59 came whole from Databento: the first live bar is minute 60.
    expected = [s for s in session.from_the_start() if s.ts_event > session.middle]
    with FakeHistoricalServer({"ohlcv-1m": records}, symbols, dataset="GLBX.MDP3") as server:
        run.env = {
            **cli_env,
            **server.env(),
            "DATABENTO_API_KEY": FAKE_API_KEY,
            "DATABENTO_HISTORICAL_GATEWAY": server.url,
        }
        log = run.run_second_half(config, session, expected)
        asked = server.requests
    assert sorted(r.fields["symbols"] for r in asked) == sorted(SYMBOLS)
    assert all(r.fields["schema"] == "ohlcv-1m" and r.status == 200 for r in asked)
    for symbol in SYMBOLS:
        line = f"warm-up: ema_cross on {symbol} (1m, first seen): {HALF} bar(s) from "
        assert line + "databento GLBX.MDP3 ohlcv-1m" in log
    assert FAKE_API_KEY not in log
    check_first_signals(run.signals(), session, session.middle + 1)


def test_warmup_from_databento_without_a_key_stops_start_up(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "agents.toml"
    config.write_text(WITH_STRATEGY.format(intervals='"1m"', extra='warmup_dataset = "GLBX.MDP3"'))
    env = {k: v for k, v in cli_env.items() if not k.startswith("DATABENTO_API_KEY")}
    worker = WorkerProcess(env, config, tmp_path)
    assert worker.proc.wait(60) == 2
    worker.stop()
    text = worker.log_path.read_text()
    assert "agents.warmup_dataset is set, but DATABENTO_API_KEY is not set" in text
