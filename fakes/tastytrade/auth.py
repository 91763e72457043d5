"""Access tokens the fake has issued: who may call, until when, and one-shot expiries.

Pure apart from drawing random tokens; times are passed in (seconds, monotonic or wall, as
long as the caller is consistent). Tokens are never logged or echoed: errors say only that
a token is missing, unknown or expired.
"""

import secrets
from enum import StrEnum

import msgspec


class TokenState(StrEnum):
    """What a presented access token is."""

    VALID = "valid"
    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


class Grant(msgspec.Struct, frozen=True):
    """A newly issued access token and its lifetime in seconds."""

    access_token: str
    expires_in: int


class TokenBook:
    """Issued access tokens with their expiry times."""

    def __init__(self, lifetime_s: int = 900) -> None:
        self.lifetime_s = lifetime_s
        self._expiry: dict[str, float] = {}
        self._expire_once: set[str] = set()
        self.issued = 0

    def issue(self, now: float) -> Grant:
        """A new access token valid for the configured lifetime from `now`."""
        token = secrets.token_urlsafe(24)
        self._expiry[token] = now + self.lifetime_s
        self.issued += 1
        return Grant(token, self.lifetime_s)

    def check(self, authorization: str | None, now: float) -> TokenState:
        """The state of an `Authorization` header's bearer token (or a streamer's auth-token)."""
        if not authorization:
            return TokenState.MISSING
        token = authorization.removeprefix("Bearer ").strip()
        expiry = self._expiry.get(token)
        if expiry is None:
            return TokenState.UNKNOWN
        if token in self._expire_once:
            self._expire_once.discard(token)
            return TokenState.EXPIRED
        return TokenState.VALID if now < expiry else TokenState.EXPIRED

    def expire_once(self, authorization: str | None) -> None:
        """The next check of this token says expired, once (the mid-submit expiry fault)."""
        if authorization:
            self._expire_once.add(authorization.removeprefix("Bearer ").strip())
