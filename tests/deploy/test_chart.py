"""The Helm chart: lint, render (default and production-like values), offline schema validation of every
object, and the rules the chart enforces or promises (embedded mode, draining, lockdown, RBAC, CRDs)."""

import base64
import dataclasses
import importlib
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from switchboard_auth.pricing import default_prices, parse_prices
from switchboard_common.settings import from_env
from switchboard_router.accounts_yaml import parse_accounts

from .conftest import CHART, NAMESPACE, PRODUCTION_VALUES, RELEASE, Render, Rendered

FULLNAME = f"{RELEASE}-switchboard"
# Kubernetes versions the chart supports (Chart.yaml kubeVersion), oldest and newest kubernetes-validate knows.
KUBE_VERSIONS = ["1.25.0", "1.37.0"]
# Prometheus Operator kinds: kubernetes-validate has no schema for them (they are CRDs); their content is
# checked by the tests below instead.
CRD_TYPED = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}

VALUES = {"default": [], "production": [PRODUCTION_VALUES]}


@pytest.fixture(scope="module")
def default(render: Render) -> Rendered:
    return render()


@pytest.fixture(scope="module")
def production(render: Render) -> Rendered:
    return render([PRODUCTION_VALUES])


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_helm_lint_passes(helm: Any, values: list[Path]) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    done = helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_every_object_validates_against_the_kubernetes_schemas(render: Render, values: list[Path],
                                                               kube_version: str) -> None:
    """kubernetes-validate --strict (unknown fields refused) on every object; only the Prometheus Operator
    kinds are skipped (no schema ships for them) and the test names exactly which were."""
    rendered = render(values, kube_version=kube_version)
    skipped, problems = set(), []
    for obj in rendered.objects:
        kind = (obj["apiVersion"], obj["kind"])
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            skipped.add(kind)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert problems == []
    expected_skips = CRD_TYPED if values else set()
    assert skipped == expected_skips, f"skipped (no schema): {sorted(skipped)}"


def test_default_install_renders_the_four_components_in_embedded_mode(default: Rendered) -> None:
    deployments = {d["metadata"]["name"]: d for d in default.of_kind("Deployment")}
    assert set(deployments) == {f"{FULLNAME}-{c}" for c in ("edge", "auth", "router", "operator")}
    commands = {name: containers(d)[0]["command"] for name, d in deployments.items()}
    assert commands[f"{FULLNAME}-edge"] == ["python", "-m", "switchboard_edge"]
    assert commands[f"{FULLNAME}-auth"] == ["python", "-m", "switchboard_auth"]
    assert commands[f"{FULLNAME}-router"] == ["python", "-m", "switchboard_router"]
    assert {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments.values()} == {
        "ghcr.io/switchboard/switchboard:0.1.0"}
    auth_env = env_of(containers(deployments[f"{FULLNAME}-auth"])[0])
    assert auth_env["SWITCHBOARD_AUTH_DB_PATH"] == "/var/lib/switchboard/switchboard.db"
    assert "SWITCHBOARD_AUTH_DATABASE_URL" not in auth_env and "SWITCHBOARD_AUTH_REDIS_URL" not in auth_env
    assert deployments[f"{FULLNAME}-auth"]["spec"]["strategy"] == {"type": "Recreate"}
    kinds = {obj["kind"] for obj in default.objects}
    for optional in ("HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"):
        assert optional not in kinds
    services = {s["metadata"]["name"]: {p["name"]: p["port"] for p in s["spec"]["ports"]}
                for s in default.of_kind("Service")}
    assert services == {f"{FULLNAME}-edge": {"http": 80, "http-metrics": 9100},
                        f"{FULLNAME}-auth": {"grpc": 50051, "http-metrics": 9101},
                        f"{FULLNAME}-router": {"grpc": 50052, "http-metrics": 9102}}


