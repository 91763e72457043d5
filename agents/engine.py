"""Per-symbol processing shared by the Faust agents and the backtest: ticks → bars → signals.

Pure: no Kafka, no Faust, no clock. One call absorbs one market-data frame of one symbol
(its trades as parallel integer lists, or ready-made bars) into that symbol's
`SymbolEntry`, the one value the agents store per symbol, and returns the new entry with
the bars completed and the signals emitted. The backtest calls the same methods with the
records of a file, so the two paths give the same bars and the same signal ids.

The entry carries the position (partition, offset) of the last frame it absorbed; a frame
at or before it is a replay and is skipped (docs/design.md, "Replays are harmless").

Warm-up: `cold` names the strategies a frame would start cold (a symbol never seen, or new
parameters that start indicators over) and `warm` feeds them the bars from before the frame,
dropping what they emit; `agents.warmup` finds those bars.

Bars close on the first tick of a later interval, never on a clock: the last bar of a
stream stays open until more data comes (a backtest ends with it unreported), so a bar is
complete on the Kafka path exactly when it is complete in a backtest of the same data.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from agents.bars import BarBuilder, BarState
from agents.controls import ControlBook, EffectiveParams
from agents.indicators import readings
from agents.roster import Roster, Slot
from agents.strategies.base import Context
from ticklane.market import Bar
from ticklane.trading import Indicators, Signal

log = logging.getLogger(__name__)


class SlotState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One strategy's stored state on a symbol, with the parameters it was configured with."""

    strategy: str
    interval_ns: int
    params_version: str
    state: bytes
    """`Strategy.encode_state` bytes; decoded only when a bar or new parameters arrive."""


class SymbolEntry(msgspec.Struct, frozen=True, array_like=True):
    """Everything the agents keep for one symbol: one table value, written once per frame."""

    partition: int = -1
    offset: int = -1
    """Kafka position of the last frame absorbed; frames at or before it are replays."""
    bars: tuple[BarState, ...] = ()
    slots: tuple[SlotState, ...] = ()


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(SymbolEntry)


def encode_entry(entry: SymbolEntry) -> bytes:
    """The entry as stored in the table."""
    return _ENCODER.encode(entry)


def decode_entry(raw: bytes | None) -> SymbolEntry:
    """An entry back from the table; a symbol never seen gets an empty one."""
    return SymbolEntry() if raw is None else _DECODER.decode(raw)


@dataclass
class Outcome:
    """What absorbing one frame produced."""

    entry: SymbolEntry
    bars: list[Bar] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    ticks: int = 0
    indicators: list[Indicators] = field(default_factory=list)
    """Each strategy's indicators after each bar it absorbed (when the engine publishes them)."""


@dataclass(frozen=True)
class WarmupNeed:
    """A strategy on a symbol that would take the next frame's bars with cold indicators."""

    strategy: str
    interval_ns: int
    before_ns: int
    """Its first live bar opens at this time: history is the bars that open before it."""
    reset: bool
    """Its new parameters started its indicators over (else it never saw the symbol)."""


@dataclass(frozen=True)
class History:
    """One symbol's bars of one interval from before the live data, oldest first."""

    bars: Sequence[Bar] = ()
    open_bar: BarState | None = None
    """The bar builder's state just before the live frame, where history is the ticks
    themselves (md.*): seeds a builder the entry lacks, so the first live bar is whole."""
    source: str = "none"


BarObserver = Callable[[str, Slot, Bar, Any], None]
"""Called with (symbol, slot, bar, strategy state after the bar): the backtest's indicators."""


