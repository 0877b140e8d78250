"""The translator table and the error bodies every direction shares."""

import orjson
import pytest

from switchboard_edge.errors import ClientFormat
from switchboard_edge.translate import error_bodies
from switchboard_edge.translate.registry import TRANSLATORS, translates, translator

DIRECTIONS = [
    (ClientFormat.OPENAI, ClientFormat.ANTHROPIC), (ClientFormat.ANTHROPIC, ClientFormat.OPENAI),
    (ClientFormat.OPENAI, ClientFormat.GEMINI), (ClientFormat.GEMINI, ClientFormat.OPENAI),
    (ClientFormat.ANTHROPIC, ClientFormat.GEMINI),
    (ClientFormat.OPENAI, ClientFormat.RESPONSES), (ClientFormat.RESPONSES, ClientFormat.OPENAI),
    (ClientFormat.ANTHROPIC, ClientFormat.RESPONSES), (ClientFormat.RESPONSES, ClientFormat.ANTHROPIC),
]


@pytest.mark.parametrize(("client", "upstream"), DIRECTIONS)
def test_every_direction_the_issue_names_is_registered_under_its_own_formats(client: ClientFormat,
                                                                             upstream: ClientFormat) -> None:
    found = translator(client, upstream)
    assert found is not None and (found.client, found.upstream) == (client, upstream)
    assert translates(client, upstream)


def test_equal_formats_need_no_translator_and_unlisted_pairs_are_not_claimed() -> None:
    assert all(translator(fmt, fmt) is None and translates(fmt, fmt) for fmt in ClientFormat)
    assert len(TRANSLATORS) == len(DIRECTIONS)
    assert not translates(ClientFormat.GEMINI, ClientFormat.ANTHROPIC)


@pytest.mark.parametrize(("status", "anthropic_type"), [
    (401, "authentication_error"), (403, "permission_error"), (404, "not_found_error"), (429, "rate_limit_error"),
])
def test_an_openai_error_becomes_the_anthropic_type_its_status_names(status: int, anthropic_type: str) -> None:
    # OpenAI calls a bad key and an unknown model `invalid_request_error`; Claude clients branch on the type.
    payload = orjson.dumps({"error": {"message": "nope", "type": "invalid_request_error", "code": None}})
    body = orjson.loads(error_bodies.convert(payload, status, ClientFormat.OPENAI, ClientFormat.ANTHROPIC))
    assert body == {"type": "error", "error": {"type": anthropic_type, "message": "nope"}}


def test_a_400_keeps_the_vendor_kind_and_openai_keeps_its_own_code() -> None:
    overloaded = orjson.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    assert error_bodies.as_error(400, overloaded).anthropic_type == "overloaded_error"
    quota = orjson.dumps({"error": {"message": "pay up", "type": "insufficient_quota", "code": "insufficient_quota"}})
    error = error_bodies.as_error(429, quota)
    assert error.openai_code == "insufficient_quota" and error.anthropic_type == "rate_limit_error"
    gemini = orjson.dumps({"error": {"code": 404, "message": "no such model", "status": "NOT_FOUND"}})
    converted = orjson.loads(error_bodies.convert(gemini, 404, ClientFormat.GEMINI, ClientFormat.OPENAI))
    assert converted["error"]["message"] == "no such model" and converted["error"]["code"] == "model_not_found"
