"""Data-quality checks per instrument: out-of-order time, sequence regressions, duplicates.

Pure logic fed with raw DBN records. Findings are counted, never "fixed": a file or feed
reaches Kafka exactly as sent, and the counts say what to look at. Staleness (no data for
a while in session hours) is a live-feed check, made by the live source with its clock.
"""

from collections import Counter
from collections.abc import Sequence
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
class QualityTracker:
    """Running per-instrument state and counts of findings."""

    counts: Counter[Finding] = field(default_factory=Counter)
    # Keyed by the record header (length, rtype, publisher, instrument): the previous
    # record of the same instrument and type.
    _last: dict[bytes, bytes] = field(default_factory=dict)

    def check(self, record: bytes) -> Finding | None:
        """Check one record against the previous one of the same instrument and type."""
        key = record[:8]
        last = self._last.get(key)
        self._last[key] = record
        if last is None:
            return None
        if record == last:
            finding = Finding.DUPLICATE
        elif record[8:16] != last[8:16] and _ts(record) < _ts(last):
            finding = Finding.OUT_OF_ORDER
        else:
            where = _SEQUENCED.get(record[1])
            if where is None:
                return None
            sequence, previous = _u32(record, where), _u32(last, where)
            if not (sequence and previous and sequence < previous):
                return None
            finding = Finding.SEQUENCE_REGRESSION
        self.counts[finding] += 1
        return finding

    def check_all(self, records: Sequence[bytes]) -> Counter[Finding]:
        """Check records in order; the findings of just these."""
        found: Counter[Finding] = Counter()
        check = self.check
        for record in records:
            finding = check(record)
            if finding is not None:
                found[finding] += 1
        return found


def _ts(record: bytes) -> int:
    return int.from_bytes(record[8:16], "little")


def _u32(record: bytes, where: slice) -> int:
    return int.from_bytes(record[where], "little")
