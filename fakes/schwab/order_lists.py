"""Which orders `GET .../orders` shows: entered within a time range, of a status, newest first.

Pure. The query is the spec's: `fromEnteredTime` and `toEnteredTime` are both required
(ISO 8601, `2024-03-29T00:00:00.000Z`), the range is at most a year, `status` is one status,
`maxResults` defaults to 3000. Times compare in whole seconds, the precision `enteredTime`
has and schwab-py sends (`%Y-%m-%dT%H:%M:%SZ`): an order entered in the same second as
`toEnteredTime` is in the range.
"""

import datetime as dt
from typing import Final

from multidict import MultiMapping

from fakes.schwab.orders import FakeOrder
from fakes.schwab.payloads import bad_request
from fakes.schwab.vocab import Status
from ticklane.units import PRICE_SCALE

DEFAULT_MAX_RESULTS: Final = 3000
MAX_RANGE: Final = dt.timedelta(days=366)


def _seconds(query: MultiMapping[str], name: str) -> int:
    text = query.get(name)
    if text is None:
        raise bad_request(f"{name} is required", f"{name} must be set with its pair")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"{name} {text!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _max_results(query: MultiMapping[str]) -> int:
    text = query.get("maxResults")
    if text is None:
        return DEFAULT_MAX_RESULTS
    try:
        wanted = int(text)
    except ValueError:
        raise bad_request(f"maxResults {text!r} is not a number") from None
    if wanted < 1:
        raise bad_request("maxResults must be positive")
    return wanted


def _status(query: MultiMapping[str]) -> Status | None:
    text = query.get("status")
    if text is None:
        return None
    try:
        return Status(text)
    except ValueError:
        raise bad_request(f"status {text!r} is not an order status") from None


def listed(orders: list[FakeOrder], query: MultiMapping[str]) -> list[FakeOrder]:
    """The orders a query selects, newest first, at most `maxResults` of them."""
    start, end = _seconds(query, "fromEnteredTime"), _seconds(query, "toEnteredTime")
    if end < start:
        raise bad_request("fromEnteredTime must not be after toEnteredTime")
    if end - start > MAX_RANGE.total_seconds():
        raise bad_request("the date range is at most a year")
    status = _status(query)
    kept = [
        o
        for o in orders
        if start <= o.entered_at // PRICE_SCALE <= end and (status is None or o.status is status)
    ]
    kept.sort(key=lambda o: o.id, reverse=True)
    return kept[: _max_results(query)]
