"""Seeded synthetic market data written as a real DBN v3 file, for demos and benchmarks.

`generate` writes definitions, MBP-1 top-of-book updates and trades for N underlyings
(SYN000, SYN001, ...) and, on the first (or the `chain_on`-th), an option chain expiring at
that day's session close, all in one file ordered by ts_event that
`databento.DBNStore.from_file` reads.
The file is marked synthetic: dataset SYNTH.TICKLANE, publisher id 0 (no real venue) and
exchange SYNX in every definition. Same arguments, same bytes: nothing reads the clock.

The metadata's schema is None because the file mixes schemas, as a live stream does:
iterating a DBNStore yields every record, and `to_df(schema=...)` / `to_ndarray(schema=...)`
pick one schema (they refuse to guess without it).
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import databento_dbn as dbn
import numpy as np
import zstandard
from databento_dbn.metadata import MappingInterval

from producers.synth_book import BookOutput, simulate_underlying
from producers.synth_instruments import (
    OPTION_ID_BASE,
    OptionSpec,
    Underlying,
    make_underlying,
    option_chain,
    option_definition,
    session_close_ns,
    underlying_definition,
    utc_date,
)
from producers.synth_options import QUOTE_GRID_NS, quote_chain
from producers.synth_records import (
    DEFINITION_DTYPE,
    MBP1_DTYPE,
    TRADE_DTYPE,
    Batch,
    serialise,
)
from ticklane import dbn as tdbn

DATASET: Final = "SYNTH.TICKLANE"  # DBN allows at most 15 characters
DEFAULT_START_NS: Final = 1_719_840_600_000_000_000  # 2024-07-01 13:30 UTC, the NYSE open
STRIKES_EACH_SIDE: Final = 10
_MINUTE_NS: Final = 60_000_000_000
_ORDER_SHIFT: Final = 40  # order keys: instrument block << 40 | position within it
_ZSTD_LEVEL: Final = 3


@dataclass(frozen=True)
class SynthSummary:
    """What `generate` wrote."""

    path: Path
    symbols: tuple[str, ...]  # underlyings, in instrument-id order
    option_symbols: tuple[str, ...]
    counts: Mapping[str, int]  # records per schema: definition, mbp-1, trades
    start_ns: int
    end_ns: int
    expiration_ns: int | None  # the option chain's expiry, None without options

    @property
    def records(self) -> int:
        """All records in the file."""
        return sum(self.counts.values())


@dataclass
class _Interval:
    """One mapping interval in the shape databento_dbn's Metadata takes."""

    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass
class _Mapping:
    """A raw symbol and its instrument id over the file's days."""

    raw_symbol: str
    intervals: Sequence[MappingInterval]


