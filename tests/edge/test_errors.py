"""Gateway errors render in the receiving endpoint's own format."""

import orjson
import pytest

from switchboard_edge.errors import (
    AuthenticationFailed,
    ClientFormat,
    NoAvailableAccount,
    PermissionDenied,
    RateLimited,
    UpstreamUnavailable,
    render,
)


@pytest.mark.parametrize(
    "error, status, anthropic_type",
    [
        pytest.param(AuthenticationFailed("bad key"), 401, "authentication_error", id="401"),
        pytest.param(PermissionDenied("no"), 403, "permission_error", id="403"),
        pytest.param(RateLimited("slow down"), 429, "rate_limit_error", id="429"),
        pytest.param(UpstreamUnavailable("broken"), 502, "api_error", id="502"),
        pytest.param(NoAvailableAccount("none"), 503, "overloaded_error", id="503"),
    ],
)
def test_anthropic_shape(error: Exception, status: int, anthropic_type: str) -> None:
    got_status, payload, _ = render(error, ClientFormat.ANTHROPIC)  # type: ignore[arg-type]
    assert got_status == status
    assert orjson.loads(payload) == {"type": "error", "error": {"type": anthropic_type, "message": str(error)}}


def test_openai_shape() -> None:
    status, payload, _ = render(AuthenticationFailed("bad key"), ClientFormat.OPENAI)
    assert status == 401
    assert orjson.loads(payload) == {
        "error": {"message": "bad key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
    }


@pytest.mark.parametrize("error", [RateLimited("x"), NoAvailableAccount("y")])
def test_retry_after_on_429_and_503(error: Exception) -> None:
    _, _, headers = render(error, ClientFormat.OPENAI)  # type: ignore[arg-type]
    assert headers["retry-after"] == "1"


def test_explicit_retry_after_is_rounded_up_to_a_second() -> None:
    _, _, headers = render(NoAvailableAccount("y", retry_after=7.4), ClientFormat.ANTHROPIC)
    assert headers["retry-after"] == "7"
