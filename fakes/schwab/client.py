"""schwab-py clients pointed at the fake, built the way `client_from_access_functions` builds them.

Nothing in the SDK is patched: this is `schwab.auth.client_from_access_functions` (schwab-py
1.5.1, `auth.py`) with one keyword more, the `transport` authlib hands to its httpx2 client:
`Client(api_key, OAuth2Client(api_key, client_secret=..., token=..., token_endpoint=
TOKEN_ENDPOINT, update_token=..., leeway=300, transport=...), token_metadata=...)`. Refreshes
go to the fake's `/v1/oauth/token`, every API call to its `/trader/v1/...`, and the
`StreamClient` to the `ws://` URL the fake's `userPreference` names.

Tests import this; the `ticklane` command line does not (importing schwab-py is slow).
"""

from collections.abc import Callable
from typing import Any, Final

from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    AsyncOAuth2Client,
    OAuth2Client,
)
from schwab.auth import TOKEN_ENDPOINT, TokenMetadata  # type: ignore[import-untyped]
from schwab.client import AsyncClient, Client  # type: ignore[import-untyped]

from executors.brokers.transport import RewritingTransport

APP_KEY: Final = "fake-app-key"
APP_SECRET: Final = "fake-app-secret"  # noqa: S105 - the fake's default, not a secret
LEEWAY_S: Final = 300
"""What schwab-py passes authlib: refresh when the access token has 5 minutes left."""

TokenFile = dict[str, Any]
"""schwab-py's token file: `{"creation_timestamp": ..., "token": {...}}`."""
WriteToken = Callable[[TokenFile], None]


def sdk_client(
    api_url: str,
    token_file: TokenFile,
    write: WriteToken,
    *,
    asyncio: bool = False,
    api_key: str = APP_KEY,
    app_secret: str = APP_SECRET,
) -> Any:
    """A `schwab.client.Client` (or `AsyncClient`) whose requests all reach `api_url`.

    `write` gets the token file after every refresh, with its `creation_timestamp` kept.
    """
    metadata = TokenMetadata.from_loaded_token(token_file, lambda t, *_a, **_k: write(t))
    wrapped = metadata.wrapped_token_write_func()
    if asyncio:

        async def update_token(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            wrapped(token, *args, **kwargs)

        session = AsyncOAuth2Client(
            api_key,
            client_secret=app_secret,
            token=metadata.token,
            token_endpoint=TOKEN_ENDPOINT,
            update_token=update_token,
            leeway=LEEWAY_S,
            transport=RewritingTransport(api_url),
        )
        return AsyncClient(api_key, session, token_metadata=metadata)
    session = OAuth2Client(
        api_key,
        client_secret=app_secret,
        token=metadata.token,
        token_endpoint=TOKEN_ENDPOINT,
        update_token=wrapped,
        leeway=LEEWAY_S,
        transport=RewritingTransport(api_url),
    )
    return Client(api_key, session, token_metadata=metadata)
