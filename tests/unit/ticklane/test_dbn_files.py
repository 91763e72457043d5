"""Several DBN files read as one source: every record once, a fixed order, by index time."""

import itertools
from pathlib import Path

import pytest

from ticklane.dbn_files import (
    MERGED_BATCH,
    DbnFile,
    DbnFileError,
    DbnFiles,
    index_time,
    open_dbn,
)

REAL = (
    "glbx-esm4-options-20240509.definition.dbn.zst",
    "glbx-esm4-options-20240509.bbo-1m.dbn.zst",
    "glbx-esm4-20240509.ohlcv-1m.dbn.zst",
    "glbx-esm4-20240509.definition.dbn.zst",
    "glbx-esu4-20240701.mbp-1.dbn.zst",
)


def records_of(path: Path) -> list[bytes]:
    return [r for batch in DbnFile(path).batches() for r in batch.records]


def test_merge_keeps_every_record_once_and_each_files_order(databento_dir: Path) -> None:
    paths = [databento_dir / name for name in REAL]
    merged = DbnFiles(paths)
    batches = list(merged.batches())
    out = [r for b in batches for r in b.records]
    assert [b.first_index for b in batches] == list(range(0, len(out), MERGED_BATCH))
    singles = [records_of(p) for p in paths]
    assert sorted(out) == sorted(r for records in singles for r in records)
    for records in singles:  # each file's records keep their order among the others
        positions = [out.index(r) for r in records]
        assert positions == sorted(positions)
    again = [r for b in DbnFiles(paths).batches() for r in b.records]
    assert again == out


def test_merged_source_is_named_by_its_files_and_their_order(databento_dir: Path) -> None:
    paths = [databento_dir / name for name in REAL[:3]]
    a, b, c = DbnFiles(paths), DbnFiles(paths), DbnFiles(paths[::-1])
    for reader in (a, b, c):
        list(reader.batches())
    assert a.source == b.source
    assert a.source.startswith("files:")
    assert c.source != a.source
    assert a.metadata.schema is None  # definitions, bbo-1m and ohlcv-1m
    assert set(a.metadata.mappings) == {"ESM4 P5230", "ESM4 P5250", "ESM4", "NQM4"}


def test_records_are_ordered_by_index_time(databento_dir: Path) -> None:
    paths = [databento_dir / name for name in REAL[1:3]]  # option bbo-1m and ohlcv-1m
    out = [r for b in DbnFiles(paths).batches() for r in b.records]
    times = [index_time(r) for r in out]
    assert times == sorted(times)
    changes = sum(1 for a, b in itertools.pairwise(out) if a[1] != b[1])
    assert changes > 1  # interleaved by time, not one file after the other


def test_one_path_is_the_plain_file_reader(databento_dir: Path) -> None:
    path = databento_dir / REAL[0]
    assert isinstance(open_dbn(path), DbnFile)
    assert isinstance(open_dbn([path]), DbnFile)
    assert isinstance(open_dbn([path, path]), DbnFiles)


def test_a_damaged_file_is_named(tmp_path: Path, databento_dir: Path) -> None:
    bad = tmp_path / "bad.dbn"
    bad.write_bytes(b"not a dbn file at all, just bytes")
    with pytest.raises(DbnFileError, match=r"bad\.dbn"):
        list(DbnFiles([databento_dir / REAL[0], bad]).batches())
