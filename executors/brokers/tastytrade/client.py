"""The TastyTrade venue: the `Broker` interface over the real `tastytrade` SDK (13.x).

The SDK is async; the executor is one thread. The adapter runs an event loop of its own in a
daemon thread, where the SDK's session, every REST call and the account stream live; the
executor's calls wait for their coroutine's result there, and what the stream pushes waits in a
thread-safe queue that `updates()` drains.

What a failed call means decides what happens next (brokers.md §3, §4): the SDK drops the
HTTP status from its errors, so a response hook keeps the last one.
- nothing reached the venue (connection refused, 429, 401, a refused refresh token): a 401 is
  retried once after a forced token refresh, a 429 after a backoff (Retry-After if given),
  a refused connection after a backoff; bounded, then the order is refused (`BrokerError`);
- the venue may have acted (a timeout after sending, a 5xx, a 2xx the SDK cannot parse):
  `AmbiguousAnswerError`, and the executor resolves the order by its client order id, which
  every order carries as `external-identifier` (live orders, then the day's history);
- a definite refusal (4xx): `BrokerError` with the venue's code and message.
An order POST is never simply sent again.

`place_order` defaults to a dry run in the SDK: the adapter always states `dry_run`. In a dry
run session every order is checked by the venue, placed nowhere, and answered as rejected with
what the venue said of it, so every signal still ends in a recorded outcome.
"""

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Final, TypeVar, cast

import httpx2
import pydantic
from tastytrade import Account, Session
from tastytrade.order import InstrumentType, PlacedOrder, PlacedOrderResponse
from tastytrade.utils import TastytradeError

from executors.brokers.base import (
    AmbiguousAnswerError,
    BrokerError,
    TradingPermit,
    VenueFill,
    VenueOrder,
    VenueStatus,
    VenueUpdate,
)
from executors.brokers.sending import lanes_of, rounds, send_together
from executors.brokers.tastytrade import orders, symbols
from executors.brokers.tastytrade.config import Credentials, describe, quiet_sdk_logs
from executors.brokers.tastytrade.stream import is_own, stream_orders
from executors.brokers.transport import RewritingTransport
from executors.netting import BrokerCaps
from ticklane.settings import TastytradeSettings
from ticklane.trading import Order

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIES: Final = 4
"""Tries of one request that certainly had no effect (429, 401, refused connection)."""
FIRST_BACKOFF_S: Final = 0.25
HISTORY_DAYS: Final = 1
"""How far back a lost answer's order is searched in the history (today and yesterday, UTC)."""

_LAST_RESPONSE: contextvars.ContextVar[tuple[str, int, str] | None] = contextvars.ContextVar(
    "tastytrade_last_response", default=None
)
"""(path, status, Retry-After) of the last response in this task: what the SDK's errors drop."""


class NotFoundError(BrokerError):
    """The venue answered 404: no such instrument or order."""


