"""Noticing a Kafka cluster that came back different from the one a process started on.

A cluster restarted empty, restored from an older state, or swapped for another behind the
same address answers like the old one, and a client reconnects to it without a word: a
consumer whose position is past a partition's new end is silently reset, a producer
writes into topics that hold nothing before it. A process that carried on would trade on
signals it cannot place, or build bars on a history it does not have.

`ClusterWatch` remembers what it first saw (the cluster's id, and each watched topic's id
and partition count) and compares every few seconds. What changed is a `Finding`; the first
makes the process untrusting for good: it stops consuming and producing what it cannot
trust, says so in one log line, reports itself halted (`/ready` fails with the reason) and
sets `ticklane_kafka_cluster_changed`. Only a person can tell what was lost and whether to
go on, so only a restart clears it. Kafka not answering is an outage, not a change: the
watch waits for an answer.
"""

import json
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from ticklane import kafka
from ticklane.settings import KafkaSettings

log = logging.getLogger(__name__)

CHECK_EVERY_S: Final = 5.0
"""How often the cluster is compared with what the process first saw."""


class Change(StrEnum):
    """How the cluster differs from the one first seen."""

    CLUSTER = "cluster id changed"
    TOPIC_GONE = "topic gone"
    TOPIC_RECREATED = "topic recreated"
    PARTITIONS = "partition count changed"
    OFFSET_PAST_END = "position past the partition's end"
    CHANGELOG_BEHIND = "changelog behind the worker's state"


@dataclass(frozen=True)
class TopicIdentity:
    """What tells one topic from another of the same name."""

    topic_id: str
    partitions: int


@dataclass(frozen=True)
class Layout:
    """A cluster as a process sees it: its id and the watched topics that exist."""

    cluster_id: str | None
    topics: Mapping[str, TopicIdentity]


@dataclass(frozen=True)
class Finding:
    """One thing that is not as it was."""

    change: Change
    subject: str
    """The cluster, a topic, or a topic's partition."""
    was: str
    now: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.change.value} (was {self.was}, now {self.now})"


def compare(known: Layout, now: Layout) -> list[Finding]:
    """What differs between the layout first seen and the one seen now. Topics that did not
    exist at first are not compared (they may be created later, by `ticklane topics create`)."""
    findings = []
    if known.cluster_id and now.cluster_id and known.cluster_id != now.cluster_id:
        findings.append(Finding(Change.CLUSTER, "cluster", known.cluster_id, now.cluster_id))
    for name, was in sorted(known.topics.items()):
        seen = now.topics.get(name)
        if seen is None:
            findings.append(Finding(Change.TOPIC_GONE, name, f"id {was.topic_id}", "missing"))
        elif seen.topic_id != was.topic_id:
            findings.append(
                Finding(Change.TOPIC_RECREATED, name, f"id {was.topic_id}", f"id {seen.topic_id}")
            )
        elif seen.partitions != was.partitions:
            findings.append(
                Finding(
                    Change.PARTITIONS,
                    name,
                    f"{was.partitions} partitions",
                    f"{seen.partitions} partitions",
                )
            )
    return findings


def summary(findings: Iterable[Finding]) -> str:
    """Findings grouped by change: `topic gone: md.trades, signals; cluster id changed: ...`."""
    by_change: dict[Change, list[str]] = {}
    for finding in findings:
        subject = finding.subject
        if finding.change is not Change.TOPIC_GONE:
            subject += f" (was {finding.was}, now {finding.now})"
        by_change.setdefault(finding.change, []).append(subject)
    return "; ".join(f"{change.value}: {', '.join(s)}" for change, s in by_change.items())


def advice(findings: Iterable[Finding], remedy: str = "") -> str:
    """The one line a process logs when it stops trusting the cluster; `remedy` is what
    this process in particular needs (a worker's state to drop)."""
    found = summary(findings)
    return (
        f"Kafka is not the cluster this process started on: {found}. It stops consuming and "
        "producing what it cannot trust and stays not ready until restarted. Find out what was "
        "lost (a cluster restarted empty or restored loses topics, committed offsets and the "
        "agents' changelogs), recreate the topics with `ticklane topics create`, then restart "
        "the processes; the executor's ledger still holds every order it sent"
        + (f"; {remedy}" if remedy else "")
    )


_CHANGED: weakref.WeakKeyDictionary[CollectorRegistry, Gauge] = weakref.WeakKeyDictionary()


def _changed_gauge(registry: CollectorRegistry) -> Gauge:
    # One per registry: several processes' services share the default one inside tests.
    gauge = _CHANGED.get(registry)
    if gauge is None:
        gauge = _CHANGED[registry] = Gauge(
            "ticklane_kafka_cluster_changed",
            "1 once Kafka differs from the cluster this process started on (see its log)",
            ["change"],
            registry=registry,
        )
    return gauge


