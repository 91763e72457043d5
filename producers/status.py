"""The producer's status on the `status` topic (`ticklane.status`) and on `/ready`: its
counts, and for a live feed whether it is streaming, stale or reconnecting."""

from collections.abc import Callable

from ticklane.beacon import Beacon, Report, metric_total
from ticklane.settings import Settings
from ticklane.status import ProcessState, instance_name
from ticklane.topics import catalogue


def producer_beacon(
    settings: Settings, bootstrap: str, source: str, condition: Callable[[], str] | None = None
) -> Beacon:
    """A beacon for a producer of `source`; `condition` gives a live feed's state."""

    def probe() -> Report:
        details = {
            "source": source,
            "records_in": f"{metric_total('ticklane_producer_records_in_total'):.0f}",
            "records_out": f"{metric_total('ticklane_producer_records_out_total'):.0f}",
            "gaps": f"{metric_total('ticklane_producer_gaps_total'):.0f}",
            "reconnects": f"{metric_total('ticklane_producer_reconnects_total'):.0f}",
            "waiting_for_kafka": f"{metric_total('ticklane_producer_queue_depth'):.0f}",
        }
        now = condition() if condition is not None else "streaming"
        details["feed"] = now
        if now == "streaming":
            return Report(details=details)
        if now == "connecting":
            return Report(ProcessState.STARTING, "connecting to the live gateway", -1, details)
        return Report(ProcessState.DEGRADED, f"live feed {now}", -1, details)

    # The market-data topics it may write; one gone or recreated stops it (ticklane.cluster).
    written = [spec.name for spec in catalogue(settings.topics) if spec.base.startswith("md.")]
    return Beacon(
        settings, bootstrap, "producer", instance_name("producer", source), probe, watch=written
    )
