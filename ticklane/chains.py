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
"""

from collections.abc import Callable, Collection, Hashable, Iterable
from operator import itemgetter
from typing import Final, TypeVar

import databento_dbn as dbn

from ticklane.dbn import field_slice

_DEFINITION: Final = int(dbn.RType.INSTRUMENT_DEF)
_CLASS: Final = field_slice(_DEFINITION, "instrument_class") or slice(0, 0)
_UNDERLYING: Final = field_slice(_DEFINITION, "underlying") or slice(0, 0)
_OPTION_CLASSES: Final = (b"C", b"P")

T = TypeVar("T")


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


Run = tuple[str, str, list[bytes]]
"""(underlying, symbol, records): consecutive records of one symbol and type in a chain."""


def cut_runs(placed: Iterable[tuple[str, str, bytes]]) -> list[Run]:
    """Cut placed records, (underlying, symbol, record) in order, into runs.

    Within each underlying's chain the runs keep the records' order, so a consumer of the
    chain sees exactly the order in which things happened; chains never mix.
    """
    runs = group_runs(placed, itemgetter(0), lambda item: (item[1], item[2][1]))
    return [(chain, run[0][1], [item[2] for item in run]) for chain, run in runs]


def group_runs(
    items: Iterable[T], chain_of: Callable[[T], str], run_key: Callable[[T], Hashable]
) -> list[tuple[str, list[T]]]:
    """Cut items, in order, into runs: consecutive items of one chain with one run key.

    Runs come out as they close, then those still open by chain; an item of another chain
    in between does not close a run (chains are separate streams).
    """
    out: list[tuple[str, list[T]]] = []
    open_runs: dict[str, tuple[Hashable, list[T]]] = {}
    for item in items:
        chain, key = chain_of(item), run_key(item)
        current = open_runs.get(chain)
        if current is not None and current[0] == key:
            current[1].append(item)
            continue
        if current is not None:
            out.append((chain, current[1]))
        open_runs[chain] = (key, [item])
    out += [(chain, run[1]) for chain, run in open_runs.items()]
    return out
