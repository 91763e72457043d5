"""The fake's HTTP shell: TastyTrade's REST paths, its OAuth token endpoint, the account
streamer at `/`, and `/__fake/*` controls for tests, around the venue (`venue.py`).

Paths, bodies and envelopes are the ones the SDK uses: `{"data": {...}}`, lists as
`{"data": {"items": [...]}}`, errors as `{"error": {"code", "message"}}`. Every API call needs
`Authorization: Bearer <access token>` from `POST /oauth/token`, and a `User-Agent` of the
form `<product>/<version>`, or it gets the 401s TastyTrade gives. Secrets never reach a log
line or an error body.
"""

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import msgspec
from aiohttp import web
from confluent_kafka import KafkaException

from fakes.serving import hold_answer
from fakes.tastytrade.auth import TokenBook, TokenState
from fakes.tastytrade.control import Controls
from fakes.tastytrade.faults import Fault, FaultBook, FaultRequest
from fakes.tastytrade.feed import DefinitionAndTickFeed
from fakes.tastytrade.instrument_routes import InstrumentRoutes
from fakes.tastytrade.instruments import (
    Catalogue,
    builtin,
    from_definition,
)
from fakes.tastytrade.order_lists import history_page, live_orders, new_york_date
from fakes.tastytrade.payloads import (
    ApiError,
    decode_order,
    decode_token_request,
    order_terms,
)
from fakes.tastytrade.record import Record
from fakes.tastytrade.render import Json, account_json, envelope, items
from fakes.tastytrade.stream import AccountStreamer
from fakes.tastytrade.venue import FakeVenue
from ticklane.kafka import ClientConfig
from ticklane.units import PRICE_SCALE

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT: Final = "5WT00001"
REFUSED_REFRESH: Final = {
    "error_code": "invalid_request",
    "error_description": "User is not a TastyTrade customer",
}
"""The body TastyTrade answered a revoked grant with (tastyware/tastytrade#351)."""

NGINX_401: Final = (
    "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n"
    "<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_FEED_POLL_S: Final = 0.1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the fake behaves. `client_secret`/`refresh_token` None: any value is accepted."""

    accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,)
    token_lifetime_s: int = 900
    starting_cash: int = 1_000_000 * PRICE_SCALE
    any_symbol: bool = False
    client_secret: str | None = None
    refresh_token: str | None = None
    faults: FaultRequest = FaultRequest()


