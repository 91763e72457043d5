"""`ticklane demo`: the whole pipeline on one machine, ending with a summary.

A local broker, synthetic (or given) DBN data replayed by the producer, the agents and
the executor on the paper venue, each in its own process exactly as an operator runs
them (`ticklane produce file`, `ticklane agents`, `ticklane execute`). The summary is
read back from Kafka and from the venue's own record.

With `--broker tastytrade` the executor trades through the TastyTrade adapter and the real
SDK at the local fake (`ticklane fake tastytrade`, its own process, instruments and fills
from the same md.* topics), with made-up credentials: the whole path without an account.

With `--broker schwab` the same through the Schwab adapter and schwab-py at `ticklane fake
schwab`, with a token file the fake mints (a login made now). Schwab trades equities and
equity options only, so the synthetic option chain is put on a stock (SYN001, `ticklane synth
--chain-on 1`) and the executor is routed (`executor.symbols`) to the data's equity-like
underlyings and the options on them; futures-like ones (instrument class F: in the synthetic
data every third underlying, SYN000, SYN003, ...) are left unrouted: their signals are made
and answered by no order.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Final

from confluent_kafka import Consumer, TopicPartition

from ticklane import kafka, wire
from ticklane.broker import EmbeddedBroker
from ticklane.market import Bar
from ticklane.performance import equity_curve, round_trips, statistics
from ticklane.settings import Settings
from ticklane.tail import consume
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue
from ticklane.trading import Fill, Order, Position, Signal
from ticklane.units import PRICE_SCALE

MARKER: Final = ".demo"
"""Marks a data dir the demo made, so a later demo may wipe it (and only then)."""
FAKE_DIR: Final = "fake-tastytrade"
SCHWAB_FAKE_DIR: Final = "fake-schwab"
STATE_DIRS: Final = ("agents", "executor", "paper", "api", FAKE_DIR, SCHWAB_FAKE_DIR)
VENUES: Final = ("paper", "tastytrade", "schwab")
FUTURE_CLASS: Final = "F"
"""Databento's instrument class of a future: Schwab cannot trade those (nor options on them)."""
DEMO_SECRET: Final = "demo-not-a-secret"  # noqa: S105 - the fake accepts any credentials
TICKLANE: Final = str(Path(sys.executable).with_name("ticklane"))

DEMO_CONFIG: Final = """\
[agents]
source = "trades"
bar_intervals = ["1s", "1m"]

[[agents.strategies]]
name = "ema_cross"
symbols = {ema_symbols}
bar_interval = "1s"
params = {{ fast = 8, slow = 21, quantity = 1 }}

[[agents.strategies]]
name = "supertrend"
symbols = {supertrend_symbols}
bar_interval = "1s"
params = {{ length = 10, multiplier = 3.0, quantity = 1 }}

[executor]
max_position = 10
"""

CHAIN_CONFIG: Final = """
[[agents.strategies]]
name = "zero_dte"
symbols = {chain_symbols}
bar_interval = "1s"
params = {{ fast = 5, slow = 20, quantity = 1 }}
"""


DEMO_BARS: Final = "1s"
"""The bars every demo strategy is fed (DEMO_CONFIG, CHAIN_CONFIG)."""
DEMO_CAPITAL: Final = 100_000 * PRICE_SCALE
"""The account the summary's Sharpe ratio is measured on (`ticklane backtest`'s default)."""


class DemoError(RuntimeError):
    """The demo cannot run here, or a part of it failed."""


@dataclass
class Summary:
    """What the demo did, per the records in Kafka and the paper venue's store."""

    data: str = ""
    broker: str = "paper"
    symbols: int = 0
    ticks: int = 0
    signals: int = 0
    orders: int = 0
    fills: int = 0
    strategies: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def prepare_data_dir(data_dir: Path) -> None:
    """Wipe a previous demo's state; refuse to touch state the demo did not make."""
    existing = [d for d in STATE_DIRS if (data_dir / d).exists()]
    if existing and not (data_dir / MARKER).exists():
        raise DemoError(
            f"{data_dir} holds {', '.join(existing)} state that a demo did not create; "
            "run the demo with another data dir (TICKLANE_DATA_DIR=...)"
        )
    for name in existing:
        shutil.rmtree(data_dir / name)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text(
        "made by `ticklane demo`; the next demo wipes this dir's state\n"
    )


