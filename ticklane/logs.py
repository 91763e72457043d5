"""Logging shared by every process: librdkafka's lines through Python's logging, and
repeated connection complaints held to one line per broker per interval.

While Kafka is unreachable, librdkafka (every confluent-kafka client) and aiokafka (the
agents' Faust app) log each failed attempt: hundreds of lines a minute that bury everything
else. `Repeats` lets the first complaint about a broker through, holds the rest about it for
`every_s`, then lets the next through with the count of what it held back.
"""

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

LIBRDKAFKA: Final = logging.getLogger("ticklane.librdkafka")
"""Where librdkafka's own lines go: the `logger` of every client `ticklane.kafka` configures."""

NOISY: Final = ("ticklane.librdkafka", "aiokafka", "faust.transport")
"""Loggers whose repeated lines are held back."""

_ADDRESS: Final = re.compile(r"([\w.-]+):(\d{2,5})(?![.\d])|\('([\w.-]+)', (\d{2,5})\)")
"""A broker's address as librdkafka (`host:port`) and aiokafka (`('host', port)`) write it."""
_NODE: Final = re.compile(r"\bnode (?:with )?(?:id )?(\d+)|\bfrom \[?(\d+)\]?")
"""A broker by its node id, as aiokafka names it when it has no address at hand."""
_NUMBER: Final = re.compile(r"\d+")


def kind(logger: str, message: str) -> str:
    """What a complaint is about: the broker it names (by address, else node id), for each
    library; a message naming no broker is its own kind, numbers aside."""
    library = logger.split(".", maxsplit=1)[0] if not logger.startswith("ticklane.") else logger
    address = _ADDRESS.search(message)
    if address:
        host, port = (address[1], address[2]) if address[1] else (address[3], address[4])
        return f"{library} {host}:{port}"
    node = _NODE.search(message)
    if node:
        return f"{library} node {node[1] or node[2]}"
    return f"{library} {_NUMBER.sub('#', message)}"


@dataclass
class _Held:
    shown_at: float
    held: int = 0


class Repeats(logging.Filter):
    """At most one line of each kind per `every_s` from the `NOISY` loggers; the next one
    after that says how many were held back."""

    def __init__(
        self, every_s: float = 30.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._every_s = every_s
        self._clock = clock
        self._kinds: dict[tuple[str, bool], _Held] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(NOISY):
            return True
        # Warnings and errors about a broker apart from its informational lines.
        key = (kind(record.name, record.getMessage()), record.levelno >= logging.WARNING)
        now = self._clock()
        held = self._kinds.get(key)
        if held is not None and now - held.shown_at < self._every_s:
            held.held += 1
            return False
        if held is not None and held.held:
            note = f" ({held.held} more like it in the last {now - held.shown_at:.0f}s)"
            # args (), not None: some formatters (Faust's) wrap None into a tuple and format.
            record.msg, record.args = record.getMessage() + note, ()
        self._kinds[key] = _Held(now)
        if len(self._kinds) > 1000:  # kinds of a long-gone outage
            self._kinds = {k: v for k, v in self._kinds.items() if now - v.shown_at < self._every_s}
        return True


def quiet_repeats(every_s: float = 30.0) -> Repeats:
    """Hold back repeated lines on every handler of the root logger (set up first)."""
    repeats = Repeats(every_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeats)
    return repeats
