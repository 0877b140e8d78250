"""UpstreamAccount + Secret -> the accounts-file entry, checked by the router's own parser."""

import base64
from typing import Any

import pytest

from switchboard_operator import builder
from switchboard_router.accounts_yaml import parse_account

from .operator_testing import SAMPLES


@pytest.mark.parametrize("platform", sorted(SAMPLES))
def test_every_sample_becomes_an_account_the_router_accepts(platform: str) -> None:
    spec, data = SAMPLES[platform]
    entry = builder.build_account("team-a", "primary", spec, data)
    account = parse_account(entry, source="test")
    assert account.id == f"{platform}/team-a.primary" == builder.account_id(platform, "team-a", "primary")
    assert account.platform == platform


def test_fields_are_renamed_and_the_credential_goes_where_the_platform_reads_it() -> None:
    spec, data = SAMPLES["claude-console"]
    entry = builder.build_account("ns", "a", spec, data)
    assert entry == {"name": "ns.a", "platform": "claude-console", "models": ["claude-*"],
                     "model_mapping": {"claude-sonnet-4": "claude-sonnet-4-20250514"}, "weight": 3,
                     "groups": ["team-a"], "timeout_seconds": 600, "connect_timeout_seconds": 10,
                     "api_key": "sk-ant-sample"}
    official = builder.build_account("ns", "max", *SAMPLES["claude-official"])
    assert official["oauth"] == {"access_token": "at-sample", "refresh_token": "rt-sample", "expires_at": 4102444800}
    bedrock = builder.build_account("ns", "aws", *SAMPLES["bedrock"])
    assert bedrock["aws"] == {"access_key_id": "AKIASAMPLE", "secret_access_key": "aws-secret-sample"}
    assert bedrock["region"] == "us-east-1"
    codex = builder.build_account("ns", "codex", *SAMPLES["openai-responses"])
    assert codex["oauth"] == {"refresh_token": "rt-codex-sample", "account_id": "7f6b2a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}
    azure = parse_account(builder.build_account("ns", "az", *SAMPLES["azure-openai"]), source="t")
    assert azure.deployments == {"gpt-4o*": "gpt4o-prod"} and azure.api_version == "2024-10-21"


def test_a_proxy_url_with_a_password_comes_from_the_secret() -> None:
    spec = {"platform": "openai", "credentialsSecretRef": {"name": "s"}}
    entry = builder.build_account("ns", "a", spec, {"api_key": "k", "proxy_url": "http://u:p@proxy:3128"})
    assert entry["proxy_url"] == "http://u:p@proxy:3128"
    with pytest.raises(builder.SpecError, match="proxy is given twice"):
        builder.build_account("ns", "a", {**spec, "proxyUrl": "http://proxy:3128"},
                              {"api_key": "k", "proxy_url": "http://u:p@proxy:3128"})


@pytest.mark.parametrize(("platform", "data", "says"), [
    ("openai", {}, "needs key 'api_key'"),
    ("claude-official", {"access_token": "at-secret-value"}, "needs key 'refresh_token'"),
    ("openai-responses", {"refresh_token": "rt-secret-value"}, "needs key 'account_id'"),
    ("openai-responses", {"api_key": "sk-secret-value", "refresh_token": "rt-secret-value"}, "holds both"),
    ("bedrock", {"aws_access_key_id": "AKIASECRETVALUE"}, "missing: aws_secret_access_key"),
    ("bedrock", {"api_key": "sk-secret-value", "aws_access_key_id": "AKIASECRETVALUE"}, "holds both"),
])
def test_a_secret_without_what_the_platform_needs_is_reported_by_key_never_by_value(
        platform: str, data: dict[str, str], says: str) -> None:
    spec: dict[str, Any] = {"platform": platform, "credentialsSecretRef": {"name": "s"}, "region": "us-east-1"}
    with pytest.raises(builder.SpecError, match=says) as caught:
        builder.build_account("ns", "a", spec, data)
    for value in data.values():
        assert value not in str(caught.value)


def test_secret_data_is_decoded_and_a_bad_value_named_by_its_key() -> None:
    data = {"api_key": base64.b64encode(b" sk-x \n").decode()}
    assert builder.decode_secret(data) == {"api_key": "sk-x"}
    assert builder.decode_secret(None) == {}
    with pytest.raises(builder.SpecError, match="'api_key' is not base64"):
        builder.decode_secret({"api_key": "not base64!"})
    assert builder.decode_secret(builder.encode_secret({"k": "v"})) == {"k": "v"}


def test_a_write_back_changes_only_the_oauth_keys_that_differ() -> None:
    stored = {"access_token": "at2", "refresh_token": "rt2", "expires_at": "1900000000"}
    current = {"refresh_token": "rt1", "access_token": "at2", "unrelated": "x"}
    assert builder.secret_writeback("claude-official", "", stored, current) == {
        "refresh_token": "rt2", "expires_at": "1900000000"}
    assert builder.secret_writeback("claude-official", "", stored, stored) == {}  # idempotent
    codex = {**stored, "chatgpt_account_id": "7f6b2a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}
    assert builder.secret_writeback("openai-responses", "", codex, {})["account_id"] == codex["chatgpt_account_id"]
    assert builder.secret_writeback("openai", "sk-new", {}, {"api_key": "sk-old"}) == {}  # keys are not refreshed


def test_names_are_valid_router_names_for_any_kubernetes_names() -> None:
    assert builder.account_name("ns-1", "my.account-2") == "ns-1.my.account-2"
    parse_account({"name": builder.account_name("a" * 63, "b" * 253), "platform": "openai", "api_key": "k"},
                  source="t")
