"""Publishing a process's status (`ticklane.status`) to the `status` topic."""

import logging
import threading
import time
from collections.abc import Callable, Mapping

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer
from prometheus_client import REGISTRY, CollectorRegistry

from ticklane import kafka, wire
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


class Beacon:
    """Publishes a process's status: `beat()` from its own loop, or `start()` for a thread.

    Sending never blocks and never fails the caller: a heartbeat lost while Kafka is away is
    replaced by the next one, and the silence is what readers should see.
    """

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        process: str,
        instance: str,
        probe: Callable[[], Report],
    ) -> None:
        self._topic = resolve(settings.topics, "status")
        self._interval_s = settings.status_interval_s
        self._process, self.instance, self._probe = process, instance, probe
        self._producer = Producer(kafka.producer_config(settings.kafka, bootstrap))
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
        try:
            report = self._probe()
        except Exception as exc:  # noqa: BLE001 - a failing probe is itself the news
            report = Report(ProcessState.DEGRADED, f"status probe failed: {exc}")
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
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self.latest = Report(ProcessState.STOPPED, reason)
        self._send(self.latest)
        self._producer.flush(5)
