"""The Gemini API (generateContent, streamGenerateContent, countTokens, models) on the wire, held against the
recorded vendor traffic field by field: key paths, printing, framing, ids, headers and error bodies."""

import ast
import base64
import json
import re
import struct
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
import pytest

from switchboard_simulator import defaults, textgen
from switchboard_simulator.config import load
from switchboard_simulator.vendors import gemini
from switchboard_simulator.vendors.gemini_errors import escape

from .conftest import Start
from .sim_testing import RECORDINGS, recording

KEY = defaults.GEMINI_KEY
HEADERS = {"x-goog-api-key": KEY}
MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
SSE = f"{STREAM}?alt=sse"
COUNT = f"/v1beta/models/{MODEL}:countTokens"

NONSTREAM_REC = recording("gemini/generateContent.yaml")[0]
SSE_REC = recording("gemini/streamGenerateContent-sse.yaml")[0]
THINKING_REC = recording("gemini/streamGenerateContent-sse-thinking.yaml")
CALL_REC = recording("gemini/generateContent-function-call.yaml")
STREAM_CALL_REC = recording("gemini/streamGenerateContent-sse-function-call.yaml")
KEY_INVALID_REC = recording("gemini/error-400-API_KEY_INVALID-stream-request.yaml")[0]
NOT_FOUND_REC = recording("gemini/error-404-NOT_FOUND.yaml")[0]
CAPACITY_429_REC = recording("gemini/error-429-RESOURCE_EXHAUSTED.yaml")[0]
QUOTA_429_TEXT = (RECORDINGS / "gemini/error-429-RESOURCE_EXHAUSTED-quota.sdk-message.txt").read_text()

BODY: dict[str, Any] = json.loads(NONSTREAM_REC.request_body)
THINK: dict[str, Any] = {**BODY, "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}}
RESPONSE_ID = re.compile(r"^[A-Za-z0-9_-]{23}$")
TOOL = "secret_retrieval_tool"
# Headers of the transport, not of the API (and Alt-Svc, which only makes sense on port 443).
TRANSPORT = {"alt-svc", "date", "content-encoding", "transfer-encoding", "content-length"}


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path in document order, e.g. ``candidates.0.content.role``."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in (f"{prefix}{k}", *_key_paths(v, f"{prefix}{k}."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _key_paths(v, f"{prefix}{i}.")]
    return []


def _sse_payloads(text: str) -> list[str]:
    """The ``data:`` payloads of a Gemini SSE stream, whose events end with CRLF CRLF."""
    assert text.endswith("\r\n\r\n")
    events = text[: -len("\r\n\r\n")].split("\r\n\r\n")
    assert all(event.startswith("data: ") and "\n" not in event for event in events)
    return [event[len("data: "):] for event in events]


def _stream_printed(payload: str) -> str:
    """How the vendor prints a stream chunk: ``": "`` after keys, bare commas between members."""
    return json.dumps(json.loads(payload), separators=(",", ": "), ensure_ascii=False)


def _array_elements(text: str) -> list[str]:
    """The elements of a JSON-array stream as printed: ``[{…}``, ``\\n,\\r\\n{…}``…, ``\\n]``."""
    assert text.startswith("[{\n") and text.endswith("\n]")
    return text[1: -len("\n]")].split("\n,\r\n")


def _tools_body(text: str, **extra: Any) -> dict[str, Any]:
    body = json.loads(CALL_REC[0].request_body)
    body["contents"][0]["parts"][0]["text"] = text
    return {**body, **extra}


def _id_time(rid: str) -> int:
    return int(struct.unpack("<I", base64.urlsafe_b64decode(rid + "=")[:4])[0])


async def _post(client: httpx.AsyncClient, path: str, body: Any, fault: str | None = None,
                **headers: str) -> httpx.Response:
    sent = {**HEADERS, **headers}
    if fault is not None:
        sent["x-simulator-fault"] = fault
    return await client.post(path, json=body, headers=sent)


# Replies -----------------------------------------------------------------------------------------------


async def test_nonstream_reply_has_the_recorded_shape_and_printing(client: httpx.AsyncClient) -> None:
    response = await _post(client, GENERATE, THINK)
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type == NONSTREAM_REC.headers["content-type"] == "application/json; charset=UTF-8"
    body, recorded = response.json(), NONSTREAM_REC.json()
    assert _key_paths(body) == _key_paths(recorded)
    # Printed like the vendor: 2-space indentation, '": "' and a trailing newline.
    for text in (response.text, NONSTREAM_REC.body):
        assert text.startswith('{\n  "candidates": [\n    {\n      "content": {\n') and text.endswith("}\n")
        assert text == orjson.dumps(json.loads(text), option=orjson.OPT_INDENT_2).decode() + "\n"
    candidate = body["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": textgen.reply(35).text}], "role": "model"}
    assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
    assert body["modelVersion"] == recorded["modelVersion"] == MODEL
    for usage in (body["usageMetadata"], recorded["usageMetadata"]):
        assert usage["totalTokenCount"] == (usage["promptTokenCount"] + usage["candidatesTokenCount"]
                                            + usage["thoughtsTokenCount"])
        assert usage["promptTokensDetails"] == [{"modality": "TEXT", "tokenCount": usage["promptTokenCount"]}]
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == textgen.estimate_tokens(BODY["contents"])
    assert (usage["candidatesTokenCount"], usage["thoughtsTokenCount"]) == (35, 24)


