"""Which md.* topic and which symbol key each raw DBN record gets (pure)."""

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import databento_dbn as dbn
import numpy as np

from ticklane.dbn import field_slice, rtype_name, ts_event
from ticklane.symbology import SymbolMap
from ticklane.topics import MARKET_DATA_SCHEMAS

log = logging.getLogger(__name__)

_SYMBOL_MAPPING: Final = int(dbn.RType.SYMBOL_MAPPING)
_DEFINITION: Final = int(dbn.RType.INSTRUMENT_DEF)
_MBP_1: Final = int(dbn.RType.MBP_1)


def _field(dtype: np.dtype[Any], name: str) -> slice:
    """Where a field lies within a record's bytes."""
    fields = dtype.fields
    assert fields is not None  # noqa: S101 - record dtypes are structured
    field_dtype, offset = fields[name][:2]
    return slice(offset, offset + field_dtype.itemsize)


_RAW_SYMBOL: Final = field_slice(_DEFINITION, "raw_symbol") or slice(0, 0)
# Symbol mappings are control records, not in ticklane.dbn's table.
_OUT_SYMBOL: Final = _field(np.dtype(dbn.SymbolMappingMsg._dtypes), "stype_out_symbol")


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


class Router:
    """Maps records to (topic, symbol); learns symbols from mapping records and definitions."""

    def __init__(self, symbols: SymbolMap, topics: Mapping[str, str], schema: str | None) -> None:
        self._symbols = symbols
        self._topics = dict(topics)
        # tbbo records are mbp-1 records; only the stream's schema tells them apart.
        self._mbp1_topic = topics.get("md.tbbo" if schema == "tbbo" else "md.mbp-1")
        self.unmapped: set[int] = set()
        self.control_records = 0
        # Routes by record header (length, rtype, publisher, instrument): most records hit
        # it, skipping the decoding below. Cleared whenever the symbol map changes.
        self._cache: dict[bytes, tuple[str, str]] = {}

    def topic_for(self, rtype: int) -> str | None:
        """The topic for a record type, or None if it is not market data."""
        if rtype == _MBP_1:
            return self._mbp1_topic
        return self._topics.get(f"md.{rtype_name(rtype)}")

    def __call__(self, record: bytes) -> tuple[str, str] | None:
        """The record's (topic, symbol), or None for control records (which update state)."""
        routed = self._cache.get(record[:8])
        if routed is not None:
            return routed
        return self._route(record)

    def stable(self, header: bytes) -> bool:
        """Whether records with this 8-byte header always route the same way (cached)."""
        return header in self._cache

    def _route(self, record: bytes) -> tuple[str, str] | None:
        rtype = record[1]
        instrument_id = int.from_bytes(record[4:8], "little")
        if rtype == _SYMBOL_MAPPING:
            self._symbols.set_symbol(instrument_id, _text(record[_OUT_SYMBOL]))
            self._cache.clear()
            self.control_records += 1
            return None
        topic = self.topic_for(rtype)
        if topic is None:
            self.control_records += 1  # system and error messages: handled by the source
            return None
        if rtype == _DEFINITION and self._symbols.learn_from_definition(
            instrument_id, _text(record[_RAW_SYMBOL])
        ):
            self._cache.clear()
        symbol = self._symbols.symbol(instrument_id, ts_event(record))
        if symbol is None:
            if instrument_id not in self.unmapped:
                log.warning("instrument %d has no symbol mapping; keyed by its id", instrument_id)
                self.unmapped.add(instrument_id)
            symbol = str(instrument_id)
        routed = (topic, symbol)
        if self._symbols.fixed(instrument_id):
            self._cache[record[:8]] = routed
        return routed


def keying_router(
    mappings: Mapping[str, Iterable[Mapping[str, Any]]], schema: str | None
) -> Router:
    """A router that keys every record of a file by its symbol, as the producer would: every
    md.* topic named as itself, symbols from the file's metadata `mappings` (and its
    mapping and definition records as they come). What in-process readers of a file use."""
    symbols = SymbolMap()
    symbols.add_metadata_mappings(mappings)
    return Router(symbols, {f"md.{s}": f"md.{s}" for s in MARKET_DATA_SCHEMAS}, schema)
