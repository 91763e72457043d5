"""Knowing that a producer's previous run did not end cleanly (a crash, a SIGKILL, an
out-of-memory kill), so that it is said and counted rather than only survived.

Each run of a source writes `data_dir/producers/<source>.pid` at start and removes it on any
exit it gets to run code for; a file left by a process that is gone means the last run
died. The restart itself needs nothing from it: the producer resumes after what Kafka
holds (`producers.resume`), exactly once.
"""

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from producers import metrics

log = logging.getLogger(__name__)


def marker(data_dir: Path, source: str) -> Path:
    """Where a run of `source` leaves its pid."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_") or "source"
    return data_dir / "producers" / f"{name}.pid"


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() if pid > 0 else False


@contextmanager
def tracked_run(data_dir: Path, source: str) -> Iterator[None]:
    """For the body: the run's pid in its marker; a marker from a dead run is reported
    (log and `ticklane_producer_unclean_exits_total`) before it is replaced."""
    path = marker(data_dir, source)
    try:
        left = int(path.read_text().strip() or "0")
    except (OSError, ValueError):
        left = 0
    if left and left != os.getpid() and not _alive(left):
        metrics.UNCLEAN_EXITS.inc()
        log.warning(
            "the previous producer run of %s (pid %d) ended without a clean exit (crashed or "
            "killed; its log says which); resuming after what Kafka holds",
            source,
            left,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
