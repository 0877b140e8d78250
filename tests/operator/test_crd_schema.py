"""The UpstreamAccount CRD: its openAPIV3Schema (jsonschema, draft 4 as Kubernetes' structural schemas are) and its
CEL rules (evaluated with the `cel` package, Google's CEL, without Kubernetes' own CEL libraries, which these rules
do not use) accept every sample and refuse invalid objects."""

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import cel
import jsonschema
import pytest

from .operator_testing import SAMPLES, crd, schema, upstream_account

VALIDATOR = jsonschema.Draft4Validator(schema())


def rules(node: Mapping[str, Any], value: Any, old: Any) -> Iterator[tuple[str, str, Any, Any]]:
    """(rule, message, self, oldSelf) for every x-kubernetes-validations rule that applies to `value`."""
    for rule in node.get("x-kubernetes-validations", ()):
        yield rule["rule"], rule["message"], value, old
    if isinstance(value, dict):
        for name, child in node.get("properties", {}).items():
            if name in value:
                yield from rules(child, value[name], old.get(name) if isinstance(old, dict) else None)


def cel_problems(obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[str]:
    problems = []
    for rule, message, value, previous in rules(schema(), obj, old):
        if "oldSelf" in rule and previous is None:
            continue  # a transition rule applies to updates only
        context = {"self": value, **({"oldSelf": previous} if previous is not None else {})}
        if cel.evaluate(rule, context) is not True:
            problems.append(message)
    return problems


def schema_problems(obj: Mapping[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(obj)]


def sample(base: str = "openai", **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SAMPLES[base][0])
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return upstream_account("a", "ns", spec)


@pytest.mark.parametrize("platform", sorted(SAMPLES))
def test_every_platform_sample_is_accepted(platform: str) -> None:
    obj = sample(platform)
    assert schema_problems(obj) == [] and cel_problems(obj) == []


def test_the_crd_names_the_platform_ids_the_router_knows() -> None:
    from switchboard_common import platforms

    enum = schema()["properties"]["spec"]["properties"]["platform"]["enum"]
    assert sorted(enum) == sorted(platforms.ALL) == sorted(SAMPLES)
    names = crd()["spec"]["names"]
    assert names["kind"] == "UpstreamAccount" and "ua" in names["shortNames"]
    version = crd()["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Platform"] == ".spec.platform" and columns["Priority"] == ".spec.priority"
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status' and "Age" in columns


@pytest.mark.parametrize(("obj", "says"), [
    (sample(platform=None), "'platform' is a required property"),
    (sample(platform="claude"), "is not one of"),
    (sample(credentialsSecretRef=None), "'credentialsSecretRef' is a required property"),
    (sample(credentialsSecretRef={"name": "Not_A_Name"}), "does not match"),
    (sample(credentialsSecretRef={}), "'name' is a required property"),
    (sample(weight=0), "less than the minimum"),
    (sample(maxConcurrency=-1), "less than the minimum"),
    (sample(priority="high"), "is not of type 'integer'"),
    (sample(baseUrl="ftp://files.example.com"), "does not match"),
    (sample(baseUrl="https://api.example.com/v1?x=1"), "does not match"),
    (sample(proxyUrl="http://proxy.internal"), "does not match"),  # no port
    (sample(proxyUrl="http://user:pass@proxy.internal:3128"), "does not match"),  # a password: the Secret's key
    (sample(timeoutSeconds=0), "less than or equal to the minimum"),
    (sample(connectTimeoutSeconds=90000), "greater than the maximum"),
    (sample(models=[]), "should be non-empty"),
    (sample("bedrock", region="US-EAST-1"), "does not match"),
    (sample("azure-openai", pathStyle="v2"), "is not one of"),
    (sample("azure-openai", apiVersion="latest"), "does not match"),
    (sample("azure-openai", deployments={"gpt-4o": "bad name!"}), "does not match"),
    (sample(organization="caf\u00e9"), "does not match"),
    ({"apiVersion": "switchboard.dev/v1alpha1", "kind": "UpstreamAccount", "metadata": {"name": "a"}},
     "'spec' is a required property"),
])
def test_the_schema_refuses(obj: dict[str, Any], says: str) -> None:
    problems = schema_problems(obj)
    assert any(says in p for p in problems), problems


@pytest.mark.parametrize(("obj", "says"), [
    (sample("bedrock", region=None), "bedrock requires region"),
    (sample("openai", region="us-east-1"), "region is a field of platform bedrock only"),
    (sample("claude-ccr", baseUrl=None), "claude-ccr and azure-openai require baseUrl"),
    (sample("azure-openai", baseUrl=None), "claude-ccr and azure-openai require baseUrl"),
    (sample("azure-openai", deployments=None, apiVersion=None), "azure-openai requires deployments, or pathStyle v1"),
    (sample("openai", deployments={"gpt-4o": "prod"}), "fields of platform azure-openai only"),
    (sample("gemini", pathStyle="v1"), "fields of platform azure-openai only"),
    (sample("azure-openai", pathStyle="v1"), "apiVersion is not used with pathStyle v1"),
    (sample("azure-openai", baseUrl="https://myres.openai.azure.com/openai"), "without /openai"),
    (sample("gemini", project="p"), "organization and project are fields of platforms openai"),
])
def test_the_cel_rules_refuse(obj: dict[str, Any], says: str) -> None:
    assert schema_problems(obj) == []
    problems = cel_problems(obj)
    assert any(says in p for p in problems), problems


def test_azure_v1_without_deployments_is_accepted() -> None:
    obj = sample("azure-openai", deployments=None, apiVersion=None, pathStyle="v1")
    assert schema_problems(obj) == [] and cel_problems(obj) == []


def test_the_platform_cannot_change() -> None:
    old = sample("openai")
    new = sample("openai")
    new["spec"]["platform"] = "openai-responses"
    assert "platform is immutable; create another UpstreamAccount instead" in cel_problems(new, old)
    assert cel_problems(old, copy.deepcopy(old)) == []


def test_status_written_by_the_operator_fits_the_schema() -> None:
    from datetime import UTC, datetime

    from switchboard_operator.conditions import Hold, Live, Observed, Window, status

    live = Live("cooling", 3, (Hold("", "throttled", 1_900_000_000, "slow down"),),
                (Window("opus", "7d_opus", 0.5, 1_900_000_000),))
    written = status(Observed("openai/ns.a", 4, live), datetime.now(UTC))
    obj = {**sample(), "status": {k: v for k, v in written.items() if v is not None}}
    assert schema_problems(obj) == []
    format_checker = jsonschema.Draft4Validator(schema(), format_checker=jsonschema.FormatChecker())
    assert [e.message for e in format_checker.iter_errors(obj)] == []
