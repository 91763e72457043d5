"""`ticklane auth schwab`: the weekly browser login that makes Schwab's token file.

schwab-py's manual flow, from the SDK's own pieces: `get_auth_context` makes the authorize
URL, the person opens it, logs in, and pastes back the URL the browser was sent to; the code
in it is traded for tokens at `TOKEN_ENDPOINT` exactly as `client_from_received_url` does,
and the token is wrapped by `TokenMetadata` (`creation_timestamp` + `token`). No client is
built from the login (schwab-py bug #222: such a client lacks the token endpoint and dies
with its first access token): the command only writes the file, atomically and 0600, with
the adapter's writer. The executor then builds its own client from the file.

With `api_url` set (`executor.schwab.api_url`: the local fake) the authorize URL and the
token request go there instead. Neither the app secret nor any token is ever printed.
"""

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import parse_qs, urlsplit, urlunsplit

import typer

from executors.brokers.base import BrokerError
from ticklane.cli import ConfigOption, fail, settings_or_exit
from ticklane.secrets import SecretError
from ticklane.settings import SchwabSettings

if TYPE_CHECKING:
    from executors.brokers.schwab.config import AppCredentials

DEFAULT_CALLBACK_URL: Final = "https://127.0.0.1:8182"
"""schwab-py's usual callback; it must equal the app's callback URL at developer.schwab.com."""
CALLBACK_VAR: Final = "SCHWAB_CALLBACK_URL"
DAY_S: Final = 24 * 3600
REFRESH_LIFETIME_S: Final = 7 * DAY_S
"""As `config.REFRESH_LIFETIME_S` (not imported here: the SDK loads only when logging in)."""
AUTH_COMMAND: Final = "ticklane auth schwab"

auth_app = typer.Typer(
    help="Logins a person makes in a browser for a broker (Schwab: once a week).",
    no_args_is_help=True,
)


class LoginError(BrokerError):
    """The login did not complete; nothing was written. The message holds no secret."""


@dataclass(frozen=True, slots=True)
class Login:
    """A written login: where, and when it was made."""

    path: Path
    created: float


def authorize_url(app_key: str, callback_url: str, api_url: str | None) -> tuple[str, str]:
    """The URL to open, and the OAuth state to expect back (the fake's host with `api_url`)."""
    from schwab.auth import get_auth_context  # type: ignore[import-untyped]  # noqa: PLC0415

    context = get_auth_context(app_key, callback_url)
    url: str = context.authorization_url
    if api_url:
        target = urlsplit(api_url)
        parts = urlsplit(url)
        url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))
    return url, str(context.state)


def check_redirect(received: str, callback_url: str, state: str) -> str:
    """The pasted redirect URL, stripped, if it is the callback's with a code and our state."""
    received = received.strip()
    if not received:
        raise LoginError("no redirect URL was pasted: nothing written")
    want, got = urlsplit(callback_url), urlsplit(received)
    if (got.scheme, got.netloc) != (want.scheme, want.netloc):
        raise LoginError(
            f"the pasted URL does not start with the callback URL {callback_url}: paste the "
            "whole address the browser was sent to after the login; nothing written"
        )
    query = parse_qs(got.query)
    if not query.get("code"):
        raise LoginError(
            "the pasted URL carries no authorization code (was the login refused?); nothing written"
        )
    if query.get("state", [state]) != [state]:
        raise LoginError(
            "the pasted URL is from another login attempt (its state differs): open the URL "
            "printed by this run; nothing written"
        )
    return received


def fetch_token(
    credentials: "AppCredentials",
    callback_url: str,
    received: str,
    state: str,
    *,
    api_url: str | None,
    timeout_s: float,
) -> dict[str, Any]:
    """Trade the code for tokens as `client_from_received_url` does (no client kept)."""
    # The SDK and authlib load only here: `ticklane`'s other commands do without them.
    import httpx2  # noqa: PLC0415
    from authlib.integrations.base_client.errors import (  # type: ignore[import-untyped]  # noqa: PLC0415
        OAuthError,
    )
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]  # noqa: PLC0415
        OAuth2Client,
    )
    from schwab.auth import TOKEN_ENDPOINT  # noqa: PLC0415

    from executors.brokers.transport import RewritingTransport  # noqa: PLC0415

    key = credentials.app_key.get_secret_value()
    extra: dict[str, Any] = {"transport": RewritingTransport(api_url)} if api_url else {}
    oauth = OAuth2Client(key, redirect_uri=callback_url, timeout=timeout_s, **extra)
    try:
        token: dict[str, Any] = oauth.fetch_token(
            TOKEN_ENDPOINT,
            authorization_response=received,
            client_id=key,
            auth=(key, credentials.app_secret.get_secret_value()),
            state=state,
        )
    except OAuthError as exc:
        # The error and its description only: never the request, which holds the code.
        said = ": ".join(str(p) for p in (exc.error, exc.description) if p)
        raise LoginError(f"Schwab refused the login ({said}); nothing written") from None
    except httpx2.HTTPError as exc:
        raise LoginError(
            f"could not reach Schwab's token endpoint ({type(exc).__name__}); nothing written"
        ) from None
    finally:
        oauth.close()
    if not isinstance(token, dict) or "refresh_token" not in token:
        raise LoginError("Schwab's token answer had no refresh token; nothing written")
    return token


