"""Each process's heartbeat: a small status message on the compacted `status` topic.

Every long-running process (producer, agents, executor, api) publishes a `ProcessStatus`
every `status_interval_s`, keyed by its instance name, so compaction keeps each one's latest.
A reader tells "up", "degraded" and "silent" apart from the message alone: the state the
process reports, and whether the next one is overdue (`health`). A process that stops
cleanly says so last (`STOPPED`), so a planned stop is not mistaken for a crash.

The message says what an operator needs at a glance and nothing secret: state, why it is
not running normally, how far behind its input it is, and a few named details (the
executor's reconciliation and venue connection, a token's age), all plain strings.
"""

import socket
from enum import StrEnum
from typing import Final

import msgspec

from ticklane.units import Nanos

OVERDUE_AFTER: Final = 3
"""Heartbeats a process may miss before it is shown as silent."""


class ProcessState(StrEnum):
    """What a process says about itself."""

    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    """Working, but not as it should: behind, reconnecting, a venue refusing."""
    HALTED = "halted"
    """Up, but deliberately not doing its job (a kill switch, a failed reconciliation)."""
    STOPPED = "stopped"
    """Its last word before a clean exit."""


class Health(StrEnum):
    """How a reader sees a process, from its latest status and the time now."""

    UP = "up"
    DEGRADED = "degraded"
    """Reporting, but degraded, halted or still starting."""
    SILENT = "silent"
    """No status for `OVERDUE_AFTER` intervals: crashed, hung or cut off."""
    STOPPED = "stopped"


class ProcessStatus(msgspec.Struct, frozen=True, array_like=True):
    """One process's heartbeat."""

    process: str
    """The kind: `producer`, `agents`, `executor` or `api`."""
    instance: str
    """Which one: `<kind>/<id>@<host>`; the compaction key."""
    state: ProcessState
    ts_event: Nanos
    interval_ns: int
    """When the next heartbeat is due after this one."""
    reason: str = ""
    """Why the state is not `running` ("" when it is)."""
    lag: int = -1
    """Messages behind its input (-1: not measured)."""
    details: dict[str, str] = msgspec.field(default_factory=dict)
    """A few named facts for people: `reconciliation`, `venue`, `token_age_s`, ..."""

    @property
    def key(self) -> str:
        """Compaction key: one latest status per instance."""
        return self.instance


def health(status: ProcessStatus, now_ns: int) -> Health:
    """How a process looks now, from its latest status."""
    if status.state is ProcessState.STOPPED:
        return Health.STOPPED
    if now_ns - status.ts_event > OVERDUE_AFTER * max(status.interval_ns, 1):
        return Health.SILENT
    if status.state is ProcessState.RUNNING:
        return Health.UP
    return Health.DEGRADED


def instance_name(process: str, ident: str) -> str:
    """`<process>/<ident>@<host>`: unique per replica in a deployment (the pod's host name)."""
    return f"{process}/{ident}@{socket.gethostname()}"
