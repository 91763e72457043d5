"""`ticklane backtest --report`: one self-contained HTML file a trader can open anywhere.

Drawn with Plotly, its JavaScript written into the file itself, so the page needs no
network: the equity curve and its drawdown, each symbol's price (bar closes) with the
strategy's indicators and the fills as entry and exit markers, the P&L per symbol, and the
statistics table. People read prices and money in units here; every figure in the table
carries its exact value (`data-value`, as in `stats.json`) for machines.
"""

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from agents.backtest import BacktestResult, Performance, stats_rows
from ticklane.trading import Side
from ticklane.units import PRICE_SCALE

MOST_SYMBOLS: Final = 12
"""Price charts drawn, for the symbols with the most fills (one chart each)."""


def _times(ns: Sequence[int]) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    return np.array(ns, dtype="datetime64[ns]")


def _units(values: Sequence[int]) -> list[float]:
    return [v / PRICE_SCALE for v in values]


def _equity_figure(performance: Performance) -> go.Figure:
    curve = performance.curve
    times = _times([p.ts_event for p in curve])
    equity = [p.equity for p in curve]
    peaks = np.maximum.accumulate(np.array([0, *equity], dtype=np.int64))[1:]
    drawdown = [e - int(peak) for e, peak in zip(equity, peaks, strict=True)]
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04
    )
    figure.add_trace(go.Scatter(x=times, y=_units(equity), name="equity (net P&L)"), 1, 1)
    figure.add_trace(go.Scatter(x=times, y=_units(drawdown), name="drawdown", fill="tozeroy"), 2, 1)
    figure.update_layout(title="Equity and drawdown", height=520, margin={"t": 50})
    return figure


def _price_figure(symbol: str, result: BacktestResult, performance: Performance) -> go.Figure:
    bars = sorted((bar.ts_close, bar.close) for s, bar in result.bars if s == symbol)
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=_times([t for t, _ in bars]), y=_units([c for _, c in bars]), name="close")
    )
    readings = sorted((ts, values) for s, _, ts, values in result.indicators if s == symbol)
    names = sorted({n for _, values in readings for n in values if not n.endswith("_direction")})
    for name in names:
        points = [(ts, v[name]) for ts, v in readings if v.get(name) is not None]
        figure.add_trace(
            go.Scatter(
                x=_times([t for t, _ in points]),
                y=[float(v or 0) / PRICE_SCALE for _, v in points],
                name=name,
                line={"width": 1},
            )
        )
    fills = [f for f in performance.simulation.fills if f.symbol == symbol]
    for side, marker, colour in (
        (Side.BUY, "triangle-up", "green"),
        (Side.SELL, "triangle-down", "red"),
    ):
        these = [f for f in fills if f.side is side]
        figure.add_trace(
            go.Scatter(
                x=_times([f.ts_event for f in these]),
                y=_units([f.price for f in these]),
                mode="markers",
                name=f"{side.value} fills",
                marker={"symbol": marker, "size": 10, "color": colour},
                text=[f"{f.quantity} @ {f.price / PRICE_SCALE:g}" for f in these],
            )
        )
    figure.update_layout(title=f"{symbol}: price, indicators, fills", height=420)
    return figure


def _pnl_figure(performance: Performance) -> go.Figure:
    by_symbol = performance.pnl_by_symbol
    figure = go.Figure(go.Bar(x=list(by_symbol), y=_units(list(by_symbol.values()))))
    figure.update_layout(title="Net P&L per symbol", height=360)
    return figure


def _stats_table(performance: Performance) -> str:
    stats = msgspec.to_builtins(performance.stats)
    shown = stats_rows(performance.stats, performance.simulation.source)
    rows = [
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in shown
    ]
    exact = [
        f'<tr data-stat="{html.escape(key)}" data-value="{html.escape(_json_value(value))}">'
        f"<th>{html.escape(key)}</th><td>{html.escape(_json_value(value))}</td></tr>"
        for key, value in stats.items()
    ]
    return (
        '<table class="stats">' + "".join(rows) + "</table>"
        "<details><summary>Exact figures (as stats.json: 1e-9 units)</summary>"
        '<table class="exact">' + "".join(exact) + "</table></details>"
    )


def _json_value(value: object) -> str:
    return msgspec.json.encode(value).decode()


def write_report(path: Path, title: str, result: BacktestResult, performance: Performance) -> None:
    """The report of one backtest, written whole to `path`."""
    traded: dict[str, int] = {}
    for fill in performance.simulation.fills:
        traded[fill.symbol] = traded.get(fill.symbol, 0) + 1
    symbols = sorted(traded, key=lambda s: (-traded[s], s))[:MOST_SYMBOLS]
    figures = [_equity_figure(performance)]
    figures += [_price_figure(symbol, result, performance) for symbol in symbols]
    figures.append(_pnl_figure(performance))
    parts = [f.to_html(full_html=False, include_plotlyjs=False) for f in figures]
    left_out = len(traded) - len(symbols)
    note = f"<p>{left_out} more traded symbol(s) not drawn.</p>" if left_out > 0 else ""
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table.stats th{text-align:left;"
        "padding-right:2em}table td{text-align:right}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1>{_stats_table(performance)}"
        + "".join(parts)
        + note
        + "</body></html>"
    )
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
