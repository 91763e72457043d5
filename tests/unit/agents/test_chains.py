"""0DTE driven over an option chain from a DBN file: the chain engine and the backtest."""

from pathlib import Path

import databento_dbn
import msgspec
import pytest

from agents.backtest import BacktestError, chain_frames, run_backtest
from agents.chains import ChainEngine, ChainEntry
from agents.controls import ControlBook
from agents.frames import FrameError, chain_absorber
from agents.roster import Roster, RosterError
from agents.strategies.registry import registry
from agents.ticks import TickBatch
from producers.synth import SynthSummary, generate
from ticklane import dbn
from ticklane.control import ControlAction, ControlCommand
from ticklane.dbn import DbnRecordError, count_records, frame_layout, frame_runs
from ticklane.market import FRAME_MAX_BYTES, FRAME_MAX_RECORDS, FrameRun, MarketFrame
from ticklane.settings import StrategyConfig
from ticklane.trading import Signal

ZERO_DTE = StrategyConfig(name="zero_dte", params={"fast": 5, "slow": 20}, bar_interval="1s")
TRADE = int(databento_dbn.RType.MBP_0)
MBP1 = int(databento_dbn.RType.MBP_1)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    path = tmp_path_factory.mktemp("chain") / "chain.dbn.zst"
    return generate(path, symbols=2, minutes=8, seed=3)


def frames_cut(path: Path, cut: str) -> list[tuple[str, MarketFrame]]:
    """The file's chain as md.chain frames: as `produce file --chains` writes them
    ("frames"), under small caps ("small"), as the runs of one symbol and type that md.chain
    held before frames carried several symbols ("runs"), or one record a frame ("records")."""
    if cut == "small":
        return list(chain_frames(path, max_records=7, max_bytes=400))
    frames = list(chain_frames(path))
    if cut == "frames":
        return frames
    out = []
    for underlying, frame in frames:
        for run in frame_runs(frame):
            records = frame.records[run.start : run.stop]
            size = len(records) // run.count if cut == "records" else len(records)
            parts = [records[i : i + size] for i in range(0, len(records), size)]
            out += [(underlying, MarketFrame(run.symbol, part)) for part in parts]
    return out


def drive(path: Path, cut: str = "frames") -> tuple[list[Signal], dict[str, ChainEntry]]:
    """The chain engine over the file's chain, cut into frames as `frames_cut` says."""
    engine = ChainEngine(Roster([ZERO_DTE], registry(), chains=True))
    entries: dict[str, ChainEntry] = {}
    signals: list[Signal] = []
    for underlying, frame in frames_cut(path, cut):
        entry = entries.get(underlying, ChainEntry())
        outcome = engine.absorb(underlying, entry, (0, entry.offset + 1), frame)
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


@pytest.mark.parametrize("cut", ["small", "runs", "records"])
def test_how_the_chain_is_cut_into_frames_changes_nothing(
    synthetic: SynthSummary, cut: str
) -> None:
    """Whole frames, small ones, frames of one run each as md.chain held before frames
    carried several symbols, or of one record each: the same signals and the same state."""
    whole, whole_entries = drive(synthetic.path)
    other, other_entries = drive(synthetic.path, cut)
    assert [s.signal_id for s in other] == [s.signal_id for s in whole]
    assert other == whole
    assert {u: e.slots for u, e in other_entries.items()} == {
        u: e.slots for u, e in whole_entries.items()
    }
    assert {u: e.bars for u, e in other_entries.items()} == {
        u: e.bars for u, e in whole_entries.items()
    }


def test_the_chain_makes_few_full_frames_within_the_caps(synthetic: SynthSummary) -> None:
    """Before frames carried several symbols, this chain took 2.4 records a frame."""
    frames = [frame for _, frame in chain_frames(synthetic.path)]
    counts = [sum(run.count for run in frame.runs) for frame in frames]
    assert sum(counts) / len(frames) > 200
    assert max(counts) <= FRAME_MAX_RECORDS
    assert max(len(frame.records) for frame in frames) <= FRAME_MAX_BYTES
    assert all(len(frame.symbols) > 1 for frame in frames[1:])
    small = [frame for _, frame in chain_frames(synthetic.path, max_records=7, max_bytes=400)]
    # A definition (520 bytes) goes alone.
    assert all(count_records(f) <= 7 for f in small)
    assert all(len(f.records) <= 400 or count_records(f) == 1 for f in small)
    assert sum(map(count_records, small)) == sum(counts)


