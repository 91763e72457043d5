"""0DTE driven over an option chain from a DBN file: the chain engine and the backtest."""

from pathlib import Path

import pytest

from agents.backtest import BacktestError, chain_runs, run_backtest
from agents.chains import ChainEngine, ChainEntry
from agents.controls import ControlBook
from agents.frames import chain_absorber
from agents.roster import Roster, RosterError
from agents.strategies.registry import registry
from producers.synth import SynthSummary, generate
from ticklane.control import ControlAction, ControlCommand
from ticklane.market import MarketFrame
from ticklane.settings import StrategyConfig
from ticklane.trading import Signal

ZERO_DTE = StrategyConfig(name="zero_dte", params={"fast": 5, "slow": 20}, bar_interval="1s")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    path = tmp_path_factory.mktemp("chain") / "chain.dbn.zst"
    return generate(path, symbols=2, minutes=8, seed=3)


def drive(path: Path, *, split: bool) -> tuple[list[Signal], dict[str, ChainEntry]]:
    """The chain engine over the file's runs, or over every run cut into single records."""
    engine = ChainEngine(Roster([ZERO_DTE], registry(), chains=True))
    entries: dict[str, ChainEntry] = {}
    signals: list[Signal] = []
    for underlying, symbol, records in chain_runs(path):
        for part in [[r] for r in records] if split else [records]:
            entry = entries.get(underlying, ChainEntry())
            position = (0, entry.offset + 1)
            outcome = engine.absorb(underlying, entry, position, symbol, b"".join(part))
            assert outcome is not None
            entries[underlying] = outcome.entry
            signals += outcome.signals
    return signals, entries


def test_backtest_trades_todays_options_of_the_chain_one_position_at_a_time(
    synthetic: SynthSummary,
) -> None:
    result = run_backtest(synthetic.path, ZERO_DTE, registry())
    assert len(result.signals) >= 4
    assert {s.symbol for s in result.signals} <= set(synthetic.option_symbols)
    assert {s.strategy for s in result.signals} == {"zero_dte"}
    # Only the chain's underlying has bars: the other symbol has no options.
    assert {symbol for symbol, _ in result.bars} == {synthetic.symbols[0]}
    held: dict[str, int] = {}
    for signal in sorted(result.signals, key=lambda s: (s.ts_event, s.sequence)):
        held[signal.symbol] = signal.target_position
        assert sum(1 for q in held.values() if q) <= 1, "two options held at once"
        if signal.target_position:
            assert signal.reason.startswith("entry")
            assert (signal.reference_price or 0) > 0  # the ask paid
    assert len({s.signal_id for s in result.signals}) == len(result.signals)


def test_how_the_chain_is_cut_into_runs_changes_nothing(synthetic: SynthSummary) -> None:
    whole, whole_entries = drive(synthetic.path, split=False)
    single, single_entries = drive(synthetic.path, split=True)
    assert [s.signal_id for s in single] == [s.signal_id for s in whole]
    assert single == whole
    assert {u: e.slots for u, e in single_entries.items()} == {
        u: e.slots for u, e in whole_entries.items()
    }


def test_a_run_at_or_before_the_stored_position_is_a_replay(synthetic: SynthSummary) -> None:
    engine = ChainEngine(Roster([ZERO_DTE], registry(), chains=True))
    underlying, symbol, records = next(chain_runs(synthetic.path))
    first = engine.absorb(underlying, ChainEntry(), (2, 7), symbol, b"".join(records))
    assert first is not None
    assert engine.absorb(underlying, first.entry, (2, 7), symbol, b"".join(records)) is None
    assert engine.absorb(underlying, first.entry, (2, 8), symbol, b"".join(records)) is not None


def test_a_file_without_options_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "plain.dbn.zst"
    generate(path, symbols=1, minutes=3, seed=1, options=False)
    with pytest.raises(BacktestError, match="no option chain"):
        run_backtest(path, ZERO_DTE, registry())