def write_login(path: Path, token: dict[str, Any], created: int) -> Login:
    """Write the token file in schwab-py's format (`TokenMetadata`), atomically, 0600."""
    from schwab.auth import TokenMetadata  # noqa: PLC0415

    from executors.brokers.schwab import config  # noqa: PLC0415

    metadata = TokenMetadata(
        token, created, lambda contents, *_a, **_k: config.write_token_file(path, contents)
    )
    metadata.wrapped_token_write_func()(token)
    return Login(path, float(created))


def login(
    settings: SchwabSettings,
    data_dir: Path,
    callback_url: str,
    *,
    token_file: Path | None = None,
    stdin: IO[str] = sys.stdin,
    out: IO[str] = sys.stdout,
) -> Login:
    """The manual flow: print the URL, read the pasted redirect, write the token file."""
    from executors.brokers.schwab import config  # noqa: PLC0415

    config.quiet_sdk_logs()
    credentials = config.credentials(settings)
    path = token_file or config.token_path(settings, data_dir)
    url, state = authorize_url(
        credentials.app_key.get_secret_value(), callback_url, settings.api_url
    )
    print(
        "Open this URL in a browser, log in to Schwab and allow access:\n\n"
        f"    {url}\n\n"
        f"The browser is then sent to {callback_url}/?code=... (the page itself may fail to "
        "load: that is expected).\nPaste that whole address here and press Enter:",
        file=out,
        flush=True,
    )
    print("Redirect URL> ", end="", file=out, flush=True)
    received = check_redirect(stdin.readline(), callback_url, state)
    token = fetch_token(
        credentials,
        callback_url,
        received,
        state,
        api_url=settings.api_url,
        timeout_s=settings.timeout_s,
    )
    return write_login(path, token, int(time.time()))


def _when(epoch: float) -> str:
    utc = datetime.fromtimestamp(epoch, UTC)
    local = utc.astimezone()
    return f"{utc:%Y-%m-%d %H:%M} UTC ({local:%Y-%m-%d %H:%M %Z} local)"


def expiry_message(done: Login, reducing_after_days: float) -> str:
    """What the user is told after a login: where it is, and when it ages out."""
    expires = done.created + REFRESH_LIFETIME_S
    reducing = done.created + reducing_after_days * DAY_S
    return (
        f"Schwab login saved to {done.path} (mode 0600).\n"
        f"It expires {_when(expires)}: seven days after this login; refreshing does not "
        "extend it.\n"
        f"From {_when(reducing)} the executor drops to REDUCING (only reducing "
        "positions), and at expiry to HALTED.\n"
        f"Log in again before then: `{AUTH_COMMAND}`."
    )


@auth_app.command("schwab")
def auth_schwab(
    config_file: ConfigOption = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Where to write the token file (default: executor.schwab.token_file, "
            "else <data_dir>/schwab-token.json).",
            show_default=False,
        ),
    ] = None,
    callback_url: Annotated[
        str,
        typer.Option(
            "--callback-url",
            envvar=CALLBACK_VAR,
            help="Your Schwab app's callback URL, exactly as registered.",
        ),
    ] = DEFAULT_CALLBACK_URL,
) -> None:
    """Log in to Schwab once (a browser, then paste the redirect URL back) and write the token
    file the executor trades with. Needed every 7 days. App key and secret from
    SCHWAB_APP_KEY / SCHWAB_APP_SECRET (or their _FILE variables)."""
    settings = settings_or_exit(config_file)
    schwab = settings.executor.schwab
    try:
        done = login(schwab, settings.data_dir, callback_url, token_file=token_file)
    except (BrokerError, SecretError) as exc:
        print(file=sys.stdout, flush=True)
        fail(str(exc))
    print(expiry_message(done, schwab.reducing_after_days), flush=True)
