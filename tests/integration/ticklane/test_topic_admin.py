"""Creating the catalogue on a real broker is idempotent and drift is reported."""

import dataclasses

import pytest

from ticklane import kafka
from ticklane.settings import Settings
from ticklane.topic_admin import TopicAdmin, TopicState
from ticklane.topics import catalogue

pytestmark = pytest.mark.integration


def admin_for(settings: Settings) -> TopicAdmin:
    bootstrap = str(settings.kafka.bootstrap_servers)
    return TopicAdmin(kafka.client_config(settings.kafka, bootstrap))


def test_ensure_creates_everything_once(settings: Settings) -> None:
    admin = admin_for(settings)
    specs = catalogue(settings.topics)
    assert {c.state for c in admin.check(specs)} == {TopicState.MISSING}
    first = admin.ensure(specs)
    assert {c.state for c in first} == {TopicState.CREATED}
    existing = admin.existing(s.name for s in specs)
    assert {name: t.partitions for name, t in existing.items()} == {
        s.name: s.partitions for s in specs
    }
    second = admin.ensure(specs)
    assert {c.state for c in second} == {TopicState.OK}
    assert admin.existing(s.name for s in specs) == existing


def test_wrong_partition_count_is_reported(settings: Settings) -> None:
    admin = admin_for(settings)
    spec = next(s for s in catalogue(settings.topics) if s.base == "signals")
    admin.ensure([dataclasses.replace(spec, partitions=2)])
    (check,) = admin.ensure([spec])
    assert check.state is TopicState.PARTITION_DRIFT
    assert check.actual_partitions == 2
    assert check.is_error


def test_compaction_drift_is_reported(settings: Settings) -> None:
    admin = admin_for(settings)
    spec = next(s for s in catalogue(settings.topics) if s.base == "positions")
    admin.ensure([dataclasses.replace(spec, config={"cleanup.policy": "delete"})])
    (check,) = admin.check([spec])
    assert check.state is TopicState.CONFIG_DRIFT
    assert "cleanup.policy=delete" in check.detail
