"""Run a fake venue on 127.0.0.1: in a background thread (tests), or in the foreground (the CLI).

The thread has its own event loop; `call` runs a function on it, so a test can reach into
the venue (ticks, faults, tokens) without racing the server. Each venue's `background.py`
says how to build its fake and adds what its SDK needs to reach it.
"""

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from aiohttp import web

from fakes.tastytrade.faults import FaultSettings
from ticklane.kafka import ClientConfig

T = TypeVar("T")

HOST: Final = "127.0.0.1"
SHUTDOWN_S: Final = 1.0
"""How long a held answer (the timeout fault) may delay a stop before it is cancelled."""


class HeldAnswers(Protocol):
    """A fake's faults as far as holding answers goes (both venues' fault books)."""

    @property
    def settings(self) -> FaultSettings: ...

    def hold(self) -> None: ...

    def release(self) -> None: ...


async def hold_answer(faults: HeldAnswers, stopping: asyncio.Event) -> None:
    """Hold an accepted order's answer `answer_delay_s` (a venue's round trip; a stopping server
    lets go at once), counted while held: answers held together show orders sent together."""
    delay = faults.settings.answer_delay_s
    if delay <= 0:
        return
    faults.hold()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
    finally:
        faults.release()


class Fake(Protocol):
    """What a fake venue gives the server: its aiohttp application, and a close."""

    def app(self) -> web.Application: ...

    def close(self) -> None: ...


F = TypeVar("F", bound=Fake)
C = TypeVar("C")


async def start_site(fake: Fake, port: int) -> tuple[web.AppRunner, int]:
    """Serve the fake's application on 127.0.0.1:port (0: a free port); the runner and port."""
    runner = web.AppRunner(fake.app(), access_log=None, shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    server = site._server  # aiohttp exposes the bound port nowhere else
    sockets = getattr(server, "sockets", None) or []
    return runner, int(sockets[0].getsockname()[1]) if sockets else port


async def _cancel_the_rest() -> None:
    """End what a stopped server left (handlers of clients that went away), before the loop."""
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


class BackgroundServer(Generic[F, C]):
    """A fake in a daemon thread named `thread_name`, on a free loopback port."""

    thread_name = "fake"

    def __init__(
        self,
        data_dir: Path,
        config: C,
        *,
        port: int = 0,
        kafka: tuple[ClientConfig, list[str]] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self._port = port
        self._kafka = kafka
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._fake: F | None = None

    def build(self, kafka: tuple[ClientConfig, list[str]] | None) -> F:
        """The fake venue itself (each venue's server says how)."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The bound port (after `start`)."""
        return self._port

    @property
    def url(self) -> str:
        """Where the fake answers."""
        return f"http://{HOST}:{self._port}"

    @property
    def fake(self) -> F:
        """The running fake (only touch it through `call`)."""
        if self._fake is None:
            raise RuntimeError("the fake is not running")
        return self._fake

    def start(self) -> Self:
        """Build the fake and serve it from a background thread."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        try:
            self._fake = self.build(self._kafka)
            self._runner, self._port = self._submit(start_site(self._fake, self._port)).result(10)
        except BaseException:
            self.stop()
            raise
        return self

    def _submit(self, coro: Coroutine[Any, Any, T]) -> "Future[T]":
        if self._loop is None:
            raise RuntimeError("the fake is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, fn: Callable[[F], T]) -> T:
        """Run `fn(fake)` on the server's loop and return its result."""

        async def run() -> T:
            return fn(self.fake)

        return self._submit(run()).result(10)

    def stop(self) -> None:
        """Stop serving, close the record and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            with contextlib.suppress(Exception):
                self._submit(self._runner.cleanup()).result(10 + SHUTDOWN_S)
            with contextlib.suppress(Exception):
                self._submit(_cancel_the_rest()).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        if self._fake is not None:
            self._fake.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
