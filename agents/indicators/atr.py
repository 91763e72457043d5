"""Average true range with Wilder smoothing, as TA-Lib's ATR."""

import msgspec


def true_range(high: int, low: int, prev_close: int) -> int:
    """True range of a bar given the previous bar's close."""
    return max(high - low, abs(prev_close - high), abs(prev_close - low))


class ATR(msgspec.Struct):
    """Wilder ATR; first value at input index ``period`` (the first bar only gives a close)."""

    period: int
    count: int = 0
    prev_close: int | None = None
    tr_total: int = 0
    value: float | None = None

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError(f"period must be >= 1, got {self.period}")

    @property
    def ready(self) -> bool:
        """Whether `value` is defined (``period + 1`` bars seen)."""
        return self.value is not None

    def update(self, high: int, low: int, close: int) -> float | None:
        """Add one bar; return the ATR once ``period`` true ranges are in."""
        prev_close = self.prev_close
        self.prev_close = close
        if prev_close is None:
            return None
        tr = true_range(high, low, prev_close)
        n = self.period
        prev = self.value
        if prev is None:
            self.count += 1
            self.tr_total += tr
            if self.count == n:
                self.value = self.tr_total / n
            return self.value
        # TA-Lib's operation order: prev * (n - 1), plus TR, divided by n.
        self.value = (prev * (n - 1) + tr) / n
        return self.value
