"""Data-quality checks per instrument: out-of-order time, sequence regressions, duplicates.

Pure logic fed with raw DBN records. Findings are counted, never "fixed": a file or feed
reaches Kafka exactly as sent, and the counts say what to look at. Staleness (no data for
a while in session hours) is a live-feed check, made by the live source with its clock.
"""

import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import numpy as np

from ticklane.dbn import SUPPORTED_RTYPES, field_slice, ts_event

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
        elif record[8:16] != last[8:16] and ts_event(record) < ts_event(last):
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
        """Check records in order; the findings of just these (same rules as `check`).

        Vectorised per record type: records are grouped by instrument (a stable sort keeps
        their order) and each is compared with the one before it, the previous batch's
        last record of the instrument included.
        """
        rtypes = np.frombuffer(bytes(map(_RTYPE, records)), dtype=np.uint8)
        kinds = np.unique(rtypes)
        by_rtype: dict[int, list[bytes]] = {}
        for rtype in kinds.tolist():
            if len(kinds) == 1:
                by_rtype[rtype] = list(records)
            else:
                by_rtype[rtype] = [records[i] for i in np.flatnonzero(rtypes == rtype).tolist()]
        found: Counter[Finding] = Counter()
        for rtype, group in by_rtype.items():
            size = len(group[0])
            if any(len(r) != size for r in group):
                for record in group:  # control records vary in length: the slow path
                    finding = self.check(record)  # counts it in self.counts too
                    if finding is not None:
                        found[finding] += 1
                continue
            block = self._check_block(rtype, group, size)
            self.counts.update(block)
            found.update(block)
        return found

    def _check_block(self, rtype: int, group: list[bytes], size: int) -> Counter[Finding]:
        rows = np.frombuffer(b"".join(group), dtype=np.uint8).reshape(-1, size)
        keys = rows[:, :8].copy().view("<u8").ravel()
        order = np.argsort(keys, kind="stable")
        rows, keys = rows[order], keys[order]
        # The previous record of each instrument: within the block, or from the last batch.
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        prev = np.empty_like(rows)
        prev[1:] = rows[:-1]
        has_prev = ~first
        for i in np.flatnonzero(first):
            last = self._last.get(bytes(rows[i, :8]))
            if last is not None and len(last) == size:
                prev[i] = np.frombuffer(last, dtype=np.uint8)
                has_prev[i] = True
        ends = np.flatnonzero(np.append(first[1:], True))
        for i in ends:
            self._last[bytes(rows[i, :8])] = rows[i].tobytes()
        duplicate = has_prev & np.all(rows == prev, axis=1)
        ts, prev_ts = (
            rows[:, 8:16].copy().view("<u8").ravel(),
            prev[:, 8:16].copy().view("<u8").ravel(),
        )
        out_of_order = has_prev & ~duplicate & (ts < prev_ts)
        found: Counter[Finding] = Counter()
        found[Finding.DUPLICATE] = int(duplicate.sum())
        found[Finding.OUT_OF_ORDER] = int(out_of_order.sum())
        where = _SEQUENCED.get(rtype)
        if where is not None:
            seq = rows[:, where].copy().view("<u4").ravel()
            prev_seq = prev[:, where].copy().view("<u4").ravel()
            regression = has_prev & ~duplicate & ~out_of_order & (seq > 0) & (prev_seq > 0)
            found[Finding.SEQUENCE_REGRESSION] = int((regression & (seq < prev_seq)).sum())
        return +found


_RTYPE: Final = operator.itemgetter(1)


def _u32(record: bytes, where: slice) -> int:
    return int.from_bytes(record[where], "little")