class TastytradeBroker:
    """Orders, lookups, positions and pushed updates at one TastyTrade account."""

    name = orders.VENUE

    def __init__(self, settings: TastytradeSettings, credentials: Credentials) -> None:
        quiet_sdk_logs()
        self._settings = settings
        self._timeout_s = settings.timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tastytrade", daemon=True
        )
        self._thread.start()
        self._updates: queue.SimpleQueue[VenueUpdate] = queue.SimpleQueue()
        self._instruments: dict[str, symbols.Instrument] = {}
        self._refreshing = asyncio.Lock()
        self._refreshed_at = 0.0
        """When the access token was last refreshed after a 401 (monotonic)."""
        self._resolving: dict[str, asyncio.Task[symbols.Instrument]] = {}
        """Instrument look-ups in flight, so that a batch's orders in one symbol ask once."""
        self._unknown: dict[str, str] = {}
        """Symbols the venue answered "no such instrument" for, with the reason (asked once)."""
        self._symbol_of: dict[str, str] = {}
        """Venue symbol -> ticklane symbol, for everything resolved so far."""
        self.stream_connected = False
        kwargs: dict[str, Any] = {
            "timeout": httpx2.Timeout(settings.timeout_s),
            "event_hooks": {"response": [_keep_status]},
        }
        if settings.api_url:
            kwargs["transport"] = RewritingTransport(settings.api_url)
        try:
            self._session = Session(
                credentials.client_secret.get_secret_value(),
                credentials.refresh_token.get_secret_value(),
                is_test=settings.environment == "sandbox",
                **kwargs,
            )
            self._account = self._run(self._open_account(), "open the account")
        except BaseException:
            self._stop_loop()
            raise
        self._stream: Future[None] = asyncio.run_coroutine_threadsafe(
            stream_orders(
                self._session, self._account, self._push, self._todays_orders, self._on_stream
            ),
            self._loop,
        )
        log.info("trading at %s, account %s", describe(settings), self._account.account_number)

    # --- plumbing

    def _run(self, work: Coroutine[Any, Any, T], what: str, *, calls: int = 1) -> T:
        """Run a coroutine on the adapter's loop and wait for it (a generous bound for `calls`
        calls one after another)."""
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(self._timeout_s * (RETRIES + 2) * calls)
        except FutureTimeout:
            future.cancel()
            raise AmbiguousAnswerError(f"tastytrade: no answer to {what} in time") from None

    async def _call(self, request: Callable[[], Awaitable[T]], what: str, *, sends: bool) -> T:
        """One SDK request with the retry rules of the module docstring.

        `request` is a zero-argument callable returning the awaitable, so it can be retried.
        `sends`: whether the request can change the venue (an order), so a lost answer is
        ambiguous; a read's lost answer is only an error.
        """
        backoff = FIRST_BACKOFF_S
        retry = ""
        for attempt in range(1, RETRIES + 1):
            _LAST_RESPONSE.set(None)
            started = time.monotonic()
            try:
                return await request()
            except httpx2.ConnectError as exc:
                retry = f"cannot connect ({type(exc).__name__})"
            except (httpx2.TimeoutException, httpx2.TransportError) as exc:
                retry = _transport_failure(exc, what, sends=sends)
            except pydantic.ValidationError:
                # A 2xx the SDK's models refuse: the venue answered, and may have acted.
                failure = f"tastytrade: {what}: an answer the SDK cannot read"
                raise (AmbiguousAnswerError if sends else BrokerError)(failure) from None
            except TastytradeError as exc:
                retry = await self._judge(exc, what, sends=sends, started=started)
            if attempt < RETRIES:
                log.warning("tastytrade: %s: %s; trying again in %.2fs", what, retry, backoff)
                await asyncio.sleep(backoff)
                backoff *= 2
        raise BrokerError(f"tastytrade: {what}: {retry}, {RETRIES} times; nothing was sent")

    async def _judge(self, exc: TastytradeError, what: str, *, sends: bool, started: float) -> str:
        """Why a refused request may be tried again (a reason), or raise what it means.
        `started`: when the request was sent (monotonic), to tell whether a refresh since then
        already replaced the token it was refused with."""
        last = _LAST_RESPONSE.get()
        path, status, retry_after = last if last is not None else ("", 0, "")
        if path.endswith("/oauth/token"):
            raise BrokerError(
                f"tastytrade refused the refresh token ({_short(exc)}); create a new grant "
                "(OAuth Applications > Manage > Create Grant) and set TASTYTRADE_REFRESH_TOKEN"
            ) from None
        if status == 401:
            await self._refresh_once(started)
            return "the access token was refused"
        if status == 429:
            return f"rate limited (Retry-After {retry_after or 'not given'})"
        if status >= 500 or status == 0:
            if sends:
                raise AmbiguousAnswerError(f"tastytrade: {what}: HTTP {status or '?'}") from None
            raise BrokerError(f"tastytrade: {what}: HTTP {status or '?'}") from None
        if status == 404:
            raise NotFoundError(f"tastytrade: {what}: {_short(exc)}") from None
        raise BrokerError(f"tastytrade: {what}: HTTP {status}: {_short(exc)}") from None

    async def _refresh_once(self, started: float) -> None:
        """Refresh the access token unless another request did so after `started`: the orders
        of a batch are refused together when the token expires, and one refresh serves all."""
        async with self._refreshing:
            if self._refreshed_at > started:
                return
            await self._session.refresh(force=True)
            self._refreshed_at = time.monotonic()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- start

    async def _open_account(self) -> Account:
        accounts = await self._call(
            lambda: Account.get(self._session), "list accounts", sends=False
        )
        wanted = self._settings.account
        numbers = [a.account_number for a in accounts]
        if wanted is not None:
            match = [a for a in accounts if a.account_number == wanted]
            if not match:
                raise BrokerError(f"tastytrade: no account {wanted} in this login: {numbers}")
            return match[0]
        if len(accounts) != 1:
            raise BrokerError(
                f"tastytrade: this login has accounts {numbers}; set executor.tastytrade.account"
            )
        return accounts[0]

    async def _instrument(self, symbol: str) -> symbols.Instrument:
        found = self._instruments.get(symbol)
        if found is not None:
            return found
        if symbol in self._unknown:
            raise BrokerError(self._unknown[symbol])
        pending = self._resolving.get(symbol)
        if pending is None:
            pending = self._resolving[symbol] = asyncio.ensure_future(self._resolve(symbol))
            pending.add_done_callback(lambda _: self._resolving.pop(symbol, None))
        # Shielded: one order's timeout must not cancel the look-up other orders wait on.
        return await asyncio.shield(pending)

    async def _resolve(self, symbol: str) -> symbols.Instrument:
        for kind in symbols.kinds_to_try(symbol):
            try:
                resolved = await self._call(
                    partial(symbols.resolve, self._session, symbol, kind),
                    f"look up {symbol}",
                    sends=False,
                )
            except NotFoundError:
                continue
            except symbols.SymbolError as exc:
                raise BrokerError(str(exc)) from None
            self._instruments[symbol] = resolved
            self._symbol_of[resolved.venue_symbol] = symbol
            return resolved
        self._unknown[symbol] = f"tastytrade has no instrument {symbol}"
        log.error("%s; its orders are refused", self._unknown[symbol])
        raise BrokerError(self._unknown[symbol])

    # --- Broker interface

    def caps_for(self, symbol: str) -> BrokerCaps:
        """Futures reverse in one order (Buy/Sell cross zero); the rest close, then open."""
        try:
            kind = self._run(self._instrument(symbol), f"look up {symbol}").kind
        except BrokerError:
            # The order itself will be refused, saying why; the shape's guess is safe here.
            kind = symbols.kind_of(symbol)
        return BrokerCaps(can_reverse_in_one_order=kind is InstrumentType.FUTURE)

    def trading_state(self) -> TradingPermit:
        """Everything: TastyTrade's refresh tokens do not expire (a revoked one refuses each
        order, saying so)."""
        return TradingPermit()

    def tick_size(self, symbol: str, price: int) -> int | None:
        """The instrument's tick at `price`, from the venue's instrument answer."""
        try:
            return self._run(self._instrument(symbol), f"look up {symbol}").tick_at(price)
        except BrokerError:
            return None

    def submit(self, order: Order) -> VenueOrder:
        """Place an order (or dry-run it); see the module docstring for failures."""
        return self._run(self._submit(order), f"place {order.client_order_id}")

    def submit_all(self, batch: Sequence[Order]) -> list[VenueOrder | BrokerError]:
        """Place a batch's orders without waiting for each other's answers (each carries its
        own `external-identifier`, so none depends on another's send order); each order's
        answer or error as `submit` gives it."""
        lanes = lanes_of(batch, lambda order: order.client_order_id)
        work = send_together(batch, self._submit, lanes)
        try:
            return self._run(work, f"place {len(batch)} orders", calls=rounds(lanes))
        except AmbiguousAnswerError as exc:
            # The whole batch outran its bound: any of them may have been placed.
            return [exc] * len(batch)

    async def _submit(self, order: Order) -> VenueOrder:
        symbols_traded = [leg.symbol for leg in order.legs] or [order.symbol]
        instruments = [await self._instrument(symbol) for symbol in symbols_traded]
        try:
            request = orders.build(order, instruments, self._settings.source)
        except orders.OrderBuildError as exc:
            raise BrokerError(str(exc)) from None
        if self._settings.dry_run:
            checked = await self._call(
                lambda: self._account.place_order(self._session, request, dry_run=True),
                f"dry-run {order.client_order_id}",
                sends=False,
            )
            said = [*(checked.warnings or []), *(checked.errors or [])]
            notes = "; ".join(str(m) for m in said)
            return VenueOrder(
                order.client_order_id,
                "",
                VenueStatus.REJECTED,
                reason=f"dry run: checked by the venue, not placed{f' ({notes})' if notes else ''}",
            )
        # The SDK's overloads take one order class at a time; every one of ours is placed alike.
        place = cast(
            "Callable[..., Awaitable[PlacedOrderResponse[Any]]]", self._account.place_order
        )
        answer = await self._call(
            lambda: place(self._session, request, dry_run=False),
            f"place {order.client_order_id}",
            sends=True,
        )
        placed = answer.order
        if not isinstance(placed, PlacedOrder):
            raise AmbiguousAnswerError(f"tastytrade: placing {order.client_order_id}: no order id")
        self._push(placed)
        return orders.venue_order(placed)

    def cancel(self, client_order_id: str) -> VenueOrder | None:
        """Ask to cancel an order; None when the venue does not know it."""
        return self._run(self._cancel(client_order_id), f"cancel {client_order_id}")

    async def _cancel(self, client_order_id: str) -> VenueOrder | None:
        placed = await self._find(client_order_id)
        if placed is None:
            return None
        if placed.status in orders.WORKING:
            venue_id = placed.id
            await self._call(
                lambda: self._account.delete_order(self._session, venue_id),
                f"cancel {client_order_id}",
                sends=True,
            )
            placed = await self._call(
                lambda: self._account.get_order(self._session, venue_id),
                f"read {client_order_id}",
                sends=False,
            )
        return orders.venue_order(placed)

    def lookup(self, client_order_id: str) -> VenueOrder | None:
        """The venue's view of an order, found by its `external-identifier`."""
        placed = self._run(self._find(client_order_id), f"look up {client_order_id}")
        return None if placed is None else orders.venue_order(placed)

    async def _find(self, client_order_id: str) -> PlacedOrder | None:
        for placed in await self._todays_orders():
            if placed.external_identifier == client_order_id:
                return placed
        since = datetime.now(UTC).date() - timedelta(days=HISTORY_DAYS)
        history = await self._call(
            # page_offset None: every page (the SDK's default reads the first only).
            lambda: self._account.get_order_history(
                self._session, start_date=since, per_page=200, page_offset=None
            ),
            "read the order history",
            sends=False,
        )
        return next((p for p in history if p.external_identifier == client_order_id), None)

    async def _todays_orders(self) -> list[PlacedOrder]:
        live: list[PlacedOrder] = await self._call(
            lambda: self._account.get_live_orders(self._session), "read live orders", sends=False
        )
        return live

    def open_orders(self) -> list[VenueOrder]:
        """ticklane's orders still working at the venue."""
        todays = self._run(self._todays_orders(), "read live orders")
        return [orders.venue_order(p) for p in todays if is_own(p) and p.status in orders.WORKING]

    def fills_since(self, cursor: int) -> list[VenueFill]:
        """Every fill of today's orders (the venue has no fill cursor; repeats count once)."""
        todays = self._run(self._todays_orders(), "read live orders")
        return [
            VenueFill(0, fill)
            for placed in todays
            if is_own(placed)
            for fill in orders.fills(placed, self._symbol_of)
        ]

    def updates(self) -> list[VenueUpdate]:
        """Statuses and fills the account stream pushed since the last call."""
        drained: list[VenueUpdate] = []
        while True:
            try:
                drained.append(self._updates.get_nowait())
            except queue.Empty:
                return drained

    def positions(self) -> dict[str, int]:
        """Net signed position per symbol (ticklane's names where known, else the venue's)."""
        held = self._run(
            self._call(
                lambda: self._account.get_positions(self._session), "read positions", sends=False
            ),
            "read positions",
        )
        totals: dict[str, int] = {}
        for position in held:
            quantity = int(Decimal(position.quantity))
            signed = -quantity if position.quantity_direction == "Short" else quantity
            symbol = self._symbol_of.get(position.symbol, position.symbol)
            totals[symbol] = totals.get(symbol, 0) + signed
        return {s: q for s, q in totals.items() if q}

    def pump(self) -> None:
        """Nothing to do: the account stream pushes."""

    def close(self) -> None:
        """Stop the stream, close the session and the loop."""
        self._stream.cancel()
        # The SDK closes its client only when used as a context manager across the whole
        # session, which a loop in another thread cannot be: close the client directly.
        with_timeout = asyncio.run_coroutine_threadsafe(self._session._client.aclose(), self._loop)
        try:
            with_timeout.result(5)
        except (FutureTimeout, httpx2.HTTPError, RuntimeError):
            log.warning("tastytrade: the session did not close cleanly")
        self._stop_loop()

    # --- the stream

    def _push(self, placed: PlacedOrder) -> None:
        self._updates.put(orders.venue_order(placed))
        for fill in orders.fills(placed, self._symbol_of):
            self._updates.put(fill)

    def _on_stream(self, connected: bool) -> None:
        self.stream_connected = connected


async def _keep_status(response: httpx2.Response) -> None:
    _LAST_RESPONSE.set(
        (response.request.url.path, response.status_code, response.headers.get("retry-after", ""))
    )


def _transport_failure(exc: httpx2.HTTPError, what: str, *, sends: bool) -> str:
    """A connection that timed out before sending may be tried again (the reason); after
    sending, an order's fate is unknown and a read's answer lost: raise what it means."""
    if isinstance(exc, httpx2.ConnectTimeout):
        return "connection timed out"
    failure = f"tastytrade: {what}: {type(exc).__name__} after sending"
    raise (AmbiguousAnswerError if sends else BrokerError)(failure) from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
