"""Build the broker the settings name: the paper venue, TastyTrade or Schwab."""

import os
from pathlib import Path
from typing import Final, get_args

from prometheus_client import CollectorRegistry

from executors.brokers.base import Broker
from executors.brokers.paper.feed import MarketFeed
from executors.brokers.paper.store import STORE_FILE, VenueStore
from executors.brokers.paper.venue import PaperBroker
from ticklane import kafka
from ticklane.settings import ExecutorSettings, Settings
from ticklane.topics import resolve


def paper_dir(settings: Settings) -> Path:
    """Where the paper venue keeps its own record."""
    return settings.executor.paper.data_dir or settings.data_dir / "paper"


def venue_store_path(directory: Path) -> Path:
    """The venue's store file under a ticklane data dir or a paper venue dir."""
    direct = directory / STORE_FILE
    return direct if direct.exists() else directory / "paper" / STORE_FILE


VENUES: Final[tuple[str, ...]] = get_args(ExecutorSettings.model_fields["broker"].annotation)


def with_venue(settings: Settings, venue: str, *, dry_run: bool = False) -> Settings:
    """The settings with the executor's venue (and TastyTrade's dry run) chosen."""
    executor = settings.executor
    tastytrade = executor.tastytrade.model_copy(
        update={"dry_run": executor.tastytrade.dry_run or dry_run}
    )
    return settings.model_copy(
        update={"executor": executor.model_copy(update={"broker": venue, "tastytrade": tastytrade})}
    )


def build_broker(
    settings: Settings, bootstrap: str, registry: CollectorRegistry | None = None
) -> Broker:
    """The configured broker; the paper venue connected to its market data."""
    if settings.executor.broker == "tastytrade":
        from executors.brokers.tastytrade.client import TastytradeBroker  # noqa: PLC0415
        from executors.brokers.tastytrade.config import credentials  # noqa: PLC0415

        return TastytradeBroker(settings.executor.tastytrade, credentials())
    if settings.executor.broker == "schwab":
        from executors.brokers.schwab import config as schwab_config  # noqa: PLC0415
        from executors.brokers.schwab.client import SchwabBroker  # noqa: PLC0415

        schwab = settings.executor.schwab
        SchwabBroker.check_symbols(settings.executor.symbols)
        app = schwab_config.credentials(schwab)
        return SchwabBroker(schwab, app, settings.data_dir, registry=registry)
    paper = settings.executor.paper
    store = VenueStore(paper_dir(settings), synchronous=settings.executor.ledger.sqlite_synchronous)
    config = kafka.client_config(settings.kafka, bootstrap) | {
        "group.id": f"ticklane-paper-{os.getpid()}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
    }
    topics = [resolve(settings.topics, f"md.{schema}") for schema in paper.market_data]
    feed = MarketFeed(config, topics)
    return PaperBroker(
        store,
        poll_market=feed.poll,
        close_market=feed.close,
        reverse_in_one_order=paper.reverse_in_one_order,
        fee_per_unit=paper.fee_per_unit,
        slippage=paper.slippage,
        tick_buffer=paper.tick_buffer,
        lose_answer_every=paper.lose_answer_every,
        answer_delay_ms=paper.answer_delay_ms,
    )