async def test_without_thinking_there_is_no_thoughts_count(client: httpx.AsyncClient) -> None:
    usage = (await _post(client, GENERATE, BODY)).json()["usageMetadata"]
    assert list(usage) == ["promptTokenCount", "candidatesTokenCount", "totalTokenCount", "promptTokensDetails"]


async def test_response_ids_are_the_vendors_format(client: httpx.AsyncClient) -> None:
    recorded = [NONSTREAM_REC, SSE_REC, *THINKING_REC, *CALL_REC, *STREAM_CALL_REC]
    for exchange in recorded:
        rid = re.findall(r'"responseId": "([^"]+)"', exchange.body)[0]
        assert RESPONSE_ID.match(rid)
        # The first four bytes are the time of the answer, little-endian.
        date = parsedate_to_datetime(exchange.headers["date"]).timestamp()
        assert abs(_id_time(rid) - date) <= 30, exchange.uri
    rid = (await _post(client, GENERATE, BODY)).json()["responseId"]
    assert RESPONSE_ID.match(rid) and abs(_id_time(rid) - time.time()) <= 5
    assert rid != (await _post(client, GENERATE, BODY)).json()["responseId"]


async def test_response_headers_follow_the_recording(client: httpx.AsyncClient) -> None:
    for path, recorded in ((GENERATE, NONSTREAM_REC), (SSE, SSE_REC)):
        response = await _post(client, path, BODY)
        assert set(recorded.headers) - TRANSPORT <= set(response.headers.keys()), path
        for name in ("content-type", "server", "x-frame-options", "x-xss-protection", "x-content-type-options"):
            assert response.headers[name] == recorded.headers[name], name
        assert response.headers.get_list("vary", split_commas=True) == ["Origin", "X-Origin", "Referer"]
        assert re.match(r"^gfet4t7; dur=\d+$", response.headers["server-timing"])
        assert re.match(r"^gfet4t7; dur=\d+$", recorded.headers["server-timing"])
    assert not any(name.lower().startswith(("x-ratelimit", "retry-after")) for name in response.headers)


async def test_sse_stream_is_framed_and_printed_as_recorded(client: httpx.AsyncClient) -> None:
    response = await _post(client, SSE, THINK)
    assert response.status_code == 200
    assert response.headers["content-type"] == SSE_REC.headers["content-type"] == "text/event-stream"
    assert response.headers["content-disposition"] == SSE_REC.headers["content-disposition"] == "attachment"
    recorded = _sse_payloads(SSE_REC.body)
    ours = _sse_payloads(response.text)
    assert all(payload == _stream_printed(payload) for payload in recorded + ours)
    assert len(ours) == 35
    chunks = [json.loads(payload) for payload in ours]
    first, last = json.loads(recorded[0]), json.loads(recorded[-1])
    assert _key_paths(chunks[0]) == _key_paths(first) and _key_paths(chunks[-1]) == _key_paths(last)
    assert all(_key_paths(chunk) == _key_paths(first) for chunk in chunks[:-1])
    # Usage is cumulative; only the last chunk carries finishReason; one responseId throughout.
    counts = [chunk["usageMetadata"]["candidatesTokenCount"] for chunk in chunks]
    assert counts == list(range(1, 36))
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert len({chunk["responseId"] for chunk in chunks}) == 1
    text = "".join(chunk["candidates"][0]["content"]["parts"][0]["text"] for chunk in chunks)
    assert text == textgen.reply(35).text


async def test_json_array_stream_without_alt_sse(client: httpx.AsyncClient) -> None:
    response = await _post(client, STREAM, BODY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    elements = _array_elements(response.text)
    assert len(elements) == 35
    for element in elements:
        assert element == orjson.dumps(json.loads(element), option=orjson.OPT_INDENT_2).decode()
    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) == 35
    assert [("finishReason" in chunk["candidates"][0]) for chunk in chunks] == [False] * 34 + [True]
    # The elements are the SSE chunks, printed as documents.
    assert _key_paths(chunks[-1]) == [p for p in _key_paths(json.loads(_sse_payloads(SSE_REC.body)[-1]))
                                      if p != "usageMetadata.thoughtsTokenCount"]


async def test_chunk_tokens_groups_deltas(start: Start) -> None:
    url = await start(reply_tokens=10, chunk_tokens=4)
    async with httpx.AsyncClient(base_url=url) as http:
        chunks = [json.loads(p) for p in _sse_payloads((await _post(http, SSE, BODY)).text)]
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [4, 8, 10]


# Thinking ----------------------------------------------------------------------------------------------


