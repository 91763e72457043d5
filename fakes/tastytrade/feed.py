"""Market data and instrument definitions for the fake, read from Kafka.

Like the paper venue's feed it reads every partition of its topics from the beginning,
without a consumer group, and turns frames into ticks with the paper venue's `ticks_of`;
it also reads md.definition, whose records become instruments. `poll` blocks up to its
timeout, so the server calls it in a worker thread and applies what it returns on its loop.
"""

import logging
import time
from typing import Final

import databento_dbn
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from executors.brokers.paper.feed import ticks_of
from executors.brokers.paper.matching import Tick
from ticklane import dbn, wire
from ticklane.dbn import DbnRecordError
from ticklane.kafka import ClientConfig
from ticklane.market import InstrumentDef, MarketFrame

log = logging.getLogger(__name__)

_DEFINITION_RTYPE: Final = int(databento_dbn.RType.INSTRUMENT_DEF)
_RETRY_TOPICS_S: Final = 5.0
"""How often topics missing at start are looked for again (a fake may start before them)."""

FeedItem = tuple[str, list[Tick]] | list[InstrumentDef]
"""What one frame gives: a symbol's ticks, or definitions."""


class DefinitionAndTickFeed:
    """Reads md.definition and the md.* tick topics; topics created later are picked up."""

    def __init__(self, config: ClientConfig, topics: list[str]) -> None:
        self._consumer = Consumer(config)
        self._missing = list(topics)
        self.undecodable = 0
        self._retried_at = 0.0
        try:
            self._assign_missing()
        except BaseException:
            self._consumer.close()  # or librdkafka keeps reconnecting in the background
            raise

    def _assign_missing(self) -> None:
        metadata = self._consumer.list_topics(timeout=10)
        found: list[str] = []
        parts: list[TopicPartition] = []
        for topic in self._missing:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            found.append(topic)
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        if parts:
            # Added to what is assigned: the partitions read so far keep their positions.
            self._consumer.incremental_assign(parts)
            self._missing = [t for t in self._missing if t not in found]
        if self._missing and not self._retried_at:
            log.info("fake tastytrade: waiting for topics %s", ", ".join(self._missing))
        self._retried_at = time.monotonic()

    def poll(self, timeout_s: float, max_messages: int = 500) -> list[FeedItem]:
        """What arrives within the timeout, in arrival order."""
        if self._missing and time.monotonic() - self._retried_at >= _RETRY_TOPICS_S:
            self._assign_missing()
        items: list[FeedItem] = []
        for message in self._consumer.consume(max_messages, timeout_s):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("fake tastytrade: market data error %s", error)
                continue
            try:
                got, refused = _items(wire.decode_as(message.value() or b"", MarketFrame))
            except (wire.WireError, DbnRecordError) as exc:
                got, refused = [], [str(exc)]
            items += got
            for reason in refused:
                self.undecodable += 1
                log.warning("fake tastytrade: skipped an undecodable message: %s", reason)
        return items

    def close(self) -> None:
        """Leave the cluster."""
        self._consumer.close()


def _items(frame: MarketFrame) -> tuple[list[FeedItem], list[str]]:
    """A frame's definitions and ticks, run by run (a frame of md.chain holds several
    symbols' records, each run of one symbol and type), and why any run gave none."""
    items: list[FeedItem] = []
    refused: list[str] = []
    for run in dbn.frame_runs(frame):
        records = frame.records[run.start : run.stop]
        try:
            if run.rtype == _DEFINITION_RTYPE:
                items.append(dbn.to_instruments(records))
            else:
                items.append((run.symbol, ticks_of(MarketFrame(run.symbol, records))))
        except DbnRecordError as exc:
            refused.append(str(exc))
    return items, refused
