"""The synthetic DBN generator: real DBN that DBNStore reads, plausible books, 0DTE chains."""

import warnings
from collections import Counter

import databento_dbn as dbn
import numpy as np
import pandas as pd
import pytest
import zstandard
from databento import DBNStore

from producers.framing import ChainFramer, FrameLimits
from producers.planner import FramePlanner
from producers.resume import ResumeState
from producers.synth import DATASET, DEFAULT_START_NS, generate
from producers.synth_instruments import PRICE_SCALE, UNDEF_PRICE, make_underlying, utc_date
from producers.synth_options import (
    RISK_FREE_RATE,
    YEAR_NS,
    atm_volatility,
    black_scholes,
    quote_ticks,
    smile_vol,
)
from ticklane.chains import ChainRouter
from ticklane.dbn_files import DbnFile
from ticklane.routing import Router
from ticklane.symbology import SymbolMap
from ticklane.topics import MARKET_DATA_SCHEMAS

SEED = 42
CLOSE_2024_07_01 = 1_719_864_000_000_000_000  # 16:00 New York, the XNYS close that day
F_LAST = int(dbn.F_LAST)


@pytest.fixture(autouse=True)
def _quiet_pandas():
    """databento's DataFrame code trips pandas 3 deprecation warnings that are not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One generated file (8 underlyings, 10 minutes, options) and what it reads back as."""
    path = tmp_path_factory.mktemp("synth") / "synth.dbn.zst"
    summary = generate(path, symbols=8, minutes=10, seed=SEED)
    store = DBNStore.from_file(path)
    return {
        "summary": summary,
        "store": store,
        "mbp": store.to_ndarray(schema="mbp-1"),
        "trades": store.to_ndarray(schema="trades"),
        "defs": store.to_ndarray(schema="definition"),
        "all": [(r.rtype, r.instrument_id, r.ts_event, r.ts_recv) for r in store],
    }


def _definitions(synth):
    """Definitions by instrument id."""
    return {int(d["instrument_id"]): d for d in synth["defs"]}


def _mid_in_force(book, times):
    """Mid of an underlying's book as of each time, from each event's last record."""
    last = book[(book["flags"] & F_LAST) != 0]
    at = np.searchsorted(last["ts_event"], times, side="right") - 1
    assert (at >= 0).all()
    mid = (last["bid_px_00"].astype(float) + last["ask_px_00"].astype(float)) / 2
    return mid[at] / PRICE_SCALE


