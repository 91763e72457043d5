"""Databento historical into Kafka: a time range streamed to disk, then replayed like a file.

The SDK streams the response body to a file (never held whole in memory); the file is
then produced with the file pipeline under the request's own source identity, so a
restarted request downloads again and skips exactly what Kafka already has. Server
errors and cut streams are retried with backoff; a client error (bad symbol, bad range)
stops with Databento's message.
"""

import hashlib
import logging
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import databento
from pydantic import SecretStr

from producers.framing import FrameLimits
from producers.live import Backoff
from producers.pipeline import ProducerError, Report, Stop, produce_file
from ticklane.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_GATEWAY: Final = "https://hist.databento.com"
ATTEMPTS: Final = 6


@dataclass(frozen=True)
class HistoricalRequest:
    """One timeseries.get_range request."""

    dataset: str
    schema: str
    symbols: tuple[str, ...]
    start: str
    end: str
    stype_in: str = "raw_symbol"

    @property
    def source(self) -> str:
        """The request's identity on md.* frames: the same request resumes the same source."""
        parts = [self.dataset, self.schema, self.stype_in, self.start, self.end, *self.symbols]
        return "hist:" + hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


def _download(
    client: databento.Historical, request: HistoricalRequest, path: Path, backoff: Backoff
) -> None:
    delays = backoff.delays(random.Random())  # noqa: S311 - jitter, not secrecy
    for attempt in range(1, ATTEMPTS + 1):
        path.unlink(missing_ok=True)  # a cut stream leaves a prefix; start the file afresh
        try:
            client.timeseries.get_range(
                dataset=request.dataset,
                schema=request.schema,
                symbols=list(request.symbols),
                start=request.start,
                end=request.end,
                stype_in=request.stype_in,
                path=path,
            )
        except databento.BentoClientError as exc:
            raise ProducerError(f"Databento refused the request: {exc}") from None
        except (databento.BentoError, OSError) as exc:
            if attempt == ATTEMPTS:
                raise ProducerError(f"download failed {ATTEMPTS} times; last: {exc}") from None
            log.warning("download attempt %d failed (%s); retrying", attempt, exc)
            time.sleep(next(delays))  # retry backoff, not a wait for a condition
        else:
            return


def produce_historical(
    request: HistoricalRequest,
    settings: Settings,
    key: SecretStr,
    *,
    gateway: str | None = None,
    limits: FrameLimits | None = None,
    backoff: Backoff | None = None,
    stop: Stop = lambda: False,
) -> Report:
    """Download the range and produce it; exactly once across restarts."""
    client = databento.Historical(key=key.get_secret_value(), gateway=gateway or DEFAULT_GATEWAY)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix="historical-") as tmp:
        path = Path(tmp) / "range.dbn.zst"
        _download(client, request, path, backoff or Backoff(initial_s=1.0))
        return produce_file(path, settings, limits=limits, stop=stop, source=request.source)
