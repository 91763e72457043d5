"""`topics tail` renders every field of every record, integers exact, frames expanded."""

import json

from ticklane import dbn, wire
from ticklane.market import FrameRun, MarketFrame
from ticklane.tail import RawMessage, render, tail, to_json_line
from ticklane.trading import Signal
from ticklane.units import INT64_MIN, UINT64_MAX, UNDEF_PRICE


def raw(value: bytes | None, key: bytes | None = b"ESU4", **kw: object) -> RawMessage:
    base: dict[str, object] = {"topic": "t", "partition": 3, "offset": 7, "timestamp_ms": 5}
    return RawMessage(key=key, value=value, **(base | kw))  # type: ignore[arg-type]


def test_frame_prints_one_line_per_record_with_exact_integers() -> None:
    records = dbn.encode_records(
        1,
        [
            {"ts_event": UINT64_MAX, "price": INT64_MIN, "sequence": 9060643, "action": "T"},
            {"ts_event": 3, "bid_px_00": UNDEF_PRICE, "ask_px_00": 5_528_750_000_000},
        ],
    )
    message = raw(wire.encode(MarketFrame("ESU4", records, "file:x", 41)))
    lines = [to_json_line(o) for o in render(message)]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["type"] == "mbp-1"
    assert (first["record"], second["record"]) == (0, 1)
    assert first["symbol"] == "ESU4"
    assert first["value"]["price"] == INT64_MIN
    assert first["value"]["ts_event"] == UINT64_MAX
    assert first["value"]["action"] == "T"
    assert f'"ts_event":{UINT64_MAX}' in lines[0]  # written as an integer, not 1.8e19
    assert second["value"]["bid_px_00"] == UNDEF_PRICE
    assert set(first["value"]) == set(dbn.visible_fields(1))
    assert (first["topic"], first["partition"], first["offset"]) == ("t", 3, 7)
    assert (first["key"], first["source"], first["position"]) == ("ESU4", "file:x", 41)


def test_single_message_shows_all_fields() -> None:
    sig = Signal.create("ema", "ESU4", 10, -3, reference_price=5)
    (obj,) = render(raw(wire.encode(sig)))
    assert obj["type"] == "signal"
    assert obj["value"]["target_position"] == -3
    assert set(obj["value"]) == set(Signal.__struct_fields__)


def test_undecodable_and_tombstones_are_shown_not_skipped() -> None:
    (bad,) = render(raw(b"\xff\x00garbage", headers=[("error", b"boom")]))
    assert bad["type"] == "undecodable"
    assert "not a ticklane message" in bad["error"]
    assert bad["value"] == {"base64": "/wBnYXJiYWdl"}
    assert bad["headers"] == {"error": "boom"}
    (tomb,) = render(raw(None, key=b"\x80"))
    assert tomb["type"] == "tombstone"
    assert tomb["key"] == {"base64": "gA=="}


def test_max_counts_records_not_messages() -> None:
    frame = MarketFrame("ESU4", dbn.encode_records(0, [{"ts_event": i} for i in range(5)]))
    msgs = iter([raw(wire.encode(frame)), raw(wire.encode(frame))])
    lines: list[str] = []
    assert tail(msgs, lines.append, max_records=7) == 7
    assert [json.loads(line)["record"] for line in lines] == [0, 1, 2, 3, 4, 0, 1]


def test_a_frame_of_several_symbols_prints_each_record_with_its_own_symbol_and_type() -> None:
    trade = dbn.encode_records(0, [{"ts_event": 1, "price": 7}])
    quotes = dbn.encode_records(1, [{"ts_event": 2}, {"ts_event": 3}])
    runs = (FrameRun(0, 1), FrameRun(1, 2), FrameRun(0, 1))
    frame = MarketFrame("ES", trade + quotes + trade, "file:x", 9, 0, ("ES", "ES C1"), runs)
    shown = render(raw(wire.encode(frame), key=b"ES"))
    assert [(o["record"], o["symbol"], o["type"]) for o in shown] == [
        (0, "ES", "trades"),
        (1, "ES C1", "mbp-1"),
        (2, "ES C1", "mbp-1"),
        (3, "ES", "trades"),
    ]
    assert [o["value"]["ts_event"] for o in shown] == [1, 2, 3, 1]
    assert {(o["key"], o["source"], o["position"]) for o in shown} == {("ES", "file:x", 9)}