def test_same_arguments_give_the_same_bytes_and_another_seed_does_not(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.dbn.zst", "b.dbn.zst", "c.dbn.zst"))
    generate(a, symbols=3, minutes=2, seed=7)
    generate(b, symbols=3, minutes=2, seed=7)
    generate(c, symbols=3, minutes=2, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_a_plain_name_is_uncompressed_dbn_and_zst_is_the_same_compressed(tmp_path):
    plain, packed = tmp_path / "s.dbn", tmp_path / "s.dbn.zst"
    generate(plain, symbols=2, minutes=1, seed=3)
    generate(packed, symbols=2, minutes=1, seed=3)
    assert plain.read_bytes()[:4] == b"DBN\x03"
    assert zstandard.ZstdDecompressor().decompress(packed.read_bytes()) == plain.read_bytes()


def test_every_record_re_encodes_to_the_bytes_in_the_file(tmp_path):
    path = tmp_path / "s.dbn"
    generate(path, symbols=3, minutes=2, seed=5)
    raw = path.read_bytes()
    decoder = dbn.DBNDecoder()
    decoder.write(raw)
    decoded = decoder.decode()
    metadata, records = decoded[0], decoded[1:]
    assert isinstance(metadata, dbn.Metadata)
    assert metadata.encode() + b"".join(bytes(r) for r in records) == raw


def test_dbnstore_reads_the_counts_the_summary_reports(synth):
    summary = synth["summary"]
    by_type = Counter(rtype for rtype, *_ in synth["all"])
    assert by_type == {
        int(dbn.RType.INSTRUMENT_DEF): summary.counts["definition"],
        int(dbn.RType.MBP_1): summary.counts["mbp-1"],
        int(dbn.RType.MBP_0): summary.counts["trades"],
    }
    assert summary.records == len(synth["all"])
    assert summary.counts["definition"] == 8 + 42  # underlyings + 21 strikes x call/put
    assert synth["store"].schema is None  # mixed schemas, as a live stream


def test_metadata_marks_the_data_synthetic(synth):
    metadata = synth["store"].metadata
    assert metadata.dataset == DATASET == "SYNTH.TICKLANE"
    assert metadata.stype_in == dbn.SType("raw_symbol")
    assert metadata.stype_out == dbn.SType("instrument_id")
    assert metadata.start == DEFAULT_START_NS == synth["summary"].start_ns
    assert metadata.end == DEFAULT_START_NS + 10 * 60 * 10**9
    assert set(metadata.symbols) == set(synth["summary"].symbols + synth["summary"].option_symbols)
    assert {r["publisher_id"] for r in synth["mbp"]} == {0}  # no real venue has id 0
    assert {bytes(d["exchange"]) for d in synth["defs"]} == {b"SYNX"}


def test_every_record_maps_to_its_symbol(synth):
    store = synth["store"]
    definitions = _definitions(synth)
    for schema in ("mbp-1", "trades", "definition"):
        df = store.to_df(schema=schema, map_symbols=True)
        assert len(df) > 0
        assert df["symbol"].notna().all()
        names = {i: definitions[i]["raw_symbol"].decode() for i in set(df["instrument_id"])}
        assert (df["symbol"] == df["instrument_id"].map(names)).all()


def test_file_is_ordered_by_ts_event_and_ts_recv_trails_it(synth):
    columns = zip(*synth["all"], strict=True)
    _, _, ts_event, ts_recv = (np.array(c, dtype=np.uint64) for c in columns)
    assert (np.diff(ts_event.astype(np.int64)) >= 0).all()
    assert (np.diff(ts_recv.astype(np.int64)) >= 0).all()
    assert (ts_recv > ts_event).all()
    lag = (ts_recv - ts_event).astype(np.int64)
    assert np.median(lag) < 200_000  # a small capture delay, not a reordering


def test_definitions_are_unique_and_precede_their_data(synth):
    ids = [int(d["instrument_id"]) for d in synth["defs"]]
    assert len(ids) == len(set(ids))
    seen: set[int] = set()
    for rtype, instrument_id, *_ in synth["all"]:
        if rtype == int(dbn.RType.INSTRUMENT_DEF):
            seen.add(instrument_id)
        else:
            assert instrument_id in seen


def test_books_are_never_crossed_and_sizes_match_sides(synth):
    mbp = synth["mbp"]
    bid, ask = mbp["bid_px_00"], mbp["ask_px_00"]
    both = (bid != UNDEF_PRICE) & (ask != UNDEF_PRICE)
    assert both.mean() > 0.9
    assert (bid[both] < ask[both]).all()
    assert (bid[bid != UNDEF_PRICE] > 0).all()
    for side in ("bid", "ask"):
        px, sz, ct = mbp[f"{side}_px_00"], mbp[f"{side}_sz_00"], mbp[f"{side}_ct_00"]
        shown = px != UNDEF_PRICE
        assert (sz[~shown] == 0).all()
        assert (ct[~shown] == 0).all()
        assert (sz[shown] >= 1).all()
        assert ((ct[shown] >= 1) & (ct[shown] <= sz[shown])).all()
    assert set(np.unique(mbp["action"])) == {b"A", b"C", b"M", b"T"}
    assert (mbp["depth"] == 0).all()


def test_prices_sit_on_each_instruments_tick_grid(synth):
    definitions = _definitions(synth)
    tick = np.array(
        [definitions[int(i)]["min_price_increment"] for i in synth["mbp"]["instrument_id"]]
    )
    for field in ("price", "bid_px_00", "ask_px_00"):
        px = synth["mbp"][field]
        shown = px != UNDEF_PRICE
        assert (px[shown] % tick[shown] == 0).all()
    underlying_ticks = {
        int(d["min_price_increment"])
        for d in synth["defs"]
        if d["instrument_class"] in (b"F", b"K")
    }
    assert underlying_ticks >= {250_000_000, 10_000_000}


def test_underlying_spreads_are_one_to_three_ticks(synth):
    definitions = _definitions(synth)
    mbp = synth["mbp"]
    for instrument_id in {
        int(d["instrument_id"]) for d in synth["defs"] if d["instrument_class"] in (b"F", b"K")
    }:
        rows = mbp[(mbp["instrument_id"] == instrument_id) & (mbp["ask_px_00"] != UNDEF_PRICE)]
        spread = (rows["ask_px_00"] - rows["bid_px_00"]) // definitions[instrument_id][
            "min_price_increment"
        ]
        assert set(np.unique(spread)) <= {1, 2, 3, 4}  # 4 only between a sweep's two records
        assert (spread[(rows["flags"] & F_LAST) != 0] <= 3).all()


def test_trades_print_at_the_touch_of_the_book_they_hit(synth):
    mbp, trades = synth["mbp"], synth["trades"]
    prints = mbp[mbp["action"] == b"T"]
    assert len(prints) == len(trades) > 100
    # Each trade has a twin MBP-1 "T" record (same sequence) carrying the book it hit.
    key = np.lexsort((prints["sequence"], prints["instrument_id"]))
    twin = prints[key][
        np.searchsorted(
            prints["instrument_id"][key].astype(np.int64) * 2**32 + prints["sequence"][key],
            trades["instrument_id"].astype(np.int64) * 2**32 + trades["sequence"],
        )
    ]
    assert (twin["price"] == trades["price"]).all()
    buy = trades["side"] == b"B"
    assert (trades["price"][buy] == twin["ask_px_00"][buy]).all()
    assert (trades["price"][~buy] == twin["bid_px_00"][~buy]).all()
    touch_size = np.where(buy, twin["ask_sz_00"], twin["bid_sz_00"])
    assert ((trades["size"] >= 1) & (trades["size"] <= touch_size)).all()
    assert set(np.unique(trades["side"])) == {b"A", b"B"}


def test_trade_sizes_are_heavy_tailed(synth):
    size = synth["trades"]["size"]
    assert np.median(size) <= 2
    assert size.max() >= 20 * np.median(size)


def test_sequences_increase_per_instrument_and_schema(synth):
    for name in ("mbp", "trades"):
        records = synth[name]
        for instrument_id in np.unique(records["instrument_id"]):
            sequence = records["sequence"][records["instrument_id"] == instrument_id].astype(
                np.int64
            )
            assert (np.diff(sequence) > 0).all()
            if name == "mbp":  # the book stream has no gaps
                assert (np.diff(sequence) == 1).all()


def test_each_event_ends_with_f_last(synth):
    mbp = pd.DataFrame({c: synth["mbp"][c] for c in ("instrument_id", "ts_event", "flags")})
    last = mbp.groupby(["instrument_id", "ts_event"], sort=False)["flags"].agg(["last", "size"])
    assert ((last["last"] & F_LAST) != 0).all()
    assert last["size"].max() >= 3  # a trade, its book change and a chasing quote
    flagged = mbp.groupby(["instrument_id", "ts_event"], sort=False)["flags"].apply(
        lambda f: int(((f & F_LAST) != 0).sum())
    )
    assert (flagged == 1).all()
    assert (synth["trades"]["flags"] == 0).all()  # as Databento's: the packet goes on


def test_some_symbols_are_busy_and_some_quiet(synth):
    counts = Counter(int(i) for i in synth["mbp"]["instrument_id"] if int(i) < 900_000)
    assert len(counts) == 8
    assert max(counts.values()) >= 10 * min(counts.values())


def test_option_chain_expires_at_that_days_close(synth):
    definitions = _definitions(synth)
    options = [d for d in definitions.values() if d["instrument_class"] in (b"C", b"P")]
    assert Counter(bytes(d["instrument_class"]) for d in options) == {b"C": 21, b"P": 21}
    underlying = next(d for d in definitions.values() if d["raw_symbol"] == b"SYN000")
    assert underlying["instrument_class"] == b"F"
    assert all(d["expiration"] == CLOSE_2024_07_01 for d in options)
    assert synth["summary"].expiration_ns == CLOSE_2024_07_01
    assert all(d["underlying_id"] == underlying["instrument_id"] for d in options)
    assert all(d["underlying"] == b"SYN000" for d in options)
    strikes = sorted({int(d["strike_price"]) for d in options})
    opening = synth["mbp"][synth["mbp"]["instrument_id"] == underlying["instrument_id"]][1]
    spot = (opening["bid_px_00"] + opening["ask_px_00"]) // 2
    assert strikes[0] < spot < strikes[-1]
    quoted = set(np.unique(synth["mbp"]["instrument_id"]))
    assert {int(d["instrument_id"]) for d in options} <= quoted
    option_rows = synth["mbp"][synth["mbp"]["instrument_id"] >= 900_000]
    assert (option_rows["ts_event"] < CLOSE_2024_07_01).all()


def _option_quotes(synth):
    """Each option quote after its requote completes, with strike, type and the mid then."""
    definitions = _definitions(synth)
    mbp = synth["mbp"]
    underlying_id = next(i for i, d in definitions.items() if d["raw_symbol"] == b"SYN000")
    rows = mbp[(mbp["instrument_id"] >= 900_000) & ((mbp["flags"] & F_LAST) != 0)]
    book = mbp[mbp["instrument_id"] == underlying_id]
    strike = (
        np.array([definitions[int(i)]["strike_price"] for i in rows["instrument_id"]]) / PRICE_SCALE
    )
    call = np.array(
        [definitions[int(i)]["instrument_class"] == b"C" for i in rows["instrument_id"]]
    )
    years = (CLOSE_2024_07_01 - rows["ts_event"].astype(np.int64)) / YEAR_NS
    return rows, strike, call, years, _mid_in_force(book, rows["ts_event"])


def test_option_quotes_respect_no_arbitrage_bounds(synth):
    rows, strike, call, years, spot = _option_quotes(synth)
    assert len(rows) > 1_000
    discount = np.exp(-RISK_FREE_RATE * years)  # futures underlying: Black-76, forward = spot
    bid = np.where(rows["bid_px_00"] == UNDEF_PRICE, 0, rows["bid_px_00"]) / PRICE_SCALE
    ask = rows["ask_px_00"] / PRICE_SCALE
    intrinsic = discount * np.where(
        call, np.maximum(spot - strike, 0), np.maximum(strike - spot, 0)
    )
    ceiling = discount * np.where(call, spot, strike)
    assert (ask >= intrinsic).all()
    assert (bid <= ceiling).all()
    assert (bid >= 0).all()
    assert (bid < ask).all()
    assert (rows["bid_px_00"] == UNDEF_PRICE).any()  # far out-of-the-money options have no bid


def test_option_quotes_bracket_black_scholes_on_the_smile(synth):
    rows, strike, call, years, spot = _option_quotes(synth)
    vol_atm = atm_volatility(SEED, make_underlying(SEED, 0, utc_date(DEFAULT_START_NS)))
    for is_call in (True, False):
        m = call == is_call
        vol = smile_vol(vol_atm, spot[m], strike[m])
        value = black_scholes(spot[m], strike[m], years[m], vol, is_call=is_call, carry=0.0)
        bid = np.where(rows["bid_px_00"][m] == UNDEF_PRICE, 0, rows["bid_px_00"][m]) / PRICE_SCALE
        # The requote was priced a fraction of a millisecond before ts_event: allow its theta.
        assert (bid <= value + 1e-4).all()
        assert (rows["ask_px_00"][m] / PRICE_SCALE >= value - 1e-4).all()


def test_black_scholes_obeys_put_call_parity_and_the_smile_skews_to_puts():
    spot = np.array([5_480.0, 5_500.0, 5_520.0])
    years = np.full(3, 3 / (24 * 365))
    vol = np.full(3, 0.15)
    call = black_scholes(spot, 5_500.0, years, vol, is_call=True, carry=0.0)
    put = black_scholes(spot, 5_500.0, years, vol, is_call=False, carry=0.0)
    np.testing.assert_allclose(
        call - put, np.exp(-RISK_FREE_RATE * years) * (spot - 5_500.0), atol=1e-9
    )
    assert (np.diff(call) > 0).all()
    assert (np.diff(put) < 0).all()
    at_money = smile_vol(0.15, np.array([5_500.0]), 5_500.0)[0]
    assert smile_vol(0.15, np.array([5_500.0]), 5_300.0)[0] > at_money
    assert at_money == pytest.approx(0.15)


def test_quotes_are_at_least_a_tick_wide_and_empty_bids_mean_worthless():
    bid, ask = quote_ticks(np.array([0.0, 0.01, 1.0, 25.0, 25.025]), 0.05)
    assert (bid[:2] == -1).all()
    assert (ask >= 1).all()
    shown = bid >= 0
    assert (ask[shown] > bid[shown]).all()
    assert (bid[shown] * 0.05 <= np.array([0.0, 0.01, 1.0, 25.0, 25.025])[shown]).all()


def test_options_need_a_trading_day_and_time_before_the_close(tmp_path):
    saturday = DEFAULT_START_NS - 2 * 86_400 * 10**9  # 2024-06-29 13:30 UTC
    with pytest.raises(ValueError, match="not an XNYS trading day"):
        generate(tmp_path / "a.dbn", symbols=1, minutes=1, seed=1, start_ns=saturday)
    after_close = CLOSE_2024_07_01 + 60 * 10**9
    with pytest.raises(ValueError, match="expired"):
        generate(tmp_path / "b.dbn", symbols=1, minutes=1, seed=1, start_ns=after_close)
    summary = generate(
        tmp_path / "c.dbn", symbols=1, minutes=1, seed=1, start_ns=saturday, options=False
    )
    assert summary.option_symbols == ()
    assert summary.expiration_ns is None
    assert summary.counts["definition"] == 1


@pytest.mark.parametrize(("symbols", "minutes", "seed"), [(0, 1, 1), (1, 0, 1), (1, 1, -1)])
def test_arguments_that_describe_nothing_are_refused(tmp_path, symbols, minutes, seed):
    with pytest.raises(ValueError, match="must be"):
        generate(tmp_path / "x.dbn", symbols=symbols, minutes=minutes, seed=seed)


def test_the_chain_can_go_on_a_stock_and_the_default_bytes_do_not_change(tmp_path):
    default, explicit, on_stock = tmp_path / "a.dbn", tmp_path / "b.dbn", tmp_path / "c.dbn"
    generate(default, symbols=3, minutes=2, seed=7)
    generate(explicit, symbols=3, minutes=2, seed=7, chain_on=0)
    summary = generate(on_stock, symbols=3, minutes=2, seed=7, chain_on=1)
    assert default.read_bytes() == explicit.read_bytes()
    assert summary.option_symbols
    assert all(symbol.startswith("SYN001") for symbol in summary.option_symbols)
    definitions = [r for r in DBNStore.from_file(on_stock) if isinstance(r, dbn.InstrumentDefMsg)]
    classes = {str(r.raw_symbol): str(r.instrument_class) for r in definitions}
    assert classes["SYN001"] == "K"  # a stock
    assert {str(r.underlying) for r in definitions if str(r.instrument_class) in "CP"} == {"SYN001"}
    with pytest.raises(ValueError, match="--chain-on 3"):
        generate(tmp_path / "d.dbn", symbols=3, minutes=2, seed=7, chain_on=3)


def test_the_chain_fills_its_md_chain_frames(synth):
    """As `produce file --chains all` frames it (`producers.pipeline.ChainPlan`): the
    chain's records of every symbol and type share frames up to the caps (2.4 records a
    frame when a frame was a run of one symbol and type)."""
    dbn_file = DbnFile(synth["summary"].path)
    chain_of: dict[str, str] = {}
    chains = ChainRouter()
    routers: list[Router] = []

    def route(record: bytes) -> tuple[str, str] | None:
        if not routers:  # the metadata is read with the first batch
            symbols = SymbolMap()
            symbols.add_metadata_mappings(dbn_file.metadata.mappings)
            topics = {f"md.{s}": f"md.{s}" for s in MARKET_DATA_SCHEMAS}
            routers.append(Router(symbols, topics, dbn_file.metadata.schema))
        routed = routers[0](record)
        underlying = None if routed is None else chains(record, routed[1])
        if routed is None or underlying is None:
            return None
        chain_of[routed[1]] = underlying
        return "md.chain", routed[1]

    limits = FrameLimits()
    framer = ChainFramer(limits, chain_of.__getitem__)
    planner = FramePlanner(route, lambda *_: 0, ResumeState(), limits, framer=framer)
    frames = [
        planned.frame
        for batch in dbn_file.batches()
        for planned in planner.plan(batch.records, batch.first_index)
    ]
    assert {f.symbol for f in frames} == {"SYN000"}  # named by the chain, its key
    counts = [f.count for f in frames]
    assert sum(counts) / len(frames) > 200
    assert max(counts) <= limits.max_records
    assert max(len(f.records) for f in frames) <= limits.max_bytes
    assert len({s for f in frames for s in f.symbols}) == 1 + 42  # every symbol kept
