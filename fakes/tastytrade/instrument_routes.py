"""The instrument routes: `/instruments/...`, `/option-chains/...` and
`/futures-option-chains/...`, read from the catalogue."""

from aiohttp import web

from fakes.tastytrade.instrument_json import (
    future_option_json,
    instrument_json,
    nested_chains_json,
    nested_future_chain_json,
    option_json,
)
from fakes.tastytrade.payloads import ApiError
from fakes.tastytrade.render import Json, envelope, items
from fakes.tastytrade.venue import FakeVenue
from fakes.tastytrade.vocab import InstrumentType


class InstrumentRoutes:
    """The endpoints the SDK's `Equity`, `Future`, `Option`, `FutureOption` and option chains
    call."""

    def __init__(self, venue: FakeVenue) -> None:
        self._venue = venue

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register the routes."""
        router.add_get("/instruments/equities", self.equities)
        router.add_get("/instruments/equities/{symbol}", self.equity)
        router.add_get("/instruments/futures", self.futures)
        router.add_get("/instruments/futures/{symbol}", self.future)
        router.add_get("/instruments/equity-options", self.options)
        router.add_get("/instruments/equity-options/{symbol}", self.option)
        router.add_get("/option-chains/{symbol}/nested", self.nested_chain)
        router.add_get("/option-chains/{symbol}", self.chain)
        # The SDK sends a future option's `/` as %2F; the pattern takes it either way aiohttp
        # hands the path over (decoded or not).
        router.add_get("/instruments/future-options/{symbol:.+}", self.future_option)
        router.add_get("/futures-option-chains/{symbol}/nested", self.nested_future_chain)
        router.add_get("/futures-option-chains/{symbol}", self.future_chain)

    def _instrument(self, request: web.Request, kind: InstrumentType) -> Json:
        symbol = request.match_info["symbol"]
        instrument = self._venue.catalogue.get(symbol)
        if instrument is None or instrument.instrument_type is not kind:
            raise ApiError(404, "record_not_found", f"{kind.value} {symbol} not found")
        return instrument_json(instrument, self._venue.today(), 1)

    def _listed(self, request: web.Request, kind: InstrumentType) -> list[Json]:
        wanted = set(request.query.getall("symbol[]", []))
        codes = set(request.query.getall("product-code[]", []))
        listed = self._venue.catalogue.of_type(kind)
        chosen = [
            i
            for i in listed
            if (
                not wanted
                or i.symbol in wanted
                or f"/{i.md_symbol}" in wanted
                or i.md_symbol in wanted
            )
            and (not codes or i.root in codes)
        ]
        today = self._venue.today()
        return [instrument_json(i, today, n) for n, i in enumerate(chosen, 1)]

    async def equities(self, request: web.Request) -> web.Response:
        """`GET /instruments/equities?symbol[]=...`."""
        return envelope(items(self._listed(request, InstrumentType.EQUITY)))

    async def equity(self, request: web.Request) -> web.Response:
        """`GET /instruments/equities/{symbol}`."""
        return envelope(self._instrument(request, InstrumentType.EQUITY))

    async def futures(self, request: web.Request) -> web.Response:
        """`GET /instruments/futures?symbol[]=...&product-code[]=...`."""
        return envelope(items(self._listed(request, InstrumentType.FUTURE)))

    async def future(self, request: web.Request) -> web.Response:
        """`GET /instruments/futures/{symbol}` (the SDK drops the slash)."""
        return envelope(self._instrument(request, InstrumentType.FUTURE))

    async def options(self, request: web.Request) -> web.Response:
        """`GET /instruments/equity-options?symbol[]=...`."""
        return envelope(items(self._listed(request, InstrumentType.EQUITY_OPTION)))

    async def option(self, request: web.Request) -> web.Response:
        """`GET /instruments/equity-options/{occ}`."""
        return envelope(self._instrument(request, InstrumentType.EQUITY_OPTION))

    async def nested_chain(self, request: web.Request) -> web.Response:
        """`GET /option-chains/{symbol}/nested`: one chain per root."""
        options = self._venue.catalogue.options_on(request.match_info["symbol"])
        return envelope(items(nested_chains_json(options, self._venue.today())))

    async def chain(self, request: web.Request) -> web.Response:
        """`GET /option-chains/{symbol}`: every option, flat."""
        today = self._venue.today()
        options = self._venue.catalogue.options_on(request.match_info["symbol"])
        return envelope(items([option_json(o, today) for o in options]))

    async def future_option(self, request: web.Request) -> web.Response:
        """`GET /instruments/future-options/{symbol}` (`./ESM4 ESM4  240621P5230`)."""
        return envelope(self._instrument(request, InstrumentType.FUTURE_OPTION))

    def _product(self, request: web.Request) -> str:
        """The product code a futures option chain is asked for; 404 if the fake has none."""
        product = request.match_info["symbol"].removeprefix("/")
        catalogue = self._venue.catalogue
        if not catalogue.futures_of(product) and not catalogue.future_options_on(product):
            raise ApiError(404, "record_not_found", f"futures option chain {product} not found")
        return product

    async def nested_future_chain(self, request: web.Request) -> web.Response:
        """`GET /futures-option-chains/{product}/nested`: the product's futures and options."""
        product = self._product(request)
        catalogue = self._venue.catalogue
        return envelope(
            nested_future_chain_json(
                product,
                catalogue.futures_of(product),
                catalogue.future_options_on(product),
                self._venue.today(),
            )
        )

    async def future_chain(self, request: web.Request) -> web.Response:
        """`GET /futures-option-chains/{product}`: every option of the product, flat."""
        today = self._venue.today()
        options = self._venue.catalogue.future_options_on(self._product(request))
        return envelope(items([future_option_json(o, today) for o in options]))
