"""The fake's HTTP shell: Schwab's Trader API paths, its OAuth token endpoint, the streamer
at `/ws`, and `/__fake/*` controls for tests, around the venue (`venue.py`).

Paths and bodies are the OpenAPI document's (`/trader/v1/...`), errors its `ServiceError`
(`{"message", "errors"}`), and every `/trader` answer carries a `Schwab-Client-CorrelId`.
Every `/trader` call needs `Authorization: Bearer <access token>` from `POST /v1/oauth/token`,
which takes the app key and secret as HTTP Basic, the way authlib sends them. A placed or
replacing order is answered 201 with an empty body and a `Location` on the real host
(`https://api.schwabapi.com/...`): schwab-py's `Utils.extract_order_id` matches only that.
Secrets never reach a log line or an error body.
"""

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from fakes.schwab.accounts import DEFAULT_ACCOUNT, Accounts
from fakes.schwab.auth import (
    ACCESS_LIFETIME_S,
    REFRESH_LIFETIME_S,
    Grant,
    RefreshState,
    TokenBook,
)
from fakes.schwab.control import Controls
from fakes.schwab.faults import SchwabFault, SchwabFaultRequest, SchwabFaults
from fakes.schwab.feed import pump
from fakes.schwab.order_lists import listed
from fakes.schwab.payloads import (
    ApiError,
    TokenRequest,
    basic_credentials,
    decode_order,
    order_terms,
    token_request,
)
from fakes.schwab.record import Record
from fakes.schwab.render import account_json, respond, user_preference_json
from fakes.schwab.stream import PATH as STREAM_PATH
from fakes.schwab.stream import ActivityStreamer
from fakes.schwab.venue import FakeVenue
from fakes.serving import hold_answer
from fakes.tastytrade.auth import TokenState
from fakes.tastytrade.faults import Fault
from fakes.tastytrade.instruments import Catalogue, builtin
from fakes.tastytrade.order_lists import new_york_date
from ticklane.kafka import ClientConfig
from ticklane.units import PRICE_SCALE

log = logging.getLogger(__name__)