async def test_thought_parts_stream_as_recorded(client: httpx.AsyncClient) -> None:
    recorded_request = json.loads(THINKING_REC[0].request_body)  # include_thoughts, thinking_budget (snake case)
    response = await _post(client, SSE, recorded_request)
    chunks = [json.loads(p) for p in _sse_payloads(response.text)]
    recorded = [json.loads(p) for p in _sse_payloads(THINKING_REC[0].body)]
    thoughts = [c for c in chunks if c["candidates"][0]["content"]["parts"][0].get("thought")]
    answers = chunks[len(thoughts):]
    assert len(thoughts) == 24 and len(answers) == 35
    # Thought chunks: the recorded keys (no candidatesTokenCount yet), thoughtsTokenCount cumulative.
    assert all(_key_paths(c) == _key_paths(recorded[0]) for c in thoughts)
    assert [c["usageMetadata"]["thoughtsTokenCount"] for c in thoughts] == list(range(1, 25))
    assert all(c["usageMetadata"]["totalTokenCount"] == c["usageMetadata"]["promptTokenCount"]
               + c["usageMetadata"]["thoughtsTokenCount"] for c in thoughts)
    assert thoughts[0]["candidates"][0]["content"]["parts"][0] == {"text": "The", "thought": True}
    # Answer chunks carry the whole thought count and no thought flag; the last ends the turn.
    assert all("thought" not in c["candidates"][0]["content"]["parts"][0] for c in answers)
    assert all(c["usageMetadata"]["thoughtsTokenCount"] == 24 for c in answers)
    assert set(_key_paths(answers[-1])) - set(_key_paths(recorded[-1])) == {"usageMetadata.candidatesTokenCount"}
    assert answers[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_thinking_without_thought_parts_matches_the_recorded_turn(client: httpx.AsyncClient) -> None:
    recorded_request = json.loads(THINKING_REC[1].request_body)  # thinking_budget only, thought history
    chunks = [json.loads(p) for p in _sse_payloads((await _post(client, SSE, recorded_request)).text)]
    recorded = json.loads(_sse_payloads(THINKING_REC[1].body)[-1])
    assert _key_paths(chunks[-1]) == _key_paths(recorded)
    assert not any(c["candidates"][0]["content"]["parts"][0].get("thought") for c in chunks)


@pytest.mark.parametrize(
    ("config", "thoughts", "shown"),
    [
        pytest.param({"includeThoughts": True}, 24, True, id="include"),
        pytest.param({"includeThoughts": True, "thinkingBudget": 5}, 5, True, id="budget-caps"),
        pytest.param({"thinkingBudget": -1}, 24, False, id="dynamic"),
        pytest.param({"thinkingLevel": "low"}, 24, False, id="level"),
        pytest.param({"includeThoughts": True, "thinkingBudget": 0}, 0, False, id="budget-0-off"),
    ],
)
async def test_nonstream_thinking(client: httpx.AsyncClient, config: dict[str, Any], thoughts: int,
                                  shown: bool) -> None:
    body = (await _post(client, GENERATE, {**BODY, "generationConfig": {"thinkingConfig": config}})).json()
    parts = body["candidates"][0]["content"]["parts"]
    assert body["usageMetadata"].get("thoughtsTokenCount", 0) == thoughts
    if shown:
        assert parts == [{"text": textgen.reply(thoughts).text, "thought": True}, {"text": textgen.reply(35).text}]
    else:
        assert parts == [{"text": textgen.reply(35).text}]


async def test_gemini_3_signs_its_last_text_part(client: httpx.AsyncClient) -> None:
    path = "/v1beta/models/gemini-3-pro-preview:generateContent"
    part = (await _post(client, path, BODY)).json()["candidates"][0]["content"]["parts"][-1]
    assert list(part) == ["text", "thoughtSignature"]
    base64.b64decode(part["thoughtSignature"], validate=True)
    chunks = [json.loads(p) for p in _sse_payloads(
        (await _post(client, path.replace(":generateContent", ":streamGenerateContent?alt=sse"), BODY)).text)]
    signed = ["thoughtSignature" in c["candidates"][0]["content"]["parts"][0] for c in chunks]
    assert signed == [False] * 34 + [True]


# Function calls ----------------------------------------------------------------------------------------


async def test_function_call_matches_the_recording(client: httpx.AsyncClient) -> None:
    recorded = CALL_REC[0].json()
    body = (await _post(client, GENERATE, _tools_body(f"Use {TOOL} with the password mellon"))).json()
    ours_candidate, recorded_candidate = body["candidates"][0], recorded["candidates"][0]
    assert list(ours_candidate) == list(recorded_candidate) == ["content", "finishReason", "index", "finishMessage"]
    assert ours_candidate["finishMessage"] == recorded_candidate["finishMessage"] == gemini.CALL_MESSAGE
    assert ours_candidate["finishReason"] == recorded_candidate["finishReason"] == "STOP"
    ours_part, recorded_part = ours_candidate["content"]["parts"][0], recorded_candidate["content"]["parts"][0]
    assert _key_paths(ours_part) == _key_paths(recorded_part)
    assert ours_part["functionCall"] == {"name": TOOL, "args": {"password": "sim"}}
    for signature in (ours_part["thoughtSignature"], recorded_part["thoughtSignature"]):
        assert base64.b64decode(signature, validate=True)[0] == 0x0A
    assert set(body["usageMetadata"]) <= set(recorded["usageMetadata"])


async def test_function_call_stream_is_one_finished_chunk(client: httpx.AsyncClient) -> None:
    recorded = json.loads(_sse_payloads(STREAM_CALL_REC[0].body)[0])
    chunks = [json.loads(p) for p in _sse_payloads(
        (await _post(client, SSE, _tools_body(f"call {TOOL} please"))).text)]
    assert len(chunks) == 1
    ours_candidate, recorded_candidate = chunks[0]["candidates"][0], recorded["candidates"][0]
    assert list(ours_candidate) == list(recorded_candidate)
    assert _key_paths(ours_candidate["content"]["parts"][0]) == _key_paths(recorded_candidate["content"]["parts"][0])


async def test_tool_choice_modes_and_parallel_calls(client: httpx.AsyncClient) -> None:
    declarations = [{"name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["C", "F"]},
    }, "required": ["city", "unit"]}}, {"name": "get_time", "parametersJsonSchema": {"type": "object"}}]
    tools = [{"functionDeclarations": declarations}]
    contents = [{"role": "user", "parts": [{"text": "get_time and get_weather for Paris"}]}]

    async def parts(**extra: Any) -> list[dict[str, Any]]:
        body = (await _post(client, GENERATE, {"contents": contents, "tools": tools, **extra})).json()
        return body["candidates"][0]["content"]["parts"]

    both = await parts()
    assert [p["functionCall"] for p in both] == [{"name": "get_weather", "args": {"city": "sim", "unit": "C"}},
                                                 {"name": "get_time", "args": {}}]
    assert ["thoughtSignature" in p for p in both] == [True, False]
    assert "text" in (await parts(toolConfig={"functionCallingConfig": {"mode": "NONE"}}))[0]
    contents = [{"role": "user", "parts": [{"text": "What now?"}]}]
    assert "text" in (await parts())[0]
    forced = await parts(toolConfig={"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}})
    assert [p["functionCall"]["name"] for p in forced] == ["get_time"]


async def test_a_function_response_turn_gets_text(client: httpx.AsyncClient) -> None:
    follow_up = json.loads(CALL_REC[1].request_body)
    follow_up["contents"][0]["parts"][0]["text"] += f" with {TOOL}"
    body = (await _post(client, GENERATE, follow_up)).json()
    assert _key_paths(body) == _key_paths(CALL_REC[1].json())
    assert body["candidates"][0]["content"]["parts"] == [{"text": textgen.reply(35).text}]


# JSON mode ---------------------------------------------------------------------------------------------

#: What Gemini CLI's routing classifier sends (it retries for minutes when the answer does not parse).
CLASSIFIER_SCHEMA = {"type": "object", "properties": {
    "complexity_reasoning": {"type": "string"},
    "complexity_score": {"type": "integer", "minimum": 1, "maximum": 100},
}, "required": ["complexity_reasoning", "complexity_score"]}
CLASSIFIER_PATH = "/v1beta/models/gemini-3.5-flash-lite:generateContent"


def _answer(body: dict[str, Any]) -> str:
    """The candidate's one non-thought text part."""
    texts = [p["text"] for p in body["candidates"][0]["content"]["parts"] if not p.get("thought")]
    assert len(texts) == 1
    return str(texts[0])


def _check_classifier(value: Any) -> None:
    assert isinstance(value, dict) and set(value) == {"complexity_reasoning", "complexity_score"}
    assert isinstance(value["complexity_reasoning"], str) and value["complexity_reasoning"]
    score = value["complexity_score"]
    assert isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 100


@pytest.mark.parametrize("thinking_config", [None, {"thinkingBudget": 512}, {"thinkingLevel": "low"},
                                             {"includeThoughts": True, "thinkingBudget": 512}])
async def test_json_mode_answers_json_conforming_to_response_json_schema(
        client: httpx.AsyncClient, thinking_config: dict[str, Any] | None) -> None:
    generation: dict[str, Any] = {"responseMimeType": "application/json", "responseJsonSchema": CLASSIFIER_SCHEMA}
    if thinking_config is not None:
        generation["thinkingConfig"] = thinking_config
    body = {"contents": [{"role": "user", "parts": [{"text": "Route this request."}]}],
            "generationConfig": generation}
    response = await _post(client, CLASSIFIER_PATH, body)
    assert response.status_code == 200, response.text
    reply = response.json()
    text = _answer(reply)
    _check_classifier(json.loads(text))
    assert reply["candidates"][0]["finishReason"] == "STOP"
    assert reply["usageMetadata"]["candidatesTokenCount"] == textgen.estimate_tokens(text)
    shown = bool(thinking_config and thinking_config.get("includeThoughts"))
    parts = reply["candidates"][0]["content"]["parts"]
    assert [bool(p.get("thought")) for p in parts] == ([True, False] if shown else [False])


async def test_json_mode_follows_the_openapi_response_schema(client: httpx.AsyncClient) -> None:
    schema = {"type": "OBJECT", "properties": {
        "verdict": {"type": "STRING", "enum": ["approve", "reject"]},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
        "steps": {"type": "ARRAY", "minItems": "2", "items": {"type": "OBJECT", "properties": {
            "n": {"type": "INTEGER", "minimum": 3}, "weight": {"type": "NUMBER", "maximum": 0.5},
            "done": {"type": "BOOLEAN"}}, "required": ["n"]}},
        "note": {"type": "STRING", "nullable": True},
    }, "required": ["verdict"], "propertyOrdering": ["verdict", "tags", "steps", "note"]}
    for generation in ({"responseMimeType": "application/json", "responseSchema": schema},
                       {"response_mime_type": "application/json", "response_schema": schema}):
        value = json.loads(_answer((await _post(client, GENERATE, {**BODY, "generationConfig": generation})).json()))
        assert list(value) == ["verdict", "tags", "steps", "note"]
        assert value["verdict"] == "approve"
        assert isinstance(value["tags"], list) and value["tags"] and all(t and isinstance(t, str)
                                                                        for t in value["tags"])
        assert len(value["steps"]) == 2
        for step in value["steps"]:
            assert isinstance(step["n"], int) and step["n"] >= 3
            assert isinstance(step["weight"], (int, float)) and step["weight"] <= 0.5
            assert step["done"] is True
        assert isinstance(value["note"], str) and value["note"]


async def test_json_mode_without_a_schema_answers_an_object(client: httpx.AsyncClient) -> None:
    body = {**BODY, "generationConfig": {"responseMimeType": "application/json"}}
    assert isinstance(json.loads(_answer((await _post(client, GENERATE, body)).json())), dict)
    plain = {**BODY, "generationConfig": {"responseMimeType": "text/plain"}}
    assert _answer((await _post(client, GENERATE, plain)).json()) == textgen.reply(35).text
    enum = {**BODY, "generationConfig": {"responseMimeType": "text/x.enum",
                                         "responseSchema": {"type": "STRING", "enum": ["LOW", "HIGH"]}}}
    assert _answer((await _post(client, GENERATE, enum)).json()) == "LOW"


@pytest.mark.parametrize("path", [SSE, STREAM], ids=["sse", "array"])
async def test_json_mode_streams_json_cut_like_text(client: httpx.AsyncClient, path: str) -> None:
    generation = {"responseMimeType": "application/json", "responseJsonSchema": CLASSIFIER_SCHEMA,
                  "thinkingConfig": {"includeThoughts": True}}
    response = await _post(client, path, {**BODY, "generationConfig": generation})
    assert response.status_code == 200
    chunks = ([json.loads(p) for p in _sse_payloads(response.text)] if path == SSE
              else json.loads(response.text))
    answers = [c for c in chunks if not c["candidates"][0]["content"]["parts"][0].get("thought")]
    assert len(answers) > 1  # split across chunks like text
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in answers)
    _check_classifier(json.loads(text))
    counts = [c["usageMetadata"]["candidatesTokenCount"] for c in answers]
    assert counts == sorted(counts) and counts[-1] == textgen.estimate_tokens(text)
    assert answers[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])


