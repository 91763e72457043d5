"""ticklane's Grafana dashboards, built with grafana-foundation-sdk (Grafana 11.6's schema).

Writes one JSON file per dashboard into `deploy/grafana/dashboards/`; those files are committed so
that Grafana's provisioning and the Helm chart can use them without Python. `--check` writes
nothing and exits 1, naming each file, when the committed files differ from what this code builds.

    .venv/bin/python deploy/grafana/generate.py          # regenerate
    .venv/bin/python deploy/grafana/generate.py --check  # in tests and CI

Every query reads only metrics the processes expose (see each process's `metrics.py`) and goes to
the Prometheus data source picked in the `datasource` variable, so one file serves any Grafana.
"""

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

OUT_DIR: Final = Path(__file__).resolve().parent / "dashboards"
TAG: Final = "ticklane"
DATASOURCE: Final = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE: Final = "$__rate_interval"
"""Grafana's window for rate(): at least four scrape intervals, so a rate never has one point."""
RANGE: Final = "$__range"
"""The dashboard's whole time range: for "how many in the range" stats."""

# The scope every per-process query carries; `job` and `instance` are dashboard variables.
SCOPE: Final = 'job=~"$job", instance=~"$instance"'
JOB_SCOPE: Final = 'job=~"$job"'

DAY_S: Final = 24 * 3600
# Schwab's refresh token lives 7 days; by default (`reducing_after_days`) trading only reduces
# positions from day 6, so the colours warn a day before that (executors/brokers/schwab/config.py).
TOKEN_WARN_S: Final = 5 * DAY_S
TOKEN_REDUCING_S: Final = 6 * DAY_S
TOKEN_EXPIRED_S: Final = 7 * DAY_S
AUTH_FAILURES_TO_HALT: Final = 3  # the executor's default `auth_failures_to_halt`

STAT_HEIGHT: Final = 4
SERIES_HEIGHT: Final = 8
HALF: Final = 12
FULL: Final = 24


# --- queries


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression and the legend Grafana shows for each of its series."""

    expr: str
    legend: str = ""


def selector(metric: str, scope: str, extra: str = "") -> str:
    matchers = f"{scope}, {extra}" if extra else scope
    return f"{metric}{{{matchers}}}"


def rate(metric: str, scope: str, extra: str = "") -> str:
    return f"rate({selector(metric, scope, extra)}[{RATE}])"


def increase_in_range(metric: str, scope: str, extra: str = "") -> str:
    return f"sum(increase({selector(metric, scope, extra)}[{RANGE}]))"


def quantiles(histogram: str, scope: str) -> list[Query]:
    """p50 and p99 of a histogram (its `_bucket` series), all selected instances together."""
    buckets = rate(f"{histogram}_bucket", scope)
    return [
        Query(f"histogram_quantile({q}, sum by (le) ({buckets}))", label)
        for q, label in ((0.5, "p50"), (0.99, "p99"))
    ]


def _targets(queries: Sequence[Query], *, instant: bool) -> list[Builder[Dataquery]]:
    # Typed as the panels' `targets` parameter wants it: a list is invariant in its item type.
    targets: list[Builder[Dataquery]] = []
    for index, query in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .datasource(DATASOURCE)
            .ref_id(chr(ord("A") + index))
            .expr(query.expr)
        )
        if query.legend:
            target = target.legend_format(query.legend)
        targets.append(target.instant() if instant else target.range())
    return targets


# --- panels


def thresholds(*steps: tuple[float | None, str]) -> builders.ThresholdsConfig:
    """Colours from a value up; the first step's value is None (from minus infinity)."""
    return (
        builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


NOT_ZERO_IS_BAD: Final = thresholds((None, "green"), (1, "red"))
NOT_ZERO_IS_NOTABLE: Final = thresholds((None, "green"), (1, "yellow"))
NEUTRAL: Final = thresholds((None, "blue"))


def states(*names: tuple[str, str]) -> list[models.ValueMapping]:
    """Names and colours for a gauge's values 0, 1, 2...: the panel says "Halted", not "2"."""
    return [
        models.ValueMap(
            options={
                str(value): models.ValueMappingResult(text=text, color=color, index=value)
                for value, (text, color) in enumerate(names)
            }
        )
    ]


UP_DOWN: Final = states(("Down", "red"), ("Up", "green"))
VENUE_STATE: Final = states(
    ("Everything allowed", "green"), ("Reducing only", "orange"), ("Nothing allowed", "red")
)
KILL_SWITCH: Final = states(("Active", "green"), ("Reducing only", "orange"), ("Halted", "red"))


def single(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str = "short",
    colours: builders.ThresholdsConfig = NEUTRAL,
    mappings: list[models.ValueMapping] | None = None,
    width: int = 4,
    decimals: int | None = None,
) -> stat.Panel:
    """A stat of the query's value now (an instant query: the current gauge, or a count over
    the dashboard's range), coloured by its thresholds."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets([query], instant=True))
        .unit(unit)
        .thresholds(colours)
        .color_scheme(builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.AUTO)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("-")
        .height(STAT_HEIGHT)
        .span(width)
    )
    if mappings:
        panel = panel.mappings(mappings)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def series(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    width: int = HALF,
    floor_zero: bool = True,
    mappings: list[models.ValueMapping] | None = None,
) -> timeseries.Panel:
    """A time series of one or more queries, legend as a table with the last and largest value."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries, instant=False))
        .unit(unit)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .height(SERIES_HEIGHT)
        .span(width)
    )
    if floor_zero:
        # Counts, rates, lags and latencies are never negative: a fixed floor keeps small
        # values from filling the panel's height.
        panel = panel.min(0)
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def per_second(metric: str, scope: str, legend: str, extra: str = "") -> Query:
    return Query(f"sum({rate(metric, scope, extra)})", legend)


