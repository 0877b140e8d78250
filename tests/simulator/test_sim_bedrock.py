"""Bedrock InvokeModel / InvokeModelWithResponseStream for Anthropic models, held against the recordings,
with SigV4 checked by botocore and the real botocore bedrock-runtime client as a caller."""

import asyncio
import datetime
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import anthropic
import botocore.session
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EventStreamError

from switchboard_simulator import defaults, eventstream, textgen
from switchboard_simulator.vendors import anthropic as first_party

from .conftest import Start
from .sim_testing import (
    BEDROCK_API_KEY,
    collapse,
    event_frames,
    recorded_frame_headers,
    recording,
)

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
INVOKE = f"/model/{quote(MODEL, safe='')}/invoke"
STREAM = f"/model/{quote(MODEL, safe='')}/invoke-with-response-stream"
BODY: dict[str, Any] = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Two names for a pet pelican"}]}],
}
BEARER = {"authorization": f"Bearer {BEDROCK_API_KEY}", "content-type": "application/json"}
NONSTREAM = recording("bedrock/invoke-model-anthropic.yaml")[0]
STREAM_2024 = recording("bedrock/invoke-model-with-response-stream-anthropic.yaml")[0]
STREAM_2025 = recording("bedrock/invoke-model-with-response-stream-anthropic-tool-use.yaml")[0]
ERROR_TYPE = "x-amzn-errortype"


