"""Chain strategies (0DTE) over one underlying's chain: its records, its options' records.

Pure: no Kafka, no Faust, no clock (the exchange calendar is data). The input is the
chain as `ticklane.chains` puts it together, in the order it happened, cut into frames
of consecutive records of any of the chain's symbols and types (md.chain's
`MarketFrame`s; frames written before those held one symbol and type each, and are read
the same way). `ChainEngine.absorb` takes one frame into the underlying's `ChainEntry`
and returns the new entry with the bars and signals it caused:

* definitions → `on_definition`;
* the underlying's trades → bars (each bar closed by a trade goes to `on_bar` before the
  trade itself goes to `on_tick`); its ohlcv bars → `on_bar` as they are;
* quotes (the underlying's or an option's) and the options' trades → `on_tick`, in bulk:
  consecutive ticks of one record type, of whichever symbols, go to the strategy's
  `on_ticks` in one call (a strategy that does not override it gets `on_tick` for each).

Every call carries the exchange session of the record's time, from the calendar the
strategy's parameters name (`calendar`, default XNYS); a batch of ticks goes in one call
only when all of them fall in one session, else one tick at a time. Control commands
apply as in `agents.engine`, the underlying standing for the symbol; a disabled strategy
gets only `on_time`, so its cut-off still closes what it holds.

How a chain is cut into frames changes nothing of what comes out (tested), so the
Kafka path and the backtest agree whatever frame caps the producer ran with.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import getitem
from typing import Any, Final

import databento_dbn as dbn
import msgspec
import numpy as np

from agents.bars import BarBuilder, BarState
from agents.controls import ControlBook, EffectiveParams
from agents.engine import BarObserver, SlotState, restored_state
from agents.roster import Roster
from agents.strategies.base import Context, Session
from agents.strategies.zero_dte import ExchangeSessions
from agents.ticks import TICK_RTYPES, Column, TickBatch
from ticklane import dbn as tdbn
from ticklane.dbn import FrameLayout
from ticklane.market import Bar, MarketFrame
from ticklane.trading import Signal

_DEFINITION: Final = int(dbn.RType.INSTRUMENT_DEF)
_TRADES: Final = int(dbn.RType.MBP_0)
DEFAULT_CALENDAR: Final = "XNYS"


class ChainEntry(msgspec.Struct, frozen=True, array_like=True):
    """Everything kept for one underlying's chain: one table value, written once per frame."""

    partition: int = -1
    offset: int = -1
    """Kafka position of the last frame absorbed; frames at or before it are replays."""
    bars: tuple[BarState, ...] = ()
    slots: tuple[SlotState, ...] = ()


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ChainEntry)


def encode_chain_entry(entry: ChainEntry) -> bytes:
    """The entry as stored in the table."""
    return _ENCODER.encode(entry)


def decode_chain_entry(raw: bytes | None) -> ChainEntry:
    """An entry back from the table; an underlying never seen gets an empty one."""
    return ChainEntry() if raw is None else _DECODER.decode(raw)


@dataclass
class ChainOutcome:
    """What absorbing one frame produced."""

    entry: ChainEntry
    bars: list[Bar] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    ticks: int = 0


