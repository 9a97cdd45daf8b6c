"""The shipped Prometheus alert rules and Grafana dashboard (deploy/): promtool accepts the
rules and each alert fires on the series it is about and stays quiet on healthy ones; the
dashboard is valid JSON whose panels each say what they show. (That every metric the
rules and the dashboard name is one outguard really exports is checked against a running
outguard in tests/integration/test_metrics.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[3]
RULES = ROOT / "deploy" / "prometheus" / "outguard-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "outguard-dashboard.json"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"

INST = 'job="outguard",instance="pbx1:8470"'


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    reason = "promtool is missing (apt-get install prometheus)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"cannot check the alert rules in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def test_promtool_accepts_the_alert_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 10 rules found" in done.stdout


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    """The sample prometheus.yml, with its rule file beside it and a credentials file."""
    config = SCRAPE.read_text().replace("/etc/prometheus/outguard.token",
                                        str(tmp_path / "outguard.token"))
    (tmp_path / "outguard.token").write_text("og_x_y\n")
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(RULES, tmp_path / "outguard-alerts.yml")
    done = subprocess.run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def without_annotations(rules: str) -> str:
    """The rules without their annotations (promtool's unit tests compare annotations
    too; these tests are about when an alert fires and with which labels)."""
    out: list[str] = []
    skipping_below: int | None = None
    for line in rules.splitlines():
        indent = len(line) - len(line.lstrip())
        if skipping_below is not None:
            if not line.strip() or indent > skipping_below:
                continue
            skipping_below = None
        if line.strip() == "annotations:":
            skipping_below = indent
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{INST}{',' + labels if labels else ''}}}", "values": values}


def alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name,
            "exp_alerts": [{"exp_labels": dict(label)} for label in labels]}


BASE = {"job": "outguard", "instance": "pbx1:8470"}

#: (what is pinned, input series, expected alerts): each alert fires on its trouble, and a
#: healthy series of the same metric keeps it quiet
CASES: list[tuple[str, list[dict[str, str]], list[dict[str, Any]]]] = [
    ("outguard unreachable pages after a minute",
     [series("up", "", "1 0 0 0")],
     [alert("OutguardDown", "1m"), alert("OutguardDown", "3m", {**BASE, "severity": "critical"})]),
    ("ARI lost pages, AGI not listening does not",
     [series("outguard_connected", 'part="ari"', "1 0 0 0"),
      series("outguard_connected", 'part="ami"', "1 1 1 1"),
      series("outguard_connected", 'part="agi"', "0 0 0 0")],
     [alert("OutguardAsteriskLinkDown", "3m",
            {**BASE, "part": "ari", "severity": "critical"})]),
    ("AMI lost pages too",
     [series("outguard_connected", 'part="ami"', "1 0 0 0")],
     [alert("OutguardAsteriskLinkDown", "3m",
            {**BASE, "part": "ami", "severity": "critical"})]),
    ("a refused unscreened call pages; a dialled one warns",
     [series("outguard_screening_failures_total", 'adapter="ari",mode="closed"', "0 0 1 1"),
      series("outguard_screening_failures_total", 'adapter="agi",mode="open"', "0 0 0 2")],
     [alert("OutguardFailClosedCalls", "1m"),
      alert("OutguardFailClosedCalls", "2m",
            {"instance": "pbx1:8470", "adapter": "ari", "severity": "critical"}),
      alert("OutguardFailOpenCalls", "3m",
            {"instance": "pbx1:8470", "adapter": "agi", "severity": "warning"})]),
    ("decision p99 above 5 ms for 10 minutes warns; below stays quiet",
     [series("outguard_decision_latency_seconds_bucket", 'le="0.001"', "0+100x30"),
      series("outguard_decision_latency_seconds_bucket", 'le="0.01"', "0+100x30"),
      series("outguard_decision_latency_seconds_bucket", 'le="0.05"', "0+200x30"),
      series("outguard_decision_latency_seconds_bucket", 'le="+Inf"', "0+200x30")],
     [alert("OutguardDecisionSlow", "8m"),
      alert("OutguardDecisionSlow", "20m",
            {"instance": "pbx1:8470", "severity": "warning"})]),
    ("five more suspensions within 15 minutes warns; a slow rise does not",
     [series("outguard_suspensions_active", 'party_kind="account"', "0x20 1 2 3 4 5 6"),
      series("outguard_suspensions_active", 'party_kind="tenant"', "0x26")],
     [alert("OutguardSuspensionSpike", "20m"),
      alert("OutguardSuspensionSpike", "25m", {"instance": "pbx1:8470", "severity": "warning"})]),
    ("a snapshot older than 15 minutes warns",
     [series("outguard_snapshot_age_seconds", "", "0+60x30")],
     [alert("OutguardSnapshotStale", "14m"),
      alert("OutguardSnapshotStale", "25m", {**BASE, "severity": "warning"})]),
    ("a failed store write pages",
     [series("outguard_store_write_errors_total", 'kind="call_row"', "0 0 0 1 1")],
     [alert("OutguardStoreWriteErrors", "2m"),
      alert("OutguardStoreWriteErrors", "4m",
            {"instance": "pbx1:8470", "kind": "call_row", "severity": "critical"})]),
    ("an overdue complaint warns; due soon does not",
     [series("outguard_complaints_open", 'channel="12321",state="overdue"', "0 0 1 1"),
      series("outguard_complaints_open", 'channel="fcc",state="due_soon"', "1 1 1 1")],
     [alert("OutguardComplaintOverdue", "1m"),
      alert("OutguardComplaintOverdue", "3m",
            {"instance": "pbx1:8470", "channel": "12321", "severity": "warning"})]),
    ("a deadline counted on weekdays for an hour warns; none flagged stays quiet",
     [series("outguard_complaints_calendar_unknown", 'channel="12321"', "0 1x70"),
      series("outguard_complaints_calendar_unknown", 'channel="12300"', "0x70")],
     [alert("OutguardComplaintCalendarUnknown", "30m"),
      alert("OutguardComplaintCalendarUnknown", "65m",
            {"instance": "pbx1:8470", "channel": "12321", "severity": "warning"})]),
]


@pytest.mark.parametrize(("case", "inputs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_alert_fires_on_its_trouble_only(
        tmp_path: Path, case: str, inputs: list[dict[str, str]],
        expected: list[dict[str, Any]]) -> None:
    (tmp_path / "rules.yml").write_text(without_annotations(RULES.read_text()))
    spec = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": inputs,
                       "alert_rule_test": expected}]}
    (tmp_path / "test.yml").write_text(json.dumps(spec))  # JSON is YAML
    done = subprocess.run([promtool(), "test", "rules", "test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, case + "\n" + done.stdout + done.stderr


def test_the_annotation_stripper_keeps_every_rule() -> None:
    stripped = without_annotations(RULES.read_text())
    assert "annotations" not in stripped and "description" not in stripped
    assert stripped.count("- alert:") == RULES.read_text().count("- alert:") == 10


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_every_dashboard_panel_says_what_it_shows() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "instance"]
    for panel in board["panels"]:
        assert len(panel["description"]) > 20, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_alert_and_every_panel_query_names_a_metric() -> None:
    rules = re.findall(r"expr: (.+)", RULES.read_text())
    for expr in rules + dashboard_queries():
        assert re.search(r"\b(outguard_\w+|process_\w+|up)\b", expr), expr
