"""The Schwab venue: the `Broker` interface over the real `schwab-py` SDK (1.5.x, async).

As for TastyTrade, the SDK runs on an event loop in a daemon thread; the executor's calls
wait for their coroutine there, and what the account activity stream reports waits in a
thread-safe queue that `updates()` drains.

schwab-py's client returns raw HTTP responses, so the status decides (brokers.md §3, §4):
- nothing reached the venue (refused connection, 429, 401): a 401 forces a token refresh and
  is tried again once, a 429 or a refused connection after a backoff; bounded, then
  `BrokerError`;
- a refused refresh (the refresh token expired or was revoked): `BrokerError` naming
  `ticklane auth schwab`; nothing was sent;
- authentication failures (a 401 the refresh did not cure, a 403, a refused refresh, any
  authlib token error) are counted in a row by the breaker (`breaker.py`): at
  `auth_failures_to_halt` trading halts until a call authenticates again. Before giving up on
  one, the token file is read again: a login written there since (`ticklane auth schwab` run
  while the executor runs) is taken and the call tried with it;
- the venue may have acted (a timeout after sending, a 5xx, a 201 without a readable
  `Location`): `AmbiguousAnswerError`;
- a definite refusal (other 4xx): `BrokerError` with the venue's message.

Schwab's orders carry no client order id. Before each POST the order's fingerprint and send
time are committed to `claims.py`; the 201's `Location` gives the venue order id. `lookup` of
an order whose answer was lost searches the account's orders entered around the send for the
fingerprint, skipping orders other client order ids claimed; several unclaimed sends of the
same fingerprint take the matches in send order (orders go out one at a time from this
adapter, or in one lane of a batch sent together, so the venue's order ids follow the send
order). None only when no unclaimed
match exists, and the engine resends only after its settle window.

Order requests (place, cancel) are throttled client-side to `orders_per_minute` per rolling
minute: a request waits for a free slot, at most `THROTTLE_WAIT_S`, else it is refused.

Schwab's API cannot trade futures: start-up refuses symbol patterns that could route one here
(`check_symbols`, `routing.py`), and `submit` refuses any order in a futures-shaped symbol
before it is claimed or sent, whatever let it through.
"""

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx2
from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Gauge
from schwab.utils import UnsuccessfulOrderException, Utils  # type: ignore[import-untyped]

from executors.brokers.base import (
    AmbiguousAnswerError,
    BrokerError,
    TradingPermit,
    VenueFill,
    VenueOrder,
    VenueStatus,
    VenueUpdate,
)
from executors.brokers.schwab import config, orders, routing
from executors.brokers.schwab.breaker import AuthBreaker
from executors.brokers.schwab.claims import FILE_NAME, Claims
from executors.brokers.schwab.stream import stream_activity
from executors.brokers.sending import lanes_of, rounds, send_together
from executors.netting import BrokerCaps
from ticklane.control import KillSwitchState
from ticklane.settings import SchwabSettings
from ticklane.trading import Order

log = logging.getLogger(__name__)

_PERMITS: Final = {
    config.LoginState.OK: KillSwitchState.ACTIVE,
    config.LoginState.REDUCING: KillSwitchState.REDUCING,
    config.LoginState.HALTED: KillSwitchState.HALTED,
}

T = TypeVar("T")

RETRIES: Final = 4
"""Tries of one request that certainly had no effect (429, 401, refused connection)."""
FIRST_BACKOFF_S: Final = 0.25
THROTTLE_WAIT_S: Final = 5.0
"""The longest an order request waits for the throttle before it is refused."""
SEARCH_BEFORE_S: Final = 60
SEARCH_AFTER_S: Final = 60
"""The window around a send in which its order is searched for (Schwab stamps whole seconds)."""
DAY_S: Final = 24 * 3600
MAX_ORPHANS: Final = 1_000
AUTH_REFUSED: Final = frozenset({401, 403})
"""Answers that refuse a request for want of authentication (the breaker counts them)."""
PAST_AUTH: Final = frozenset({401, 403, 429})
"""Answers that do not show the request was authenticated; any other below 500 does."""
SYMBOLS_SETTING: Final = "executor.symbols (TICKLANE_EXECUTOR__SYMBOLS)"
_REFRESHING: Final = "the access token was refused; refreshing it"
_NEW_LOGIN: Final = "a newer login was found in the token file"


