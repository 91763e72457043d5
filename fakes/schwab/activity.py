"""Account-activity messages: what the streamer's ACCT_ACTIVITY service says about an order.

Pure. Each message has the account number (field "1"), a `MESSAGE_TYPE` (field "2") and a
`MESSAGE_DATA` JSON string (field "3"). Schwab documents neither the types nor the data
(brokers.md 2d, 9); both follow QuantConnect's production client: the data always carries
`SchwabOrderID`, `AccountNumber` and a `BaseEvent` with its `EventType`, and the fill and
out (cancel or reject) events carry their time as QuantConnect parses it. A client should
take an order's details from REST (`GET .../orders/{id}`), as QuantConnect does.

An order's messages, in order:

- placed: OrderCreated, then OrderAccepted (it is WORKING);
- a leg filled: ExecutionCreated; the order complete: OrderFillCompleted instead;
- cancelled: CancelAccepted, then OrderUROutCompleted (`ClientCancel`);
- replaced: ChangeCreated and ChangeAccepted for the old order, then the new order's own;
- rejected after its 201: OrderUROutCompleted (`SystemReject`).
"""

import datetime as dt
import json
from typing import Any, Final

import msgspec

from fakes.schwab.orders import FakeOrder
from fakes.schwab.vocab import FILL_MESSAGES, MessageType, OutCancelType
from ticklane.units import PRICE_SCALE

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Activity(msgspec.Struct, frozen=True):
    """One account-activity message before it is framed for a connection."""

    account: str
    message_type: MessageType
    data: str

    @property
    def is_fill(self) -> bool:
        """Whether it announces a fill (what the duplicate and reorder faults act on)."""
        return self.message_type in FILL_MESSAGES


def _stamp(now_ns: int) -> dict[str, str]:
    moment = _EPOCH + dt.timedelta(microseconds=now_ns // 1_000)
    return {"DateTimeString": moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}


def _event(order: FakeOrder, kind: MessageType, now_ns: int) -> dict[str, Any]:
    if kind is MessageType.ORDER_FILL_COMPLETED:
        info = {"ExecutionInfo": {"ExecutionTimeStamp": _stamp(now_ns)}}
        return {
            "EventType": "OrderFillCompletedEvent",
            "OrderFillCompletedEventOrderLegQuantityInfo": info,
        }
    if kind is MessageType.ORDER_UR_OUT_COMPLETED:
        rejected = order.status_description is not None
        cancel = OutCancelType.SYSTEM_REJECT if rejected else OutCancelType.CLIENT_CANCEL
        details = [
            {
                "SchwabOrderID": str(order.id),
                "NgOMSRuleName": "FAKE_REJECT",
                "NgOMSRuleDescription": order.status_description,
            }
        ]
        return {
            "EventType": "OrderUROutCompleted",
            "OrderUROutCompletedEvent": {
                "ExecutionTimeStamp": _stamp(now_ns),
                "OutCancelType": cancel.value,
                "ValidationDetail": details if rejected else [],
            },
        }
    return {"EventType": kind.value}


def activity(order: FakeOrder, kind: MessageType, now_ns: int) -> Activity:
    """The message `kind` about `order` at wall time `now_ns`."""
    data = {
        "SchwabOrderID": str(order.id),
        "AccountNumber": order.account,
        "BaseEvent": _event(order, kind, now_ns),
    }
    return Activity(order.account, kind, json.dumps(data))


def content(activity_: Activity, seq: int, key: str) -> dict[str, Any]:
    """One entry of a data message's `content`: `seq`, `key` and the numbered fields."""
    return {
        "seq": seq,
        "key": key,
        "1": activity_.account,
        "2": activity_.message_type.value,
        "3": activity_.data,
    }


def data_message(entries: list[dict[str, Any]], now_ns: int) -> str:
    """An ACCT_ACTIVITY data frame: `{"data": [{"service", "timestamp", "command", "content"}]}`."""
    frame = {
        "service": "ACCT_ACTIVITY",
        "timestamp": now_ns // (PRICE_SCALE // 1000),
        "command": "SUBS",
        "content": entries,
    }
    return json.dumps({"data": [frame]})