API_HOST: Final = "https://api.schwabapi.com"
"""The host the `Location` of a new order names, whatever host the fake answers on."""
TOKEN_PATH: Final = "/v1/oauth/token"  # noqa: S105 - a path, not a secret
AUTHORIZE_PATH: Final = "/v1/oauth/authorize"
REFUSED_REFRESH: Final = {"error": "invalid_client", "error_description": "refresh token invalid"}
"""What a refused or expired refresh token gets; schwab-py docs show its `OAuthError`."""
RATE_LIMITED: Final = "Individual App's transactions per seconds restriction reached"
"""Schwab's 429 body is unknown (brokers.md 4); this is TD Ameritrade's, in Schwab's envelope."""
CORREL_HEADER: Final = "Schwab-Client-CorrelId"
_ORDERS: Final = "/trader/v1/accounts/{hash}/orders"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the fake behaves. `app_key`/`app_secret` None: any non-empty value is accepted.

    `strict_refresh` refuses refresh tokens the fake did not issue; otherwise an unknown one
    is taken as a login made when it is first seen (so a token file from an earlier run of
    the fake keeps working, and its seven days start over).
    """

    accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,)
    token_lifetime_s: int = ACCESS_LIFETIME_S
    refresh_lifetime_s: int = REFRESH_LIFETIME_S
    starting_cash: int = 1_000_000 * PRICE_SCALE
    any_symbol: bool = False
    app_key: str | None = None
    app_secret: str | None = None
    strict_refresh: bool = False
    faults: SchwabFaultRequest = SchwabFaultRequest()


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def _is_submit(request: web.Request) -> bool:
    """An order call Schwab throttles: place, replace or cancel (brokers.md 4)."""
    if request.method not in {"POST", "PUT", "DELETE"}:
        return False
    return "/orders" in request.path and request.path.startswith("/trader/")


def _grant_json(grant: Grant) -> dict[str, Any]:
    return {
        "expires_in": grant.expires_in,
        "token_type": "Bearer",
        "scope": "api",
        "refresh_token": grant.refresh_token,
        "access_token": grant.access_token,
        "id_token": grant.id_token,
    }


class FakeSchwab:
    """The whole fake: venue, record, tokens, faults, streamer, and the aiohttp application."""

    def __init__(
        self,
        config: FakeConfig,
        data_dir: Path,
        *,
        kafka: tuple[ClientConfig, list[str]] | None = None,
    ) -> None:
        self.config = config
        self.accounts = Accounts(config.accounts)
        self.faults = SchwabFaults()
        self.faults.arm(config.faults)
        self.tokens = TokenBook(config.token_lifetime_s, config.refresh_lifetime_s)
        self.streamer = ActivityStreamer(self.faults, self._authorized, secrets.token_hex(16))
        self.customer_id = secrets.token_hex(16)
        self.record = Record(data_dir)
        self.venue = FakeVenue(
            self.record,
            Catalogue(builtin(new_york_date(time.time_ns()))),
            self.faults,
            accounts=config.accounts,
            starting_cash=config.starting_cash,
            wall_ns=time.time_ns,
            publish=self.streamer.publish,
            any_symbol=config.any_symbol,
        )
        self._kafka = kafka
        self._feed_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def _authorized(self, token: str | None) -> bool:
        return self.tokens.check(token, time.time()) is TokenState.VALID

    # --- application

    def app(self) -> web.Application:
        """The aiohttp application: routes, middlewares, and the market-data task."""
        app = web.Application(middlewares=[self._errors, self._gate])
        r = app.router
        r.add_post(TOKEN_PATH, self.token)
        r.add_get(AUTHORIZE_PATH, self.authorize)
        r.add_get(STREAM_PATH, self.streamer.handle)
        r.add_get("/trader/v1/userPreference", self.user_preference)
        r.add_get("/trader/v1/accounts/accountNumbers", self.account_numbers)
        r.add_get("/trader/v1/accounts", self.all_accounts)
        r.add_get("/trader/v1/accounts/{hash}", self.account)
        r.add_get("/trader/v1/orders", self.all_orders)
        r.add_get(_ORDERS, self.orders)
        r.add_post(_ORDERS, self.place)
        r.add_post("/trader/v1/accounts/{hash}/previewOrder", self.preview)
        order = _ORDERS + r"/{id:\d+}"
        r.add_get(order, self.get_order)
        r.add_delete(order, self.cancel)
        r.add_put(order, self.replace)
        Controls(self.venue, self.faults, self.tokens, self.streamer).add_to(r)
        app.on_response_prepare.append(self._correl_id)
        app.on_startup.append(self._start_feed)
        app.on_shutdown.append(self._stop)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return respond(exc.body(), exc.status)
        except web.HTTPNotFound:
            return respond(ApiError(404, f"no route {request.method} {request.path}").body(), 404)
        except web.HTTPException:
            raise
        except ConnectionResetError:
            # The client went away mid-request (a killed executor): nobody is left to answer.
            # Where it died (reading the body, or after the record was written) the record
            # says, as it would at a real venue.
            log.info("fake schwab: %s %s: the client went away", request.method, request.path)
            return web.Response(status=499)
        except Exception:
            log.exception("fake schwab: %s %s failed", request.method, request.path)
            return respond(ApiError(500, "the fake failed; see its log").body(), 500)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Rate limit, then access token (and the `unauthorized` fault), for every `/trader`
        call."""
        if not request.path.startswith("/trader/"):
            return await handler(request)
        scope = self.faults.settings.rate_limit_scope
        if (scope == "any" or _is_submit(request)) and self.faults.take(Fault.RATE_LIMIT):
            log.info("fault: 429 for %s %s", request.method, request.path)
            return respond(ApiError(429, RATE_LIMITED).body(), 429)
        if self.faults.take(SchwabFault.UNAUTHORIZED):
            log.info("fault: 401 for %s %s", request.method, request.path)
            raise ApiError(401, "Client not authorized", "access revoked (fault)")
        state = self.tokens.check(request.headers.get("Authorization"), time.time())
        if state is not TokenState.VALID:
            raise ApiError(401, "Client not authorized", f"access token {state.value}")
        return await handler(request)

    async def _correl_id(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/trader/"):
            response.headers[CORREL_HEADER] = str(uuid.uuid4())

    async def _start_feed(self, _app: web.Application) -> None:
        if self._kafka is not None:
            config, topics = self._kafka
            self._feed_task = asyncio.ensure_future(
                pump(config, topics, self.venue.on_ticks, self.venue.catalogue.add)
            )

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

    # --- OAuth

    def _client_ok(self, credentials: tuple[str, str] | None) -> bool:
        if credentials is None or not credentials[1]:
            return False
        expected = ((self.config.app_key, credentials[0]), (self.config.app_secret, credentials[1]))
        return all(want is None or hmac.compare_digest(want, got) for want, got in expected)

    async def token(self, request: web.Request) -> web.Response:
        """`POST /v1/oauth/token`: the refresh and authorization-code grants."""
        if not self._client_ok(basic_credentials(request.headers.get("Authorization"))):
            return _oauth_error(401, "invalid_client", "client authentication failed")
        form = token_request(await request.post())  # type: ignore[arg-type]
        if form.grant_type == "refresh_token":
            return self._refresh(form)
        if form.grant_type == "authorization_code":
            if not self.tokens.take_code(form.code, time.time()):
                return _oauth_error(400, "invalid_grant", "authorization code invalid")
            grant = self.tokens.login(time.time())
            log.info("login: access token %d issued", self.tokens.issued)
            return web.json_response(_grant_json(grant))
        return _oauth_error(400, "unsupported_grant_type", "grant_type not supported")

    def _refresh(self, form: TokenRequest) -> web.Response:
        if not form.refresh_token:
            return _oauth_error(400, "invalid_request", "refresh_token is required")
        if self.faults.take(Fault.REFUSE_REFRESH):
            log.info("fault: refresh refused")
            return web.json_response(REFUSED_REFRESH, status=400)
        now = time.time()
        if not self.config.strict_refresh:
            self.tokens.adopt(form.refresh_token, now)
        fired = self.faults.take(SchwabFault.REFRESH_EXPIRED)
        if fired:
            self.tokens.expire_refresh(form.refresh_token)
        state = self.tokens.refresh_state(form.refresh_token, now)
        if state is RefreshState.EXPIRED and not fired:
            self.faults.count(SchwabFault.REFRESH_EXPIRED)
        if state is not RefreshState.VALID:
            log.info("refresh refused: refresh token %s", state.value)
            return web.json_response(REFUSED_REFRESH, status=400)
        grant = self.tokens.refresh(form.refresh_token, now)
        log.info("refresh: access token %d issued, valid %ds", self.tokens.issued, grant.expires_in)
        return web.json_response(_grant_json(grant))

    async def authorize(self, request: web.Request) -> web.Response:
        """`GET /v1/oauth/authorize`: the login page, skipped: straight back with a code."""
        client_id = request.query.get("client_id", "")
        redirect = request.query.get("redirect_uri", "")
        wanted = self.config.app_key
        if not client_id or not redirect or (wanted is not None and client_id != wanted):
            return _oauth_error(400, "invalid_request", "client_id and redirect_uri required")
        query = {"code": self.tokens.new_code(time.time()), "session": str(uuid.uuid4())}
        if "state" in request.query:
            query["state"] = request.query["state"]
        raise web.HTTPFound(f"{redirect}?{urlencode(query)}")

    # --- accounts

    def _account(self, request: web.Request) -> str:
        number = self.accounts.number(request.match_info["hash"])
        if number is None:
            raise ApiError(404, "Account not found", "no account has this hash value")
        return number

    def _account_body(self, number: str, fields: str) -> dict[str, Any]:
        wanted = {f.strip() for f in fields.split(",")}
        positions = self.venue.positions(number) if "positions" in wanted else None
        return account_json(number, self.venue.balances(number), positions)

    async def user_preference(self, request: web.Request) -> web.Response:
        """`GET /trader/v1/userPreference`: accounts, and the streamer at this fake's `/ws`."""
        host, port = request.transport.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
        url = f"ws://{host}:{port}{STREAM_PATH}"
        body = user_preference_json(
            self.accounts.numbers, url, self.streamer.correl_id, self.customer_id
        )
        return respond(body)

    async def account_numbers(self, _request: web.Request) -> web.Response:
        """`GET /trader/v1/accounts/accountNumbers`: `AccountNumberHash`es."""
        pairs = self.accounts.pairs()
        return respond([{"accountNumber": n, "hashValue": h} for n, h in pairs])

    async def all_accounts(self, request: web.Request) -> web.Response:
        """`GET /trader/v1/accounts` (`fields=positions`)."""
        fields = request.query.get("fields", "")
        return respond([self._account_body(n, fields) for n in self.accounts.numbers])

    async def account(self, request: web.Request) -> web.Response:
        """`GET /trader/v1/accounts/{hash}` (`fields=positions`)."""
        number = self._account(request)
        return respond(self._account_body(number, request.query.get("fields", "")))

    # --- orders

    async def all_orders(self, request: web.Request) -> web.Response:
        """`GET /trader/v1/orders`: every account's orders, filtered like one account's."""
        orders = listed(self.venue.visible_orders(None), request.query)
        return respond([self.venue.order_body(o) for o in orders])

    async def orders(self, request: web.Request) -> web.Response:
        """`GET /trader/v1/accounts/{hash}/orders`: entered in a time range, newest first."""
        orders = listed(self.venue.visible_orders(self._account(request)), request.query)
        return respond([self.venue.order_body(o) for o in orders])

    async def get_order(self, request: web.Request) -> web.Response:
        """`GET /trader/v1/accounts/{hash}/orders/{orderId}`."""
        order = self.venue.get(self._account(request), int(request.match_info["id"]))
        return respond(self.venue.order_body(order))

    async def preview(self, request: web.Request) -> web.Response:
        """`POST /trader/v1/accounts/{hash}/previewOrder`: checked and priced, never recorded."""
        account = self._account(request)
        terms = order_terms(decode_order(await request.read()))
        return respond(self.venue.preview(account, terms))

    async def place(self, request: web.Request) -> web.Response:
        """`POST /trader/v1/accounts/{hash}/orders`: 201, empty, `Location` of the new order."""
        account = self._account(request)
        terms = order_terms(decode_order(await request.read()))
        order = self.venue.place(account, terms)
        return await self._answer_submit(request, order.id)

    async def replace(self, request: web.Request) -> web.Response:
        """`PUT /trader/v1/accounts/{hash}/orders/{orderId}`: 201 with the new order's id."""
        account = self._account(request)
        terms = order_terms(decode_order(await request.read()))
        new = self.venue.replace(account, int(request.match_info["id"]), terms)
        return await self._answer_submit(request, new.id)

    async def cancel(self, request: web.Request) -> web.Response:
        """`DELETE /trader/v1/accounts/{hash}/orders/{orderId}`: 200, empty body."""
        self.venue.cancel(self._account(request), int(request.match_info["id"]))
        return web.Response(status=200)

    async def _answer_submit(self, request: web.Request, order_id: int) -> web.Response:
        """The answer to an accepted order, after the faults that strike once it is recorded."""
        if self.faults.take(Fault.TOKEN_EXPIRY_MID_SUBMIT):
            self.tokens.expire(request.headers.get("Authorization"))
        if self.faults.take(Fault.SERVER_ERROR_AFTER_ACCEPT):
            status = self.faults.settings.server_error_status
            return respond(ApiError(status, "Internal Server Error").body(), status)
        if self.faults.take(Fault.TIMEOUT_AFTER_ACCEPT):
            # Held past the client's timeout; a stopping server lets go at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.settings.timeout_hold_s)
        await hold_answer(self.faults, self._stopping)
        hash_value = request.match_info["hash"]
        location = f"{API_HOST}/trader/v1/accounts/{hash_value}/orders/{order_id}"
        return web.Response(status=201, headers={"Location": location})