def per_second_by(label: str, metric: str, scope: str, extra: str = "", prefix: str = "") -> Query:
    return Query(
        f"sum by ({label}) ({rate(metric, scope, extra)})",
        f"{prefix}{{{{{label}}}}}",
    )


# --- variables


def datasource_variable() -> builders.DatasourceVariable:
    return builders.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(
    name: str, label: str, query: str, *, all_value: str | None = None
) -> builders.QueryVariable:
    """A multi-value variable over a label's values, "All" by default.

    Without `all_value`, "All" stands for the listed values (a regex alternation), so `job`'s
    "All" means every job that exposes this dashboard's metrics rather than every job Prometheus
    scrapes. With `all_value` ".*", "All" also matches series whose label is empty or whose value
    appeared after the list was loaded (strategies, symbols, routes)."""
    variable = (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )
    if all_value is not None:
        variable = variable.all_value(all_value)
    return variable


def process_variables(metric: str) -> list[builders.QueryVariable]:
    """`job` and `instance` for one process kind, listed from a metric only that kind exposes."""
    return [
        query_variable("job", "Job", f"label_values({metric}, job)"),
        query_variable("instance", "Instance", f'label_values({metric}{{job=~"$job"}}, instance)'),
    ]


# --- dashboards


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: Sequence[stat.Panel | timeseries.Panel]