def error_response(status: int, code: str, message: str) -> web.Response:
    """TastyTrade's error envelope."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _is_api(path: str) -> bool:
    return path not in {"/", "/oauth/token"} and not path.startswith("/__fake/")


def _is_submit(request: web.Request) -> bool:
    parts = request.path.strip("/").split("/")
    placing = request.method == "POST" and len(parts) == 3 and parts[2] == "orders"
    replacing = request.method == "PUT" and len(parts) == 4 and parts[2] == "orders"
    return parts[0] == "accounts" and (placing or replacing)


def _user_agent_ok(agent: str) -> bool:
    product, _, version = agent.partition("/")
    return bool(product.strip()) and bool(version.strip())


class FakeTastytrade:
    """The whole fake: venue, record, tokens, faults, streamer, and the aiohttp application."""

    def __init__(
        self,
        config: FakeConfig,
        data_dir: Path,
        *,
        kafka: tuple[ClientConfig, list[str]] | None = None,
    ) -> None:
        self.config = config
        self.faults = FaultBook()
        self.faults.arm(config.faults)
        self.tokens = TokenBook(config.token_lifetime_s)
        self.streamer = AccountStreamer(self.faults, self._authorized, config.accounts)
        self.record = Record(data_dir)
        today = new_york_date(time.time_ns())
        self.venue = FakeVenue(
            self.record,
            Catalogue(builtin(today)),
            self.faults,
            accounts=config.accounts,
            starting_cash=config.starting_cash,
            wall_ns=time.time_ns,
            notify=self.streamer.publish,
            any_symbol=config.any_symbol,
        )
        self._kafka = kafka
        self._feed_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._opened_at = time.time_ns()

    def _authorized(self, token: str | None) -> bool:
        return self.tokens.check(token, time.monotonic()) is TokenState.VALID

    # --- application

    def app(self) -> web.Application:
        """The aiohttp application: routes, middlewares, and the market-data task."""
        app = web.Application(middlewares=[self._errors, self._gate])
        r = app.router
        r.add_post("/oauth/token", self.token)
        r.add_get("/", self.streamer.handle)
        r.add_get("/customers/me/accounts", self.accounts)
        r.add_get("/customers/me/accounts/{account}", self.account)
        r.add_get("/accounts/{account}", self.account)
        r.add_get("/accounts/{account}/balances", self.balances)
        r.add_get("/accounts/{account}/balances/{currency}", self.balances)
        r.add_get("/accounts/{account}/positions", self.positions)
        r.add_get("/accounts/{account}/orders/live", self.live_orders)
        r.add_get("/accounts/{account}/orders", self.order_history)
        r.add_post("/accounts/{account}/orders", self.place)
        r.add_post("/accounts/{account}/orders/dry-run", self.dry_run)
        order = r"/accounts/{account}/orders/{id:\d+}"
        r.add_get(order, self.get_order)
        r.add_delete(order, self.cancel)
        r.add_put(order, self.replace)
        InstrumentRoutes(self.venue).add_to(r)
        Controls(self.venue, self.faults, self.tokens, self.streamer).add_to(r)
        app.on_startup.append(self._start_feed)
        app.on_shutdown.append(self._stop)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except web.HTTPNotFound:
            return error_response(404, "not_found", f"no route {request.method} {request.path}")
        except web.HTTPException:
            raise
        except ConnectionResetError:
            # The client went away mid-request (a killed executor): nobody is left to answer.
            # Where it died (reading the body, or after the record was written) the record
            # says, as it would at a real venue.
            log.info("fake tastytrade: %s %s: the client went away", request.method, request.path)
            return web.Response(status=499)
        except Exception:
            log.exception("fake tastytrade: %s %s failed", request.method, request.path)
            return error_response(500, "internal_error", "the fake failed; see its log")

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """User agent, rate limit and access token, in that order, for every API call."""
        if not _is_api(request.path):
            return await handler(request)
        if not _user_agent_ok(request.headers.get("User-Agent", "")):
            return web.Response(status=401, text=NGINX_401, content_type="text/html")
        scope = self.faults.settings.rate_limit_scope
        if (scope == "any" or _is_submit(request)) and self.faults.take(Fault.RATE_LIMIT):
            log.info("fault: 429 for %s %s", request.method, request.path)
            return error_response(429, "too_many_requests", "Rate limit exceeded")
        state = self.tokens.check(request.headers.get("Authorization"), time.monotonic())
        if state is not TokenState.VALID:
            return error_response(401, "unauthorized", f"access token {state.value}")
        return await handler(request)

    async def _start_feed(self, _app: web.Application) -> None:
        if self._kafka is not None:
            self._feed_task = asyncio.ensure_future(self._pump(*self._kafka))

    async def _pump(self, config: ClientConfig, topics: list[str]) -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="fake-tastytrade-feed") as pool:
            try:
                feed = await loop.run_in_executor(pool, DefinitionAndTickFeed, config, topics)
            except KafkaException as exc:
                # The API keeps answering; only md.* fills and definitions are missing.
                log.error("fake tastytrade: no market data, Kafka refused: %s", exc)  # noqa: TRY400
                return
            try:
                while True:
                    batch = await asyncio.shield(
                        loop.run_in_executor(pool, feed.poll, _FEED_POLL_S)
                    )
                    self._apply(batch)
            finally:
                # The pool runs one call at a time: this close waits for a poll in progress.
                pool.submit(feed.close)

    def _apply(self, batch: list[Any]) -> None:
        for item in batch:
            if isinstance(item, tuple):
                self.venue.on_ticks(item[0], item[1])
                continue
            for definition in item:
                instrument = from_definition(definition)
                if instrument is not None:
                    self.venue.catalogue.add(instrument)

    async def _stop(self, _app: web.Application) -> None:
        self._stopping.set()
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        await self.streamer.close()

    def close(self) -> None:
        """Close the record (after the application has stopped)."""
        self.record.close()

    # --- auth and accounts

    async def token(self, request: web.Request) -> web.Response:
        """`POST /oauth/token`: any secret and refresh token, unless configured or refused."""
        body = decode_token_request(await request.read())
        if self.faults.take(Fault.REFUSE_REFRESH):
            log.info("fault: refresh refused")
            return web.json_response(REFUSED_REFRESH, status=400)
        if body.grant_type != "refresh_token" or not body.client_secret or not body.refresh_token:
            return web.json_response(
                {"error_code": "invalid_request", "error_description": "bad token request"},
                status=400,
            )
        expected = (
            (self.config.client_secret, body.client_secret),
            (self.config.refresh_token, body.refresh_token),
        )
        if any(want is not None and not hmac.compare_digest(want, got) for want, got in expected):
            return web.json_response(
                {"error_code": "invalid_grant", "error_description": "Grant revoked"}, status=400
            )
        grant = self.tokens.issue(time.monotonic())
        log.info("access token %d issued, valid %ds", self.tokens.issued, grant.expires_in)
        return web.json_response(
            {
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": grant.expires_in,
            }
        )

    def _account(self, request: web.Request) -> str:
        account = request.match_info["account"]
        if account not in self.config.accounts:
            raise ApiError(403, "not_permitted", "User not permitted access")
        return account

    async def accounts(self, _request: web.Request) -> web.Response:
        """`GET /customers/me/accounts`."""
        rows = [
            {"account": account_json(a, self._opened_at), "authority-level": "owner"}
            for a in self.config.accounts
        ]
        return envelope(items(rows))

    async def account(self, request: web.Request) -> web.Response:
        """`GET /customers/me/accounts/{account}` (the SDK's) and `GET /accounts/{account}`."""
        return envelope(account_json(self._account(request), self._opened_at))

    async def balances(self, request: web.Request) -> web.Response:
        """`GET /accounts/{account}/balances[/{currency}]`: USD only."""
        currency = request.match_info.get("currency", "USD")
        if currency != "USD":
            raise ApiError(404, "record_not_found", f"no {currency} balances")
        return envelope(self.venue.balance(self._account(request)))

    async def positions(self, request: web.Request) -> web.Response:
        """`GET /accounts/{account}/positions` (filters: symbol, instrument-type)."""
        rows = self.venue.positions(self._account(request))
        for key in ("symbol", "instrument-type"):
            if key in request.query:
                rows = [p for p in rows if p[key] == request.query[key]]
        return envelope(items(rows))

    # --- orders

    async def live_orders(self, request: web.Request) -> web.Response:
        """`GET /accounts/{account}/orders/live`: today's orders, any status."""
        orders = live_orders(self.venue.visible_orders(self._account(request)), time.time_ns())
        return envelope(items([self.venue.order_body(o) for o in orders]))

    async def order_history(self, request: web.Request) -> web.Response:
        """`GET /accounts/{account}/orders`: filtered, sorted and paged as the SDK asks."""
        orders = self.venue.visible_orders(self._account(request))
        page, pagination = history_page(orders, request.query, self.venue.underlying_symbol)
        return web.json_response(
            {
                "data": items([self.venue.order_body(o) for o in page]),
                "pagination": pagination,
                "context": "ticklane-fake",
            }
        )

    async def get_order(self, request: web.Request) -> web.Response:
        """`GET /accounts/{account}/orders/{id}`."""
        order = self.venue.get(self._account(request), int(request.match_info["id"]))
        return envelope(self.venue.order_body(order))

    async def dry_run(self, request: web.Request) -> web.Response:
        """`POST /accounts/{account}/orders/dry-run`: checked and priced, never recorded."""
        terms = order_terms(decode_order(await request.read()))
        return envelope(self.venue.dry_run(self._account(request), terms))

    async def place(self, request: web.Request) -> web.Response:
        """`POST /accounts/{account}/orders`."""
        account = self._account(request)
        terms = order_terms(decode_order(await request.read()))
        answer = self.venue.place(account, terms)
        return await self._answer_submit(request, answer)

    async def replace(self, request: web.Request) -> web.Response:
        """`PUT /accounts/{account}/orders/{id}`: a new order, the old one's legs."""
        account = self._account(request)
        old = self.venue.get(account, int(request.match_info["id"]))
        terms = order_terms(decode_order(await request.read()), legs=old.legs)
        return await self._answer_submit(request, self.venue.replace(account, old.id, terms))

    async def _answer_submit(self, request: web.Request, answer: Json) -> web.Response:
        """The answer to an accepted submit, after the faults that strike once it is recorded."""
        if self.faults.take(Fault.TOKEN_EXPIRY_MID_SUBMIT):
            self.tokens.expire_once(request.headers.get("Authorization"))
        if self.faults.take(Fault.SERVER_ERROR_AFTER_ACCEPT):
            status = self.faults.settings.server_error_status
            return error_response(status, "internal_server_error", "Internal Server Error")
        if self.faults.take(Fault.TIMEOUT_AFTER_ACCEPT):
            # Held past the client's timeout; a stopping server lets go at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.settings.timeout_hold_s)
        await hold_answer(self.faults, self._stopping)
        return web.json_response({"data": answer, "context": request.path}, status=201)

    async def cancel(self, request: web.Request) -> web.Response:
        """`DELETE /accounts/{account}/orders/{id}`: the cancelled order."""
        order = self.venue.cancel(self._account(request), int(request.match_info["id"]))
        return envelope(self.venue.order_body(order))
