"""Which strategies and symbols one executor trades: pure, so several run side by side.

One executor serves one account. Where a trader has several (futures at TastyTrade, equities
at Schwab), each executor is given the strategies and symbols it owns, as shell-style patterns
(`ES*`, `/ES*`, `SPXW *`); a signal outside them is not this executor's and is left alone (its
own executor answers it). An empty list means every strategy, or every symbol.
"""

from fnmatch import fnmatchcase

import msgspec


class Route(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The strategies and symbols an executor trades (empty: all)."""

    strategies: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()

    def covers(self, strategy: str, symbol: str) -> bool:
        """Whether a signal of `strategy` in `symbol` is this executor's to answer."""
        return _matches(strategy, self.strategies) and _matches(symbol, self.symbols)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(fnmatchcase(name, pattern) for pattern in patterns)
