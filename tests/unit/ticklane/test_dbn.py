"""Raw DBN records: views and conversions agree with the databento SDK, field for field."""

from pathlib import Path

import databento as db
import pytest

from ticklane import dbn
from ticklane.market import Action, BookSide, InstrumentClass

FILES = [
    "glbx-esh4-20231225.mbo.dbn.zst",
    "glbx-esm4-20240509.bbo-1m.dbn.zst",
    "glbx-esm4-20240509.definition.dbn.zst",
    "glbx-esm4-20240509.ohlcv-1m.dbn.zst",
    "glbx-esm4-options-20240509.bbo-1m.dbn.zst",
    "glbx-esm4-options-20240509.definition.dbn.zst",
    "glbx-esu4-20240701.mbp-1.dbn.zst",
    "glbx-esu4-20240701.trades.dbn.zst",
    "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst",
    "glbx-es-20240701.definition.dbn.zst",
]


def sdk_value(record: object, name: str) -> int | str:
    value = getattr(record, name)
    if isinstance(value, str):
        return value
    return int(value)  # enums (rtype, publisher) compare by their integer code


def load(databento_dir: Path, name: str) -> tuple[list[object], bytes]:
    records = list(db.DBNStore.from_file(databento_dir / name))
    return records, b"".join(bytes(r) for r in records)  # type: ignore[call-overload]


@pytest.mark.parametrize("name", FILES)
def test_record_dicts_equal_the_sdk_records(databento_dir: Path, name: str) -> None:
    records, raw = load(databento_dir, name)
    assert dbn.check_records(raw) == len(records)
    dicts = dbn.record_dicts(raw)
    fields = dbn.visible_fields(raw[1])
    for record, fields_seen in zip(records, dicts, strict=True):
        for field in fields:
            if field in ("action", "side", "instrument_class") or isinstance(
                fields_seen[field], str
            ):
                assert str(fields_seen[field]) == str(getattr(record, field)), field
            else:
                assert fields_seen[field] == sdk_value(record, field), field


def test_trades_quotes_bars_instruments(databento_dir: Path) -> None:
    records, raw = load(databento_dir, "glbx-esu4-20240701.mbp-1.dbn.zst")
    quotes = dbn.to_quotes(raw)
    assert [q.bid_px for q in quotes] == [r.levels[0].bid_px for r in records]  # type: ignore[attr-defined]
    assert [q.sequence for q in quotes] == [r.sequence for r in records]  # type: ignore[attr-defined]
    trades = dbn.to_trades(raw)
    assert len(trades) == sum(r.action == "T" for r in records)  # type: ignore[attr-defined]
    assert {t.action for t in trades} == {Action.TRADE}
    assert {t.side for t in trades} <= {BookSide.ASK, BookSide.BID, BookSide.NONE}

    records, raw = load(databento_dir, "glbx-esu4-20240701.trades.dbn.zst")
    assert [t.price for t in dbn.to_trades(raw)] == [r.price for r in records]  # type: ignore[attr-defined]

    records, raw = load(databento_dir, "glbx-esu4-nqu4-20240701.ohlcv-1m.dbn.zst")
    bars = dbn.to_bars(raw)
    assert [(b.ts_event, b.close, b.volume) for b in bars] == [
        (r.ts_event, r.close, r.volume)  # type: ignore[attr-defined]
        for r in records
    ]
    assert {b.interval_ns for b in bars} == {60_000_000_000}

    records, raw = load(databento_dir, "glbx-esm4-options-20240509.definition.dbn.zst")
    options = dbn.to_instruments(raw)
    assert {o.instrument_class for o in options} == {InstrumentClass.PUT}
    assert sorted(o.strike_price for o in options) == [5_230_000_000_000, 5_250_000_000_000]
    assert {o.underlying for o in options} == {"ESM4"}


def test_conversions_refuse_the_wrong_record_type(databento_dir: Path) -> None:
    _, raw = load(databento_dir, "glbx-esu4-20240701.trades.dbn.zst")
    with pytest.raises(dbn.DbnRecordError, match="not quotes"):
        dbn.to_quotes(raw)
    with pytest.raises(dbn.DbnRecordError, match="not OHLCV"):
        dbn.to_bars(raw)
    with pytest.raises(dbn.DbnRecordError, match="not instrument definitions"):
        dbn.to_instruments(raw)


def test_encode_records_round_trips_and_rejects_unknown_fields() -> None:
    raw = dbn.encode_records(0, [{"price": -5, "side": "A", "action": "T", "size": 3}])
    (trade,) = dbn.to_trades(raw)
    assert (trade.price, trade.side, trade.size) == (-5, BookSide.ASK, 3)
    with pytest.raises(dbn.DbnRecordError, match="no field 'bid_px_00'"):
        dbn.encode_records(0, [{"bid_px_00": 1}])
    with pytest.raises(dbn.DbnRecordError, match="unknown DBN side code"):
        dbn.to_trades(dbn.encode_records(0, [{"side": "X"}]))
