"""Simple moving average, as TA-Lib's SMA."""

import msgspec


class SMA(msgspec.Struct):
    """Simple moving average of the last ``period`` prices; first value at the period-th input."""

    period: int
    # Ring buffer of the window; `count` says how many inputs it has seen.
    ring: list[int] = []
    count: int = 0
    total: int = 0
    value: float | None = None

    def __post_init__(self) -> None:
        if self.period < 1:
            raise ValueError(f"period must be >= 1, got {self.period}")

    @property
    def ready(self) -> bool:
        """Whether the window is full and `value` is defined."""
        return self.value is not None

    def update(self, price: int) -> float | None:
        """Add one price; return the average once ``period`` prices are in."""
        n = self.period
        ring = self.ring
        if self.count < n:
            ring.append(price)
        else:
            slot = self.count % n
            self.total -= ring[slot]
            ring[slot] = price
        self.count += 1
        self.total += price
        if self.count >= n:
            # An exact integer sum divided once is correctly rounded, as TA-Lib's
            # float sum is for prices below 2**53.
            self.value = self.total / n
        return self.value
