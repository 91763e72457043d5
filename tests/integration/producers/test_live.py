"""Live data through the real databento SDK against a local gateway: exactly once, gaps surfaced."""

import gc
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from producers.live import Backoff, Gateway, LiveProducer, LiveRequest
from tests.fakes.databento_live import FAKE_API_KEY, FakeLiveGateway, load_dbn
from tests.integration.executors.scenario import create_topics
from ticklane import wire
from ticklane.dbn import split_records
from ticklane.kafka import consumer_config
from ticklane.market import DataGap, MarketFrame
from ticklane.settings import Settings
from ticklane.tail import consume
from ticklane.timing import TICK_RECEIVED, TICK_SENT, stamps

pytestmark = pytest.mark.integration

FILE = "glbx-esu4-20240701.mbp-1.dbn.zst"
FAST = Backoff(initial_s=0.01, max_s=0.05)
TICKLANE = str(Path(sys.executable).with_name("ticklane"))


@pytest.fixture
def records(databento_dir: Path) -> list[bytes]:
    return [bytes(r) for r in load_dbn(databento_dir / FILE).records]


def sample(name: str) -> float:
    """A metric's current value in this process's Prometheus registry."""
    return REGISTRY.get_sample_value(name) or 0.0


def in_kafka(read_topic, topic: str) -> list[bytes]:
    out = []
    for _p, _o, _k, value in read_topic(topic):
        out += split_records(wire.decode_as(value, MarketFrame).records)
    return out


