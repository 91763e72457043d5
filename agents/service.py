"""One agents worker: the app, its agent, the control feed and the metrics, wired and run.

Several workers with the same settings (and each its own state directory) form one
consumer group and share the md.* partitions; each symbol's state moves with its
partition through the table's changelog.
"""

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import faust
from faust.types import TP
from pydantic import SecretStr

from agents import metrics
from agents.app import AgentsApp, aiokafka_security, make_app
from agents.chains import ChainEngine
from agents.channels import Channels, declare
from agents.control_feed import ControlFeed
from agents.controls import ControlBook
from agents.engine import Engine
from agents.frames import FrameHandler, chain_absorber, symbol_absorber
from agents.outbox import ChangelogStore, Outbox
from agents.progress import Progress
from agents.refetch import PartitionReader
from agents.roster import INTERVALS_NS, Roster, split_by_kind
from agents.strategies.registry import registry
from agents.warmup import BarsTopics, DatabentoBars, HistorySource, MarketTopic, Warmup
from ticklane import kafka
from ticklane.beacon import Beacon, Report, metric_total
from ticklane.cluster import Change, Finding
from ticklane.health import reporting
from ticklane.lag import LagGauge
from ticklane.logs import quiet_repeats
from ticklane.settings import Settings
from ticklane.status import ProcessState, instance_name
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue, resolve

log = logging.getLogger(__name__)

LAYOUT_FILE: Final = "kafka-layout.json"
"""In the worker's state directory: the cluster its RocksDB state belongs to (topic ids)."""
LAG_EVERY_S: Final = 1.0
"""How often the worker's consumer lag gauge is measured."""
CHANGELOG_LINGER_MS: Final = 20
"""How long the changelog producer gathers entries before it sends them. A frame's entry is
off the tick's path (its signal does not wait for it; only the offset commit does), and one
entry per frame sent at once made as many produce requests as the md.* data itself: batched,
the broker's load per tick falls and the signals' producer is never queued behind them."""
HISTORICAL_GATEWAY_ENV: Final = "DATABENTO_HISTORICAL_GATEWAY"
"""Base URL of Databento's historical API for warm-up (default: Databento's own)."""


@dataclass(frozen=True)
class Worker:
    """A configured worker, ready to run."""

    app: AgentsApp
    channels: Channels
    feed: ControlFeed
    outbox: Outbox
    changelogs: Outbox
    """The tables' changelog entries: off the tick's path, so sent in batches of their own."""
    topics: tuple[str, ...]
    """Every topic the worker reads and writes, its tables' changelogs included."""


