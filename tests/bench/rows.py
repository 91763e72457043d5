"""One figure of `make bench`, and the guard that turns a failed measurement into a row."""

from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Row:
    """A measured figure: a `value`, or a latency's `p50` and `p99`; or the `error` it failed on.

    `unit` is the unit alone ("records/s", "ms"); `note` says under what conditions the figure
    was taken ("after join", "median of 3"). `decimals` is for printing only.
    """

    name: str
    unit: str
    value: float | None = None
    p50: float | None = None
    p99: float | None = None
    note: str = ""
    decimals: int = 0
    error: str | None = None
    target: str = ""
    """What the figure should reach, where an issue set one ("p99 ≤ 25 ms")."""
    before: str = ""
    """The figure before the change that set the target, as that issue measured it."""

    def __post_init__(self) -> None:
        kinds = (self.value is not None, self.p50 is not None, self.error is not None)
        if sum(kinds) != 1 or (self.p50 is None) != (self.p99 is None):
            raise ValueError(f"{self.name}: a row has a value, a p50 and a p99, or an error")

    @classmethod
    def failed(cls, name: str, exc: BaseException) -> "Row":
        """The row `name` could not be measured: `exc`'s type and message, on one line."""
        return cls(name, "", error=" ".join(f"{type(exc).__name__}: {exc}".split()))

    @property
    def figure(self) -> str:
        """The value as printed: thousands separators, `decimals` places."""
        if self.value is not None:
            return f"{self.value:,.{self.decimals}f}"
        if self.p50 is not None and self.p99 is not None:
            return f"p50 {self.p50:,.{self.decimals}f} / p99 {self.p99:,.{self.decimals}f}"
        return "failed"

    def as_json(self) -> dict[str, str | float]:
        """The row in `.ticklane/bench.json`: numbers as numbers, no printing details."""
        figures = {"value": self.value, "p50": self.p50, "p99": self.p99, "error": self.error}
        present = {key: figure for key, figure in figures.items() if figure is not None}
        aims = {"target": self.target, "before": self.before}
        shown = {key: text for key, text in aims.items() if text}
        return {"name": self.name, **present, "unit": self.unit, "note": self.note, **shown}


def guard(name: str, measure: Callable[[], Row]) -> Row:
    """`measure()`, or if it raises, the failed row `name`: one row's failure costs no other."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - reported in the row, and in the exit status
        return Row.failed(name, exc)


def aimed(row: Row, target: str, before: str) -> Row:
    """`row` with the target an issue set for it and the figure before that issue's change
    (a failed row keeps them too, so the table still says what was aimed at)."""
    return replace(row, target=target, before=before)
