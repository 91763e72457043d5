"""DBN files (plain or zstd) read as a stream of version-3 records, with damage located.

The file is never loaded whole: it is decompressed and decoded in chunks. Older DBN
versions are upgraded to version 3 by the databento SDK's own decoder, so every frame on
Kafka has one layout. A truncated or corrupted file raises `DbnFileError` naming the file
and the byte offset; every record before the damage has been yielded, nothing after is.
"""

import hashlib
import heapq
import itertools
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import databento_dbn as dbn
import zstandard

from ticklane.dbn import SUPPORTED_RTYPES, field_slice, record_dtype

CHUNK: Final = 1 << 20
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_CONTROL_RTYPES: Final = frozenset(
    int(r) for r in (dbn.RType.ERROR, dbn.RType.SYMBOL_MAPPING, dbn.RType.SYSTEM)
)


class DbnFileError(Exception):
    """A DBN file that cannot be read past some point."""

    def __init__(self, path: Path, offset: int, reason: str, *, compressed: bool) -> None:
        where = "decompressed byte offset" if compressed else "byte offset"
        super().__init__(f"{path}: {reason} at {where} {offset}")
        self.path = path
        self.offset = offset
        self.reason = reason


@dataclass(frozen=True)
class Batch:
    """Records decoded together: raw v3 bytes per record, in file order."""

    records: list[bytes]
    first_index: int


def source_id(metadata_bytes: bytes) -> str:
    """A file source's identity: its metadata header, whatever the file is named."""
    return "file:" + hashlib.blake2b(metadata_bytes, digest_size=12).hexdigest()


def _is_panic(exc: BaseException) -> bool:
    # The SDK's Rust decoder can panic on malformed input; pyo3 raises that as a
    # BaseException subclass named PanicException, not an Exception.
    return type(exc).__name__ == "PanicException"