def test_each_roster_takes_only_its_kind_of_strategy() -> None:
    with pytest.raises(RosterError, match="bar-driven strategies only"):
        Roster([ZERO_DTE], registry())
    with pytest.raises(RosterError, match="does not trade option chains"):
        Roster([StrategyConfig(name="ema_cross")], registry(), chains=True)


def test_control_disables_and_reconfigures_a_chain_strategy(synthetic: SynthSummary) -> None:
    runs = list(chain_runs(synthetic.path))
    half = len(runs) // 2
    underlying = synthetic.symbols[0]

    def drive_with(book: ControlBook, change: ControlCommand | None) -> list[Signal]:
        engine = ChainEngine(Roster([ZERO_DTE], registry(), chains=True), book)
        entry, signals = ChainEntry(), []
        for i, (u, symbol, records) in enumerate(runs):
            if i == half and change is not None:
                book.apply(change)
            outcome = engine.absorb(u, entry, (0, entry.offset + 1), symbol, b"".join(records))
            assert outcome is not None
            entry, signals = outcome.entry, signals + outcome.signals
        return signals

    plain = drive_with(ControlBook(), None)
    disable = ControlCommand.create(
        ControlAction.DISABLE, 1, strategy="zero_dte", symbol=underlying
    )
    disabled = drive_with(ControlBook(), disable)
    assert disabled == [s for s in plain if s in disabled]  # a prefix: nothing new
    assert len(disabled) < len(plain)
    wider = ControlCommand.create(
        ControlAction.SET_PARAMS,
        1,
        strategy="zero_dte",
        symbol=underlying,
        params={"strikes_otm": 3},
    )
    reconfigured = drive_with(ControlBook(), wider)
    assert not any("3 strikes OTM" in s.reason for s in plain)
    assert any("3 strikes OTM" in s.reason for s in reconfigured)
    assert reconfigured[: len(disabled)] == disabled  # the same until the change


def test_the_chain_absorber_reuses_only_the_entry_it_returned(synthetic: SynthSummary) -> None:
    """Handed its own bytes back it skips decoding; any other bytes are decoded: same result."""

    def through_absorber(copy: bool) -> list[tuple[bytes, list[Signal]]]:
        absorb = chain_absorber(ChainEngine(Roster([ZERO_DTE], registry(), chains=True)))
        stored: dict[bytes, bytes] = {}
        out = []
        for offset, (underlying, symbol, records) in enumerate(chain_runs(synthetic.path)):
            key = underlying.encode()
            raw = stored.get(key)
            if copy and raw is not None:
                raw = bytes(bytearray(raw))  # equal bytes, another object: as read from RocksDB
            frame = MarketFrame(symbol, b"".join(records))
            absorbed = absorb(key, frame, raw, (0, offset))
            assert absorbed is not None
            stored[key] = absorbed.entry
            out.append((absorbed.entry, absorbed.signals))
        return out

    reused, decoded = through_absorber(copy=False), through_absorber(copy=True)
    assert len(reused) == len(decoded) > 100
    assert reused == decoded
    assert sum(len(signals) for _, signals in reused) >= 4


def test_the_chain_absorber_decodes_an_older_entry_handed_back(synthetic: SynthSummary) -> None:
    """After a frame failed before its entry was stored, the table still holds the one before."""
    absorb = chain_absorber(ChainEngine(Roster([ZERO_DTE], registry(), chains=True)))
    runs = list(chain_runs(synthetic.path))[:50]
    assert len({underlying for underlying, _, _ in runs}) == 1
    key = runs[0][0].encode()
    entries: list[bytes | None] = [None]
    for offset, (_, symbol, records) in enumerate(runs):
        absorbed = absorb(key, MarketFrame(symbol, b"".join(records)), entries[-1], (0, offset))
        assert absorbed is not None
        entries.append(absorbed.entry)
    _, symbol, records = runs[-1]
    again = absorb(key, MarketFrame(symbol, b"".join(records)), entries[-2], (0, len(runs) - 1))
    assert again is not None
    assert again.entry == entries[-1]
