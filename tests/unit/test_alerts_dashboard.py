"""The alert rules and the Grafana dashboard name only metrics (and labels) that the code exports.

promtool is not available here: the rule file is read as YAML, and each PromQL expression is reduced to
the metric names and label names it uses, which must be those that flixtube_common.metrics exports
(as prometheus_client's own parser reads them) plus the labels a scrape adds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flixtube_common import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "alerts" / "flixtube.rules.yaml"
DASHBOARD = ROOT / "deploy" / "dashboards" / "flixtube.json"
TARGET_LABELS = {"service", "namespace", "pod", "container", "job", "instance"}
"""Labels the scrape adds (infra's PodMonitors relabel `service` from app.kubernetes.io/name)."""
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
REQUIRED_ALERTS = {
    "FlixTubeViewsDeadLettered": "flixtube_views_dead_lettered_total",
    "FlixTubeConsumerLagGrowing": "flixtube_consumer_lag_messages",
    "FlixTubeViewsDropped": "flixtube_views_dropped_total",
    "FlixTubeHighErrorRate": "flixtube_http_requests_total",
}


def exported() -> dict[str, set[str]]:
    """Series name → label names of every flixtube metric, each labelled one given a child first."""
    metrics.observe_request("/video", "GET", 200, 0.01)
    metrics.SubscriberMetrics.of("history")
    metrics.CONSUMER_LAG.labels("history", "history.viewed")
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        if not family.name.startswith("flixtube_"):
            continue
        assert family.samples, f"{family.name}: no series; give it a child above so its labels are known"
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


EXPORTED = exported()


def expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every alert rule and every dashboard query."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]


def used(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and label names one PromQL expression uses (Grafana's variables filled in)."""
    expr = expr.replace("$__rate_interval", "5m")
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals say nothing about names
    labels = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", selector))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {name.strip() for name in grouping.split(",") if name.strip()}
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    names = {
        match.group(1)
        for match in re.finditer(r"\b([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
        if match.group(1) not in KEYWORDS and not re.fullmatch(r"\d+\w*", match.group(1))
    }
    return names, labels


@pytest.mark.parametrize(("where", "expr"), list(expressions()))
def test_every_expression_names_exported_metrics_and_their_labels(where: str, expr: str) -> None:
    names, labels = used(expr)
    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - EXPORTED.keys()
    assert not unknown, f"{where}: {sorted(unknown)} are not exported (known: {sorted(EXPORTED)})"
    known_labels = set().union(*(EXPORTED[name] for name in names)) | TARGET_LABELS
    assert labels <= known_labels, f"{where}: labels {sorted(labels - known_labels)} are not on {names}"


def test_the_name_extraction_sees_what_an_expression_names() -> None:
    names, labels = used(
        'sum by (service, le) (rate(flixtube_x_bucket{route="/v", status=~"5.."}[5m])) / on(pod) flixtube_y'
    )
    assert names == {"flixtube_x_bucket", "flixtube_y"}
    assert labels == {"service", "le", "route", "status", "pod"}


def test_the_rule_file_has_the_required_alerts_each_well_formed() -> None:
    (group,) = yaml.safe_load(RULES.read_text())["groups"]
    rules: dict[str, dict[str, Any]] = {rule["alert"]: rule for rule in group["rules"]}
    for alert, metric in REQUIRED_ALERTS.items():
        assert metric in used(rules[alert]["expr"])[0], alert
    for name, rule in rules.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), name
    assert rules["FlixTubeConsumerLagGrowing"]["for"] == "5m"  # "growing for 5 minutes"


def test_the_dashboard_shows_every_metric_the_code_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "flixtube" and dashboard["title"] == "FlixTube"
    shown = set().union(*(used(expr)[0] for where, expr in expressions() if where.startswith("panel")))
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in EXPORTED}
    missing = {family for family in families if not any(name.startswith(family) for name in shown)}
    assert not missing, f"no panel shows {sorted(missing)}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
