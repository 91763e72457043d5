"""Databento live into Kafka: reconnect with replay, drop the overlap, surface what can't be filled.

The SDK's own reconnect resubscribes without replay (a gap), so the producer runs its own
loop: each session subscribes with `start` a little before the newest ts_event it produced
(`producers.dedupe`), the replayed overlap is dropped, and if the gateway's replay begins
later than asked, a `DataGap` goes to `md.gaps` and is counted. A restarted producer seeds
the same overlap from the records already in Kafka, so it continues without a gap or a
duplicate. Records that arrive together are framed together; one at a time, they leave
one at a time with no added wait (linger 0).
"""

import hashlib
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import databento
import databento_dbn as dbn
from pydantic import SecretStr

from producers import metrics
from producers.checkpoint import recent_records
from producers.dedupe import DEFAULT_WINDOW_NS, ReplayDedupe
from producers.framing import FrameLimits
from producers.pipeline import Producer, ProducerError, Report, Stop
from producers.planner import FramePlanner
from producers.resume import ResumeState
from producers.sessions import InSession, calendar_for, session_clock
from ticklane import kafka
from ticklane.dbn import ts_event
from ticklane.market import DataGap
from ticklane.routing import Router
from ticklane.settings import Settings
from ticklane.symbology import SymbolMap

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 13000
QUEUE_RECORDS: Final = 200_000
"""Records held between the SDK and Kafka; when full the SDK's reader waits (backpressure)."""
MAX_BATCH: Final = 20_000
ACK_WAIT_S: Final = 0.05
"""The longest the acknowledgement thread waits in one poll (it wakes at once for each)."""
WAIT_S: Final = 0.05
"""How long the main loop waits for a record before it checks the connection and staleness."""


@dataclass(frozen=True)
class LiveRequest:
    """One live subscription."""

    dataset: str
    schema: str
    symbols: tuple[str, ...]
    stype_in: str = "raw_symbol"
    start: int | None = None
    """Replay from this ts (ns); None: from the end of what Kafka has, else from now."""

    @property
    def source(self) -> str:
        """The subscription's identity on md.* frames (independent of `start`)."""
        text = "|".join([self.dataset, self.schema, self.stype_in, *sorted(self.symbols)])
        return "live:" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Gateway:
    """Where the live gateway is; None host means Databento's own for the dataset."""

    host: str | None = None
    port: int = DEFAULT_PORT


def parse_gateway(text: str | None) -> Gateway:
    """`HOST` or `HOST:PORT`; empty means Databento's own gateway."""
    if not text:
        return Gateway()
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return Gateway(host, int(port))
    return Gateway(text)


@dataclass(frozen=True)
class Backoff:
    """Exponential reconnect delays with jitter, capped."""

    initial_s: float = 0.2
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.25

    def delays(self, rng: random.Random) -> Iterator[float]:
        """Delays for consecutive failed attempts."""
        delay = self.initial_s
        while True:
            yield delay * (1 + rng.uniform(-self.jitter, self.jitter))
            delay = min(self.max_s, delay * self.factor)


