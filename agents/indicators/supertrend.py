"""Supertrend, as pandas-ta-classic's ``supertrend`` (its RMA-smoothed ATR included)."""

import sys

import msgspec

# pandas-ta-classic replaces a zero high-low range with machine epsilon.
_EPS = sys.float_info.epsilon


class Supertrend(msgspec.Struct):
    """Supertrend line and direction (+1 up, -1 down); first value at input index ``length``.

    It reproduces pandas-ta-classic, which differs from some textbook versions:
    the ATR is Wilder's RMA computed the way pandas' ``ewm(adjust=False)`` does
    it; the direction starts at +1; a flip is tested against the previous bar's
    bands; and only the band on the side of the current trend is ratcheted
    (the lower band while up, the upper while down), and only on bars without a
    flip. pandas-ta-classic reports 0.0 rather than NaN at index 0; this class
    reports nothing until the ATR exists.
    """

    length: int = 7
    multiplier: float = 3.0
    prev_close: int | None = None
    count: int = 0
    tr_total: float = 0.0
    atr: float | None = None
    upper: float | None = None
    lower: float | None = None
    direction: int = 1
    value: float | None = None

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {self.length}")
        if not self.multiplier > 0:
            raise ValueError(f"multiplier must be > 0, got {self.multiplier}")

    @property
    def ready(self) -> bool:
        """Whether `value` is defined (``length + 1`` bars seen)."""
        return self.value is not None

    def update(self, high: int, low: int, close: int) -> float | None:
        """Add one bar; return the Supertrend line once the ATR is warmed up."""
        atr = self._update_atr(high, low, close)
        if atr is None:
            return None
        mid = (high + low) * 0.5
        offset = self.multiplier * atr
        upper = mid + offset
        lower = mid - offset
        prev_upper, prev_lower = self.upper, self.lower
        if prev_upper is not None and prev_lower is not None:
            if close > prev_upper:
                self.direction = 1
            elif close < prev_lower:
                self.direction = -1
            elif self.direction > 0:
                lower = max(lower, prev_lower)
            else:
                upper = min(upper, prev_upper)
        self.upper, self.lower = upper, lower
        self.value = lower if self.direction > 0 else upper
        return self.value

    def _update_atr(self, high: int, low: int, close: int) -> float | None:
        prev_close = self.prev_close
        self.prev_close = close
        if prev_close is None:
            return None
        span = high - low
        tr = max(abs(span) if span else _EPS, abs(high - prev_close), abs(prev_close - low))
        atr = self.atr
        if atr is None:
            self.count += 1
            self.tr_total += tr
            if self.count == self.length:
                self.atr = self.tr_total / self.length
            return self.atr
        if atr != tr:
            # pandas' ewm(alpha=1/n, adjust=False) goes through the centre of mass and
            # renormalises; doing the same keeps band/close ties resolving identically.
            alpha = 1.0 / self.length
            com = (1.0 - alpha) / alpha
            new_wt = 1.0 / (1.0 + com)
            old_wt = 1.0 - new_wt
            self.atr = (old_wt * atr + new_wt * tr) / (old_wt + new_wt)
        return self.atr
