"""0DTE: buy a call or a put expiring today on an EMA cross of the underlying; exit by rule.

One state per UNDERLYING. The driver routes to it, in data order, everything about that
underlying: its bars (`on_bar`), its quotes or trades and the quotes of its options
(`on_tick`), and the definitions of its options (`on_definition`); `on_time` lets it
pass the data time when nothing else arrives. Every call carries `Context.session`, the
exchange session from `ExchangeSessions` (the only code here that touches a calendar).

Rules:

* Contracts: calls and puts whose definition names this underlying (or none) and that
  expire in the context's session: on its date for venues that stamp only the date
  (OPRA's midnight UTC), else between its open and 12 hours after its close.
* Entry: when EMA(fast) crosses EMA(slow) on underlying bar closes (a change from above to
  below or back, not the first warm bar), buy `quantity` calls on a cross up or puts on a
  cross down, between the session's open and the exit time. The contract is picked among
  those with a two-sided quote, by moneyness (`strikes_otm`: 0 is the strike nearest the
  underlying, N the N-th out of the money) or by |delta| nearest `target_delta` (BSM with
  the volatility implied by the option's mid). The opposite cross while holding sells the
  held option first. Nothing is bought when no contract qualifies.
* Exits (target 0): the option's bid at or below entry ask - `stop_loss`; bid at or above
  entry ask + `take_profit` (0 disables either); and `cutoff_minutes` before the earlier
  of the session close and the option's expiration, tested on every call whatever it
  carries, so no position is held into expiry while data flows.
* Time is the data's: a bar's close, a tick's or definition's later of ts_event and
  ts_recv (in BBO schemas ts_event is the last trade's time, which can be hours old).
* Signals carry the OPTION's symbol and instrument id; several at one time (sell one
  option, buy another) take sequences 0, 1, ... so their ids differ.
"""

import copy
import datetime as dt
from decimal import Decimal
from typing import Annotated

import msgspec
import numpy as np

from agents.indicators import EMA
from agents.options import (
    DAY_NS,
    OptionContract,
    Right,
    select_by_delta,
    select_by_moneyness,
    year_fraction,
)
from agents.strategies.base import Context, Session, Step, Strategy, StrategyParams, StrategyState
from agents.ticks import Column, TickBatch
from ticklane import calendars
from ticklane.market import Bar, InstrumentClass, InstrumentDef, Quote, Trade
from ticklane.trading import Signal
from ticklane.units import UNDEF_PRICE, PriceError, decimal_to_price

MINUTE_NS = 60_000_000_000
_EPOCH = dt.date(1970, 1, 1)
# An intraday expiration this long after the close still belongs to the session's day.
_EXPIRY_GRACE_NS = 12 * 3600 * 1_000_000_000

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PriceOffset = Annotated[float, msgspec.Meta(ge=0.0)]


