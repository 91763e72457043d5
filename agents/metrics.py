"""Prometheus metrics of the agents process (served by `ticklane agents --metrics-port`)."""

from prometheus_client import Counter, Gauge, Histogram

TICKS_IN = Counter("ticklane_agent_ticks", "Trades (or ohlcv bars) absorbed from md.* frames")
FRAMES = Counter(
    "ticklane_agent_frames",
    "md.* frames handled, by outcome (absorbed; replayed: covered by the symbol's state; "
    "stale: delivered again after a seek)",
    ["outcome"],
)
REFETCHED = Counter(
    "ticklane_agent_refetched_frames",
    "md.* frames the consumer skipped that the worker read back from Kafka and absorbed",
)
BARS_OUT = Counter("ticklane_agent_bars", "Bars published to bars.*", ["interval"])
SIGNALS_OUT = Counter("ticklane_agent_signals", "Signals published", ["strategy"])
DLQ = Counter("ticklane_agent_dlq", "Messages sent to the dlq topic, by source topic", ["topic"])
FAILED_DELIVERIES = Counter(
    "ticklane_agent_failed_deliveries",
    "Messages Kafka never took after the producer's retries (outputs, dead letters, "
    "changelogs), by topic; a changelog failure holds its partition's commit",
    ["topic"],
)
CONTROL = Counter("ticklane_agent_control_commands", "Control commands applied")
LATENCY = Histogram(
    "ticklane_agent_frame_seconds",
    "Time to absorb one frame: decode, bars, strategies, output delivery, state write",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
FRAME_DELAY = Histogram(
    "ticklane_agent_frame_delay_seconds",
    "Live md.* frames: from the producer handing a frame to Kafka to this worker taking it "
    "(both wall clocks: across machines it includes their offset)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
STATE_BYTES = Gauge(
    "ticklane_agent_state_bytes", "Bytes of per-symbol state this worker last wrote, all symbols"
)
SYMBOLS = Gauge("ticklane_agent_symbols", "Symbols whose state this worker has written")
CONSUMER_LAG = Gauge(
    "ticklane_agent_consumer_lag_messages",
    "md.* messages behind the end of the partitions this worker reads",
    ["topic"],
)
ASSIGNED = Gauge(
    "ticklane_agent_assigned_partitions",
    "md.* partitions this worker holds now (0: not ready; more workers than partitions?)",
)
WARMUPS = Counter(
    "ticklane_agent_warmups",
    "Strategies warmed up on a symbol before live data, by where the history came from "
    "(bars, md, databento; none: no source had any, it started cold; failed: a source "
    "failed and the next was tried)",
    ["source"],
)
WARMUP_BARS = Counter("ticklane_agent_warmup_bars", "History bars fed to strategies in warm-ups")