async def test_json_mode_is_cut_at_max_output_tokens(client: httpx.AsyncClient) -> None:
    generation = {"responseMimeType": "application/json", "responseJsonSchema": CLASSIFIER_SCHEMA,
                  "maxOutputTokens": 3}
    reply = (await _post(client, GENERATE, {**BODY, "generationConfig": generation})).json()
    assert reply["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert reply["usageMetadata"]["candidatesTokenCount"] == 3
    assert _answer(reply) == '{"complexity_reasoning": "sim", "complexity_score": 1}'[:12]


# Cached content, limits, countTokens -------------------------------------------------------------------


async def test_cached_content_reports_cache_reads(start: Start) -> None:
    url = await start(gemini={"cached_content_tokens": 700})
    body = {**BODY, "cachedContent": "cachedContents/abc123"}
    async with httpx.AsyncClient(base_url=url) as http:
        usage = (await _post(http, GENERATE, body)).json()["usageMetadata"]
        chunks = [json.loads(p) for p in _sse_payloads((await _post(http, SSE, body)).text)]
        counted = (await _post(http, COUNT, {"generateContentRequest": {"model": f"models/{MODEL}", **body}})).json()
    prompt = textgen.estimate_tokens(BODY["contents"]) + 700
    assert usage == {
        "promptTokenCount": prompt, "candidatesTokenCount": 35, "totalTokenCount": prompt + 35,
        "cachedContentTokenCount": 700, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 700}],
    }
    assert list(usage) == list(chunks[-1]["usageMetadata"]) and chunks[-1]["usageMetadata"] == usage
    assert all(c["usageMetadata"]["cachedContentTokenCount"] == 700 for c in chunks)
    assert list(counted) == ["totalTokens", "cachedContentTokenCount", "promptTokensDetails", "cacheTokensDetails"]
    assert (counted["totalTokens"], counted["cachedContentTokenCount"]) == (prompt, 700)


