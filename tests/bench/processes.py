"""CPU used by the processes a benchmark row runs (Linux `/proc`), so a row can say how close
to saturation a small machine ran (a share of one core each)."""

import os
from pathlib import Path


def cpu_s(pid: int) -> float | None:
    """User and system CPU seconds of a process, None when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MachineBusy:
    """How busy all the machine's cores were from this object's making to `share()` (Linux
    `/proc/stat`): near 100%, the row measured the machine rather than the code."""

    def __init__(self) -> None:
        self._from = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        """Busy and total jiffies of every core together (idle and iowait count as idle)."""
        try:
            fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return 0, 0
        total = sum(fields[:8])  # guest time is already in user and nice
        return total - fields[3] - fields[4], total

    def share(self) -> str:
        """`all N cores NN% busy`, or "" where /proc/stat cannot be read."""
        busy, total = self._read()
        if total <= self._from[1]:
            return ""
        used = (busy - self._from[0]) / (total - self._from[1])
        return f"all {os.cpu_count()} cores {used:.0%} busy"


def broker_pid(bootstrap: str) -> int | None:
    """The local broker process serving `bootstrap` (the embedded one names its port)."""
    port = bootstrap.rsplit(":", 1)[-1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"tansu" in argv[0] and any(port.encode() in a for a in argv):
            return int(entry.name)
    return None


def cpu_shares(pids: dict[str, int], since: dict[str, float], wall_s: float) -> str:
    """`name NN%, ...`: each process's CPU since `since` (its `cpu_s` then) over `wall_s`."""
    shares = []
    for name, pid in pids.items():
        used = cpu_s(pid)
        if used is not None and name in since and wall_s > 0:
            shares.append(f"{name} {(used - since[name]) / wall_s:.0%}")
    return ", ".join(shares)
