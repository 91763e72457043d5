"""Exchange calendars from the maintained `exchange_calendars`, without pandas' noise.

exchange_calendars on pandas 3 trips pandas' own warnings of pandas 4 changes when it
builds a calendar and on lookups; they are not ours to fix and would bury real warnings
in every log, so the calendar's calls go through `quiet`.
"""

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence deprecation warnings (pandas' included) raised inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def exchange_calendar(name: str, **window: str) -> Any:
    """The named calendar (XNYS, CMES, ...), optionally limited to `start=`/`end=` dates.

    Raises exchange_calendars' InvalidCalendarName for an unknown name. Imported here:
    the calendars load pandas, which only some processes need.
    """
    import exchange_calendars as xcals  # noqa: PLC0415 - loads pandas

    with quiet():
        return xcals.get_calendar(name, **window)