def signed(url: str, body: bytes, *, access_key: str = defaults.BEDROCK_ACCESS_KEY_ID,
           secret: str = defaults.BEDROCK_SECRET_ACCESS_KEY, region: str = defaults.BEDROCK_REGION,
           token: str | None = None, service: str = "bedrock") -> dict[str, str]:
    """Headers of a request signed the way AWS SDKs sign it (botocore's SigV4Auth)."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(access_key, secret, token), service, region).add_auth(request)
    return dict(request.headers.items())


async def post_signed(http: httpx.AsyncClient, path: str, body: Any = None, **sign: Any) -> httpx.Response:
    raw = json.dumps(BODY if body is None else body).encode()
    return await http.post(path, content=raw, headers=signed(str(http.base_url).rstrip('/') + path, raw, **sign))


def _aws_error(response: httpx.Response, status: int, code: str, message: str, key: str = "message") -> None:
    assert response.status_code == status, response.text
    assert response.json() == {key: message}
    assert response.headers[ERROR_TYPE].startswith(f"{code}:http://internal.amazon.com/coral/")
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-amzn-requestid"]) == 36


async def test_invoke_answers_the_recorded_message_shape(client: httpx.AsyncClient) -> None:
    # The recorded request itself (model id percent-encoded in the path, as botocore sends it).
    path = NONSTREAM.uri.split(".amazonaws.com", 1)[1]
    response = await client.post(path, content=NONSTREAM.request_body, headers=BEARER)
    assert response.status_code == NONSTREAM.status == 200
    body, recorded = response.json(), NONSTREAM.json()
    # Key order as the newer (2025) recording has it: model before content.
    assert set(body) == set(recorded)
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
    assert list(body["usage"]) == list(recorded["usage"]) == ["input_tokens", "output_tokens"]
    assert list(body["content"][0]) == list(recorded["content"][0])
    assert body["id"].startswith("msg_bdrk_01") and len(body["id"]) == len("msg_bdrk_01") + 22
    assert body["model"] == "claude-3-sonnet-20240229" and body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == 35
    for name in ("content-type", "x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count",
                 "x-amzn-bedrock-invocation-latency", "x-amzn-requestid"):
        assert name in NONSTREAM.headers and name in response.headers, name
    assert response.headers["x-amzn-bedrock-input-token-count"] == str(body["usage"]["input_tokens"])
    assert response.headers["x-amzn-bedrock-output-token-count"] == "35"


@pytest.mark.parametrize("recorded", [STREAM_2024, STREAM_2025], ids=["2024", "2025-tool-use"])
async def test_stream_frames_match_the_recorded_structure(client: httpx.AsyncClient, recorded: Any) -> None:
    path = recorded.uri.split(".amazonaws.com", 1)[1]
    request = json.loads(recorded.request_body)
    request.pop("tools", None)
    response = await client.post(path, json=request, headers=BEARER)
    assert response.status_code == 200
    assert response.headers["content-type"] == recorded.headers["content-type"] == "application/vnd.amazon.eventstream"
    ours, theirs = event_frames(response.content), event_frames(recorded.body)
    # Every message: the recorded three headers, in the recorded order, and the recorded headers length.
    for frame in ours + theirs:
        assert frame.header_names == [":event-type", ":content-type", ":message-type"]
        assert frame.headers == {":event-type": "chunk", ":content-type": "application/json",
                                 ":message-type": "event"}
        assert frame.headers_length == 75
    ours_events, their_events = [f.chunk() for f in ours], [f.chunk() for f in theirs]
    assert collapse([e["type"] for e in ours_events]) == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
        "message_stop",
    ]
    assert collapse([e["type"] for e in their_events])[:3] == collapse([e["type"] for e in ours_events])[:3]
    assert their_events[-1]["type"] == "message_stop" and "ping" not in [e["type"] for e in their_events]
    for name in ("content_block_start", "content_block_stop", "message_delta", "message_stop"):
        mine = next(e for e in ours_events if e["type"] == name)
        recorded_event = next(e for e in their_events if e["type"] == name)
        assert list(mine) == list(recorded_event), name
    assert list(ours_events[-1]["amazon-bedrock-invocationMetrics"]) == list(
        their_events[-1]["amazon-bedrock-invocationMetrics"])
    assert list(ours_events[-2]["delta"]) == list(their_events[-2]["delta"])
    assert list(ours_events[-2]["usage"]) == list(their_events[-2]["usage"]) == ["output_tokens"]
    text = "".join(e["delta"]["text"] for e in ours_events if e["type"] == "content_block_delta")
    assert text == textgen.reply(35).text
    # Payload fields: "bytes" and, as Bedrock sends today (2025), the "p" padding.
    assert all(set(json.loads(f.payload)) <= {"bytes", "p"} for f in theirs)
    assert all(list(json.loads(f.payload)) == ["bytes", "p"] for f in ours)


def test_the_frames_decode_names_the_same_headers() -> None:
    for path in ("bedrock/invoke-model-with-response-stream-anthropic.frames.txt",
                 "bedrock/invoke-model-with-response-stream-anthropic-tool-use.frames.txt"):
        for headers in recorded_frame_headers(path):
            assert headers == [(":event-type", "chunk"), (":content-type", "application/json"),
                               (":message-type", "event")]


async def test_message_start_has_the_2025_recorded_keys(client: httpx.AsyncClient) -> None:
    response = await client.post(STREAM, json=BODY, headers=BEARER)
    start = event_frames(response.content)[0].chunk()
    recorded = event_frames(STREAM_2025.body)[0].chunk()
    assert list(start["message"]) == list(recorded["message"])
    assert list(start["message"]["usage"]) == list(recorded["message"]["usage"])
    assert start["message"]["model"] == "claude-sonnet-4-20250514"


async def test_stream_error_fault_sends_a_model_stream_error_exception(client: httpx.AsyncClient) -> None:
    response = await client.post(STREAM, json=BODY, headers={**BEARER, "x-simulator-fault": "stream_error:2"})
    assert response.status_code == 200
    frames = event_frames(response.content)
    assert [f.chunk()["type"] for f in frames[:-1]] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta"]
    last = frames[-1]
    assert last.header_names == [":exception-type", ":content-type", ":message-type"]
    assert last.headers[":exception-type"] == "modelStreamErrorException"
    assert last.headers[":message-type"] == "exception"
    assert json.loads(last.payload)["message"]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        pytest.param("429", 429, "ThrottlingException", id="throttling"),
        pytest.param("500", 500, "InternalServerException", id="500"),
        pytest.param("overloaded", 503, "ServiceUnavailableException", id="overloaded"),
        pytest.param("stream_error", 503, "ServiceUnavailableException", id="stream_error-nonstream"),
        pytest.param("403", 403, "AccessDeniedException", id="403"),
        pytest.param("401", 403, "UnrecognizedClientException", id="401-is-aws-403"),
    ],
)
async def test_status_faults(client: httpx.AsyncClient, fault: str, status: int, code: str) -> None:
    response = await client.post(INVOKE, json=BODY, headers={**BEARER, "x-simulator-fault": fault})
    assert response.status_code == status
    assert response.headers[ERROR_TYPE].split(":", 1)[0] == code
    assert list(response.json()) == ["message"]
    if status == 429:
        assert response.json() == {"message": "Too many requests, please wait before trying again."}


async def test_sigv4_signed_requests_are_accepted(client: httpx.AsyncClient) -> None:
    for path in (INVOKE, STREAM):
        response = await post_signed(client, path)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("sign", "status", "code", "message"),
    [
        pytest.param({"secret": "wrong"}, 403, "InvalidSignatureException",
                     "The request signature we calculated does not match the signature you provided. Check your "
                     "AWS Secret Access Key and signing method. Consult the service documentation for details.",
                     id="wrong-secret"),
        pytest.param({"access_key": "AKIAUNKNOWN000000000"}, 403, "UnrecognizedClientException",
                     "The security token included in the request is invalid.", id="unknown-access-key"),
        pytest.param({"region": "eu-west-1"}, 403, "InvalidSignatureException",
                     "Credential should be scoped to a valid region, not 'eu-west-1'. ", id="wrong-region"),
        pytest.param({"service": "s3"}, 403, "InvalidSignatureException",
                     "Credential should be scoped to correct service: 'bedrock'. ", id="wrong-service"),
    ],
)
async def test_sigv4_refusals(client: httpx.AsyncClient, sign: dict[str, str], status: int, code: str,
                              message: str) -> None:
    _aws_error(await post_signed(client, INVOKE, **sign), status, code, message)


async def test_a_body_changed_after_signing_is_refused(client: httpx.AsyncClient) -> None:
    raw = json.dumps(BODY).encode()
    headers = signed(str(client.base_url).rstrip('/') + INVOKE, raw)
    response = await client.post(INVOKE, content=raw.replace(b"1024", b"1025"), headers=headers)
    assert response.status_code == 403 and response.headers[ERROR_TYPE].startswith("InvalidSignatureException:")


async def test_an_old_signature_has_expired(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth

    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    response = await post_signed(client, INVOKE)
    assert response.status_code == 403 and response.json()["message"].startswith("Signature expired: ")


async def test_missing_authorization(client: httpx.AsyncClient) -> None:
    response = await client.post(INVOKE, json=BODY)
    _aws_error(response, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")


async def test_expired_session_token_matches_the_recording(start: Start) -> None:
    recorded = recording("bedrock/error-403-ExpiredTokenException.yaml")[0]
    url = await start(bedrock={"credentials": {"ASIASIMULATOR0000000": {"secret_access_key": "s",
                                                                        "session_token": "tok-old"}},
                               "expired_session_tokens": ["tok-old"]})
    async with httpx.AsyncClient(base_url=url) as http:
        response = await post_signed(http, INVOKE, access_key="ASIASIMULATOR0000000", secret="s", token="tok-old")
        fresh = await post_signed(http, INVOKE, access_key="ASIASIMULATOR0000000", secret="s", token="tok-new")
    assert response.status_code == recorded.status == 403
    assert response.content == recorded.body.encode()
    assert response.headers[ERROR_TYPE] == recorded.headers["x-amzn-errortype"]
    assert response.headers["content-type"] == recorded.headers["content-type"]
    _aws_error(fresh, 403, "UnrecognizedClientException", "The security token included in the request is invalid.")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param("sk-wrong", "Invalid API Key format: Must start with pre-defined prefix", id="format"),
        pytest.param("ABSKQmVkcm9ja0FQSUtleS1ub3BlOm5vcGU=", "Authentication failed: Please make sure your API Key "
                     "is valid.", id="unknown"),
    ],
)
async def test_bedrock_api_key_refusals(client: httpx.AsyncClient, token: str, message: str) -> None:
    response = await client.post(INVOKE, json=BODY, headers={"authorization": f"Bearer {token}"})
    _aws_error(response, 403, "AccessDeniedException", message, key="Message")


async def test_unknown_model_matches_the_recorded_validation_error(client: httpx.AsyncClient) -> None:
    recorded = recording("bedrock/error-400-ValidationException-converse.yaml")[0]
    response = await client.post("/model/does-not-exist/invoke", json=BODY, headers=BEARER)
    assert response.status_code == recorded.status == 400
    assert response.json() == recorded.json()
    assert response.headers[ERROR_TYPE] == recorded.headers["x-amzn-errortype"]


@pytest.mark.parametrize(
    "model",
    ["anthropic.claude-sonnet-4-20250514-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0",
     "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-6",
     "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-1-20250805-v1:0"],
)
async def test_model_ids_and_inference_profiles(client: httpx.AsyncClient, model: str) -> None:
    response = await client.post(f"/model/{quote(model, safe='')}/invoke", json=BODY, headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json()["model"].startswith("claude-") and not response.json()["model"].endswith(":0")


def _malformed(*problems: str) -> str:
    return f"Malformed input request: {', '.join(problems)}, please reformat your input and try again."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({k: v for k, v in BODY.items() if k != "anthropic_version"},
                     _malformed("#: required key [anthropic_version] not found"), id="no-version"),
        pytest.param({**BODY, "model": MODEL}, _malformed("#: extraneous key [model] is not permitted"),
                     id="model"),
        pytest.param({**BODY, "stream": True}, _malformed("#: extraneous key [stream] is not permitted"),
                     id="stream"),
        pytest.param({"messages": BODY["messages"], "model": MODEL, "stream": True},
                     _malformed("#: required key [anthropic_version] not found",
                                "#: required key [max_tokens] not found",
                                "#: extraneous key [model] is not permitted",
                                "#: extraneous key [stream] is not permitted"), id="anthropic-body-as-is"),
        pytest.param({**BODY, "anthropic_version": "2023-06-01"},
                     _malformed("#/anthropic_version: 2023-06-01 is not a valid enum value"), id="wrong-version"),
        pytest.param({**BODY, "anthropic_beta": "context-1m-2025-08-07"},
                     _malformed("#/anthropic_beta: expected type: JSONArray, found: String"), id="beta-not-a-list"),
        pytest.param({**BODY, "anthropic_beta": ["claude-code-20250219"]}, "invalid beta flag", id="unknown-beta"),
        pytest.param({**BODY, "messages": [{"role": "robot", "content": "hi"}]},
                     "messages.0.role: Input should be 'user' or 'assistant'", id="bad-role"),
        pytest.param({**BODY, "max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1",
                     id="max_tokens-zero"),
    ],
)
async def test_validation_errors(client: httpx.AsyncClient, body: dict[str, Any], message: str) -> None:
    response = await client.post(INVOKE, json=body, headers=BEARER)
    _aws_error(response, 400, "ValidationException", message)


async def test_accepted_beta_flags(client: httpx.AsyncClient) -> None:
    body = {**BODY, "anthropic_beta": ["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]}
    assert (await client.post(INVOKE, json=body, headers=BEARER)).status_code == 200


async def test_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post(INVOKE, content=b"{nope", headers=BEARER)
    _aws_error(response, 400, "ValidationException",
               "Malformed input request, please reformat your input and try again.")


def test_event_stream_encoder_round_trips_through_botocore() -> None:
    payload = b'{"message":"boom"}'
    frame = event_frames(eventstream.exception("throttlingException", payload))[0]
    assert frame.headers == {":exception-type": "throttlingException", ":content-type": "application/json",
                             ":message-type": "exception"}
    assert frame.payload == payload


# The real AWS client: botocore's bedrock-runtime signs, sends and parses (run in a thread, it is sync).

Call = Callable[..., Any]


def _runtime(base_url: str, access_key: str = defaults.BEDROCK_ACCESS_KEY_ID,
             secret: str = defaults.BEDROCK_SECRET_ACCESS_KEY) -> Any:
    return botocore.session.get_session().create_client(
        "bedrock-runtime", region_name=defaults.BEDROCK_REGION, endpoint_url=base_url,
        aws_access_key_id=access_key, aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}),
    )


def _caller(client: Any) -> Call:
    async def call(operation: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(client, operation), **kwargs)

    return call


@pytest.fixture
async def runtime(base_url: str) -> AsyncIterator[Call]:
    client = _runtime(base_url)
    yield _caller(client)
    client.close()


async def test_botocore_invoke_model(runtime: Call) -> None:
    answer = await runtime("invoke_model", modelId=MODEL, body=json.dumps(BODY), contentType="application/json")
    message = json.loads(answer["body"].read())
    assert message["content"][0]["text"] == textgen.reply(35).text
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


async def test_botocore_invoke_model_with_response_stream(runtime: Call) -> None:
    answer = await runtime("invoke_model_with_response_stream", modelId=MODEL, body=json.dumps(BODY))
    try:
        events = await asyncio.to_thread(lambda: [json.loads(e["chunk"]["bytes"]) for e in answer["body"]])
    finally:
        answer["body"].close()
    assert events[-1]["type"] == "message_stop"
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == textgen.reply(35).text


async def test_botocore_raises_the_in_stream_exception_of_a_faulty_access_key(start: Start) -> None:
    faulty = "AKIASIMULATORFAULTY0"
    url = await start(bedrock={
        "credentials": {defaults.BEDROCK_ACCESS_KEY_ID: defaults.BEDROCK_SECRET_ACCESS_KEY, faulty: "s"},
        "key_faults": {faulty: "stream_error:1"},
    })
    client = _runtime(url, faulty, "s")
    try:
        answer = await _caller(client)("invoke_model_with_response_stream", modelId=MODEL, body=json.dumps(BODY))
        try:
            with pytest.raises(EventStreamError) as failure:
                await asyncio.to_thread(lambda: list(answer["body"]))
        finally:
            answer["body"].close()  # a stream that raised keeps its connection checked out until closed
    finally:
        client.close()
    assert failure.value.response["Error"]["Code"] == "modelStreamErrorException"


async def test_botocore_error_codes(runtime: Call, base_url: str) -> None:
    with pytest.raises(ClientError) as invalid:
        await runtime("invoke_model", modelId="does-not-exist", body=json.dumps(BODY))
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as malformed:
        await runtime("invoke_model", modelId=MODEL, body=json.dumps({**BODY, "model": MODEL}))
    assert malformed.value.response["Error"]["Code"] == "ValidationException"
    assert "extraneous key [model]" in malformed.value.response["Error"]["Message"]
    wrong = _runtime(base_url, secret="not-the-secret")
    try:
        with pytest.raises(ClientError) as refused:
            await _caller(wrong)("invoke_model", modelId=MODEL, body=json.dumps(BODY))
    finally:
        wrong.close()
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


async def test_anthropic_sdk_bedrock_client_with_an_api_key(base_url: str) -> None:
    # The SDK's Bedrock client names its own anthropic_version; Bedrock's schema wants bedrock-2023-05-31.
    version = {"anthropic_version": "bedrock-2023-05-31"}
    async with anthropic.AsyncAnthropicBedrock(api_key=BEDROCK_API_KEY, aws_region=defaults.BEDROCK_REGION,
                                               base_url=base_url, max_retries=0) as claude:
        message = await claude.messages.create(model=MODEL, max_tokens=1024, messages=BODY["messages"],
                                               extra_body=version)
        async with claude.messages.stream(model=MODEL, max_tokens=5, messages=BODY["messages"],
                                          extra_body=version) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        with pytest.raises(anthropic.APIStatusError) as failure:
            async with claude.messages.stream(model=MODEL, max_tokens=64, messages=BODY["messages"],
                                              extra_body=version,
                                              extra_headers={"x-simulator-fault": "stream_error:2"}) as broken:
                async for _ in broken.text_stream:
                    pass
    assert message.content[0].text == textgen.reply(35).text  # type: ignore[union-attr]
    assert message.model == "claude-sonnet-4-20250514" and message.usage.output_tokens == 35
    assert pieces == ["The", " quick", " brown", " fox", " jumps"] and final.stop_reason == "max_tokens"
    assert failure.value.body["error"]["type"] == "modelStreamErrorException"  # type: ignore[index]


async def test_the_signature_covers_the_path_exactly_as_sent(client: httpx.AsyncClient) -> None:
    # AWS canonicalises the path as received: signing ".../v1:0/..." and sending it so works (the anthropic
    # SDK's way), as does signing and sending "%3A" (botocore's way); signing one and sending the other
    # does not (what an HTTP client that re-normalises "%3A" to ":" after signing would cause).
    raw = json.dumps(BODY).encode()
    base = str(client.base_url).rstrip("/")
    plain = f"/model/{MODEL}/invoke"
    assert (await client.post(plain, content=raw, headers=signed(base + plain, raw))).status_code == 200
    assert (await client.post(INVOKE, content=raw, headers=signed(base + INVOKE, raw))).status_code == 200
    mixed = await client.post(plain, content=raw, headers=signed(base + INVOKE, raw))
    assert mixed.status_code == 403 and mixed.headers[ERROR_TYPE].startswith("InvalidSignatureException:")


WEATHER_TOOL = {"name": "get_weather", "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                                 "days": {"type": "integer"}},
                                 "required": ["city", "days"]}}


async def test_a_forced_tool_streams_as_the_2025_recording_does(client: httpx.AsyncClient) -> None:
    body = {**BODY, "tools": [WEATHER_TOOL], "tool_choice": {"type": "tool", "name": "get_weather"}}
    response = await client.post(STREAM, json=body, headers=BEARER)
    assert response.status_code == 200
    events = [f.chunk() for f in event_frames(response.content)]
    theirs = [f.chunk() for f in event_frames(STREAM_2025.body)]
    recorded_start = next(e for e in theirs if e["type"] == "content_block_start"
                          and e["content_block"]["type"] == "tool_use")
    start = events[1]
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "get_weather"
    assert list(start["content_block"]) == list(recorded_start["content_block"])
    assert start["content_block"]["id"].startswith("toolu_bdrk_01") and start["content_block"]["input"] == {}
    pieces = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert pieces[0] == {"type": "input_json_delta", "partial_json": ""}  # as recorded
    arguments = json.loads("".join(piece["partial_json"] for piece in pieces))
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-1]["type"] == "message_stop"

    whole = (await client.post(INVOKE, json=body, headers=BEARER)).json()
    assert [block["type"] for block in whole["content"]] == ["tool_use"] and whole["stop_reason"] == "tool_use"
    assert set(whole["content"][0]["input"]) == {"city", "days"}


async def test_thinking_comes_first_with_its_signature_through_botocore(runtime: Call) -> None:
    body = {**BODY, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    answer = await runtime("invoke_model_with_response_stream", modelId=MODEL, body=json.dumps(body))
    try:
        events = await asyncio.to_thread(lambda: [json.loads(e["chunk"]["bytes"]) for e in answer["body"]])
    finally:
        answer["body"].close()
    blocks = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert blocks == ["thinking", "text"]
    signatures = [e["delta"]["signature"] for e in events
                  if e["type"] == "content_block_delta" and e["delta"]["type"] == "signature_delta"]
    assert len(signatures) == 1 and signatures[0]
    whole = await runtime("invoke_model", modelId=MODEL, body=json.dumps(body), contentType="application/json")
    content = json.loads(whole["body"].read())["content"]
    assert [block["type"] for block in content] == ["thinking", "text"] and content[0]["signature"]


async def test_thinking_signed_by_anthropic_first_party_is_refused(client: httpx.AsyncClient) -> None:
    body = {**BODY, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    own = (await client.post(INVOKE, json=body, headers=BEARER)).json()["content"]
    turn = [*BODY["messages"], {"role": "assistant", "content": own}, {"role": "user", "content": "And a third?"}]
    assert (await client.post(INVOKE, json={**body, "messages": turn}, headers=BEARER)).status_code == 200
    foreign = {**own[0], "signature": first_party.thinking_signature(first_party.ORGANIZATION_ID)}
    turn[1] = {"role": "assistant", "content": [foreign, own[1]]}
    response = await client.post(INVOKE, json={**body, "messages": turn}, headers=BEARER)
    _aws_error(response, 400, "ValidationException", "messages.1.content.0: Invalid `signature` in `thinking` block")
