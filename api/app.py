"""The API's HTTP face: FastAPI routes over the store, versioned under /api/v1.

Reads (viewers and traders, or anyone with `open_reads`): positions, net positions, orders
and fills with filters and cursor pages, the live stream. Controls (traders only) write
`control` commands (`api.controls`); every control call and login, allowed or refused, is
audited to the `audit` topic. /health (alive), /ready (the store is writable and caught up
with the topics), /metrics. Every refusal is a 4xx with a reason; nothing a client sends
makes a 5xx (schemathesis checks it against the OpenAPI document FastAPI serves).
"""

import asyncio
import bisect
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.strategies.registry import StrategyRegistry
from api import views
from api.access import UNAUTHENTICATED, Access, dependencies, login_router
from api.auth import LoginLimiter, Sessions, Users
from api.controls import Publisher, controls_router
from api.materializer import Materializer
from api.metrics import ApiMetrics
from api.store import CursorError, Event, Store, Window
from api.strategies import strategies_view
from executors.risk import daily_pnl
from ticklane import __version__
from ticklane.settings import StrategyConfig
from ticklane.trading import OrderStatus

log = logging.getLogger(__name__)

PREFIX: Final = "/api/v1"
AUDITED: Final = ("/api/v1/controls", "/api/v1/login")
"""Calls written to the `audit` topic, allowed or refused."""
NS_MAX: Final = 2**63 - 1
STREAM_BATCH: Final = 500
STREAM_IDLE_S: Final = 0.05
"""How often a stream with nothing to send looks for news (a counter, not the store)."""
KEEPALIVE_S: Final = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""
DAY_NS: Final = 86_400 * 1_000_000_000
BarInterval = Literal["1s", "1m", "5m"]
INTERVAL_NS: Final[dict[str, int]] = {"1s": 10**9, "1m": 60 * 10**9, "5m": 300 * 10**9}
"""The bar topics' intervals (`ticklane.topics.BAR_INTERVALS`)."""
LAG_STALE_S: Final = 10.0
"""/ready fails when the topics' ends were last read longer ago than this."""

Name = Annotated[str | None, Query(max_length=200, description="Exact match.")]
Since = Annotated[
    int | None, Query(ge=0, le=NS_MAX, description="From this time (ns since the epoch).")
]
Until = Annotated[
    int | None, Query(ge=0, le=NS_MAX, description="Before this time (ns since the epoch).")
]
Cursor = Annotated[str, Query(max_length=500, description="`next_cursor` of the last page.")]


def _window(
    strategy: Name = None, symbol: Name = None, since: Since = None, until: Until = None
) -> Window:
    """The filters every list route takes, as query parameters."""
    return Window(strategy, symbol, since, until)


ListWindow = Annotated[Window, Depends(_window)]
REFUSALS: Final[dict[int | str, dict[str, Any]]] = {
    **UNAUTHENTICATED,
    400: {"model": views.Problem, "description": "A cursor this API did not make."},
    422: {"description": "A parameter out of range or of the wrong type."},
}


def closed_access() -> Access:
    """No users: reads and controls refused (the safe default of a bare `ApiState`)."""
    return Access(Users(), Sessions(3600.0), LoginLimiter(5, 60.0))