def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create the topics the agents read and write if they are missing, from the catalogue
    (no client has the broker create one: `ticklane.kafka.client_config`)."""
    wanted = {f"md.{settings.agents.source}", "md.chain", "signals", "indicators", "dlq"}
    wanted |= {"control", "control.acks", "status"}
    wanted |= {f"bars.{name}" for name in INTERVALS_NS}
    specs = [spec for spec in catalogue(settings.topics) if spec.base in wanted]
    admin = TopicAdmin(kafka.client_config(settings.kafka, bootstrap))
    admin.ensure(specs, settings.topics.replication_factor)


def _agent(handler: FrameHandler) -> Callable[[faust.StreamT[Any]], Awaitable[None]]:
    async def absorb(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await handler.handle(event.message)

    return absorb


def build_worker(
    settings: Settings,
    bootstrap: str,
    state_dir: Path,
    *,
    trusted: Callable[[], bool] = lambda: True,
    databento_key: SecretStr | None = None,
) -> Worker:
    """The app with its agent registered; raises RosterError for a bad strategy config.
    `trusted()` false (Kafka is not the cluster it started on) holds every frame.
    `databento_key`: for warm-up from Databento when `agents.warmup_dataset` is set."""
    strategies = registry()
    per_symbol, per_chain = split_by_kind(settings.agents.strategies, strategies)
    book = ControlBook()
    publish = [INTERVALS_NS[name] for name in settings.agents.bar_intervals]
    roster = Roster(per_symbol, strategies)
    engine = Engine(
        roster,
        book,
        publish_intervals=publish,
        indicators=True,
        warmup_bars=settings.agents.warmup_bars,
    )
    app = make_app(settings, bootstrap, state_dir)
    channels = declare(app, settings, chains=bool(per_chain))
    topics = [channels.source] + ([channels.chain] if channels.chain else [])
    progress = Progress(frozenset(t.get_topic_name() for t in topics))
    app.progress = progress  # the consumer commits md.* offsets from this account only
    reader = PartitionReader(
        [str(server) for server in bootstrap.split(",")],
        app.conf.id,
        settings.kafka.client_id,
        security=aiokafka_security(settings.kafka),
    )
    # Warm-up reads history with a consumer of its own, outside the group: its assignments
    # come and go per request and must not touch the group's commits.
    history = PartitionReader(
        [str(server) for server in bootstrap.split(",")],
        None,
        settings.kafka.client_id,
        security=aiokafka_security(settings.kafka),
    )
    app.side_readers = (reader, history)
    warmup = (
        make_warmup(settings, engine, book, history, channels, roster, databento_key)
        if settings.agents.warmup_bars
        else None
    )
    handlers = [(channels.source, symbol_absorber(engine), channels.symbols, warmup)]
    if channels.chain is not None and channels.chains is not None:
        chain_engine = ChainEngine(Roster(per_chain, strategies, chains=True), book)
        # Chains are not warmed: 0DTE strategies trade one session's options from its open.
        handlers.append((channels.chain, chain_absorber(chain_engine), channels.chains, None))
    outbox = Outbox(kafka.producer_config(settings.kafka, bootstrap))
    changelogs = Outbox(
        kafka.producer_config(settings.kafka, bootstrap, linger_ms=CHANGELOG_LINGER_MS)
    )
    for topic, absorber, table, warm in handlers:
        # At 0 from the start, so an alert on its increase sees the first dead letter.
        metrics.DLQ.labels(topic.get_topic_name())
        # The table's changelog delivery is not awaited: the commit waits for it instead
        # (agents.progress), so the worker goes straight on to the next frame.
        store = ChangelogStore(table, changelogs)
        handler = FrameHandler(
            absorber,
            channels,
            table,
            store,
            progress=progress,
            reader=reader,
            outbox=outbox,
            trusted=trusted,
            warmup=warm,
        )
        # concurrency=1: with more, Faust can commit past an event in flight
        # (docs/design.md, "Agent concurrency 1").
        app.agent(topic, name=f"absorb-{topic.get_topic_name()}", concurrency=1)(_agent(handler))

    lag = LagGauge(metrics.CONSUMER_LAG)

    async def measure_lag() -> None:
        held = [tp for tp in app.consumer.assignment() if progress.tracks(tp.topic)]
        metrics.ASSIGNED.set(len(held))
        lag.set(consumer_lags(app, progress))

    app.timer(LAG_EVERY_S)(measure_lag)

    feed = ControlFeed(
        book,
        settings.kafka,
        bootstrap,
        channels.control_name,
        acks_topic=resolve(settings.topics, "control.acks"),
        app_id=settings.agents.app_id,
    )
    tables = [channels.symbols] + ([channels.chains] if channels.chains is not None else [])
    written = [*channels.bars.values(), channels.signals, channels.indicators, channels.dlq]
    names = [t.get_topic_name() for t in [*topics, *written]]
    names += [t.changelog_topic.get_topic_name() for t in tables]
    names += [channels.control_name, resolve(settings.topics, "control.acks")]
    return Worker(app, channels, feed, outbox, changelogs, tuple(names))


def make_warmup(  # noqa: PLR0917 - the worker's parts it reads, each once
    settings: Settings,
    engine: Engine,
    book: ControlBook,
    reader: PartitionReader,
    channels: Channels,
    roster: Roster,
    databento_key: SecretStr | None,
) -> Warmup:
    """Warm-up from bars.*, then md.*, then Databento when configured (`agents.warmup`)."""
    agents = settings.agents
    lookback_s = agents.warmup_lookback_h * 3600
    # Only the intervals this app publishes: their topics hold its own bars.
    published = {INTERVALS_NS[name] for name in agents.bar_intervals}
    bar_topics = {ns: t.get_topic_name() for ns, t in channels.bars.items() if ns in published}
    sources: list[HistorySource] = [
        BarsTopics(reader, bar_topics, agents.warmup_bars, lookback_s),
        MarketTopic(reader, roster.intervals(), agents.warmup_bars, lookback_s),
    ]
    if agents.warmup_dataset is not None and databento_key is not None:
        gateway = os.environ.get(HISTORICAL_GATEWAY_ENV) or None
        sources.append(
            DatabentoBars(databento_key, agents.warmup_dataset, lookback_s, gateway=gateway)
        )
    return Warmup(engine, book, sources)


def consumer_lags(app: AgentsApp, progress: Progress) -> list[tuple[str, int]]:
    """Per md.* partition this worker holds: frames between the next to absorb and the end
    its consumer last fetched (partitions not yet started or fetched are left out)."""
    consumer = app.consumer
    lags = []
    for tp in consumer.assignment():
        if not progress.tracks(tp.topic):
            continue  # the tables' changelogs, read back by Faust itself
        position, high = progress.position(tp), consumer.highwater(tp)
        if position is not None and high is not None:
            lags.append((tp.topic, int(high) - position))
    return lags


def run_worker(
    settings: Settings,
    bootstrap: str,
    state_dir: Path,
    *,
    metrics_port: int = 0,
    databento_key: SecretStr | None = None,
) -> None:
    """Run one worker until SIGTERM or Ctrl-C; /metrics, /health, /ready on `metrics_port`."""
    ensure_topics(settings, bootstrap)
    beacon: Beacon | None = None  # watches the worker's topics, so it is made after it
    worker = build_worker(
        settings,
        bootstrap,
        state_dir,
        trusted=lambda: beacon is None or beacon.watch.trusted,
        databento_key=databento_key,
    )
    beacon = Beacon(
        settings,
        bootstrap,
        "agents",
        instance_name("agents", settings.agents.app_id),
        AgentsProbe(),
        watch=worker.topics,
        memory=state_dir / LAYOUT_FILE,
        remedy=(
            f"this worker's state ({state_dir}) belongs to the topics it was built from: to "
            "start it over on these, stop it and delete that directory"
        ),
    )
    watch = beacon.watch

    def changelog_behind(behind: Mapping[TP, tuple[int, int]]) -> None:
        watch.report(
            Finding(
                Change.CHANGELOG_BEHIND,
                f"{tp.topic}[{tp.partition}]",
                f"state at offset {state}",
                f"changelog ends at {end}",
            )
            for tp, (state, end) in sorted(behind.items())
        )

    worker.app.on_changelog_behind = changelog_behind
    # Before the first frame: state left by a run on another cluster is found now.
    watch.check()
    with reporting(beacon, metrics_port):
        applied = worker.feed.catch_up()
        log.info("applied %d control command(s) before start", applied)
        worker.feed.start()
        try:
            _QuietWorker(
                worker.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
            ).execute_from_commandline()
        finally:
            worker.feed.stop()
            worker.outbox.close()
            worker.changelogs.close()


class _QuietWorker(faust.Worker):
    """Faust's worker, holding back repeated connection complaints on the log handlers it
    installs in place of ours (aiokafka and librdkafka log every failed attempt)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        quiet_repeats()


