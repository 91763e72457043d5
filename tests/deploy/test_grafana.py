"""The Grafana dashboards in `deploy/grafana/dashboards/`: committed as `generate.py` builds them,
each on the `$datasource` Prometheus variable, and every query reading only metrics the processes
really declare (checked against their Prometheus registries, not against a list kept here)."""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

# Imported for their effect: they declare their metrics on the default registry.
import agents.metrics  # noqa: F401
import producers.metrics  # noqa: F401
from api.metrics import ApiMetrics
from executors.metrics import ExecutorMetrics
from tests.conftest import prometheus_tool
from tests.deploy.promql import metric_names, tokenize, variable_metric_names

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED = {"pipeline", "market-data", "strategies", "trading", "broker", "api"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's own variables that queries may use without declaring them.
GRAFANA_VARIABLES = {"__rate_interval", "__range", "__interval", "__all"}
# Declared in the Schwab adapter's constructor (it needs a live client, so no registry here).
BROKER_GAUGES = {"ticklane_broker_token_age_seconds", "ticklane_broker_auth_failures"}
SCHWAB_CLIENT = ROOT / "executors" / "brokers" / "schwab" / "client.py"


def _exposed(registry: CollectorRegistry) -> set[str]:
    """The series names a registry's metrics appear under on /metrics, labelled or not yet."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def _known_metrics() -> set[str]:
    return (
        _exposed(REGISTRY)
        | _exposed(ExecutorMetrics().registry)
        | _exposed(ApiMetrics().registry)
        | BROKER_GAUGES
        | {"up"}  # Prometheus' own, one per scrape target
    )


def _load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but rows, including those inside collapsed rows."""
    found = []
    for panel in board.get("panels", []):
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def _exprs(board: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in _panels(board) for target in panel["targets"]]


def _windows(expr: str) -> list[str]:
    """What each range selector's brackets hold (brackets inside strings are regex, not ranges)."""
    windows, inside = [], None
    for token in tokenize(expr):
        if token.text == "[":
            inside = []
        elif token.text == "]" and inside is not None:
            windows.append("".join(inside))
            inside = None
        elif inside is not None:
            inside.append(token.text)
    return windows


def _variables(board: dict[str, Any]) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = board.get("templating", {}).get("list", [])
    return variables


boards = pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])


def test_the_committed_dashboards_are_what_generate_py_builds():
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_the_issue_asks_for_is_there_with_a_unique_uid():
    assert {path.stem for path in DASHBOARDS} == EXPECTED
    uids = [_load(path)["uid"] for path in DASHBOARDS]
    titles = [_load(path)["title"] for path in DASHBOARDS]
    assert all(uids), uids
    assert len(set(uids)) == len(uids), uids
    assert len(set(titles)) == len(titles), titles
    # Grafana refuses a uid longer than 40 characters or with other characters.
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid) for uid in uids), uids


@boards
def test_every_query_goes_to_the_datasource_variable(path):
    board = _load(path)
    [datasource] = [v for v in _variables(board) if v["name"] == "datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for panel in _panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, panel["title"]
    for variable in _variables(board):
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


@boards
def test_every_panel_has_a_query_and_a_unique_id(path):
    board = _load(path)
    panels = _panels(board)
    assert panels
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), (panel["title"], target)
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel
    nested = [p for row in board["panels"] if row["type"] == "row" for p in row["panels"]]
    ids = [panel["id"] for panel in board["panels"] + nested]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@boards
def test_every_query_reads_only_metrics_the_processes_declare(path):
    board = _load(path)
    known = _known_metrics()
    for expr in _exprs(board):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= known, f"{sorted(names - known)} in {expr!r} are no process's metrics"
    for variable in _variables(board):
        if variable["type"] == "query":
            names = variable_metric_names(variable["query"])
            assert names <= known, f"{sorted(names - known)} in variable {variable['name']}"


@boards
def test_counters_and_histograms_are_read_as_rates_over_grafanas_windows(path):
    for expr in _exprs(_load(path)):
        for name in metric_names(expr):
            if name.endswith(("_total", "_bucket")):
                # A counter's raw value means nothing on its own (it resets on restart).
                assert re.search(rf"\b(rate|increase)\({re.escape(name)}\{{[^}}]*\}}\[", expr), (
                    f"{name} is not read through rate() or increase() in {expr!r}"
                )
        # $__rate_interval keeps at least four scrapes in each window; $__range is "the range".
        for window in _windows(expr):
            assert window in {"$__rate_interval", "$__range"}, expr


@boards
def test_every_variable_a_query_uses_is_declared(path):
    board = _load(path)
    declared = {variable["name"] for variable in _variables(board)} | GRAFANA_VARIABLES
    queries = _exprs(board) + [v["query"] for v in _variables(board) if v["type"] == "query"]
    for query in queries:
        used = set(re.findall(r"\$\{?(\w+)", query))
        assert used <= declared, f"{sorted(used - declared)} in {query!r}"


def test_prometheus_own_parser_accepts_every_query(tmp_path):
    # promtool parses a rule's expression with Prometheus' own parser; Grafana's range
    # variables become durations first, as Grafana itself does before sending a query.
    windows = {"$__rate_interval": "2m", "$__range": "6h", "$__interval": "30s"}
    rules = []
    for path in DASHBOARDS:
        for index, expr in enumerate(_exprs(_load(path))):
            sent = expr
            for variable, duration in windows.items():
                sent = sent.replace(f"[{variable}]", f"[{duration}]")
            record = f"dashboard:{path.stem.replace('-', '_')}:{index}"
            rules.append({"record": record, "expr": sent})
    rules_file = tmp_path / "dashboards.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [prometheus_tool("promtool"), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_the_broker_gauges_are_the_schwab_clients():
    source = SCHWAB_CLIENT.read_text()
    for name in BROKER_GAUGES:
        assert f'"{name}"' in source, name
