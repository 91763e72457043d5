"""Comparing a cluster with the one a process first saw."""

from ticklane.cluster import Change, Finding, Layout, TopicIdentity, advice, compare

BEFORE = Layout("c1", {"md.trades": TopicIdentity("A", 12), "signals": TopicIdentity("B", 12)})


def test_the_same_cluster_differs_in_nothing() -> None:
    assert compare(BEFORE, Layout("c1", dict(BEFORE.topics))) == []


def test_a_topic_created_since_is_not_a_change() -> None:
    now = Layout("c1", dict(BEFORE.topics) | {"dlq": TopicIdentity("C", 1)})
    assert compare(BEFORE, now) == []


def test_each_kind_of_change_is_found_and_named() -> None:
    now = Layout("c2", {"md.trades": TopicIdentity("Z", 12)})
    assert compare(BEFORE, now) == [
        Finding(Change.CLUSTER, "cluster", "c1", "c2"),
        Finding(Change.TOPIC_RECREATED, "md.trades", "id A", "id Z"),
        Finding(Change.TOPIC_GONE, "signals", "id B", "missing"),
    ]
    grown = Layout("c1", {"md.trades": TopicIdentity("A", 16), "signals": TopicIdentity("B", 12)})
    assert compare(BEFORE, grown) == [
        Finding(Change.PARTITIONS, "md.trades", "12 partitions", "16 partitions")
    ]


def test_an_unknown_cluster_id_is_not_a_change() -> None:
    assert compare(Layout(None, {}), Layout("c1", {})) == []


def test_the_advice_names_what_was_found_and_what_to_do() -> None:
    line = advice(
        [
            Finding(Change.TOPIC_GONE, "signals", "id B", "missing"),
            Finding(Change.TOPIC_GONE, "orders", "id C", "missing"),
            Finding(Change.CLUSTER, "cluster", "c1", "c2"),
        ]
    )
    assert "topic gone: signals, orders; cluster id changed: cluster (was c1, now c2)." in line
    assert "ticklane topics create" in line
    assert "restart" in line
