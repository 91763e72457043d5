"""The circuit breaker on Schwab authentication failures: pure.

A call that Schwab refuses for want of authentication (a 401 that a forced refresh did not
cure, a 403, a refused or expired refresh token, any of authlib's token errors) is one
failure; `limit` of them in a row open the breaker, and trading halts (`trading_state`)
until a call authenticates again. Only a call that reached Schwab and was let past its
authentication closes it: a refused connection or a timeout says nothing either way and
leaves the count as it is. Why a breaker at all: each such failure means no order can go,
and a person must log in again (`ticklane auth schwab`); halting says so once, where the
executor's state is watched, instead of rejecting signal after signal for the same cause.

The state is an immutable value replaced whole, so the executor's thread reads a consistent
one while the adapter's loop thread moves it on.
"""

from dataclasses import dataclass, replace

from executors.brokers.schwab.config import AUTH_COMMAND


@dataclass(frozen=True, slots=True)
class AuthBreaker:
    """Consecutive authentication failures, and the last one's cause (never a secret)."""

    limit: int
    failures: int = 0
    cause: str = ""

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("the breaker needs a limit of at least 1")

    @property
    def is_open(self) -> bool:
        """Whether trading is halted by it."""
        return self.failures >= self.limit

    def failed(self, cause: str) -> "AuthBreaker":
        """After a call refused for want of authentication (`cause`: what and why)."""
        return replace(self, failures=self.failures + 1, cause=cause)

    def succeeded(self) -> "AuthBreaker":
        """After a call that authenticated: the count starts over."""
        return self if self.failures == 0 else replace(self, failures=0, cause="")

    def reason(self) -> str:
        """Why trading is halted and what fixes it ("" while closed)."""
        if not self.is_open:
            return ""
        return (
            f"Schwab refused authentication {self.failures} times in a row (last: {self.cause}); "
            f"trading is halted until a call authenticates again: run `{AUTH_COMMAND}` "
            "(a new login in the token file is taken without a restart)"
        )
