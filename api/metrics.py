"""The API's Prometheus metrics, on a registry of its own (served at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ApiMetrics:
    """Requests, the materializer's events and lag, dead letters."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "ticklane_api_requests",
            "HTTP requests answered, by route template and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ticklane_api_request_seconds",
            "Time to answer a request, by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.events = Counter(
            "ticklane_api_materialized_events",
            "Messages applied to the API's store, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "ticklane_api_materializer_lag_messages",
            "Messages in a topic not yet in the API's store",
            ["topic"],
            registry=self.registry,
        )
        self.stream_clients = Gauge(
            "ticklane_api_stream_clients",
            "Clients connected to the live stream",
            registry=self.registry,
        )
        self.streamed = Counter(
            "ticklane_api_streamed_events",
            "Events sent to live stream clients",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "ticklane_api_dead_letters",
            "Undecodable messages sent to dlq, by the topic they were read from",
            ["topic"],
            registry=self.registry,
        )