class DbnFile:
    """Streams one DBN file's records, upgraded to DBN version 3."""

    def __init__(self, path: Path, chunk_size: int = CHUNK) -> None:
        self.path = path
        self._chunk_size = chunk_size
        self.metadata: Any = None
        self.source = ""
        self.compressed = False
        # The stub types the enum member as int; the runtime wants the enum itself.
        upgrade: Any = dbn.VersionUpgradePolicy.UPGRADE_TO_V3
        self._decoder = dbn.DBNDecoder(upgrade_policy=upgrade)
        self._fed = 0
        self._input_version: int | None = None

    def _fail(self, reason: str, offset: int | None = None) -> DbnFileError:
        if offset is None:
            offset = self._fed - len(self._decoder.buffer())
        return DbnFileError(self.path, offset, reason, compressed=self.compressed)

    def _chunks(self, fh: BinaryIO) -> Iterator[bytes]:
        head = fh.read(4)
        fh.seek(0)
        self.compressed = head == _ZSTD_MAGIC
        if not self.compressed:
            while chunk := fh.read(self._chunk_size):
                yield chunk
            return
        decompressor = zstandard.ZstdDecompressor()
        obj: Any = None  # the zstd frame being read; a file may hold several back to back
        while data := fh.read(self._chunk_size):
            while data:
                if obj is None:
                    obj = decompressor.decompressobj()
                try:
                    out = obj.decompress(data)
                except zstandard.ZstdError as exc:
                    raise self._fail(f"corrupt zstd data ({exc})", self._fed) from None
                if out:
                    yield out
                data, obj = (obj.unused_data, None) if obj.eof else (b"", obj)
        if obj is not None:
            raise self._fail("truncated zstd stream (the file ends inside a frame)", self._fed)

    def batches(self) -> Iterator[Batch]:
        """Yield the file's data records in order, a decoded chunk at a time."""
        index = 0
        with self.path.open("rb") as fh:
            for chunk in self._chunks(fh):
                self._fed += len(chunk)
                for raw in self._decode(chunk):
                    yield Batch(raw, index)
                    index += len(raw)
        leftover = len(self._decoder.buffer())
        if self.metadata is None:
            raise self._fail("no DBN metadata header (empty or not a DBN file)", 0)
        if leftover:
            raise self._fail(f"truncated: the last {leftover} bytes are not a whole record")

    def _decode(self, chunk: bytes) -> Iterator[list[bytes]]:
        if self._input_version is None and len(chunk) >= 4 and chunk[:3] == b"DBN":
            self._input_version = chunk[3]
        pending = bytes(self._decoder.buffer()) + chunk
        start = self._fed - len(pending)
        try:
            self._decoder.write(chunk)
            records = self._decoder.decode()
        except BaseException as exc:
            if not (isinstance(exc, Exception) or _is_panic(exc)):
                raise
            # The decoder drops a whole chunk on the first bad record; salvage the good
            # records before it one at a time, then report where the damage starts.
            good, offset = self._salvage(pending, start)
            if good:
                yield good
            raise self._fail(f"undecodable DBN ({exc})", offset) from None
        if records and self.metadata is None:
            self.metadata = records[0]
            if not isinstance(self.metadata, dbn.Metadata):
                raise self._fail("no DBN metadata header", 0)
            self.source = source_id(bytes(self.metadata))
            records = records[1:]
        raw = [bytes(r) for r in records]
        # Checked per distinct (rtype, length) pair, at C speed; the index only on damage.
        kinds = set(zip(map(_RTYPE, raw), map(len, raw), strict=True))
        bad = (
            None
            if all(_SIZES.get(rtype) == size or rtype in _CONTROL_RTYPES for rtype, size in kinds)
            else next(i for i, data in enumerate(raw) if not _plausible(data))
        )
        if bad is None:
            if raw:
                yield raw
            return
        # Yield what came before the damage, then stop: nothing after it is trusted.
        if bad:
            yield raw[:bad]
        consumed = self._fed - len(self._decoder.buffer())
        offset = consumed - sum(len(r) for r in raw[bad:])
        rtype, length = raw[bad][1], len(raw[bad])
        raise self._fail(f"record of type 0x{rtype:02x} with impossible length {length}", offset)

    def _salvage(self, pending: bytes, start: int) -> tuple[list[bytes], int]:
        offset = 0
        if self.metadata is None:
            offset = self._salvage_metadata(pending)
            if offset == 0:
                return [], start
        upgrade: Any = dbn.VersionUpgradePolicy.UPGRADE_TO_V3
        decoder = dbn.DBNDecoder(
            has_metadata=False, input_version=self._input_version, upgrade_policy=upgrade
        )
        good: list[bytes] = []
        while offset + 16 <= len(pending):
            length = pending[offset] * 4
            if length < 16 or offset + length > len(pending):
                break
            try:
                decoder.write(pending[offset : offset + length])
                raw = [bytes(r) for r in decoder.decode()]
            except BaseException as exc:
                if isinstance(exc, Exception) or _is_panic(exc):
                    break
                raise
            if not all(_plausible(r) for r in raw):
                break
            good += raw
            offset += length
        return good, start + offset

    def _salvage_metadata(self, pending: bytes) -> int:
        """Decode the metadata header alone; its size, or 0 if it is damaged itself."""
        if len(pending) < 8 or pending[:3] != b"DBN":
            return 0
        size = 8 + int.from_bytes(pending[4:8], "little")
        upgrade: Any = dbn.VersionUpgradePolicy.UPGRADE_TO_V3
        decoder = dbn.DBNDecoder(upgrade_policy=upgrade)
        try:
            decoder.write(pending[:size])
            decoded = decoder.decode()
        except BaseException as exc:
            if isinstance(exc, Exception) or _is_panic(exc):
                return 0
            raise
        if not decoded or not isinstance(decoded[0], dbn.Metadata):
            return 0
        self.metadata = decoded[0]
        self.source = source_id(bytes(self.metadata))
        return size


_SIZES: Final = {rtype: record_dtype(rtype).itemsize for rtype in SUPPORTED_RTYPES}
_RTYPE: Final = operator.itemgetter(1)
_TS_RECV: Final = {
    rtype: where for rtype in SUPPORTED_RTYPES if (where := field_slice(rtype, "ts_recv"))
}


