"""`ticklane execute`: the Kafka shell around the engine.

Reads `control` to its end first (kill switch states, flattens), reconciles with the broker,
then consumes `signals`: each signal is written to the ledger (and answered) before its offset
is committed, so a crash replays signals the ledger then recognises (at-least-once in,
exactly-once effect out). The executor assigns itself every partition of `signals` and resumes
from its group's committed offsets: one executor owns an account's ledger, and a restart
resumes in a fraction of a second instead of waiting out a dead member's session. Events are
published from the ledger's outbox.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from executors.brokers.base import Broker
from executors.brokers.factory import build_broker
from executors.engine import Engine, EngineConfig
from executors.ledger import Ledger
from executors.metrics import ExecutorMetrics
from executors.pricing import OrderStyle
from executors.publication import Publication
from executors.reconcile import reconcile
from executors.risk import RiskLimits
from executors.routing import Route
from executors.stores import open_ledger
from ticklane import kafka, wire
from ticklane.beacon import Beacon, Report
from ticklane.cluster import Change, Finding
from ticklane.control import ControlAck, ControlAction, ControlCommand, KillSwitchState
from ticklane.dead_letters import send_dead_letter
from ticklane.lag import LagGauge
from ticklane.settings import OrderStyleSettings, Settings
from ticklane.status import ProcessState, instance_name
from ticklane.topics import resolve
from ticklane.trading import Signal, TimeInForce

log = logging.getLogger(__name__)

HALTED: Final = ProcessState.HALTED
DEGRADED: Final = ProcessState.DEGRADED

BATCH: Final = 1_000
"""Signals taken in one poll and answered as one batch: a bar close of 1,000 symbols in one
(in two of 500, the second half's orders waited for the first half's answers and fills)."""
ROUNDS_BEFORE_BOOKING: Final = 3
"""Batches of signals a round answers, as long as more are waiting, before it books the
venue's fills and publishes: orders reach the venue first, and the rest still follows
within a round."""
POLL_S: Final = 0.005
REAL_VENUE_SETTLE_S: Final = 10.0
"""A real venue's order lists may lag its accept by seconds (issue 11 asks to survive 3 s)."""
RESOLVE_EVERY_S: Final = 0.25
"""How often UNKNOWN orders are looked up again while any is waiting."""
PERMIT_EVERY_S: Final = 30.0
"""How often the venue is asked what it allows (a login's age moves slowly)."""
OUTBOX_BATCH: Final = 5_000
_EXECUTOR_ACTIONS: Final = frozenset({ControlAction.KILL_SWITCH, ControlAction.FLATTEN})
"""The commands the executor acts on (and answers on `control.acks`)."""
WATCHED: Final = ("signals", "control", "control.acks", "orders", "fills", "positions", "dlq")
"""The topics the executor reads and writes: recreated or gone, it stops (`ticklane.cluster`)."""


def engine_config(settings: Settings) -> EngineConfig:
    """Risk limits and multipliers from the executor settings."""
    ex = settings.executor
    settle_s = ex.lost_answer_settle_s
    if settle_s is None:
        settle_s = 0.0 if ex.broker == "paper" else REAL_VENUE_SETTLE_S
    limits = RiskLimits(
        max_position=ex.max_position,
        max_notional=ex.max_notional,
        max_orders_per_minute=ex.max_orders_per_minute,
        daily_loss_limit=ex.daily_loss_limit,
        position_overrides=dict(ex.position_overrides),
    )
    return EngineConfig(
        limits,
        dict(ex.multipliers),
        ex.default_multiplier,
        settle_ns=int(settle_s * 1e9),
        max_sends=ex.max_sends,
        route=Route(tuple(ex.strategies), tuple(ex.symbols)),
        halt_on_foreign_positions=ex.halt_on_foreign_positions,
        style=OrderStyle(ex.order_type, ex.limit_ticks, TimeInForce(ex.time_in_force)),
        styles={name: _style(style) for name, style in ex.order_styles.items()},
        tick_sizes=dict(ex.tick_sizes),
    )


def _style(settings: OrderStyleSettings) -> OrderStyle:
    """A strategy's order style from its settings (`ticks` means through or away by kind)."""
    tif = TimeInForce(settings.time_in_force)
    if settings.order_type == "marketable_limit":
        return OrderStyle(settings.order_type, ticks_through=settings.ticks, time_in_force=tif)
    return OrderStyle(settings.order_type, time_in_force=tif, ticks_away=settings.ticks)


