from prometheus_client import CollectorRegistry, Gauge

from ticklane.lag import LagGauge


def _gauge() -> tuple[Gauge, CollectorRegistry]:
    registry = CollectorRegistry()
    return Gauge("lag_messages", "lag", ["topic"], registry=registry), registry


def test_sums_partitions_per_topic_and_floors_at_zero() -> None:
    gauge, registry = _gauge()
    LagGauge(gauge).set([("md", 3), ("md", 4), ("signals", -2)])
    assert registry.get_sample_value("lag_messages", {"topic": "md"}) == 7
    assert registry.get_sample_value("lag_messages", {"topic": "signals"}) == 0


def test_a_topic_no_longer_read_drops_to_zero() -> None:
    gauge, registry = _gauge()
    now = [0.0]
    lag = LagGauge(gauge, every_s=1.0, clock=lambda: now[0])
    lag.set([("md", 5)])
    assert not lag.due()
    now[0] = 1.0
    assert lag.due()
    lag.set([])
    assert registry.get_sample_value("lag_messages", {"topic": "md"}) == 0
