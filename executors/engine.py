"""The executor's core: signals to orders through the ledger, risk and the broker, and back.

No Kafka here (the service feeds it decoded signals and control commands and publishes the
ledger's outbox); one thread; the ledger is the truth and the in-memory maps are its cache.

For each signal: net the target against the position and working orders (`netting`), check
the first leg against risk, write the signal and every leg in one ledger transaction (leg 0 as
PENDING_SUBMIT: write-ahead), then submit, then record the answer. A lost answer makes the order
UNKNOWN: while it is, its symbol takes no new order (risk `unresolved_order`), and it is
resolved by looking it up. A venue's order list can lag its accept by seconds, so "not found"
is believed only once the settle window has passed since the order was sent (the send time is
in the ledger, so a restart does not shorten it); only then is the order sent again, at most
`max_sends` times in all, after which it is rejected and said so. A send asks the venue once
and resolving sends at most once, so the two cannot recurse.

The venue pushes order statuses and fills (`take_updates`, every round); fills by cursor
(`sync_fills`) are the fallback reconciliation reads, for what a stream missed. Either way a
fill is matched to its order by client order id, or else by the venue's order id (a fill
naming an order the ledger cannot place yet waits for the next round), counted once by fill
id, and written with the order and holding in one transaction; a filled leg releases the next
leg of a two-step reversal (`netting.release_legs`), from the ledger, so a crash in between is
resumed by reconciliation.
"""

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import msgspec

from executors import order_state
from executors.brokers.base import (
    AmbiguousAnswerError,
    Broker,
    BrokerError,
    SubmitsMany,
    TradingPermit,
    VenueOrder,
)
from executors.brokers.base import VenueStatus as V
from executors.controls import KillSwitchBook, in_scope, strictest
from executors.ledger import Ledger
from executors.metrics import ExecutorMetrics
from executors.netting import (
    COMBO_CAPS,
    ComboError,
    check_combo,
    combo_position,
    orders_for_signal,
    pending_quantity,
    refusal,
    release_legs,
)
from executors.order_state import TERMINAL, E, IllegalTransition, OrderEvent
from executors.positions import Holding, apply_fill, open_holding
from executors.pricing import OrderStyle, Unpriced, price_order
from executors.risk import (
    RATE_WINDOW_NS,
    Rejected,
    RejectReason,
    RiskContext,
    RiskLimits,
    check_order,
    daily_pnl,
)
from executors.routing import Route
from ticklane import ids
from ticklane.control import ControlAction, ControlCommand, KillSwitchState
from ticklane.trading import ComboLeg, Fill, Order, OrderStatus, OrderType, Signal
from ticklane.units import PRICE_SCALE

log = logging.getLogger(__name__)

DAY_NS: Final = 86_400 * 1_000_000_000
S = OrderStatus

