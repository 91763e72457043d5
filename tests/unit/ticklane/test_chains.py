"""Option chains put together from md records: placement learned from definitions, order kept,
cut into md.chain frames of many symbols."""

import itertools
from pathlib import Path

import databento_dbn as dbn
from hypothesis import given
from hypothesis import strategies as st

from ticklane import wire
from ticklane.chains import ChainRouter, cut_chains
from ticklane.dbn import encode_records, frame_runs
from ticklane.dbn_files import DbnFile
from ticklane.routing import Router
from ticklane.symbology import SymbolMap
from ticklane.topics import MARKET_DATA_SCHEMAS

DEF = int(dbn.RType.INSTRUMENT_DEF)
TRADE = int(dbn.RType.MBP_0)
MBP1 = int(dbn.RType.MBP_1)


def definition(iid: int, symbol: str, cls: str, underlying: str = "") -> bytes:
    return encode_records(
        DEF,
        [
            {
                "instrument_id": iid,
                "raw_symbol": symbol,
                "instrument_class": cls,
                "underlying": underlying,
            }
        ],
    )


def record(rtype: int, iid: int, ts: int = 0) -> bytes:
    return encode_records(rtype, [{"instrument_id": iid, "ts_event": ts}])


def test_options_join_the_chain_their_definition_names_and_so_does_the_underlying() -> None:
    chains = ChainRouter()
    assert chains(definition(1, "ESM4", "F"), "ESM4") is None  # no chain named yet
    assert chains(definition(10, "ESM4 P5230", "P", "ESM4"), "ESM4 P5230") == "ESM4"
    assert chains.underlyings == {"ESM4"}
    assert chains(record(MBP1, 10), "ESM4 P5230") == "ESM4"
    assert chains(record(TRADE, 1), "ESM4") == "ESM4"
    assert chains(record(TRADE, 2), "NQM4") is None
    assert chains(record(MBP1, 11), "ESM4 P5250") is None  # definition not seen: unplaceable


def test_a_named_set_of_underlyings_limits_the_chains() -> None:
    chains = ChainRouter(["SPY"])
    assert chains(record(TRADE, 5), "SPY") == "SPY"  # known before any definition
    assert chains(definition(20, "QQQ 240701C00480000", "C", "QQQ"), "QQQ 240701C00480000") is None
    assert chains(record(MBP1, 20), "QQQ 240701C00480000") is None
    assert chains(definition(21, "SPY 240701C00550000", "C", "SPY"), "SPY 240701C00550000") == "SPY"


def test_a_redefinition_as_something_else_forgets_the_option() -> None:
    chains = ChainRouter()
    chains(definition(10, "X C1", "C", "X"), "X C1")
    assert chains(record(MBP1, 10), "X C1") == "X"
    assert chains(definition(10, "X C1", "K", ""), "X C1") is None
    assert chains(record(MBP1, 10), "X C1") is None


placed_records = st.lists(
    st.tuples(
        st.sampled_from(["ES", "NQ"]),
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from([TRADE, MBP1]),
    ),
    max_size=80,
)


