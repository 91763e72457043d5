"""A producer run's pid marker: a dead run's is reported and counted, a clean exit leaves none."""

from pathlib import Path

import pytest

from producers import metrics
from producers.runs import marker, tracked_run


def test_a_marker_left_by_a_dead_run_is_counted_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = marker(tmp_path, "file:a b/c.dbn")
    assert path.parent == tmp_path / "producers"
    path.parent.mkdir(parents=True)
    path.write_text("999999999\n")  # no such process
    before = metrics.UNCLEAN_EXITS._value.get()
    with tracked_run(tmp_path, "file:a b/c.dbn"):
        assert path.read_text().strip().isdigit()
    assert metrics.UNCLEAN_EXITS._value.get() == before + 1
    assert "(pid 999999999) ended without a clean exit" in caplog.text
    assert not path.exists()  # a clean exit leaves nothing


def test_a_run_that_fails_in_python_still_removes_its_marker(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), tracked_run(tmp_path, "live:GLBX.MDP3.trades"):
        raise RuntimeError("reported, not a crash")
    assert not marker(tmp_path, "live:GLBX.MDP3.trades").exists()