def demo_config(symbols: list[str], chains: Sequence[str] = ()) -> str:
    """Agents and executor settings: EMA cross on half the symbols, Supertrend on the rest,
    and 0DTE on every underlying with an option chain."""
    half = max(1, len(symbols) // 2)
    ema, supertrend = symbols[:half], symbols[half:] or symbols[:1]
    config = DEMO_CONFIG.format(
        ema_symbols=json.dumps(ema), supertrend_symbols=json.dumps(supertrend)
    )
    if chains:
        # Before [executor]: a TOML array of tables must stay with its parent table.
        head, tail = config.split("\n[executor]", 1)
        config = head + CHAIN_CONFIG.format(chain_symbols=json.dumps(list(chains)))
        config += "\n[executor]" + tail
    return config


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A ticklane command in its own process, stopped (SIGTERM, then SIGKILL) on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # Unbuffered: the log shows each line when it is written (Faust logs to stdout, which
        # a file would otherwise hold back by the block).
        proc = subprocess.Popen(  # noqa: S603 - our own console script and arguments
            [TICKLANE, *args],
            env=env | {"PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every message in a topic, decoded."""
    return [value for _, value in read_keyed(settings, topic)]


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """True end offset of every partition (fetch responses; ListOffsets may under-report)."""
    bootstrap = kafka.bootstrap_servers(settings)
    consumer = Consumer(
        kafka.consumer_config(settings.kafka, bootstrap, f"demo-ends-{os.getpid()}")
        | {"enable.partition.eof": True}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, -2001) for p in parts])  # the last message
        ends = dict.fromkeys(parts, 0)
        pending = set(parts)
        while pending:
            msg = consumer.poll(10)
            if msg is None:
                raise DemoError(f"no answer reading the end of {topic}")
            partition = msg.partition() or 0
            if msg.error() is not None:
                pending.discard(partition)
            else:
                ends[partition] = (msg.offset() or 0) + 1
        return ends
    finally:
        consumer.close()


def caught_up(settings: Settings, topic: str, group: str) -> bool:
    """Whether a consumer group has committed the end of every partition of a topic."""
    ends = end_offsets(settings, topic)
    consumer = Consumer(
        kafka.consumer_config(settings.kafka, kafka.bootstrap_servers(settings), group)
    )
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset >= ends[tp.partition] for tp in committed if ends[tp.partition] > 0)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll a condition until it holds twice in a row, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    held = 0
    while time.monotonic() < deadline:
        held = held + 1 if condition() else 0
        if held >= 2:
            return
        time.sleep(0.5)  # pacing the demo's own polling, not a test wait
    raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def summarise(
    settings: Settings, data: Path, ticks: int, venue: tuple[list[str], Path], broker: str
) -> Summary:
    """Counts from Kafka, P&L per strategy from `positions`, orders and fills from the venue
    (`venue`: the command that prints its record, and the record's dir)."""
    prefix = settings.topics.prefix
    signals = [m for m in read_all(settings, prefix + "signals") if isinstance(m, Signal)]
    positions = [m for m in read_all(settings, prefix + "positions") if isinstance(m, Position)]
    latest = {p.key: p for p in positions}
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"signals": 0, "symbols": 0, "realized_pnl": 0.0, "open_positions": {}}
    )
    for sig in signals:
        per[sig.strategy]["signals"] += 1
    for pos in latest.values():
        entry = per[pos.strategy]
        entry["symbols"] += 1
        entry["realized_pnl"] += pos.realized_pnl / PRICE_SCALE
        if pos.quantity:
            entry["open_positions"][pos.symbol] = pos.quantity
    for strategy, figures in performance_by_strategy(settings).items():
        per[strategy].update(figures)
    orders, fills = _venue_record(venue)
    return Summary(
        data=str(data),
        broker=broker,
        symbols=len({s.symbol for s in signals} | {p.symbol for p in latest.values()}),
        ticks=ticks,
        signals=len(signals),
        orders=orders,
        fills=fills,
        strategies={k: dict(v) for k, v in sorted(per.items())},
    )


