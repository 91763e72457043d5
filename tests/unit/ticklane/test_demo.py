"""The demo never wipes state it did not make, and splits symbols between two strategies."""

import tomllib
from pathlib import Path

import pytest

from ticklane.demo import MARKER, DemoError, demo_config, prepare_data_dir
from ticklane.settings import Settings


def test_refuses_a_data_dir_with_foreign_state(tmp_path: Path) -> None:
    (tmp_path / "executor").mkdir()
    (tmp_path / "executor" / "ledger.sqlite").write_text("precious")
    with pytest.raises(DemoError, match="did not create"):
        prepare_data_dir(tmp_path)
    assert (tmp_path / "executor" / "ledger.sqlite").exists()


def test_wipes_only_its_own_previous_state(tmp_path: Path) -> None:
    prepare_data_dir(tmp_path)
    assert (tmp_path / MARKER).exists()
    (tmp_path / "paper").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    prepare_data_dir(tmp_path)
    assert not (tmp_path / "paper").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_config_is_valid_settings_splitting_the_symbols() -> None:
    data = tomllib.loads(demo_config(["A", "B", "C"]))
    settings = Settings(**data)
    ema, supertrend = settings.agents.strategies
    assert (ema.name, ema.symbols) == ("ema_cross", ("A",))
    assert (supertrend.name, supertrend.symbols) == ("supertrend", ("B", "C"))
    single = Settings(**tomllib.loads(demo_config(["A"])))
    assert [s.symbols for s in single.agents.strategies] == [("A",), ("A",)]


def test_config_runs_zero_dte_on_the_chains_and_keeps_the_executor_table() -> None:
    settings = Settings(**tomllib.loads(demo_config(["A", "B"], ["A"])))
    names = [(s.name, s.symbols) for s in settings.agents.strategies]
    assert names == [("ema_cross", ("A",)), ("supertrend", ("B",)), ("zero_dte", ("A",))]
    assert settings.executor.max_position == 10
