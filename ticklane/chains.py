"""Option chains: which underlying's chain a market-data record belongs to (pure).

A chain strategy (0DTE) decides on one underlying from everything about it in the order
it happened: the underlying's own records, its options' definitions and their quotes.
Those records are keyed by their own symbols in md.* (each option its own key), so the
chain is put together by routing each record to its underlying:

* an option's definition (class call or put) names its underlying: the option's
  instrument id is learned and the definition joins that underlying's chain;
* a later record of a learned option joins its underlying's chain;
* a record whose own symbol is a chain's underlying joins that chain.

Records of an option whose definition has not been seen cannot be told from records of
any other instrument and are left out. Definitions therefore come first: Databento sends
them at the start of a file or subscription, and the producer sends them ahead of other
data.

A chain's records, in order, are then cut into md.chain frames (`cut_chains`): as many
consecutive records as the frame caps allow, of any of the chain's symbols and record
types, each record's symbol kept in the frame's runs (`ticklane.market.MarketFrame`).
The producer and the backtest cut the same way.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

import databento_dbn as dbn

from ticklane.dbn import field_slice
from ticklane.market import FrameRun, MarketFrame

_DEFINITION: Final = int(dbn.RType.INSTRUMENT_DEF)
_CLASS: Final = field_slice(_DEFINITION, "instrument_class") or slice(0, 0)
_UNDERLYING: Final = field_slice(_DEFINITION, "underlying") or slice(0, 0)
_OPTION_CLASSES: Final = (b"C", b"P")


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


class ChainRouter:
    """Places records in the chain of their underlying; learns options from definitions.

    `underlyings` limits the chains built; None builds one for every underlying an
    option definition names.
    """

    def __init__(self, underlyings: Collection[str] | None = None) -> None:
        self._wanted = None if underlyings is None else frozenset(underlyings)
        self._underlyings: set[str] = set(underlyings or ())
        self._options: dict[int, str] = {}

    @property
    def underlyings(self) -> frozenset[str]:
        """The underlyings whose chains are being built so far."""
        return frozenset(self._underlyings)

    def __call__(self, record: bytes, symbol: str) -> str | None:
        """The underlying whose chain `record` (of `symbol`) belongs to, or None."""
        instrument_id = int.from_bytes(record[4:8], "little")
        if record[1] == _DEFINITION:
            # A definition says afresh what the instrument is: forget what it was.
            self._options.pop(instrument_id, None)
            if record[_CLASS] in _OPTION_CLASSES:
                underlying = _text(record[_UNDERLYING])
                if underlying and (self._wanted is None or underlying in self._wanted):
                    self._options[instrument_id] = underlying
                    self._underlyings.add(underlying)
                    return underlying
                return None
        known = self._options.get(instrument_id)
        if known is not None:
            return known
        return symbol if symbol in self._underlyings else None


@dataclass(frozen=True, slots=True)
class ChainCut:
    """Consecutive records of one chain, of any symbols and types: one md.chain frame's
    worth (its records, `symbols` and `runs` as `MarketFrame` carries them)."""

    underlying: str
    records: bytes
    symbols: tuple[str, ...]
    runs: tuple[FrameRun, ...]
    first: int
    """Index, in what was cut, of the cut's first record."""
    last: int
    """Index, in what was cut, of the cut's last record."""
    count: int

    def frame(self, source: str = "", position: int = 0, batch: int = 0) -> MarketFrame:
        """The md.chain frame that carries these records, keyed and named by the chain."""
        return MarketFrame(
            self.underlying, self.records, source, position, batch, self.symbols, self.runs
        )


class _Open:
    """A cut being filled: its records, the symbols met so far and the runs."""

    __slots__ = ("count", "first", "last", "nbytes", "records", "run_key", "runs", "symbols")

    def __init__(self, first: int) -> None:
        self.first = self.last = first
        self.count = self.nbytes = 0
        self.records: list[bytes] = []
        self.symbols: dict[str, int] = {}
        self.runs: list[list[int]] = []
        self.run_key: tuple[str, int] | None = None

    def cut(self, underlying: str) -> ChainCut:
        runs = tuple(FrameRun(symbol, count) for symbol, count in self.runs)
        records = b"".join(self.records)
        return ChainCut(
            underlying, records, tuple(self.symbols), runs, self.first, self.last, self.count
        )


def cut_chains(
    placed: Iterable[tuple[str, str, bytes]], max_records: int, max_bytes: int
) -> list[ChainCut]:
    """Cut placed records, (underlying, symbol, record) in order, into as few cuts per
    chain as the caps allow (`max_records` records, `max_bytes` bytes of records; a record
    larger than that goes alone), ordered by their first record.

    Each chain's cuts hold its records in exactly their order, so its consumer sees what
    happened in the order it happened; chains never mix. Within a cut, consecutive
    records of one symbol and type share a run.
    """
    out: list[ChainCut] = []
    building: dict[str, _Open] = {}
    for index, (underlying, symbol, record) in enumerate(placed):
        cut = building.get(underlying)
        size = len(record)
        if cut is not None and (cut.count >= max_records or cut.nbytes + size > max_bytes):
            out.append(cut.cut(underlying))
            cut = None
        if cut is None:
            cut = building[underlying] = _Open(index)
        key = (symbol, record[1])
        if key == cut.run_key:
            cut.runs[-1][1] += 1
        else:
            number = cut.symbols.setdefault(symbol, len(cut.symbols))
            cut.runs.append([number, 1])
            cut.run_key = key
        cut.records.append(record)
        cut.count += 1
        cut.nbytes += size
        cut.last = index
    out += [cut.cut(underlying) for underlying, cut in building.items()]
    out.sort(key=lambda cut: cut.first)
    return out
