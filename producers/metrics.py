"""Prometheus metrics of the market-data producers (declared once, imported where used)."""

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN: Final = Counter(
    "ticklane_producer_records_in_total", "Records read from a source", ["source_kind", "schema"]
)
RECORDS_OUT: Final = Counter(
    "ticklane_producer_records_out_total", "Records acknowledged by Kafka", ["topic"]
)
FRAMES_OUT: Final = Counter("ticklane_producer_frames_total", "Frames produced", ["topic"])
SKIPPED_WRITTEN: Final = Counter(
    "ticklane_producer_resume_skipped_total",
    "Records skipped on restart because Kafka already had them",
)
DUPLICATES_DROPPED: Final = Counter(
    "ticklane_producer_duplicates_dropped_total",
    "Records dropped because they were already produced (live replay overlap)",
)
GAPS: Final = Counter(
    "ticklane_producer_gaps_total", "Gaps in the data that could not be filled", ["kind"]
)
QUALITY: Final = Counter(
    "ticklane_producer_quality_events_total",
    "Data-quality findings per kind (out_of_order, duplicate, sequence_regression, stale)",
    ["kind"],
)
FEED_STALE: Final = Gauge(
    "ticklane_producer_feed_stale",
    "1 while the live feed has sent nothing for stale_after_s in session hours",
)
RECONNECTS: Final = Counter("ticklane_producer_reconnects_total", "Live gateway reconnections")
DELIVERY_ERRORS: Final = Counter(
    "ticklane_producer_delivery_errors_total", "Frames Kafka refused after retries"
)
QUEUE_DEPTH: Final = Gauge(
    "ticklane_producer_queue_depth", "Messages waiting for Kafka acknowledgement"
)
LAG: Final = Histogram(
    "ticklane_producer_lag_seconds",
    "Wall clock at produce minus the record's ts_event",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300),
)
ACK_LATENCY: Final = Histogram(
    "ticklane_producer_ack_latency_seconds",
    "From a live record's receipt to Kafka's acknowledgement of its frame",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1),
)
UNCLEAN_EXITS: Final = Counter(
    "ticklane_producer_unclean_exits",
    "Previous runs of this source that ended without a clean exit (crash, SIGKILL), found at start",
)