class ZeroDteParams(StrategyParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Calendar, trigger EMAs, contract choice, size and exits (offsets in option price)."""

    calendar: str = "XNYS"
    """exchange_calendars name: XNYS for equity/index options, CMES for CME futures options."""
    fast: PositiveInt = 5
    slow: PositiveInt = 20
    quantity: PositiveInt = 1
    select: Annotated[str, msgspec.Meta(pattern="^(moneyness|delta)$")] = "moneyness"
    strikes_otm: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    target_delta: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.3
    stop_loss: PriceOffset = 0.0
    take_profit: PriceOffset = 0.0
    cutoff_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 15
    rate: Annotated[float, msgspec.Meta(ge=-0.1, le=1.0)] = 0.0
    """Risk-free rate a year, for implied volatility and delta."""

    def __post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        for name in ("stop_loss", "take_profit"):
            try:
                price_offset(getattr(self, name))
            except PriceError as exc:
                raise ValueError(f"{name}: {exc}") from None


def price_offset(value: float) -> int:
    """A price offset given in currency (1.25) as 1e-9 fixed point, exactly as written."""
    return decimal_to_price(Decimal(repr(value)))


class OptionQuote(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Last two-sided top of book of one option, 1e-9 prices."""

    bid: int
    ask: int


class Holding(msgspec.Struct, frozen=True):
    """The option held: what, how many, and the prices and time that end it."""

    contract: OptionContract
    quantity: int
    entry_price: int
    stop_price: int | None
    take_price: int | None
    exit_by: int
    """The cut-off: this many ns or later, the position is closed whatever the price."""


class ZeroDteState(StrategyState, frozen=True, kw_only=True):
    """Trigger EMAs, underlying price, today's chain and its quotes, the holding, sequences."""

    params: ZeroDteParams
    fast: EMA
    slow: EMA
    trend: int = 0
    """+1 fast above slow, -1 below, 0 not known yet."""
    spot: int | None = None
    underlying_id: int = 0
    chain_date: str = ""
    chain: dict[int, OptionContract] = msgspec.field(default_factory=dict)
    quotes: dict[int, OptionQuote] = msgspec.field(default_factory=dict)
    holding: Holding | None = None
    last_bar_ts: int = -1
    seq_ts: int = -1
    seq_next: int = 0


def is_zero_dte(expiration: int, session: Session) -> bool:
    """Whether an option with this expiration stamp expires in `session`'s day."""
    if expiration % DAY_NS == 0:  # a date-only stamp (OPRA): midnight UTC of the day
        day = _EPOCH + dt.timedelta(days=expiration // DAY_NS)
        return day.isoformat() == session.date
    return session.open_ns < expiration <= session.close_ns + _EXPIRY_GRACE_NS


def exit_time(expiration: int, session: Session, cutoff_ns: int) -> int:
    """When a position in the option must be gone: cut-off before close or expiry."""
    last = session.close_ns
    if expiration % DAY_NS:
        last = min(last, expiration)
    return last - cutoff_ns


class _Outbox:
    """Signals of one call, with sequences that keep ids distinct within one timestamp."""

    def __init__(self, strategy: str, state: ZeroDteState) -> None:
        self.strategy = strategy
        self.seq_ts, self.seq_next = state.seq_ts, state.seq_next
        self.signals: list[Signal] = []

    def emit(
        self, ts: int, contract: OptionContract, target: int, price: int | None, reason: str
    ) -> None:
        seq = self.seq_next if ts == self.seq_ts else 0
        self.seq_ts, self.seq_next = ts, seq + 1
        self.signals.append(
            Signal.create(
                self.strategy,
                contract.symbol,
                ts,
                target,
                sequence=seq,
                instrument_id=contract.instrument_id,
                reference_price=price,
                reason=reason,
            )
        )

    def finish(self, state: ZeroDteState) -> Step[ZeroDteState]:
        if self.signals:
            state = msgspec.structs.replace(state, seq_ts=self.seq_ts, seq_next=self.seq_next)
        return state, self.signals


class ZeroDte(Strategy[ZeroDteParams, ZeroDteState]):
    """Same-day options on an underlying; see the module docstring for the rules."""

    name = "zero_dte"
    params_type = ZeroDteParams
    state_type = ZeroDteState

    def initial_state(self, params: ZeroDteParams) -> ZeroDteState:
        """Flat, cold EMAs, no chain."""
        return ZeroDteState(params=params, fast=EMA(params.fast), slow=EMA(params.slow))

    def reconfigure(self, state: ZeroDteState, params: ZeroDteParams) -> ZeroDteState:
        """New rules apply to the next entry; a holding keeps the exits it was opened with."""
        fast = state.fast if params.fast == state.params.fast else EMA(params.fast)
        slow = state.slow if params.slow == state.params.slow else EMA(params.slow)
        # A new EMA must see a fresh cross; an old trend would fake one when it warms up.
        trend = state.trend if fast is state.fast and slow is state.slow else 0
        return msgspec.structs.replace(state, params=params, fast=fast, slow=slow, trend=trend)

    def on_definition(
        self, state: ZeroDteState, defn: InstrumentDef, ctx: Context
    ) -> Step[ZeroDteState]:
        """Add (or, on a delete, remove) an option of today's expiry to the chain."""
        out = _Outbox(self.name, state)
        state = self._time_exit(state, max(defn.ts_event, defn.ts_recv), out)
        session = ctx.session
        if defn.instrument_class not in (InstrumentClass.CALL, InstrumentClass.PUT):
            if defn.raw_symbol == ctx.symbol:
                state = msgspec.structs.replace(state, underlying_id=defn.instrument_id)
            return out.finish(state)
        if session is None or defn.underlying not in ("", ctx.symbol):
            return out.finish(state)
        if session.date != state.chain_date:
            state = _prune(state, session)
        chain = dict(state.chain)
        if defn.security_update_action == "D" or not is_zero_dte(defn.expiration, session):
            chain.pop(defn.instrument_id, None)
        else:
            chain[defn.instrument_id] = _contract(defn)
        underlying_id = state.underlying_id or defn.underlying_id
        state = msgspec.structs.replace(state, chain=chain, underlying_id=underlying_id)
        return out.finish(state)

    def on_bar(self, state: ZeroDteState, bar: Bar, ctx: Context) -> Step[ZeroDteState]:
        """Underlying bar: update the trigger EMAs; on a cross, switch to the matching option."""
        ts = bar.ts_close
        if ts <= state.last_bar_ts:
            return state, []
        out = _Outbox(self.name, state)
        state = self._time_exit(state, ts, out)
        fast, slow = copy.copy(state.fast), copy.copy(state.slow)
        f, s = fast.update(bar.close), slow.update(bar.close)
        trend = state.trend if f is None or s is None or f == s else (1 if f > s else -1)
        crossed = state.trend not in (0, trend)
        state = msgspec.structs.replace(
            state,
            fast=fast,
            slow=slow,
            trend=trend,
            spot=bar.close,
            underlying_id=bar.instrument_id or state.underlying_id,
            last_bar_ts=ts,
        )
        if crossed and ctx.session is not None:
            state = self._enter(state, Right.CALL if trend > 0 else Right.PUT, ts, ctx, out)
        return out.finish(state)

    def on_tick(self, state: ZeroDteState, tick: Trade | Quote, ctx: Context) -> Step[ZeroDteState]:
        """An option quote (stop and target are checked on it), or the underlying's price."""
        out = _Outbox(self.name, state)
        ts = max(tick.ts_event, tick.ts_recv)
        state = self._time_exit(state, ts, out)
        iid = tick.instrument_id
        if isinstance(tick, Quote) and iid in state.chain:
            quotes = dict(state.quotes)
            if _two_sided(tick):
                quotes[iid] = OptionQuote(tick.bid_px, tick.ask_px)
            else:
                quotes.pop(iid, None)  # a one-sided book: the old quote no longer holds
            state = msgspec.structs.replace(state, quotes=quotes)
            if state.holding is not None and state.holding.contract.instrument_id == iid:
                state = self._price_exit(state, tick, ts, out)
        elif iid == state.underlying_id and iid:
            spot = _underlying_price(tick)
            if spot is not None:
                state = msgspec.structs.replace(state, spot=spot)
        return out.finish(state)

    def on_ticks(self, state: ZeroDteState, ticks: TickBatch, ctx: Context) -> Step[ZeroDteState]:
        """Consecutive ticks at once: exactly `on_tick` on each in turn.

        Only a holding's exit can signal on a tick (entries come on bars), and it closes
        the holding, so at most one tick of a batch signals. That one is found with array
        operations and taken by `on_tick`; the ticks around it only move quotes and spot.
        """
        out: list[Signal] = []
        start = 0
        while start < len(ticks):
            stop = _first_exit(state, ticks, start)
            state = _absorb_quietly(state, ticks, start, stop)
            if stop < len(ticks):
                state, signals = self.on_tick(state, ticks.item(stop), ctx)
                out += signals
            start = stop + 1
        return state, out

    def on_time(self, state: ZeroDteState, ts: int, ctx: Context) -> Step[ZeroDteState]:
        """The data's time has reached `ts` with nothing else to say: apply the cut-off."""
        del ctx
        out = _Outbox(self.name, state)
        return out.finish(self._time_exit(state, ts, out))

    def _time_exit(self, state: ZeroDteState, ts: int, out: _Outbox) -> ZeroDteState:
        holding = state.holding
        if holding is None or ts < holding.exit_by:
            return state
        return _close(state, ts, out, "cut-off before close/expiry")

    def _price_exit(self, state: ZeroDteState, quote: Quote, ts: int, out: _Outbox) -> ZeroDteState:
        holding = state.holding
        if holding is None or quote.bid_px == UNDEF_PRICE:
            return state
        if holding.stop_price is not None and quote.bid_px <= holding.stop_price:
            return _close(state, ts, out, "stop-loss")
        if holding.take_price is not None and quote.bid_px >= holding.take_price:
            return _close(state, ts, out, "take-profit")
        return state

    def _enter(
        self, state: ZeroDteState, right: Right, ts: int, ctx: Context, out: _Outbox
    ) -> ZeroDteState:
        session = ctx.session
        if state.holding is not None:
            if state.holding.contract.right is right:
                return state
            state = _close(state, ts, out, "reverse on EMA cross")
        if session is None or state.spot is None or ts < session.open_ns:
            return state
        p = state.params
        pick = self._select(state, right, ts, session, state.spot)
        if pick is None:
            return state
        contract, reason = pick
        ask = state.quotes[contract.instrument_id].ask
        stop, take = price_offset(p.stop_loss), price_offset(p.take_profit)
        holding = Holding(
            contract=contract,
            quantity=p.quantity,
            entry_price=ask,
            stop_price=ask - stop if stop else None,
            take_price=ask + take if take else None,
            exit_by=exit_time(contract.expiration, session, p.cutoff_minutes * MINUTE_NS),
        )
        out.emit(ts, contract, p.quantity, ask, f"entry {right.name.lower()}: {reason}")
        return msgspec.structs.replace(state, holding=holding, target=p.quantity)

    def _select(
        self, state: ZeroDteState, right: Right, ts: int, session: Session, spot: int
    ) -> tuple[OptionContract, str] | None:
        p = state.params
        cutoff = p.cutoff_minutes * MINUTE_NS
        live = [
            c
            for c in state.chain.values()
            if c.instrument_id in state.quotes
            and is_zero_dte(c.expiration, session)
            and ts < exit_time(c.expiration, session, cutoff)
        ]
        if p.select == "moneyness":
            chosen = select_by_moneyness(live, right, spot, p.strikes_otm)
            return None if chosen is None else (chosen, f"{p.strikes_otm} strikes OTM")
        rows = [
            (c, _mid(state.quotes[c.instrument_id]), year_fraction(ts, _expiry(c, session)))
            for c in live
        ]
        picked = select_by_delta(rows, right, spot, p.target_delta, p.rate)
        if picked is None:
            return None
        contract, greeks = picked
        return contract, f"delta {greeks.delta:+.3f} at vol {greeks.vol:.3f}"


def _first_exit(state: ZeroDteState, ticks: TickBatch, start: int) -> int:
    """Index of the first tick from `start` on which `on_tick` would close the holding
    (its time at the cut-off, or a price exit on the held option's quote); len(ticks)
    if none would."""
    holding = state.holding
    end = len(ticks)
    if holding is None or start >= end:
        return end
    hits = ticks.ts[start:] >= max(holding.exit_by, 0)
    held = holding.contract.instrument_id
    stop, take = holding.stop_price, holding.take_price
    if held in state.chain and (stop is not None or take is not None):
        bid = ticks.bid_px[start:]
        priced = np.zeros(len(bid), dtype=bool)
        if stop is not None:
            priced |= bid <= stop
        if take is not None:
            priced |= bid >= take
        ours = ticks.quote[start:] & (ticks.instrument_id[start:] == held)
        hits |= priced & ours & (bid != UNDEF_PRICE)
    found = int(np.argmax(hits))
    return start + found if hits[found] else end


def _absorb_quietly(state: ZeroDteState, ticks: TickBatch, start: int, stop: int) -> ZeroDteState:
    """`on_tick` over ticks[start:stop], none of which closes the holding: the quotes of
    chain options replace (two-sided) or drop (one-sided) the ones held, in order, and the
    underlying's latest price (a trade's, or a two-sided quote's mid) becomes the spot."""
    if start >= stop:
        return state
    iid, quote = ticks.instrument_id[start:stop], ticks.quote[start:stop]
    bid, ask = ticks.bid_px[start:stop], ticks.ask_px[start:stop]
    two = quote & (bid != UNDEF_PRICE) & (ask != UNDEF_PRICE) & (bid > 0) & (bid <= ask)
    in_chain = quote & _isin(iid, state.chain)
    quotes = _quotes_after(state.quotes, iid, bid, ask, two, in_chain)
    spot = state.spot
    underlying = state.underlying_id
    if underlying:
        mine = ~in_chain & (iid == underlying)
        traded = ~quote & (ticks.price[start:stop] != UNDEF_PRICE)
        last = np.flatnonzero(mine & (two | traded))
        if len(last):
            at = start + int(last[-1])
            if ticks.quote[at]:
                spot = (int(ticks.bid_px[at]) + int(ticks.ask_px[at])) // 2
            else:
                spot = int(ticks.price[at])
    if quotes is state.quotes and spot == state.spot:
        return state
    return msgspec.structs.replace(state, quotes=quotes, spot=spot)


def _isin(ids: Column, chain: dict[int, OptionContract]) -> Column:
    """Which of `ids` are contracts of the chain."""
    known = np.fromiter(chain, dtype=np.int64, count=len(chain))
    found: Column = np.isin(ids, known)
    return found


def _quotes_after(  # noqa: PLR0917 - the columns of one batch
    quotes: dict[int, OptionQuote],
    iid: Column,
    bid: Column,
    ask: Column,
    two: Column,
    in_chain: Column,
) -> dict[int, OptionQuote]:
    """The option quotes after the chain's quotes among a batch, or `quotes` itself if
    there are none."""
    if not in_chain.any():
        return quotes
    quotes = dict(quotes)
    rows = zip(
        iid[in_chain].tolist(),
        bid[in_chain].tolist(),
        ask[in_chain].tolist(),
        two[in_chain].tolist(),
        strict=True,
    )
    # In order: a one-sided book drops a quote that a later two-sided one adds back, at
    # the end of the table, as `on_tick` does.
    for key, b, a, ok in rows:
        if ok:
            quotes[key] = OptionQuote(b, a)
        else:
            quotes.pop(key, None)
    return quotes


def _close(state: ZeroDteState, ts: int, out: _Outbox, reason: str) -> ZeroDteState:
    holding = state.holding
    if holding is None:
        return state
    quote = state.quotes.get(holding.contract.instrument_id)
    out.emit(ts, holding.contract, 0, None if quote is None else quote.bid, reason)
    return msgspec.structs.replace(state, holding=None, target=0)


def _prune(state: ZeroDteState, session: Session) -> ZeroDteState:
    """Forget contracts of other days, so the state stays the size of one day's chain."""
    chain = {k: c for k, c in state.chain.items() if is_zero_dte(c.expiration, session)}
    quotes = {k: q for k, q in state.quotes.items() if k in chain}
    return msgspec.structs.replace(state, chain=chain, quotes=quotes, chain_date=session.date)


def _contract(defn: InstrumentDef) -> OptionContract:
    right = Right.CALL if defn.instrument_class is InstrumentClass.CALL else Right.PUT
    return OptionContract(
        defn.instrument_id, defn.raw_symbol, right, defn.strike_price, defn.expiration
    )


def _expiry(contract: OptionContract, session: Session) -> int:
    return exit_time(contract.expiration, session, 0)


def _two_sided(q: Quote) -> bool:
    return UNDEF_PRICE not in (q.bid_px, q.ask_px) and 0 < q.bid_px <= q.ask_px


def _mid(q: OptionQuote) -> float:
    return (q.bid + q.ask) / 2


def _underlying_price(tick: Trade | Quote) -> int | None:
    if isinstance(tick, Trade):
        return None if tick.price == UNDEF_PRICE else tick.price
    return (tick.bid_px + tick.ask_px) // 2 if _two_sided(tick) else None


class ExchangeSessions:
    """Adapter from `exchange_calendars` to `Session` values: the one impure piece here.

    ``at(ts)`` is the session containing ts, or the next to open after it (so pre-open
    data already knows the day's close). Answers are cached while they stay valid, so a
    driver may ask on every record.
    """

    def __init__(self, calendar: str) -> None:
        self._calendar = calendars.exchange_calendar(calendar)
        self._cached: tuple[int, Session] | None = None

    def at(self, ts_ns: int) -> Session:
        """The session in force at `ts_ns` or, between sessions, the next one."""
        cached = self._cached
        # Times between a time that maps to S and S's close all map to S.
        if cached is not None and cached[0] <= ts_ns < cached[1].close_ns:
            return cached[1]
        minute = dt.datetime.fromtimestamp(ts_ns // MINUTE_NS * 60, tz=dt.UTC)
        with calendars.quiet():
            label = self._calendar.minute_to_session(minute, direction="next")
            session = self._session(label.strftime("%Y-%m-%d"))
        if cached is not None and session == cached[1]:
            # An earlier time of the same session (a bar's close after later ticks): the
            # answer holds from the earlier of the two times on.
            ts_ns = min(ts_ns, cached[0])
        self._cached = (ts_ns, session)
        return session

    def on(self, date: str) -> Session | None:
        """The session labelled `date` (ISO), or None on a holiday or weekend."""
        if not self._calendar.is_session(date):
            return None
        return self._session(date)

    def _session(self, date: str) -> Session:
        return Session(
            date=date,
            open_ns=int(self._calendar.session_open(date).value),
            close_ns=int(self._calendar.session_close(date).value),
        )
