"""The alert rules with the real tools: `promtool check rules`, `promtool test rules` on
deploy/prometheus/tests.yml, and every alert covered there (firing and quiet) and in the
runbooks."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import prometheus_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "tests.yml"
README = ROOT / "deploy" / "prometheus" / "README.md"


def _alerts() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus_tool("promtool"), *args],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"


@pytest.mark.parametrize("alert", sorted(_alerts()))
def test_every_alert_has_a_severity_a_summary_and_a_runbook(alert: str) -> None:
    rule = _alerts()[alert]
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"]
    anchor = rule["annotations"]["runbook_url"].split("#")[1]
    sections = re.findall(r"^### (\w+)\n\n(.+?)(?=^### |\Z)", README.read_text(), re.M | re.S)
    runbooks = {name.lower(): text for name, text in sections}
    assert anchor == alert.lower()
    assert len(runbooks.get(anchor, "")) > 80, f"{alert}: no runbook in {README.name}"
