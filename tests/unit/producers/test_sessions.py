"""Stale-feed checks count only in session, from the real exchange calendars."""

import datetime as dt

import pytest

from producers.sessions import CalendarError, calendar_for, session_clock


def ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1e9)


def test_cme_globex_hours_weekends_and_holidays() -> None:
    cme = session_clock(calendar_for("GLBX.MDP3"))
    assert cme(ns("2024-07-01T15:00"))  # Monday afternoon
    assert not cme(ns("2024-07-06T15:00"))  # Saturday
    assert not cme(ns("2024-12-25T15:00"))  # Christmas


def test_nyse_early_close() -> None:
    nyse = session_clock(calendar_for("XNAS.ITCH", "XNYS"))
    assert nyse(ns("2024-11-29T17:30"))  # 12:30 ET, before the 13:00 early close
    assert not nyse(ns("2024-11-29T18:30"))  # 13:30 ET, after it


def test_unknown_dataset_is_always_in_session_and_bad_names_are_refused() -> None:
    assert calendar_for("NEW.DATASET") is None
    assert session_clock(None)(0)
    with pytest.raises(CalendarError, match="not an exchange calendar"):
        session_clock("NOPE")
