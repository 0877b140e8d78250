"""The edge's reading of client requests: key headers, body checks, model strings (sessions: test_sessions.py)."""

import pytest

from switchboard_edge import inbound
from switchboard_edge.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    RequestTooLarge,
    UnsupportedMediaType,
)


@pytest.mark.parametrize(
    "headers, expected",
    [
        pytest.param({"authorization": "Bearer sk-one"}, "sk-one", id="bearer"),
        pytest.param({"authorization": "bearer   sk-two "}, "sk-two", id="bearer-any-case"),
        pytest.param({"x-api-key": "sk-three"}, "sk-three", id="x-api-key"),
        pytest.param({"authorization": "Basic abc", "x-api-key": "sk-four"}, "sk-four", id="non-bearer-falls-back"),
    ],
)
def test_key_is_read_from_each_supported_header(headers: dict[str, str], expected: str) -> None:
    assert inbound.extract_key(headers) == expected


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer "}, {"x-api-key": "  "}])
def test_missing_key_is_401(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        inbound.extract_key(headers)
    assert caught.value.status == 401


def test_content_type_must_be_json() -> None:
    inbound.check_content_type("application/json; charset=utf-8")
    with pytest.raises(UnsupportedMediaType) as caught:
        inbound.check_content_type("text/plain")
    assert caught.value.status == 415 and "text/plain" in caught.value.message


def test_declared_length_over_limit_is_413() -> None:
    inbound.check_declared_length("100", 100)
    with pytest.raises(RequestTooLarge) as caught:
        inbound.check_declared_length("101", 100)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "raw, fragment",
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"{not json", "not valid JSON", id="bad-json"),
        pytest.param(b"[1, 2]", "JSON object", id="array"),
    ],
)
def test_bad_bodies_are_400(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inbound.parse_body(raw)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    "model, platform, name",
    [
        pytest.param("claude-sonnet-4-20250514", None, "claude-sonnet-4-20250514", id="plain"),
        pytest.param("claude-console,claude-sonnet-4", "claude-console", "claude-sonnet-4", id="prefixed"),
        pytest.param("openai, gpt-4o", "openai", "gpt-4o", id="prefixed-spaces"),
    ],
)
def test_model_strings(model: str, platform: str | None, name: str) -> None:
    assert inbound.parse_model({"model": model}) == inbound.ModelRef(platform, name)


def test_a_model_name_longer_than_any_model_is_not_found() -> None:
    longest = "m" * inbound.MAX_MODEL_CHARS
    assert inbound.parse_model({"model": longest}).model == longest
    assert inbound.parse_model({"model": "openai," + longest}).model == longest
    for too_long in (longest + "m", "openai," + longest + "m"):
        with pytest.raises(ModelNotFound) as caught:
            inbound.parse_model({"model": too_long})
        assert len(caught.value.message) < 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        pytest.param({}, "field required", id="missing"),
        pytest.param({"model": ""}, "field required", id="empty"),
        pytest.param({"model": 5}, "field required", id="not-a-string"),
        pytest.param({"model": "nope,gpt-4o"}, "unknown platform 'nope'", id="unknown-platform"),
        pytest.param({"model": "openai,"}, "missing model name", id="platform-only"),
    ],
)
def test_bad_model_strings_are_400(body: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inbound.parse_model(body)
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    "body, nullable, expected",
    [
        pytest.param({}, False, False, id="absent"),
        pytest.param({"stream": True}, False, True, id="true"),
        pytest.param({"stream": False}, True, False, id="false"),
        pytest.param({"stream": None}, True, False, id="null-openai"),
    ],
)
def test_stream_is_a_boolean_or_absent(body: dict[str, object], nullable: bool, expected: bool) -> None:
    assert inbound.parse_stream(body, nullable) is expected


@pytest.mark.parametrize(
    "body, nullable",
    [
        pytest.param({"stream": "true"}, True, id="string"),
        pytest.param({"stream": 1}, True, id="number"),
        pytest.param({"stream": None}, False, id="null-anthropic"),
        pytest.param({"stream": {"x": "y" * 500}}, True, id="object"),
    ],
)
def test_stream_of_another_type_is_400(body: dict[str, object], nullable: bool) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inbound.parse_stream(body, nullable)
    assert caught.value.message.startswith("stream: expected a boolean") and len(caught.value.message) < 200


@pytest.mark.parametrize("model", ["claude-console,,", "openai,gpt-4o,extra", "openai,", "nope,gpt-4o"])
def test_malformed_model_strings_are_400(model: str) -> None:
    with pytest.raises(InvalidRequest):
        inbound.parse_model({"model": model})


def test_a_model_string_in_an_error_is_cut_short() -> None:
    with pytest.raises(InvalidRequest) as caught:
        inbound.parse_model({"model": "x" * 240 + ",gpt-4o"})  # an unknown platform, quoted in the message
    assert len(caught.value.message) < 500 and "…" in caught.value.message
