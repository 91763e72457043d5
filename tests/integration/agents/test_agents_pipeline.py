"""One agents worker on a real broker: many symbols at once, dead letters, control commands."""

import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from agents.engine import Engine, SymbolEntry
from agents.roster import Roster
from agents.strategies.registry import registry
from agents.ticks import trade_columns
from producers.synth import DEFAULT_START_NS, generate
from tests.integration.agents.workers import (
    TICKLANE,
    WorkerProcess,
    backtest_signals,
    prepare,
    signals_on_topic,
)
from ticklane import dbn, kafka, wire
from ticklane.control import ControlAction, ControlCommand
from ticklane.market import MarketFrame
from ticklane.settings import Settings, StrategyConfig
from ticklane.tail import consume
from ticklane.timing import FRAME_TAKEN, SIGNAL_SENT, TICK_RECEIVED, TICK_SENT, stamp, stamps
from ticklane.trading import Signal

pytestmark = pytest.mark.integration

SECOND = 1_000_000_000
MINUTE = 60 * SECOND

ONE_SECOND_BARS = """
[[agents.strategies]]
name = "ema_cross"
params = { fast = 3, slow = 8 }
bar_interval = "1s"
"""


def walk_frames(symbol: str, seed: int, frames: int = 2, size: int = 100) -> list[bytes]:
    """Trades every 100 ms with trending regimes (so EMAs cross), cut into frames."""
    n = frames * size
    rng = np.random.default_rng(seed)
    dtype = dbn.record_dtype(0)
    array = np.zeros(n, dtype=dtype)
    array["length"], array["rtype"], array["instrument_id"] = dtype.itemsize // 4, 0, seed
    array["ts_event"] = DEFAULT_START_NS + np.arange(n) * 100_000_000
    array["ts_recv"] = array["ts_event"]
    drift = np.repeat(rng.choice([-2, 2], size=n // 30 + 1), 30)[:n]
    array["price"] = 100_000_000_000 + np.cumsum(rng.integers(-2, 3, n) + drift) * 10_000_000
    array["size"] = rng.integers(1, 5, n)
    array["action"], array["side"] = b"T", b"A"
    raw = array.tobytes()
    step = size * dtype.itemsize
    return [raw[i : i + step] for i in range(0, len(raw), step)]


def single_symbol_run(symbol: str, frames: list[bytes]) -> list[Signal]:
    roster = Roster(
        [StrategyConfig(name="ema_cross", params={"fast": 3, "slow": 8}, bar_interval="1s")],
        registry(),
    )
    engine = Engine(roster)
    entry, signals = SymbolEntry(), []
    for offset, records in enumerate(frames):
        outcome = engine.absorb_trades(symbol, entry, (0, offset), trade_columns(records))
        assert outcome is not None
        entry, signals = outcome.entry, signals + outcome.signals
    return signals


def dlq_messages(settings: Settings) -> list[tuple[bytes, dict[str, bytes]]]:
    config = kafka.consumer_config(
        settings.kafka, str(settings.kafka.bootstrap_servers), f"dlq-{uuid.uuid4().hex}"
    )
    consumer = Consumer(config)
    topic = f"{settings.topics.prefix}dlq"
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    try:
        while batch := consumer.consume(100, 1.0):
            out += [(m.value() or b"", dict(m.headers() or [])) for m in batch if not m.error()]
    finally:
        consumer.close()
    return out


def test_thousand_symbols_at_once_each_as_alone_and_bad_messages_to_dlq(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    prepare(settings, tmp_path)
    config = tmp_path / "agents.toml"
    config.write_text(ONE_SECOND_BARS)
    symbols = [f"S{i:04d}" for i in range(1000)]
    data = {s: walk_frames(s, seed=i + 1) for i, s in enumerate(symbols)}
    expected = {s: single_symbol_run(s, frames) for s, frames in data.items()}
    assert sum(map(len, expected.values())) >= 1000
    bootstrap = str(settings.kafka.bootstrap_servers)
    producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
    md = f"{settings.topics.prefix}md.trades"
    bad = [
        (b"S0000", b"not a ticklane message"),
        (b"S0001", wire.encode(Signal.create("x", "S0001", 1, 1))),  # valid, not a frame
        (b"S0002", wire.encode(MarketFrame("S0003", data["S0003"][0]))),  # wrong key
    ]
    for key, value in bad:
        producer.produce(md, key=key, value=value)
    for round_ in range(2):  # every symbol's first frame, then every second one
        for symbol in symbols:
            value = wire.encode(MarketFrame(symbol, data[symbol][round_]))
            producer.produce(md, key=symbol.encode(), value=value)
            producer.poll(0)
    producer.flush(60)

    worker = WorkerProcess(cli_env, config, tmp_path)
    topic = f"{settings.topics.prefix}signals"
    total = sum(map(len, expected.values()))
    try:
        poll(
            lambda: len(signals_on_topic(read_topic, topic)) >= total,
            timeout_s=120,
            what="every symbol's signals",
        )
        got: dict[str, list[Signal]] = defaultdict(list)
        for signal in signals_on_topic(read_topic, topic):
            got[signal.symbol].append(signal)
        dead = poll(
            lambda: (m := dlq_messages(settings)) and len(m) >= 3 and m,
            timeout_s=30,
            what="three dead letters",
        )
        assert worker.metric("ticklane_agent_dlq_total") == 3
    finally:
        worker.stop()
    for symbol in symbols:
        assert got[symbol] == expected[symbol], symbol
    # The three sat in different partitions: the dlq holds them in any order.
    reasons = {value: headers["reason"].decode() for value, headers in dead}
    assert set(reasons) == {value for _, value in bad}
    assert "not a ticklane message" in reasons[bad[0][1]]
    assert "expected a MarketFrame" in reasons[bad[1][1]]
    assert "does not match" in reasons[bad[2][1]]
    assert all(headers["topic"].decode() == md for _, headers in dead)


def produce_file(path: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [TICKLANE, "produce", "file", str(path)],
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def send_control(settings: Settings, *commands: ControlCommand) -> None:
    producer = Producer(
        kafka.producer_config(settings.kafka, str(settings.kafka.bootstrap_servers))
    )
    for command in commands:
        producer.produce(
            f"{settings.topics.prefix}control", key=command.key.encode(), value=wire.encode(command)
        )
    producer.flush(30)


def test_control_disables_enables_and_reconfigures_without_restart(
    settings: Settings, cli_env: dict[str, str], read_topic, tmp_path: Path, poll
) -> None:
    config = prepare(settings, tmp_path)
    first, second = tmp_path / "a.dbn.zst", tmp_path / "b.dbn.zst"
    generate(first, symbols=2, minutes=30, seed=4, options=False)
    later = DEFAULT_START_NS + 30 * MINUTE
    generate(second, symbols=2, minutes=30, seed=5, start_ns=later, options=False)
    expected = [s for s in backtest_signals(first) if s.symbol == "SYN001"]
    send_control(
        settings,
        ControlCommand.create(ControlAction.DISABLE, 1, strategy="ema_cross", symbol="SYN000"),
    )
    signals_topic = f"{settings.topics.prefix}signals"
    bars_topic = f"{settings.topics.prefix}bars.1m"

    def by_symbol(symbol: str) -> list[Signal]:
        return [s for s in signals_on_topic(read_topic, signals_topic) if s.symbol == symbol]

    def bar_count(symbol: str) -> int:
        return sum(key == symbol.encode() for _, _, key, _ in read_topic(bars_topic))

    worker = WorkerProcess(cli_env, config, tmp_path)
    try:
        produce_file(first, cli_env)
        poll(lambda: by_symbol("SYN001") == expected, timeout_s=60, what="SYN001's signals")
        # SYN000 was processed too (its bars are out), but its strategy was disabled.
        poll(lambda: bar_count("SYN000") >= 29, timeout_s=30, what="SYN000's bars")
        assert by_symbol("SYN000") == []

        send_control(
            settings,
            ControlCommand.create(ControlAction.ENABLE, 2, strategy="ema_cross", symbol="SYN000"),
            ControlCommand.create(
                ControlAction.SET_PARAMS,
                3,
                strategy="ema_cross",
                symbol="SYN001",
                params={"long_only": True},
            ),
        )
        poll(
            lambda: worker.metric("ticklane_agent_control_commands_total") == 3,
            timeout_s=30,
            what="the worker applying the commands",
        )
        produce_file(second, cli_env)
        poll(
            lambda: [s for s in by_symbol("SYN000") if s.ts_event > later],
            timeout_s=60,
            what="SYN000 signalling again once enabled",
        )
        poll(
            lambda: any(s.target_position == 0 for s in by_symbol("SYN001")),
            timeout_s=60,
            what="SYN001 going flat rather than short",
        )
    finally:
        worker.stop()
    after = [s for s in by_symbol("SYN001") if s.ts_event > later]
    assert after
    assert all(s.target_position >= 0 for s in after)


def test_a_signal_carries_the_timing_stamps_of_the_frame_that_made_it(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path, poll
) -> None:
    prepare(settings, tmp_path)
    config = tmp_path / "agents.toml"
    config.write_text(ONE_SECOND_BARS)
    bootstrap = str(settings.kafka.bootstrap_servers)
    producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
    md = f"{settings.topics.prefix}md.trades"
    sent: dict[tuple[str, int], int] = {}  # (symbol, the producer's stamp) -> frame index
    for i, symbol in enumerate(("AAA", "BBB")):
        for n, records in enumerate(walk_frames(symbol, seed=i + 1, frames=4, size=50)):
            received = 1_000_000 * (i + 1) + n  # a stamp per frame, to tell them apart
            sent[(symbol, received)] = n
            headers = [stamp(TICK_RECEIVED, received), stamp(TICK_SENT, received + 500)]
            value = wire.encode(MarketFrame(symbol, records))
            producer.produce(md, key=symbol.encode(), value=value, headers=headers)
    producer.flush(30)
    started = time.time_ns()
    worker = WorkerProcess(cli_env, config, tmp_path)
    topic = f"{settings.topics.prefix}signals"
    consumer = kafka.consumer_config(settings.kafka, bootstrap, f"stamps-{uuid.uuid4().hex}")

    def stamped() -> list[tuple[Signal, dict[str, int]]]:
        messages = consume(consumer, topic, from_beginning=True, until_end=True)
        return [(wire.decode_as(m.value or b"", Signal), stamps(m.headers)) for m in messages]

    try:
        found = poll(lambda: (s := stamped()) and len(s) >= 2 and s, timeout_s=90, what="signals")
        # Every stamped frame's delay from hand-over to taking is on the worker's metrics
        # (here since the stamps' epoch start: all above the top bucket).
        delayed = "ticklane_agent_frame_delay_seconds_count"
        poll(lambda: worker.metric(delayed) == len(sent), what="the frame delays counted")
        assert worker.metric('ticklane_agent_frame_delay_seconds_bucket{le="10.0"}') == 0
    finally:
        worker.stop()
    for signal, carried in found:
        # The frame's own stamps, copied; then the worker's, in order, while it ran.
        assert (signal.symbol, carried[TICK_RECEIVED]) in sent
        assert carried[TICK_SENT] == carried[TICK_RECEIVED] + 500
        assert started <= carried[FRAME_TAKEN] <= carried[SIGNAL_SENT] <= time.time_ns()
