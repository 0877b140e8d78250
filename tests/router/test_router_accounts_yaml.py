"""The accounts YAML format: what parses, and every validation error by account and field."""

import textwrap

import pytest
import yaml

from switchboard_router.accounts import State
from switchboard_router.accounts_yaml import parse_accounts
from switchboard_router.errors import AccountsInvalid

FULL = """
accounts:
  - name: sim-claude
    platform: claude-console
    base_url: http://127.0.0.1:8090/
    api_key: sk-inline-secret-123456
    priority: 10
    enabled: false
    models: ["claude-*", "haiku"]
    model_mapping: {"claude-sonnet-4": "claude-sonnet-4-20250514", "claude-*": "claude-opus-4"}
    headers: {"anthropic-beta": "x"}
    groups: [team-a, team-b]
    timeout_seconds: 30.5
  - name: from-env
    platform: openai
    base_url: https://api.openai.com
    api_key_env: OPENAI_KEY
"""


def parse(text: str, environ: dict[str, str] | None = None):
    return parse_accounts(textwrap.dedent(text), source="accounts.yaml", environ=environ or {})


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(AccountsInvalid) as caught:
        parse(text, environ)
    assert caught.value.source == "accounts.yaml"
    return caught.value.problems


def test_full_format_parses_every_field() -> None:
    first, second = parse(FULL, {"OPENAI_KEY": "sk-from-env-abcdef"})
    assert first.id == "claude-console/sim-claude"
    assert first.base_url == "http://127.0.0.1:8090"  # trailing slash dropped
    assert first.api_key == "sk-inline-secret-123456"
    assert (first.priority, first.enabled, first.timeout_seconds) == (10, False, 30.5)
    assert tuple(first.models) == ("claude-*", "haiku")
    assert list(first.model_mapping.items()) == [
        ("claude-sonnet-4", "claude-sonnet-4-20250514"),
        ("claude-*", "claude-opus-4"),
    ]
    assert dict(first.headers) == {"anthropic-beta": "x"}
    assert first.groups == frozenset({"team-a", "team-b"})
    assert first.state is State.DISABLED


def test_defaults() -> None:
    (only,) = parse("""
        accounts:
          - {name: a, platform: gemini, base_url: "https://g", api_key: k}
    """)
    assert (only.priority, only.enabled, tuple(only.models)) == (50, True, ("*",))
    assert only.timeout_seconds == 0  # unset: the edge's SWITCHBOARD_EDGE_UPSTREAM_TIMEOUT_SECONDS applies
    assert (dict(only.model_mapping), dict(only.headers), only.groups) == ({}, {}, frozenset())
    assert only.state is State.READY


def test_timeout_null_is_unset_like_an_omitted_one() -> None:
    (only,) = parse("""
        accounts:
          - {name: a, platform: gemini, base_url: "https://g", api_key: k, timeout_seconds: null}
    """)
    assert only.timeout_seconds == 0


def test_api_key_env_is_read_from_the_environment() -> None:
    _, second = parse(FULL, {"OPENAI_KEY": "sk-from-env-abcdef"})
    assert second.api_key == "sk-from-env-abcdef"
    assert second.error is None
    assert second.state is State.READY


@pytest.mark.parametrize("environ", [{}, {"OPENAI_KEY": ""}], ids=["unset", "empty"])
def test_missing_env_credential_marks_only_that_account_in_error(environ: dict[str, str]) -> None:
    first, second = parse(FULL, environ)
    assert first.error is None
    assert second.state is State.ERROR
    assert second.error is not None and "OPENAI_KEY" in second.error
    assert second.api_key == ""


@pytest.mark.parametrize("text", ["", "# only a comment\n"], ids=["empty-file", "comment-only"])
def test_empty_document_is_invalid_so_a_half_written_file_cannot_empty_the_pool(text: str) -> None:
    assert problems_of(text) == ["expected a mapping with an 'accounts' list at the top level"]


def test_empty_accounts_list_is_allowed() -> None:
    assert parse("accounts: []\n") == []
    assert parse("accounts:\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("accounts: [\n", "not valid YAML", id="yaml-syntax"),
        pytest.param("- a\n- b\n", "expected a mapping with an 'accounts' list", id="top-level-list"),
        pytest.param("accounts: {}\nextra: 1\n", "unknown top-level field(s): extra", id="top-level-unknown"),
        pytest.param("accounts: {a: 1}\n", "'accounts' must be a list, got dict", id="accounts-not-list"),
        pytest.param("accounts: [42]\n", "accounts[0]: expected a mapping, got int", id="entry-not-mapping"),
    ],
)
def test_document_shape_errors(text: str, expected: str) -> None:
    (problem,) = problems_of(text)
    assert expected in problem


BASE = {"name": "acct", "platform": "claude-console", "base_url": "http://x", "api_key": "sk-secret-value-xyz"}


def one(**changes: object) -> str:
    fields = {**BASE, **changes}
    body = "\n".join(f"    {k}: {v}" for k, v in fields.items() if v is not DROP)
    return f"accounts:\n  - \n{body}\n"