class Engine:
    """Runs the roster's strategies on each symbol's bars; one instance serves every symbol."""

    def __init__(
        self,
        roster: Roster,
        controls: ControlBook | None = None,
        *,
        publish_intervals: Iterable[int] = (),
        observer: BarObserver | None = None,
        indicators: bool = False,
        warmup_bars: int = 0,
    ) -> None:
        self._roster = roster
        self._warmup_bars = warmup_bars
        self._controls = controls or ControlBook()
        self._publish = tuple(sorted(set(publish_intervals)))
        self._observer = observer
        self._indicators: list[Indicators] | None = [] if indicators else None
        """Collects the current frame's indicator snapshots; None: not wanted."""
        self._intervals: dict[str, tuple[int, ...]] = {}
        self._contexts: dict[str, Context] = {}
        self._effective = EffectiveParams(self._controls)

    def intervals(self, symbol: str) -> tuple[int, ...]:
        """Bar intervals built for a symbol: those published plus those its strategies use."""
        found = self._intervals.get(symbol)
        if found is None:
            used = {slot.interval_ns for slot in self._roster.slots(symbol)}
            found = self._intervals[symbol] = tuple(sorted(used.union(self._publish)))
        return found

    def absorb_trades(
        self,
        symbol: str,
        entry: SymbolEntry,
        position: tuple[int, int],
        trades: tuple[Sequence[int], Sequence[int], Sequence[int]],
    ) -> Outcome | None:
        """Absorb one frame's trades (ts_event, price, size columns); None for a replay."""
        if is_replay(entry, position):
            return None
        ts, px, sz = trades
        stored = {state.interval_ns: state for state in entry.bars}
        built: dict[int, list[Bar]] = {}
        states = []
        for interval in self.intervals(symbol):
            state = stored.get(interval)
            builder = BarBuilder(interval) if state is None else BarBuilder.from_state(state)
            built[interval] = builder.add_many(ts, px, sz)
            states.append(builder.to_state())
        slots, signals = self._run_slots(symbol, entry.slots, built.get)
        bars = [bar for interval in self._publish for bar in built[interval]]
        new = SymbolEntry(position[0], position[1], tuple(states), slots)
        return Outcome(new, bars, signals, len(ts), self._take_indicators())

    def absorb_bars(
        self, symbol: str, entry: SymbolEntry, position: tuple[int, int], bars: list[Bar]
    ) -> Outcome | None:
        """Absorb ready-made bars (ohlcv-* input): every strategy gets them as they are."""
        if is_replay(entry, position):
            return None
        slots, signals = self._run_slots(symbol, entry.slots, lambda _interval: bars)
        new = SymbolEntry(position[0], position[1], entry.bars, slots)
        return Outcome(new, [], signals, len(bars), self._take_indicators())

    def cold(
        self, symbol: str, entry: SymbolEntry, first_ts: int, *, bars_input: bool
    ) -> list[WarmupNeed]:
        """The strategies that would take the frame starting at `first_ts` cold: those with
        no state on the symbol, and those whose new parameters reset their indicators.
        Empty when warm-up is off (`warmup_bars` 0)."""
        if not self._warmup_bars:
            return []
        stored = {(s.strategy, s.interval_ns): s for s in entry.slots}
        builders = {b.interval_ns: b for b in entry.bars}
        needs = []
        for slot in self._roster.slots(symbol):
            previous = stored.get((slot.name, slot.interval_ns))
            reset = previous is not None
            if previous is not None:
                version, params = self._effective(slot, symbol)
                if previous.params_version == version:
                    continue
                if not slot.strategy.resets(slot.strategy.decode_state(previous.state), params):
                    continue
            if bars_input:
                before = first_ts
            else:
                builder = builders.get(slot.interval_ns)
                open_at = builder.ts_open if builder is not None and builder.trade_count else None
                before = first_ts - first_ts % slot.interval_ns if open_at is None else open_at
            needs.append(WarmupNeed(slot.name, slot.interval_ns, before, reset))
        return needs

    def warm(
        self,
        symbol: str,
        entry: SymbolEntry,
        needs: Iterable[WarmupNeed],
        history: Mapping[int, History],
    ) -> tuple[SymbolEntry, dict[WarmupNeed, int]]:
        """The entry with each needing strategy fed the last `warmup_bars` history bars
        before its live start (what it emits is dropped: `Context.warming`), and a bar
        builder the entry lacks seeded from history; with the bars each was fed."""
        slots = {(s.strategy, s.interval_ns): s for s in entry.slots}
        builders = {b.interval_ns: b for b in entry.bars}
        roster = {(slot.name, slot.interval_ns): slot for slot in self._roster.slots(symbol)}
        ctx = Context(symbol=symbol, warming=True)
        fed: dict[WarmupNeed, int] = {}
        for need in needs:
            key = (need.strategy, need.interval_ns)
            slot, found = roster[key], history.get(need.interval_ns, History())
            bars = [bar for bar in found.bars if bar.ts_event < need.before_ns]
            bars = bars[-self._warmup_bars :] if self._warmup_bars else []
            version, params = self._effective(slot, symbol)
            strategy = slot.strategy
            state = strategy.initial_state(params)
            for bar in bars:
                state, _dropped = strategy.on_bar(state, bar, ctx)
            if need.reset:
                state = strategy.resume(strategy.decode_state(slots[key].state), state)
            encoded = strategy.encode_state(state)
            slots[key] = SlotState(slot.name, slot.interval_ns, version, encoded)
            if found.open_bar is not None and need.interval_ns not in builders:
                builders[need.interval_ns] = found.open_bar
            fed[need] = len(bars)
        warmed = SymbolEntry(
            entry.partition, entry.offset, tuple(builders.values()), tuple(slots.values())
        )
        return warmed, fed

    def _take_indicators(self) -> list[Indicators]:
        taken = self._indicators
        if not taken:
            return []
        self._indicators = []
        return taken

    def _run_slots(
        self,
        symbol: str,
        stored_slots: tuple[SlotState, ...],
        bars_for: Callable[[int], list[Bar] | None],
    ) -> tuple[tuple[SlotState, ...], list[Signal]]:
        stored = {(s.strategy, s.interval_ns): s for s in stored_slots}
        controls = self._controls
        signals: list[Signal] = []
        out = []
        for slot in self._roster.slots(symbol):
            previous = stored.get((slot.name, slot.interval_ns))
            version, params = self._effective(slot, symbol)
            bars = bars_for(slot.interval_ns) or []
            enabled = controls.enabled(slot.name, symbol)
            if (
                previous is not None
                and previous.params_version == version
                and not (bars and enabled)
            ):
                out.append(previous)  # nothing to do: not even decoded
                continue
            strategy = slot.strategy
            state = restored_state(slot, previous, version, params)
            if enabled:
                state = self._feed(symbol, slot, state, bars, signals)
            out.append(
                SlotState(slot.name, slot.interval_ns, version, strategy.encode_state(state))
            )
        return tuple(out), signals

    def _feed(self, symbol: str, slot: Slot, state: Any, bars: list[Bar], out: list[Signal]) -> Any:
        ctx = self._contexts.get(symbol)
        if ctx is None:
            ctx = self._contexts[symbol] = Context(symbol=symbol)
        on_bar, observer, indicators = slot.strategy.on_bar, self._observer, self._indicators
        for bar in bars:
            state, signals = on_bar(state, bar, ctx)
            if signals:
                out += signals
            if observer is not None:
                observer(symbol, slot, bar, state)
            if indicators is not None:
                indicators.append(snapshot(slot.name, symbol, bar, state))
        return state


def snapshot(strategy: str, symbol: str, bar: Bar, state: Any) -> Indicators:
    """A strategy's indicators after `bar`, as published: prices rounded to integer 1e-9."""
    values, directions = readings(state)
    return Indicators(
        strategy,
        symbol,
        bar.interval_ns,
        bar.ts_event,
        {name: None if v is None else round(v) for name, v in values.items()},
        {name: d for name, d in directions.items() if d is not None},
    )


def restored_state(
    slot: Slot,
    previous: SlotState | None,
    version: str,
    params: Any,
    decoded: Callable[[], Any] | None = None,
) -> Any:
    """A slot's strategy state for this run: a new one, or the stored one (from `decoded`
    when the caller already holds it decoded), reconfigured if its parameters changed."""
    strategy = slot.strategy
    if previous is None:
        return strategy.initial_state(params)
    state = decoded() if decoded is not None else strategy.decode_state(previous.state)
    if previous.params_version != version:
        state = strategy.reconfigure(state, params)
    return state


def is_replay(entry: SymbolEntry, position: tuple[int, int]) -> bool:
    return entry.partition == position[0] and position[1] <= entry.offset
