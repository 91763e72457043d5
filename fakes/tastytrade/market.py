"""The market as the fake last saw it: per symbol the latest quote and trade, and the clock.

Pure. The clock is market time (the largest tick ts_event seen), not the wall clock: an order
arriving now is placed after the last tick its symbol had, so a replay and a restart fill it
where they would have.
"""

from executors.brokers.paper.matching import NO_PRICE, Tick


class MarketState:
    """Latest quote and trade tick per md symbol."""

    def __init__(self) -> None:
        self._quote: dict[str, Tick] = {}
        self._trade: dict[str, Tick] = {}
        self._last: dict[str, int] = {}
        self.clock = 0
        self.ticks = 0

    def update(self, symbol: str, ticks: list[Tick]) -> None:
        """Take new ticks of a symbol, in time order."""
        for tick in ticks:
            if tick.trade_price != NO_PRICE:
                self._trade[symbol] = tick
            else:
                self._quote[symbol] = tick
            self._last[symbol] = max(self._last.get(symbol, 0), tick.ts_event)
            self.clock = max(self.clock, tick.ts_event)
        self.ticks += len(ticks)

    def now(self, symbol: str) -> int:
        """Market time for an order on `symbol`: its last tick's, else the clock."""
        return self._last.get(symbol, self.clock)

    def current(self, symbol: str) -> list[Tick]:
        """The latest quote, then the latest trade: what an arriving order can trade against."""
        return [t for t in (self._quote.get(symbol), self._trade.get(symbol)) if t is not None]

    def mark(self, symbol: str) -> int | None:
        """A price to value a position at: the last trade, else the quote's mid, else None."""
        trade = self._trade.get(symbol)
        if trade is not None:
            return trade.trade_price
        quote = self._quote.get(symbol)
        if quote is None or NO_PRICE in (quote.bid, quote.ask):
            return None
        return (quote.bid + quote.ask) // 2
