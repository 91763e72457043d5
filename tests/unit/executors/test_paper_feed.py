"""The paper venue's market data: a frame's ticks credited to each record's own symbol."""

import databento_dbn

from executors.brokers.paper.feed import symbol_ticks
from ticklane import dbn
from ticklane.market import FrameRun, MarketFrame

PX = 10**9


def _quotes(*bids: int) -> bytes:
    rows: list[dict[str, int | str]] = [
        {"ts_event": 10 + i, "bid_px_00": bid * PX, "ask_px_00": (bid + 1) * PX, "side": "N"}
        for i, bid in enumerate(bids)
    ]
    return dbn.encode_records(int(databento_dbn.RType.MBP_1), rows)


def _trades(*prices: int) -> bytes:
    rows: list[dict[str, int | str]] = [
        {"ts_event": 20 + i, "price": price * PX, "size": 1, "action": "T", "side": "B"}
        for i, price in enumerate(prices)
    ]
    return dbn.encode_records(0, rows)


def test_a_chain_frame_gives_each_run_to_its_own_symbol_in_order() -> None:
    definition = dbn.encode_records(int(databento_dbn.RType.INSTRUMENT_DEF), [{"ts_event": 1}])
    frame = MarketFrame(
        "SPY",
        definition + _quotes(5, 6) + _trades(600) + _quotes(7),
        symbols=("SPY 261205C00600000", "SPY", "SPY 261205P00590000"),
        runs=(FrameRun(0, 1), FrameRun(0, 2), FrameRun(1, 1), FrameRun(2, 1)),
    )
    found = [(symbol, [t.ts_event for t in ticks]) for symbol, ticks in symbol_ticks(frame)]
    # The definition gives no tick; every other run keeps its own symbol, in order.
    assert found == [
        ("SPY 261205C00600000", [10, 11]),
        ("SPY", [20]),
        ("SPY 261205P00590000", [10]),
    ]


def test_a_frame_without_runs_is_all_its_symbol() -> None:
    [(symbol, ticks)] = symbol_ticks(MarketFrame("ESZ6", _trades(5000, 5001)))
    assert symbol == "ESZ6"
    assert [t.ts_event for t in ticks] == [20, 21]
