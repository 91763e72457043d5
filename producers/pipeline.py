"""The producer loop: a source's records → routing → resume check → frames → Kafka.

I/O lives here and in the adapters it calls; the decisions (routing, framing, what to
skip after a restart, quality findings) are the pure modules beside it.
"""

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from producers import metrics
from producers.checkpoint import read_tails
from producers.framing import ChainFramer, FrameLimits
from producers.planner import FramePlanner, PlannedFrame
from producers.quality import QualityTracker
from producers.resume import ResumeState
from producers.sink import KafkaSink
from ticklane import kafka
from ticklane.chains import ChainRouter
from ticklane.dbn import rtype_name, ts_event
from ticklane.dbn_files import open_dbn
from ticklane.market import MarketFrame
from ticklane.routing import Router
from ticklane.settings import Settings
from ticklane.symbology import SymbolMap
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

log = logging.getLogger(__name__)

_DEFINITION: Final = 0x13
CHAIN_TOPIC: Final = "md.chain"
Stop = Callable[[], bool]


class ProducerError(RuntimeError):
    """The producer cannot start or continue (topics, Kafka, input)."""


def parse_speed(text: str) -> float | None:
    """`max` → None (as fast as possible), `realtime` → 1.0, `10x` → 10.0."""
    value = text.strip().lower()
    if value == "max":
        return None
    if value == "realtime":
        return 1.0
    if value.endswith("x"):
        try:
            factor = float(value[:-1])
        except ValueError:
            factor = 0.0
        if factor > 0:
            return factor
    raise ValueError(f"speed {text!r} is not max, realtime or a factor like 10x")


@dataclass
class Report:
    """What one producer run did."""

    source: str = ""
    records: int = 0
    published: int = 0
    skipped_written: int = 0
    frames: int = 0
    quality: dict[str, int] = field(default_factory=dict)
    unmapped_instruments: int = 0
    seconds: float = 0.0


def paced(
    batches: Iterable[tuple[Sequence[bytes], int]],
    factor: float,
    *,
    from_index: int = 0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[list[bytes], int]]:
    """Re-cut batches so records leave at `factor` times the pace of their ts_event.

    Records due together stay together (one frame per symbol); definitions are never held
    back, nor records before `from_index` (a restart's catch-up). Data time is the running
    maximum of ts_event, so a late record waits for nothing.
    """
    origin: tuple[int, float] | None = None
    data_time = 0
    for records, first_index in batches:
        pending: list[bytes] = []
        start = first_index
        for offset, record in enumerate(records):
            if record[1] != _DEFINITION and first_index + offset >= from_index:
                data_time = max(data_time, ts_event(record))
                if origin is None:
                    origin = (data_time, clock())
                delay = origin[1] + (data_time - origin[0]) / 1e9 / factor - clock()
                if delay > 0:
                    if pending:
                        yield pending, start
                    pending, start = [], first_index + offset
                    sleep(delay)
            pending.append(record)
        if pending:
            yield pending, start


class Producer:
    """Runs one source into Kafka, resuming exactly where Kafka ends."""

    def __init__(self, settings: Settings, limits: FrameLimits, *, linger_ms: int = 5) -> None:
        self._settings = settings
        self.limits = limits
        self._bootstrap = kafka.bootstrap_servers(settings)
        self._specs = {
            spec.base: spec for spec in catalogue(settings.topics) if spec.base.startswith("md.")
        }
        self._partitions = self._ensure_topics()
        self._sink = KafkaSink(
            kafka.producer_config(settings.kafka, self._bootstrap, linger_ms=linger_ms),
            self._partitions,
        )

    def _ensure_topics(self) -> dict[str, int]:
        admin = TopicAdmin(kafka.client_config(self._settings.kafka, self._bootstrap))
        # With them, `status` for the heartbeat: no client has the broker create a topic.
        status = [spec for spec in catalogue(self._settings.topics) if spec.base == "status"]
        specs = [*self._specs.values(), *status]
        checks = admin.ensure(specs, self._settings.topics.replication_factor)
        drift = [c for c in checks if c.is_error]
        if drift:
            raise ProducerError(
                "market-data topics differ from the catalogue: "
                + ", ".join(f"{c.spec.name} ({c.detail})" for c in drift)
            )
        return {spec.name: spec.partitions for spec in self._specs.values()}

    def resume_state(self, source: str, topics: Iterable[str]) -> ResumeState:
        """What Kafka already holds from this source, read from the topics' tails."""
        config = kafka.consumer_config(
            self._settings.kafka, self._bootstrap, f"ticklane-resume-{source}"
        )
        wanted = {t: self._partitions[t] for t in topics}
        return ResumeState.from_tails(read_tails(config, wanted, source))

    def partitions(self, topic: str) -> int:
        """How many partitions a market-data topic has."""
        return self._partitions[topic]

    def topic_names(self) -> dict[str, str]:
        """Catalogue base name → full topic name, for the md.* topics."""
        return {base: spec.name for base, spec in self._specs.items()}

    def send(
        self,
        planned: Sequence[PlannedFrame],
        source: str,
        received_at: float | None = None,
        *,
        ordered: bool = False,
    ) -> int:
        """Produce planned frames, keyed by their symbol; definitions first and
        acknowledged before the data.

        `ordered` (md.chain, whose frames are named by their chain) sends them as planned:
        a chain's consumer must see definitions exactly where they happened.
        """
        if not ordered:
            definitions = [p for p in planned if p.frame.records[1] == _DEFINITION]
            groups = [definitions, [p for p in planned if p.frame.records[1] != _DEFINITION]]
        else:
            definitions, groups = [], [list(planned)]
        for group in groups:
            for item in group:
                frame = item.frame
                message = MarketFrame(
                    frame.symbol,
                    frame.records,
                    source,
                    frame.position,
                    item.batch,
                    frame.symbols,
                    frame.runs,
                )
                self._sink.send(frame.topic, message, frame.count, received_at)
                metrics.FRAMES_OUT.labels(frame.topic).inc()
            if group is definitions and definitions:
                self._sink.flush()
        metrics.QUEUE_DEPTH.set(self._sink.queued)
        return len(planned)

    def flush(self) -> None:
        """Wait for every frame to be acknowledged."""
        self._sink.flush()
        metrics.QUEUE_DEPTH.set(0)

    @property
    def sink(self) -> KafkaSink:
        """The Kafka sink (for its delivery counters)."""
        return self._sink


