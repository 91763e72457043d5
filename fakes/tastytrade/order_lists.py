"""Which orders `orders/live` and the order history show, filtered, sorted and paged.

Pure. `orders/live` is "orders created or updated today, any status" plus working ones
(developer.tastytrade.com/order-management), "today" being New York's trading day. The
history takes the query parameters `Account.get_order_history` sends.
"""

import datetime as dt
import math
from collections.abc import Callable
from typing import Final
from zoneinfo import ZoneInfo

from multidict import MultiMapping

from fakes.tastytrade.orders import FakeOrder
from fakes.tastytrade.payloads import ApiError
from fakes.tastytrade.vocab import TERMINAL
from ticklane.units import PRICE_SCALE

NEW_YORK: Final = ZoneInfo("America/New_York")
DEFAULT_PER_PAGE: Final = 10
MAX_PER_PAGE: Final = 200


def new_york_date(ns: int) -> dt.date:
    """The New York calendar date of a time in ns."""
    return dt.datetime.fromtimestamp(ns // PRICE_SCALE, tz=NEW_YORK).date()


def live_orders(orders: list[FakeOrder], now: int) -> list[FakeOrder]:
    """Working orders, and every order received or updated on today's New York date."""
    today = new_york_date(now)
    return [
        o
        for o in orders
        if o.status not in TERMINAL
        or new_york_date(o.received_at) == today
        or new_york_date(o.updated_at) == today
    ]


def _ns(text: str, name: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} {text!r} is not a date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1_000_000) * 1_000


def _date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} {text!r} is not a date") from None


def _int(query: MultiMapping[str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} {text!r} is not a number") from None


def _keep(
    order: FakeOrder, query: MultiMapping[str], underlying: Callable[[FakeOrder], str]
) -> bool:
    statuses = set(query.getall("status[]", []))
    if statuses and order.status.value not in statuses:
        return False
    wanted = query.get("underlying-symbol") or query.get("futures-symbol")
    if wanted and wanted not in {underlying(order), *(leg.symbol for leg in order.legs)}:
        return False
    if "start-at" in query and order.received_at < _ns(query["start-at"], "start-at"):
        return False
    if "end-at" in query and order.received_at > _ns(query["end-at"], "end-at"):
        return False
    day = new_york_date(order.received_at)
    if "start-date" in query and day < _date(query["start-date"], "start-date"):
        return False
    return not ("end-date" in query and day > _date(query["end-date"], "end-date"))


def history_page(
    orders: list[FakeOrder],
    query: MultiMapping[str],
    underlying: Callable[[FakeOrder], str],
) -> tuple[list[FakeOrder], dict[str, int | None]]:
    """One page of the filtered history (newest first unless `sort=Asc`) and its pagination."""
    kept = [o for o in orders if _keep(o, query, underlying)]
    kept.sort(key=lambda o: o.id, reverse=query.get("sort", "Desc") != "Asc")
    per_page = min(max(_int(query, "per-page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
    offset = max(_int(query, "page-offset", 0), 0)
    pages = max(1, math.ceil(len(kept) / per_page))
    page = kept[offset * per_page : (offset + 1) * per_page]
    pagination: dict[str, int | None] = {
        "per-page": per_page,
        "page-offset": offset,
        "item-offset": offset * per_page,
        "total-items": len(kept),
        "total-pages": pages,
        "current-item-count": len(page),
        "previous-link": None,
        "next-link": None,
    }
    return page, pagination
