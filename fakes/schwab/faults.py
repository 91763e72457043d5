"""The Schwab fake's faults: the TastyTrade fake's, plus an expired refresh token.

Pure. The shared faults keep the TastyTrade fake's names, counts and settings
(`fakes/tastytrade/faults.py`), and mean here:

- `rate_limit`: the next order call (POST, PUT or DELETE of an order: Schwab throttles all
  three, brokers.md 4), or any API call with scope `any`, gets 429; nothing is recorded.
- `server_error_after_accept`, `timeout_after_accept`: the next place or replace is recorded
  and routed, then answered with a 5xx, or held past the client's timeout.
- `token_expiry_mid_submit`: the next place or replace succeeds and the access token it used
  expires: later calls with it get 401 until the client refreshes.
- `refuse_refresh`: the next refresh gets `{"error": "invalid_client", "error_description":
  "refresh token invalid"}`, the body schwab-py's docs show (`OAuthError: invalid_client:
  refresh token invalid`); the refresh token itself stays good.
- `drop_stream`: at the next account-activity message every streamer connection is closed
  instead; that message is lost to them.
- `duplicate_fills`: the next fill message (ExecutionCreated or OrderFillCompleted) is sent
  twice, with the same `seq`.
- `reorder_fills`: the next other activity message is held back and sent after the next fill
  message (or after `reorder_hold_s`).
- `list_lag_s`: an accepted order appears in order lists only this many seconds later.
- `answer_delay_s` (not a fault): every accepted order's answer is held this long; the view's
  `most_answers_held` counts the most held at one time.

And Schwab's own:

- `refresh_expired`: the next refresh finds its refresh token past the seven days and
  refuses it with the same body; unlike `refuse_refresh` the token stays dead. A refresh
  token that really is older than the refresh lifetime is refused the same way, and each
  such refusal is counted under this name too.
- `unauthorized`: the next API call (any `/trader` path, after the rate limit) is answered
  401 `Client not authorized`, whatever its token: Schwab revoking an app's access, or
  refusing tokens it should take. Arm many and `clear` them to end an outage; the executor's
  breaker on authentication failures is tested with it.
"""

from enum import StrEnum
from typing import Final

import msgspec

from fakes.tastytrade.faults import (
    Fault,
    FaultBook,
    FaultError,
    FaultRequest,
    FaultSettings,
    FaultsView,
    request_from_flags,
)


class SchwabFault(StrEnum):
    """A fault only the Schwab fake has; the value is its name in requests and flags."""

    REFRESH_EXPIRED = "refresh_expired"
    UNAUTHORIZED = "unauthorized"


class SchwabFaultRequest(FaultRequest, frozen=True, forbid_unknown_fields=True):
    """`POST /__fake/faults`: the TastyTrade fake's request, plus Schwab's own counts."""

    refresh_expired: int = 0
    unauthorized: int = 0


_OWN: Final = {f.value for f in SchwabFault}


class SchwabFaults:
    """Armed and fired counts of every fault; the loop that owns the server owns this."""

    def __init__(self) -> None:
        self._shared = FaultBook()
        self._armed: dict[SchwabFault, int] = dict.fromkeys(SchwabFault, 0)
        self._fired: dict[SchwabFault, int] = dict.fromkeys(SchwabFault, 0)

    @property
    def settings(self) -> FaultSettings:
        """How the shared faults behave when they fire."""
        return self._shared.settings

    def arm(self, request: FaultRequest) -> None:
        """Add the request's counts and apply its settings (`FaultError` if any is bad)."""
        own = {
            f: getattr(request, f.value) if isinstance(request, SchwabFaultRequest) else 0
            for f in SchwabFault
        }
        if any(n < 0 for n in own.values()):
            raise FaultError("fault counts must not be negative")
        self._shared.arm(request)
        if request.clear:
            self._armed = dict.fromkeys(SchwabFault, 0)
        for fault, n in own.items():
            self._armed[fault] += n

    def take(self, fault: Fault | SchwabFault) -> bool:
        """Whether `fault` strikes now; if so it is used up once and counted."""
        if isinstance(fault, Fault):
            return self._shared.take(fault)
        if self._armed[fault] <= 0:
            return False
        self._armed[fault] -= 1
        self._fired[fault] += 1
        return True

    def count(self, fault: Fault | SchwabFault) -> None:
        """Count a firing that no armed count caused (the list lag, a naturally old token)."""
        if isinstance(fault, Fault):
            self._shared.count(fault)
        else:
            self._fired[fault] += 1

    def view(self) -> FaultsView:
        """What `GET /__fake/faults` shows: the shared faults and Schwab's, together."""
        shared = self._shared.view()
        return FaultsView(
            armed=shared.armed | {f.value: n for f, n in self._armed.items()},
            fired=shared.fired | {f.value: n for f, n in self._fired.items()},
            settings=shared.settings,
            most_answers_held=shared.most_answers_held,
        )

    def hold(self) -> None:
        """An order's answer starts its `answer_delay_s`."""
        self._shared.hold()

    def release(self) -> None:
        """An order's answer ends its delay."""
        self._shared.release()


def schwab_request_from_flags(flags: list[str]) -> SchwabFaultRequest:
    """`--fault NAME[=VALUE]` flags as one request; `refresh_expired[=N]` and
    `unauthorized[=N]` are Schwab's own."""
    own = dict.fromkeys(_OWN, 0)
    shared: list[str] = []
    for flag in flags:
        name, sep, value = flag.partition("=")
        key = name.strip().replace("-", "_")
        if key not in _OWN:
            shared.append(flag)
            continue
        if sep and not value.strip().isdigit():
            raise FaultError(f"--fault {flag!r}: a count is a whole number")
        own[key] += int(value) if sep else 1
    base = request_from_flags(shared)
    return SchwabFaultRequest(
        **msgspec.structs.asdict(base),
        refresh_expired=own[SchwabFault.REFRESH_EXPIRED.value],
        unauthorized=own[SchwabFault.UNAUTHORIZED.value],
    )
