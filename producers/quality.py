"""Data-quality checks per instrument: out-of-order time, sequence regressions, duplicates.

Pure logic fed with raw DBN records. Findings are counted, never "fixed": a file or feed
reaches Kafka exactly as sent, and the counts say what to look at. Staleness (no data for
a while in session hours) is a live-feed check, made by the live source with its clock.
"""

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from ticklane.dbn import SUPPORTED_RTYPES, field_slice

_SEQUENCED: Final = {
    rtype: where
    for rtype in SUPPORTED_RTYPES
    if (where := field_slice(rtype, "sequence")) is not None
}
"""rtype -> where the uint32 `sequence` field lies, for record types that carry one."""


class Finding(StrEnum):
    """What a check found."""

    OUT_OF_ORDER = "out_of_order"
    SEQUENCE_REGRESSION = "sequence_regression"
    DUPLICATE = "duplicate"


@dataclass
class _Last:
    ts_event: int
    sequence: int
    record: bytes


@dataclass
class QualityTracker:
    """Running per-instrument state and counts of findings."""

    counts: Counter[Finding] = field(default_factory=Counter)
    _last: dict[tuple[int, int], _Last] = field(default_factory=dict)

    def check(self, record: bytes) -> Finding | None:
        """Check one record against the previous one of the same instrument and type."""
        rtype = record[1]
        key = (int.from_bytes(record[4:8], "little"), rtype)
        ts_event = int.from_bytes(record[8:16], "little")
        where = _SEQUENCED.get(rtype)
        sequence = int.from_bytes(record[where], "little") if where else 0
        last = self._last.get(key)
        self._last[key] = _Last(ts_event, sequence, record)
        if last is None:
            return None
        finding = None
        if record == last.record:
            finding = Finding.DUPLICATE
        elif ts_event < last.ts_event:
            finding = Finding.OUT_OF_ORDER
        elif sequence and last.sequence and sequence < last.sequence:
            finding = Finding.SEQUENCE_REGRESSION
        if finding:
            self.counts[finding] += 1
        return finding
