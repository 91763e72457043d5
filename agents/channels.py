"""The agents' topics and table, declared once on the app, named from the topic catalogue.

Values on every topic are ticklane wire messages, so Faust moves raw bytes and the
agents decode with `ticklane.wire` themselves. The `symbols` table holds one
`agents.engine.SymbolEntry` per symbol (msgpack bytes) in RocksDB, backed by a changelog
topic with as many partitions as the md.* topics, so each entry lives where its symbol's
frames are read.
"""

from dataclasses import dataclass

from faust.types import TableT, TopicT

from agents.app import AgentsApp
from agents.roster import INTERVALS_NS
from ticklane.settings import Settings
from ticklane.topics import catalogue


@dataclass(frozen=True)
class Channels:
    """Source md.* topic, output topics and the per-symbol state table of one app."""

    source: TopicT
    bars: dict[int, TopicT]
    """bars.<interval> by interval in ns."""
    signals: TopicT
    indicators: TopicT
    dlq: TopicT
    control_name: str
    symbols: TableT[bytes, bytes]
    chain: TopicT | None = None
    """md.chain, when chain strategies (0DTE) are configured."""
    chains: TableT[bytes, bytes] | None = None
    """One `agents.chains.ChainEntry` per underlying, co-partitioned with md.chain."""


def declare(app: AgentsApp, settings: Settings, *, chains: bool = False) -> Channels:
    """Declare the topics and tables on `app` (once per app); `chains` adds md.chain's."""
    names = {spec.base: spec.name for spec in catalogue(settings.topics)}
    partitions = settings.topics.partitions

    def topic(base: str, parts: int = partitions) -> TopicT:
        return app.topic(
            names[base],
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=parts,
        )

    def table(name: str) -> TableT[bytes, bytes]:
        # The app's raw key and value serializers apply.
        return app.Table(name, key_type=bytes, value_type=bytes, partitions=partitions)

    return Channels(
        source=topic(f"md.{settings.agents.source}"),
        bars={ns: topic(f"bars.{name}") for name, ns in INTERVALS_NS.items()},
        signals=topic("signals"),
        indicators=topic("indicators"),
        dlq=topic("dlq", 1),
        control_name=names["control"],
        symbols=table("symbols"),
        chain=topic("md.chain") if chains else None,
        chains=table("chains") if chains else None,
    )
