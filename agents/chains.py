"""Chain strategies (0DTE) over one underlying's chain: its records, its options' records.

Pure: no Kafka, no Faust, no clock (the exchange calendar is data). The input is the
chain as `ticklane.chains.ChainRouter` puts it together, in the order it happened, cut
into runs: consecutive records of one symbol and one record type. `ChainEngine.absorb`
takes one run into the underlying's `ChainEntry` and returns the new entry with the bars
and signals it caused:

* definitions → `on_definition`;
* the underlying's trades → bars (each bar closed by a trade goes to `on_bar` before the
  trade itself goes to `on_tick`); its ohlcv bars → `on_bar` as they are;
* quotes (the underlying's or an option's) and the options' trades → `on_tick`.

Every call carries the exchange session of the record's time, from the calendar the
strategy's parameters name (`calendar`, default XNYS). Control commands apply as in
`agents.engine`, the underlying standing for the symbol; a disabled strategy gets only
`on_time`, so its cut-off still closes what it holds.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import getitem
from typing import Any, Final

import databento_dbn as dbn
import msgspec

from agents.bars import BarBuilder, BarState
from agents.controls import ControlBook, EffectiveParams
from agents.engine import BarObserver, SlotState, restored_state
from agents.roster import Roster
from agents.strategies.base import Context, Session
from agents.strategies.zero_dte import ExchangeSessions
from ticklane import dbn as tdbn
from ticklane.market import Bar, Quote, Trade
from ticklane.trading import Signal

_DEFINITION: Final = int(dbn.RType.INSTRUMENT_DEF)
_TRADES: Final = int(dbn.RType.MBP_0)
DEFAULT_CALENDAR: Final = "XNYS"


class ChainEntry(msgspec.Struct, frozen=True, array_like=True):
    """Everything kept for one underlying's chain: one table value, written once per run."""

    partition: int = -1
    offset: int = -1
    """Kafka position of the last run absorbed; runs at or before it are replays."""
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
    """What absorbing one run produced."""

    entry: ChainEntry
    bars: list[Bar] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    ticks: int = 0


class _Run:
    """The strategies' decoded states while one run is absorbed, and what they emit."""

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
        self,
        underlying: str,
        entry: ChainEntry,
        position: tuple[int, int],
        symbol: str,
        records: bytes,
    ) -> ChainOutcome | None:
        """Absorb one run (records of `symbol`, one type) of the chain; None for a replay."""
        if entry.partition == position[0] and position[1] <= entry.offset:
            return None
        run = _Run(self, underlying, entry)
        states, bars_out, ticks = self._feed(run, entry.bars, symbol == underlying, records)
        new = ChainEntry(position[0], position[1], states, run.slot_states())
        self.decoded[underlying] = (new, run.states)
        published = [bar for bar in bars_out if bar.interval_ns in self._publish]
        return ChainOutcome(new, published, run.signals, ticks)

    def _feed(
        self, run: _Run, states: tuple[BarState, ...], own: bool, records: bytes
    ) -> tuple[tuple[BarState, ...], list[Bar], int]:
        """Dispatch a run's records to the strategies; the new bar states, bars, ticks."""
        rtype = records[1]
        if rtype == _DEFINITION:
            for defn in tdbn.to_instruments(records):
                run.call("on_definition", defn, max(defn.ts_event, defn.ts_recv))
            return states, [], 0
        if own and rtype == _TRADES:
            trades = tdbn.to_trades(records)
            new_states, bars = self._bars_then_ticks(run, states, trades)
            return new_states, bars, len(trades)
        if own and rtype in tdbn.OHLCV_INTERVALS_NS:
            for bar in tdbn.to_bars(records):
                run.call("on_bar", bar, bar.ts_close)
            return states, [], 0
        ticks: list[Trade | Quote] = []
        if rtype in tdbn.QUOTE_RTYPES:
            ticks += tdbn.to_quotes(records)
        elif rtype == _TRADES:
            ticks += tdbn.to_trades(records)
        for tick in ticks:
            run.call("on_tick", tick, max(tick.ts_event, tick.ts_recv))
        return states, [], len(ticks)

    def _bars_then_ticks(
        self, run: _Run, stored: tuple[BarState, ...], trades: list[Trade]
    ) -> tuple[tuple[BarState, ...], list[Bar]]:
        by_interval = {state.interval_ns: state for state in stored}
        builders = [
            BarBuilder(i) if i not in by_interval else BarBuilder.from_state(by_interval[i])
            for i in self.intervals(run.underlying)
        ]
        out: list[Bar] = []
        for trade in trades:
            for builder in builders:
                for bar in builder.add(trade.ts_event, trade.price, trade.size):
                    out.append(bar)
                    run.call("on_bar", bar, bar.ts_close, builder.interval_ns)
            run.call("on_tick", trade, max(trade.ts_event, trade.ts_recv))
        return tuple(b.to_state() for b in builders), out
