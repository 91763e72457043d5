"""Publishing a process's status (`ticklane.status`) to the `status` topic."""

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from ticklane import kafka, wire
from ticklane.cluster import ClusterWatch, summary
from ticklane.settings import Settings
from ticklane.status import ProcessState, ProcessStatus
from ticklane.topics import resolve

log = logging.getLogger(__name__)


class Report(msgspec.Struct, frozen=True):
    """What a process's probe says now: the variable part of its status."""

    state: ProcessState = ProcessState.RUNNING
    reason: str = ""
    lag: int = -1
    details: Mapping[str, str] = msgspec.field(default_factory=dict)


def metric_total(name: str, registry: CollectorRegistry = REGISTRY) -> float:
    """A counter's or gauge's value summed over its labels (0 when it has none yet)."""
    base = name.removesuffix("_total")
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == base
        for sample in family.samples
        if sample.name in {base, f"{base}_total"}
    )


@dataclass(frozen=True)
class _KafkaGauges:
    silent: Gauge
    silences: Counter


_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, _KafkaGauges] = weakref.WeakKeyDictionary()


def _kafka_gauges(registry: CollectorRegistry) -> _KafkaGauges:
    # One set per registry: inside tests several processes' services share the default one.
    gauges = _GAUGES.get(registry)
    if gauges is None:
        gauges = _GAUGES[registry] = _KafkaGauges(
            Gauge(
                "ticklane_kafka_silent",
                "1 while Kafka has taken no status from this process for two intervals",
                registry=registry,
            ),
            Counter(
                "ticklane_kafka_silences",
                "Times Kafka stopped taking this process's status (unreachable or stalled)",
                registry=registry,
            ),
        )
    return gauges


class Beacon:
    """Publishes a process's status: `beat()` from its own loop, or `start()` for a thread.

    Sending never blocks and never fails the caller: a heartbeat lost while Kafka is away is
    replaced by the next one, and the silence is what readers should see. The beacon also
    watches the cluster (`ticklane.cluster`): once Kafka is not the cluster the process
    started on, every report says so (halted), whatever the process's own probe says.
    """

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        process: str,
        instance: str,
        probe: Callable[[], Report],
        *,
        watch: Iterable[str] = (),
        registry: CollectorRegistry = REGISTRY,
        memory: Path | None = None,
        remedy: str = "",
    ) -> None:
        self._topic = resolve(settings.topics, "status")
        self._interval_s = settings.status_interval_s
        self._process, self.instance, self._probe = process, instance, probe
        self._producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
        self.watch = ClusterWatch(
            settings.kafka, bootstrap, watch, registry=registry, memory=memory, remedy=remedy
        )
        """What the process's Kafka clients work with, compared with what was first seen."""
        self._watching = False
        self._gauges = _kafka_gauges(registry)
        self._next = 0.0
        self._delivered_at = time.monotonic()
        """When Kafka last took a status (the start counts): silence since says it is away."""
        self._silent = False
        self.latest: Report | None = None
        """The last report made (None before the first): what `/ready` answers from."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, *, force: bool = False) -> bool:
        """Publish a status if one is due (or `force`); whether one was sent."""
        now = time.monotonic()
        if not force and now < self._next:
            return False
        self._next = now + self._interval_s
        if not self._watching:
            self._watching = True
            self.watch.start()
        try:
            report = self._probe()
        except Exception as exc:  # noqa: BLE001 - a failing probe is itself the news
            report = Report(ProcessState.DEGRADED, f"status probe failed: {exc}")
        if found := self.watch.findings:
            reason = f"Kafka is not the cluster this process started on: {summary(found)}"
            report = Report(ProcessState.HALTED, reason, report.lag, report.details)
        self.latest = report
        self._check_silence(now)  # first: a loop held up with Kafka still says so after
        self._send(report)
        return True

    def _check_silence(self, now: float) -> None:
        """Say once when Kafka has taken no status for two intervals: every process's log
        then shows an outage or a stall, however quiet its own clients are about it."""
        silence = now - self._delivered_at
        if not self._silent and silence > 2 * self._interval_s:
            self._silent = True
            self._gauges.silent.set(1)
            self._gauges.silences.inc()
            log.warning(
                "Kafka has taken no status from this process for %.0f s: unreachable or "
                "stalled; carrying on",
                silence,
            )

    def _on_delivery(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            return
        now = time.monotonic()
        if self._silent:
            self._silent = False
            self._gauges.silent.set(0)
            log.warning(
                "Kafka takes this process's status again, after %.0f s without",
                now - self._delivered_at,
            )
        self._delivered_at = now

    def _send(self, report: Report) -> None:
        status = ProcessStatus(
            self._process,
            self.instance,
            report.state,
            time.time_ns(),
            int(self._interval_s * 1e9),
            report.reason,
            report.lag,
            dict(report.details),
        )
        try:
            self._producer.produce(
                self._topic,
                key=status.key.encode(),
                value=wire.encode(status),
                on_delivery=self._on_delivery,
            )
            self._producer.poll(0)
        except (KafkaException, BufferError) as exc:
            log.debug("status not sent: %s", exc)

    def start(self) -> None:
        """Beat from a thread of its own until `stop`."""
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(max(self._next - time.monotonic(), 0.05))

    def stop(self, reason: str = "") -> None:
        """Stop the thread (if any) and say `STOPPED`, waiting briefly for it to be sent."""
        self._stop.set()
        self.watch.stop()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self.latest = Report(ProcessState.STOPPED, reason)
        self._send(self.latest)
        self._producer.flush(5)
