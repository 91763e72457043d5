"""The catalogue names and sizes topics from settings; comparison finds drift."""

from ticklane.settings import TopicSettings
from ticklane.topic_admin import ExistingTopic, TopicState, compare
from ticklane.topics import (
    MARKET_DATA_SCHEMAS,
    KeyKind,
    catalogue,
    resolve,
    retention_summary,
)


def test_catalogue_covers_the_pipeline() -> None:
    names = {spec.base for spec in catalogue(TopicSettings())}
    assert {f"md.{s}" for s in MARKET_DATA_SCHEMAS} <= names
    assert {"signals", "orders", "fills", "positions", "control", "dlq"} <= names
    assert {"bars.1m"} <= names


def test_prefix_and_partitions_come_from_settings() -> None:
    specs = {s.base: s for s in catalogue(TopicSettings(prefix="prod.", partitions=24))}
    assert specs["md.trades"].name == "prod.md.trades"
    assert specs["md.trades"].partitions == 24
    assert specs["md.trades"].key is KeyKind.SYMBOL
    assert specs["signals"].key is KeyKind.SYMBOL
    assert specs["control"].partitions == 1


def test_state_topics_are_compacted_and_audit_topics_kept() -> None:
    specs = {s.base: s for s in catalogue(TopicSettings())}
    for base in ("positions", "control", "md.definition"):
        assert specs[base].compacted, base
    for base in ("orders", "fills", "signals"):
        assert retention_summary(specs[base].config) == "forever", base
    assert retention_summary(specs["md.trades"].config) == "7d"


def test_resolve_accepts_catalogue_or_full_names() -> None:
    settings = TopicSettings(prefix="p.")
    assert resolve(settings, "signals") == "p.signals"
    assert resolve(settings, "p.signals") == "p.signals"
    assert resolve(settings, "somebody.elses") == "somebody.elses"


def test_compare_reports_each_state() -> None:
    spec = {s.base: s for s in catalogue(TopicSettings(partitions=6))}["positions"]
    assert compare(spec, None).state is TopicState.MISSING
    ok = compare(spec, ExistingTopic(6, {"cleanup.policy": "compact"}))
    assert ok.state is TopicState.OK
    assert not ok.is_error
    drift = compare(spec, ExistingTopic(3, {"cleanup.policy": "compact"}))
    assert drift.state is TopicState.PARTITION_DRIFT
    assert drift.is_error
    assert "has 3 partitions, catalogue says 6" in drift.detail
    policy = compare(spec, ExistingTopic(6, {"cleanup.policy": "delete"}))
    assert policy.state is TopicState.CONFIG_DRIFT
    assert policy.is_error
