"""Deterministic identifiers derived from what caused a message.

Replaying the same input yields the same ids; that, and idempotent sinks keyed on them,
is what makes the pipeline effectively exactly-once (docs/design.md, "Identity").
"""

import hashlib


def deterministic_id(prefix: str, *parts: str | int) -> str:
    """`prefix-<32 hex>`: a 128-bit BLAKE2b digest of the parts, unambiguous in their boundaries."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        # Type tag and length prefix: ("a", "bc") and ("ab", "c"), or 1 and "1", never collide.
        raw = part.encode() if isinstance(part, str) else str(part).encode()
        tag = b"s" if isinstance(part, str) else b"i"
        digest.update(tag + len(raw).to_bytes(4, "big") + raw)
    return f"{prefix}-{digest.hexdigest()}"


def signal_id(strategy: str, symbol: str, ts_event: int, sequence: int) -> str:
    """Id of the signal a strategy emitted for a symbol at a bar or tick time."""
    return deterministic_id("sig", strategy, symbol, ts_event, sequence)


def client_order_id(signal_id: str, leg: int = 0) -> str:
    """Id of the order (or leg of a two-step reversal) that answers a signal."""
    return deterministic_id("ord", signal_id, leg)


def fill_id(venue: str, venue_order_id: str, execution_id: str) -> str:
    """Id of a fill as reported by a venue for one of its orders."""
    return deterministic_id("fil", venue, venue_order_id, execution_id)


def command_id(action: str, strategy: str, symbol: str, ts_event: int) -> str:
    """Id of a control command issued at a time."""
    return deterministic_id("cmd", action, strategy, symbol, ts_event)