def test_production_values_use_external_stores_from_their_secrets(production: Rendered) -> None:
    auth = env_of(containers(production.one("Deployment", f"{FULLNAME}-auth"))[0])
    router = env_of(containers(production.one("Deployment", f"{FULLNAME}-router"))[0])
    assert auth["SWITCHBOARD_AUTH_DATABASE_URL"] == {"secretKeyRef": {"name": "switchboard-postgres", "key": "url"}}
    assert "SWITCHBOARD_AUTH_DB_PATH" not in auth
    redis = {"secretKeyRef": {"name": "switchboard-redis", "key": "url"}}
    assert auth["SWITCHBOARD_AUTH_REDIS_URL"] == redis and router["SWITCHBOARD_ROUTER_REDIS_URL"] == redis
    assert auth["SWITCHBOARD_AUTH_KEY_PEPPER"] == {"secretKeyRef": {"name": "switchboard-pepper", "key": "pepper"}}
    assert production.one("Deployment", f"{FULLNAME}-auth")["spec"]["replicas"] == 2
    assert production.one("Deployment", f"{FULLNAME}-router")["spec"]["replicas"] == 2
    # Existing Secrets only: the chart keeps none of its own.
    assert production.of_kind("Secret") == []


def test_inline_urls_go_into_the_charts_secret(render: Render) -> None:
    rendered = render(sets=["database.url=postgresql://sb:pw@pg:5432/sb", "redis.url=redis://redis:6379/0",
                            "auth.replicas=3", "router.replicas=2"])
    secret = rendered.one("Secret", f"{FULLNAME}-secrets")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "database-url": "postgresql://sb:pw@pg:5432/sb", "redis-url": "redis://redis:6379/0"}
    auth = env_of(containers(rendered.one("Deployment", f"{FULLNAME}-auth"))[0])
    assert auth["SWITCHBOARD_AUTH_DATABASE_URL"] == {"secretKeyRef": {"name": f"{FULLNAME}-secrets",
                                                                      "key": "database-url"}}
    # The URL itself never appears in a Deployment.
    assert "pw@pg" not in yaml.safe_dump(rendered.of_kind("Deployment"))


@pytest.mark.parametrize(("sets", "message"), [
    pytest.param(["auth.replicas=2"], "auth.replicas is 2, but auth keeps keys and the usage ledger in an embedded "
                 "SQLite file unless database.url or database.existingSecret names a PostgreSQL database",
                 id="auth-without-postgres"),
    pytest.param(["auth.replicas=2", "database.url=postgresql://pg/sb"],
                 "auth.replicas is 2, but auth keeps per-key limits in its own memory unless redis.url",
                 id="auth-without-redis"),
    pytest.param(["router.replicas=2"], "router.replicas is 2, but the router keeps leases, holds and "
                 "operator-managed accounts in its own memory unless redis.url", id="router-without-redis"),
])
def test_embedded_mode_refuses_more_than_one_replica(render: Render, sets: list[str], message: str) -> None:
    rendered = render(sets=sets)
    assert rendered.returncode != 0
    assert message in rendered.stderr


def test_edge_replicas_need_no_external_store(render: Render) -> None:
    rendered = render(sets=["edge.replicas=4"])
    assert rendered.one("Deployment", f"{FULLNAME}-edge")["spec"]["replicas"] == 4
    assert rendered.one("PodDisruptionBudget", f"{FULLNAME}-edge")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_edge_outlives_its_drain(render: Render, values: list[Path]) -> None:
    edge = render(values).one("Deployment", f"{FULLNAME}-edge")
    pod = edge["spec"]["template"]["spec"]
    container = pod["containers"][0]
    drain = int(env_of(container)["SWITCHBOARD_EDGE_DRAIN_SECONDS"])
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > drain + int(pre_stop[1])


def test_a_grace_period_shorter_than_the_drain_is_refused(render: Render) -> None:
    rendered = render(sets=["edge.drainSeconds=90", "edge.terminationGracePeriodSeconds=60"])
    assert rendered.returncode != 0
    assert "edge.terminationGracePeriodSeconds (60) must exceed edge.preStopSleepSeconds + edge.drainSeconds (95)" \
        in rendered.stderr


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_every_pod_is_locked_down(render: Render, values: list[Path]) -> None:
    for deployment in render(values).of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert "add" not in security["capabilities"], name
            # Whatever is writable is a volume: /tmp always, and nothing from the host.
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
            assert "emptyDir" in mounts["/tmp"], name
            assert not any("hostPath" in v for v in volumes.values()), name
        if name.endswith("-edge"):
            assert "emptyDir" in mounts["/var/spool/switchboard"]
            assert env_of(pod["containers"][0])["SWITCHBOARD_EDGE_SPOOL_DIR"] == "/var/spool/switchboard"
        # Only the operator carries a Kubernetes API token.
        assert pod.get("automountServiceAccountToken", True) is name.endswith("-operator"), name


