"""`/__fake/*`: the test controls (faults, market data without Kafka, instruments, rejections,
and token files).

Never part of Schwab's API: a test or a demo uses them to steer the fake. They need no token;
the fake listens on 127.0.0.1 only. `POST /__fake/tokens` answers with a token file (the one
place the fake hands out a refresh token outside its token endpoint), so the file is the
caller's to keep secret; nothing here logs it.
"""

import time

import msgspec
from aiohttp import web

from executors.brokers.paper.matching import NO_PRICE, Tick
from fakes.schwab.auth import TokenBook, token_file
from fakes.schwab.faults import SchwabFaultRequest, SchwabFaults
from fakes.schwab.payloads import ApiError, bad_request
from fakes.schwab.render import respond
from fakes.schwab.stream import ActivityStreamer
from fakes.schwab.venue import FakeVenue
from fakes.tastytrade.control import TickBody, TicksBody
from fakes.tastytrade.faults import FaultError
from fakes.tastytrade.instruments import InstrumentSpec, from_spec
from ticklane.units import PriceError


class TokenFileRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /__fake/tokens`: a login `age_s` seconds ago; `access_expired` for a stale file."""

    age_s: float = 0.0
    access_expired: bool = False


class Controls:
    """Handlers for `/__fake/*`."""

    def __init__(
        self, venue: FakeVenue, faults: SchwabFaults, tokens: TokenBook, streamer: ActivityStreamer
    ) -> None:
        self._venue = venue
        self._faults = faults
        self._tokens = tokens
        self._streamer = streamer

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register the routes."""
        router.add_get("/__fake/faults", self.get_faults)
        router.add_post("/__fake/faults", self.arm_faults)
        router.add_post("/__fake/ticks", self.post_ticks)
        router.add_post("/__fake/instruments", self.post_instruments)
        router.add_post(r"/__fake/orders/{id:\d+}/reject", self.reject)
        router.add_post("/__fake/tokens", self.post_tokens)
        router.add_get("/__fake/state", self.state)

    async def get_faults(self, _request: web.Request) -> web.Response:
        """`GET /__fake/faults`: armed, fired and settings."""
        return respond(msgspec.to_builtins(self._faults.view()))

    async def arm_faults(self, request: web.Request) -> web.Response:
        """`POST /__fake/faults`: arm faults (see `faults.py`)."""
        try:
            self._faults.arm(msgspec.json.decode(await request.read(), type=SchwabFaultRequest))
        except (msgspec.ValidationError, msgspec.DecodeError, FaultError) as exc:
            raise bad_request("invalid faults", str(exc)) from None
        return respond(msgspec.to_builtins(self._faults.view()))

    async def post_ticks(self, request: web.Request) -> web.Response:
        """`POST /__fake/ticks`: market data without Kafka, matched like md.* ticks."""
        try:
            body = msgspec.json.decode(await request.read(), type=TicksBody)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise bad_request("invalid ticks", str(exc)) from None
        instrument = self._venue.catalogue.get(body.symbol)
        symbol = instrument.md_symbol if instrument is not None else body.symbol
        self._venue.on_ticks(symbol, [_tick(t) for t in body.ticks])
        return respond({"symbol": symbol, "ticks": len(body.ticks)})

    async def post_instruments(self, request: web.Request) -> web.Response:
        """`POST /__fake/instruments`: instruments to add or replace (the TastyTrade fake's
        `InstrumentSpec`, `instrument_type` "Equity" or "Equity Option")."""
        try:
            specs = msgspec.json.decode(await request.read(), type=list[InstrumentSpec])
            added = [from_spec(s) for s in specs]
        except (msgspec.ValidationError, msgspec.DecodeError, PriceError) as exc:
            raise bad_request("invalid instruments", str(exc)) from None
        for instrument in added:
            self._venue.catalogue.add(instrument)
        return respond({"added": [i.symbol for i in added]})

    async def reject(self, request: web.Request) -> web.Response:
        """`POST /__fake/orders/{id}/reject`: reject a working order after its 201."""
        order_id = int(request.match_info["id"])
        order = self._venue.record.order(order_id)
        if order is None:
            raise ApiError(404, f"Order {order_id} not found")
        rejected = self._venue.reject(order.account, order_id, "rejected by the fake's control")
        return respond({"orderId": rejected.id, "status": rejected.status.value})

    async def post_tokens(self, request: web.Request) -> web.Response:
        """`POST /__fake/tokens`: a schwab-py token file from a login `age_s` seconds ago."""
        try:
            body = msgspec.json.decode(await request.read() or b"{}", type=TokenFileRequest)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise bad_request("invalid token request", str(exc)) from None
        now = time.time()
        grant = self._tokens.login(now, age_s=body.age_s, access_expired=body.access_expired)
        return respond(token_file(grant, now - body.age_s))

    async def state(self, _request: web.Request) -> web.Response:
        """`GET /__fake/state`: counters a test or a person can check."""
        return respond(
            {
                "accounts": list(self._venue.accounts),
                "instruments": len(self._venue.catalogue),
                "ticks": self._venue.market.ticks,
                "market_clock": self._venue.market.clock,
                "tokens_issued": self._tokens.issued,
                "streams_open": self._streamer.open,
                "stream_logins": self._streamer.logins,
                "messages_sent": self._streamer.sent,
                "record": str(self._venue.record.path),
            }
        )


def _tick(body: TickBody) -> Tick:
    return Tick(
        body.ts_event,
        bid=NO_PRICE if body.bid is None else body.bid,
        ask=NO_PRICE if body.ask is None else body.ask,
        trade_price=NO_PRICE if body.trade_price is None else body.trade_price,
        aggressor=body.aggressor,
    )
