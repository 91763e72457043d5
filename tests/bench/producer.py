"""Producer figures: file → Kafka records/s, and live receipt → Kafka ack latency at a low rate."""

import gc
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr

from producers.live import Backoff, Gateway, LiveProducer, LiveRequest
from producers.pipeline import produce_file
from producers.synth import generate
from tests.bench.rows import Row, aimed, guard
from tests.fakes.databento_live import FAKE_API_KEY, FakeLiveGateway
from ticklane import kafka
from ticklane.settings import KafkaSettings, Settings, TopicSettings
from ticklane.topic_admin import TopicAdmin
from ticklane.topics import catalogue


def _settings(bootstrap: str, data_dir: Path) -> Settings:
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000),
        topics=TopicSettings(prefix=f"bench-{uuid.uuid4().hex[:6]}.", partitions=12),
        data_dir=data_dir,
    )


FILE_ROW = "file → Kafka, 100 symbols, 30 min synthetic"


def file_row(bootstrap: str, work: Path) -> Row:
    """Median of three replays of a synthetic file into fresh topics."""
    path = work / "bench.dbn.zst"
    summary = generate(path, symbols=100, minutes=30, seed=5)
    gc.collect()  # the generator's garbage is not the producer's cost
    rates = []
    for _ in range(3):
        settings = _settings(bootstrap, work)
        admin = TopicAdmin(kafka.client_config(settings.kafka, bootstrap))
        admin.ensure(catalogue(settings.topics))  # topics exist before the clock starts
        start = time.perf_counter()
        report = produce_file(path, settings)  # start-up, replay and the final flush
        rates.append(report.records / (time.perf_counter() - start))
    note = f"{summary.records:,} records, median of 3"
    row = Row(FILE_ROW, "records/s", value=statistics.median(rates), note=note)
    return aimed(row, "≥ 500,000", "448,000")


def live_rows(bootstrap: str, work: Path, databento: Path) -> list[Row]:
    """A live feed at ~200 records/s: frame sizes and receipt → ack latency."""
    settings = _settings(bootstrap, work)
    source = databento / "glbx-esu4-20240701.mbp-1.dbn.zst"
    with FakeLiveGateway.from_files(source, now_ns=0, pacing=0.005) as gw:
        request = LiveRequest("GLBX.MDP3", "mbp-1", ("ESU4",), start=0)
        producer = LiveProducer(
            request,
            settings,
            SecretStr(FAKE_API_KEY),
            Gateway("127.0.0.1", gw.port),
            backoff=Backoff(initial_s=0.01),
        )
        stop = threading.Event()
        thread = threading.Thread(target=producer.run, args=(stop.is_set,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while producer.report.records < 1700 and time.monotonic() < deadline:
            time.sleep(0.05)  # a benchmark paces itself; tests poll
        stop.set()
        thread.join(30)
    # Skip start-up: the idempotent producer's first frames wait for its producer id.
    samples = sorted(producer.latencies[200:])
    q = statistics.quantiles(samples, n=100)
    per_frame = producer.report.records / max(producer.report.frames, 1)
    return [
        Row(
            "live ~200 rec/s: records per frame",
            "records/frame",
            value=per_frame,
            note="1.00 = no batching delay",
            decimals=2,
        ),
        aimed(
            Row(
                "live receipt → Kafka ack",
                "ms",
                p50=statistics.median(samples) * 1000,
                p99=q[98] * 1000,
                note=f"{len(samples):,} frames, max {samples[-1] * 1000:,.1f} ms",
                decimals=3,
            ),
            "p99 ≤ 2",
            "p99 6.6",
        ),
    ]


def producer_rows(bootstrap: str, databento: Path) -> Iterator[Row]:
    """Every producer row, each as it is measured, in a scratch directory."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        yield guard(FILE_ROW, lambda: file_row(bootstrap, work))
        try:
            yield from live_rows(bootstrap, work, databento)
        except Exception as exc:  # noqa: BLE001 - as `guard`, for the two rows of one feed
            yield Row.failed("live ~200 rec/s", exc)