def test_production_scales_the_edge_and_publishes_the_base_url_over_tls(production: Rendered) -> None:
    assert "replicas" not in production.one("Deployment", f"{FULLNAME}-edge")["spec"]  # the HPA owns it
    hpa = production.one("HorizontalPodAutoscaler", f"{FULLNAME}-edge")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{FULLNAME}-edge"}
    ingress = production.one("Ingress", FULLNAME)["spec"]
    assert ingress["tls"] == [{"hosts": ["ai.example.com"], "secretName": "ai-example-com-tls"}]
    assert ingress["ingressClassName"] == "nginx"
    (rule,) = ingress["rules"]
    assert rule["host"] == "ai.example.com"
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": f"{FULLNAME}-edge", "port": {"name": "http"}}
    budgets = {p["metadata"]["name"] for p in production.of_kind("PodDisruptionBudget")}
    assert budgets == {f"{FULLNAME}-{c}" for c in ("edge", "auth", "router")}


def test_notes_print_the_base_urls(helm: Any) -> None:
    done = helm("install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE,
                "--values", str(PRODUCTION_VALUES))
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    for url in ("https://ai.example.com/claude", "https://ai.example.com/openai/v1",
                "https://ai.example.com/gemini", "https://ai.example.com/v1/responses"):
        assert url in notes
    assert f"exec deploy/{FULLNAME}-auth -- switchboard keys create" in notes
    assert "embedded mode" not in notes


def test_the_values_schema_refuses_unknown_and_wrong_settings(render: Render) -> None:
    typo = render(sets=["edge.replica=3"])
    assert typo.returncode != 0 and "additional properties 'replica' not allowed" in typo.stderr
    wrong = render(sets=["database.url=mysql://db/sb"])
    assert wrong.returncode != 0 and "/database/url" in wrong.stderr


SAMPLE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev", "annotations": {"example.dev/owner": "team"}},
    "spec": {"group": "example.dev", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]},
}


