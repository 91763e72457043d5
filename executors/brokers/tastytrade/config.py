"""TastyTrade's configuration: credentials, environment, and where requests go.

OAuth2 only (tastytrade retired username and password logins in 2025): a client secret (the
OAuth application's) and a refresh token (a grant a person creates once on the website), which
the SDK trades for a 15-minute access token and refreshes by itself. Both come from the
environment or 0600 files (`ticklane.secrets`), travel as `SecretStr`, and are handed to the
SDK's `Session` only; none of the three ever reaches a log line or an error message.
"""

import logging
import warnings
from dataclasses import dataclass
from typing import Final

import httpx2
from pydantic import SecretStr

from ticklane.secrets import read_secret
from ticklane.settings import TastytradeSettings

# The names of the variables that hold the secrets, not secrets.
CLIENT_SECRET_VAR: Final = "TASTYTRADE_CLIENT_SECRET"  # noqa: S105
REFRESH_TOKEN_VAR: Final = "TASTYTRADE_REFRESH_TOKEN"  # noqa: S105

# The SDK logs every streamer subscription at DEBUG, bearer token included, and httpx2's
# lower layers log headers at DEBUG: held at INFO, whatever the process's level; httpx2 also
# logs every request at INFO, which is noise in an executor's log: held at WARNING.
_CHATTY_LOGGERS: Final = {
    "tastytrade": logging.INFO,
    "httpx2": logging.WARNING,
    "httpcore2": logging.WARNING,
    "httpcore": logging.WARNING,
}
_PLAIN: Final = {"https": "http", "wss": "ws"}


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the SDK's session needs; the repr shows neither value."""

    client_secret: SecretStr
    refresh_token: SecretStr


def credentials() -> Credentials:
    """The client secret and refresh token from the environment or their 0600 files."""
    return Credentials(read_secret(CLIENT_SECRET_VAR), read_secret(REFRESH_TOKEN_VAR))


class RewritingTransport(httpx2.AsyncBaseTransport):
    """Sends every request (REST and the streamer's websocket) to `api_url` instead.

    The SDK has no base-URL option, but hands its session's keyword arguments to httpx2 for
    REST and for the account streamer alike, so a transport is the one public way to point it
    at a local server (the fake). Path, query and headers stay as the SDK made them.
    """

    def __init__(self, api_url: str) -> None:
        target = httpx2.URL(api_url)
        self._plain = target.scheme == "http"
        self._host, self._port = target.host, target.port
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Deliver the request to the configured URL (https and wss become plain for http)."""
        scheme = _PLAIN.get(request.url.scheme, request.url.scheme) if self._plain else None
        request.url = request.url.copy_with(
            scheme=scheme or request.url.scheme, host=self._host, port=self._port
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close idle connections; the transport stays usable (the session and each streamer
        share it, and each closes it on exit)."""
        inner, self._inner = self._inner, httpx2.AsyncHTTPTransport()
        await inner.aclose()


def quiet_sdk_logs() -> None:
    """Keep the SDK's and httpx2's debug output, which carries tokens, out of every log."""
    for name, floor in _CHATTY_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), floor))
    # The SDK posts its JSON as `data=`, which httpx2 deprecates on every order: not ours.
    warnings.filterwarnings(
        "ignore", message=r"Use 'content=<\.\.\.>'", category=DeprecationWarning
    )


def describe(settings: TastytradeSettings) -> str:
    """Where orders go, for the start-up log line (no secrets in it)."""
    where = settings.api_url or settings.environment
    return f"tastytrade {where}{' (dry run)' if settings.dry_run else ''}"