def produce_file(
    path: Path | list[Path],
    settings: Settings,
    *,
    limits: FrameLimits | None = None,
    speed: float | None = None,
    stop: Stop = lambda: False,
    source: str | None = None,
    chains: Collection[str] | None = None,
) -> Report:
    """Replay a DBN file into the md.* topics; a restart continues exactly where Kafka ends.

    Several files are replayed as one source, merged by time (`ticklane.dbn_files.DbnFiles`).

    `source` names the input on the frames (default: the file's metadata header).
    `chains` also writes option chains to md.chain: those of the named underlyings, or of
    every underlying an option definition names when it holds "*".

    Raises `ticklane.dbn_files.DbnFileError` for a damaged file after producing (and
    flushing) every record before the damage.
    """
    started = time.monotonic()
    limits = limits or FrameLimits()
    producer = Producer(settings, limits)
    dbn_file = open_dbn(path)
    batches = dbn_file.batches()
    first = next(batches, None)  # reads the metadata header: the source's identity
    source = source or dbn_file.source
    report = Report(source=source)
    if first is None:
        return report
    schema = dbn_file.metadata.schema
    names = producer.topic_names()
    router = Router(_symbols(dbn_file.metadata), names, schema)
    record_topics = [name for base, name in names.items() if base != CHAIN_TOPIC]
    topics = [names[f"md.{schema}"]] if f"md.{schema}" in names else record_topics
    resume = producer.resume_state(source, topics)
    if not resume.empty:
        log.info("resuming %s: records up to index %d may be in Kafka", path, resume.last_index())
    planner = FramePlanner(router, producer.sink.partition, resume, limits, router.stable)
    quality = QualityTracker()
    chained = None if chains is None else ChainPlan(producer, dbn_file.metadata, source, chains)
    stream = _chain(first, batches)
    try:
        catch_up = resume.last_index() + 1
        for records, first_index in paced(stream, speed, from_index=catch_up) if speed else stream:
            _observe(records, quality, schema, source.split(":", 1)[0])
            report.frames += producer.send(planner.plan(records, first_index), source)
            if chained is not None:
                report.frames += chained.send(records, first_index)
            report.records += len(records)
            if stop():
                log.info("stopping on request after %d records", report.records)
                break
    finally:
        producer.flush()  # what was planned before an error still reaches Kafka
        report.published = planner.stats.published
        report.skipped_written = planner.stats.skipped_written
        report.quality = {k.value: v for k, v in quality.counts.items()}
        report.unmapped_instruments = len(router.unmapped)
        report.seconds = time.monotonic() - started
        metrics.SKIPPED_WRITTEN.inc(report.skipped_written)
    return report


class ChainPlan:
    """The md.chain side of a file replay: its own routing, framing and resume state."""

    def __init__(
        self, producer: Producer, metadata: Any, source: str, chains: Collection[str]
    ) -> None:
        names = producer.topic_names()
        self._producer = producer
        self._source = source
        self._topic = names[CHAIN_TOPIC]
        self._router = Router(_symbols(metadata), names, metadata.schema)
        self._chains = ChainRouter(None if "*" in chains else chains)
        self._chain_of: dict[str, str] = {}
        limits = producer.limits
        self._planner = FramePlanner(
            self._route,
            # A record's symbol, or a frame's, which is its chain's underlying.
            lambda topic, symbol: producer.sink.partition(topic, self._of_chain(symbol)),
            producer.resume_state(source, [self._topic]),
            limits,
            framer=ChainFramer(limits, self._chain_of.__getitem__),
        )

    def _of_chain(self, symbol: str) -> str:
        return self._chain_of.get(symbol, symbol)

    def _route(self, record: bytes) -> tuple[str, str] | None:
        routed = self._router(record)
        if routed is None:
            return None
        underlying = self._chains(record, routed[1])
        if underlying is None:
            return None
        self._chain_of[routed[1]] = underlying
        return self._topic, routed[1]

    def send(self, records: Sequence[bytes], first_index: int) -> int:
        """Plan and send the chain frames of one batch; returns how many."""
        planned = self._planner.plan(records, first_index)
        return self._producer.send(planned, self._source, ordered=True)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[tuple[list[bytes], int]]:
    yield first.records, first.first_index
    for batch in rest:
        yield batch.records, batch.first_index


def _symbols(metadata: Any) -> SymbolMap:
    symbols = SymbolMap()
    symbols.add_metadata_mappings(metadata.mappings)
    return symbols


def _observe(
    records: Sequence[bytes], quality: QualityTracker, schema: str | None, kind: str
) -> None:
    for finding, count in quality.check_all(records).items():
        metrics.QUALITY.labels(finding.value).inc(count)
    if records:
        metrics.RECORDS_IN.labels(kind, schema or rtype_name(records[0][1])).inc(len(records))
