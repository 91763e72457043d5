"""`/__fake/*`: the test controls (faults, market data without Kafka, instruments, rejections).

Never part of TastyTrade's API: a test or a demo uses them to steer the fake. They need no
token; the fake listens on 127.0.0.1 only.
"""

import msgspec
from aiohttp import web

from executors.brokers.paper.matching import NO_PRICE, Tick
from fakes.tastytrade.auth import TokenBook
from fakes.tastytrade.faults import FaultBook, FaultError, FaultRequest
from fakes.tastytrade.instruments import InstrumentSpec, from_spec
from fakes.tastytrade.payloads import ApiError
from fakes.tastytrade.stream import AccountStreamer
from fakes.tastytrade.venue import FakeVenue
from ticklane.market import BookSide
from ticklane.units import PriceError


class TickBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One tick for `POST /__fake/ticks`: a quote (bid/ask) or a trade, prices in 1e-9."""

    ts_event: int
    bid: int | None = None
    ask: int | None = None
    trade_price: int | None = None
    aggressor: BookSide = BookSide.NONE


class TicksBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /__fake/ticks`: ticks of one symbol (md or TastyTrade symbol), in time order."""

    symbol: str
    ticks: list[TickBody]


class Controls:
    """Handlers for `/__fake/*`."""

    def __init__(
        self, venue: FakeVenue, faults: FaultBook, tokens: TokenBook, streamer: AccountStreamer
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
        router.add_get("/__fake/state", self.state)

    async def get_faults(self, _request: web.Request) -> web.Response:
        """`GET /__fake/faults`: armed, fired and settings."""
        return web.json_response(msgspec.to_builtins(self._faults.view()))

    async def arm_faults(self, request: web.Request) -> web.Response:
        """`POST /__fake/faults`: arm faults (see `faults.py`)."""
        try:
            self._faults.arm(msgspec.json.decode(await request.read(), type=FaultRequest))
        except (msgspec.ValidationError, msgspec.DecodeError, FaultError) as exc:
            raise ApiError(400, "invalid_faults", str(exc)) from None
        return web.json_response(msgspec.to_builtins(self._faults.view()))

    async def post_ticks(self, request: web.Request) -> web.Response:
        """`POST /__fake/ticks`: market data without Kafka, matched like md.* ticks."""
        try:
            body = msgspec.json.decode(await request.read(), type=TicksBody)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ApiError(400, "invalid_ticks", str(exc)) from None
        instrument = self._venue.catalogue.get(body.symbol)
        symbol = instrument.md_symbol if instrument is not None else body.symbol
        self._venue.on_ticks(symbol, [_tick(t) for t in body.ticks])
        return web.json_response({"symbol": symbol, "ticks": len(body.ticks)})

    async def post_instruments(self, request: web.Request) -> web.Response:
        """`POST /__fake/instruments`: a list of instruments to add or replace."""
        try:
            specs = msgspec.json.decode(await request.read(), type=list[InstrumentSpec])
            added = [from_spec(s) for s in specs]
        except (msgspec.ValidationError, msgspec.DecodeError, PriceError) as exc:
            raise ApiError(400, "invalid_instruments", str(exc)) from None
        for instrument in added:
            self._venue.catalogue.add(instrument)
        return web.json_response({"added": [i.symbol for i in added]})

    async def reject(self, request: web.Request) -> web.Response:
        """`POST /__fake/orders/{id}/reject`: reject a working order after its 201."""
        order_id = int(request.match_info["id"])
        order = self._venue.record.order(order_id)
        if order is None:
            raise ApiError(404, "record_not_found", f"order {order_id} not found")
        rejected = self._venue.reject(order.account, order_id, "rejected by the fake's control")
        return web.json_response({"id": rejected.id, "status": rejected.status.value})

    async def state(self, _request: web.Request) -> web.Response:
        """`GET /__fake/state`: counters a test or a person can check."""
        return web.json_response(
            {
                "accounts": list(self._venue.accounts),
                "instruments": len(self._venue.catalogue),
                "ticks": self._venue.market.ticks,
                "market_clock": self._venue.market.clock,
                "tokens_issued": self._tokens.issued,
                "streams_open": self._streamer.open,
                "stream_connects": self._streamer.connects,
                "notifications_sent": self._streamer.sent,
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
