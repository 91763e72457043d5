"""Market data for the paper venue: md.* frames read from Kafka into per-symbol ticks.

The venue reads every partition of its md.* topics from the beginning, without a consumer
group (it commits nothing: after a restart it reads the data again, which is what lets it fill
an order whose signal time has passed at the same tick as before). Each symbol keeps its last
ticks (`TickBuffer`), in arrival order, which is time order within one topic.
"""

import logging
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from executors.brokers.paper.matching import Tick, tick_from_quote, tick_from_trade
from ticklane import dbn, wire
from ticklane.dbn import DbnRecordError
from ticklane.kafka import ClientConfig
from ticklane.market import MarketFrame

log = logging.getLogger(__name__)

_TRADE_RTYPE = 0x00


def symbol_ticks(frame: MarketFrame) -> list[tuple[str, list[Tick]]]:
    """Each run's symbol and ticks, in order (a frame of md.chain holds several symbols'
    runs); runs of records that are neither trades nor quotes (definitions) give none."""
    found: list[tuple[str, list[Tick]]] = []
    for run in dbn.frame_runs(frame):
        if run.rtype != _TRADE_RTYPE and run.rtype not in dbn.QUOTE_RTYPES:
            continue
        records = frame.records[run.start : run.stop]
        found.append((run.symbol, ticks_of(MarketFrame(run.symbol, records))))
    return found


def ticks_of(frame: MarketFrame) -> list[Tick]:
    """The ticks a frame's records make: quotes from book records, trades from trade records."""
    rtype = frame.records[1]
    if rtype == _TRADE_RTYPE:
        return [tick_from_trade(t) for t in dbn.to_trades(frame.records)]
    return [tick_from_quote(q) for q in dbn.to_quotes(frame.records)]


@dataclass
class TickBuffer:
    """One symbol's recent ticks, with their times kept apart for bisection."""

    limit: int
    ticks: list[Tick] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    def extend(self, ticks: list[Tick]) -> None:
        """Append ticks; drop the oldest beyond twice the limit (amortised trimming)."""
        self.ticks.extend(ticks)
        self.times.extend(t.ts_event for t in ticks)
        if len(self.ticks) > 2 * self.limit:
            del self.ticks[: -self.limit]
            del self.times[: -self.limit]

    def after(self, ts: int) -> list[Tick]:
        """Ticks strictly after `ts`."""
        return self.ticks[bisect_right(self.times, ts) :]


class MarketFeed:
    """Reads md.* topics and hands each batch of new ticks to a callback, per symbol."""

    def __init__(self, config: ClientConfig, topics: list[str]) -> None:
        self._consumer = Consumer(config)
        self.undecodable = 0
        parts: list[TopicPartition] = []
        metadata = self._consumer.list_topics(timeout=10)
        for topic in topics:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                log.warning("paper venue: market-data topic %s not found; no fills from it", topic)
                continue
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        self._consumer.assign(parts)

    def poll(self, on_ticks: Callable[[str, list[Tick]], None], max_messages: int = 500) -> int:
        """Read what is available now (no waiting); returns the number of frames read."""
        messages = self._consumer.consume(max_messages, 0)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("paper venue: market data error %s", error)
                continue
            try:
                frame = wire.decode_as(message.value() or b"", MarketFrame)
                runs = symbol_ticks(frame)
            except (wire.WireError, DbnRecordError) as exc:
                self.undecodable += 1
                log.warning("paper venue: skipped an undecodable market-data message: %s", exc)
                continue
            for symbol, ticks in runs:
                if ticks:
                    on_ticks(symbol, ticks)
        return len(messages)

    def close(self) -> None:
        """Leave the cluster."""
        self._consumer.close()
