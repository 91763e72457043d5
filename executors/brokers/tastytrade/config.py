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


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the SDK's session needs; the repr shows neither value."""

    client_secret: SecretStr
    refresh_token: SecretStr


def credentials() -> Credentials:
    """The client secret and refresh token from the environment or their 0600 files."""
    return Credentials(read_secret(CLIENT_SECRET_VAR), read_secret(REFRESH_TOKEN_VAR))


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
