"""Which faults are armed, how many times each has fired, and how a request arms them.

Pure: the server asks `take(fault)` at the point where the fault would strike and acts on
the answer. Counted faults fire once per armed count; the list lag is a setting that holds
for every order accepted while it is non-zero (each order it delays is counted).

Faults, by the name `POST /__fake/faults` and `--fault NAME[=N]` use:

- `rate_limit`: the next call (an order submit, or any API call with scope `any`) gets 429
  `too_many_requests`; nothing is recorded.
- `server_error_after_accept`: the next order submit is recorded and routed, then answered
  with a 5xx (`server_error_status`, 500).
- `timeout_after_accept`: the next order submit is recorded and routed, then its answer is
  held `timeout_hold_s` (30 s), longer than a client's timeout.
- `token_expiry_mid_submit`: the next order submit succeeds, and the next API call made with
  the access token it used gets 401 once: the token expired while the submit was in flight.
- `refuse_refresh`: the next `POST /oauth/token` gets 400 `invalid_request`.
- `drop_stream`: at the next account-streamer notification every open stream is closed
  instead; that notification is lost to them (the record and REST still have it).
- `duplicate_fills`: the next fill notification is sent twice.
- `reorder_fills`: the next order status notification is held back and sent after the
  next fill notification (or after `reorder_hold_s`, 1 s, if no fill comes): the client
  sees the fill first and an older status after it.
- `list_lag_s`: an accepted order appears in `orders/live` and the order history only this
  many seconds after it was accepted (0 turns it off).

Not a fault: `answer_delay_s` holds every accepted order's answer this long (a venue's round
trip; 0, the default, answers at once), and the view's `most_answers_held` counts the most
answers held at one time, which shows whether a client sent orders without waiting for each
other's answers.
"""

from enum import StrEnum
from typing import Final, Literal

import msgspec


class Fault(StrEnum):
    """A fault the fake can inject; the value is its name in requests and flags."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR_AFTER_ACCEPT = "server_error_after_accept"
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"
    TOKEN_EXPIRY_MID_SUBMIT = "token_expiry_mid_submit"  # noqa: S105 - a name, not a secret
    REFUSE_REFRESH = "refuse_refresh"
    DROP_STREAM = "drop_stream"
    DUPLICATE_FILLS = "duplicate_fills"
    REORDER_FILLS = "reorder_fills"
    LIST_LAG = "list_lag"
    """Not armed by count: counted once per order that `list_lag_s` delayed."""


RateLimitScope = Literal["submit", "any"]


class FaultRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /__fake/faults`: counts to add per fault, and settings to change (None: keep).

    `clear` first disarms every counted fault and zeroes the list lag.
    """

    rate_limit: int = 0
    server_error_after_accept: int = 0
    timeout_after_accept: int = 0
    token_expiry_mid_submit: int = 0
    refuse_refresh: int = 0
    drop_stream: int = 0
    duplicate_fills: int = 0
    reorder_fills: int = 0
    list_lag_s: float | None = None
    answer_delay_s: float | None = None
    timeout_hold_s: float | None = None
    reorder_hold_s: float | None = None
    server_error_status: int | None = None
    rate_limit_scope: RateLimitScope | None = None
    clear: bool = False


class FaultSettings(msgspec.Struct, frozen=True):
    """How the armed faults behave when they fire."""

    list_lag_s: float = 0.0
    answer_delay_s: float = 0.0
    timeout_hold_s: float = 30.0
    reorder_hold_s: float = 1.0
    server_error_status: int = 500
    rate_limit_scope: RateLimitScope = "submit"


class FaultsView(msgspec.Struct, frozen=True):
    """`GET /__fake/faults`: what is armed, what has fired, and the settings."""

    armed: dict[str, int]
    fired: dict[str, int]
    settings: FaultSettings
    most_answers_held: int = 0


COUNTED: Final[tuple[Fault, ...]] = tuple(f for f in Fault if f is not Fault.LIST_LAG)


class FaultError(ValueError):
    """A fault request or flag that names no fault or carries a bad value."""


class FaultBook:
    """Armed counts, fired counts and settings; not thread-safe (the server's loop owns it)."""

    def __init__(self) -> None:
        self._armed: dict[Fault, int] = dict.fromkeys(COUNTED, 0)
        self._fired: dict[Fault, int] = dict.fromkeys(Fault, 0)
        self.settings = FaultSettings()
        self._held = 0
        self.most_answers_held = 0

    def hold(self) -> None:
        """An order's answer starts its `answer_delay_s`."""
        self._held += 1
        self.most_answers_held = max(self.most_answers_held, self._held)

    def release(self) -> None:
        """An order's answer ends its delay."""
        self._held -= 1

    def arm(self, request: FaultRequest) -> None:
        """Add the request's counts and apply its settings."""
        counts = {f: getattr(request, f.value) for f in COUNTED}
        if any(n < 0 for n in counts.values()):
            raise FaultError("fault counts must not be negative")
        if request.server_error_status is not None and not 500 <= request.server_error_status < 600:
            raise FaultError("server_error_status must be a 5xx status")
        if request.clear:
            self._armed = dict.fromkeys(COUNTED, 0)
            self.settings = msgspec.structs.replace(self.settings, list_lag_s=0.0)
        for fault, n in counts.items():
            self._armed[fault] += n
        changes = {
            name: getattr(request, name)
            for name in FaultSettings.__struct_fields__
            if getattr(request, name) is not None
        }
        if any(isinstance(v, float) and v < 0 for v in changes.values()):
            raise FaultError("durations must not be negative")
        self.settings = msgspec.structs.replace(self.settings, **changes)

    def armed(self, fault: Fault) -> int:
        """How many more times `fault` will fire."""
        return self._armed.get(fault, 0)

    def take(self, fault: Fault) -> bool:
        """Whether `fault` strikes now; if so it is used up once and counted."""
        if self._armed.get(fault, 0) <= 0:
            return False
        self._armed[fault] -= 1
        self._fired[fault] += 1
        return True

    def count(self, fault: Fault) -> None:
        """Count a firing of a setting-driven fault (the list lag)."""
        self._fired[fault] += 1

    def view(self) -> FaultsView:
        """What `GET /__fake/faults` shows."""
        return FaultsView(
            armed={f.value: n for f, n in self._armed.items()},
            fired={f.value: n for f, n in self._fired.items()},
            settings=self.settings,
            most_answers_held=self.most_answers_held,
        )


def request_from_flags(flags: list[str]) -> FaultRequest:
    """`--fault NAME[=VALUE]` flags as one request: a counted fault's value is its count (1)."""
    fields: dict[str, object] = {}
    counts: dict[str, int] = {}
    counted = {f.value for f in COUNTED}
    for flag in flags:
        name, sep, value = flag.partition("=")
        name = name.strip().replace("-", "_")
        if name in counted:
            if sep and not value.strip().isdigit():
                raise FaultError(f"--fault {flag!r}: a count is a whole number")
            counts[name] = counts.get(name, 0) + (int(value) if sep else 1)
        elif name in FaultRequest.__struct_fields__ and name not in {"clear"} and sep:
            fields[name] = value
        else:
            known = ", ".join(sorted([*counted, *FaultSettings.__struct_fields__]))
            raise FaultError(f"unknown fault or setting {flag!r}; known: {known}")
    try:
        return msgspec.convert(fields | counts, FaultRequest, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise FaultError(f"bad --fault value: {exc}") from None
