"""Quality findings: the vectorised batch path agrees with the record-by-record rules."""

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.quality import Finding, QualityTracker
from ticklane import dbn


@st.composite
def batches(draw: st.DrawFn) -> list[list[bytes]]:
    """Batches of trades and mbp-1 records over a few instruments, with repeats and disorder."""
    rows = []
    for _ in range(draw(st.integers(0, 60))):
        rtype = draw(st.sampled_from([0, 1]))
        fields = {
            "instrument_id": draw(st.integers(1, 3)),
            "ts_event": draw(st.integers(0, 20)),
            "sequence": draw(st.integers(0, 10)),
            "price": draw(st.integers(0, 2)),
        }
        record = dbn.encode_records(rtype, [fields])
        rows.append(record)
        if draw(st.booleans()):
            rows.append(record)  # an exact duplicate
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    return [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]


@given(batches())
@settings(max_examples=300)
def test_batch_path_equals_record_path(parts: list[list[bytes]]) -> None:
    one, many = QualityTracker(), QualityTracker()
    for part in parts:
        for record in part:
            one.check(record)
        many.check_all(part)
    assert +one.counts == +many.counts


def test_findings_are_named() -> None:
    tracker = QualityTracker()
    a = dbn.encode_records(0, [{"instrument_id": 1, "ts_event": 5, "sequence": 9}])
    b = dbn.encode_records(0, [{"instrument_id": 1, "ts_event": 4, "sequence": 10}])
    c = dbn.encode_records(0, [{"instrument_id": 1, "ts_event": 6, "sequence": 3}])
    found = tracker.check_all([a, a, b, c])
    assert found == {Finding.DUPLICATE: 1, Finding.OUT_OF_ORDER: 1, Finding.SEQUENCE_REGRESSION: 1}
