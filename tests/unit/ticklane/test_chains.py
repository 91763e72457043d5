"""Option chains put together from md records: placement learned from definitions, order kept."""

from pathlib import Path

import databento_dbn as dbn
from hypothesis import given
from hypothesis import strategies as st

from ticklane.chains import ChainRouter, cut_runs
from ticklane.dbn import encode_records
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
    max_size=60,
)


@given(placed_records)
def test_runs_keep_each_chains_order_and_never_mix(items: list[tuple[str, str, int]]) -> None:
    placed = [(u, s, record(rtype, 0, ts=i)) for i, (u, s, rtype) in enumerate(items)]
    runs = cut_runs(placed)
    for underlying in ("ES", "NQ"):
        flattened = [r for u, _, records in runs if u == underlying for r in records]
        assert flattened == [r for u, _, r in placed if u == underlying]
    for _, symbol, records in runs:
        assert records
        assert len({r[1] for r in records}) == 1  # one record type per run
        for r in records:
            i = int.from_bytes(r[8:16], "little")
            assert placed[i][1] == symbol
    # Maximal: consecutive records of a chain with the same symbol and type share a run.
    assert (
        len(runs)
        == sum(
            1
            for i, (u, s, rtype) in enumerate(items)
            if not any(items[j][0] == u for j in range(i))  # first of its chain
            or next(items[j] for j in range(i - 1, -1, -1) if items[j][0] == u)[1:] != (s, rtype)
        )
    )


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