async def test_max_output_tokens_cuts_the_reply(client: httpx.AsyncClient) -> None:
    limited = {**BODY, "generationConfig": {"maxOutputTokens": 5}}
    body = (await _post(client, GENERATE, limited)).json()
    assert body["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert body["candidates"][0]["content"]["parts"][0]["text"] == textgen.reply(5).text
    assert body["usageMetadata"]["candidatesTokenCount"] == 5
    chunks = [json.loads(p) for p in _sse_payloads((await _post(client, SSE, limited)).text)]
    assert len(chunks) == 5 and chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    roomy = {**BODY, "generation_config": {"max_output_tokens": "100"}}  # proto names, int32 as a string
    assert (await _post(client, GENERATE, roomy)).json()["candidates"][0]["finishReason"] == "STOP"


async def test_count_tokens(client: httpx.AsyncClient) -> None:
    response = await _post(client, COUNT, BODY)
    tokens = textgen.estimate_tokens(BODY["contents"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.text == (f'{{\n  "totalTokens": {tokens},\n  "promptTokensDetails": [\n    {{\n      "modality": '
                             f'"TEXT",\n      "tokenCount": {tokens}\n    }}\n  ]\n}}\n')
    wrapped = await _post(client, COUNT, {"generateContentRequest": {"model": f"models/{MODEL}", **BODY}})
    assert wrapped.json()["totalTokens"] == tokens
    # Token counting never suffers faults.
    assert (await _post(client, COUNT, BODY, "500")).status_code == 200
    missing = await _post(client, "/v1beta/models/nope-1:countTokens", BODY)
    assert missing.status_code == 404 and "is not supported for countTokens." in missing.json()["error"]["message"]


# Models ------------------------------------------------------------------------------------------------


async def test_models_list_pages(client: httpx.AsyncClient) -> None:
    names, token, pages = [], None, 0
    while True:
        params = {"pageSize": "4", "key": KEY, **({"pageToken": token} if token else {})}
        response = await client.get("/v1beta/models", params=params)
        assert response.status_code == 200
        page = response.json()
        names += [model["name"] for model in page["models"]]
        pages += 1
        token = page.get("nextPageToken")
        if token is None:
            break
        assert list(page) == ["models", "nextPageToken"]
    assert pages == 2
    assert names == [f"models/{name}" for name in gemini.KNOWN_MODELS]
    everything = (await client.get("/v1beta/models", headers=HEADERS)).json()
    assert "nextPageToken" not in everything and len(everything["models"]) == len(gemini.KNOWN_MODELS)
    entry = everything["models"][1]
    assert list(entry) == ["name", "version", "displayName", "description", "inputTokenLimit", "outputTokenLimit",
                           "supportedGenerationMethods", "temperature", "topP", "topK", "maxTemperature", "thinking"]
    assert entry["name"] == f"models/{MODEL}" and "generateContent" in entry["supportedGenerationMethods"]
    bad = await client.get("/v1beta/models", params={"pageToken": "garbage!", "key": KEY})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    bad_size = await client.get("/v1beta/models", params={"pageSize": "many", "key": KEY})
    assert bad_size.json()["error"]["message"] == "Invalid value at 'page_size' (TYPE_INT32), \"many\""
    assert (await client.get("/v1beta/models")).status_code == 403


async def test_get_model(client: httpx.AsyncClient) -> None:
    known = (await client.get(f"/v1beta/models/{MODEL}", headers=HEADERS)).json()
    assert known == gemini.model_entry(MODEL) and known["displayName"] == "Gemini 2.5 Flash"
    served = (await client.get("/v1/models/gemini-2.5-flash-preview-09-2025", headers=HEADERS)).json()
    assert served["name"] == "models/gemini-2.5-flash-preview-09-2025"
    missing = await client.get("/v1/models/claude-3", headers=HEADERS)
    assert missing.status_code == 404 and "for API version v1," in missing.json()["error"]["message"]


async def test_v1_serves_the_same(client: httpx.AsyncClient) -> None:
    response = await _post(client, f"/v1/models/{MODEL}:generateContent", BODY)
    assert response.status_code == 200 and response.json()["modelVersion"] == MODEL
    stream = await _post(client, f"/v1/models/{MODEL}:streamGenerateContent?alt=sse", BODY)
    assert len(_sse_payloads(stream.text)) == 35


# Authentication ----------------------------------------------------------------------------------------


async def test_wrong_key_matches_the_recorded_error_byte_for_byte(client: httpx.AsyncClient) -> None:
    response = await client.post(SSE, json=json.loads(KEY_INVALID_REC.request_body),
                                 headers={"x-goog-api-key": "AIzaWrongWrongWrongWrongWrongWrongWrong"})
    assert response.status_code == KEY_INVALID_REC.status == 400
    assert response.text == KEY_INVALID_REC.body
    assert response.headers["content-type"] == KEY_INVALID_REC.headers["content-type"] == "text/event-stream"
    assert response.headers["content-length"] == KEY_INVALID_REC.headers["content-length"] == "581"
    assert set(KEY_INVALID_REC.headers) - TRANSPORT <= set(response.headers.keys())
    plain = await client.post(GENERATE, json=BODY, params={"key": "nope"})
    assert plain.headers["content-type"] == "application/json; charset=UTF-8" and plain.text == response.text


async def test_key_in_the_query_string(client: httpx.AsyncClient) -> None:
    assert (await client.post(GENERATE, json=BODY, params={"key": KEY})).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "rpc_status", "message"),
    [
        pytest.param({}, 403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without "
                     "established identity). Please use API Key or other form of API consumer identity to call "
                     "this API.", id="no-key"),
        pytest.param({"authorization": "Bearer ya29.token"}, 401, "UNAUTHENTICATED",
                     "Request had invalid authentication credentials.", id="bearer"),
    ],
)
async def test_missing_key(client: httpx.AsyncClient, headers: dict[str, str], status: int, rpc_status: str,
                           message: str) -> None:
    response = await client.post(GENERATE, json=BODY, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert list(error) == ["code", "message", "status"]
    assert (error["code"], error["status"]) == (status, rpc_status) and error["message"].startswith(message)


async def test_unknown_model_matches_the_recorded_error_byte_for_byte(client: httpx.AsyncClient) -> None:
    path = "/v1beta/" + NOT_FOUND_REC.uri.split("/v1beta/", 1)[1]
    response = await client.post(path, json=json.loads(NOT_FOUND_REC.request_body), headers=HEADERS)
    assert response.status_code == NOT_FOUND_REC.status == 404
    assert response.text == NOT_FOUND_REC.body
    assert response.headers["content-type"] == NOT_FOUND_REC.headers["content-type"]


# Validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message", "details"),
    [
        pytest.param({}, "* GenerateContentRequest.contents: contents is not specified\n", False, id="no-contents"),
        pytest.param({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n", False,
                     id="empty-contents"),
        pytest.param({"contents": [{"role": "user", "parts": []}]},
                     "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n", False,
                     id="empty-parts"),
        pytest.param({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
                     "Please use a valid role: user, model.", False, id="bad-role"),
        pytest.param({**BODY, "temprature": 1},
                     'Invalid JSON payload received. Unknown name "temprature": Cannot find field.', True,
                     id="unknown-field"),
        pytest.param([BODY], 'Invalid JSON payload received. Unknown name "": Root element must be a message.',
                     True, id="not-an-object"),
        pytest.param({**BODY, "generationConfig": {"maxOutputTokens": "lots"}},
                     "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), \"lots\"", True,
                     id="bad-int"),
    ],
)
async def test_validation_errors(client: httpx.AsyncClient, body: Any, message: str, details: bool) -> None:
    response = await _post(client, GENERATE, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"], error["message"]) == (400, "INVALID_ARGUMENT", message)
    if details:
        assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        assert error["details"][0]["fieldViolations"][0]["description"] == message
    else:
        assert "details" not in error


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post(GENERATE, content=b'{"contents": [}', headers=HEADERS)
    error = response.json()["error"]
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == 'Invalid JSON payload received. Unexpected token.\n{"contents": [}\n              ^'


async def test_errors_on_a_json_array_stream_are_an_array(client: httpx.AsyncClient) -> None:
    response = await _post(client, STREAM, {"contents": []})
    assert response.status_code == 400 and response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.text.startswith('[{\n    "error": {\n      "code": 400,') and response.text.endswith("\n  }\n]")
    assert response.json()[0]["error"]["status"] == "INVALID_ARGUMENT"


# Faults ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "rpc_status", "message"),
    [
        pytest.param("500", 500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                     "https://developers.generativeai.google/guide/troubleshooting", id="500"),
        pytest.param("503", 503, "UNAVAILABLE", "The model is overloaded. Please try again later.", id="503"),
        pytest.param("overloaded", 503, "UNAVAILABLE", "The model is overloaded. Please try again later.",
                     id="overloaded"),
        pytest.param("504", 504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", id="504"),
        pytest.param("403", 403, "PERMISSION_DENIED", "The caller does not have permission", id="403"),
        pytest.param("400", 400, "INVALID_ARGUMENT", "Request contains an invalid argument.", id="400"),
    ],
)
async def test_status_faults(client: httpx.AsyncClient, fault: str, status: int, rpc_status: str,
                             message: str) -> None:
    response = await _post(client, SSE, BODY, fault)
    assert response.status_code == status and response.headers["content-type"] == "text/event-stream"
    assert response.json() == {"error": {"code": status, "message": message, "status": rpc_status}}
    assert response.text.startswith('{\n  "error": {\n    "code": ') and response.text.endswith("}\n")


async def test_429_carries_quota_and_retry_details(client: httpx.AsyncClient) -> None:
    response = await _post(client, GENERATE, BODY, "429:7")
    assert response.status_code == CAPACITY_429_REC.status == 429
    assert response.headers["content-type"] == CAPACITY_429_REC.headers["content-type"]
    assert "retry-after" not in response.headers and "retry-after" not in CAPACITY_429_REC.headers
    ours = response.json()["error"]
    assert list(CAPACITY_429_REC.json()["error"]) == ["code", "message", "status"]
    # The quota form, as the SDK recorded it: Help, QuotaFailure and RetryInfo details.
    recorded = ast.literal_eval(QUOTA_429_TEXT.split("RESOURCE_EXHAUSTED. ", 1)[1])["error"]
    assert list(ours) == list(recorded) == ["code", "message", "status", "details"]
    assert (ours["code"], ours["status"]) == (recorded["code"], recorded["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert [d["@type"] for d in ours["details"]] == [d["@type"] for d in recorded["details"]]
    help_, quota, retry = ours["details"]
    assert help_ == recorded["details"][0]
    assert set(recorded["details"][1]["violations"][0]) <= set(quota["violations"][0])
    assert quota["violations"][0]["quotaDimensions"] == {"location": "global", "model": MODEL}
    assert retry == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
    assert re.match(r"^\d+s$", recorded["details"][2]["retryDelay"])
    assert ours["message"].startswith("You exceeded your current quota") and "Please retry in 7s." in ours["message"]


async def test_stream_error_sends_an_error_chunk(client: httpx.AsyncClient) -> None:
    response = await _post(client, SSE, BODY, "stream_error:2")
    assert response.status_code == 200
    payloads = _sse_payloads(response.text)
    assert len(payloads) == 3 and all(p == _stream_printed(p) for p in payloads)
    assert json.loads(payloads[-1]) == {"error": {
        "code": 500, "status": "INTERNAL", "message": "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"}}
    assert not any("finishReason" in json.loads(p).get("candidates", [{}])[0] for p in payloads)
    array = await _post(client, STREAM, BODY, "stream_error:1")
    elements = array.json()
    assert len(elements) == 2 and elements[-1]["error"]["status"] == "INTERNAL"
    assert (await _post(client, GENERATE, BODY, "stream_error")).status_code == 503


async def test_disconnect_cuts_a_stream_after_n_chunks(client: httpx.AsyncClient) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", SSE, json=BODY, headers={**HEADERS, "x-simulator-fault": "disconnect:3"}) as r:
            assert r.status_code == 200
            async for data in r.aiter_bytes():
                received += data
    assert received.count(b"\r\n\r\n") == 3
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
        await _post(client, GENERATE, BODY, "disconnect")


async def test_hang_and_slow(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await client.post(GENERATE, json=BODY, headers={**HEADERS, "x-simulator-fault": "hang"}, timeout=0.2)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert (await _post(client, SSE, BODY, "slow:200")).status_code == 200
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(("key", "status"), [("sk-sim-broken", 500), ("sk-sim-ratelimited", 429),
                                             ("sk-sim-overloaded", 503)])
async def test_default_faulty_keys(client: httpx.AsyncClient, key: str, status: int) -> None:
    assert (await client.post(GENERATE, json=BODY, headers={"x-goog-api-key": key})).status_code == status


async def test_faults_need_a_valid_key_first(client: httpx.AsyncClient) -> None:
    response = await client.post(GENERATE, json=BODY, headers={"x-goog-api-key": "nope", "x-simulator-fault": "500"})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


# Wiring ------------------------------------------------------------------------------------------------


async def test_requests_are_recorded(client: httpx.AsyncClient) -> None:
    await client.post(SSE, json=BODY, headers=HEADERS)
    entry = (await client.get("/_simulator/requests")).json()["requests"][-1]
    assert (entry["api"], entry["path"], entry["query"], entry["status"]) == ("gemini", STREAM, {"alt": "sse"}, 200)
    assert entry["body"] == BODY


def test_config_and_flags() -> None:
    config = load(["--gemini-model", "gemma-*", "--gemini-key", "AIzaAnother"], {})
    assert config.gemini.models == ("gemma-*",) and config.gemini.serves("gemma-3") and not config.gemini.serves(MODEL)
    assert config.gemini.key_ok("AIzaAnother") and config.gemini.key_ok(defaults.GEMINI_KEY)
    assert re.match(r"^AIza[0-9A-Za-z_-]{35}$", defaults.GEMINI_KEY)
    assert load([], {}).gemini.signs_text("gemini-3-flash-preview") and not load([], {}).gemini.signs_text(MODEL)


def test_strings_are_escaped_like_googles_printer() -> None:
    assert escape(b'{"a": "<b> & </b>"}') == b'{"a": "\\u003cb\\u003e \\u0026 \\u003c/b\\u003e"}'
