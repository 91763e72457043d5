"""Repeated connection complaints are held to one line per kind per interval."""

import logging

from ticklane.logs import Repeats, kind

REFUSED = (
    "[thrd:127.0.0.1:39003/bootstrap]: 127.0.0.1:39003/bootstrap: Connect to "
    "ipv4#127.0.0.1:39003 failed: Connection refused (after {ms}ms in state CONNECT)"
)


def _record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, None)


def test_a_kind_is_the_broker_a_library_complains_about() -> None:
    lib = "ticklane.librdkafka"
    assert kind(lib, REFUSED.format(ms=0)) == f"{lib} 127.0.0.1:39003"
    other = REFUSED.replace("39003", "39004")
    assert kind(lib, REFUSED.format(ms=0)) != kind(lib, other.format(ms=0))
    # The same broker's trouble, seen by two clients of one process, is one kind.
    seen = "FAIL [ticklane#{client}] " + REFUSED.format(ms=3)
    assert kind(lib, seen.format(client="producer-6")) == kind(
        lib, seen.format(client="consumer-3")
    )
    # aiokafka names a broker by address or by node id.
    refused = (
        "Unable connect to node with id 111: [Errno 111] Connect call failed ('10.0.0.5', 9092)"
    )
    assert kind("aiokafka.conn", refused) == "aiokafka 10.0.0.5:9092"
    fetch = "Failed fetch messages from 111: NodeNotReadyError: not ready (node id 111)."
    assert kind("aiokafka.consumer.fetcher", fetch) == "aiokafka node 111"
    assert kind("aiokafka", "Timer took 5 s") == kind("aiokafka", "Timer took 7 s")


def test_one_line_per_kind_per_interval_then_the_count_held_back() -> None:
    now = [0.0]
    repeats = Repeats(every_s=30, clock=lambda: now[0])
    shown = []
    for second in range(61):
        now[0] = float(second)
        for broker in ("39003", "39004"):  # two brokers: a line each
            record = _record("ticklane.librdkafka", REFUSED.replace("39003", broker).format(ms=2))
            if repeats.filter(record):
                shown.append(record.getMessage())
    assert len(shown) == 6  # at 0 s, 30 s and 60 s, for each broker
    assert shown[2].endswith("(29 more like it in the last 30s)")


def test_other_loggers_pass_untouched() -> None:
    repeats = Repeats(every_s=30, clock=lambda: 0.0)
    assert all(repeats.filter(_record("executors.engine", "same line")) for _ in range(5))