def test_every_crd_file_is_rendered_as_a_kept_template(helm: Any, tmp_path: Path) -> None:
    """The mechanism alone, on a copy of the chart whose files/crds/ holds two sample CRDs."""
    chart = tmp_path / "switchboard"
    shutil.copytree(CHART, chart)
    crds = chart / "files" / "crds"
    shutil.rmtree(crds, ignore_errors=True)
    crds.mkdir(parents=True)
    second = yaml.safe_load(yaml.safe_dump(SAMPLE_CRD))
    second["metadata"] = {"name": "gadgets.example.dev"}
    second["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    (crds / "widgets.example.dev.yaml").write_text(yaml.safe_dump(SAMPLE_CRD))
    (crds / "gadgets.example.dev.yaml").write_text(yaml.safe_dump(second))
    (crds / "README.txt").write_text("not a CRD")

    def rendered_crds(*sets: str) -> list[dict[str, Any]]:
        args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
        for item in sets:
            args += ["--set", item]
        done = helm(*args)
        assert done.returncode == 0, done.stderr
        return [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "CustomResourceDefinition"]

    by_name = {crd["metadata"]["name"]: crd for crd in rendered_crds()}
    assert set(by_name) == {"widgets.example.dev", "gadgets.example.dev"}
    widgets = by_name["widgets.example.dev"]
    assert widgets["spec"] == SAMPLE_CRD["spec"]
    assert widgets["metadata"]["annotations"] == {"example.dev/owner": "team", "helm.sh/resource-policy": "keep"}
    assert widgets["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert by_name["gadgets.example.dev"]["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    for crd in by_name.values():
        kubernetes_validate.validate(crd, "1.25.0", strict=True)
    assert "helm.sh/resource-policy" not in rendered_crds("crds.keep=false")[0]["metadata"].get("annotations", {})
    assert rendered_crds("crds.install=false") == []


def test_the_shipped_crds_are_rendered_unchanged(default: Rendered) -> None:
    shipped = sorted((CHART / "files" / "crds").glob("*.yaml"))
    assert [p.name for p in shipped] == ["upstreamaccounts.switchboard.dev.yaml"]
    sources = {doc["metadata"]["name"]: doc for doc in (yaml.safe_load(p.read_text()) for p in shipped)}
    crds = {crd["metadata"]["name"]: crd for crd in default.of_kind("CustomResourceDefinition")}
    assert set(crds) == set(sources)
    for name, crd in crds.items():
        assert crd["spec"] == sources[name]["spec"]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_operator_rbac_is_least_privilege(production: Rendered, render: Render) -> None:
    operator_sa = {"kind": "ServiceAccount", "name": f"{FULLNAME}-operator", "namespace": NAMESPACE}
    roles = production.of_kind("Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ai-accounts", "switchboard"]
    for role in roles + production.of_kind("ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    rules = {(r["apiGroups"][0], res): set(r["verbs"]) for r in roles[0]["rules"] for res in r["resources"]}
    assert rules[("switchboard.dev", "upstreamaccounts/status")] == {"get", "patch", "update"}
    assert rules[("switchboard.dev", "upstreamaccounts/finalizers")] == {"update"}
    assert rules[("", "secrets")] == {"get", "list", "watch", "patch"}
    assert rules[("", "events")] == {"create"}
    (cluster_role,) = production.of_kind("ClusterRole")
    assert [(r["resources"], r["verbs"]) for r in cluster_role["rules"]] == [
        (["customresourcedefinitions"], ["list", "watch"]), (["namespaces"], ["list", "watch"])]
    for binding in production.of_kind("RoleBinding") + production.of_kind("ClusterRoleBinding"):
        assert binding["subjects"] == [operator_sa]
    everywhere = render([PRODUCTION_VALUES], sets=["operator.watchAllNamespaces=true"])
    assert everywhere.of_kind("Role") == []
    assert len(everywhere.of_kind("ClusterRole")) == 2
    assert render(sets=["operator.enabled=false"]).of_kind("ClusterRole") == []


def test_network_policies_cover_every_component(production: Rendered) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in production.of_kind("NetworkPolicy")}
    assert set(policies) == {f"{FULLNAME}-{c}" for c in ("edge", "auth", "router", "operator")}
    for spec in policies.values():
        assert spec["policyTypes"] == ["Ingress", "Egress"]
    auth_from = policies[f"{FULLNAME}-auth"]["ingress"][0]["from"]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in auth_from] == ["edge"]
    router_from = policies[f"{FULLNAME}-router"]["ingress"][0]["from"]
    assert sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in router_from) == [
        "edge", "operator"]
    assert policies[f"{FULLNAME}-operator"]["ingress"] == []


def test_service_monitor_scrapes_every_metrics_port(production: Rendered) -> None:
    monitor = production.one("ServiceMonitor", FULLNAME)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    (expression,) = monitor["spec"]["selector"]["matchExpressions"]
    selected = [s for s in production.of_kind("Service")
                if s["metadata"]["labels"]["app.kubernetes.io/component"] in expression["values"]
                and all(s["metadata"]["labels"].get(k) == v
                        for k, v in monitor["spec"]["selector"]["matchLabels"].items())]
    assert len(selected) == 3
    for service in selected:
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_prometheus_rule_alerts_on_what_the_issue_names(production: Rendered) -> None:
    rule = production.one("PrometheusRule", FULLNAME)
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {"SwitchboardUpstreamErrorRate", "SwitchboardPlatformUnavailable",
                           "SwitchboardKeyLimitSaturation", "SwitchboardHighLatencyP99",
                           "SwitchboardGatewayOverheadP99", "SwitchboardUsageBacklog", "SwitchboardRedisUnreachable",
                           "SwitchboardKeyStoreUnreachable"}
    for alert in alerts.values():
        assert alert["expr"].strip() and alert["labels"]["severity"] in {"warning", "critical"}
        assert f'namespace="{NAMESPACE}"' in alert["expr"]


def test_dashboard_configmap_carries_the_dashboard_json(production: Rendered) -> None:
    configmap = production.one("ConfigMap", f"{FULLNAME}-dashboard")
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = (CHART / "files" / "dashboards" / "switchboard.json").read_text()
    assert yaml.safe_load(configmap["data"]["switchboard.json"]) == yaml.safe_load(shipped)