@dataclass
class ApiState:
    """What the routes read: the store, the materializer (None: no readiness), the limits."""

    store: Store
    metrics: ApiMetrics
    materializer: Materializer | None = None
    access: Access = field(default_factory=closed_access)
    publisher: Publisher | None = None
    """Where commands and audit records go (None: controls answer 503)."""
    registry: StrategyRegistry = field(default_factory=StrategyRegistry)
    strategies: list[StrategyConfig] = field(default_factory=list)
    """The agents' `[[agents.strategies]]`, for the strategies view."""
    multipliers: dict[str, int] = field(default_factory=dict)
    """Contract multipliers per symbol (the executor's), for P&L; others `default_multiplier`."""
    default_multiplier: int = 1
    page_size: int = 100
    max_page_size: int = 1_000
    ready_max_lag: int = 1_000
    recent: "RecentEvents" = field(init=False)
    """The stream's shared ring of rendered events."""

    def __post_init__(self) -> None:
        self.recent = RecentEvents(self.store)

    def page_limit(self, limit: int | None) -> int:
        """The page size asked for (the schema bounds it by `max_page_size`), or the default."""
        return self.page_size if limit is None else limit

    def readiness(self) -> views.Readiness:
        """Whether the store is writable and caught up, and if not, why."""
        reasons: list[str] = []
        behind = 0
        if not self.store.writable():
            reasons.append(f"the store {self.store.where} cannot be written")
        materializer = self.materializer
        if materializer is not None:
            behind = materializer.behind()
            if materializer.halted:
                reasons.append(materializer.halted)
            if materializer.error:
                reasons.append(materializer.error)
            if time.monotonic() - materializer.last_lag_at > LAG_STALE_S:
                reasons.append(f"the topics' ends have not been read for {LAG_STALE_S:.0f} s")
            if behind > self.ready_max_lag:
                reasons.append(
                    f"{behind} messages behind the topics (at most {self.ready_max_lag})"
                )
        return views.Readiness(ready=not reasons, behind=behind, reasons=reasons)


def create_app(state: ApiState) -> FastAPI:
    """The FastAPI application over `state`."""
    app = FastAPI(
        title="ticklane",
        version=__version__,
        description="Positions, orders and fills of a ticklane pipeline, from its topics.",
    )

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        template = getattr(request.scope.get("route"), "path", "unmatched")
        state.metrics.requests.labels(template, str(response.status_code)).inc()
        state.metrics.latency.labels(template).observe(time.perf_counter() - started)
        return response

    @app.middleware("http")
    async def audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.method != "GET" and request.url.path.startswith(AUDITED):
            record = {
                "ts": time.time_ns(),
                "user": getattr(request.state, "user", ""),
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "client": request.client.host if request.client else "",
                "command_id": response.headers.get("x-command-id", ""),
            }
            await run_in_threadpool(_audit, state, record)
        return response

    @app.exception_handler(CursorError)
    async def bad_cursor(request: Request, exc: CursorError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    reader, trader = dependencies(state.access)
    read = [Depends(reader)]
    app.include_router(_operations(state))
    app.include_router(login_router(state.access, reader))
    app.include_router(_positions(state), dependencies=read)
    app.include_router(_orders(state), dependencies=read)
    app.include_router(_stream(state), dependencies=read)
    app.include_router(_commands(state), dependencies=read)
    app.include_router(controls_router(trader, lambda: state.publisher, state.registry))
    return app


def _audit(state: ApiState, record: dict[str, Any]) -> None:
    body = json.dumps(record, separators=(",", ":")).encode()
    if state.publisher is None or not state.publisher.publish("audit", b"", body):
        # Never lost silently: the log keeps what the topic could not.
        log.error("audit record not written to Kafka: %s", body.decode())


def _operations(state: ApiState) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health")
    def health() -> views.Health:
        """Alive: the process answers."""
        return views.Health(status="ok")

    @router.get(
        "/ready",
        responses={503: {"model": views.Readiness, "description": "Not ready, and why."}},
    )
    def ready(response: Response) -> views.Readiness:
        """Ready: the store is writable and within `api.ready_max_lag` of the topics."""
        readiness = state.readiness()
        if not readiness.ready:
            response.status_code = 503
        return readiness

    @router.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _positions(state: ApiState) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["positions"])

    @router.get("/positions", responses=REFUSALS)
    def positions(strategy: Name = None, symbol: Name = None) -> list[views.PositionView]:
        """Every strategy's position per symbol, flat ones included (they carry realized P&L)."""
        return [views.position_view(p) for p in state.store.positions(strategy, symbol)]

    @router.get("/pnl", responses=REFUSALS)
    def pnl(
        day: Annotated[
            str | None,
            Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day (default: today)."),
        ] = None,
    ) -> views.PnlView:
        """P&L per strategy and symbol: realized from fills (net of fees), unrealized at the
        latest bar's close; the totals; and one day's realized P&L."""
        return _pnl(state, day)

    @router.get("/strategies", tags=["strategies"], responses=REFUSALS)
    def strategies() -> views.StrategiesView:
        """Each configured strategy per symbol: enabled, effective parameters (the declared
        defaults, the config's, then control commands'), last signal; and what each declares."""
        return strategies_view(state.store, state.registry, state.strategies)

    @router.get("/dead-letters", tags=["operations"], responses=REFUSALS)
    def dead_letters(
        limit: Annotated[int, Query(ge=1, le=state.max_page_size)] = 20,
    ) -> views.DeadLetters:
        """How many messages went to `dlq`, and the latest with their reasons."""
        count, latest = state.store.dead_letters(limit)
        items = [views.DeadLetterView(**msgspec.structs.asdict(d)) for d in latest]
        return views.DeadLetters(count=count, latest=items)

    @router.get("/positions/net", responses=UNAUTHENTICATED)
    def net_positions() -> list[views.NetPositionView]:
        """Per symbol, the position summed over strategies."""
        return views.net_positions(state.store.positions())

    @router.get("/processes", tags=["operations"], responses=REFUSALS)
    def processes() -> list[views.ProcessView]:
        """Every process that has reported (producer, agents, executor, api), by kind and
        instance: up, degraded, silent or stopped, with what it last said."""
        now = time.time_ns()
        return [views.process_view(s, now) for s in state.store.statuses()]

    @router.get("/instruments", tags=["instruments"], responses=REFUSALS)
    def instruments(
        *,
        symbol: Name = None,
        underlying: Name = None,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
        cursor: Cursor = "",
    ) -> views.InstrumentPage:
        """Instruments by symbol, as their latest definitions on `md.definition` describe
        them (tick size, multiplier, expiry, strike)."""
        page = state.store.instruments(
            limit=state.page_limit(limit), cursor=cursor, symbol=symbol, underlying=underlying
        )
        items = [views.instrument_view(d) for d in page.items]
        return views.InstrumentPage(items=items, next_cursor=page.next_cursor)

    return router