def performance_by_strategy(settings: Settings) -> dict[str, dict[str, Any]]:
    """What `ticklane backtest` says of a run, per strategy, from what Kafka holds: its
    fills (by their orders' strategy) and the closes of the bars its strategies are fed
    (`DEMO_BARS`), with the account size a backtest assumes by default."""
    prefix = settings.topics.prefix
    orders = [m for m in read_all(settings, prefix + "orders") if isinstance(m, Order)]
    strategy_of = {o.client_order_id: o.strategy for o in orders}
    unique = {m.fill_id: m for m in read_all(settings, prefix + "fills") if isinstance(m, Fill)}
    fills = sorted(unique.values(), key=lambda f: (f.ts_event, f.fill_id))
    closes = sorted(
        (bar.ts_close, symbol, bar.close)
        for symbol, bar in read_keyed(settings, prefix + f"bars.{DEMO_BARS}")
        if isinstance(bar, Bar)
    )
    executor = settings.executor
    out: dict[str, dict[str, Any]] = {}
    for strategy in sorted({s for s in strategy_of.values() if s}):
        mine = [f for f in fills if strategy_of.get(f.client_order_id) == strategy]
        symbols = {f.symbol for f in mine}
        multipliers = {s: executor.multipliers.get(s, executor.default_multiplier) for s in symbols}
        curve, by_symbol = equity_curve(mine, [c for c in closes if c[1] in symbols], multipliers)
        stats = statistics(round_trips(mine, multipliers), curve, by_symbol, DEMO_CAPITAL)
        out[strategy] = {
            "trades": stats.trades,
            "win_rate": stats.win_rate,
            "total_pnl": stats.total_pnl / PRICE_SCALE,
            "max_drawdown": stats.max_drawdown / PRICE_SCALE,
            "sharpe": stats.sharpe,
        }
    return out


def read_keyed(settings: Settings, topic: str) -> list[tuple[str, Any]]:
    """Every message in a topic, decoded, with its key."""
    config = kafka.consumer_config(
        settings.kafka, kafka.bootstrap_servers(settings), f"demo-read-{os.getpid()}"
    )
    out = []
    for message in consume(config, topic, from_beginning=True, until_end=True):
        if message.value is not None:
            with contextlib.suppress(wire.WireError):
                out.append(((message.key or b"").decode(), wire.decode(message.value)))
    return out


def _venue_record(venue: tuple[list[str], Path]) -> tuple[int, int]:
    command, directory = venue

    def lines(kind: str) -> int:
        result = subprocess.run(  # noqa: S603 - our own console script
            [TICKLANE, *command, kind, "--json", "--data-dir", str(directory)],
            capture_output=True,
            text=True,
            check=True,
        )
        return sum(1 for line in result.stdout.splitlines() if line.strip())

    return lines("orders"), lines("fills")


def to_json(summary: Summary) -> str:
    """The summary as JSON (for `--summary-json`)."""
    return json.dumps(asdict(summary), indent=2, sort_keys=True)


def ensure_topics(settings: Settings) -> None:
    """Create the catalogue on the demo's broker."""
    bootstrap = kafka.bootstrap_servers(settings)
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure(catalogue(settings.topics))


def start_broker(settings: Settings, log: IO[str]) -> EmbeddedBroker:
    """The demo's own in-memory broker, its address published for other commands."""
    broker = EmbeddedBroker(log_path=settings.data_dir / "broker.log")
    broker.start()
    (settings.data_dir / kafka.ADDRESS_FILE).write_text(
        f"{broker.bootstrap_servers} {os.getpid()}\n"
    )
    print(f"broker answering at {broker.bootstrap_servers}", file=log, flush=True)
    return broker


@dataclass(frozen=True)
class DemoOptions:
    """What `ticklane demo` was asked for."""

    data: Path | None = None
    symbols: int = 8
    minutes: int = 20
    seed: int = 1
    speed: str = "max"
    until_done: bool = False
    summary_json: Path | None = None
    timeout_s: float = 900.0
    broker: str = "paper"
    metrics_port: int | None = None
    """Where the first process's /metrics goes (agents; executor +1, producer +2); None: none."""


def _count(settings: Settings, base: str) -> int:
    return sum(end_offsets(settings, settings.topics.prefix + base).values())


def _progress(settings: Settings, out: IO[str], started: float) -> None:
    counts = {base: _count(settings, base) for base in ("signals", "orders", "fills")}
    print(
        f"[{time.monotonic() - started:6.1f}s] signals {counts['signals']:,}  "
        f"order events {counts['orders']:,}  fills {counts['fills']:,}",
        file=out,
        flush=True,
    )