class AgentsProbe:
    """The agents' status, from their own metrics: starting until the worker holds md.*
    partitions (Faust says "ready" before that, and after losing them), degraded while
    outputs fail to reach Kafka."""

    def __init__(self) -> None:
        self._failed = 0.0

    def __call__(self) -> Report:
        total = metric_total
        failed = total("ticklane_agent_failed_deliveries")
        details = {
            "ticks": f"{total('ticklane_agent_ticks'):.0f}",
            "signals": f"{total('ticklane_agent_signals'):.0f}",
            "symbols": f"{total('ticklane_agent_symbols'):.0f}",
            "control_commands": f"{total('ticklane_agent_control_commands'):.0f}",
            "dead_letters": f"{total('ticklane_agent_dlq'):.0f}",
        }
        new, self._failed = failed - self._failed, failed
        assigned = total("ticklane_agent_assigned_partitions")
        details["assigned_partitions"] = f"{assigned:.0f}"
        if assigned == 0:
            why = "no md.* partition assigned (joining the group, or more workers than partitions)"
            return Report(ProcessState.STARTING, why, -1, details)
        if new > 0:
            why = f"{new:.0f} output message(s) Kafka did not take since the last status"
            return Report(ProcessState.DEGRADED, why, -1, details)
        return Report(details=details)