DROP = object()


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        pytest.param({"name": DROP}, "name", "is required", id="name-missing"),
        pytest.param({"name": '""'}, "name", "must not be empty", id="name-empty"),
        pytest.param({"name": "a/b"}, "name", "may hold only", id="name-slash"),
        pytest.param({"name": "[1]"}, "name", "expected a string, got list", id="name-not-string"),
        pytest.param({"platform": DROP}, "platform", "is required", id="platform-missing"),
        pytest.param({"platform": "claude"}, "platform", "unknown platform 'claude'", id="platform-unknown"),
        pytest.param({"base_url": DROP, "platform": "claude-ccr"}, "base_url", "is required for platform claude-ccr",
                     id="base-url-missing"),
        pytest.param({"base_url": "ftp://x"}, "base_url", "http:// or https://", id="base-url-scheme"),
        pytest.param({"api_key": DROP}, "api_key", "one of 'api_key' or 'api_key_env'", id="key-missing"),
        pytest.param({"api_key_env": "K"}, "api_key", "set only one", id="key-both"),
        pytest.param({"api_key": '""'}, "api_key", "must not be empty", id="key-empty"),
        pytest.param({"api_key": DROP, "api_key_env": "7"}, "api_key_env", "expected a string", id="key-env-type"),
        pytest.param({"priority": "high"}, "priority", "32-bit integer", id="priority-string"),
        pytest.param({"priority": "true"}, "priority", "32-bit integer", id="priority-bool"),
        pytest.param({"priority": str(2**31)}, "priority", "32-bit integer", id="priority-range"),
        pytest.param({"enabled": "maybe"}, "enabled", "expected true or false", id="enabled-type"),
        pytest.param({"models": "claude-*"}, "models", "list of non-empty strings", id="models-not-list"),
        pytest.param({"models": "[]"}, "models", "must not be empty", id="models-empty"),
        pytest.param({"models": '["a", ""]'}, "models", "list of non-empty strings", id="models-blank"),
        pytest.param({"model_mapping": "[a]"}, "model_mapping", "expected a mapping", id="mapping-type"),
        pytest.param({"model_mapping": "{a: 1}"}, "model_mapping", "entry 'a'", id="mapping-value"),
        pytest.param({"headers": "{x-h: 1}"}, "headers", "entry 'x-h'", id="headers-value"),
        pytest.param({"groups": "team"}, "groups", "list of non-empty strings", id="groups-type"),
        pytest.param({"timeout_seconds": "0"}, "timeout_seconds", "positive number", id="timeout-zero"),
        pytest.param({"timeout_seconds": "soon"}, "timeout_seconds", "positive number", id="timeout-type"),
        pytest.param({"timeout_seconds": "-5"}, "timeout_seconds", "positive number", id="timeout-negative"),
        pytest.param({"timeout_seconds": "true"}, "timeout_seconds", "positive number", id="timeout-bool"),
        pytest.param({"timeout_seconds": ".inf"}, "timeout_seconds", "up to 86400", id="timeout-infinite"),
        pytest.param({"timeout_seconds": "86401"}, "timeout_seconds", "up to 86400", id="timeout-too-long"),
        pytest.param({"connect_timeout_seconds": "0"}, "connect_timeout_seconds", "positive number",
                     id="connect-timeout-zero"),
        pytest.param({"prority": "1"}, "prority", "unknown field", id="unknown-field"),
    ],
)
def test_field_errors_name_the_account_and_field(changes: dict[str, object], field: str, expected: str) -> None:
    (problem,) = problems_of(one(**changes))
    name = changes.get("name", "acct")
    label = yaml.safe_load(str(name)) if name is not DROP else None
    label = label if isinstance(label, str) and label else "?"
    assert problem.startswith(f"accounts[0] ({label}): field '{field}': ")
    assert expected in problem
    assert "sk-secret-value-xyz" not in problem


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of("""
        accounts:
          - {name: ok, platform: openai, base_url: "http://x", api_key: k}
          - {name: bad-one, platform: nope, base_url: "http://x", api_key: k}
          - {name: bad-two, platform: openai, base_url: "http://x", api_key: k, priority: x}
    """)
    assert [p.split(":")[0] for p in problems] == ["accounts[1] (bad-one)", "accounts[2] (bad-two)"]


def test_duplicate_id_is_an_error_but_same_name_on_other_platform_is_not() -> None:
    accounts = parse("""
        accounts:
          - {name: a, platform: openai, base_url: "http://x", api_key: k}
          - {name: a, platform: gemini, base_url: "http://x", api_key: k}
    """)
    assert [a.id for a in accounts] == ["openai/a", "gemini/a"]
    (problem,) = problems_of("""
        accounts:
          - {name: a, platform: openai, base_url: "http://x", api_key: k}
          - {name: a, platform: openai, base_url: "http://y", api_key: k}
    """)
    assert problem.startswith("accounts[1] (a): field 'name': duplicate account id 'openai/a'")
    assert "accounts[0]" in problem
