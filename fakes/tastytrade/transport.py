"""Point the real `tastytrade` SDK at the fake without patching it: a rewriting transport.

The SDK has no base-URL option, but `Session(secret, refresh, transport=...)` hands its
keyword arguments to httpx2's `AsyncClient`, and its `AlertStreamer` builds its own client from
the same arguments, so one transport carries REST and the account-streamer websocket
(brokers.md 6b). This one sends every request to 127.0.0.1:PORT, https becoming http and wss
becoming ws; the path, query and headers (the `Host` header too) stay as the SDK made them.

    session = Session("secret", "refresh", transport=LoopbackTransport(port))
"""

from types import TracebackType
from typing import Final, Self

import httpx2

_PLAIN: Final = {"https": "http", "wss": "ws"}


class LoopbackTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that delivers every request to one local port."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._inner = httpx2.AsyncHTTPTransport()

    def local_url(self, url: httpx2.URL) -> httpx2.URL:
        """Where a request for `url` really goes."""
        scheme = _PLAIN.get(url.scheme, url.scheme)
        return url.copy_with(scheme=scheme, host=self.host, port=self.port)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send the request to the local port."""
        request.url = self.local_url(request.url)
        return await self._inner.handle_async_request(request)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        # Clients share this transport (the session's and each streamer's), and every client
        # closes its transport on exit: the streamer's must not end the session's connections.
        # The pool's idle connections are closed; the pool itself stays usable.
        await self.aclose()

    async def aclose(self) -> None:
        """Close the idle connections; later requests open new ones."""
        inner, self._inner = self._inner, httpx2.AsyncHTTPTransport()
        await inner.aclose()