@dataclass(frozen=True, slots=True)
class Board:
    """One dashboard: its file name (without .json), uid, title, variables and rows."""

    name: str
    uid: str
    title: str
    description: str
    variables: Sequence[builders.DatasourceVariable | builders.QueryVariable]
    rows: Sequence[Row]

    def build(self) -> models.Dashboard:
        board = (
            builders.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags([TAG])
            .time("now-6h", "now")
            .refresh("30s")
            .timezone("browser")
            .tooltip(models.DashboardCursorSync.CROSSHAIR)
            .link(
                # Every ticklane dashboard, keeping the time range and the variables.
                builders.DashboardLink("ticklane")
                .type(models.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
            .variables(list(self.variables))
            # Grafana's own annotations (alerts, manual notes), as its exports carry them: the
            # SDK would otherwise write `"annotations": {}`, without the list Grafana reads.
            .annotation(
                builders.AnnotationQuery()
                .name("Annotations & Alerts")
                .datasource(models.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                .built_in(1)
                .enable(True)
                .hide(True)
                .icon_color("rgba(0, 211, 255, 1)")
                .type("dashboard")
            )
        )
        for row in self.rows:
            board = board.with_row(builders.Row(row.title))
            for panel in row.panels:
                board = board.with_panel(panel)
        model = board.build()
        # Grafana keys panel state (links, edits) by id; the SDK leaves them at 0.
        for number, panel_model in enumerate(model.panels or [], start=1):
            panel_model.id_val = number
        return model


def pipeline() -> Board:
    s = JOB_SCOPE
    return Board(
        name="pipeline",
        uid="ticklane-pipeline",
        title="ticklane / Pipeline flow and lag",
        description="Every process: up or down, messages through each stage, lag per stage, "
        "dead letters.",
        variables=[
            datasource_variable(),
            # Only jobs exposing ticklane's metrics, so "All" leaves out Prometheus' other targets.
            query_variable("job", "Job", 'label_values({__name__=~"ticklane_.+"}, job)'),
        ],
        rows=[
            Row(
                "Processes",
                [
                    single(
                        "Processes up",
                        "Prometheus' scrape of each ticklane process: Down when /metrics did not "
                        "answer.",
                        Query(f"up{{{s}}}", "{{job}} {{instance}}"),
                        mappings=UP_DOWN,
                        colours=thresholds((None, "red"), (1, "green")),
                        width=FULL,
                    )
                ],
            ),
            Row(
                "Flow",
                [
                    series(
                        "Messages per second through each stage",
                        "From the source to the API's store. The producer reads records and "
                        "Kafka acknowledges them; the agents absorb ticks and publish bars and "
                        "signals; the executor consumes signals and records order state changes; "
                        "the API materializes events. A stage that falls to zero while the one "
                        "before it does not is where the pipeline stopped.",
                        [
                            per_second(
                                "ticklane_producer_records_in_total", s, "producer: records read"
                            ),
                            per_second(
                                "ticklane_producer_records_out_total",
                                s,
                                "producer: records acknowledged by Kafka",
                            ),
                            per_second("ticklane_agent_ticks_total", s, "agents: ticks absorbed"),
                            per_second("ticklane_agent_bars_total", s, "agents: bars published"),
                            per_second(
                                "ticklane_agent_signals_total", s, "agents: signals published"
                            ),
                            per_second(
                                "ticklane_executor_signals_total", s, "executor: signals consumed"
                            ),
                            per_second(
                                "ticklane_executor_orders_total",
                                s,
                                "executor: order state changes",
                            ),
                            per_second(
                                "ticklane_api_materialized_events_total",
                                s,
                                "api: events materialized",
                            ),
                        ],
                        unit="cps",
                        width=FULL,
                    ),
                    series(
                        "Producer: frames per topic",
                        "Frames (batches of records) the producers wrote, per md.* topic.",
                        [per_second_by("topic", "ticklane_producer_frames_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Agents: md.* frames by outcome",
                        "absorbed: new data; replayed: already covered by the symbol's state; "
                        "stale: delivered again after a seek.",
                        [per_second_by("outcome", "ticklane_agent_frames_total", s)],
                        unit="cps",
                    ),
                ],
            ),
            Row(
                "Lag per stage",
                [
                    series(
                        "Producer: event-time lag",
                        "Wall clock at produce minus the record's ts_event. Live, this is the "
                        "feed's delay; in a replay it is the data's age.",
                        quantiles("ticklane_producer_lag_seconds", s),
                        unit="s",
                    ),
                    series(
                        "Producer: Kafka acknowledgement",
                        "From a live record's receipt to Kafka's acknowledgement of its frame.",
                        quantiles("ticklane_producer_ack_latency_seconds", s),
                        unit="s",
                    ),
                    series(
                        "Producer: messages awaiting acknowledgement",
                        "The producer's queue: grows when Kafka is slow or unreachable.",
                        [
                            Query(
                                "sum by (instance) "
                                f"({selector('ticklane_producer_queue_depth', s)})",
                                "{{instance}}",
                            )
                        ],
                    ),
                    series(
                        "Agents: consumer lag",
                        "Messages in the md.* topics the agents have not handled yet.",
                        [
                            Query(
                                "sum by (topic) "
                                f"({selector('ticklane_agent_consumer_lag_messages', s)})",
                                "{{topic}}",
                            )
                        ],
                    ),
                    series(
                        "Agents: time per frame",
                        "Decode, bars, strategies, output delivery and state write for one frame.",
                        quantiles("ticklane_agent_frame_seconds", s),
                        unit="s",
                    ),
                    series(
                        "Executor: consumer lag",
                        "Signals the executors have not handled yet.",
                        [
                            Query(
                                "sum by (topic) "
                                f"({selector('ticklane_executor_consumer_lag_messages', s)})",
                                "{{topic}}",
                            )
                        ],
                    ),
                    series(
                        "Executor: signal to submit",
                        "From the signal's Kafka timestamp to the broker's answer to the submit.",
                        quantiles("ticklane_executor_signal_to_submit_seconds", s),
                        unit="s",
                    ),
                    series(
                        "API: materializer lag",
                        "Messages in each topic not yet in the API's store.",
                        [
                            Query(
                                "sum by (topic) "
                                f"({selector('ticklane_api_materializer_lag_messages', s)})",
                                "{{topic}}",
                            )
                        ],
                    ),
                ],
            ),
            Row(
                "Dead letters and failed deliveries",
                [
                    series(
                        "Dead letters per source topic",
                        "Messages each process could not use and sent to the dlq topic, by the "
                        "topic they were read from.",
                        [
                            per_second_by(
                                "topic", "ticklane_agent_dlq_total", s, prefix="agents: "
                            ),
                            per_second_by(
                                "topic",
                                "ticklane_executor_dead_letters_total",
                                s,
                                prefix="executor: ",
                            ),
                            per_second_by(
                                "topic", "ticklane_api_dead_letters_total", s, prefix="api: "
                            ),
                        ],
                        unit="cps",
                    ),
                    series(
                        "Messages Kafka never took",
                        "Frames the producer could not deliver after retries, and the agents' "
                        "outputs, dead letters and changelog records Kafka refused (a changelog "
                        "failure holds its partition's commit).",
                        [
                            per_second(
                                "ticklane_producer_delivery_errors_total", s, "producer: frames"
                            ),
                            per_second_by(
                                "topic",
                                "ticklane_agent_failed_deliveries_total",
                                s,
                                prefix="agents: ",
                            ),
                        ],
                        unit="cps",
                    ),
                ],
            ),
        ],
    )


def market_data() -> Board:
    s = SCOPE
    quality = "ticklane_producer_quality_events_total"
    return Board(
        name="market-data",
        uid="ticklane-market-data",
        title="ticklane / Market-data quality",
        description="The producers' view of the feed: gaps, duplicates, out-of-order and stale "
        "data, reconnects, and how fresh the records are.",
        variables=[datasource_variable(), *process_variables("ticklane_producer_records_in_total")],
        rows=[
            Row(
                "In the selected time range",
                [
                    single(
                        "Gaps",
                        "Gaps in the data that could not be filled.",
                        Query(increase_in_range("ticklane_producer_gaps_total", s)),
                        colours=NOT_ZERO_IS_BAD,
                        decimals=0,
                    ),
                    single(
                        "Stale findings",
                        "Times a feed went quiet for longer than allowed.",
                        Query(increase_in_range(quality, s, 'kind="stale"')),
                        colours=NOT_ZERO_IS_BAD,
                        decimals=0,
                    ),
                    single(
                        "Out of order",
                        "Records out of order or with a sequence number going backwards.",
                        Query(
                            increase_in_range(
                                quality, s, 'kind=~"out_of_order|sequence_regression"'
                            )
                        ),
                        colours=NOT_ZERO_IS_NOTABLE,
                        decimals=0,
                    ),
                    single(
                        "Duplicates dropped",
                        "Records dropped because they were already produced (the overlap of a "
                        "live replay); expected after a reconnect.",
                        Query(increase_in_range("ticklane_producer_duplicates_dropped_total", s)),
                        decimals=0,
                    ),
                    single(
                        "Reconnects",
                        "Reconnections to the live gateway.",
                        Query(increase_in_range("ticklane_producer_reconnects_total", s)),
                        colours=NOT_ZERO_IS_NOTABLE,
                        decimals=0,
                    ),
                    single(
                        "Delivery errors",
                        "Frames Kafka refused after the producer's retries.",
                        Query(increase_in_range("ticklane_producer_delivery_errors_total", s)),
                        colours=NOT_ZERO_IS_BAD,
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Findings",
                [
                    series(
                        "Quality findings by kind",
                        "out_of_order, duplicate, sequence_regression and stale findings of the "
                        "producers' quality checks.",
                        [per_second_by("kind", quality, s)],
                        unit="cps",
                    ),
                    series(
                        "Gaps by kind",
                        "Gaps in the data that could not be filled.",
                        [per_second_by("kind", "ticklane_producer_gaps_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Stale feeds per producer",
                        "Which producer's feed went quiet.",
                        [per_second_by("instance", quality, s, 'kind="stale"')],
                        unit="cps",
                    ),
                    series(
                        "Duplicates",
                        "Found by the quality checks; dropped as already produced (live "
                        "overlap); skipped on restart because Kafka already had them.",
                        [
                            per_second(quality, s, "found", 'kind="duplicate"'),
                            per_second("ticklane_producer_duplicates_dropped_total", s, "dropped"),
                            per_second(
                                "ticklane_producer_resume_skipped_total",
                                s,
                                "skipped on restart",
                            ),
                        ],
                        unit="cps",
                    ),
                ],
            ),
            Row(
                "Feed",
                [
                    series(
                        "Records read by source and schema",
                        "Records read from each source (file, live gateway, historical) per "
                        "Databento schema.",
                        [
                            Query(
                                "sum by (source_kind, schema) "
                                f"({rate('ticklane_producer_records_in_total', s)})",
                                "{{source_kind}} {{schema}}",
                            )
                        ],
                        unit="cps",
                    ),
                    series(
                        "Records acknowledged per topic",
                        "Records Kafka acknowledged, per md.* topic.",
                        [per_second_by("topic", "ticklane_producer_records_out_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Event-time lag per producer (p99)",
                        "Wall clock at produce minus the record's ts_event: a live feed that "
                        "falls behind shows here first.",
                        [
                            Query(
                                "histogram_quantile(0.99, sum by (instance, le) "
                                f"({rate('ticklane_producer_lag_seconds_bucket', s)}))",
                                "{{instance}}",
                            )
                        ],
                        unit="s",
                    ),
                    series(
                        "Reconnects and delivery errors",
                        "Live gateway reconnections, and frames Kafka refused after retries.",
                        [
                            per_second("ticklane_producer_reconnects_total", s, "reconnects"),
                            per_second(
                                "ticklane_producer_delivery_errors_total", s, "delivery errors"
                            ),
                        ],
                        unit="cps",
                    ),
                ],
            ),
        ],
    )


def strategies() -> Board:
    s = SCOPE
    strategy = 'strategy=~"$strategy"'
    return Board(
        name="strategies",
        uid="ticklane-strategies",
        title="ticklane / Strategies and signals",
        description="The agents: signals per strategy, bars, the frames they absorb, their "
        "state, lag and failures.",
        variables=[
            datasource_variable(),
            *process_variables("ticklane_agent_ticks_total"),
            query_variable(
                "strategy",
                "Strategy",
                'label_values(ticklane_agent_signals_total{job=~"$job"}, strategy)',
                all_value=".*",
            ),
        ],
        rows=[
            Row(
                "Now",
                [
                    single(
                        "Signals in range",
                        "Signals published in the selected time range.",
                        Query(increase_in_range("ticklane_agent_signals_total", s, strategy)),
                        decimals=0,
                    ),
                    single(
                        "Symbols",
                        "Symbols whose state the workers have written.",
                        Query(f"sum({selector('ticklane_agent_symbols', s)})"),
                        decimals=0,
                    ),
                    single(
                        "State",
                        "Bytes of per-symbol state the workers last wrote.",
                        Query(f"sum({selector('ticklane_agent_state_bytes', s)})"),
                        unit="bytes",
                    ),
                    single(
                        "Consumer lag",
                        "md.* messages not yet handled.",
                        Query(f"sum({selector('ticklane_agent_consumer_lag_messages', s)})"),
                        colours=thresholds((None, "green"), (1000, "yellow"), (100000, "red")),
                        decimals=0,
                    ),
                    single(
                        "Dead letters in range",
                        "Messages sent to the dlq topic in the selected time range.",
                        Query(increase_in_range("ticklane_agent_dlq_total", s)),
                        colours=NOT_ZERO_IS_BAD,
                        decimals=0,
                    ),
                    single(
                        "Control commands in range",
                        "Control commands (enable, disable, parameters) applied.",
                        Query(increase_in_range("ticklane_agent_control_commands_total", s)),
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Signals and bars",
                [
                    series(
                        "Signals per strategy",
                        "Signals published to the signals topic.",
                        [per_second_by("strategy", "ticklane_agent_signals_total", s, strategy)],
                        unit="cps",
                    ),
                    series(
                        "Bars per interval",
                        "Bars published to bars.*.",
                        [per_second_by("interval", "ticklane_agent_bars_total", s)],
                        unit="cps",
                    ),
                ],
            ),
            Row(
                "Work",
                [
                    series(
                        "md.* frames by outcome",
                        "absorbed: new data; replayed: already covered by the symbol's state; "
                        "stale: delivered again after a seek.",
                        [per_second_by("outcome", "ticklane_agent_frames_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Ticks absorbed and frames read back",
                        "Trades (or ohlcv bars) absorbed, and frames the consumer skipped that "
                        "a worker read back from Kafka.",
                        [
                            per_second("ticklane_agent_ticks_total", s, "ticks absorbed"),
                            per_second(
                                "ticklane_agent_refetched_frames_total", s, "frames read back"
                            ),
                        ],
                        unit="cps",
                    ),
                    series(
                        "Time per frame",
                        "Decode, bars, strategies, output delivery and state write for one frame.",
                        quantiles("ticklane_agent_frame_seconds", s),
                        unit="s",
                    ),
                    series(
                        "Consumer lag per topic",
                        "md.* messages not yet handled.",
                        [
                            Query(
                                "sum by (topic) "
                                f"({selector('ticklane_agent_consumer_lag_messages', s)})",
                                "{{topic}}",
                            )
                        ],
                    ),
                    series(
                        "State per worker",
                        "Bytes of per-symbol state each worker last wrote.",
                        [
                            Query(
                                f"sum by (instance) ({selector('ticklane_agent_state_bytes', s)})",
                                "{{instance}}",
                            )
                        ],
                        unit="bytes",
                    ),
                    series(
                        "Symbols per worker",
                        "Symbols whose state each worker has written.",
                        [
                            Query(
                                f"sum by (instance) ({selector('ticklane_agent_symbols', s)})",
                                "{{instance}}",
                            )
                        ],
                    ),
                ],
            ),
            Row(
                "Failures",
                [
                    series(
                        "Dead letters per source topic",
                        "Messages sent to the dlq topic, by the topic they were read from.",
                        [per_second_by("topic", "ticklane_agent_dlq_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Failed deliveries",
                        "Messages Kafka never took after the producer's retries. A changelog "
                        "(RocksDB table) failure holds its partition's commit.",
                        [
                            per_second_by(
                                "topic",
                                "ticklane_agent_failed_deliveries_total",
                                s,
                                'topic=~".*-changelog"',
                                prefix="changelog: ",
                            ),
                            per_second_by(
                                "topic",
                                "ticklane_agent_failed_deliveries_total",
                                s,
                                'topic!~".*-changelog"',
                                prefix="output: ",
                            ),
                        ],
                        unit="cps",
                    ),
                ],
            ),
        ],
    )


def trading() -> Board:
    s = SCOPE
    book = 'strategy=~"$strategy", symbol=~"$symbol"'
    orders = "ticklane_executor_orders_total"
    return Board(
        name="trading",
        uid="ticklane-trading",
        title="ticklane / Orders, fills, rejects and P&L",
        description="The executors: what the venue and the kill switch allow, orders by state, "
        "fills, rejects by reason, positions and realized P&L.",
        variables=[
            datasource_variable(),
            *process_variables("ticklane_executor_venue_state"),
            query_variable(
                "strategy",
                "Strategy",
                'label_values(ticklane_executor_position{job=~"$job"}, strategy)',
                all_value=".*",
            ),
            query_variable(
                "symbol",
                "Symbol",
                'label_values(ticklane_executor_position{job=~"$job", strategy=~"$strategy"}, '
                "symbol)",
                all_value=".*",
            ),
        ],
        rows=[
            Row(
                "Now",
                [
                    single(
                        "Realized P&L",
                        "Net of fees, in the account's currency, for the selected strategies "
                        "and symbols.",
                        Query(f"sum({selector('ticklane_executor_realized_pnl', s, book)})"),
                        colours=thresholds((None, "red"), (0, "green")),
                        decimals=2,
                    ),
                    single(
                        "Venue allows",
                        "What the venue allows now (e.g. reducing only when the broker's login "
                        "is near its expiry); the most restrictive executor is shown.",
                        Query(f"max({selector('ticklane_executor_venue_state', s)})"),
                        mappings=VENUE_STATE,
                        colours=thresholds((None, "green"), (1, "orange"), (2, "red")),
                    ),
                    single(
                        "Kill switch",
                        "The most restrictive kill switch in force, at any scope.",
                        Query(f"max({selector('ticklane_executor_kill_switch', s)})"),
                        mappings=KILL_SWITCH,
                        colours=thresholds((None, "green"), (1, "orange"), (2, "red")),
                    ),
                    single(
                        "Reconciliation",
                        "Halted while the ledger and the broker disagree.",
                        Query(f"max({selector('ticklane_executor_halted', s)})"),
                        mappings=states(("OK", "green"), ("Halted", "red")),
                        colours=NOT_ZERO_IS_BAD,
                    ),
                    single(
                        "Unresolved orders",
                        "Orders whose answer was lost and that the venue has not yet confirmed "
                        "or denied; their symbols take no new orders meanwhile.",
                        Query(f"sum({selector('ticklane_executor_unresolved_orders', s)})"),
                        colours=NOT_ZERO_IS_NOTABLE,
                        decimals=0,
                    ),
                    single(
                        "Rejects in range",
                        "Orders refused by risk in the selected time range.",
                        Query(increase_in_range("ticklane_executor_rejects_total", s)),
                        colours=NOT_ZERO_IS_NOTABLE,
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Orders and fills",
                [
                    series(
                        "Order state changes by status",
                        "Order state changes recorded in the ledger, by the state entered.",
                        [per_second_by("status", orders, s)],
                        unit="cps",
                    ),
                    series(
                        "Fills",
                        "Orders entering filled or partially filled.",
                        [per_second_by("status", orders, s, 'status=~"filled|partially_filled"')],
                        unit="cps",
                    ),
                    series(
                        "Rejects by reason",
                        "Orders refused by risk (daily_loss, no_price, ...).",
                        [per_second_by("reason", "ticklane_executor_rejects_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Signals by outcome",
                        "Signals consumed: answered, no_change, duplicate, superseded, "
                        "deferred, not_routed, ...",
                        [per_second_by("outcome", "ticklane_executor_signals_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Signal to submit",
                        "From the signal's Kafka timestamp to the broker's answer to the submit.",
                        quantiles("ticklane_executor_signal_to_submit_seconds", s),
                        unit="s",
                    ),
                    series(
                        "Consumer lag",
                        "Signals not yet handled.",
                        [
                            Query(
                                "sum by (topic) "
                                f"({selector('ticklane_executor_consumer_lag_messages', s)})",
                                "{{topic}}",
                            )
                        ],
                    ),
                ],
            ),
            Row(
                "Positions and P&L",
                [
                    series(
                        "Realized P&L per strategy and symbol",
                        "Net of fees, in the account's currency.",
                        [
                            Query(
                                "sum by (strategy, symbol) "
                                f"({selector('ticklane_executor_realized_pnl', s, book)})",
                                "{{strategy}} {{symbol}}",
                            )
                        ],
                        floor_zero=False,
                    ),
                    series(
                        "Net position per strategy and symbol",
                        "Negative is short.",
                        [
                            Query(
                                "sum by (strategy, symbol) "
                                f"({selector('ticklane_executor_position', s, book)})",
                                "{{strategy}} {{symbol}}",
                            )
                        ],
                        floor_zero=False,
                    ),
                    series(
                        "Kill switches",
                        "0 active, 1 reducing only, 2 halted, per scope; an empty strategy or "
                        "symbol is every one (not filtered by the variables for that reason).",
                        [
                            Query(
                                "max by (strategy, symbol) "
                                f"({selector('ticklane_executor_kill_switch', s)})",
                                "strategy={{strategy}} symbol={{symbol}}",
                            )
                        ],
                        mappings=KILL_SWITCH,
                    ),
                    series(
                        "Foreign positions",
                        "Net venue positions in symbols this executor never traded: not "
                        "reconciled, someone else's.",
                        [
                            Query(
                                "sum by (symbol) "
                                f"({selector('ticklane_executor_foreign_position', s)})",
                                "{{symbol}}",
                            )
                        ],
                        floor_zero=False,
                    ),
                ],
            ),
            Row(
                "Problems",
                [
                    series(
                        "Errors by kind",
                        "Messages or venue facts that could not be used.",
                        [per_second_by("kind", "ticklane_executor_errors_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Ignored venue events by reason",
                        "Venue events that left an order as it was.",
                        [per_second_by("reason", "ticklane_executor_ignored_events_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Ambiguous answers and reconciliation mismatches",
                        "Broker calls whose answer was lost (resolved by lookup), and "
                        "reconciliations that found the ledger and the broker disagreeing.",
                        [
                            per_second(
                                "ticklane_executor_ambiguous_answers_total", s, "ambiguous answers"
                            ),
                            per_second(
                                "ticklane_executor_reconciliation_mismatches_total",
                                s,
                                "reconciliation mismatches",
                            ),
                        ],
                        unit="cps",
                    ),
                    series(
                        "Dead letters per source topic",
                        "Messages sent to dlq, by the topic they were read from.",
                        [per_second_by("topic", "ticklane_executor_dead_letters_total", s)],
                        unit="cps",
                    ),
                ],
            ),
        ],
    )


def broker() -> Board:
    s = SCOPE
    chosen = 'broker=~"$broker"'
    token_colours = thresholds(
        (None, "green"),
        (TOKEN_WARN_S, "yellow"),
        (TOKEN_REDUCING_S, "orange"),
        (TOKEN_EXPIRED_S, "red"),
    )
    auth_colours = thresholds((None, "green"), (1, "yellow"), (AUTH_FAILURES_TO_HALT, "red"))
    return Board(
        name="broker",
        uid="ticklane-broker",
        title="ticklane / Broker health",
        description="The executors' link to their broker: the order stream, what the venue "
        "allows, the login's age (Schwab), authentication failures, ambiguous answers.",
        variables=[
            datasource_variable(),
            *process_variables("ticklane_executor_venue_state"),
            query_variable(
                "broker",
                "Broker",
                'label_values(ticklane_broker_token_age_seconds{job=~"$job"}, broker)',
                all_value=".*",
            ),
        ],
        rows=[
            Row(
                "Now",
                [
                    single(
                        "Executors up",
                        "Executors whose /metrics answered Prometheus' last scrape.",
                        Query(f"sum({selector('up', s)})"),
                        colours=thresholds((None, "red"), (1, "green")),
                        decimals=0,
                    ),
                    single(
                        "Order stream",
                        "The venue's stream of order updates and fills; the least connected "
                        "executor is shown.",
                        Query(f"min({selector('ticklane_executor_venue_connected', s)})"),
                        mappings=states(("Disconnected", "red"), ("Connected", "green")),
                        colours=thresholds((None, "red"), (1, "green")),
                    ),
                    single(
                        "Venue allows",
                        "What the venue allows now; the most restrictive executor is shown.",
                        Query(f"max({selector('ticklane_executor_venue_state', s)})"),
                        mappings=VENUE_STATE,
                        colours=thresholds((None, "green"), (1, "orange"), (2, "red")),
                    ),
                    single(
                        "Login age",
                        "Seconds since the login behind the refresh token (Schwab: it expires "
                        "after 7 days; trading reduces only from day 6 by default). Log in "
                        "again with `ticklane auth schwab`.",
                        Query(f"max({selector('ticklane_broker_token_age_seconds', s, chosen)})"),
                        unit="s",
                        colours=token_colours,
                    ),
                    single(
                        "Authentication failures",
                        "Broker calls refused authentication in a row; trading halts at the "
                        f"limit (auth_failures_to_halt, {AUTH_FAILURES_TO_HALT} by default).",
                        Query(f"max({selector('ticklane_broker_auth_failures', s, chosen)})"),
                        colours=auth_colours,
                        decimals=0,
                    ),
                    single(
                        "Unresolved orders",
                        "Orders whose answer was lost and that the venue has not yet confirmed "
                        "or denied.",
                        Query(f"sum({selector('ticklane_executor_unresolved_orders', s)})"),
                        colours=NOT_ZERO_IS_NOTABLE,
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Login",
                [
                    series(
                        "Login age",
                        "Seconds since the login behind each broker's refresh token.",
                        [
                            Query(
                                "max by (broker, instance) "
                                f"({selector('ticklane_broker_token_age_seconds', s, chosen)})",
                                "{{broker}} {{instance}}",
                            )
                        ],
                        unit="s",
                    ),
                    series(
                        "Authentication failures in a row",
                        "Calls refused authentication in a row; a successful call resets it.",
                        [
                            Query(
                                "max by (broker, instance) "
                                f"({selector('ticklane_broker_auth_failures', s, chosen)})",
                                "{{broker}} {{instance}}",
                            )
                        ],
                    ),
                ],
            ),
            Row(
                "Venue",
                [
                    series(
                        "Order stream connected",
                        "1 while the venue's stream of order updates and fills is connected.",
                        [
                            Query(
                                "min by (instance) "
                                f"({selector('ticklane_executor_venue_connected', s)})",
                                "{{instance}}",
                            )
                        ],
                        mappings=states(("Disconnected", "red"), ("Connected", "green")),
                    ),
                    series(
                        "Venue allows",
                        "0 everything, 1 only reducing orders, 2 nothing.",
                        [
                            Query(
                                "max by (instance) "
                                f"({selector('ticklane_executor_venue_state', s)})",
                                "{{instance}}",
                            )
                        ],
                        mappings=VENUE_STATE,
                    ),
                    series(
                        "Ambiguous answers and unresolved orders",
                        "Broker calls whose answer was lost (per second), and the orders still "
                        "waiting for the venue to confirm or deny them.",
                        [
                            per_second(
                                "ticklane_executor_ambiguous_answers_total",
                                s,
                                "ambiguous answers per second",
                            ),
                            Query(
                                f"sum({selector('ticklane_executor_unresolved_orders', s)})",
                                "unresolved orders",
                            ),
                        ],
                    ),
                    series(
                        "Executor errors by kind",
                        "Venue facts that could not be used: foreign orders and fills, lost "
                        "orders, orders that never reached the venue, ...",
                        [per_second_by("kind", "ticklane_executor_errors_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Reconciliation",
                        "Mismatches between the ledger and the broker (per second), and 1 while "
                        "one halts trading.",
                        [
                            per_second(
                                "ticklane_executor_reconciliation_mismatches_total",
                                s,
                                "mismatches per second",
                            ),
                            Query(f"max({selector('ticklane_executor_halted', s)})", "halted"),
                        ],
                    ),
                    series(
                        "Ignored venue events by reason",
                        "Venue events that left an order as it was.",
                        [per_second_by("reason", "ticklane_executor_ignored_events_total", s)],
                        unit="cps",
                    ),
                ],
            ),
        ],
    )


def api() -> Board:
    s = SCOPE
    route = 'route=~"$route"'
    server_errors = f'{route}, status=~"5.."'
    failed = f'{route}, status=~"[45].."'
    requests = "ticklane_api_requests_total"
    return Board(
        name="api",
        uid="ticklane-api",
        title="ticklane / API traffic",
        description="The API: requests by route and status, latency, the materializer's events "
        "and lag, live-stream clients, dead letters.",
        variables=[
            datasource_variable(),
            *process_variables("ticklane_api_stream_clients"),
            query_variable(
                "route",
                "Route",
                'label_values(ticklane_api_requests_total{job=~"$job"}, route)',
                all_value=".*",
            ),
        ],
        rows=[
            Row(
                "Now",
                [
                    single(
                        "Requests",
                        "Requests answered per second.",
                        Query(f"sum({rate(requests, s, route)})"),
                        unit="reqps",
                    ),
                    single(
                        "Server errors",
                        "Share of requests answered 5xx.",
                        Query(
                            f"sum({rate(requests, s, server_errors)}) "
                            f"/ sum({rate(requests, s, route)})"
                        ),
                        unit="percentunit",
                        colours=thresholds((None, "green"), (0.01, "yellow"), (0.05, "red")),
                    ),
                    single(
                        "Latency p99",
                        "99th percentile time to answer, all selected routes.",
                        Query(
                            "histogram_quantile(0.99, sum by (le) "
                            f"({rate('ticklane_api_request_seconds_bucket', s, route)}))"
                        ),
                        unit="s",
                        colours=thresholds((None, "green"), (0.25, "yellow"), (1, "red")),
                    ),
                    single(
                        "Stream clients",
                        "Clients connected to the live stream.",
                        Query(f"sum({selector('ticklane_api_stream_clients', s)})"),
                        decimals=0,
                    ),
                    single(
                        "Materializer lag",
                        "Messages not yet in the API's store, all topics.",
                        Query(f"sum({selector('ticklane_api_materializer_lag_messages', s)})"),
                        colours=thresholds((None, "green"), (1000, "yellow"), (100000, "red")),
                        decimals=0,
                    ),
                    single(
                        "Dead letters in range",
                        "Undecodable messages sent to dlq in the selected time range.",
                        Query(increase_in_range("ticklane_api_dead_letters_total", s)),
                        colours=NOT_ZERO_IS_BAD,
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Requests",
                [
                    series(
                        "Requests by route",
                        "Requests answered, by route template.",
                        [per_second_by("route", requests, s, route)],
                        unit="reqps",
                    ),
                    series(
                        "Requests by status",
                        "Requests answered, by HTTP status.",
                        [per_second_by("status", requests, s, route)],
                        unit="reqps",
                    ),
                    series(
                        "Errors by route and status",
                        "Requests answered 4xx or 5xx.",
                        [
                            Query(
                                f"sum by (route, status) ({rate(requests, s, failed)})",
                                "{{route}} {{status}}",
                            )
                        ],
                        unit="reqps",
                    ),
                    series(
                        "Latency p99 by route",
                        "99th percentile time to answer, per route template.",
                        [
                            Query(
                                "histogram_quantile(0.99, sum by (route, le) "
                                f"({rate('ticklane_api_request_seconds_bucket', s, route)}))",
                                "{{route}}",
                            )
                        ],
                        unit="s",
                    ),
                ],
            ),
            Row(
                "Materializer and live stream",
                [
                    series(
                        "Events materialized by kind",
                        "Messages applied to the API's store.",
                        [per_second_by("kind", "ticklane_api_materialized_events_total", s)],
                        unit="cps",
                    ),
                    series(
                        "Materializer lag per topic",
                        "Messages in each topic not yet in the API's store.",
                        [
                            Query(
                                "sum by (topic) "
                                f"({selector('ticklane_api_materializer_lag_messages', s)})",
                                "{{topic}}",
                            )
                        ],
                    ),
                    series(
                        "Live stream",
                        "Clients connected to the live stream, and events sent to them per second.",
                        [
                            Query(f"sum({selector('ticklane_api_stream_clients', s)})", "clients"),
                            per_second(
                                "ticklane_api_streamed_events_total", s, "events per second"
                            ),
                        ],
                    ),
                    series(
                        "Dead letters per source topic",
                        "Undecodable messages sent to dlq, by the topic they were read from.",
                        [per_second_by("topic", "ticklane_api_dead_letters_total", s)],
                        unit="cps",
                    ),
                ],
            ),
        ],
    )


BOARDS: Final[tuple[Callable[[], Board], ...]] = (
    pipeline,
    market_data,
    strategies,
    trading,
    broker,
    api,
)


def render(board: Board) -> str:
    """The dashboard's JSON as committed: sorted keys and a final newline, so regenerating
    unchanged code changes no byte."""
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[Path, str]:
    return {OUT_DIR / f"{board.name}.json": render(board) for board in (b() for b in BOARDS)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed file differs from what this code builds",
    )
    args = parser.parse_args(argv)
    wanted = rendered()
    if args.check:
        stale = sorted(path for path, text in wanted.items() if _read(path) != text)
        # Files no dashboard builds any more would still be provisioned: they count too.
        extra = sorted(set(OUT_DIR.glob("*.json")) - set(wanted))
        for path in stale:
            print(f"{path}: differs from generate.py's output", file=sys.stderr)
        for path in extra:
            print(f"{path}: no dashboard in generate.py builds it", file=sys.stderr)
        if stale or extra:
            print("run: python deploy/grafana/generate.py", file=sys.stderr)
            return 1
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for path in sorted(set(OUT_DIR.glob("*.json")) - set(wanted)):
        path.unlink()
    for path, text in wanted.items():
        if _read(path) != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