def _orders(state: ApiState) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["orders"])

    @router.get("/orders", responses=REFUSALS)
    def orders(
        *,
        window: ListWindow,
        status: OrderStatus | None = None,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
        cursor: Cursor = "",
    ) -> views.OrderPage:
        """Orders in their latest state, newest first, by signal time."""
        page = state.store.orders(
            limit=state.page_limit(limit),
            cursor=cursor,
            window=window,
            status="" if status is None else status.value,
        )
        items = [views.order_view(o) for o in page.items]
        return views.OrderPage(items=items, next_cursor=page.next_cursor)

    @router.get(
        "/orders/{client_order_id}",
        responses={
            **UNAUTHENTICATED,
            404: {"model": views.Problem, "description": "No such order."},
        },
    )
    def order(client_order_id: str) -> views.OrderView:
        """One order by its client order id."""
        found = state.store.order(client_order_id)
        if found is None:
            raise HTTPException(404, f"no order {client_order_id[:200]!r}")
        return views.order_view(found)

    @router.get("/signals", tags=["signals"], responses=REFUSALS)
    def signals(
        *,
        window: ListWindow,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
        cursor: Cursor = "",
    ) -> views.SignalPage:
        """The strategies' signals (target positions), newest first."""
        page = state.store.signals(limit=state.page_limit(limit), cursor=cursor, window=window)
        items = [views.signal_view(s) for s in page.items]
        return views.SignalPage(items=items, next_cursor=page.next_cursor)

    @router.get("/bars", tags=["bars"], responses=REFUSALS)
    def bars(
        *,
        symbol: Annotated[str, Query(min_length=1, max_length=200)],
        interval: Annotated[BarInterval, Query(description="One of the agents' intervals.")],
        since: Annotated[int, Query(ge=0, le=NS_MAX, description="From this open time.")] = 0,
        until: Until = None,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
    ) -> views.BarsView:
        """A symbol's bars for charts, oldest first, as the agents built them."""
        size = state.page_limit(limit)
        found = state.store.bars(
            symbol, INTERVAL_NS[interval], since=since, until=until, limit=size + 1
        )
        more = len(found) > size
        shown = found[:size]
        return views.BarsView(
            symbol=symbol,
            interval=interval,
            bars=[views.bar_view(b) for b in shown],
            next_since=found[size].ts_event if more else None,
        )

    @router.get("/indicators", tags=["bars"], responses=REFUSALS)
    def indicators(
        *,
        symbol: Annotated[str, Query(min_length=1, max_length=200)],
        interval: Annotated[BarInterval, Query(description="The strategies' bar interval.")],
        strategy: Name = None,
        since: Annotated[int, Query(ge=0, le=NS_MAX, description="From this bar open.")] = 0,
        until: Until = None,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
    ) -> views.IndicatorsView:
        """The strategies' indicator values per bar of a symbol, oldest first: the EMA or
        Supertrend each acted on, to draw beside `/bars`."""
        size = state.page_limit(limit)
        found = state.store.indicators(
            symbol,
            INTERVAL_NS[interval],
            strategy=strategy,
            since=since,
            until=until,
            limit=size + 1,
        )
        more = len(found) > size
        return views.IndicatorsView(
            symbol=symbol,
            interval=interval,
            points=[views.indicator_view(i) for i in found[:size]],
            next_since=found[size].ts_event if more else None,
        )

    @router.get("/fills", tags=["fills"], responses=REFUSALS)
    def fills(
        *,
        window: ListWindow,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
        cursor: Cursor = "",
    ) -> views.FillPage:
        """Fills, newest first."""
        page = state.store.fills(limit=state.page_limit(limit), cursor=cursor, window=window)
        items = [views.fill_view(f) for f in page.items]
        return views.FillPage(items=items, next_cursor=page.next_cursor)

    return router


