"""Tokens the fake has issued: access tokens (30 minutes) and refresh tokens (7 days).

Pure apart from drawing random tokens; times are wall-clock seconds passed in, the clock
schwab-py's token file uses (`expires_at`, `creation_timestamp`). A refresh token dies
`refresh_lifetime_s` after the login that made it, and refreshing does not extend it, as at
Schwab (brokers.md 1b). Tokens are never logged or echoed: answers say only that a token is
missing, unknown, expired or invalid.
"""

import secrets
from enum import StrEnum
from typing import Any, Final

import msgspec

from fakes.tastytrade.auth import TokenState

ACCESS_LIFETIME_S: Final = 1800
"""Schwab's access tokens last 30 minutes (schwab-py docs/auth.rst)."""
REFRESH_LIFETIME_S: Final = 7 * 24 * 3600
"""Schwab refuses a refresh token older than seven days (schwab-py docs/auth.rst)."""
CODE_LIFETIME_S: Final = 30.0
"""How long an authorization code from `/v1/oauth/authorize` may be traded for tokens."""


class RefreshState(StrEnum):
    """What a presented refresh token is."""

    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


class Grant(msgspec.Struct, frozen=True):
    """Tokens just issued, as the token endpoint answers them."""

    access_token: str
    refresh_token: str
    expires_in: int
    expires_at: int
    id_token: str


class TokenBook:
    """Issued access tokens with their expiry, refresh tokens with their login time."""

    def __init__(
        self,
        access_lifetime_s: int = ACCESS_LIFETIME_S,
        refresh_lifetime_s: int = REFRESH_LIFETIME_S,
    ) -> None:
        self.access_lifetime_s = access_lifetime_s
        self.refresh_lifetime_s = refresh_lifetime_s
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        self._codes: dict[str, float] = {}
        self.issued = 0

    def _grant(self, refresh_token: str, now: float, *, access_expired: bool = False) -> Grant:
        access = secrets.token_urlsafe(32)
        expiry = now - 1 if access_expired else now + self.access_lifetime_s
        self._access[access] = expiry
        self.issued += 1
        return Grant(
            access_token=access,
            refresh_token=refresh_token,
            expires_in=self.access_lifetime_s,
            expires_at=int(expiry),
            id_token=secrets.token_urlsafe(24),
        )

    def login(self, now: float, *, age_s: float = 0.0, access_expired: bool = False) -> Grant:
        """A new refresh token as if a person logged in `age_s` ago, and an access token."""
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = now - age_s
        return self._grant(refresh, now, access_expired=access_expired)

    def logged_in_at(self, refresh_token: str) -> float | None:
        """When the login that made this refresh token happened (None: not the fake's)."""
        return self._refresh.get(refresh_token)

    def refresh_state(self, refresh_token: str, now: float) -> RefreshState:
        """Whether a refresh token may be traded for a new access token now."""
        issued = self._refresh.get(refresh_token)
        if issued is None:
            return RefreshState.UNKNOWN
        alive = now - issued < self.refresh_lifetime_s
        return RefreshState.VALID if alive else RefreshState.EXPIRED

    def adopt(self, refresh_token: str, now: float) -> None:
        """Take a refresh token the fake did not issue as if its login were `now`."""
        self._refresh.setdefault(refresh_token, now)

    def refresh(self, refresh_token: str, now: float) -> Grant:
        """A new access token for a valid refresh token, which stays the same (as at Schwab)."""
        return self._grant(refresh_token, now)

    def expire_refresh(self, refresh_token: str) -> None:
        """Age a refresh token past its lifetime: every later refresh with it is refused."""
        if refresh_token in self._refresh:
            self._refresh[refresh_token] = float("-inf")

    def check(self, authorization: str | None, now: float) -> TokenState:
        """The state of an `Authorization` header's bearer token (or a streamer login's)."""
        if not authorization:
            return TokenState.MISSING
        expiry = self._access.get(authorization.removeprefix("Bearer ").strip())
        if expiry is None:
            return TokenState.UNKNOWN
        return TokenState.VALID if now < expiry else TokenState.EXPIRED

    def expire(self, authorization: str | None) -> None:
        """End an access token now (the mid-submit expiry fault): later calls with it get 401."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token in self._access:
            self._access[token] = float("-inf")

    def new_code(self, now: float) -> str:
        """A one-time authorization code for the login flow."""
        code = secrets.token_urlsafe(24)
        self._codes[code] = now + CODE_LIFETIME_S
        return code

    def take_code(self, code: str, now: float) -> bool:
        """Whether `code` is a live authorization code; it is used up either way."""
        expiry = self._codes.pop(code, None)
        return expiry is not None and now < expiry


def token_file(grant: Grant, logged_in_at: float) -> dict[str, Any]:
    """schwab-py's token file for a grant: `{"creation_timestamp", "token": {...}}`."""
    token = msgspec.to_builtins(grant) | {"token_type": "Bearer", "scope": "api"}
    return {"creation_timestamp": int(logged_in_at), "token": token}