class SchwabBroker:
    """Orders, lookups, positions and pushed updates at one Schwab account."""

    name = orders.VENUE

    def __init__(
        self,
        settings: SchwabSettings,
        credentials: config.AppCredentials,
        data_dir: Path,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config.quiet_sdk_logs()
        self._clock = clock
        """Wall seconds: what the login's age is measured with (tests move it)."""
        self._settings = settings
        self._timeout_s = settings.timeout_s
        self._sent: collections.deque[float] = collections.deque()
        self._updates: queue.SimpleQueue[VenueUpdate] = queue.SimpleQueue()
        self._orphans: set[str] = set()
        """Venue order ids the stream named before their POST's answer was in."""
        self.stream_connected = False
        self._claims = Claims(data_dir / FILE_NAME)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="schwab-adapter", daemon=True
        )
        self._thread.start()
        path = config.token_path(settings, data_dir)
        self._token_path = path
        self._token_mtime = _mtime_ns(path)
        """The token file as last read: a change may be a new login to take."""
        self._breaker = AuthBreaker(settings.auth_failures_to_halt)
        try:
            self._client = self._run(self._make_client(credentials, path), "read the token file")
            self._hash = self._run(self._open_account(), "open the account")
        except BaseException:
            self._stop_loop()
            self._claims.close()
            raise
        registry = registry or CollectorRegistry()
        self.token_age = Gauge(
            "ticklane_broker_token_age_seconds",
            "Seconds since the login that made the broker's refresh token",
            ["broker"],
            registry=registry,
        )
        self.token_age.labels(broker=orders.VENUE).set_function(self.token_age_s)
        self.auth_failures = Gauge(
            "ticklane_broker_auth_failures",
            "Calls to the broker refused authentication in a row (trading halts at the limit)",
            ["broker"],
            registry=registry,
        )
        self.auth_failures.labels(broker=orders.VENUE).set_function(lambda: self._breaker.failures)
        self._stream = self._run(self._start_stream(), "start the account activity stream")
        log.info("trading at %s", config.describe(settings))

    # --- plumbing

    async def _make_client(self, credentials: config.AppCredentials, path: Path) -> Any:
        return config.async_client(
            credentials, path, timeout_s=self._timeout_s, api_url=self._settings.api_url
        )

    async def _start_stream(self) -> "asyncio.Task[None]":
        return asyncio.create_task(
            stream_activity(self._client, self._on_order, self._catch_up, self._on_stream)
        )

    async def _stop_stream(self) -> None:
        self._stream.cancel()
        await asyncio.gather(self._stream, return_exceptions=True)
        await self._client.close_async_session()

    def _run(self, work: Coroutine[Any, Any, T], what: str, *, calls: int = 1) -> T:
        """Run a coroutine on the adapter's loop and wait for it (a generous bound for `calls`
        calls one after another)."""
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result((self._timeout_s * (RETRIES + 2) + THROTTLE_WAIT_S) * calls)
        except FutureTimeout:
            future.cancel()
            raise AmbiguousAnswerError(f"schwab: no answer to {what} in time") from None

    async def _call(
        self, request: Callable[[], Awaitable[httpx2.Response]], what: str, *, sends: bool
    ) -> httpx2.Response:
        """One SDK request with the retry rules of the module docstring; `sends`: an order
        request (throttled; a lost answer is ambiguous)."""
        backoff = FIRST_BACKOFF_S
        retry = ""
        refreshed = False
        for attempt in range(1, RETRIES + 1):
            await self._throttle(what, sends=sends)
            try:
                response = await request()
            except (OAuthError, httpx2.HTTPStatusError) as exc:
                # The token could not be refreshed, so the request was never sent.
                if self._adopt_newer_login():
                    continue
                raise self._refresh_failed(exc, what) from None
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                retry = f"cannot connect ({type(exc).__name__})"
            except (httpx2.TimeoutException, httpx2.TransportError) as exc:
                failure = f"schwab: {what}: {type(exc).__name__} after sending"
                raise (AmbiguousAnswerError if sends else BrokerError)(failure) from None
            else:
                retry = self._judge(response, what, sends=sends, refreshed=refreshed)
                if not retry:
                    return response
                if retry in (_REFRESHING, _NEW_LOGIN):
                    # Tried again at once: the request had no effect, and the token is new.
                    refreshed = retry == _REFRESHING
                    continue
            if attempt < RETRIES:
                log.warning("schwab: %s: %s; trying again in %.2fs", what, retry, backoff)
                await asyncio.sleep(backoff)
                backoff *= 2
        raise BrokerError(f"schwab: {what}: {retry}, {RETRIES} times; nothing was sent")

    def _refresh_failed(self, exc: Exception, what: str) -> BrokerError:
        """The error for a refresh that failed; counted by the breaker when it was refused."""
        if isinstance(exc, httpx2.HTTPStatusError):
            # authlib raises this when the token endpoint answers without a JSON body (a
            # gateway's page, a 5xx).
            status = exc.response.status_code
            if status not in AUTH_REFUSED:
                return BrokerError(
                    f"schwab: {what}: the token endpoint answered HTTP {status}; nothing was sent"
                )
            return self._auth_failed(
                what,
                f"the token endpoint answered HTTP {status}",
                f"schwab: {what}: the token endpoint refused the login (HTTP {status}); "
                f"run `{config.AUTH_COMMAND}`",
            )
        # authlib's OAuthError: the refresh was refused (its `error` is Schwab's code, never
        # a token), or the token cannot be refreshed at all (`token_invalid`).
        code = getattr(exc, "error", None) or "refused"
        return self._auth_failed(
            what,
            f"the refresh token was refused ({code})",
            f"schwab refused the refresh token ({code}): the weekly login has expired or was "
            f"revoked; run `{config.AUTH_COMMAND}`",
        )

    def _auth_failed(self, what: str, cause: str, message: str) -> BrokerError:
        """Count an authentication failure (logging once when it halts trading); the error
        to raise. Neither `cause` nor `message` holds a token."""
        before = self._breaker
        self._breaker = after = before.failed(f"{what}: {cause}")
        if after.is_open and not before.is_open:
            log.error("schwab: trading halted: %s", after.reason())
        return BrokerError(message)

    def _authenticated(self) -> None:
        """A call was let past Schwab's authentication: the breaker closes."""
        before = self._breaker
        self._breaker = before.succeeded()
        if before.is_open:
            log.warning("schwab: authenticated again; the halt on authentication failures ends")

    def _adopt_newer_login(self) -> bool:
        """Take a login written to the token file since it was last read (a person ran
        `ticklane auth schwab` while the executor runs), so that the login's fix needs no
        restart; whether one was taken. Only the refresh token tells a new login from this
        client's own write-backs, which rewrite the file after every refresh."""
        mtime = _mtime_ns(self._token_path)
        if mtime is None or mtime == self._token_mtime:
            return False
        self._token_mtime = mtime
        try:
            loaded = config.read_token_file(self._token_path)
        except BrokerError:
            return False
        token = loaded.get("token")
        current = self._client.session.token or {}
        if (
            not isinstance(token, dict)
            or not token.get("refresh_token")
            or token.get("refresh_token") == current.get("refresh_token")
        ):
            return False
        metadata = self._client.token_metadata
        # schwab-py's write-back wraps each refreshed token with this metadata's creation
        # time, so the new login's age is kept across refreshes as the first one's was.
        metadata.creation_timestamp = loaded.get("creation_timestamp") or 0
        metadata.token = token
        self._client.session.token = token
        log.warning("schwab: took the newer login in %s", self._token_path)
        return True

    async def _adopt_async(self) -> bool:
        return self._adopt_newer_login()

    def _judge(self, response: httpx2.Response, what: str, *, sends: bool, refreshed: bool) -> str:
        """Nothing for a success; why a refused request may be tried again (`_REFRESHING`,
        `_NEW_LOGIN`: at once); or raise its meaning."""
        status = response.status_code
        if status in AUTH_REFUSED:
            return self._refused(response, what, refreshed=refreshed)
        if status < 500 and status not in PAST_AUTH:
            self._authenticated()
        if status < 400:
            return ""
        if status == 429:
            return f"rate limited (Retry-After {response.headers.get('retry-after', 'not given')})"
        if status >= 500:
            failure = f"schwab: {what}: HTTP {status}"
            raise (AmbiguousAnswerError if sends else BrokerError)(failure)
        raise BrokerError(f"schwab: {what}: HTTP {status}: {_message(response)}")

    def _refused(self, response: httpx2.Response, what: str, *, refreshed: bool) -> str:
        """A 401 or 403: refresh once, or take a newer login, or count it and raise."""
        status = response.status_code
        if status == 401 and not refreshed:
            # The access token was refused before its time: make authlib refresh it.
            self._client.session.token["expires_at"] = 1
            log.warning("schwab: %s: the access token was refused; refreshing it", what)
            return _REFRESHING
        if self._adopt_newer_login():
            return _NEW_LOGIN
        raise self._auth_failed(
            what,
            f"HTTP {status}",
            f"schwab: {what}: HTTP {status}: {_message(response)}; "
            f"run `{config.AUTH_COMMAND}` if it persists",
        )

    async def _throttle(self, what: str, *, sends: bool) -> None:
        """Wait for a slot among `orders_per_minute` per rolling minute (bounded); only order
        requests (`sends`) take one. Requests sent together wait in turn: each looks again
        after its wait, as another may have taken the slot that freed."""
        if not sends:
            return
        limit = self._settings.orders_per_minute
        deadline = time.monotonic() + THROTTLE_WAIT_S
        while True:
            now = time.monotonic()
            while self._sent and now - self._sent[0] >= 60:
                self._sent.popleft()
            if len(self._sent) < limit:
                self._sent.append(now)
                return
            free_at = self._sent[-limit] + 60
            if free_at > deadline:
                raise BrokerError(
                    f"schwab: {what}: throttled ({limit} order requests a minute); not sent"
                )
            await asyncio.sleep(free_at - now)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- start

    async def _open_account(self) -> str:
        answer = await self._call(self._client.get_account_numbers, "list accounts", sends=False)
        pairs = {str(a["accountNumber"]): str(a["hashValue"]) for a in answer.json()}
        wanted = self._settings.account
        if wanted is not None:
            if wanted not in pairs:
                raise BrokerError(f"schwab: no account {wanted} in this login: {sorted(pairs)}")
            return pairs[wanted]
        if len(pairs) != 1:
            raise BrokerError(
                f"schwab: this login has accounts {sorted(pairs)}; set executor.schwab.account"
            )
        return next(iter(pairs.values()))

    @staticmethod
    def check_symbols(symbols: Iterable[str]) -> None:
        """Refuse to start when `executor.symbols` could route a future here (Schwab's API
        cannot trade them): the patterns must be given (none means every symbol, futures
        included), and no futures-shaped symbol may match any of them (`routing.py`)."""
        patterns = list(symbols)
        if not patterns:
            raise BrokerError(
                f"schwab cannot trade futures through its API, and an empty {SYMBOLS_SETTING} "
                "routes every symbol here, futures included; list what this executor trades, "
                'equities and their options, e.g. ["AAPL", "AAPL *"]'
            )
        found = []
        for pattern in patterns:
            matched = routing.future_matched(pattern)
            if matched is not None:
                what, example = matched
                found.append(
                    pattern
                    if example == pattern
                    else f"{pattern} (it matches {what}, e.g. {example})"
                )
            elif not routing.has_wildcard(pattern) and orders.is_future(pattern):
                found.append(pattern)
        if found:
            raise BrokerError(
                f"schwab cannot trade futures through its API, and {SYMBOLS_SETTING} would "
                f"route futures here: {'; '.join(found)}. Name equities and their options "
                'exactly, or by patterns no future can match ("AAPL", "AAPL *"), and route '
                "the futures to another executor"
            )

    def token_age_s(self) -> float:
        """Seconds since the login behind the refresh token (schwab-py's `token_age`, on
        this adapter's clock)."""
        return self._clock() - float(self._client.token_metadata.creation_timestamp)

    def login_state(self) -> config.LoginState:
        """What the refresh token's age allows (OK, REDUCING a day before expiry, HALTED):
        for the executor to follow, logged with the fixing command by `config.login_advice`."""
        return config.login_state(self.token_age_s(), self._settings.reducing_after_days)

    # --- Broker interface

    def trading_state(self) -> TradingPermit:
        """HALTED while authentication keeps failing (the breaker); else REDUCING a day
        before the login expires and HALTED once it has; each with the command that fixes it.
        A newer login in the token file is taken first: the executor asks every 30 s, so a
        weekly login is in use within that, before this client's next write-back (after its
        next refresh) could put the old one back over it."""
        self._run(self._adopt_async(), "read the token file")
        breaker = self._breaker
        if breaker.is_open:
            return TradingPermit(KillSwitchState.HALTED, breaker.reason())
        age = self.token_age_s()
        state = self.login_state()
        return TradingPermit(_PERMITS[state], config.login_advice(state, age))

    def caps_for(self, symbol: str) -> BrokerCaps:
        """Schwab reverses nothing in one order: close, then open."""
        return BrokerCaps(can_reverse_in_one_order=False)

    def tick_size(self, symbol: str, price: int) -> int | None:
        """The tick at `price` (Schwab's published rules; none for futures, refused here)."""
        return None if orders.is_future(symbol) else orders.tick_at(symbol, price)

    def submit(self, order: Order) -> VenueOrder:
        """Place an order; see the module docstring for failures and idempotency."""
        return self._run(self._submit(order), f"place {order.client_order_id}")

    def submit_all(self, batch: Sequence[Order]) -> list[VenueOrder | BrokerError]:
        """Place a batch's orders without waiting for each other's answers, except that
        identical orders (one fingerprint) go one after another, so that a lost answer's order
        is still found by its place in the send order; each order's answer or error as
        `submit` gives it."""
        lanes = lanes_of(batch, self._lane_of)
        work = send_together(batch, self._submit, lanes)
        try:
            return self._run(work, f"place {len(batch)} orders", calls=rounds(lanes))
        except AmbiguousAnswerError as exc:
            # The whole batch outran its bound: any of them may have been placed.
            return [exc] * len(batch)

    def _lane_of(self, order: Order) -> Hashable:
        try:
            return orders.fingerprint(self._hash, orders.build(order))
        except orders.OrderBuildError:
            return order.client_order_id

    async def _submit(self, order: Order) -> VenueOrder:
        cid = order.client_order_id
        # Before anything is claimed or sent, whatever routed it here: a multi-leg order is
        # judged by its legs (its own symbol only names the combination).
        futures = [leg.symbol for leg in order.legs] if order.legs else [order.symbol]
        futures = [s for s in futures if orders.is_future(s)]
        if futures:
            raise BrokerError(
                f"{', '.join(futures)}: Schwab cannot trade futures through its API; "
                f"not sent (route futures to another executor: {SYMBOLS_SETTING})"
            )
        claim = self._claims.get(cid)
        if claim is not None and claim.venue_order_id is not None:
            return await self._read(claim.venue_order_id, cid)
        try:
            spec = orders.build(order)
        except orders.OrderBuildError as exc:
            raise BrokerError(str(exc)) from None
        self._claims.begin(cid, orders.fingerprint(self._hash, spec), time.time_ns())
        try:
            answer = await self._call(
                lambda: self._client.place_order(self._hash, spec), f"place {cid}", sends=True
            )
        except AmbiguousAnswerError:
            raise
        except BrokerError:
            self._claims.drop(cid)
            raise
        try:
            order_id = Utils(self._client, self._hash).extract_order_id(answer)
        except UnsuccessfulOrderException:
            order_id = None
        if order_id is None:
            raise AmbiguousAnswerError(f"schwab: placing {cid}: no order id in the answer")
        venue_id = str(order_id)
        self._claims.claim(cid, venue_id)
        if venue_id in self._orphans:
            self._orphans.discard(venue_id)
            await self._on_order(venue_id)
        return VenueOrder(cid, venue_id, VenueStatus.ACCEPTED)

    async def _read(self, venue_id: str, cid: str) -> VenueOrder:
        answer = await self._get_order(venue_id)
        return orders.venue_order(answer, cid)

    async def _get_order(self, venue_id: str) -> dict[str, Any]:
        answer = await self._call(
            lambda: self._client.get_order(int(venue_id), self._hash),
            f"read order {venue_id}",
            sends=False,
        )
        body: dict[str, Any] = answer.json()
        return body

    def cancel(self, client_order_id: str) -> VenueOrder | None:
        """Ask to cancel an order; None when the venue does not know it."""
        return self._run(self._cancel(client_order_id), f"cancel {client_order_id}")

    async def _cancel(self, cid: str) -> VenueOrder | None:
        found = await self._find(cid)
        if found is None:
            return None
        if orders.status_of(found) in orders.WORKING:
            venue_id = int(found["orderId"])
            await self._call(
                lambda: self._client.cancel_order(venue_id, self._hash), f"cancel {cid}", sends=True
            )
            found = await self._get_order(str(venue_id))
        return orders.venue_order(found, cid)

    def lookup(self, client_order_id: str) -> VenueOrder | None:
        """The venue's view of an order: by its claimed id, else by fingerprint search."""
        found = self._run(self._find(client_order_id), f"look up {client_order_id}")
        return None if found is None else orders.venue_order(found, client_order_id)

    async def _find(self, cid: str) -> dict[str, Any] | None:
        claim = self._claims.get(cid)
        if claim is None:
            return None
        if claim.venue_order_id is not None:
            return await self._get_order(claim.venue_order_id)
        entered = claim.entered_ns / 1e9
        listed = await self._orders_between(
            entered - SEARCH_BEFORE_S, max(time.time(), entered) + SEARCH_AFTER_S
        )
        candidates = sorted(
            (
                o
                for o in listed
                if orders.fingerprint(self._hash, o) == claim.fingerprint
                and self._claims.owner(str(o["orderId"])) is None
            ),
            key=lambda o: int(o["orderId"]),
        )
        since = claim.entered_ns - SEARCH_BEFORE_S * 1_000_000_000
        waiting = [
            c.client_order_id for c in self._claims.unresolved_like(claim.fingerprint, since)
        ]
        place = waiting.index(cid) if cid in waiting else 0
        if place >= len(candidates):
            return None
        match = candidates[place]
        self._claims.claim(cid, str(match["orderId"]))
        log.info("schwab: %s found as order %s by its fingerprint", cid, match["orderId"])
        return match

    async def _orders_between(self, start: float, end: float) -> list[dict[str, Any]]:
        answer = await self._call(
            lambda: self._client.get_orders_for_account(
                self._hash,
                from_entered_datetime=datetime.fromtimestamp(start, UTC),
                to_entered_datetime=datetime.fromtimestamp(end, UTC),
            ),
            "list orders",
            sends=False,
        )
        listed: list[dict[str, Any]] = answer.json()
        return listed

    async def _todays_own(self) -> list[tuple[str, dict[str, Any]]]:
        """(client order id, order) for each of ticklane's orders of the last day."""
        now = time.time()
        listed = await self._orders_between(now - DAY_S, now + SEARCH_AFTER_S)
        own = []
        for placed in listed:
            cid = self._claims.owner(str(placed["orderId"]))
            if cid is not None:
                own.append((cid, placed))
        return own

    def open_orders(self) -> list[VenueOrder]:
        """ticklane's orders still working at the venue."""
        own = self._run(self._todays_own(), "list orders")
        return [
            orders.venue_order(o, cid) for cid, o in own if orders.status_of(o) in orders.WORKING
        ]

    def fills_since(self, cursor: int) -> list[VenueFill]:
        """Every fill of the day's orders (Schwab has no fill cursor; repeats count once)."""
        own = self._run(self._todays_own(), "list orders")
        return [VenueFill(0, fill) for cid, o in own for fill in orders.fills(o, cid)]

    def updates(self) -> list[VenueUpdate]:
        """Statuses and fills the account activity reported since the last call."""
        drained: list[VenueUpdate] = []
        while True:
            try:
                drained.append(self._updates.get_nowait())
            except queue.Empty:
                return drained

    def positions(self) -> dict[str, int]:
        """Net signed position per symbol."""
        return self._run(self._positions(), "read positions")

    async def _positions(self) -> dict[str, int]:
        fields = [self._client.Account.Fields.POSITIONS]
        answer = await self._call(
            lambda: self._client.get_account(self._hash, fields=fields),
            "read positions",
            sends=False,
        )
        held = answer.json().get("securitiesAccount", {}).get("positions") or []
        totals: dict[str, int] = {}
        for position in held:
            signed = Decimal(str(position.get("longQuantity") or 0)) - Decimal(
                str(position.get("shortQuantity") or 0)
            )
            symbol = str(position["instrument"]["symbol"])
            totals[symbol] = totals.get(symbol, 0) + int(signed)
        return {s: q for s, q in totals.items() if q}

    def pump(self) -> None:
        """Nothing to do: the account activity stream reports."""

    def close(self) -> None:
        """Stop the stream, close the client, the loop and the claims file."""
        closing = asyncio.run_coroutine_threadsafe(self._stop_stream(), self._loop)
        try:
            closing.result(5)
        except (FutureTimeout, httpx2.HTTPError, RuntimeError):
            log.warning("schwab: the client did not close cleanly")
        self._stop_loop()
        self._claims.close()

    # --- the stream

    async def _on_order(self, venue_id: str) -> None:
        """An order changed: read it and push it, if it is one of ticklane's."""
        cid = self._claims.owner(venue_id)
        if cid is None:
            # Its POST's answer may not be in yet: pushed when it is (see `_submit`). Orders
            # placed by hand land here too: the set is bounded.
            if len(self._orphans) >= MAX_ORPHANS:
                self._orphans.clear()
            self._orphans.add(venue_id)
            return
        try:
            placed = await self._get_order(venue_id)
        except BrokerError as exc:
            log.warning("schwab: order %s changed but cannot be read: %s", venue_id, exc)
            return
        self._push(cid, placed)

    async def _catch_up(self) -> None:
        for cid, placed in await self._todays_own():
            self._push(cid, placed)

    def _push(self, cid: str, placed: dict[str, Any]) -> None:
        self._updates.put(orders.venue_order(placed, cid))
        for fill in orders.fills(placed, cid):
            self._updates.put(fill)

    def _on_stream(self, connected: bool) -> None:
        self.stream_connected = connected


def _message(response: httpx2.Response) -> str:
    """The venue's `message` (and errors) from a refusal, short."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        errors = "; ".join(str(e) for e in body.get("errors") or [])
        text = str(body.get("message") or body.get("error") or "")
        return f"{text}{f' ({errors})' if errors and errors != text else ''}"[:300]
    return str(body)[:300]


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