class ExecutorService:
    """One executor process: ledger, broker, engine, and the Kafka clients around them."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        *,
        ledger: Ledger | None = None,
        broker: Broker | None = None,
        metrics: ExecutorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._topic_names: dict[str, str] = {}
        self.metrics = metrics or ExecutorMetrics()
        self.ledger = ledger or open_ledger(settings)
        self.broker = broker or build_broker(settings, bootstrap, self.metrics.registry)
        self.engine = Engine(self.ledger, self.broker, engine_config(settings), self.metrics)
        base = kafka.consumer_config(settings.kafka, bootstrap, settings.executor.group_id)
        # A committed position past a partition's end (a cluster restored or truncated) is
        # an error to report, never a silent jump to the start or the end of `signals`.
        self._signals = Consumer(base | {"auto.offset.reset": "error"})
        self._control = Consumer(base | {"group.id": f"{settings.executor.group_id}-control"})
        self._bootstrap = bootstrap
        self._producer = self._new_producer()
        self._publication = Publication(self.ledger, self._topic, OUTBOX_BATCH)
        self._lag = LagGauge(self.metrics.consumer_lag)
        for read in ("signals", "control"):  # at 0 from the start: a first one is an increase
            self.metrics.dead_letters.labels(self._topic(read))
        self.metrics.venue_connected.set_function(lambda: float(venue_connected(self.broker)))
        self._next_reconcile = 0.0
        self._next_resolve = 0.0
        self._next_permit = 0.0
        self.beacon = Beacon(
            settings,
            bootstrap,
            "executor",
            instance_name("executor", settings.executor.group_id),
            lambda: executor_report(self.engine),
            watch=[self._topic(base) for base in WATCHED],
            registry=self.metrics.registry,
        )

    def _topic(self, base: str) -> str:
        name = self._topic_names.get(base)
        if name is None:  # resolving builds the catalogue: once per name, not per event
            name = self._topic_names[base] = resolve(self.settings.topics, base)
        return name

    # --- start

    def start(self) -> None:
        """Load the ledger, apply every control command, reconcile, start consuming signals."""
        self.engine.load()
        self.engine.refresh_venue_permit()
        self._read_control_to_end()
        reconcile(self.engine)
        self._publish()
        self._assign_signals()
        self._next_reconcile = time.monotonic() + self.settings.executor.reconcile_interval_s
        self.beacon.beat(force=True)

    def _assign_signals(self) -> None:
        topic = self._topic("signals")
        meta = self._signals.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p) for p in meta.partitions]
        committed = self._signals.committed(parts, timeout=10)
        # Where nothing was committed yet, the beginning: said here, since the consumer's
        # own reset is reserved for positions that fell off the partition.
        self._signals.assign(
            [
                TopicPartition(topic, c.partition, c.offset if c.offset >= 0 else OFFSET_BEGINNING)
                for c in committed
            ]
        )

    def _read_control_to_end(self) -> None:
        topic = self._topic("control")
        part = TopicPartition(topic, 0, OFFSET_BEGINNING)
        _, high = self._control.get_watermark_offsets(part, timeout=10)
        self._control.assign([part])
        position = 0
        deadline = time.monotonic() + 30
        while position < high and time.monotonic() < deadline:
            for message in self._control.consume(BATCH, 0.1):
                if message.error() is None:
                    position = int(message.offset() or 0) + 1
                    self._on_control(message)

    # --- loop

    def run(self, stop: threading.Event, until: Callable[[], bool] | None = None) -> None:
        """Start, then work until `stop` is set (or `until()` says done)."""
        self.start()
        while not stop.is_set() and not (until and until()):
            self.step()

    def step(self) -> int:
        """One round: signals, control, the venue's pushed updates, events, maybe reconciling.

        On a Kafka that is not the cluster it started on, the executor reads and publishes
        nothing (its signals and commands may be another history's); it goes on following
        the venue into the ledger, whose outbox keeps the events for a restart."""
        trusted = self.beacon.watch.trusted
        count = self._send_signals() if trusted else 0
        for message in self._control.consume(BATCH, 0) if trusted else []:
            self._on_control(message)
        if not trusted:
            self._stop_consuming()
        self.broker.pump()
        self.engine.take_updates()
        if time.monotonic() >= self._next_permit:
            self.engine.refresh_venue_permit()
            self._next_permit = time.monotonic() + PERMIT_EVERY_S
        if self.engine.unresolved and time.monotonic() >= self._next_resolve:
            self.engine.resolve_unknown()
            self._next_resolve = time.monotonic() + RESOLVE_EVERY_S
        if trusted:
            self._publish()
        if time.monotonic() >= self._next_reconcile:
            reconcile(self.engine)
            self._next_reconcile = time.monotonic() + self.settings.executor.reconcile_interval_s
        if self._lag.due():
            self._lag.set(self._signal_lags())
        self.beacon.beat()
        return count

    def _send_signals(self) -> int:
        """Answer the signals waiting, up to `ROUNDS_BEFORE_BOOKING` batches; how many."""
        messages = self._take_signals()
        count, rounds = 0, 0
        while messages:
            count += len(messages)
            signals = [taken for message in messages if (taken := self._signal_of(message))]
            if signals:
                self.engine.send_signals(signals)
            self._commit(messages)
            rounds += 1
            if rounds == ROUNDS_BEFORE_BOOKING:
                break
            # Signals that arrived meanwhile (a burst spread over fetches) are sent before
            # the fills of those just sent are booked and their events published.
            messages = self._signals.consume(BATCH, 0)
        return count

    def _take_signals(self) -> list[Message]:
        """Up to `BATCH` signals: those waiting now, else the first to arrive within `POLL_S`
        with whatever came with it (`consume(n, t)` alone would wait out `t` for `n`)."""
        messages = self._signals.consume(BATCH, 0)
        if messages:
            return messages
        first = self._signals.poll(POLL_S)
        if first is None:
            return []
        return [first, *self._signals.consume(BATCH - 1, 0)]

    def _stop_consuming(self) -> None:
        """Let go of every partition once (the wait for them stands in for the poll)."""
        if self._signals.assignment() or self._control.assignment():
            self._signals.unassign()
            self._control.unassign()
        else:
            time.sleep(POLL_S)  # the poll it replaces: the venue is followed at the same pace

    def _signal_lags(self) -> list[tuple[str, int]]:
        """Messages behind each assigned partition's end, as the consumer last saw it."""
        lags = []
        for tp in self._signals.position(self._signals.assignment()):
            if tp.offset < 0:  # nothing read from it yet: its position is not known
                continue
            _, high = self._signals.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                lags.append((tp.topic, high - tp.offset))
        return lags

    def _signal_of(self, message: Message) -> tuple[Signal, int] | None:
        """The signal a message holds and its origin (the message's time), or None when it is
        not one to trade (an error, dead-lettered, misrouted)."""
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._AUTO_OFFSET_RESET:
                # The position is outside what the partition holds: not this cluster's history.
                where = f"{message.topic()}[{message.partition()}]"
                found = Finding(Change.OFFSET_PAST_END, where, "committed position", error.str())
                self.beacon.watch.report([found])
                return None
            log.warning("signals: %s", error)
            return None
        try:
            signal = wire.decode_as(message.value() or b"", Signal)
        except wire.WireError as exc:
            self._dead_letter(message, str(exc))
            return None
        key = message.key() or b""
        if key != signal.symbol.encode():
            # Keyed elsewhere, it sits in another symbol's partition, out of order with the
            # rest of its own: not traded, as the agents refuse such market data.
            why = f"key {key!r} does not match the signal's symbol {signal.symbol!r}"
            self._dead_letter(message, why, "misrouted")
            return None
        kind, ts_ms = message.timestamp()
        origin = ts_ms * 1_000_000 if kind and ts_ms > 0 else time.time_ns()
        return signal, origin

    def _on_control(self, message: Message) -> None:
        if message.error() is not None:
            return
        try:
            command = wire.decode_as(message.value() or b"", ControlCommand)
        except wire.WireError as exc:
            self._dead_letter(message, str(exc))
            return
        self.engine.on_control(command)
        if command.action in _EXECUTOR_ACTIONS:
            self._acknowledge(command)

    def _acknowledge(self, command: ControlCommand) -> None:
        """Answer a command this executor acts on (kill switch, flatten) on `control.acks`."""
        by = f"executor/{self.settings.executor.group_id}"
        ack = ControlAck(command.command_id, by, applied=True, ts_event=time.time_ns())
        try:
            self._producer.produce(
                self._topic("control.acks"), key=ack.key.encode(), value=wire.encode(ack)
            )
            self._producer.poll(0)
        except (KafkaException, BufferError) as exc:
            # Applied all the same; only the API's view of it waits.
            log.warning("control: acknowledgement of %s not sent: %s", command.command_id, exc)

    def _commit(self, messages: list[Message]) -> None:
        """Commit past every message handled: the ledger already holds what they caused."""
        last: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is None:
                key = (str(message.topic()), int(message.partition() or 0))
                last[key] = int(message.offset() or 0)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        if offsets:
            self._signals.commit(offsets=offsets, asynchronous=True)

    def _dead_letter(self, message: Message, reason: str, outcome: str = "undecodable") -> None:
        self.metrics.signals.labels(outcome).inc()
        self.metrics.dead_letters.labels(str(message.topic())).inc()
        try:
            send_dead_letter(self._producer, self._topic("dlq"), message, reason)
        except KafkaException as exc:
            if not exc.args[0].fatal():
                raise
            self._renew_producer(exc.args[0])  # and once more: its offset is committed next
            send_dead_letter(self._producer, self._topic("dlq"), message, reason)

    def _new_producer(self) -> Producer:
        return Producer(kafka.producer_config(self.settings.kafka, self._bootstrap))

    def _publish(self) -> None:
        """Hand the outbox's new events to Kafka; forget those the broker acknowledged."""
        try:
            self._publication.pump(self._producer)
        except KafkaException as exc:
            if not exc.args[0].fatal():
                raise
            self._renew_producer(exc.args[0])

    def _renew_producer(self, error: KafkaError) -> None:
        """A fatal producer error (an unknown producer id after a broker restart, fencing, a
        sequence gap) ends that producer for good: take a new one. What it had not delivered
        is still in the ledger's outbox and goes again; events carry their ids, so a second
        copy of one already delivered is recognised downstream."""
        log.error("Kafka producer failed for good (%s): starting a new one", error.str())
        self.metrics.errors.labels("producer_fatal").inc()
        with contextlib.suppress(KafkaException, RuntimeError):
            self._producer.purge()
        self._producer = self._new_producer()
        self._publication.restart()

    def close(self) -> None:
        """Commit nothing more; say so on `status`; close clients, broker and ledger."""
        self.beacon.stop()
        self._publication.drain(self._producer, 10)
        self._signals.close()
        self._control.close()
        self.broker.close()
        self.ledger.close()


@runtime_checkable
class _HasTokenAge(Protocol):
    def token_age_s(self) -> float: ...


@runtime_checkable
class _HasStream(Protocol):
    stream_connected: bool


def venue_connected(broker: Broker) -> bool:
    """Whether the venue's pushed order updates and fills can reach us (a venue without a
    stream, the paper one, always can)."""
    return broker.stream_connected if isinstance(broker, _HasStream) else True


def executor_report(engine: Engine) -> Report:
    """The executor's status: halted by reconciliation, the kill switch or the venue, or
    degraded while the venue allows only reducing or an order's fate is unknown."""
    permit, everything = engine.venue_permit, engine.kill_switch.state_for("", "")
    details = {
        "venue": engine.broker.name,
        "venue_permit": permit.state.value,
        "kill_switch": everything.value,
        "reconciliation": "halted" if engine.halted_reason else "clean",
        "open_orders": str(len(engine.open_orders())),
        "unresolved_orders": str(engine.unresolved),
    }
    if isinstance(engine.broker, _HasTokenAge):
        details["token_age_s"] = f"{engine.broker.token_age_s():.0f}"
    # The first that holds says the state, from what stops all trading to what slows it.
    checks = (
        (bool(engine.halted_reason), HALTED, f"reconciliation: {engine.halted_reason}"),
        (permit.state is KillSwitchState.HALTED, HALTED, f"venue: {permit.reason}"),
        (everything is KillSwitchState.HALTED, HALTED, "kill switch halted for everything"),
        (permit.state is KillSwitchState.REDUCING, DEGRADED, f"venue: {permit.reason}"),
        (
            not venue_connected(engine.broker),
            DEGRADED,
            "venue stream disconnected: fills and order updates wait for reconnection",
        ),
        (
            engine.unresolved > 0,
            DEGRADED,
            f"{engine.unresolved} order(s) whose fate the venue has not told yet",
        ),
    )
    for holds, state, why in checks:
        if holds:
            return Report(state, why, -1, details)
    return Report(ProcessState.RUNNING, "", -1, details)
