"""The topic catalogue: every topic ticklane uses, its partitions, key and retention.

Pure data; `ticklane.topic_admin` compares it with a cluster and creates what is missing.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from ticklane.settings import TopicSettings

MARKET_DATA_SCHEMAS: Final = (
    "trades",
    "mbp-1",
    "tbbo",
    "bbo-1s",
    "bbo-1m",
    "ohlcv-1s",
    "ohlcv-1m",
    "ohlcv-1h",
    "ohlcv-1d",
    "ohlcv-eod",
    "definition",
    "statistics",
    "status",
    "imbalance",
    "mbo",
    "mbp-10",
    "cmbp-1",
    "cbbo-1s",
    "cbbo-1m",
    "tcbbo",
)
"""Databento schemas with a `md.<schema>` topic: every record type ticklane.dbn knows."""

BAR_INTERVALS: Final = ("1s", "1m", "5m")
"""Intervals of the bars the agents build, each on a `bars.<interval>` topic."""

_DAY_MS: Final = 24 * 3600 * 1000


class KeyKind(StrEnum):
    """What a topic's message key holds."""

    SYMBOL = "symbol"
    STRATEGY_SYMBOL = "strategy/symbol"
    CLIENT_ORDER_ID = "client_order_id"
    CONTROL_KEY = "control key"
    SOURCE = "source"
    UNDERLYING = "underlying"
    INSTANCE = "process instance"
    NONE = "none"


@dataclass(frozen=True)
class TopicSpec:
    """One catalogued topic. `name` is the full name, prefix included."""

    name: str
    base: str
    partitions: int
    key: KeyKind
    value: str
    description: str
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def compacted(self) -> bool:
        """Whether the broker keeps only the latest message per key."""
        return "compact" in self.config.get("cleanup.policy", "")


def _retention(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * _DAY_MS)}


_COMPACT: Final = {"cleanup.policy": "compact"}
_FOREVER: Final = {"cleanup.policy": "delete", "retention.ms": "-1"}


def catalogue(settings: TopicSettings) -> tuple[TopicSpec, ...]:
    """Every topic, named with the configured prefix and sized with the configured partitions."""
    n = settings.partitions
    specs: list[tuple[str, int, KeyKind, str, str, dict[str, str]]] = []
    for schema in MARKET_DATA_SCHEMAS:
        if schema == "definition":
            # Compacted: a late consumer still finds every instrument's latest definition.
            specs.append(
                (f"md.{schema}", n, KeyKind.SYMBOL, "frame", "instrument definitions", _COMPACT)
            )
        else:
            specs.append(
                (f"md.{schema}", n, KeyKind.SYMBOL, "frame", f"Databento {schema}", _retention(7))
            )
    specs.append(
        ("md.gaps", 1, KeyKind.SOURCE, "data_gap", "market data missed for good", _FOREVER)
    )
    # Option chains (`ticklane.chains`): frames keep the symbol of each record (their runs),
    # the key is the underlying, so a chain's records of every symbol are in one partition,
    # in order.
    specs.append(
        ("md.chain", n, KeyKind.UNDERLYING, "frame", "option chains, in order", _retention(7))
    )
    specs.extend(
        (f"bars.{iv}", n, KeyKind.SYMBOL, "bar", f"{iv} bars built by the agents", _retention(30))
        for iv in BAR_INTERVALS
    )
    specs += [
        ("signals", n, KeyKind.SYMBOL, "signal", "target positions from strategies", _FOREVER),
        (
            "indicators",
            n,
            KeyKind.SYMBOL,
            "indicators",
            "strategies' indicator values per bar",
            _retention(30),
        ),
        ("orders", n, KeyKind.SYMBOL, "order", "order state changes", _FOREVER),
        ("fills", n, KeyKind.SYMBOL, "fill", "executions reported by the venue", _FOREVER),
        ("positions", n, KeyKind.STRATEGY_SYMBOL, "position", "latest position", _COMPACT),
        # One partition: every agent and executor reads every command, in issue order.
        ("control", 1, KeyKind.CONTROL_KEY, "control", "operator commands", _COMPACT),
        # Each process's answer to each command it acts on (key: command/process).
        (
            "control.acks",
            1,
            KeyKind.CONTROL_KEY,
            "control_ack",
            "commands applied or refused",
            _COMPACT,
        ),
        # Each process's latest heartbeat (key: its instance name).
        ("status", 1, KeyKind.INSTANCE, "status", "process heartbeats", _COMPACT),
        ("dlq", 1, KeyKind.NONE, "raw bytes", "undecodable or failed messages", _retention(14)),
        # Who called which control, allowed or refused: kept, as an audit trail must be.
        ("audit", 1, KeyKind.NONE, "json", "API control calls, allowed or refused", _FOREVER),
    ]
    return tuple(
        TopicSpec(
            name=settings.prefix + base,
            base=base,
            partitions=parts,
            key=key,
            value=value,
            description=desc,
            config=config,
        )
        for base, parts, key, value, desc, config in specs
    )


def resolve(settings: TopicSettings, name: str) -> str:
    """The full topic name for a catalogue name (`signals`) or an already prefixed one."""
    bases = {spec.base: spec.name for spec in catalogue(settings)}
    return bases.get(name, name)


def retention_summary(config: Mapping[str, str]) -> str:
    """`compact`, `7d` or `forever`: a topic's retention as a person reads it."""
    if "compact" in config.get("cleanup.policy", ""):
        return "compact"
    retention = int(config.get("retention.ms", "-1"))
    if retention < 0:
        return "forever"
    days, rest = divmod(retention, _DAY_MS)
    return f"{days}d" if not rest else f"{retention // 1000}s"
