"""`ticklane produce ...`: run a market-data source into the md.* topics."""

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from producers.dedupe import DEFAULT_WINDOW_NS
from producers.framing import DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS, FrameLimits
from producers.historical import HistoricalRequest, produce_historical
from producers.live import LiveProducer, LiveRequest, parse_gateway
from producers.pipeline import ProducerError, parse_speed, produce_file
from producers.runs import tracked_run
from producers.sessions import CalendarError, calendar_for, session_clock
from producers.sink import DeliveryError
from producers.status import producer_beacon
from ticklane.beacon import Beacon
from ticklane.cli import ConfigOption, bootstrap_or_exit, err, fail, settings_or_exit
from ticklane.dbn_files import DbnFileError, source_name
from ticklane.health import reporting
from ticklane.secrets import SecretError, read_secret, redact_logs

log = logging.getLogger(__name__)

produce_app = typer.Typer(
    help="Run a market-data source into the md.* topics.", no_args_is_help=True
)

MaxRecords = Annotated[
    int, typer.Option("--max-frame-records", min=1, help="Most records in one frame.")
]
MaxBytes = Annotated[
    int, typer.Option("--max-frame-bytes", min=64, help="Most bytes in one frame.")
]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", min=1, max=65535, help="Serve /metrics, /health and /ready here."
    ),
]


def _stop_flag() -> threading.Event:
    """Set by SIGTERM or Ctrl-C: finish the batch in hand, flush, exit."""
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    return stopped


def _stop_or_distrust(stopped: threading.Event, beacon: Beacon) -> Callable[[], bool]:
    """When to stop producing: asked to, or Kafka is not the cluster it started on."""
    return lambda: stopped.is_set() or not beacon.watch.trusted


def _hold_if_distrusted(stopped: threading.Event, beacon: Beacon) -> None:
    """On a Kafka that is not the cluster it started on, wait (not ready, the watch has said
    why) until stopped, then exit 5: exiting at once would have a supervisor restart it into
    producing on the new cluster before anyone looked. A delivery failure may be the first
    sign (the new cluster refuses the idempotent producer's sequence), so look now."""
    beacon.watch.check()
    if beacon.watch.trusted:
        return
    stopped.wait()
    fail("stopped on a Kafka that is not the cluster it started on (see the log above)", 5)


@produce_app.command("file")
def produce_file_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="DBN files, plain or zstd-compressed; several are one source, merged by time.",
            metavar="PATH",
        ),
    ],
    config: ConfigOption = None,
    speed: Annotated[
        str, typer.Option(help="max, realtime, or a multiple of real time such as 10x.")
    ] = "max",
    max_frame_records: MaxRecords = DEFAULT_MAX_RECORDS,
    max_frame_bytes: MaxBytes = DEFAULT_MAX_BYTES,
    metrics_port: MetricsPort = None,
    chains: Annotated[
        str | None,
        typer.Option(
            help="Also write option chains to md.chain (for 0DTE): underlyings, comma "
            "separated, or 'all' for every underlying an option definition names."
        ),
    ] = None,
) -> None:
    """Replay a DBN file; run it again after a crash and it continues where Kafka ends."""
    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    try:
        factor = parse_speed(speed)
    except ValueError as exc:
        fail(str(exc), 2)
    for path in paths:
        if not path.is_file():
            fail(f"{path} is not a file", 2)
    chain_set = _chains(chains)
    stopped = _stop_flag()
    source = f"file:{source_name(paths)}"
    beacon = producer_beacon(settings, bootstrap, source)
    with tracked_run(settings.data_dir, source), reporting(beacon, metrics_port):
        try:
            report = produce_file(
                paths,
                settings,
                limits=FrameLimits(max_frame_records, max_frame_bytes),
                speed=factor,
                stop=_stop_or_distrust(stopped, beacon),
                chains=chain_set,
            )
        except DbnFileError as exc:
            fail(f"{exc}; every record before it was produced")
        except (ProducerError, DeliveryError) as exc:
            _hold_if_distrusted(stopped, beacon)
            fail(str(exc))
        _hold_if_distrusted(stopped, beacon)
    rate = report.records / report.seconds if report.seconds else 0.0
    err.print(
        f"{source_name(paths)}: {report.records:,} records read, "
        f"{report.published:,} produced in "
        f"{report.frames:,} frames, {report.skipped_written:,} already in Kafka; "
        f"{rate:,.0f} records/s"
        + (f"; quality findings {report.quality}" if report.quality else "")
        + (
            f"; {report.unmapped_instruments} instrument(s) without a symbol"
            if report.unmapped_instruments
            else ""
        ),
        highlight=False,
    )