class _Run:
    """The strategies' decoded states while one frame is absorbed, and what they emit."""

    def __init__(self, engine: "ChainEngine", underlying: str, entry: ChainEntry) -> None:
        self.engine = engine
        self.underlying = underlying
        self.slots = engine.roster.slots(underlying)
        self.signals: list[Signal] = []
        resolved = [engine.effective(slot, underlying) for slot in self.slots]
        self.versions = [version for version, _ in resolved]
        self.params = [params for _, params in resolved]
        self.enabled = [engine.controls.enabled(slot.name, underlying) for slot in self.slots]
        stored = {(s.strategy, s.interval_ns): s for s in entry.slots}
        kept = engine.decoded.get(underlying)
        cached = kept[1] if kept is not None and kept[0] is entry else None
        self.states: list[Any] = []
        for i, slot in enumerate(self.slots):
            previous = stored.get((slot.name, slot.interval_ns))
            # The entry this engine just returned (the backtest) needs no decoding.
            decoded = None if cached is None else partial(getitem, cached, i)
            state = restored_state(slot, previous, self.versions[i], self.params[i], decoded)
            self.states.append(state)

    def call(self, method: str, item: Any, ts: int, interval: int | None = None) -> None:
        """Call `method` of every enabled strategy (of `interval`, for bars) with `item`."""
        observer = self.engine.observer
        for i, slot in enumerate(self.slots):
            if interval is not None and slot.interval_ns != interval:
                continue
            ctx = self.engine.context(self.underlying, self.params[i], ts)
            if not self.enabled[i]:
                # Disabled: no new decisions, but the cut-off still closes what it holds,
                # so a position never outlives its expiry.
                on_time = getattr(slot.strategy, "on_time", None)
                if on_time is not None:
                    self.states[i], signals = on_time(self.states[i], ts, ctx)
                    self.signals += signals
                continue
            state, signals = getattr(slot.strategy, method)(self.states[i], item, ctx)
            self.states[i] = state
            self.signals += signals
            if method == "on_bar" and observer is not None:
                observer(self.underlying, slot, item, state)

    def ticks(self, batch: TickBatch) -> None:
        """Hand consecutive ticks to every strategy, in bulk where it can be: `on_ticks`
        once for the batch when it lies in one session, else `on_tick` on each."""
        if not len(batch):
            return
        engine, underlying = self.engine, self.underlying
        ts: list[int] | None = None
        first, last = int(batch.ts.min()), int(batch.ts.max())
        for i, slot in enumerate(self.slots):
            # Sessions only move forward with time: one session at both ends holds between.
            ctx: Context | None = engine.context(underlying, self.params[i], first)
            if engine.context(underlying, self.params[i], last) != ctx:
                ctx = None
            if not self.enabled[i]:
                on_time = getattr(slot.strategy, "on_time", None)
                if on_time is None:
                    continue
                ts = batch.ts.tolist() if ts is None else ts
                for t in ts:
                    here = engine.context(underlying, self.params[i], t) if ctx is None else ctx
                    self.states[i], signals = on_time(self.states[i], t, here)
                    self.signals += signals
                continue
            if ctx is not None:
                self.states[i], signals = slot.strategy.on_ticks(self.states[i], batch, ctx)
                self.signals += signals
                continue
            for tick in batch.items():
                here = engine.context(underlying, self.params[i], max(tick.ts_event, tick.ts_recv))
                self.states[i], signals = slot.strategy.on_tick(self.states[i], tick, here)
                self.signals += signals

    def slot_states(self) -> tuple[SlotState, ...]:
        """The states to store, each with the parameters' version it was run with."""
        return tuple(
            SlotState(slot.name, slot.interval_ns, version, slot.strategy.encode_state(state))
            for slot, version, state in zip(self.slots, self.versions, self.states, strict=True)
        )


