"""Whether an exchange is in session: a live feed is stale only when data is expected.

Sessions, early closes and holidays come from the maintained `exchange_calendars`
library (docs/design.md, "Exchange sessions: never hand-written tables"). Each Databento
dataset maps to the calendar of the venue it comes from; `--calendar` overrides it.
"""

from collections.abc import Callable
from typing import Final

from ticklane import calendars

DATASET_CALENDARS: Final = {
    "GLBX.MDP3": "CMES",
    "XNAS.ITCH": "XNAS",
    "XNAS.BASIC": "XNAS",
    "XNYS.PILLAR": "XNYS",
    "DBEQ.BASIC": "XNYS",
    "EQUS.MINI": "XNYS",
    "EQUS.SUMMARY": "XNYS",
    "OPRA.PILLAR": "XNYS",
    "XCBF.PITCH": "XCBF",
}

InSession = Callable[[int], bool]
"""ns since the epoch -> whether the venue is trading then."""


class CalendarError(ValueError):
    """No calendar is known for a dataset, or the name is not a calendar."""


def calendar_for(dataset: str, override: str | None = None) -> str | None:
    """The calendar name for a dataset (None: unknown, every minute counts as in session)."""
    return override or DATASET_CALENDARS.get(dataset)


def session_clock(name: str | None) -> InSession:
    """A function telling whether the named calendar is open at a UTC ns time."""
    if name is None:
        return lambda _ns: True
    import exchange_calendars as xcals  # noqa: PLC0415 - loads pandas; only live feeds need it
    import pandas as pd  # type: ignore[import-untyped]  # noqa: PLC0415 - no stubs installed

    try:
        calendar = calendars.exchange_calendar(name)
    except xcals.errors.InvalidCalendarName:
        raise CalendarError(f"{name!r} is not an exchange calendar (e.g. XNYS, CMES)") from None

    def in_session(ns: int) -> bool:
        minute = pd.Timestamp(ns, tz="UTC").floor("min")
        with calendars.quiet():
            if not calendar.first_minute <= minute <= calendar.last_minute:
                return True  # outside the calendar's range: assume trading, never miss staleness
            return bool(calendar.is_open_on_minute(minute))

    return in_session