def _plausible(record: bytes) -> bool:
    """A decoded record whose type is known and whose length fits that type."""
    return _SIZES.get(record[1]) == len(record) or record[1] in _CONTROL_RTYPES


MERGED_BATCH: Final = 4096
"""Records per batch of a merged stream (files' own batches cannot survive the merge)."""


@dataclass(frozen=True)
class MergedMetadata:
    """What the readers of one file's metadata use, for several files read as one."""

    schema: Any
    """The files' common schema, or None when they differ."""
    mappings: dict[str, list[Any]]
    """Every file's symbol mappings, a symbol's intervals from all files together."""
    dataset: str


def index_time(record: bytes) -> int:
    """The time a record is ordered by in a DBN file: ts_recv where it has one, else ts_event."""
    where = _TS_RECV.get(record[1])
    data = record[where] if where is not None else record[8:16]
    return int.from_bytes(data, "little")


class DbnFiles:
    """Several DBN files read as one source, merged into one deterministic order.

    Databento delivers each schema in its own file: definitions, the options' quotes and
    the underlying's trades of one day are three files. Merged by index time (ts_recv,
    else ts_event), then by the files' order, then by position in the file, they are one
    stream that a chain (`ticklane.chains`) can be cut from, the same every time: so a
    replay resumes exactly once and a backtest of the same files agrees with it.
    """

    def __init__(self, paths: list[Path], chunk_size: int = CHUNK) -> None:
        self.files = [DbnFile(path, chunk_size) for path in paths]
        self.metadata: Any = None  # a MergedMetadata once reading began, as DbnFile's
        self.source = ""

    def _records(self, number: int, dbn_file: DbnFile) -> Iterator[tuple[int, int, int, bytes]]:
        for batch in dbn_file.batches():
            for offset, record in enumerate(batch.records):
                yield index_time(record), number, batch.first_index + offset, record

    def _primed(self) -> list[Iterator[tuple[int, int, int, bytes]]]:
        streams: list[Iterator[tuple[int, int, int, bytes]]] = []
        for number, dbn_file in enumerate(self.files):
            stream = self._records(number, dbn_file)
            first = next(stream, None)  # reads the file's metadata header
            streams.append(itertools.chain([first] if first else [], stream))
        metas = [f.metadata for f in self.files]
        schemas = {m.schema for m in metas}
        mappings: dict[str, list[Any]] = {}
        for meta in metas:
            for symbol, intervals in dict(meta.mappings).items():
                mappings.setdefault(symbol, []).extend(intervals)
        self.metadata = MergedMetadata(
            schema=schemas.pop() if len(schemas) == 1 else None,
            mappings=mappings,
            dataset=",".join(sorted({str(m.dataset) for m in metas})),
        )
        identity = "\n".join(f.source for f in self.files).encode()
        self.source = "files:" + hashlib.blake2b(identity, digest_size=12).hexdigest()
        return streams

    def batches(self) -> Iterator[Batch]:
        """The merged records, in batches of `MERGED_BATCH`."""
        index = 0
        pending: list[bytes] = []
        for _, _, _, record in heapq.merge(*self._primed()):
            pending.append(record)
            if len(pending) == MERGED_BATCH:
                yield Batch(pending, index)
                index += len(pending)
                pending = []
        if pending:
            yield Batch(pending, index)


def check_readable(path: Path) -> None:
    """Raise DbnFileError unless `path` begins as a DBN file (header and first records):
    for commands that hand a file on to another process, to refuse it before starting."""
    next(DbnFile(path).batches(), None)


def open_dbn(paths: Path | list[Path]) -> DbnFile | DbnFiles:
    """One file as it is, several merged into one source."""
    if isinstance(paths, Path):
        return DbnFile(paths)
    return DbnFile(paths[0]) if len(paths) == 1 else DbnFiles(paths)


def source_name(paths: Path | list[Path]) -> str:
    """How a source of one file or several is named in messages: `a.dbn + b.dbn`."""
    return str(paths) if isinstance(paths, Path) else " + ".join(map(str, paths))