def _data_file(settings: Settings, options: DemoOptions, env: dict[str, str], out: IO[str]) -> Path:
    if options.data:
        return options.data
    path = settings.data_dir / "demo.dbn.zst"
    subprocess.run(  # noqa: S603 - our own console script
        [
            TICKLANE,
            "synth",
            "--out",
            str(path),
            "--symbols",
            str(options.symbols),
            "--minutes",
            str(options.minutes),
            "--seed",
            str(options.seed),
            # Schwab trades no futures (SYN000 is futures-like): its options go on a stock.
            "--chain-on",
            "1" if options.broker == "schwab" and options.symbols > 1 else "0",
        ],
        env=env,
        check=True,
        stdout=out,
        stderr=out,
    )
    return path


def equity_symbols(path: Path) -> list[str]:
    """The file's underlyings that are not futures, and the options on them: what a Schwab
    executor may trade (exact names, as `executor.symbols` patterns)."""
    import databento  # noqa: PLC0415 - only the demo needs the SDK's reader here

    classes: dict[str, str] = {}
    underlying: dict[str, str] = {}
    for r in databento.DBNStore.from_file(path):
        if isinstance(r, databento.InstrumentDefMsg):
            classes[str(r.raw_symbol)] = str(r.instrument_class)
            if str(r.instrument_class) in ("C", "P"):
                underlying[str(r.raw_symbol)] = str(r.underlying)
    equities = {s for s, c in classes.items() if c not in (FUTURE_CLASS, "C", "P")}
    options = {s for s, u in underlying.items() if u in equities}
    return sorted(equities | options)


def _instruments_of(path: Path) -> tuple[list[str], list[str]]:
    """The file's symbols less options (the bar strategies trade those), and the
    underlyings its options name (0DTE trades their chains)."""
    import databento  # noqa: PLC0415 - only the demo needs the SDK's reader here

    store = databento.DBNStore.from_file(path)
    options = [
        r
        for r in store
        if isinstance(r, databento.InstrumentDefMsg) and str(r.instrument_class) in ("C", "P")
    ]
    symbols = sorted(set(store.metadata.mappings) - {str(r.raw_symbol) for r in options})
    chains = sorted({str(r.underlying) for r in options if str(r.underlying)})
    return symbols, chains