def _validate(symbols: int, minutes: int, seed: int) -> None:
    """Refuse arguments that cannot describe a session."""
    if symbols < 1:
        raise ValueError(f"symbols must be at least 1, got {symbols}")
    if minutes < 1:
        raise ValueError(f"minutes must be at least 1, got {minutes}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


def _chain(underlying: Underlying, start_ns: int) -> list[OptionSpec]:
    """The same-day chain on `underlying`, which must still have time to trade."""
    expiration = session_close_ns(utc_date(start_ns))
    if start_ns + 2 * QUOTE_GRID_NS >= expiration:
        raise ValueError("start is at or after the session close: today's options have expired")
    return option_chain(underlying, expiration, STRIKES_EACH_SIDE, OPTION_ID_BASE)


def _definitions(underlyings: list[Underlying], chain: list[OptionSpec], ts: int) -> Batch:
    """Definition records of every instrument, at the start, before any of their data."""
    blobs = [underlying_definition(u, ts, ts + 50_000 + i) for i, u in enumerate(underlyings)]
    base = len(blobs)
    blobs += [option_definition(o, ts, ts + 50_000 + base + i) for i, o in enumerate(chain)]
    records = np.frombuffer(b"".join(blobs), dtype=DEFINITION_DTYPE).copy()
    return Batch(records, np.arange(len(records), dtype=np.int64))


def _metadata(
    symbols: list[tuple[str, int]], start_ns: int, end_ns: int, schema: dbn.Schema | None = None
) -> dbn.Metadata:
    """Header naming the synthetic dataset and mapping every raw symbol to its id."""
    first, after = utc_date(start_ns), utc_date(end_ns - 1) + dt.timedelta(days=1)
    mappings = [_Mapping(s, [_Interval(first, after, str(i))]) for s, i in symbols]
    return dbn.Metadata(
        dataset=DATASET,
        start=start_ns,
        end=end_ns,
        stype_in=dbn.SType("raw_symbol"),
        stype_out=dbn.SType("instrument_id"),
        schema=schema,  # None: mixed (definitions, mbp-1 and trades)
        symbols=[s for s, _ in symbols],
        mappings=mappings,
        ts_out=False,
    )


def _write(path: Path, blob: bytes) -> None:
    """Write the file, zstd-compressed when its name ends in .zst."""
    if path.suffix == ".zst":
        # One frame at a fixed level, no threads: the output is a function of the input.
        blob = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(blob)
    path.write_bytes(blob)


def generate(
    path: Path,
    *,
    symbols: int,
    minutes: int,
    seed: int,
    start_ns: int | None = None,
    options: bool = True,
    chain_on: int = 0,
) -> SynthSummary:
    """Write `minutes` of synthetic data for `symbols` underlyings to `path` (DBN v3), the
    option chain on the `chain_on`-th (0: SYN000, futures-like; 1: SYN001, a stock)."""
    _validate(symbols, minutes, seed)
    if not 0 <= chain_on < symbols:
        raise ValueError(
            f"--chain-on {chain_on}: there are {symbols} underlyings (0 to {symbols - 1})"
        )
    start = DEFAULT_START_NS if start_ns is None else start_ns
    end = start + minutes * _MINUTE_NS
    day = utc_date(start)
    underlyings = [make_underlying(seed, i, day, busy=i == chain_on) for i in range(symbols)]
    chain = _chain(underlyings[chain_on], start) if options else []
    books: list[BookOutput] = [
        simulate_underlying(u, seed, start, end, (i + 1) << _ORDER_SHIFT)
        for i, u in enumerate(underlyings)
    ]
    quotes = [b.mbp1 for b in books]
    if chain:
        book = books[chain_on]
        quotes.append(quote_chain(chain, book, seed, end, (symbols + 1) << _ORDER_SHIFT))
    definitions = _definitions(underlyings, chain, start)
    trades = [b.trades for b in books]
    body = serialise([[definitions], quotes, trades], [DEFINITION_DTYPE, MBP1_DTYPE, TRADE_DTYPE])
    names = [(u.symbol, u.instrument_id) for u in underlyings]
    names += [(o.symbol, o.instrument_id) for o in chain]
    _write(Path(path), _metadata(names, start, end).encode() + body)
    return SynthSummary(
        path=Path(path),
        symbols=tuple(u.symbol for u in underlyings),
        option_symbols=tuple(o.symbol for o in chain),
        counts={
            "definition": len(definitions.records),
            "mbp-1": sum(len(q.records) for q in quotes),
            "trades": sum(len(t.records) for t in trades),
        },
        start_ns=start,
        end_ns=end,
        expiration_ns=chain[0].expiration if chain else None,
    )


def generate_bars(
    path: Path, *, symbols: int, bars: int, seed: int, start_ns: int = DEFAULT_START_NS
) -> int:
    """Write `bars` one-minute OHLCV bars for each of `symbols` instruments (GEN000, ...)
    as an ohlcv-1m DBN file: seeded random walks, every minute, no definitions. Returns the
    records written. For backtests on bar data, where a long series is wanted."""
    _validate(symbols, bars, seed)
    rng = np.random.default_rng(seed)
    tick = 250_000_000  # 0.25, in 1e-9 price units
    rtype = int(dbn.RType.OHLCV_1M)
    names = [(f"GEN{i:03d}", 1000 + i) for i in range(symbols)]
    rows: list[tuple[int, int, dict[str, int | str]]] = []
    for i, (_, instrument_id) in enumerate(names):
        moves = rng.integers(-8, 9, size=(bars, 4))
        level = 4000 * 4 + 400 * i * 4  # in ticks
        for n in range(bars):
            step_open, step_a, step_b, step_close = (int(m) for m in moves[n])
            open_ = level + step_open
            close = open_ + step_close
            high = max(open_, close, open_ + abs(step_a))
            low = min(open_, close, open_ - abs(step_b))
            level = close
            ts = start_ns + n * _MINUTE_NS
            row: dict[str, int | str] = {"ts_event": ts, "publisher_id": 1}
            row |= {"instrument_id": instrument_id, "volume": 1 + abs(step_a) + abs(step_b)}
            row |= {"open": open_ * tick, "high": high * tick, "low": low * tick}
            row |= {"close": close * tick}
            rows.append((ts, i, row))
    rows.sort(key=lambda item: (item[0], item[1]))
    body = tdbn.encode_records(rtype, [row for *_, row in rows])
    end = start_ns + bars * _MINUTE_NS
    metadata = _metadata(names, start_ns, end, dbn.Schema("ohlcv-1m"))
    _write(Path(path), metadata.encode() + body)
    return len(rows)