def test_router_accounts_configmap_is_an_accounts_file_the_router_accepts(default: Rendered) -> None:
    configmap = default.one("ConfigMap", f"{FULLNAME}-router-accounts")
    assert parse_accounts(configmap["data"]["accounts.yaml"], source="configmap", environ={}) == []
    router = containers(default.one("Deployment", f"{FULLNAME}-router"))[0]
    env = env_of(router)
    assert env["SWITCHBOARD_ROUTER_ACCOUNTS_FILE"] == "/etc/switchboard/accounts.yaml"
    # The accounts file is read-only; refreshed credentials are written to the pod's emptyDir.
    assert env["SWITCHBOARD_ROUTER_CREDENTIALS_FILE"] == "/var/lib/switchboard/credentials.json"


SETTINGS = {
    "edge": ("switchboard_edge.settings", "EdgeSettings", "SWITCHBOARD_EDGE_"),
    "auth": ("switchboard_auth.settings", "AuthSettings", "SWITCHBOARD_AUTH_"),
    "router": ("switchboard_router.settings", "RouterSettings", "SWITCHBOARD_ROUTER_"),
    "operator": ("switchboard_operator.settings", "OperatorSettings", "SWITCHBOARD_OPERATOR_"),
}


@pytest.mark.parametrize("component", SETTINGS)
def test_every_setting_the_chart_passes_is_one_the_service_reads(production: Rendered, component: str) -> None:
    """A misspelt variable would be ignored silently by the service; here it fails. The literal values
    must also convert (the service's own loader is run on them)."""
    module_name, class_name, prefix = SETTINGS[component]
    module = importlib.import_module(module_name)
    settings_class = getattr(module, class_name)
    known = {prefix + field.name.upper() for field in dataclasses.fields(settings_class)}
    env = env_of(containers(production.one("Deployment", f"{FULLNAME}-{component}"))[0])
    ours = {name for name in env if name.startswith("SWITCHBOARD_") and name != "SWITCHBOARD_LOG_LEVEL"}
    assert ours, "the chart passes no settings"
    assert sorted(ours - known) == []
    literal = {name: value for name, value in env.items() if name in ours and isinstance(value, str)}
    from_env(settings_class, prefix, literal)


def test_operator_watches_the_namespaces_its_roles_cover(production: Rendered, render: Render) -> None:
    def namespaces(rendered: Rendered) -> str:
        operator = containers(rendered.one("Deployment", f"{FULLNAME}-operator"))[0]
        return str(env_of(operator)["SWITCHBOARD_OPERATOR_NAMESPACES"])

    assert namespaces(production) == "switchboard,ai-accounts"
    assert namespaces(render()) == NAMESPACE
    assert namespaces(render(sets=["operator.watchAllNamespaces=true"])) == ""  # cluster-wide
    operator = containers(production.one("Deployment", f"{FULLNAME}-operator"))[0]
    assert operator["command"] == ["python", "-m", "switchboard_operator"]
    assert env_of(operator)["SWITCHBOARD_OPERATOR_ROUTER_TARGET"] == f"{FULLNAME}-router:50052"


def test_price_overrides_reach_auth_as_a_price_file_it_accepts(production: Rendered, default: Rendered) -> None:
    configmap = production.one("ConfigMap", f"{FULLNAME}-auth-prices")
    table = parse_prices(configmap["data"]["prices.yaml"], "configmap").over(default_prices())
    ccr = table.lookup("claude-ccr", "claude-sonnet-4-6")
    assert ccr is not None and (ccr.input, ccr.output) == (Decimal(2), Decimal(10))
    assert table.lookup("claude-console", "claude-sonnet-4-6") == default_prices().lookup(
        "claude-console", "claude-sonnet-4-6")
    auth = production.one("Deployment", f"{FULLNAME}-auth")
    container = containers(auth)[0]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert env_of(container)["SWITCHBOARD_AUTH_PRICES_FILE"] == "/etc/switchboard/prices/prices.yaml"
    assert mounts["/etc/switchboard/prices"] == "prices"
    volumes = {v["name"]: v for v in auth["spec"]["template"]["spec"]["volumes"]}
    assert volumes["prices"]["configMap"]["name"] == f"{FULLNAME}-auth-prices"
    # Without overrides: no price file, the packaged prices alone.
    assert "SWITCHBOARD_AUTH_PRICES_FILE" not in env_of(containers(default.one("Deployment", f"{FULLNAME}-auth"))[0])
    assert [c["metadata"]["name"] for c in default.of_kind("ConfigMap")] == [f"{FULLNAME}-router-accounts"]
