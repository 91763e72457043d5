"""Point a broker's SDK at another server without patching it: a rewriting httpx2 transport.

Neither `tastytrade` nor `schwab-py` takes a base URL, but both hand a `transport` to httpx2
(TastyTrade's session passes its keyword arguments to every client it makes, the account
streamer's websocket included; schwab-py's authlib client takes one too). A transport is the
one public way to send their requests to a local server: the fakes in `fakes/`, for tests
and the demo (each adapter's `api_url` setting). Path, query and headers stay as the SDK made
them, `Host` included; for a plain-http target, https becomes http and wss becomes ws.
"""

from typing import Final

import httpx2

_PLAIN: Final = {"https": "http", "wss": "ws"}


class RewritingTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Sends every request, sync or async, to `api_url` instead."""

    def __init__(self, api_url: str) -> None:
        target = httpx2.URL(api_url)
        self._plain = target.scheme == "http"
        self._host, self._port = target.host, target.port
        self._sync = httpx2.HTTPTransport()
        self._async = httpx2.AsyncHTTPTransport()

    def _rewrite(self, request: httpx2.Request) -> None:
        scheme = _PLAIN.get(request.url.scheme, request.url.scheme) if self._plain else None
        request.url = request.url.copy_with(
            scheme=scheme or request.url.scheme, host=self._host, port=self._port
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Deliver a sync client's request to the configured URL."""
        self._rewrite(request)
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Deliver an async client's request to the configured URL."""
        self._rewrite(request)
        return await self._async.handle_async_request(request)

    def close(self) -> None:
        """Close the sync pool's connections."""
        self._sync.close()

    async def aclose(self) -> None:
        """Close idle connections; the transport stays usable (TastyTrade's session and each
        streamer share it, and each closes it on exit)."""
        inner, self._async = self._async, httpx2.AsyncHTTPTransport()
        await inner.aclose()
