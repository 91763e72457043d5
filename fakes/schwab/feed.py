"""Market data and instrument definitions for the fake, read from Kafka.

The reading is the TastyTrade fake's `DefinitionAndTickFeed` (md.definition and the md.*
tick topics, every partition from the beginning, topics created later picked up); this module
only runs it: `poll` blocks, so it runs in a one-thread pool and what it returns is applied
on the server's loop.
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from confluent_kafka import KafkaException

from executors.brokers.paper.matching import Tick
from fakes.tastytrade.feed import DefinitionAndTickFeed
from fakes.tastytrade.instruments import Instrument, from_definition
from ticklane.kafka import ClientConfig

log = logging.getLogger(__name__)

POLL_S: Final = 0.1


async def pump(
    config: ClientConfig,
    topics: list[str],
    on_ticks: Callable[[str, list[Tick]], None],
    on_instrument: Callable[[Instrument], None],
) -> None:
    """Apply md.* until cancelled: ticks to `on_ticks`, tradable definitions to `on_instrument`."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="fake-schwab-feed") as pool:
        try:
            feed = await loop.run_in_executor(pool, DefinitionAndTickFeed, config, topics)
        except KafkaException as exc:
            # The API keeps answering; only md.* fills and definitions are missing.
            log.error("fake schwab: no market data, Kafka refused: %s", exc)  # noqa: TRY400
            return
        try:
            while True:
                batch = await asyncio.shield(loop.run_in_executor(pool, feed.poll, POLL_S))
                for item in batch:
                    if isinstance(item, tuple):
                        on_ticks(item[0], item[1])
                        continue
                    for definition in item:
                        instrument = from_definition(definition)
                        if instrument is not None:
                            on_instrument(instrument)
        finally:
            # The pool runs one call at a time: this close waits for a poll in progress.
            pool.submit(feed.close)
