"""Create the catalogued topics on a cluster and report drift from the catalogue."""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from ticklane.topics import TopicSpec

_CHECKED_CONFIG = ("cleanup.policy",)
"""Settings whose drift changes behaviour (a compacted topic that deletes loses state)."""


class TopicState(StrEnum):
    """How a cluster's topic compares with its catalogue entry."""

    OK = "ok"
    CREATED = "created"
    MISSING = "missing"
    PARTITION_DRIFT = "partition drift"
    CONFIG_DRIFT = "config drift"


@dataclass(frozen=True)
class ExistingTopic:
    """What the cluster says about one topic."""

    partitions: int
    config: Mapping[str, str]


@dataclass(frozen=True)
class TopicCheck:
    """One catalogued topic and its state on the cluster."""

    spec: TopicSpec
    state: TopicState
    actual_partitions: int | None
    detail: str = ""

    @property
    def is_error(self) -> bool:
        """Drift needs an operator: partitions cannot shrink and keys would move."""
        return self.state in (TopicState.PARTITION_DRIFT, TopicState.CONFIG_DRIFT)


def compare(spec: TopicSpec, existing: ExistingTopic | None) -> TopicCheck:
    """Compare one catalogue entry with what the cluster has."""
    if existing is None:
        return TopicCheck(spec, TopicState.MISSING, None)
    if existing.partitions != spec.partitions:
        return TopicCheck(
            spec,
            TopicState.PARTITION_DRIFT,
            existing.partitions,
            f"has {existing.partitions} partitions, catalogue says {spec.partitions}",
        )
    for key in _CHECKED_CONFIG:
        want, have = spec.config.get(key), existing.config.get(key)
        if want is not None and have is not None and want != have:
            return TopicCheck(
                spec, TopicState.CONFIG_DRIFT, existing.partitions, f"{key}={have}, want {want}"
            )
    return TopicCheck(spec, TopicState.OK, existing.partitions)


class TopicAdmin:
    """Thin shell over an AdminClient for the catalogue's needs."""

    def __init__(self, config: Mapping[str, Any], timeout_s: float = 15.0) -> None:
        self._admin = AdminClient(dict(config))
        self._timeout_s = timeout_s

    def existing(self, names: Iterable[str]) -> dict[str, ExistingTopic]:
        """Partition counts and checked config of those of `names` the cluster has."""
        metadata = self._admin.list_topics(timeout=self._timeout_s)
        found = {
            name: len(metadata.topics[name].partitions)
            for name in names
            if name in metadata.topics and metadata.topics[name].error is None
        }
        configs = self._configs(found)
        return {name: ExistingTopic(parts, configs.get(name, {})) for name, parts in found.items()}

    def _configs(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
        if not resources:
            return {}
        result: dict[str, dict[str, str]] = {}
        for resource, future in self._admin.describe_configs(resources).items():
            entries = future.result(timeout=self._timeout_s)
            result[resource.name] = {
                key: entry.value for key, entry in entries.items() if key in _CHECKED_CONFIG
            }
        return result

    def check(self, specs: Iterable[TopicSpec]) -> list[TopicCheck]:
        """Compare the catalogue with the cluster without changing anything."""
        specs = list(specs)
        existing = self.existing(spec.name for spec in specs)
        return [compare(spec, existing.get(spec.name)) for spec in specs]

    def ensure(self, specs: Iterable[TopicSpec], replication_factor: int = 1) -> list[TopicCheck]:
        """Create missing topics and report the state of all of them; idempotent."""
        checks = self.check(specs)
        missing = [c.spec for c in checks if c.state is TopicState.MISSING]
        if missing:
            self._create(missing, replication_factor)
            self._wait_visible(missing)
        created = {spec.name for spec in missing}
        return [
            TopicCheck(c.spec, TopicState.CREATED, c.spec.partitions)
            if c.spec.name in created
            else c
            for c in checks
        ]

    def _create(self, specs: list[TopicSpec], replication_factor: int) -> None:
        new = [
            NewTopic(spec.name, spec.partitions, replication_factor, config=dict(spec.config))
            for spec in specs
        ]
        for name, future in self._admin.create_topics(new).items():
            try:
                future.result(timeout=self._timeout_s)
            except KafkaException as exc:
                # Another process created it between our check and create: fine if it matches,
                # and the caller's next check reports it if it does not.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicAdminError(
                        f"cannot create topic {name}: {exc.args[0].str()}"
                    ) from exc

    def _wait_visible(self, specs: list[TopicSpec]) -> None:
        deadline = time.monotonic() + self._timeout_s
        names = [spec.name for spec in specs]
        while time.monotonic() < deadline:
            have = self.existing(names)
            if all(have.get(s.name) and have[s.name].partitions == s.partitions for s in specs):
                return
            time.sleep(0.05)  # polling the cluster's metadata with a deadline
        raise TopicAdminError(f"topics not visible in metadata after creation: {', '.join(names)}")

    def delete(self, names: Iterable[str]) -> None:
        """Delete topics (tests and `topics delete`); missing ones are ignored."""
        for name, future in self._admin.delete_topics(list(names)).items():
            try:
                future.result(timeout=self._timeout_s)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise TopicAdminError(
                        f"cannot delete topic {name}: {exc.args[0].str()}"
                    ) from exc


class TopicAdminError(RuntimeError):
    """The cluster refused a topic operation."""
