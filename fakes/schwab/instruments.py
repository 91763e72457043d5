"""The instruments the fake trades: the TastyTrade fake's catalogue, seen with Schwab's words.

Pure. Instruments come from the same places as the TastyTrade fake's (`builtin`, md.definition
through `from_definition`, or a test's `POST /__fake/instruments`) and are kept in its
`Catalogue`: Schwab's equity symbols are plain (`SPY`) and its option symbols the padded OCC
string (`SPXW  261204C05900000`), both exactly as in md.*. Futures may be in the catalogue
(md.definition carries them) but the Trader API does not trade them (brokers.md 0.5).
"""

import zlib
from typing import Final

from fakes.schwab.vocab import AssetType
from fakes.tastytrade.instruments import Instrument
from fakes.tastytrade.vocab import InstrumentType

_ASSET_TYPES: Final = {
    InstrumentType.EQUITY: AssetType.EQUITY,
    InstrumentType.EQUITY_OPTION: AssetType.OPTION,
}
_CATALOGUE_TYPES: Final = {asset: kind for kind, asset in _ASSET_TYPES.items()}


def asset_type_of(kind: InstrumentType) -> AssetType | None:
    """The Schwab asset type of a catalogue kind; None for what Schwab cannot trade."""
    return _ASSET_TYPES.get(kind)


def catalogue_type(asset: AssetType) -> InstrumentType:
    """The catalogue's kind for a Schwab asset type (EQUITY or OPTION only)."""
    return _CATALOGUE_TYPES[asset]


def instrument_id(symbol: str) -> int:
    """A stable `instrumentId` for a symbol (Schwab's own ids are not derivable)."""
    return zlib.crc32(symbol.encode())


def put_call(instrument: Instrument) -> str:
    """An option's `putCall`."""
    return {"C": "CALL", "P": "PUT"}.get(instrument.option_type, "UNKNOWN")
