"""Helpers for tests that run `ticklane agents` workers as a user would: subprocesses."""

import socket
import subprocess
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

from agents.backtest import run_backtest
from agents.service import ensure_topics
from agents.strategies.registry import registry
from ticklane import wire
from ticklane.settings import Settings, StrategyConfig
from ticklane.trading import Signal

TICKLANE = str(Path(sys.executable).with_name("ticklane"))

# Short EMAs on 1m bars: a few signals per symbol in half an hour of synthetic data.
STRATEGY = StrategyConfig(name="ema_cross", params={"fast": 3, "slow": 8})

CONFIG = """
[agents]
commit_interval_s = 0.5

[[agents.strategies]]
name = "ema_cross"
params = { fast = 3, slow = 8 }
bar_interval = "1m"
"""


# 0DTE on 1 s bars of the synthetic chain: dozens of signals in eight minutes of data.
ZERO_DTE = StrategyConfig(name="zero_dte", params={"fast": 5, "slow": 20}, bar_interval="1s")

CHAIN_CONFIG = """
[agents]
commit_interval_s = 0.5

[[agents.strategies]]
name = "zero_dte"
params = { fast = 5, slow = 20 }
bar_interval = "1s"
"""


def prepare(settings: Settings, directory: Path) -> Path:
    """Create the agents' topics (so tests can read them at once) and write the config."""
    ensure_topics(settings, str(settings.kafka.bootstrap_servers))
    return write_config(directory)


def write_config(directory: Path) -> Path:
    path = directory / "agents.toml"
    path.write_text(CONFIG)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """One `ticklane agents` worker with its metrics port and log."""

    def __init__(self, env: dict[str, str], config: Path, log_dir: Path, worker_id: str = "0"):
        self.port = free_port()
        self.log_path = log_dir / f"agents-{worker_id}.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                TICKLANE,
                "agents",
                "--config",
                str(config),
                "--worker-id",
                worker_id,
                "--metrics-port",
                str(self.port),
            ],
            env=env,
            stdout=self._log,
            stderr=self._log,
        )

    def metric(self, name: str) -> float | None:
        """A metric's value (summed over labels), or None while the worker does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + " ", name + "{"))
        ]
        return sum(values)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()


def signals_on_topic(read_topic, topic: str) -> list[Signal]:
    return [wire.decode_as(value, Signal) for _, _, _, value in read_topic(topic)]


def ids(signals: list[Signal]) -> set[str]:
    return {s.signal_id for s in signals}


def assert_duplicates_identical(signals: list[Signal]) -> None:
    """A signal seen twice (a replay after a kill) must be the same signal, field for field."""
    by_id: dict[str, set[Signal]] = defaultdict(set)
    for signal in signals:
        by_id[signal.signal_id].add(signal)
    differing = {k: v for k, v in by_id.items() if len(v) > 1}
    assert not differing, f"same id, different signals: {differing}"


def backtest_signals(path: Path, strategy: StrategyConfig = STRATEGY) -> list[Signal]:
    return run_backtest(path, strategy, registry()).signals