class LiveProducer:
    """Runs one live subscription into the md.* topics until stopped."""

    def __init__(
        self,
        request: LiveRequest,
        settings: Settings,
        key: SecretStr,
        gateway: Gateway,
        *,
        limits: FrameLimits | None = None,
        window_ns: int = DEFAULT_WINDOW_NS,
        backoff: Backoff | None = None,
        stale_after_s: float = 30.0,
        in_session: InSession | None = None,
    ) -> None:
        self.request = request
        self._settings = settings
        self._key = key
        self._gateway = gateway
        self._limits = limits or FrameLimits()
        self._backoff = backoff or Backoff()
        self._stale_after_s = stale_after_s
        self._in_session = in_session or session_clock(calendar_for(request.dataset))
        self._producer = Producer(settings, self._limits, linger_ms=0)
        names = self._producer.topic_names()
        self._topic = names.get(f"md.{request.schema}")
        if self._topic is None:
            raise ProducerError(f"schema {request.schema!r} has no md.* topic")
        self._gaps_topic = names["md.gaps"]
        self._router = Router(SymbolMap(), names, request.schema)
        self._planner = FramePlanner(
            self._router, self._producer.sink.partition, ResumeState(), self._limits
        )
        self._dedupe = ReplayDedupe(window_ns)
        self._window_ns = window_ns
        self._index = 0
        self.report = Report(source=request.source)
        self.sessions = 0
        self.gaps = 0
        self.condition = "connecting"
        """`connecting`, `streaming`, `stale` (no data in session hours) or `reconnecting`."""

    @property
    def latencies(self) -> list[float]:
        """Receipt-to-ack seconds of recent frames."""
        return list(self._producer.sink.latencies)

    def _seed_from_kafka(self) -> int | None:
        config = kafka.consumer_config(
            self._settings.kafka,
            kafka.bootstrap_servers(self._settings),
            f"ticklane-resume-{self.request.source}",
        )
        topic = self._topic or ""
        parts = {topic: self._producer.partitions(topic)}
        seen = recent_records(config, parts, self.request.source, self._window_ns)
        self._dedupe.seed(seen)
        if seen:
            log.info("resuming live %s: %d recent records found in Kafka", topic, len(seen))
        return self._dedupe.resume_from()

    def run(self, stop: Stop) -> Report:
        """Stream until `stop()`; reconnect on every disconnect."""
        started = time.monotonic()
        start = self.request.start
        if start is None:
            start = self._seed_from_kafka()
        self._dedupe.begin_replay()
        delays = self._backoff.delays(random.Random())  # noqa: S311 - jitter, not secrecy
        try:
            with _Acknowledgements(self._producer.sink):
                while not stop():
                    delivered = self._session(start, stop)
                    if stop():
                        break
                    metrics.RECONNECTS.inc()
                    if delivered:
                        delays = self._backoff.delays(random.Random())  # noqa: S311
                    time.sleep(next(delays))  # reconnect backoff, not a wait for a condition
                    self._dedupe.begin_replay()
                    start = self._dedupe.resume_from() or start
        finally:
            self._producer.flush()
            self.report.published = self._planner.stats.published
            self.report.seconds = time.monotonic() - started
        return self.report

    def _connect(self, start: int | None) -> tuple[Any, "queue.Queue[Any]"]:
        client = databento.Live(
            key=self._key.get_secret_value(),
            gateway=self._gateway.host,
            port=self._gateway.port,
        )
        records: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_RECORDS)
        # Stamped on arrival: receipt-to-ack latency counts the time spent queued here.
        client.add_callback(lambda record: records.put((time.monotonic(), record)))
        request = self.request
        client.subscribe(
            dataset=request.dataset,
            schema=request.schema,
            symbols=list(request.symbols),
            stype_in=request.stype_in,
            start=start,
        )
        client.start()
        return client, records

    def _session(self, start: int | None, stop: Stop) -> int:
        """One connection: returns how many records it delivered."""
        self.sessions += 1
        self.condition = "connecting" if self.sessions == 1 else "reconnecting"
        try:
            client, records = self._connect(start)
        except databento.BentoError as exc:
            if "auth" in str(exc).lower():
                raise ProducerError(f"live gateway refused the API key: {exc}") from None
            log.warning("live connection failed: %s", exc)
            return 0
        except OSError as exc:
            log.warning("live connection failed: %s", exc)
            return 0
        delivered = 0
        checked_gap = False
        last_data = time.monotonic()
        stale = False
        self.condition = "streaming"
        try:
            while True:
                batch = _take(records, WAIT_S)
                if not batch:
                    if not client.is_connected() or stop():
                        batch = _take(records, 0.0)
                        if not batch:
                            break
                    else:
                        stale = stale or self._turned_stale(last_data)
                        continue
                received = batch[0][0]
                batch = [record for _, record in batch]
                if not checked_gap:
                    checked_gap = self._check_gap(client, start)
                delivered += self._handle(batch, received)
                if stale:
                    metrics.FEED_STALE.set(0)
                last_data, stale = received, False
                self.condition = "streaming"
        finally:
            client.terminate()
            self.condition = "reconnecting"
        return delivered

    def _turned_stale(self, last_data: float) -> bool:
        """Whether a feed silent since `last_data` (monotonic) is now stale: in session hours
        and silent too long. Says so once: on the metrics, in `condition` and in the log."""
        silent = time.monotonic() - last_data > self._stale_after_s
        if not silent or not self._in_session(time.time_ns()):
            return False
        self.condition = "stale"
        metrics.QUALITY.labels("stale").inc()
        metrics.FEED_STALE.set(1)
        log.warning("no live data for %.0fs in session hours", self._stale_after_s)
        return True

    def _handle(self, batch: list[Any], received: float) -> int:
        raws: list[bytes] = []
        for record in batch:
            kind = type(record)
            if kind is dbn.SystemMsg:
                if not record.is_heartbeat():
                    log.info("live gateway: %s", record.msg)
                continue
            if kind is dbn.ErrorMsg:
                log.error("live gateway error: %s", record.err)
                metrics.QUALITY.labels("gateway_error").inc()
                continue
            raw = bytes(record)
            if kind is dbn.SymbolMappingMsg or self._dedupe.admit(raw):
                raws.append(raw)
            else:
                metrics.DUPLICATES_DROPPED.inc()
        if raws:
            metrics.RECORDS_IN.labels("live", self.request.schema).inc(len(raws))
            newest = max(map(ts_event, raws))
            metrics.LAG.observe(max(0.0, (time.time_ns() - newest) / 1e9))
            planned = self._planner.plan(raws, self._index)
            self._index += len(raws)
            self.report.frames += self._producer.send(planned, self.request.source, received)
            self.report.records += len(raws)
        return len(batch)

    def _check_gap(self, client: Any, start: int | None) -> bool:
        metadata = client.metadata
        if metadata is None:
            return False
        if start is not None and metadata.start > start:
            self.gaps += 1
            metrics.GAPS.labels("replay_window").inc()
            gap = DataGap(
                source=self.request.source,
                dataset=self.request.dataset,
                schema=self.request.schema,
                start_ns=start,
                end_ns=metadata.start,
                detected_ns=time.time_ns(),
                reason="the gateway's replay began later than asked",
            )
            log.error(
                "data gap: replay asked from %d but began at %d (%.3fs missing)",
                start,
                metadata.start,
                (metadata.start - start) / 1e9,
            )
            self._producer.sink.send_message(self._gaps_topic, self.request.source, gap)
        return True


def _take(records: "queue.Queue[Any]", timeout_s: float) -> list[Any]:
    """Whatever arrived together: the first record (waiting up to `timeout_s` for it, woken
    as it comes), then all that is already queued."""
    try:
        batch = [records.get(timeout=timeout_s) if timeout_s > 0 else records.get_nowait()]
    except queue.Empty:
        return []
    while len(batch) < MAX_BATCH:
        try:
            batch.append(records.get_nowait())
        except queue.Empty:
            break
    return batch


class _Acknowledgements:
    """Serves the Kafka producer's acknowledgements on a thread of their own, as they come.

    librdkafka times an acknowledgement when the application is handed it, so the main loop
    would have to poll without pause to time them truly (it did, at 0.2 ms slices: most of a
    core at 1,000 ticks/s). The thread waits inside librdkafka, which wakes it at each one,
    while the main loop sleeps on the record queue."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="live-acks", daemon=True)

    def __enter__(self) -> "_Acknowledgements":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._sink.poll(ACK_WAIT_S)