def run_demo(settings: Settings, options: DemoOptions, out: IO[str] = sys.stderr) -> Summary:
    """Run the pipeline end to end; return the summary (and write it if asked)."""
    started = time.monotonic()
    prepare_data_dir(settings.data_dir)
    broker = None if settings.kafka.bootstrap_servers else start_broker(settings, out)
    try:
        bootstrap = kafka.bootstrap_servers(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
        env |= {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TICKLANE_DATA_DIR": str(settings.data_dir),
            "TICKLANE_TOPICS__PREFIX": settings.topics.prefix,
            "TICKLANE_TOPICS__PARTITIONS": str(settings.topics.partitions),
        }
        ensure_topics(settings)
        data = _data_file(settings, options, env, out)
        config = settings.data_dir / "demo.toml"
        symbols, chains = _instruments_of(data)
        config.write_text(demo_config(symbols, chains))
        produce = ["produce", "file", str(data), "--speed", options.speed]
        produce += ["--chains", ",".join(chains)] if chains else []
        logs = settings.data_dir / "logs"
        with contextlib.ExitStack() as stack:
            executor_env = env
            if options.broker == "tastytrade":
                deadline = started + options.timeout_s
                executor_env = env | _fake_tastytrade(settings, env, stack, deadline=deadline)
            elif options.broker == "schwab":
                deadline = started + options.timeout_s
                executor_env = env | _fake_schwab(settings, env, stack, deadline=deadline)
                executor_env["TICKLANE_EXECUTOR__SYMBOLS"] = json.dumps(equity_symbols(data))
            ports = MetricsPorts(options.metrics_port)
            agents = ["agents", "--config", str(config), *ports.flag("agents")]
            stack.enter_context(process(agents, env, logs / "agents.log"))
            execute = ["execute", "--config", str(config), "--broker", options.broker]
            executor_env |= ports.executor_env()
            executor = stack.enter_context(process(execute, executor_env, logs / "executor.log"))
            url = _start_api(
                settings, env, stack, out, config, deadline=started + options.timeout_s
            )
            if options.metrics_port is not None:
                targets = write_scrape_targets(settings.data_dir, ports, url)
                print(f"Prometheus targets (file_sd_configs): {targets}", file=out, flush=True)
            produce += ports.flag("producer")
            producer = stack.enter_context(process(produce, env, logs / "producer.log"))
            ticks = _run(
                settings,
                options,
                producer=producer,
                executor=executor,
                out=out,
                started=started,
                chains=bool(chains),
            )
        venues = {
            "tastytrade": (["fake", "tastytrade"], settings.data_dir / FAKE_DIR),
            "schwab": (["fake", "schwab"], settings.data_dir / SCHWAB_FAKE_DIR),
        }
        venue = venues.get(options.broker) or (["paper"], _paper_dir(settings))
        summary = summarise(settings, data, ticks, venue, options.broker)
    finally:
        if broker is not None:
            with contextlib.suppress(OSError):
                (settings.data_dir / kafka.ADDRESS_FILE).unlink()
            broker.stop()
    summary.seconds = time.monotonic() - started
    if options.summary_json:
        options.summary_json.write_text(to_json(summary) + "\n")
    return summary


@dataclass(frozen=True)
class MetricsPorts:
    """The demo's processes' /metrics, /health and /ready ports (none when `base` is None)."""

    base: int | None = None
    OFFSETS: ClassVar[dict[str, int]] = {"agents": 0, "executor": 1, "producer": 2}

    def port(self, name: str) -> int | None:
        return None if self.base is None else self.base + self.OFFSETS[name]

    def flag(self, name: str) -> list[str]:
        """`--metrics-port N` for the agents' or the producer's command line, or nothing."""
        port = self.port(name)
        return [] if port is None else ["--metrics-port", str(port)]

    def executor_env(self) -> dict[str, str]:
        port = self.port("executor")
        return {} if port is None else {"TICKLANE_EXECUTOR__METRICS_PORT": str(port)}


def write_scrape_targets(data_dir: Path, ports: MetricsPorts, api_url: str) -> Path:
    """The demo's processes as Prometheus file-based service discovery targets, one job each
    (named `ticklane-<process>`, as deploy/prometheus/rules.yml expects)."""
    targets = [
        {"targets": [f"127.0.0.1:{ports.port(name)}"], "labels": {"job": f"ticklane-{name}"}}
        for name in MetricsPorts.OFFSETS
    ]
    api = urllib.parse.urlsplit(api_url)
    targets.append({"targets": [str(api.netloc)], "labels": {"job": "ticklane-api"}})
    path = data_dir / "prometheus-targets.json"
    path.write_text(json.dumps(targets, indent=1) + "\n")
    return path


def _start_api(
    settings: Settings,
    env: dict[str, str],
    stack: contextlib.ExitStack,
    out: IO[str],
    config: Path,
    *,
    deadline: float,
) -> str:
    """Start `ticklane api` on the demo's config (so it shows the strategies the agents run)
    with a login made for this demo only; print both; its URL."""
    import secrets  # noqa: PLC0415 - the demo's login only

    from api.auth import Role, User, hash_api_key, hash_password, new_api_key, save_users  # noqa: PLC0415

    directory = settings.data_dir / "api"
    password, key = secrets.token_urlsafe(12), new_api_key()
    demo_user = User("demo", Role.TRADER, hash_password(password), (hash_api_key(key),))
    save_users(directory / "users.json", [demo_user])
    url_file = directory / "server.url"
    url_file.unlink(missing_ok=True)
    log = settings.data_dir / "logs" / "api.log"
    stack.enter_context(process(["api", "--config", str(config), "--port", "0"], env, log))
    wait_for(url_file.exists, max(30.0, deadline - time.monotonic()), "the API")
    url = url_file.read_text().split()[0]
    print(
        f"api answering at {url} (this demo's login only: demo / {password}, "
        f"or Authorization: Bearer {key})",
        file=out,
        flush=True,
    )
    return url


def _fake_tastytrade(
    settings: Settings, env: dict[str, str], stack: contextlib.ExitStack, *, deadline: float
) -> dict[str, str]:
    """Start the fake TastyTrade server; the executor's environment to trade there."""
    directory = settings.data_dir / FAKE_DIR
    log = settings.data_dir / "logs" / "fake.log"
    stack.enter_context(process(["fake", "tastytrade", "--data-dir", str(directory)], env, log))
    url_file = directory / "server.url"
    wait_for(url_file.exists, max(30.0, deadline - time.monotonic()), "the fake TastyTrade")
    url = url_file.read_text().split()[0]
    print(f"fake TastyTrade answering at {url}", file=sys.stderr, flush=True)
    return {
        "TICKLANE_EXECUTOR__TASTYTRADE__API_URL": url,
        "TASTYTRADE_CLIENT_SECRET": DEMO_SECRET,
        "TASTYTRADE_REFRESH_TOKEN": DEMO_SECRET,
    }


def _fake_schwab(
    settings: Settings, env: dict[str, str], stack: contextlib.ExitStack, *, deadline: float
) -> dict[str, str]:
    """Start the fake Schwab server and mint a login there (a token file in the executor's
    dir, written as the adapter writes it: atomically, 0600); the executor's environment."""
    import httpx2  # noqa: PLC0415 - the Schwab demo's only

    from executors.brokers.schwab.config import (  # noqa: PLC0415 - loads the SDK
        TOKEN_FILE_NAME,
        write_token_file,
    )

    directory = settings.data_dir / SCHWAB_FAKE_DIR
    log = settings.data_dir / "logs" / "fake-schwab.log"
    stack.enter_context(process(["fake", "schwab", "--data-dir", str(directory)], env, log))
    url_file = directory / "server.url"
    wait_for(url_file.exists, max(30.0, deadline - time.monotonic()), "the fake Schwab")
    url = url_file.read_text().split()[0]
    print(f"fake Schwab answering at {url}", file=sys.stderr, flush=True)
    answer = httpx2.post(f"{url}/__fake/tokens", json={}, timeout=10)
    if answer.status_code != 200:
        raise DemoError(f"the fake Schwab made no login (HTTP {answer.status_code})")
    token_file = settings.data_dir / "executor" / TOKEN_FILE_NAME
    write_token_file(token_file, answer.json())
    return {
        "TICKLANE_EXECUTOR__SCHWAB__API_URL": url,
        "TICKLANE_EXECUTOR__SCHWAB__TOKEN_FILE": str(token_file),
        "SCHWAB_APP_KEY": "demo-app-key",
        "SCHWAB_APP_SECRET": DEMO_SECRET,
    }


def _paper_dir(settings: Settings) -> Path:
    return settings.executor.paper.data_dir or settings.data_dir / "paper"


def _run(
    settings: Settings,
    options: DemoOptions,
    *,
    producer: subprocess.Popen[bytes],
    executor: subprocess.Popen[bytes],
    out: IO[str],
    started: float,
    chains: bool = False,
) -> int:
    prefix = settings.topics.prefix
    agents_group = prefix + settings.agents.app_id
    deadline = started + options.timeout_s
    while producer.poll() is None:
        if time.monotonic() > deadline:
            raise DemoError("the replay did not finish in time")
        _progress(settings, out, started)
        time.sleep(2.0)  # progress lines every two seconds
    if producer.returncode != 0:
        log = settings.data_dir / "logs" / "producer.log"
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        raise DemoError(
            f"the producer failed (exit {producer.returncode}); {log} ends:\n" + "\n".join(tail)
        )
    ticks = _count_trades(settings)
    print(f"replay done: {ticks:,} trades in Kafka", file=out, flush=True)
    if not options.until_done:
        print("running on; Ctrl-C stops the demo and prints the summary", file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while executor.poll() is None:
                _progress(settings, out, started)
                time.sleep(5.0)
        return ticks
    remaining = max(30.0, deadline - time.monotonic())
    wait_for(lambda: caught_up(settings, prefix + "md.trades", agents_group), remaining, "agents")
    if chains:
        chain_topic = prefix + "md.chain"
        wait_for(lambda: caught_up(settings, chain_topic, agents_group), remaining, "0DTE agents")
    wait_for(
        lambda: caught_up(settings, prefix + "signals", settings.executor.group_id),
        remaining,
        "the executor",
    )
    _progress(settings, out, started)
    return ticks


def _count_trades(settings: Settings) -> int:
    from ticklane.dbn import count_records  # noqa: PLC0415
    from ticklane.market import MarketFrame  # noqa: PLC0415

    frames = read_all(settings, settings.topics.prefix + "md.trades")
    return sum(count_records(f) for f in frames if isinstance(f, MarketFrame))