class ChainEngine:
    """Runs the roster's chain strategies on each underlying's chain; serves every underlying."""

    def __init__(
        self,
        roster: Roster,
        controls: ControlBook | None = None,
        *,
        publish_intervals: tuple[int, ...] = (),
        calendars: Callable[[str], ExchangeSessions] = ExchangeSessions,
        observer: BarObserver | None = None,
    ) -> None:
        self.roster = roster
        self.controls = controls or ControlBook()
        self.effective = EffectiveParams(self.controls)
        self.observer = observer
        self._publish = tuple(sorted(set(publish_intervals)))
        self._calendars = calendars
        self._sessions: dict[str, ExchangeSessions] = {}
        self._intervals: dict[str, tuple[int, ...]] = {}
        # The states behind the last entry returned per underlying, so a caller that hands
        # that entry straight back (the backtest) is spared decoding it.
        self.decoded: dict[str, tuple[ChainEntry, list[Any]]] = {}

    def context(self, underlying: str, params: Any, ts: int) -> Context:
        """A call's context: the underlying and the session of `ts` on the params' calendar."""
        name = str(getattr(params, "calendar", DEFAULT_CALENDAR))
        sessions = self._sessions.get(name)
        if sessions is None:
            sessions = self._sessions[name] = self._calendars(name)
        session: Session = sessions.at(ts)
        return Context(symbol=underlying, session=session)

    def intervals(self, underlying: str) -> tuple[int, ...]:
        """Bar intervals built on the underlying: those published plus those strategies use."""
        found = self._intervals.get(underlying)
        if found is None:
            used = {slot.interval_ns for slot in self.roster.slots(underlying)}
            found = self._intervals[underlying] = tuple(sorted(used.union(self._publish)))
        return found

    def absorb(
        self, underlying: str, entry: ChainEntry, position: tuple[int, int], frame: MarketFrame
    ) -> ChainOutcome | None:
        """Absorb one frame of the underlying's chain; None for a replay. Raises
        DbnRecordError for records that do not match the frame's runs."""
        if entry.partition == position[0] and position[1] <= entry.offset:
            return None
        layout = tdbn.frame_layout(frame)
        run = _Run(self, underlying, entry)
        states, bars_out, ticks = self._feed(run, entry.bars, frame.records, layout)
        new = ChainEntry(position[0], position[1], states, run.slot_states())
        self.decoded[underlying] = (new, run.states)
        published = [bar for bar in bars_out if bar.interval_ns in self._publish]
        return ChainOutcome(new, published, run.signals, ticks)

    def _feed(
        self, run: _Run, states: tuple[BarState, ...], records: bytes, layout: FrameLayout
    ) -> tuple[tuple[BarState, ...], list[Bar], int]:
        """Dispatch a frame's records to the strategies, in order: consecutive runs of
        ticks as one batch. The new bar states, the bars, the ticks."""
        underlying, runs = run.underlying, layout.runs
        bars: list[Bar] = []
        ticks = 0
        i = 0
        while i < len(runs):
            first = runs[i]
            rtype = first.rtype
            if rtype in TICK_RTYPES:
                stop = i + 1
                while stop < len(runs) and runs[stop].rtype in TICK_RTYPES:
                    stop += 1
                batch = TickBatch.of_runs(records, layout, i, stop)
                own = [r.symbol == underlying and r.rtype == _TRADES for r in runs[i:stop]]
                if any(own):
                    # The underlying's own trades, as indices of the batch, make its bars.
                    start = int(layout.firsts[i])
                    run_of = layout.run_of[start : start + len(batch)] - i
                    trades = np.flatnonzero(np.array(own)[run_of])
                    states = self._bars_then_ticks(run, states, batch, trades, bars)
                else:
                    run.ticks(batch)
                ticks += len(batch)
                i = stop
                continue
            if rtype == _DEFINITION:
                for defn in tdbn.to_instruments(records[first.start : first.stop]):
                    run.call("on_definition", defn, max(defn.ts_event, defn.ts_recv))
            elif first.symbol == underlying and rtype in tdbn.OHLCV_INTERVALS_NS:
                for bar in tdbn.to_bars(records[first.start : first.stop]):
                    run.call("on_bar", bar, bar.ts_close)
            # Nothing else is for a chain strategy.
            i += 1
        return states, bars, ticks

    def _bars_then_ticks(
        self,
        run: _Run,
        stored: tuple[BarState, ...],
        batch: TickBatch,
        trades: Column,
        out: list[Bar],
    ) -> tuple[BarState, ...]:
        """The underlying's trades (at indices `trades` of the batch) into bars; the ticks
        before each bar's closing trade reach the strategies before the bar, that trade
        and those after it after the bar."""
        by_interval = {state.interval_ns: state for state in stored}
        builders = [
            BarBuilder(i) if i not in by_interval else BarBuilder.from_state(by_interval[i])
            for i in self.intervals(run.underlying)
        ]
        columns = zip(
            trades.tolist(),
            batch.ts_event[trades].tolist(),
            batch.price[trades].tolist(),
            batch.size[trades].tolist(),
            strict=True,
        )
        pending = 0
        for index, ts, price, size in columns:
            for builder in builders:
                closed = builder.add(ts, price, size)
                if not closed:
                    continue
                if pending < index:
                    run.ticks(batch.part(pending, index))
                    pending = index
                for bar in closed:
                    out.append(bar)
                    run.call("on_bar", bar, bar.ts_close, builder.interval_ns)
        if pending < len(batch):
            run.ticks(batch if pending == 0 else batch.part(pending, len(batch)))
        return tuple(b.to_state() for b in builders)
