"""Wall-clock stamps carried in Kafka headers, so a tick's way to an order can be timed.

The live producer stamps each md.* frame with when its first record arrived from the
gateway and when the frame was handed to Kafka; the agents stamp each signal with the stamps
of the frame that made it, when they took that frame, and when they handed the signal to
Kafka. With the venue's own receipt of the order, every stage of tick → order is known from
these stamps alone (`make bench`, the pipeline rows). They are wall-clock nanoseconds of
the machine that wrote them: across machines, a difference includes their clocks' offset.

Headers are informational: nothing decides on them, and a message without them is whole.
"""

from collections.abc import Iterable, Mapping
from typing import Final

TICK_RECEIVED: Final = "ticklane-tick-received-ns"
"""When the producer received the first record of the frame (of the frame that made a signal)."""
TICK_SENT: Final = "ticklane-tick-sent-ns"
"""When the producer handed the market-data frame to Kafka."""
FRAME_TAKEN: Final = "ticklane-frame-taken-ns"
"""When the agents worker took the frame that made a signal."""
SIGNAL_SENT: Final = "ticklane-signal-sent-ns"
"""When the agents worker handed the signal to Kafka."""

Headers = list[tuple[str, bytes]]


def stamp(name: str, ns: int) -> tuple[str, bytes]:
    """One header: `name` and a wall-clock ns as ASCII digits."""
    return name, str(ns).encode()


def stamps(
    headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes] | None,
) -> dict[str, int]:
    """The timing stamps among a message's headers (others, and malformed ones, left out)."""
    if not headers:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, int] = {}
    for name, value in pairs:
        if name.startswith("ticklane-") and name.endswith("-ns") and value and value.isdigit():
            found[name] = int(value)
    return found