@given(placed_records, st.integers(1, 9), st.integers(48, 500))
def test_cuts_keep_each_chains_order_and_every_records_symbol_within_the_caps(
    items: list[tuple[str, str, int]], max_records: int, max_bytes: int
) -> None:
    placed = [(u, s, record(rtype, 0, ts=i)) for i, (u, s, rtype) in enumerate(items)]
    cuts = cut_chains(placed, max_records, max_bytes)
    assert [c.first for c in cuts] == sorted(c.first for c in cuts)
    for underlying in ("ES", "NQ"):
        mine = [c for c in cuts if c.underlying == underlying]
        indices = iter(i for i, p in enumerate(placed) if p[0] == underlying)
        for c, after in itertools.zip_longest(mine, mine[1:]):
            # The chain's records in order, each with its own symbol, none left out.
            runs = frame_runs(c.frame())
            got = [
                (underlying, run.symbol, c.records[at : at + run_size])
                for run in runs
                for run_size in [(run.stop - run.start) // run.count]
                for at in range(run.start, run.stop, run_size)
            ]
            mine_here = [next(indices) for _ in got]
            assert got == [placed[i] for i in mine_here]
            assert (c.first, c.last, c.count) == (mine_here[0], mine_here[-1], len(got))
            assert c.count <= max_records
            assert len(c.records) <= max_bytes or c.count == 1
            if after is not None:  # cut only where the chain's next record does not fit
                next_size = len(placed[after.first][2])
                assert c.count == max_records or len(c.records) + next_size > max_bytes
            keys = [(run.symbol, run.rtype) for run in runs]
            assert all(a != b for a, b in itertools.pairwise(keys))  # runs are maximal
            assert len(set(c.symbols)) == len(c.symbols)  # each symbol named once
        assert next(indices, None) is None


def test_a_chain_cut_is_one_frame_of_many_symbols_and_types() -> None:
    option = definition(10, "ES C1", "C", "ES")
    placed = [
        ("ES", "ES C1", option),
        ("ES", "ES", record(TRADE, 1, ts=1)),
        ("ES", "ES C1", record(MBP1, 10, ts=2)),
        ("NQ", "NQ", record(TRADE, 2, ts=3)),
        ("ES", "ES C1", record(MBP1, 10, ts=4)),
        ("ES", "ES", record(MBP1, 1, ts=5)),
    ]
    es, nq = cut_chains(placed, 500, 1 << 20)
    assert (es.underlying, es.first, es.last, es.count) == ("ES", 0, 5, 5)
    assert (nq.underlying, nq.first, nq.last, nq.count) == ("NQ", 3, 3, 1)
    frame = es.frame("file:x", 5, 0)
    assert (frame.symbol, frame.symbols) == ("ES", ("ES C1", "ES"))
    assert [(r.symbol, r.count) for r in frame.runs] == [(0, 1), (1, 1), (0, 2), (1, 1)]
    assert frame.records == b"".join(r for u, _, r in placed if u == "ES")
    assert wire.decode(wire.encode(frame)) == frame


def test_real_cme_options_join_their_futures_chain(databento_dir: Path) -> None:
    """Real GLBX definitions name the option's underlying future: ESM4 P5230 → ESM4."""
    chains = ChainRouter()
    placed: list[tuple[str | None, str]] = []
    for name in (
        "glbx-esm4-20240509.definition.dbn.zst",
        "glbx-esm4-options-20240509.definition.dbn.zst",
        "glbx-esm4-options-20240509.bbo-1m.dbn.zst",
    ):
        dbn_file = DbnFile(databento_dir / name)
        batches = list(dbn_file.batches())
        symbols = SymbolMap()
        symbols.add_metadata_mappings(dbn_file.metadata.mappings)
        topics = {f"md.{s}": f"md.{s}" for s in MARKET_DATA_SCHEMAS}
        router = Router(symbols, topics, dbn_file.metadata.schema)
        for batch in batches:
            for raw in batch.records:
                routed = router(raw)
                if routed is not None:
                    placed.append((chains(raw, routed[1]), routed[1]))
    assert chains.underlyings == {"ESM4"}
    by_symbol: dict[str, set[str | None]] = {}
    for underlying, symbol in placed:
        by_symbol.setdefault(symbol, set()).add(underlying)
    # The futures' own definitions came before any option named ESM4: not yet a chain.
    assert by_symbol["ESM4"] == {None}
    assert by_symbol["NQM4"] == {None}
    assert by_symbol["ESM4 P5230"] == {"ESM4"}  # its definition and all its quotes
    assert by_symbol["ESM4 P5250"] == {"ESM4"}
    assert sum(1 for u, s in placed if s.startswith("ESM4 P")) == 2 + 20