class Running:
    """A LiveProducer on a thread, stopped on exit."""

    def __init__(self, producer: LiveProducer) -> None:
        self.producer = producer
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.producer.run(self.stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc

    def __enter__(self) -> "Running":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        # The SDK clients' finalizers must run now, not inside pytest's ast.parse of a failure
        # report (CPython 3.11.7 "AST constructor recursion depth mismatch").
        gc.collect()
        assert not self.thread.is_alive(), "producer did not stop"
        if self.error:
            raise self.error


def live(settings: Settings, gw: FakeLiveGateway, **kw) -> LiveProducer:
    request = LiveRequest("GLBX.MDP3", "mbp-1", ("ESU4",), start=kw.pop("start", None))
    return LiveProducer(
        request,
        settings,
        SecretStr(FAKE_API_KEY),
        Gateway("127.0.0.1", gw.port),
        backoff=FAST,
        **kw,
    )


def test_random_disconnects_end_with_every_record_exactly_once(
    databento_dir: Path, settings: Settings, records: list[bytes], read_topic, poll
) -> None:
    rng = random.Random(20241125)
    topic = f"{settings.topics.prefix}md.mbp-1"
    reconnects_before = sample("ticklane_producer_reconnects_total")
    lag_before = sample("ticklane_producer_lag_seconds_count")
    with FakeLiveGateway.from_files(databento_dir / FILE, now_ns=0, pacing="manual") as gw:
        producer = live(settings, gw, start=0)
        with Running(producer):
            for cut in range(1, 23):
                # The connection breaks at a random record, possibly mid-record, while
                # records keep happening.
                gw.drop_after(
                    rng.randrange(0, 40),
                    how=rng.choice(["reset", "close"]),
                    mid_record=rng.random() < 0.5,
                )
                gw.release(rng.randrange(40, 120))
                poll(lambda c=cut: gw.drops >= c, timeout_s=30, what=f"cut {cut}")
            gw.release_all()
            poll(lambda: producer.report.records >= len(records), timeout_s=60, what="all")
            poll(
                lambda: len(in_kafka(read_topic, topic)) >= len(records), timeout_s=30, what="acks"
            )
        assert gw.drops == 22
        assert producer.sessions >= 23
        assert sample("ticklane_producer_reconnects_total") >= reconnects_before + 22
        assert sample("ticklane_producer_lag_seconds_count") > lag_before
        assert all(s is not None for s in gw.start_values)  # every session asked for replay
    assert in_kafka(read_topic, topic) == records  # exactly once, in order


def test_restart_continues_from_kafka_without_gap_or_duplicate(
    databento_dir: Path, settings: Settings, records: list[bytes], read_topic, poll
) -> None:
    topic = f"{settings.topics.prefix}md.mbp-1"
    with FakeLiveGateway.from_files(databento_dir / FILE, now_ns=0, pacing="manual") as gw:
        first = live(settings, gw, start=0)
        with Running(first):
            gw.release(1000)
            poll(lambda: first.report.records >= 1000, timeout_s=30, what="first half")
        gw.release_all()  # records keep happening while no producer runs
        second = live(settings, gw)  # no --start: continue from what Kafka has
        with Running(second):
            poll(
                lambda: len(in_kafka(read_topic, topic)) >= len(records), timeout_s=60, what="rest"
            )
        assert gw.start_values[-1] is not None  # the restart asked for replay
    assert in_kafka(read_topic, topic) == records


def test_replay_that_cannot_cover_the_outage_is_a_data_gap(
    databento_dir: Path, settings: Settings, records: list[bytes], read_topic, poll
) -> None:
    window = 1_000_000_000  # the gateway keeps only one second for replay
    with FakeLiveGateway.from_files(
        databento_dir / FILE, now_ns=0, pacing="manual", replay_window_ns=window
    ) as gw:
        producer = live(settings, gw)  # nothing in Kafka yet: live from "now"
        with Running(producer):
            poll(lambda: gw.starts >= 1, timeout_s=30, what="the session to start")
            gw.release(100)
            poll(lambda: producer.report.records >= 100, timeout_s=30, what="first records")
            gw.drop_after(0, how="reset")
            gw.release_all()  # minutes of data pass before the reconnect is served
            poll(lambda: producer.gaps >= 1, timeout_s=30, what="a gap")
    gaps = [wire.decode_as(v, DataGap) for *_, v in read_topic(f"{settings.topics.prefix}md.gaps")]
    assert len(gaps) == 1
    assert gaps[0].end_ns > gaps[0].start_ns
    assert gaps[0].schema == "mbp-1"


@pytest.mark.parametrize("trading", [True, False], ids=["in-session", "closed"])
def test_a_silent_feed_is_stale_only_in_session(
    databento_dir: Path, settings: Settings, poll, trading: bool
) -> None:
    asked: list[int] = []

    def in_session(ns: int) -> bool:
        asked.append(ns)
        return trading

    labels = {"kind": "stale"}
    before = REGISTRY.get_sample_value("ticklane_producer_quality_events_total", labels) or 0.0
    with FakeLiveGateway.from_files(databento_dir / FILE, now_ns=0, pacing="manual") as gw:
        producer = live(settings, gw, stale_after_s=0.3, in_session=in_session)
        with Running(producer):
            poll(lambda: len(asked) >= (1 if trading else 3), timeout_s=30, what="silence")
    stale = REGISTRY.get_sample_value("ticklane_producer_quality_events_total", labels) or 0.0
    assert (stale - before == 1) is trading
    if trading:  # and the gauge an alert reads says so while it lasts
        assert REGISTRY.get_sample_value("ticklane_producer_feed_stale") == 1


def test_no_piece_of_the_key_in_any_output_at_debug(
    databento_dir: Path, settings: Settings, cli_env: dict[str, str], read_topic, poll
) -> None:
    # Distinctive, so that no five of its characters occur in a log line by chance.
    key = "db-Zq7Xk2Lp9Wm4Rt6Yv8Nb3Hc5Jd1Fg"
    create_topics(settings)
    topic = f"{settings.topics.prefix}md.mbp-1"
    env = cli_env | {"DATABENTO_API_KEY": key, "TICKLANE_LOG_LEVEL": "DEBUG"}
    args = ["--dataset", "GLBX.MDP3", "--schema", "mbp-1", "--symbols", "ESU4", "--start", "0"]
    with FakeLiveGateway.from_files(databento_dir / FILE, now_ns=0, api_key=key) as gw:
        proc = subprocess.Popen(
            [TICKLANE, "produce", "live", *args, "--gateway", f"127.0.0.1:{gw.port}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        arrived = False
        try:
            poll(lambda: read_topic(topic) or None, timeout_s=60, what="records in Kafka")
            arrived = True
        finally:
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=30)[0].decode(errors="replace")
            if not arrived:  # what the producer said, to tell why (the key is a test value)
                print(f"exit {proc.returncode}; the producer's last output:\n{output[-3000:]}")
    assert (gw.auth_attempts >= 1, gw.auth_failures) == (True, 0)  # it logged in with this key
    # The databento library's line that carries the key's last five characters was written...
    assert "sending CRAM challenge response" in output
    # ...and no piece of five characters of the key is anywhere in what the process printed.
    pieces = {key[i : i + 5] for i in range(len(key) - 4)}
    assert [p for p in pieces if p in output] == []


def test_live_frames_carry_their_receipt_and_hand_over_times(
    databento_dir: Path, settings: Settings, poll
) -> None:
    topic = f"{settings.topics.prefix}md.mbp-1"
    before = time.time_ns()
    with FakeLiveGateway.from_files(databento_dir / FILE, now_ns=0, pacing="manual") as gw:
        producer = live(settings, gw, start=0)
        with Running(producer):
            gw.release(300)
            poll(lambda: producer.report.records >= 300, timeout_s=30, what="300 records")
    after = time.time_ns()
    bootstrap = str(settings.kafka.bootstrap_servers)
    config = consumer_config(settings.kafka, bootstrap, f"stamps-{uuid.uuid4().hex}")
    messages = list(consume(config, topic, from_beginning=True, until_end=True))
    assert messages
    for message in messages:
        found = stamps(message.headers)
        # Received from the SDK, then handed to Kafka, both while the test ran.
        assert before <= found[TICK_RECEIVED] <= found[TICK_SENT] <= after
