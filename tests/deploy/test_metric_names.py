"""The Grafana dashboard and the PrometheusRule query only metrics the services really export.

The exported names come from a live scrape of a running stack (simulator, auth, router, edge as processes,
after one streamed request so the request-path families have samples too), expanded by each family's
type: `_total` for counters, `_bucket`/`_sum`/`_count` for histograms.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack

from .conftest import CHART, PRODUCTION_VALUES, Render

DASHBOARD = CHART / "files" / "dashboards" / "switchboard.json"
# Grafana's own variables, replaced by values PromQL accepts before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_LABEL_VALUES = re.compile(r"^label_values\(\s*(.+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$")


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana label_values query) reads, from its syntax tree;
    an expression PromQL cannot parse raises ValueError."""
    text = _LABEL_VALUES.sub(r"\1", expression.strip())
    for variable, value in GRAFANA_VARIABLES.items():
        text = text.replace(variable, value)
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(text), visit)
    return names


@pytest.mark.parametrize(("expression", "names"), [
    pytest.param('sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{namespace=~"$ns",a="b"}[5m]))',
                 {"gen_ai_client_token_usage_sum"}, id="grouping-labels-are-not-metrics"),
    pytest.param("histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket[$__rate_interval])))",
                 {"grpc_server_handling_seconds_bucket"}, id="quantile"),
    pytest.param('a_total or on(platform) switchboard_x{state="gen_ai_y"} unless switchboard_z',
                 {"a_total", "switchboard_x", "switchboard_z"}, id="binary-ops-and-label-values"),
    pytest.param("label_values(switchboard_edge_requests_total, namespace)", {"switchboard_edge_requests_total"},
                 id="grafana-label-values"),
])
def test_metric_names_are_read_from_promql(expression: str, names: set[str]) -> None:
    assert metric_names(expression) == names


def test_an_expression_that_is_not_promql_is_refused() -> None:
    with pytest.raises(ValueError):
        metric_names("sum(rate(switchboard_edge_requests_total[5m])")


def dashboard_expressions(dashboard: dict) -> list[str]:
    expressions = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            expressions += [target["expr"] for target in inner.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            expressions.append(query["query"])
    return expressions


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name the three services' /metrics can carry, from a live scrape."""
    with Stack(tmp_path_factory.mktemp("metrics-stack"), Ports.free()) as stack:
        key = create_demo_key(stack.db_path, "metrics")
        with httpx.Client(base_url=stack.base_url, timeout=10) as client:
            answer = client.post("/openai/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                 json={"model": "gpt-4o-mini", "stream": True,
                                       "messages": [{"role": "user", "content": "Hi"}]})
            assert answer.status_code == 200, answer.text
        names: set[str] = set()
        ports = stack.ports
        for port in (ports.edge_metrics, ports.auth_metrics, ports.router_metrics):
            scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            assert scrape.status_code == 200
            for family in text_string_to_metric_families(scrape.text):
                if family.type == "counter":
                    names |= {f"{family.name}_total", f"{family.name}_created"}
                elif family.type == "histogram":
                    names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count",
                              f"{family.name}_created"}
                else:
                    names.add(family.name)
                names |= {sample.name for sample in family.samples}
        yield names


def test_the_scrape_holds_the_families_the_readme_lists(exported: set[str]) -> None:
    """Guards the check below against an empty or partial scrape."""
    for name in ("switchboard_edge_requests_total", "gen_ai_server_time_to_first_token_seconds_bucket",
                 "switchboard_auth_decisions_total", "switchboard_router_account_state",
                 "grpc_server_handling_seconds_bucket"):
        assert name in exported


def test_dashboard_json_queries_only_exported_metrics(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = set().union(*(metric_names(e) for e in dashboard_expressions(dashboard)))
    # What the dashboard must show: requests, latency, TTFT, tokens, account states and windows, failovers.
    for needed in ("switchboard_edge_requests_total", "gen_ai_server_request_duration_seconds_bucket",
                   "gen_ai_server_time_to_first_token_seconds_bucket", "gen_ai_client_token_usage_sum",
                   "switchboard_usage_tokens_total", "switchboard_router_account_state",
                   "switchboard_router_account_window_utilization", "switchboard_upstream_failovers_total"):
        assert needed in queried
    assert sorted(queried - exported) == []


def test_prometheus_rule_queries_only_exported_metrics(render: Render, exported: set[str]) -> None:
    rendered = render([PRODUCTION_VALUES])
    (rule,) = rendered.of_kind("PrometheusRule")
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    queried = set().union(*(metric_names(e) for e in expressions))
    assert len(queried) >= 6
    assert sorted(queried - exported) == []


def test_dashboard_panels_are_laid_out_without_overlap() -> None:
    dashboard = json.loads(Path(DASHBOARD).read_text())
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        covered = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not covered & cells, panel["title"]
        cells |= covered
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
