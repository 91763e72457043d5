"""Schwab's configuration: app key and secret, the token file, and the SDK's async client.

The client is built the way schwab-py's `client_from_access_functions` builds it (1.5.1,
`auth.py`): an authlib `AsyncOAuth2Client` holding the token file's token, with the token
endpoint, a 300 s leeway, and a write-back after every refresh. Never the login flow's
client (it has no token endpoint and dies after about 25 minutes). One keyword more, the
`transport`, sends every request to `api_url` (tests and the fake only).

The token file (`{"creation_timestamp": ..., "token": {...}}`) is written atomically: a temp
file in the same directory, mode 0600, then `os.replace`. The app secret and the tokens
never reach a log line or an error message.
"""

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from pydantic import SecretStr
from schwab.auth import TOKEN_ENDPOINT, TokenMetadata  # type: ignore[import-untyped]
from schwab.client import AsyncClient  # type: ignore[import-untyped]

from executors.brokers.base import BrokerError
from executors.brokers.transport import RewritingTransport
from ticklane.secrets import SecretError, read_secret
from ticklane.settings import SchwabSettings

# The names of the variables that hold the secrets, not secrets.
APP_KEY_VAR: Final = "SCHWAB_APP_KEY"
APP_SECRET_VAR: Final = "SCHWAB_APP_SECRET"  # noqa: S105
TOKEN_FILE_NAME: Final = "schwab-token.json"  # noqa: S105 - a file name
LEEWAY_S: Final = 300
"""What schwab-py passes authlib: refresh when the access token has 5 minutes left."""
AUTH_COMMAND: Final = "ticklane auth schwab"
"""What renews the login (a person, in a browser, once a week)."""

# authlib and httpx2 log requests and headers at DEBUG, tokens included: held up.
_CHATTY_LOGGERS: Final = {
    "schwab": logging.INFO,
    "authlib": logging.WARNING,
    "httpx2": logging.WARNING,
    "httpcore2": logging.WARNING,
    "httpcore": logging.WARNING,
    "websockets": logging.WARNING,
}

REFRESH_LIFETIME_S: Final = 7 * 24 * 3600
"""A refresh token dies seven days after the browser login that made it."""

TokenFile = dict[str, Any]


class LoginState(StrEnum):
    """What the refresh token's age allows; the executor follows it (`trading_state`)."""

    OK = "ok"
    REDUCING = "reducing"
    """Within a day of expiry (`reducing_after_days`): only reduce positions."""
    HALTED = "halted"
    """Expired: nothing can be sent until a person logs in again."""


class TokenFileError(BrokerError):
    """The token file is missing or unreadable (nothing was sent); the message says how to
    make one."""


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """The app's key and secret; the repr shows neither."""

    app_key: SecretStr
    app_secret: SecretStr


def credentials(settings: SchwabSettings) -> AppCredentials:
    """The app key (SCHWAB_APP_KEY, else the setting) and secret (SCHWAB_APP_SECRET)."""
    try:
        key = read_secret(APP_KEY_VAR)
    except SecretError:
        if settings.app_key is None:
            raise
        key = SecretStr(settings.app_key)
    return AppCredentials(key, read_secret(APP_SECRET_VAR))


def token_path(settings: SchwabSettings, data_dir: Path) -> Path:
    """Where the token file lives."""
    return settings.token_file or data_dir / TOKEN_FILE_NAME


def read_token_file(path: Path) -> TokenFile:
    """The token file's contents (no token in any error)."""
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        raise TokenFileError(f"no Schwab token file at {path}: run `{AUTH_COMMAND}`") from None
    except (OSError, ValueError) as exc:
        raise TokenFileError(
            f"the Schwab token file {path} cannot be read ({type(exc).__name__}); "
            f"run `{AUTH_COMMAND}`"
        ) from None
    if not isinstance(loaded, dict) or "token" not in loaded:
        raise TokenFileError(f"{path} is not a schwab-py token file: run `{AUTH_COMMAND}`")
    return loaded


def write_token_file(path: Path, contents: TokenFile) -> None:
    """Write the token file atomically, mode 0600 (temp file in the same dir, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(contents, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def token_age_s(contents: TokenFile, now: float | None = None) -> float:
    """Seconds since the login that made the refresh token (`creation_timestamp`)."""
    created = float(contents.get("creation_timestamp") or 0)
    return (time.time() if now is None else now) - created


def login_state(age_s: float, reducing_after_days: float) -> LoginState:
    """The state a refresh token `age_s` old puts trading in."""
    if age_s >= REFRESH_LIFETIME_S:
        return LoginState.HALTED
    if age_s >= reducing_after_days * 24 * 3600:
        return LoginState.REDUCING
    return LoginState.OK


def login_advice(state: LoginState, age_s: float) -> str:
    """The log line for a state, with the command that fixes it ("" when all is well)."""
    days = age_s / (24 * 3600)
    if state is LoginState.HALTED:
        return f"the Schwab login is {days:.1f} days old and has expired: run `{AUTH_COMMAND}`"
    if state is LoginState.REDUCING:
        left_h = max(REFRESH_LIFETIME_S - age_s, 0) / 3600
        return (
            f"the Schwab login is {days:.1f} days old and expires in {left_h:.0f} h: "
            f"run `{AUTH_COMMAND}`"
        )
    return ""


def async_client(
    credentials: AppCredentials,
    path: Path,
    *,
    timeout_s: float,
    api_url: str | None = None,
) -> Any:
    """A schwab-py `AsyncClient` from the token file, writing refreshed tokens back to it."""
    loaded = read_token_file(path)
    metadata = TokenMetadata.from_loaded_token(
        loaded, lambda token, *_a, **_k: write_token_file(path, token)
    )
    wrapped = metadata.wrapped_token_write_func()

    async def update_token(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        wrapped(token, *args, **kwargs)

    key = credentials.app_key.get_secret_value()
    extra: dict[str, Any] = {}
    if api_url:
        extra["transport"] = RewritingTransport(api_url)
    session = AsyncOAuth2Client(
        key,
        client_secret=credentials.app_secret.get_secret_value(),
        token=metadata.token,
        token_endpoint=TOKEN_ENDPOINT,
        update_token=update_token,
        leeway=LEEWAY_S,
        **extra,
    )
    client = AsyncClient(key, session, token_metadata=metadata)
    # schwab-py sets its own 30 s on the session it is given: ours replaces it.
    client.set_timeout(httpx2.Timeout(timeout_s))
    return client


def quiet_sdk_logs() -> None:
    """Keep the SDK's, authlib's and httpx2's debug output, which carries tokens, out."""
    for name, floor in _CHATTY_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), floor))


def describe(settings: SchwabSettings) -> str:
    """Where orders go, for the start-up log line (no secrets in it)."""
    return f"schwab {settings.api_url or 'api.schwabapi.com'}"