def test_a_frame_at_or_before_the_stored_position_is_a_replay(synthetic: SynthSummary) -> None:
    engine = ChainEngine(Roster([ZERO_DTE], registry(), chains=True))
    underlying, frame = next(iter(chain_frames(synthetic.path)))
    first = engine.absorb(underlying, ChainEntry(), (2, 7), frame)
    assert first is not None
    assert engine.absorb(underlying, first.entry, (2, 7), frame) is None
    assert engine.absorb(underlying, first.entry, (2, 8), frame) is not None


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
    frames = list(chain_frames(synthetic.path))
    half = len(frames) // 2
    underlying = synthetic.symbols[0]

    def drive_with(book: ControlBook, change: ControlCommand | None) -> list[Signal]:
        engine = ChainEngine(Roster([ZERO_DTE], registry(), chains=True), book)
        entry, signals = ChainEntry(), []
        for i, (u, frame) in enumerate(frames):
            if i == half and change is not None:
                book.apply(change)
            outcome = engine.absorb(u, entry, (0, entry.offset + 1), frame)
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
        frames = frames_cut(synthetic.path, "small")
        for offset, (underlying, frame) in enumerate(frames):
            key = underlying.encode()
            raw = stored.get(key)
            if copy and raw is not None:
                raw = bytes(bytearray(raw))  # equal bytes, another object: as read from RocksDB
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
    frames = frames_cut(synthetic.path, "small")[:50]
    assert len({underlying for underlying, _ in frames}) == 1
    key = frames[0][0].encode()
    entries: list[bytes | None] = [None]
    for offset, (_, frame) in enumerate(frames):
        absorbed = absorb(key, frame, entries[-1], (0, offset))
        assert absorbed is not None
        entries.append(absorbed.entry)
    again = absorb(key, frames[-1][1], entries[-2], (0, len(frames) - 1))
    assert again is not None
    assert again.entry == entries[-1]


def test_the_chain_absorber_refuses_a_frame_of_another_chain(synthetic: SynthSummary) -> None:
    absorb = chain_absorber(ChainEngine(Roster([ZERO_DTE], registry(), chains=True)))
    underlying, frame = next(iter(chain_frames(synthetic.path)))
    with pytest.raises(FrameError, match="does not match the frame's chain"):
        absorb(b"OTHER", frame, None, (0, 0))
    assert absorb(underlying.encode(), frame, None, (0, 0)) is not None


def test_a_frame_whose_runs_do_not_match_its_records_is_refused(synthetic: SynthSummary) -> None:
    absorb = chain_absorber(ChainEngine(Roster([ZERO_DTE], registry(), chains=True)))
    underlying, frame = next(iter(chain_frames(synthetic.path)))
    wrong = msgspec.structs.replace(frame, runs=frame.runs[:-1])
    with pytest.raises(DbnRecordError, match="beyond its runs"):
        absorb(underlying.encode(), wrong, None, (0, 0))


def test_a_batch_of_ticks_reads_every_field_of_its_mixed_records() -> None:
    quote = {"instrument_id": 7, "ts_event": 5, "ts_recv": 9, "bid_px_00": 3, "ask_px_00": 4}
    trade = {"instrument_id": 8, "ts_event": 12, "ts_recv": 11, "price": -6, "size": 2}
    quotes = dbn.encode_records(MBP1, [quote])
    trades = dbn.encode_records(TRADE, [trade, trade])
    runs = (FrameRun(0, 1), FrameRun(1, 2), FrameRun(0, 1))
    frame = MarketFrame("U", quotes + trades + quotes, symbols=("O", "U"), runs=runs)
    layout = frame_layout(frame)
    assert layout.run_of.tolist() == [0, 1, 1, 2]
    assert layout.offsets.tolist() == [0, 80, 128, 176]
    batch = TickBatch.of_runs(frame.records, layout, 0, 3)
    assert batch.quote.tolist() == [True, False, False, True]
    assert batch.ts.tolist() == [9, 12, 12, 9]
    assert batch.instrument_id.tolist() == [7, 8, 8, 7]
    assert batch.bid_px.tolist() == [3, 0, 0, 3]
    assert batch.price[1:3].tolist() == [-6, -6]
    assert batch.size[1:3].tolist() == [2, 2]
    assert batch.items() == dbn.to_quotes(quotes) + dbn.to_trades(trades) + dbn.to_quotes(quotes)
    part = batch.part(1, 3)
    assert part.items() == dbn.to_trades(trades)
    assert part.ts.tolist() == [12, 12]
    assert batch.item(3) == dbn.to_quotes(quotes)[0]