FINISHED_KEPT: Final = 10_000
"""Finished orders kept in memory: a venue's pushes about an order that just filled (its
status after the fill) are answered without reading the ledger."""
_VENUE_EVENTS: Final = {
    V.ACCEPTED: E.ACCEPTED,
    # Fill statuses move the order only through the fills themselves (order_state docstring).
    V.PARTIALLY_FILLED: E.ACCEPTED,
    V.FILLED: E.ACCEPTED,
    V.CANCELLED: E.CANCELLED,
    V.REJECTED: E.REJECTED,
    V.EXPIRED: E.EXPIRED,
}
_STATE_LEVELS: Final = {
    KillSwitchState.ACTIVE: 0,
    KillSwitchState.REDUCING: 1,
    KillSwitchState.HALTED: 2,
}
_LOOKED_UP: Final = frozenset({S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
_FLATTEN: Final = "flatten "
"""How a flatten's signal reason begins (it is priced in the default style, to trade now)."""
_CANCELLABLE: Final = frozenset({S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
_CANCEL_AGAIN_NS: Final = 1_000_000_000
"""A cancel not settled this long after it was asked (and the settle window) is asked again."""


class EngineConfig(msgspec.Struct, frozen=True):
    """Risk limits and contract multipliers."""

    limits: RiskLimits
    multipliers: dict[str, int] = msgspec.field(default_factory=dict)
    default_multiplier: int = 1
    settle_ns: int = 10_000_000_000
    """How long after a send a venue's "no such order" is believed (its lists may lag)."""
    max_sends: int = 3
    """Sends of one order in all (the first and the resends after settled "not found"s)."""
    route: Route = Route()
    """The strategies and symbols this executor trades; other signals are left alone."""
    halt_on_foreign_positions: bool = False
    """Whether a venue position in a symbol this executor never traded halts trading."""
    style: OrderStyle = OrderStyle()
    """Market or marketable limit, and the time in force: every strategy's unless `styles`
    names it, and always a flatten's (which must trade now)."""
    styles: dict[str, OrderStyle] = msgspec.field(default_factory=dict)
    """Per strategy: any style, resting limits and stops included."""
    tick_sizes: dict[str, int] = msgspec.field(default_factory=dict)
    """Tick size per symbol (1e-9 units) where the venue does not say."""

    def multiplier(self, symbol: str) -> int:
        """Contract multiplier of a symbol."""
        return self.multipliers.get(symbol, self.default_multiplier)

    def style_for(self, strategy: str) -> OrderStyle:
        """How a strategy's orders are sent."""
        return self.styles.get(strategy, self.style)


class Engine:
    """Signals in, orders out, fills back; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        config: EngineConfig,
        metrics: ExecutorMetrics | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.config = config
        self.metrics = metrics or ExecutorMetrics()
        for reason in RejectReason:  # at 0 from the start, so a first reject is an increase
            self.metrics.rejects.labels(reason.value)
        self.kill_switch = KillSwitchBook()
        self.halted_reason = ""
        """Set while a reconciliation mismatch halts trading."""
        self.venue_permit = TradingPermit()
        """What the venue allows now (`refresh_venue_permit`): e.g. REDUCING while a login
        nears its expiry."""
        self._clock = clock
        self._orders: dict[str, Order] = {}
        self._finished: dict[str, Order] = {}
        """The newest orders that finished, as last written (`FINISHED_KEPT`, oldest out)."""
        self._by_key: dict[tuple[str, str], dict[str, Order]] = {}
        """The unfinished orders again, by strategy and symbol (netting and risk read these)."""
        self._holdings: dict[tuple[str, str], Holding] = {}
        self._marks: dict[str, int] = {}
        self._submits: deque[int] = deque()
        self._cursor = 0
        self._day = -1
        self._day_pnl = 0
        self._origin: dict[str, int] = {}
        self._unknown: dict[str, frozenset[str]] = {}
        """Client order id -> symbols of every UNKNOWN order (risk and the gauge read it)."""
        self._by_venue: dict[str, str] = {}
        """Venue order id -> client order id of the unfinished orders (what pushes name)."""
        self._orphans: list[Fill] = []
        """Pushed fills whose order could not be found yet (module docstring)."""
        self._waiting: set[str] = set()
        """UNKNOWN orders whose "not found yet" was logged (once per order, not per lookup)."""
        self._deferred: dict[tuple[str, str], Signal] = {}
        """Per strategy and symbol, the signal waiting for resting orders to be cancelled."""
        self._cancel_asked: dict[str, int] = {}
        """Orders this process asked the venue to cancel, and when (asked again only after
        the settle window: a lost cancel may never have reached the venue)."""

    # --- start

    def load(self) -> None:
        """Read the ledger's state into memory (no broker calls)."""
        self._orders, self._by_key, self._unknown, self._by_venue = {}, {}, {}, {}
        self._finished = {}
        for order in self.ledger.unfinished_orders():
            self._keep(order)
        self._holdings = {
            (h.position.strategy, h.position.symbol): h for h in self.ledger.holdings()
        }
        for holding in self._holdings.values():
            self._publish_position(holding)
        # Without marks, a leg released after a restart (the open of a two-step whose close
        # filled before the crash) could not be valued by risk, and would be refused.
        self._marks = self.ledger.last_prices()
        self._cursor = self.ledger.cursor()
        self._deferred = {(s.strategy, s.symbol): s for s in self.ledger.deferred_signals()}
        self._cancel_asked = {}
        now = self._clock()
        self._submits = deque(sorted(self.ledger.recent_submits(now - RATE_WINDOW_NS)))
        self._day = -1

    def refresh_venue_permit(self) -> TradingPermit:
        """Ask the venue what it allows now; a change is logged with the venue's reason."""
        permit = self.broker.trading_state()
        if permit != self.venue_permit:
            level = logging.INFO if permit.state is KillSwitchState.ACTIVE else logging.ERROR
            log.log(level, "%s: trading %s: %s", self.broker.name, permit.state, permit.reason)
            self.venue_permit = permit
            self.metrics.venue_state.set(_STATE_LEVELS[permit.state])
        return permit

    # --- signals and control

    def on_signal(self, signal: Signal, origin_ns: int | None = None) -> bool:
        """Answer a signal; False if the ledger had it already (a replay) or it is not routed
        to this executor. Priced in its strategy's style; a flatten in the default one."""
        return self.on_signals([(signal, origin_ns)]) == 1

    def on_signals(self, signals: Sequence[tuple[Signal, int | None]]) -> int:
        """Answer a batch of signals, each with the wall ns it originated at (or None), in
        order; how many were answered (`on_signal`). Every decision is written in one ledger
        transaction before any of their orders is sent; the orders are then sent together
        (`SubmitsMany`) and their answers written in one more (module docstring)."""
        answered = self.send_signals(signals)
        self.take_updates()
        return answered

    def send_signals(self, signals: Sequence[tuple[Signal, int | None]]) -> int:
        """`on_signals` up to the orders sent and their answers written, leaving what the
        venue pushed meanwhile (fills) for `take_updates`: the service answers the signals
        that arrived during a batch before it books the batch's fills."""
        due: list[Order] = []
        with self.ledger.batch():
            answered = sum(self._answer(signal, origin, due) for signal, origin in signals)
        self._send_all(due)
        return answered

    def _answer(self, signal: Signal, origin_ns: int | None, due: list[Order]) -> bool:
        """Decide and record one signal of a batch; its orders to send go on `due`."""
        symbols = [leg.symbol for leg in signal.legs] or [signal.symbol]
        if not all(self.config.route.covers(signal.strategy, symbol) for symbol in symbols):
            self.metrics.signals.labels("not_routed").inc()
            return False
        key = (signal.strategy, signal.symbol)
        working = list(self._by_key.get(key, {}).values())
        flatten = signal.reason.startswith(_FLATTEN)
        style = self.config.style if flatten else self.config.style_for(signal.strategy)
        if any(
            o.signal_id != signal.signal_id and o.order_type is not OrderType.MARKET
            for o in working
        ):
            # A limit or a stop may never trade: it is cancelled before this signal is netted.
            return self._defer(key, signal)
        try:
            position = self._position_of(signal.strategy, signal.symbol, signal.legs)
        except ComboError as exc:
            # Recorded as a rejection, so the signal has its answer and says why.
            self.metrics.rejects.labels("bad_combination").inc()
            refused = self._event(refusal(signal, signal.ts_event), E.REJECTED, f"combo: {exc}")
            decided = [refused]
        else:
            caps = COMBO_CAPS if signal.legs else self.broker.caps_for(signal.symbol)
            planned = orders_for_signal(
                signal, position, pending_quantity(working), caps, signal.ts_event
            )
            if signal.reference_price is not None:
                self._marks.setdefault(signal.symbol, signal.reference_price)
            decided = self._progress(planned, signal.reference_price, signal.ts_event, style)
        if not self.ledger.record_signal(signal, decided, self._clock()):
            self.metrics.signals.labels("duplicate").inc()
            return False
        self.metrics.of(self.metrics.signals, "answered" if decided else "no_change").inc()
        if signal.reference_price is not None:
            self._marks[signal.symbol] = signal.reference_price
        self._recorded(decided, origin_ns, due)
        return True

    def _recorded(self, decided: list[Order], origin_ns: int | None, due: list[Order]) -> None:
        """Keep a recorded signal's orders in memory; those to send now go on `due`."""
        for order in decided:
            self._count(order)
            if order.status not in TERMINAL:
                self._keep(order)
            if origin_ns is not None:
                self._origin[order.client_order_id] = origin_ns
        due.extend(order for order in decided if order.status is S.PENDING_SUBMIT)

    def on_control(self, command: ControlCommand) -> None:
        """A kill switch state, or a flatten of every position in the command's scope."""
        state = self.kill_switch.apply(command)
        if state is not None:
            self.metrics.kill_switch.labels(command.strategy, command.symbol).set(
                _STATE_LEVELS[state]
            )
            log.warning(
                "kill switch %s for %r/%r", command.kill_switch, command.strategy, command.symbol
            )
            return
        if command.action is not ControlAction.FLATTEN:
            return
        # A multi-leg position is flattened leg by leg (each leg is a holding of its own).
        singles = (o for o in self._orders.values() if not o.legs)
        keys = set(self._holdings) | {(o.strategy, o.symbol) for o in singles}
        for strategy, symbol in sorted(keys):
            if not in_scope(command, strategy, symbol):
                continue
            holding = self._holdings.get((strategy, symbol))
            ts = holding.position.ts_event if holding else command.ts_event
            flat = Signal(
                signal_id=ids.deterministic_id(
                    "sig", "flatten", command.command_id, strategy, symbol
                ),
                strategy=strategy,
                symbol=symbol,
                ts_event=ts,
                sequence=0,
                target_position=0,
                reference_price=self._marks.get(symbol),
                reason=f"{_FLATTEN}{command.command_id}",
            )
            self.on_signal(flat)

    # --- deciding legs

    def _progress(
        self, legs: list[Order], price: int | None, market_ts: int, style: OrderStyle
    ) -> list[Order]:
        """Legs after deciding the unsent ones: risk-check the next one, abandon stale ones."""
        current = {o.client_order_id: o for o in legs}
        for _ in range(len(legs) + 1):
            release = release_legs(list(current.values()))
            if not release.send and not release.abandon:
                break
            for order in release.abandon:
                current[order.client_order_id] = self._event(
                    order, E.CANCEL_REQUESTED, "abandoned: an earlier leg did not fill"
                )
            for order in release.send:
                current[order.client_order_id] = self._decide(order, price, market_ts, style)
            if release.send and all(
                current[o.client_order_id].status is S.PENDING_SUBMIT for o in release.send
            ):
                break
        return sorted(current.values(), key=lambda o: o.leg)

    def _decide(self, order: Order, price: int | None, market_ts: int, style: OrderStyle) -> Order:
        """A leg priced in `style` and risk-checked: to send, or rejected."""
        priced = self._priced(order, price, style)
        if isinstance(priced, Unpriced):
            self.metrics.rejects.labels(RejectReason.NO_PRICE.value).inc()
            return self._event(order, E.REJECTED, f"risk {RejectReason.NO_PRICE}: {priced.reason}")
        decision = self._check(priced, price, market_ts)
        if isinstance(decision, Rejected):
            self.metrics.rejects.labels(decision.reason.value).inc()
            reason = f"risk {decision.reason.value}: {decision.detail}"
            return self._event(priced, E.REJECTED, reason)
        return self._event(priced, E.SUBMIT_REQUESTED)

    def _priced(self, order: Order, price: int | None, style: OrderStyle) -> Order | Unpriced:
        reference = price if price is not None else self._marks.get(order.symbol)
        tick = None
        if style.kind != "market" and reference is not None:
            # A combination's net price moves by its legs' tick (the first leg's, as venues
            # price a spread in the tick of its options).
            symbol = order.legs[0].symbol if order.legs else order.symbol
            tick = self.broker.tick_size(symbol, abs(reference))
            tick = tick or self.config.tick_sizes.get(symbol)
        return price_order(order, style, reference, tick)

    def _check(self, order: Order, price: int | None, market_ts: int) -> Rejected | None:
        key = (order.strategy, order.symbol)
        others = [o for o in self._by_key.get(key, {}).values() if o.signal_id != order.signal_id]
        now = self._clock()
        while self._submits and self._submits[0] <= now - RATE_WINDOW_NS:
            self._submits.popleft()
        state = strictest(
            self.kill_switch.state_for(order.strategy, order.symbol), self.venue_permit.state
        )
        if self.halted_reason:
            state = KillSwitchState.HALTED
        ctx = RiskContext(
            now=now,
            position=self._position_of(order.strategy, order.symbol, order.legs),
            pending=pending_quantity(others),
            kill_switch=state,
            day_pnl=self.day_pnl(market_ts),
            recent_submits=self._window(),
            price=price if price is not None else self._marks.get(order.symbol),
            multiplier=self.config.multiplier(order.legs[0].symbol if order.legs else order.symbol),
            unresolved=tuple(c for c, s in self._unknown.items() if s & _touched(order)),
            state_reason=self.venue_permit.reason,
        )
        decision = check_order(order, ctx, self.config.limits)
        if isinstance(decision, Rejected):
            return decision
        self._submits.append(now)
        return None

    def _window(self) -> tuple[int, ...]:
        """Submit stamps for the rate check, cheaply: every stamp kept is inside the window, so
        the check's verdict depends only on whether there are `limit` of them; pass none below
        that and the newest `limit` at or above it (same verdict, O(1) in the usual case)."""
        limit = self.config.limits.max_orders_per_minute
        if len(self._submits) < limit:
            return ()
        return tuple(self._submits)[-limit:] if limit else ()

    def day_pnl(self, market_ts: int) -> int:
        """The PnL of the market day of `market_ts`, from the ledger's fills (then kept current)."""
        day = market_ts // DAY_NS
        if day != self._day:
            fills = self.ledger.fills()
            multipliers = {f.symbol: self.config.multiplier(f.symbol) for f in fills}
            self._day_pnl = daily_pnl(fills, day_start=day * DAY_NS, multipliers=multipliers)
            self._day = day
        return self._day_pnl

    # --- sending and answers

    def _send(self, order: Order) -> None:
        """Submit a PENDING_SUBMIT order already in the ledger; record the answer, or ask once."""
        self._answered(order, _submitted(self.broker, order))

    def _send_all(self, orders: list[Order]) -> None:
        """Send orders already written ahead, together where the venue takes many at once, and
        write their answers in one transaction. Nothing here writes an order and sends it
        (a lost answer is only looked up), so a crash before that commit leaves the orders as
        sent with their answers lost, which the restart resolves by lookup."""
        if not orders:
            return
        with self.ledger.batch():
            if len(orders) > 1 and isinstance(self.broker, SubmitsMany):
                for order, outcome in zip(orders, self.broker.submit_all(orders), strict=True):
                    self._answered(order, outcome)
            else:
                for order in orders:
                    self._send(order)

    def _answered(self, order: Order, answer: VenueOrder | BrokerError) -> None:
        """Record a submit's outcome: the venue's answer, a refusal, or a lost answer (asked
        once by lookup, never sent again from here)."""
        if isinstance(answer, AmbiguousAnswerError):
            log.warning("submit of %s: %s; resolving by lookup", order.client_order_id, answer)
            self.metrics.ambiguous.inc()
            self._resolve(self._save(self._event(order, E.ANSWER_LOST)), may_resend=False)
            return
        if isinstance(answer, BrokerError):
            self._save(self._event(order, E.REJECTED, f"broker: {answer}"))
            return
        origin = self._origin.pop(order.client_order_id, None)
        if origin is not None:
            self.metrics.latency.observe(max(self._clock() - origin, 0) / 1e9)
        self._apply_answer(order, answer)

    def _resolve(self, order: Order, *, may_resend: bool) -> None:
        """Settle an UNKNOWN order by looking it up; resend only on a settled "not found"."""
        cid = order.client_order_id
        try:
            answer = self.broker.lookup(cid)
        except AmbiguousAnswerError as exc:
            log.warning("lookup of %s failed (%s); will ask again", cid, exc)
            return
        if answer is not None:
            self._apply_answer(order, answer)
            return
        sent = self.ledger.send_state(cid)
        sends, sent_at = (sent.sends, sent.submitted_at or 0) if sent is not None else (0, 0)
        waited = self._clock() - sent_at
        if not may_resend or waited < self.config.settle_ns:
            if cid not in self._waiting:
                self._waiting.add(cid)
                log.warning(
                    "%s %s: the venue does not show it %.1fs after it was sent; %s stops trading"
                    " until the venue shows it or %.1fs have passed",
                    order.symbol,
                    cid,
                    waited / 1e9,
                    order.symbol,
                    self.config.settle_ns / 1e9,
                )
            return
        if sends >= self.config.max_sends:
            log.error(
                "%s %s: not at the venue %.1fs after send %d of %d; rejected, not sent again",
                order.symbol,
                cid,
                waited / 1e9,
                sends,
                self.config.max_sends,
            )
            self.metrics.errors.labels("never_reached_venue").inc()
            reason = f"the venue never received it ({sends} sends)"
            self._save(self._event(order, E.REJECTED, reason))
            return
        log.warning(
            "%s %s: not at the venue %.1fs after it was sent; sending it again (send %d of %d)",
            order.symbol,
            cid,
            waited / 1e9,
            sends + 1,
            self.config.max_sends,
        )
        resend = self._event(order, E.RESOLVED_NOT_FOUND)
        self._send(self._save(resend, submitted_at=self._clock()))

    def resolve_unknown(self) -> int:
        """Look up every UNKNOWN order (resending settled "not found"s); how many remain."""
        for cid in list(self._unknown):
            order = self._orders.get(cid)
            if order is not None and order.status is S.UNKNOWN:
                self._resolve(order, may_resend=True)
        return len(self._unknown)

    @property
    def unresolved(self) -> int:
        """How many orders are UNKNOWN now."""
        return len(self._unknown)

    def _apply_answer(self, order: Order, answer: VenueOrder) -> None:
        """Record what the venue says of an order (a submit's answer or a lookup's)."""
        current = self._orders.get(order.client_order_id, order)
        events: list[OrderEvent] = []
        if current.status is S.UNKNOWN:
            events.append(E.RESOLVED_SUBMITTED)
        elif current.status is S.PENDING_SUBMIT:
            events.append(E.SUBMIT_SENT)
        events.append(_VENUE_EVENTS[answer.status])
        updated = current
        for event in events:
            updated = self._event(updated, event, answer.reason)
        if not updated.venue_order_id and answer.venue_order_id:
            updated = msgspec.structs.replace(updated, venue_order_id=answer.venue_order_id)
        if updated != current:
            self._save(updated)

    def _event(self, order: Order, event: OrderEvent, reason: str = "") -> Order:
        try:
            applied = order_state.apply_event(order, event, reason=reason)
        except IllegalTransition as exc:
            log.error("%s: %s", order.client_order_id, exc)  # noqa: TRY400 - expected, no trace
            self.metrics.errors.labels("illegal_transition").inc()
            return order
        if applied.ignored is not None:
            self.metrics.of(self.metrics.ignored, applied.ignored.value).inc()
        return applied.order

    def _save(self, order: Order, *, submitted_at: int | None = None) -> Order:
        self.ledger.save_order(order, submitted_at=submitted_at)
        self._remember(order)
        return order

    def _remember(self, order: Order) -> None:
        previous = self._orders.get(order.client_order_id)
        if previous is None or previous.status is not order.status:
            self._count(order)
        if order.status is not S.UNKNOWN and order.client_order_id in self._unknown:
            del self._unknown[order.client_order_id]
            self._waiting.discard(order.client_order_id)
            self.metrics.unresolved.set(len(self._unknown))
        if order.status in TERMINAL:
            self._by_venue.pop(order.venue_order_id, None)
            self._orders.pop(order.client_order_id, None)
            self._by_key.get((order.strategy, order.symbol), {}).pop(order.client_order_id, None)
            self._finished[order.client_order_id] = order
            if len(self._finished) > FINISHED_KEPT:
                del self._finished[next(iter(self._finished))]
        else:
            self._keep(order)

    def _keep(self, order: Order) -> None:
        self._orders[order.client_order_id] = order
        self._by_key.setdefault((order.strategy, order.symbol), {})[order.client_order_id] = order
        if order.venue_order_id:
            self._by_venue[order.venue_order_id] = order.client_order_id
        if order.status is S.UNKNOWN and order.client_order_id not in self._unknown:
            self._unknown[order.client_order_id] = _touched(order)
            self.metrics.unresolved.set(len(self._unknown))

    def _count(self, order: Order) -> None:
        self.metrics.of(self.metrics.orders, order.status.value).inc()

    # --- fills

    def take_updates(self) -> int:
        """Apply what the venue pushed (statuses and fills); release legs the fills complete."""
        updates = self.broker.updates()
        if self._orphans:
            # Fills that named an order the ledger could not place yet (its venue id arrives
            # with the answer or a lookup): try them again after what just arrived.
            updates, self._orphans = [*updates, *self._orphans], []
        completed: list[str] = []
        # One commit for all of them; the legs they release are written and sent after it.
        with self.ledger.batch():
            for update in updates:
                if isinstance(update, VenueOrder):
                    self._on_venue_order(update)
                else:
                    signal_id = self._take_fill(update, None)
                    if signal_id:
                        completed.append(signal_id)
        for signal_id in completed:
            self.release(signal_id)
        self.resume_deferred()
        return len(updates)

    def _on_venue_order(self, update: VenueOrder) -> None:
        cid = update.client_order_id or self._by_venue.get(update.venue_order_id, "")
        order = self._known(cid) if cid else None
        order = order or self.ledger.order_by_venue_id(update.venue_order_id)
        if order is None:
            log.warning(
                "the venue pushed order %s (%r), which the ledger does not hold",
                update.venue_order_id,
                update.client_order_id,
            )
            self.metrics.errors.labels("foreign_order").inc()
            return
        self._apply_answer(order, update)

    def sync_fills(self) -> int:
        """Pull the broker's fills after the cursor (the fallback for pushed ones); release legs."""
        completed: list[str] = []
        new = self.broker.fills_since(self._cursor)
        for venue_fill in new:
            signal_id = self._take_fill(venue_fill.fill, venue_fill.cursor)
            if signal_id:
                completed.append(signal_id)
            self._cursor = venue_fill.cursor
        for signal_id in completed:
            self.release(signal_id)
        if self._orphans:
            for fill in self._orphans:
                log.error(
                    "fill %s names venue order %r, which the ledger does not hold",
                    fill.fill_id,
                    fill.venue_order_id,
                )
                self.metrics.errors.labels("foreign_fill").inc()
            self._orphans = []
        return len(new)

    def _take_fill(self, fill: Fill, cursor: int | None) -> str:
        """Count one fill once (pushed: `cursor` None); the signal id if it completed its order.
        A fill counted before (pushed and polled, or pushed twice) is found by the ledger's
        write refusing it, or, where the order cannot take it again, by asking the ledger."""
        order = self._order_of(fill)
        if order is None:
            return self._unplaced(fill, cursor)
        fill = msgspec.structs.replace(
            fill,
            client_order_id=order.client_order_id,
            strategy=order.strategy,
            instrument_id=order.instrument_id,
        )
        leg = next((leg for leg in order.legs if leg.symbol == fill.symbol), None)
        if leg is not None:
            fill = msgspec.structs.replace(fill, instrument_id=leg.instrument_id)
        try:
            updated = self._filled(order, fill)
        except (order_state.OverfillError, order_state.BadFillError, IllegalTransition) as exc:
            if not self.ledger.has_fill(fill.fill_id):  # else: counted before
                log.error("fill %s cannot be counted: %s", fill.fill_id, exc)  # noqa: TRY400
                self.metrics.errors.labels("bad_fill").inc()
            return self._passed(cursor)
        # A leg of a multi-leg order is held in its own symbol, like any other fill.
        key = (order.strategy, fill.symbol)
        before = self._holdings.get(key) or open_holding(*key, instrument_id=fill.instrument_id)
        after = apply_fill(before, fill, self.config.multiplier(fill.symbol))
        if not self.ledger.save_fill(fill, updated, after, cursor):
            return ""
        self._remember(updated)
        self._holdings[key] = after
        self._mark(updated, fill)
        if fill.ts_event // DAY_NS == self._day:
            self._day_pnl += after.position.realized_pnl - before.position.realized_pnl
        self._publish_position(after)
        return self._releasing(updated)

    def _unplaced(self, fill: Fill, cursor: int | None) -> str:
        """A fill whose order is not found: counted before, kept to try again after the next
        updates (pushed: its order's venue id may come with them), or foreign (polled)."""
        if self.ledger.has_fill(fill.fill_id):
            return self._passed(cursor)  # counted before
        if cursor is None:
            self._orphans.append(fill)
            return ""
        log.error(
            "fill %s is for %s (venue order %r), which the ledger does not hold",
            fill.fill_id,
            fill.client_order_id,
            fill.venue_order_id,
        )
        self.metrics.errors.labels("foreign_fill").inc()
        return self._passed(cursor)

    def _passed(self, cursor: int | None) -> str:
        """A fill not counted now: a polled one's cursor moves past it all the same."""
        if cursor is not None:
            self.ledger.set_cursor(cursor)
        return ""

    def _releasing(self, order: Order) -> str:
        """The signal id of a filled order whose signal has legs left to send, else "".
        Only a signal answered in steps has: NEW legs, kept in memory under the signal's
        strategy and symbol like every unfinished order (no ledger read per fill)."""
        if order.status is not S.FILLED:
            return ""
        rest = self._by_key.get((order.strategy, order.symbol), {}).values()
        if any(o.signal_id == order.signal_id and o.status is S.NEW for o in rest):
            return order.signal_id
        return ""

    def _mark(self, order: Order, fill: Fill) -> None:
        """The last prices after a fill: the symbol's, and a combination's net average."""
        self._marks[fill.symbol] = fill.price
        if order.legs and order.filled_quantity:
            self._marks[order.symbol] = order.filled_notional // order.filled_quantity

    def _filled(self, order: Order, fill: Fill) -> Order:
        """The order with one more fill counted (a multi-leg order's by units of it)."""
        if order.legs:
            earlier = self.ledger.fills_of_order(order.client_order_id)
            return order_state.apply_leg_fill(order, fill, earlier)
        return order_state.apply_fill(order, fill, frozenset()).order

    def _order_of(self, fill: Fill) -> Order | None:
        """The order a fill is for: by client order id, else by the venue's order id."""
        cid = fill.client_order_id or self._by_venue.get(fill.venue_order_id, "")
        if cid:
            order = self._known(cid)
            if order is not None:
                return order
        return self.ledger.order_by_venue_id(fill.venue_order_id)

    def _known(self, cid: str) -> Order | None:
        """An order by client order id: from memory while unfinished or lately finished (a
        venue's status pushed after its fill names one), else from the ledger."""
        return self._orders.get(cid) or self._finished.get(cid) or self.ledger.order(cid)

    def release(self, signal_id: str) -> None:
        """Send (or abandon) a signal's next legs once the earlier ones have filled."""
        legs = self.ledger.orders_of_signal(signal_id)
        unsent = [o for o in legs if o.status is S.NEW]
        if not unsent:
            return
        mark = self._marks.get(unsent[0].symbol)
        style = self.config.style_for(unsent[0].strategy)
        decided = self._progress(legs, mark, max(o.ts_event for o in legs), style)
        now = self._clock()
        for before, after in zip(legs, decided, strict=True):
            if after != before:
                sent = now if after.status is S.PENDING_SUBMIT else None
                self._save(after, submitted_at=sent)
                if after.status is S.PENDING_SUBMIT:
                    self._send(after)

    # --- views

    def _position(self, key: tuple[str, str]) -> int:
        holding = self._holdings.get(key)
        return holding.position.quantity if holding else 0

    def _position_of(self, strategy: str, symbol: str, legs: tuple[ComboLeg, ...]) -> int:
        """A symbol's position, or the units of a combination its legs hold (`ComboError`
        when the legs are malformed or out of proportion)."""
        if not legs:
            return self._position((strategy, symbol))
        check_combo(legs)
        held = {leg.symbol: self._position((strategy, leg.symbol)) for leg in legs}
        return combo_position(legs, held)

    def _publish_position(self, holding: Holding) -> None:
        p = holding.position
        self.metrics.of(self.metrics.position, p.strategy, p.symbol).set(p.quantity)
        pnl = self.metrics.of(self.metrics.realized_pnl, p.strategy, p.symbol)
        pnl.set(p.realized_pnl / PRICE_SCALE)

    def open_orders(self) -> list[Order]:
        """Orders the ledger holds as unfinished."""
        return list(self._orders.values())

    def traded_symbols(self) -> set[str]:
        """Symbols this executor holds or has held a position in, or has orders working in."""
        working = {symbol for o in self._orders.values() for symbol in _touched(o)}
        return {symbol for _, symbol in self._holdings} | working

    def positions_by_symbol(self) -> dict[str, int]:
        """Net position per symbol across strategies, from the ledger."""
        totals: dict[str, int] = {}
        for (_, symbol), holding in self._holdings.items():
            totals[symbol] = totals.get(symbol, 0) + holding.position.quantity
        return {s: q for s, q in totals.items() if q}

    def holdings(self) -> Iterable[Holding]:
        """Every holding in memory."""
        return self._holdings.values()

    # --- reconciliation (see executors.reconcile for the policy)

    def resolve_open_orders(self) -> None:
        """Look up every unfinished order at the broker; UNKNOWN ones are settled by it."""
        for order in list(self._orders.values()):
            current = self._orders.get(order.client_order_id)
            if current is None:
                continue
            if current.status is S.PENDING_SUBMIT:
                # One thread: no submit is in flight now, so its answer was lost (a crash).
                current = self._save(self._event(current, E.ANSWER_LOST))
            if current.status is S.UNKNOWN:
                self._resolve(current, may_resend=True)
            elif current.status in _LOOKED_UP:
                answer = self.broker.lookup(current.client_order_id)
                if answer is None:
                    log.error(
                        "the venue does not know %s, which it acknowledged", current.client_order_id
                    )
                    self.metrics.errors.labels("venue_lost_order").inc()
                else:
                    self._apply_answer(current, answer)

    def release_pending_legs(self) -> None:
        """Send the unsent legs whose earlier legs have filled (a crash between two legs), and
        the deferred signals whose resting orders are done."""
        signals = {o.signal_id for o in self._orders.values() if o.status is S.NEW}
        for signal_id in sorted(signals):
            self.release(signal_id)
        self.resume_deferred()

    # --- resting orders and the signals that replace them

    def _defer(self, key: tuple[str, str], signal: Signal) -> bool:
        """Keep a signal until the key's resting orders are cancelled (or filled): netting
        against an order that may never trade would leave the position wrong when it does not,
        so the old orders go first and the signal is answered from what they left."""
        kept = self._deferred.get(key)
        if (kept is not None and kept.signal_id == signal.signal_id) or self.ledger.has_signal(
            signal.signal_id
        ):
            self.metrics.signals.labels("duplicate").inc()
            return False
        superseded = self.ledger.defer_signal(signal, self._clock())
        if superseded:
            log.info("%s %s: signal %s superseded by %s", *key, superseded, signal.signal_id)
            self.metrics.signals.labels("superseded").inc()
        self._deferred[key] = signal
        self.metrics.signals.labels("deferred").inc()
        # Resumed by the batch's `take_updates`, after its commit: cancelling the resting
        # orders now would call the venue with the batch's writes not yet durable.
        return True

    def resume_deferred(self) -> None:
        """Answer each deferred signal whose symbol has no other order left unfinished."""
        for key, signal in list(self._deferred.items()):
            # A venue that answers a cancel at once lets the signal go in the same round.
            self._cancel_resting(key, signal.signal_id)
            orders = self._by_key.get(key, {}).values()
            if any(o.signal_id != signal.signal_id for o in orders):
                continue
            del self._deferred[key]
            self.on_signal(signal)

    def _cancel_resting(self, key: tuple[str, str], keep: str) -> None:
        now = self._clock()
        again = max(self.config.settle_ns, _CANCEL_AGAIN_NS)
        for order in list(self._by_key.get(key, {}).values()):
            asked = self._cancel_asked.get(order.client_order_id)
            if (
                order.signal_id != keep
                and order.status in _CANCELLABLE
                and (asked is None or now - asked >= again)
            ):
                self._cancel(order)

    def _cancel(self, order: Order) -> None:
        """Ask the venue to cancel a working order once; lookups settle a lost answer."""
        cid = order.client_order_id
        self._cancel_asked[cid] = self._clock()
        pending = self._save(self._event(order, E.CANCEL_REQUESTED))
        try:
            answer = self.broker.cancel(cid)
        except AmbiguousAnswerError as exc:
            log.warning("cancel of %s: %s; the venue will be asked", cid, exc)
            return
        except BrokerError as exc:
            self._save(self._event(pending, E.CANCEL_REJECTED, f"broker: {exc}"))
            return
        if answer is None:
            log.warning("cancel of %s: the venue does not know it; looking it up", cid)
            return
        self._apply_answer(pending, answer)


def _submitted(broker: Broker, order: Order) -> VenueOrder | BrokerError:
    """The venue's answer to one submit, or the broker error it raised."""
    try:
        return broker.submit(order)
    except BrokerError as exc:
        return exc


def _touched(order: Order) -> frozenset[str]:
    """The symbols an order trades: its own, or its legs'."""
    return frozenset(leg.symbol for leg in order.legs) or frozenset((order.symbol,))
