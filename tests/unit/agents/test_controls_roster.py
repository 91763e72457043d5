"""Control-topic answers per strategy and symbol, and the settings' strategy roster."""

import pytest

from agents.controls import ControlBook, params_version
from agents.roster import INTERVALS_NS, Roster, RosterError
from agents.strategies import registry
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.settings import ConfigError, StrategyConfig, load_settings

DISABLE, ENABLE, SET = ControlAction.DISABLE, ControlAction.ENABLE, ControlAction.SET_PARAMS


def cmd(action, ts, strategy="ema_cross", symbol="", **params) -> ControlCommand:
    return ControlCommand.create(action, ts, strategy=strategy, symbol=symbol, params=params)


def test_enabled_unless_told_and_the_latest_matching_command_wins() -> None:
    book = ControlBook()
    assert book.enabled("ema_cross", "ES")
    book.apply(cmd(DISABLE, 1))  # every symbol
    assert not book.enabled("ema_cross", "ES")
    assert book.enabled("supertrend", "ES")
    book.apply(cmd(ENABLE, 2, symbol="ES"))
    assert book.enabled("ema_cross", "ES")
    assert not book.enabled("ema_cross", "NQ")
    book.apply(cmd(DISABLE, 3, strategy=""))  # every strategy, later: wins over both
    assert not book.enabled("ema_cross", "ES")
    assert not book.enabled("supertrend", "NQ")


def test_parameters_merge_broad_to_latest_and_bump_the_version() -> None:
    book = ControlBook()
    book.apply(cmd(SET, 1, fast=5, slow=20))
    book.apply(cmd(SET, 2, symbol="ES", fast=7))
    assert book.params("ema_cross", "ES") == {"fast": 7, "slow": 20}
    assert book.params("ema_cross", "NQ") == {"fast": 5, "slow": 20}
    assert book.params("supertrend", "ES") == {}
    before = book.version
    book.apply(cmd(SET, 3, fast=9))  # same scope as the first: replaces it, as compaction does
    assert book.version == before + 1
    assert book.params("ema_cross", "ES") == {"fast": 9}
    assert book.params("ema_cross", "NQ") == {"fast": 9}


def test_commands_for_the_executor_are_not_applied() -> None:
    book = ControlBook()
    kill = ControlCommand.create(ControlAction.KILL_SWITCH, 1, kill_switch=KillSwitchState.HALTED)
    assert not book.apply(kill)
    assert book.version == 0


def test_params_version_is_order_independent() -> None:
    assert params_version({"a": 1, "b": True}) == params_version({"b": True, "a": 1})
    assert params_version({"a": 1}) != params_version({"a": 1.0})


def test_listed_symbols_take_their_own_entry_and_the_rest_the_wildcard() -> None:
    roster = Roster(
        [
            StrategyConfig(name="ema_cross", params={"fast": 5, "slow": 20}),
            StrategyConfig(name="ema_cross", symbols=("ES",), bar_interval="5m"),
            StrategyConfig(name="supertrend", symbols=("ES", "NQ"), bar_interval="1s"),
        ],
        registry(),
    )
    es = {(s.name, s.interval_ns, tuple(s.params.items())) for s in roster.slots("ES")}
    assert es == {("ema_cross", INTERVALS_NS["5m"], ()), ("supertrend", INTERVALS_NS["1s"], ())}
    cl = [(s.name, s.params) for s in roster.slots("CL")]
    assert cl == [("ema_cross", {"fast": 5, "slow": 20})]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (StrategyConfig(name="nope"), "unknown strategy 'nope'"),
        (StrategyConfig(name="ema_cross", params={"fast": 30}), "fast (30) must be less than"),
        (StrategyConfig(name="zero_dte"), "bar-driven strategies only"),
    ],
)
def test_bad_entries_stop_start_up(entry: StrategyConfig, message: str) -> None:
    with pytest.raises(RosterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Roster([entry], registry())


def test_agents_section_from_toml_and_overlaps_refused(tmp_path, monkeypatch) -> None:
    for key in ("TICKLANE_CONFIG", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "t.toml"
    path.write_text(
        '[agents]\nsource = "mbp-1"\n'
        '[[agents.strategies]]\nname = "supertrend"\nparams = { length = 7, multiplier = 2.5 }\n'
        '[[agents.strategies]]\nname = "ema_cross"\nsymbols = ["ES", "NQ"]\nbar_interval = "5m"\n'
    )
    agents = load_settings(path).agents
    assert agents.source == "mbp-1"
    assert [s.name for s in agents.strategies] == ["supertrend", "ema_cross"]
    assert agents.strategies[0].params == {"length": 7, "multiplier": 2.5}
    assert agents.strategies[1].symbols == ("ES", "NQ")
    path.write_text(
        '[[agents.strategies]]\nname = "ema_cross"\nsymbols = ["ES"]\n'
        '[[agents.strategies]]\nname = "ema_cross"\nsymbols = ["ES"]\n'
    )
    with pytest.raises(ConfigError, match="lists \\['ES'\\] twice"):
        load_settings(path)
    path.write_text('[agents]\nbar_intervals = ["2m"]\n')
    with pytest.raises(ConfigError, match=r"agents\.bar_intervals"):
        load_settings(path)