def _chains(text: str | None) -> tuple[str, ...] | None:
    """`--chains` as produce_file takes it; exits with a message when it names nothing."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return ("*",)
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        fail("--chains: name underlyings (ES,SPY) or 'all'", 2)
    return names


def synth_command(
    out: Annotated[Path, typer.Option("--out", help="File to write (.dbn or .dbn.zst).")],
    symbols: Annotated[int, typer.Option(min=1, help="Underlyings to generate.")] = 10,
    minutes: Annotated[int, typer.Option(min=1, help="Minutes of trading from the start.")] = 30,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same bytes.")] = 1,
    options: Annotated[
        bool, typer.Option(help="Add a same-day option chain (on the first underlying).")
    ] = True,
    chain_on: Annotated[
        int,
        typer.Option(
            min=0, help="Which underlying carries the chain: 0 is SYN000 (futures-like), 1 a stock."
        ),
    ] = 0,
) -> None:
    """Write seeded synthetic DBN data (marked SYNTH.TICKLANE) for demos and benchmarks."""
    from producers.synth import generate  # noqa: PLC0415 - pulls in the calendar library

    try:
        summary = generate(
            out, symbols=symbols, minutes=minutes, seed=seed, options=options, chain_on=chain_on
        )
    except ValueError as exc:
        fail(str(exc), 2)
    err.print(
        f"{out}: {summary.records:,} synthetic records "
        + ", ".join(f"{n:,} {schema}" for schema, n in summary.counts.items())
        + f"; {len(summary.symbols)} underlyings, {len(summary.option_symbols)} options",
        highlight=False,
    )


Symbols = Annotated[str, typer.Option(help="Comma-separated symbols (or ALL_SYMBOLS).")]


def _api_key() -> SecretStr:
    """The Databento key, masked from here on in every log line (the databento library
    logs pieces of it at DEBUG)."""
    try:
        key = read_secret("DATABENTO_API_KEY")
    except SecretError as exc:
        fail(str(exc), 2)
    redact_logs(key)
    return key


@produce_app.command("live")
def produce_live_command(
    dataset: Annotated[str, typer.Option(help="Databento dataset, e.g. GLBX.MDP3.")],
    schema: Annotated[str, typer.Option(help="Databento schema, e.g. trades, mbp-1.")],
    symbols: Symbols,
    config: ConfigOption = None,
    stype_in: Annotated[str, typer.Option("--stype-in", help="Symbology of --symbols.")] = (
        "raw_symbol"
    ),
    start: Annotated[
        int | None, typer.Option(help="Replay from this UTC ns (default: where Kafka ends).")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(
            envvar="DATABENTO_LIVE_GATEWAY", help="HOST[:PORT] of the live gateway to use."
        ),
    ] = None,
    replay_overlap_ms: Annotated[
        int, typer.Option(min=0, help="Replay this far before the newest record on reconnect.")
    ] = DEFAULT_WINDOW_NS // 1_000_000,
    stale_after_s: Annotated[
        float, typer.Option(min=1, help="Report the feed stale after this long without data.")
    ] = 30.0,
    calendar: Annotated[
        str | None,
        typer.Option(help="Exchange calendar for session hours (default: from the dataset)."),
    ] = None,
    max_frame_records: MaxRecords = DEFAULT_MAX_RECORDS,
    max_frame_bytes: MaxBytes = DEFAULT_MAX_BYTES,
    metrics_port: MetricsPort = None,
) -> None:
    """Stream a live subscription; reconnects replay the gap, restarts continue from Kafka."""
    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    key = _api_key()
    request = LiveRequest(dataset, schema, _split_symbols(symbols), stype_in, start)
    try:
        in_session = session_clock(calendar_for(dataset, calendar))
    except CalendarError as exc:
        fail(str(exc), 2)
    stopped = _stop_flag()
    try:
        producer = LiveProducer(
            request,
            settings,
            key,
            parse_gateway(gateway),
            limits=FrameLimits(max_frame_records, max_frame_bytes),
            window_ns=replay_overlap_ms * 1_000_000,
            stale_after_s=stale_after_s,
            in_session=in_session,
        )
    except (ProducerError, DeliveryError) as exc:
        fail(str(exc))
    live = producer
    source = f"live:{dataset}.{schema}"
    beacon = producer_beacon(settings, bootstrap, source, lambda: live.condition)
    with tracked_run(settings.data_dir, source), reporting(beacon, metrics_port):
        try:
            report = producer.run(_stop_or_distrust(stopped, beacon))
        except (ProducerError, DeliveryError) as exc:
            _hold_if_distrusted(stopped, beacon)
            fail(str(exc))
        _hold_if_distrusted(stopped, beacon)
    err.print(
        f"live {dataset} {schema}: {report.records:,} records produced in {report.frames:,} "
        f"frames over {producer.sessions} session(s), {producer.gaps} gap(s)",
        highlight=False,
    )


@produce_app.command("historical")
def produce_historical_command(
    dataset: Annotated[str, typer.Option(help="Databento dataset, e.g. GLBX.MDP3.")],
    schema: Annotated[str, typer.Option(help="Databento schema, e.g. trades, mbp-1.")],
    symbols: Symbols,
    start: Annotated[str, typer.Option(help="Inclusive start: ISO 8601 or UTC ns.")],
    end: Annotated[str, typer.Option(help="Exclusive end: ISO 8601 or UTC ns.")],
    config: ConfigOption = None,
    stype_in: Annotated[str, typer.Option("--stype-in", help="Symbology of --symbols.")] = (
        "raw_symbol"
    ),
    gateway: Annotated[
        str | None,
        typer.Option(envvar="DATABENTO_HISTORICAL_GATEWAY", help="Base URL of the HTTP API."),
    ] = None,
    max_frame_records: MaxRecords = DEFAULT_MAX_RECORDS,
    max_frame_bytes: MaxBytes = DEFAULT_MAX_BYTES,
) -> None:
    """Download a time range and produce it; run again after a crash to finish it exactly."""
    settings = settings_or_exit(config)
    bootstrap = bootstrap_or_exit(settings)
    key = _api_key()
    request = HistoricalRequest(dataset, schema, _split_symbols(symbols), start, end, stype_in)
    stopped = _stop_flag()
    beacon = producer_beacon(settings, bootstrap, f"historical:{dataset}.{schema}")
    with reporting(beacon, None):
        try:
            report = produce_historical(
                request,
                settings,
                key,
                gateway=gateway,
                limits=FrameLimits(max_frame_records, max_frame_bytes),
                stop=stopped.is_set,
            )
        except DbnFileError as exc:
            fail(f"the downloaded data is damaged: {exc}")
        except (ProducerError, DeliveryError) as exc:
            fail(str(exc))
    err.print(
        f"historical {dataset} {schema}: {report.records:,} records, {report.published:,} "
        f"produced, {report.skipped_written:,} already in Kafka",
        highlight=False,
    )


def _split_symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip() for s in text.split(",") if s.strip())
    if not symbols:
        fail("--symbols names no symbol", 2)
    return symbols


def register(app: typer.Typer) -> None:
    """Add the producer commands to the `ticklane` command line."""
    app.add_typer(produce_app, name="produce")
    app.command("synth")(synth_command)