def _stream(state: ApiState) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["stream"])

    @router.get(
        "/stream",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "Server-Sent Events: `id` (the change's number), `event` "
                "(position, order or fill) and `data` (its JSON, as the list routes answer).",
            },
            **UNAUTHENTICATED,
            400: {"model": views.Problem, "description": "A Last-Event-ID that is not a number."},
        },
    )
    async def stream(
        request: Request,
        after: Annotated[
            int | None,
            Query(ge=0, le=NS_MAX, description="Send the changes numbered after this; 0: all."),
        ] = None,
        last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    ) -> StreamingResponse:
        """Every change to positions, orders and fills, live. A client that reconnects with
        the `Last-Event-ID` header (browsers' EventSource do) gets every change it missed,
        once; without it or `after`, the changes from now on."""
        start = after
        if start is None and last_event_id is not None:
            if not last_event_id.strip().isdigit():
                raise HTTPException(400, f"Last-Event-ID {last_event_id[:40]!r} is not a number")
            start = int(last_event_id)
        if start is None:
            start = await run_in_threadpool(state.store.last_event)
        return StreamingResponse(
            _events(state, request, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


class RecentEvents:
    """The latest events as SSE text, shared by every stream client: each change is read from
    the store and rendered once, however many clients follow it. A client further behind than
    the ring reads the store itself until it catches up."""

    def __init__(self, store: Store, size: int = 20_000) -> None:
        self._store, self._size = store, size
        self._base: int | None = None
        """The number of the event just before the ring's first (None: not started yet):
        the ring holds every event after it, and a client at or past it is served here."""
        self._seqs: list[int] = []
        self._texts: list[str] = []
        self._version = -1
        self._lock = asyncio.Lock()

    async def after(self, seq: int) -> list[tuple[int, str]] | None:
        """The events numbered after `seq`, or None when the ring does not hold them all."""
        version = self._store.version
        if version != self._version:
            async with self._lock:
                if version != self._version:
                    await self._refresh()
                    self._version = version
        if self._base is None or seq < self._base:
            return None
        i = bisect.bisect_right(self._seqs, seq)
        return list(zip(self._seqs[i:], self._texts[i:], strict=True))

    async def _refresh(self) -> None:
        if self._base is None:
            # Start at the present; earlier events are a late client's to read from the store
            # (one resuming just before the present too: the ring has not the event it needs).
            self._base = await run_in_threadpool(self._store.last_event)
        last = self._seqs[-1] if self._seqs else self._base
        while True:
            batch = await run_in_threadpool(self._store.events, last, STREAM_BATCH)
            for event in batch:
                self._seqs.append(event.seq)
                self._texts.append(_sse(event))
                last = event.seq
            if len(batch) < STREAM_BATCH:
                break
        if len(self._seqs) > self._size:
            cut = len(self._seqs) - self._size
            self._base = self._seqs[cut - 1]
            del self._seqs[:cut], self._texts[:cut]


def _sse(event: Event) -> str:
    data = views.event_data(event.message)
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"


async def _events(state: ApiState, request: Request, after: int) -> AsyncIterator[str]:
    metrics = state.metrics
    metrics.stream_clients.inc()
    last, seen = after, -1
    quiet_since = time.monotonic()
    try:
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            version = state.store.version
            if version == seen:
                if time.monotonic() - quiet_since > KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(STREAM_IDLE_S)
                continue
            shared = await state.recent.after(last)
            if shared is None:
                # Behind the shared ring (a resumed or replaying client): from the store.
                batch = await run_in_threadpool(state.store.events, last, STREAM_BATCH)
                shared = [(event.seq, _sse(event)) for event in batch]
                if len(batch) < STREAM_BATCH:
                    seen = version
            else:
                seen = version  # the ring holds everything up to this version
            if shared:
                # One chunk per batch, not per event: each chunk costs a trip through the
                # server and the middlewares, whatever its size.
                yield "".join(text for _, text in shared)
                metrics.streamed.inc(len(shared))
                last = shared[-1][0]
            quiet_since = time.monotonic()
    finally:
        metrics.stream_clients.dec()


def _commands(state: ApiState) -> APIRouter:
    router = APIRouter(prefix=f"{PREFIX}/controls", tags=["controls"])

    @router.get("/commands", responses=REFUSALS)
    def commands(
        *,
        limit: Annotated[int | None, Query(ge=1, le=state.max_page_size)] = None,
        cursor: Cursor = "",
    ) -> views.CommandPage:
        """Commands newest first: pending until a process answers, then applied (by whom) or
        refused (and why)."""
        page = state.store.commands(limit=state.page_limit(limit), cursor=cursor)
        items = [views.command_status(c.command, c.acks) for c in page.items]
        return views.CommandPage(items=items, next_cursor=page.next_cursor)

    @router.get(
        "/commands/{command_id}",
        responses={
            **UNAUTHENTICATED,
            404: {"model": views.Problem, "description": "No such command."},
        },
    )
    def command(command_id: str) -> views.CommandStatus:
        """One command and every answer to it."""
        found = state.store.command(command_id)
        if found is None:
            raise HTTPException(404, f"no command {command_id[:200]!r}")
        return views.command_status(found.command, found.acks)

    return router


def _pnl(state: ApiState, day: str | None) -> views.PnlView:
    try:
        chosen = dt.date.fromisoformat(day) if day else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise HTTPException(422, f"day {day!r} is not a date") from None
    marks = state.store.marks()
    rows: list[views.PnlRow] = []
    realized = unrealized = fees = total = 0
    for position in state.store.positions():
        multiplier = state.multipliers.get(position.symbol, state.default_multiplier)
        row, open_pnl, row_total = views.pnl_row(position, marks.get(position.symbol), multiplier)
        rows.append(row)
        realized += position.realized_pnl
        fees += position.fees
        unrealized += open_pnl
        total += row_total
    fills = state.store.all_fills()
    multipliers = {
        f.symbol: state.multipliers.get(f.symbol, state.default_multiplier) for f in fills
    }
    start = int(dt.datetime.combine(chosen, dt.time(), dt.UTC).timestamp()) * 1_000_000_000
    day_fills = [f for f in fills if f.ts_event < start + DAY_NS]
    day_realized = daily_pnl(day_fills, day_start=start, multipliers=multipliers)
    return views.PnlView(
        day=chosen.isoformat(),
        rows=rows,
        realized=views.units(realized),
        unrealized=views.units(unrealized),
        fees=views.units(fees),
        total=views.units(total),
        day_realized=views.units(day_realized),
    )