class ClusterWatch:
    """Compares the cluster with the one first seen, every `every_s`, from a thread of its
    own (a metadata request may wait out Kafka's timeout; the process's loop must not)."""

    def __init__(
        self,
        settings: KafkaSettings,
        bootstrap: str,
        topics: Iterable[str],
        *,
        every_s: float = CHECK_EVERY_S,
        registry: CollectorRegistry = REGISTRY,
        memory: Path | None = None,
        remedy: str = "",
    ) -> None:
        """`remedy`: what this process needs besides a restart, said in the log line.
        `memory`: a file where what was seen is kept across restarts, for a process
        whose local state belongs to the cluster (the agents' RocksDB tables): restarted
        on a cluster that is not the one it left, it finds that before its first frame."""
        quiet = logging.getLogger("ticklane.cluster.client")
        quiet.propagate = False  # an outage is the Beacon's and the clients' news, not ours
        quiet.disabled = True
        self._admin = AdminClient(kafka.client_config(settings, bootstrap) | {"logger": quiet})
        self._topics = sorted(set(topics))
        self._every_s = every_s
        self._timeout_s = max(min(every_s, 10.0), 1.0)
        self._known: Layout | None = None
        self._memory = memory
        self._remedy = remedy
        self._findings: list[Finding] = []
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._gauge = _changed_gauge(registry)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Everything found so far (empty while the cluster is the one first seen)."""
        with self._lock:
            return tuple(self._findings)

    @property
    def trusted(self) -> bool:
        """Whether the process may go on consuming and producing."""
        with self._lock:
            return not self._findings

    def report(self, findings: Iterable[Finding]) -> None:
        """Add findings (the watch's own, or a client's, such as a position past the end);
        the first ones are logged as one line."""
        new = list(findings)
        if not new:
            return
        with self._lock:
            first = not self._findings
            fresh = [f for f in new if f not in self._findings]
            self._findings.extend(fresh)
        for finding in fresh:
            self._gauge.labels(finding.change.value).set(1)
        if first:
            log.error("%s", advice(fresh, self._remedy))
        elif fresh:
            log.warning("Kafka differs further: %s", summary(fresh))

    def check(self) -> None:
        """One comparison; the first answer is what later ones are compared with. Safe to
        call from any thread (the process may look at once when a client fails)."""
        with self._checking:
            self._check()

    def _check(self) -> None:
        layout = self._layout()
        if layout is None:
            return  # Kafka did not answer: an outage, not a change
        if self._known is None:
            self._known = self._recall()
            if self._known is None:
                self._known = layout
                self._save()
                return
        self.report(compare(self._known, layout))
        if self.trusted:
            # Topics created since (by `ticklane topics create`) are watched from now on.
            merged = dict(layout.topics) | dict(self._known.topics)
            known = Layout(self._known.cluster_id or layout.cluster_id, merged)
            if known != self._known:
                self._known = known
                self._save()

    def _recall(self) -> Layout | None:
        """What an earlier run of the process saw, if it left it in `memory`."""
        if self._memory is None or not self._memory.exists():
            return None
        try:
            saved = json.loads(self._memory.read_text())
            topics = {n: TopicIdentity(str(i), int(p)) for n, (i, p) in saved["topics"].items()}
            return Layout(saved["cluster_id"], topics)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "%s unreadable (%s): comparing with the cluster as it is now", self._memory, exc
            )
            return None

    def _save(self) -> None:
        if self._memory is None or self._known is None:
            return
        topics = {n: [t.topic_id, t.partitions] for n, t in self._known.topics.items()}
        text = json.dumps({"cluster_id": self._known.cluster_id, "topics": topics}, indent=1)
        partial = self._memory.with_name(f".{self._memory.name}.partial")
        partial.write_text(text + "\n")
        partial.replace(self._memory)  # whole or not at all

    def _layout(self) -> Layout | None:
        try:
            cluster_id = (
                self._admin.describe_cluster(request_timeout=self._timeout_s).result().cluster_id
            )
        except KafkaException:
            return None
        topics: dict[str, TopicIdentity] = {}
        if not self._topics:
            return Layout(cluster_id, topics)
        described = self._admin.describe_topics(
            TopicCollection(self._topics), request_timeout=self._timeout_s
        )
        for name, future in described.items():
            try:
                found = future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    return None  # no answer, or a partial one: nothing to compare
                continue
            topics[name] = TopicIdentity(str(found.topic_id), len(found.partitions))
        return Layout(cluster_id, topics)

    def start(self) -> None:
        """Check every `every_s` from a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="cluster-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # a bug here must not end the process's own work
                log.exception("comparing the Kafka cluster failed; trying again")
            self._stop.wait(self._every_s)

    def stop(self) -> None:
        """End the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 1)
