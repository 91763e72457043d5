"""Exponential moving average, as TA-Lib's EMA (default compatibility)."""

import msgspec


class EMA(msgspec.Struct):
    """EMA seeded with the SMA of the first ``period`` prices, ``alpha = 2 / (period + 1)``."""

    period: int
    count: int = 0
    seed_total: int = 0
    value: float | None = None

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError(f"period must be >= 1, got {self.period}")

    @property
    def ready(self) -> bool:
        """Whether `value` is defined (``period`` prices seen)."""
        return self.value is not None

    def update(self, price: int) -> float | None:
        """Add one price; return the EMA from the period-th price on."""
        prev = self.value
        if prev is None:
            self.count += 1
            self.seed_total += price
            if self.count == self.period:
                self.value = self.seed_total / self.period
            return self.value
        # TA-Lib's operation order, so results agree to the last bit.
        self.value = (price - prev) * (2.0 / (self.period + 1)) + prev
        return self.value
