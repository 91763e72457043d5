"""The cluster watch against a real broker: topics deleted or recreated; the broker
restarted empty; and Kafka unreachable, which is not a change."""

import pytest
from prometheus_client import CollectorRegistry

from ticklane import kafka
from ticklane.broker import EmbeddedBroker
from ticklane.cluster import Change, ClusterWatch
from ticklane.settings import KafkaSettings, Settings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue

pytestmark = pytest.mark.integration


def _create(settings: Settings, bootstrap: str, *bases: str) -> list[str]:
    specs = [s for s in catalogue(settings.topics) if s.base in bases]
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).ensure(specs)
    return [s.name for s in specs]


def _watch(settings: Settings, bootstrap: str, topics: list[str]) -> ClusterWatch:
    watch = ClusterWatch(settings.kafka, bootstrap, topics, registry=CollectorRegistry())
    watch.check()  # what later checks compare with
    return watch


def test_a_deleted_topic_is_found_and_stops_trust(settings: Settings) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    signals, dlq = _create(settings, bootstrap, "signals", "dlq")
    watch = _watch(settings, bootstrap, [signals, dlq])
    watch.check()
    assert watch.trusted
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).delete([signals])
    watch.check()
    assert not watch.trusted
    assert [(f.change, f.subject) for f in watch.findings] == [(Change.TOPIC_GONE, signals)]
    # Created again, it is another topic: still not trusted, and now also that.
    _create(settings, bootstrap, "signals")
    watch.check()
    assert not watch.trusted


def test_a_recreated_topic_is_found(settings: Settings) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    signals, dlq = _create(settings, bootstrap, "signals", "dlq")
    watch = _watch(settings, bootstrap, [signals, dlq])
    admin = TopicAdmin(kafka.client_config(settings.kafka, bootstrap))
    admin.delete([signals])
    _create(settings, bootstrap, "signals")
    watch.check()
    # (A grown topic is found the same way; tansu cannot add partitions to show it here.)
    assert [(f.change, f.subject) for f in watch.findings] == [(Change.TOPIC_RECREATED, signals)]


def test_a_topic_created_after_the_start_is_watched_from_then(settings: Settings) -> None:
    bootstrap = str(settings.kafka.bootstrap_servers)
    names = [s.name for s in catalogue(settings.topics) if s.base == "signals"]
    watch = _watch(settings, bootstrap, names)  # before `ticklane topics create`
    _create(settings, bootstrap, "signals")
    watch.check()
    assert watch.trusted
    TopicAdmin(kafka.client_config(settings.kafka, bootstrap)).delete(names)
    watch.check()
    assert [f.change for f in watch.findings] == [Change.TOPIC_GONE]


def test_a_broker_restarted_empty_is_found_and_an_outage_is_not(tmp_path: object) -> None:
    broker = EmbeddedBroker()
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers))
    with broker:
        names = _create(settings, broker.bootstrap_servers, "signals", "control")
        watch = ClusterWatch(
            settings.kafka, broker.bootstrap_servers, names, registry=CollectorRegistry()
        )
        watch.check()
    watch.check()  # nobody answers: nothing to compare
    assert watch.trusted
    with EmbeddedBroker(port=broker.port):  # the same address, nothing in it
        watch.check()
    assert {f.change for f in watch.findings} == {Change.TOPIC_GONE}
    assert {f.subject for f in watch.findings} == set(names)


def test_a_process_restarted_on_another_cluster_finds_it_from_its_memory(tmp_path) -> None:
    broker = EmbeddedBroker()
    settings = Settings(kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers))
    memory = tmp_path / "layout.json"
    with broker:
        names = _create(settings, broker.bootstrap_servers, "signals", "control")
        first = ClusterWatch(
            settings.kafka,
            broker.bootstrap_servers,
            names,
            registry=CollectorRegistry(),
            memory=memory,
        )
        first.check()
        again = ClusterWatch(  # the same process restarted on the same cluster
            settings.kafka,
            broker.bootstrap_servers,
            names,
            registry=CollectorRegistry(),
            memory=memory,
        )
        again.check()
        assert again.trusted
    with EmbeddedBroker(port=broker.port):  # restarted empty; topics created anew
        _create(settings, broker.bootstrap_servers, "signals")
        restarted = ClusterWatch(
            settings.kafka,
            broker.bootstrap_servers,
            names,
            registry=CollectorRegistry(),
            memory=memory,
        )
        restarted.check()
    found = {(f.change, f.subject) for f in restarted.findings}
    assert found == {(Change.TOPIC_RECREATED, names[0]), (Change.TOPIC_GONE, names[1])}
