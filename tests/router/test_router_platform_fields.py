"""Per-platform account fields: what each platform reads, its defaults, its refusals, and that no
credential value ever reaches a message."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.duration_pb2 import Duration

from switchboard.router.v1 import router_pb2
from switchboard_common import platforms
from switchboard_router.accounts import Account, State
from switchboard_router.accounts_yaml import parse_accounts
from switchboard_router.errors import AccountsInvalid
from switchboard_router.wire import account_message

CANARY = "SECRET-canary-7f3a9c"


def parse_one(entry: dict[str, Any], environ: dict[str, str] | None = None) -> Account:
    (only,) = parse_accounts(yaml.safe_dump({"accounts": [entry]}), source="a.yaml", environ=environ or {})
    return only


def problems(entry: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(AccountsInvalid) as caught:
        parse_accounts(yaml.safe_dump({"accounts": [entry]}), source="a.yaml", environ=environ or {})
    return caught.value.problems


def entry(platform: str, **fields: Any) -> dict[str, Any]:
    return {"name": "acct", "platform": platform, **fields}


OFFICIAL = {"oauth": {"access_token": "at-1", "refresh_token": "rt-1", "expires_at": 1_900_000_000}}
CHATGPT_ACCOUNT = "5e1a7c3b-0000-4000-8000-00c0dec0de00"
CODEX = {"oauth": {"refresh_token": "rt-c", "access_token": "at-c", "expires_at": 1_900_000_000,
                   "account_id": CHATGPT_ACCOUNT}}
AWS = {"region": "eu-central-1", "aws": {"access_key_id": "AKIA1", "secret_access_key": "sk-aws-1"}}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(entry("claude-console", api_key="k"),
                     {"base_url": "https://api.anthropic.com", "api_key": "k"}, id="claude-console"),
        pytest.param(entry("claude-ccr", api_key="k", base_url="https://ccr.example/"),
                     {"base_url": "https://ccr.example", "api_key": "k"}, id="claude-ccr"),
        pytest.param(entry("openai", api_key="k", organization="org-1", project="proj_1"),
                     {"base_url": "https://api.openai.com", "organization": "org-1", "project": "proj_1"},
                     id="openai"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://res.openai.azure.com",
                           deployments={"gpt-4o": "prod-4o", "gpt-4.1*": "d41"}),
                     {"path_style": "deployments", "api_version": "2024-10-21",
                      "deployments": {"gpt-4o": "prod-4o", "gpt-4.1*": "d41"}}, id="azure-deployments-defaults"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://res.openai.azure.com", path_style="v1"),
                     {"path_style": "v1", "api_version": ""}, id="azure-v1"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://res.openai.azure.com",
                           api_version="2025-04-01-preview"),
                     {"api_version": "2025-04-01-preview"}, id="azure-preview-version"),
        pytest.param(entry("claude-official", **OFFICIAL),
                     {"base_url": "https://api.anthropic.com", "api_key": "",
                      "secrets": {"access_token": "at-1", "refresh_token": "rt-1", "expires_at": "1900000000"}},
                     id="claude-official"),
        pytest.param(entry("claude-official", oauth={"refresh_token": "rt-1"}),
                     {"secrets": {"refresh_token": "rt-1"}}, id="claude-official-refresh-only"),
        pytest.param(entry("claude-official", oauth={"access_token": "at-long", "expires_at": 1_900_000_000}),
                     {"secrets": {"access_token": "at-long", "expires_at": "1900000000"}},
                     id="claude-official-long-lived-token"),
        pytest.param(entry("bedrock", **AWS),
                     {"base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com", "region": "eu-central-1",
                      "api_key": "", "secrets": {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "sk-aws-1"}},
                     id="bedrock-aws"),
        pytest.param(entry("bedrock", region="us-east-1",
                           aws={"access_key_id": "AKIA1", "secret_access_key": "s", "session_token": "tok"}),
                     {"secrets": {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s",
                                  "aws_session_token": "tok"}}, id="bedrock-session-token"),
        pytest.param(entry("bedrock", region="us-west-2", api_key="bedrock-api-key"),
                     {"api_key": "bedrock-api-key", "secrets": {}}, id="bedrock-api-key"),
        pytest.param(entry("bedrock", region="cn-north-1", api_key="k"),
                     {"base_url": "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"}, id="bedrock-china"),
        pytest.param(entry("bedrock", region="us-east-1", api_key="k", base_url="http://127.0.0.1:8090"),
                     {"base_url": "http://127.0.0.1:8090"}, id="bedrock-base-url-override"),
        pytest.param(entry("gemini", api_key="k"),
                     {"base_url": "https://generativelanguage.googleapis.com"}, id="gemini"),
        pytest.param(entry("openai-responses", api_key="k", project="proj_1"),
                     {"base_url": "https://api.openai.com", "api_key": "k", "project": "proj_1", "secrets": {}},
                     id="openai-responses-api-key"),
        pytest.param(entry("openai-responses", **CODEX),
                     {"base_url": "https://chatgpt.com/backend-api/codex", "api_key": "",
                      "secrets": {"refresh_token": "rt-c", "access_token": "at-c", "expires_at": "1900000000",
                                  "chatgpt_account_id": CHATGPT_ACCOUNT}}, id="openai-responses-chatgpt"),
        pytest.param(entry("openai-responses", oauth={"refresh_token": "rt-c", "account_id": CHATGPT_ACCOUNT},
                           base_url="http://127.0.0.1:8090/backend-api/codex/"),
                     {"base_url": "http://127.0.0.1:8090/backend-api/codex",
                      "secrets": {"refresh_token": "rt-c", "chatgpt_account_id": CHATGPT_ACCOUNT}},
                     id="openai-responses-chatgpt-refresh-only"),
    ],
)
def test_each_platform_reads_its_fields(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    account = parse_one(fields)
    assert account.state is State.READY
    for name, value in expected.items():
        actual = getattr(account, name)
        assert (dict(actual) if isinstance(value, dict) else actual) == value, name


@pytest.mark.parametrize(
    ("expires_at", "seconds"),
    [
        pytest.param(1_700_000_000, "1700000000", id="posix-int"),
        pytest.param(1_700_000_000.9, "1700000000", id="posix-float"),
        pytest.param("2030-01-01T00:00:00Z", "1893456000", id="iso-string-z"),
        pytest.param("2030-01-01T02:00:00+02:00", "1893456000", id="iso-string-offset"),
        pytest.param("2030-01-01T00:00:00", "1893456000", id="iso-string-naive-is-utc"),
    ],
)
def test_oauth_expiry_is_stored_as_posix_seconds(expires_at: object, seconds: str) -> None:
    account = parse_one(entry("claude-official", oauth={"refresh_token": "r", "expires_at": expires_at}))
    assert account.secrets["expires_at"] == seconds


def test_oauth_expiry_as_an_unquoted_yaml_timestamp() -> None:
    text = ("accounts:\n  - {name: a, platform: claude-official,\n"
            "     oauth: {refresh_token: r, expires_at: 2030-01-01T00:00:00Z}}\n")
    (account,) = parse_accounts(text, source="a.yaml", environ={})
    assert account.secrets["expires_at"] == "1893456000"


def test_secrets_come_from_the_environment_in_every_section() -> None:
    environ = {"RT": "rt-env", "AK": "akid-env", "SK": "secret-env", "PROXY": "http://u:p@proxy:3128"}
    official = parse_one(entry("claude-official", oauth={"refresh_token_env": "RT"}, proxy_url_env="PROXY"), environ)
    assert dict(official.secrets) == {"refresh_token": "rt-env"}
    assert official.proxy_url == "http://u:p@proxy:3128"
    bedrock = parse_one(entry("bedrock", region="us-east-1",
                              aws={"access_key_id_env": "AK", "secret_access_key_env": "SK"}), environ)
    assert dict(bedrock.secrets) == {"aws_access_key_id": "akid-env", "aws_secret_access_key": "secret-env"}


def test_an_unset_variable_in_a_section_puts_only_that_account_in_error() -> None:
    account = parse_one(entry("bedrock", region="us-east-1",
                              aws={"access_key_id": "AKIA1", "secret_access_key_env": "NOT_SET"}))
    assert account.state is State.ERROR
    assert account.error == "environment variable NOT_SET (aws.secret_access_key_env) is not set or empty"


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        pytest.param(entry("claude-ccr", api_key="k"), "base_url", "is required for platform claude-ccr",
                     id="ccr-needs-base-url"),
        pytest.param(entry("azure-openai", api_key="k"), "base_url", "is required for platform azure-openai",
                     id="azure-needs-endpoint"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://r.openai.azure.com/openai/"), "base_url",
                     "without '/openai'", id="azure-endpoint-with-path"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://r", path_style="v2"), "path_style",
                     "expected one of deployments, v1, got 'v2'", id="azure-path-style"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://r", api_version="latest"), "api_version",
                     "expected a date like 2024-10-21", id="azure-api-version-format"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://r", path_style="v1",
                           api_version="2024-10-21"), "api_version", "not used with path_style v1",
                     id="azure-api-version-with-v1"),
        pytest.param(entry("azure-openai", api_key="k", base_url="https://r", deployments={"gpt-4o": "a/b"}),
                     "deployments", "entry 'gpt-4o': a deployment name", id="azure-deployment-name"),
        pytest.param(entry("azure-openai", base_url="https://r"), "api_key", "one of 'api_key' or 'api_key_env'",
                     id="azure-needs-key"),
        pytest.param(entry("openai", api_key="k", organization="org\n1"), "organization", "printable ASCII",
                     id="openai-organization-newline"),
        pytest.param(entry("claude-official"), "oauth", "is required", id="official-needs-oauth"),
        pytest.param(entry("claude-official", oauth="token"), "oauth", "expected a mapping, got str",
                     id="official-oauth-not-mapping"),
        pytest.param(entry("claude-official", oauth={"access_token": "a"}), "oauth.refresh_token",
                     "one of 'refresh_token' or 'refresh_token_env' is required", id="official-needs-refresh"),
        pytest.param(entry("claude-official", oauth={"refresh_token": "r", "expires_at": 1_700_000_000_000}),
                     "oauth.expires_at", "not milliseconds", id="official-expiry-millis"),
        pytest.param(entry("claude-official", oauth={"refresh_token": "r", "expires_at": "tomorrow"}),
                     "oauth.expires_at", "POSIX seconds or an ISO 8601 timestamp", id="official-expiry-text"),
        pytest.param(entry("claude-official", oauth={"refresh_token": "r", "expires_at": True}),
                     "oauth.expires_at", "got bool", id="official-expiry-bool"),
        pytest.param(entry("claude-official", oauth={"refresh_token": "r", "scope": "x"}),
                     "oauth.scope", "unknown field", id="official-oauth-unknown"),
        pytest.param(entry("claude-official", oauth={"refresh_token": "r"}, api_key="k"), "api_key",
                     "not a field of platform claude-official", id="official-no-api-key"),
        pytest.param(entry("openai-responses"), "api_key", "'api_key' (an OpenAI API key) or 'oauth'",
                     id="responses-needs-a-credential"),
        pytest.param(entry("openai-responses", api_key="k", **CODEX), "oauth", "not both",
                     id="responses-both-credentials"),
        pytest.param(entry("openai-responses", oauth={"refresh_token": "r"}), "oauth.account_id", "is required",
                     id="responses-oauth-needs-account-id"),
        pytest.param(entry("openai-responses", oauth={"refresh_token": "r", "account_id": "user-123"}),
                     "oauth.account_id", "a UUID", id="responses-oauth-account-id-format"),
        pytest.param(entry("openai-responses", oauth={"account_id": CHATGPT_ACCOUNT, "access_token": "a"}),
                     "oauth.refresh_token", "one of 'refresh_token' or 'refresh_token_env' is required",
                     id="responses-oauth-needs-refresh"),
        pytest.param(entry("openai-responses", organization="org-1", **CODEX), "organization",
                     "used only with 'api_key'", id="responses-oauth-no-organization"),
        pytest.param(entry("openai-responses", oauth={"refresh_token": "r", "account_id": CHATGPT_ACCOUNT,
                                                      "id_token": "x"}),
                     "oauth.id_token", "unknown field", id="responses-oauth-unknown"),
        pytest.param(entry("openai", api_key="k", **CODEX), "oauth",
                     "not a field of platform openai (it is one of claude-official, openai-responses)",
                     id="oauth-elsewhere"),
        pytest.param(entry("claude-console", api_key="k", region="us-east-1"), "region",
                     "not a field of platform claude-console (it is one of bedrock)", id="region-elsewhere"),
        pytest.param(entry("bedrock", api_key="k"), "region", "is required", id="bedrock-needs-region"),
        pytest.param(entry("bedrock", api_key="k", region="Virginia"), "region", "expected an AWS region",
                     id="bedrock-region-format"),
        pytest.param(entry("bedrock", region="us-east-1"), "aws", "one of 'aws' (access keys) or 'api_key'",
                     id="bedrock-needs-a-credential"),
        pytest.param(entry("bedrock", api_key="k", **AWS), "aws", "not both", id="bedrock-both-credentials"),
        pytest.param(entry("bedrock", region="us-east-1", aws={"access_key_id": "AKIA1"}),
                     "aws.secret_access_key", "is required", id="bedrock-needs-secret"),
        pytest.param(entry("claude-console", api_key="k", proxy_url="ftp://proxy:21"), "proxy_url",
                     "expected a URL with scheme http, https, socks5, socks5h", id="proxy-scheme"),
        pytest.param(entry("claude-console", api_key="k", proxy_url="socks5h://proxy"), "proxy_url",
                     "a host and a port", id="proxy-port"),
        pytest.param(entry("claude-console", api_key="k", proxy_url="http://proxy:99999"), "proxy_url",
                     "expected a URL with scheme", id="proxy-bad-port"),
        pytest.param(entry("claude-console", api_key="k", proxy_url="http://proxy:3128/x"), "proxy_url",
                     "nothing after the port", id="proxy-path"),
        pytest.param(entry("claude-console", api_key="k", headers={"bad header": "x"}), "headers",
                     "entry 'bad header': not a valid header name", id="header-name"),
        pytest.param(entry("claude-console", api_key="k", headers={"Content-Length": "1"}), "headers",
                     "set by the edge", id="header-framing"),
        pytest.param(entry("claude-console", api_key="k", headers={"x-h": "a\r\nb"}), "headers",
                     "entry 'x-h': the value holds control characters", id="header-value"),
        pytest.param(entry("claude-console", api_key="k", base_url="https://"), "base_url", "with a host",
                     id="base-url-no-host"),
    ],
)
def test_platform_field_errors_name_account_and_field(fields: dict[str, Any], field: str, expected: str) -> None:
    found = problems(fields)
    assert any(p.startswith(f"accounts[0] (acct): field '{field}': ") and expected in p for p in found), found


# Every broken entry carries the canary in each place a credential can be (settings such as the region
# or api_version are not credentials and may be quoted); no message may show it.
_LEAKY = [
    entry("claude-console", api_key=CANARY, api_key_env="K"),
    entry("claude-console", api_key=CANARY, headers={"x-secret": CANARY + "\n"}),
    entry("claude-console", api_key=CANARY, proxy_url=f"ftp://user:{CANARY}@proxy:1"),
    entry("claude-console", api_key=CANARY, proxy_url=f"http://user:{CANARY}@proxy"),
    entry("claude-console", api_key=CANARY, proxy_url=f"http://user:{CANARY}@proxy:1/{CANARY}"),
    entry("claude-console", api_key=CANARY, proxy_url=f"http://{CANARY}:99999999"),
    entry("claude-ccr", api_key=CANARY),
    entry("claude-official", oauth={"access_token": CANARY, "refresh_token": CANARY, "expires_at": CANARY}),
    entry("claude-official", oauth={"access_token": CANARY}, api_key=CANARY),
    entry("bedrock", region="nowhere", api_key=CANARY, aws={"access_key_id": CANARY, "secret_access_key": CANARY}),
    entry("bedrock", region="us-east-1", aws={"access_key_id": CANARY, "secret_access_key": [CANARY]}),
    entry("azure-openai", api_key=CANARY, base_url=f"https://{CANARY}.openai.azure.com/openai",
          api_version="latest"),
    entry("openai", api_key=CANARY, organization=CANARY + "\x00", base_url=f"ftp://{CANARY}"),
    entry("openai-responses", api_key=CANARY, oauth={"refresh_token": CANARY, "account_id": CHATGPT_ACCOUNT}),
    entry("openai-responses", oauth={"refresh_token": CANARY, "access_token": CANARY, "expires_at": CANARY,
                                     "account_id": CANARY}),
    {"name": "x", "platform": "nope", "api_key": CANARY},
    {"name": "x", "platform": "claude-console", "api_key": CANARY, "timeout_seconds": 0, "priority": "high"},
]


@pytest.mark.parametrize("fields", _LEAKY, ids=[f"leak-{i}" for i in range(len(_LEAKY))])
def test_no_credential_value_in_any_message(fields: dict[str, Any]) -> None:
    found = problems(fields, environ={"K": CANARY})
    assert found and all(CANARY not in p for p in found), found


def test_yaml_syntax_errors_do_not_quote_the_line() -> None:
    text = f'accounts:\n  - name: x\n    api_key: "{CANARY}\n  - b: [\n'
    with pytest.raises(AccountsInvalid) as caught:
        parse_accounts(text, source="a.yaml", environ={})
    (problem,) = caught.value.problems
    assert problem.startswith("not valid YAML at line 5, column 1: found unexpected end of stream")
    assert "from line 3" in problem and CANARY not in problem


def test_an_unset_variable_names_the_variable_but_not_values() -> None:
    account = parse_one(entry("claude-official", oauth={"refresh_token_env": "RT", "access_token": CANARY}))
    assert account.error is not None and "RT" in account.error and CANARY not in account.error
    assert CANARY not in repr(account)


def test_wire_carries_every_field_and_the_documented_secret_names() -> None:
    official = parse_one(entry("claude-official", **OFFICIAL, connect_timeout_seconds=2.5, timeout_seconds=30,
                               proxy_url="socks5h://user:pw@proxy:1080"))
    message = account_message(official, with_credential=True)
    assert dict(message.credential.secrets) == {
        "access_token": "at-1", "refresh_token": "rt-1", "expires_at": "1900000000"}
    assert message.connect_timeout == Duration(seconds=2, nanos=500_000_000)
    assert message.timeout == Duration(seconds=30)
    assert message.proxy_url == "socks5h://user:pw@proxy:1080"

    codex = account_message(parse_one(entry("openai-responses", **CODEX)), with_credential=True)
    assert dict(codex.credential.secrets) == {"access_token": "at-c", "refresh_token": "rt-c",
                                              "expires_at": "1900000000", "chatgpt_account_id": CHATGPT_ACCOUNT}
    assert codex.credential.api_key == "" and codex.base_url == "https://chatgpt.com/backend-api/codex"

    bedrock = account_message(parse_one(entry("bedrock", **AWS)), with_credential=True)
    assert (bedrock.region, bedrock.base_url) == ("eu-central-1", "https://bedrock-runtime.eu-central-1.amazonaws.com")
    assert set(bedrock.credential.secrets) == {"aws_access_key_id", "aws_secret_access_key"}
    assert not bedrock.HasField("connect_timeout") and not bedrock.HasField("timeout")

    azure = account_message(parse_one(entry("azure-openai", api_key="k", base_url="https://r",
                                            deployments={"gpt-4o": "d"})), with_credential=True)
    assert (azure.path_style, azure.api_version, dict(azure.deployments)) == ("deployments", "2024-10-21",
                                                                               {"gpt-4o": "d"})
    assert azure.credential.api_key == "k"

    openai = account_message(parse_one(entry("openai", api_key="k", organization="o", project="p")),
                             with_credential=True)
    assert (openai.organization, openai.project) == ("o", "p")


def test_listings_carry_no_credential_and_mask_a_proxy_password() -> None:
    account = parse_one(entry("claude-official", **OFFICIAL, proxy_url=f"http://user:{CANARY}@proxy:3128"))
    listed = account_message(account, with_credential=False)
    assert listed.credential == router_pb2.Credential()
    assert listed.proxy_url == "http://user:***@proxy:3128"
    assert CANARY not in str(listed)


def test_an_unquoted_api_version_is_read_as_written() -> None:
    text = ("accounts:\n  - {name: a, platform: azure-openai, base_url: 'https://r', api_key: k,\n"
            "     api_version: 2024-06-01}\n")
    (account,) = parse_accounts(text, source="a.yaml", environ={})
    assert account.api_version == "2024-06-01"


def test_the_readme_examples_parse() -> None:
    """The README's Accounts section: the common-fields example and the one-account-per-platform example."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Accounts\n"):]
    blocks = re.findall(r"```yaml\n(.*?)```", section[:section.index("\n## ", 5)], re.S)
    assert len(blocks) == 2
    variables = set(re.findall(r"_env: (\w+)", "".join(blocks)))
    environ = {name: f"value-of-{name}" for name in variables}
    common = parse_accounts(blocks[0], source="README", environ=environ)
    per_platform = parse_accounts(blocks[1], source="README", environ=environ)
    assert [a.state for a in common + per_platform] == [State.READY] * 10
    assert {a.platform for a in per_platform} == set(platforms.ALL)
