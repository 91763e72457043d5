"""instrument_id → symbol, from DBN metadata mappings, symbol-mapping records and definitions.

Kafka keys are symbols, so every record needs one. Databento identifies instruments by
numeric ids that venues may reassign from day to day, so mappings are kept per date
interval, as Databento publishes them.
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

_NS_PER_DAY: Final = 86_400 * 1_000_000_000
_EPOCH: Final = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class MappingInterval:
    """One symbol for one instrument id over [start_date, end_date) in UTC dates."""

    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass
class SymbolMap:
    """Resolves instrument ids to symbols; fed by metadata, mapping records and definitions."""

    _intervals: dict[int, list[MappingInterval]] = field(default_factory=dict)
    _latest: dict[int, str] = field(default_factory=dict)

    def add_interval(self, instrument_id: int, interval: MappingInterval) -> None:
        """Record that `instrument_id` meant `interval.symbol` over the interval's dates."""
        self._intervals.setdefault(instrument_id, []).append(interval)
        self._latest[instrument_id] = interval.symbol

    def add_metadata_mappings(self, mappings: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Mappings from a DBN metadata header (input symbol → instrument ids by date)."""
        for symbol, intervals in mappings.items():
            for item in intervals:
                raw_id = str(item["symbol"])
                if not raw_id.isdigit():
                    continue  # an unresolved symbol: Databento leaves the id empty
                self.add_interval(
                    int(raw_id), MappingInterval(item["start_date"], item["end_date"], symbol)
                )

    def set_symbol(self, instrument_id: int, symbol: str) -> None:
        """A live mapping (SymbolMappingMsg): from now on, this id means this symbol."""
        self._latest[instrument_id] = symbol
        self._intervals.pop(instrument_id, None)

    def learn_from_definition(self, instrument_id: int, raw_symbol: str) -> bool:
        """A definition names its instrument; used only for ids no mapping covered.

        Returns whether this changed the map.
        """
        if instrument_id not in self._latest and raw_symbol:
            self._latest[instrument_id] = raw_symbol
            return True
        return False

    def fixed(self, instrument_id: int) -> bool:
        """Whether the id's symbol does not depend on the date (one mapping interval or none)."""
        return len(self._intervals.get(instrument_id, ())) <= 1

    def symbol(self, instrument_id: int, ts_event: int) -> str | None:
        """The symbol of an instrument at a time, or None if nothing names it."""
        intervals = self._intervals.get(instrument_id)
        if intervals and len(intervals) > 1:
            day = _EPOCH + dt.timedelta(days=ts_event // _NS_PER_DAY)
            for interval in intervals:
                if interval.start_date <= day < interval.end_date:
                    return interval.symbol
        return self._latest.get(instrument_id)
