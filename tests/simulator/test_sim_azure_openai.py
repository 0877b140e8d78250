"""Azure OpenAI chat completions on the wire, held against the recorded Azure traffic field by field."""

import json
from typing import Any

import httpx
import openai
import pytest

from switchboard_simulator import defaults, textgen

from .conftest import Start
from .sim_testing import AZURE_KEY, OPENAI_COMPLETION_ID, openai_chunks, recording

VERSION = defaults.AZURE_OPENAI_API_VERSION
PATH = f"/openai/deployments/gpt-4o/chat/completions?api-version={VERSION}"
V1 = "/openai/v1/chat/completions"
KEY = {"api-key": AZURE_KEY}
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "Count r's in strawberry"}]}
STREAM_BODY: dict[str, Any] = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
NONSTREAM = recording("azure-openai/chat-nonstream.yaml")[0]
NONSTREAM_PREVIEW = recording("azure-openai/chat-nonstream-2024-12-01-preview.yaml")[0]
STREAM = recording("azure-openai/chat-stream-include-usage.yaml")[0]
NOT_FOUND = recording("azure-openai/error-404-DeploymentNotFound.yaml")[0]
UUID_LENGTH = 36


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in (f"{prefix}{k}", *_key_paths(v, f"{prefix}{k}."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _key_paths(v, f"{prefix}{i}.")]
    return []


def _deployment_path(recorded: Any) -> str:
    return "/openai/" + recorded.uri.split("/openai/", 1)[1]


async def test_nonstream_matches_the_recording(client: httpx.AsyncClient) -> None:
    # The recorded request: deployment gpt-5-nano, api-version 2024-02-01.
    response = await client.post(_deployment_path(NONSTREAM), content=NONSTREAM.request_body, headers=KEY)
    assert response.status_code == NONSTREAM.status == 200
    body, recorded = response.json(), NONSTREAM.json()
    assert _key_paths(body) == _key_paths(recorded)
    # Printed like the recording: compact JSON, a trailing newline.
    assert NONSTREAM.body.endswith("}\n") and response.text.endswith("}\n") and "\n" not in response.text[:-1]
    assert body["prompt_filter_results"] == recorded["prompt_filter_results"]
    assert body["choices"][0]["content_filter_results"] == recorded["choices"][0]["content_filter_results"]
    assert body["system_fingerprint"] is None and body["model"] == "gpt-5-nano"
    assert OPENAI_COMPLETION_ID.match(recorded["id"]) and OPENAI_COMPLETION_ID.match(body["id"])
    assert body["choices"][0]["message"]["content"] == textgen.reply(35).text
    for name in ("content-type", "apim-request-id", "x-request-id", "x-ms-region", "x-ms-deployment-name",
                 "x-ms-rai-invoked", "x-ratelimit-limit-requests", "x-ratelimit-remaining-tokens",
                 "strict-transport-security", "azureml-model-session", "x-accel-buffering"):
        assert name in NONSTREAM.headers and name in response.headers, name
    assert response.headers["x-ms-deployment-name"] == NONSTREAM.headers["x-ms-deployment-name"] == "gpt-5-nano"
    assert len(response.headers["apim-request-id"]) == len(NONSTREAM.headers["apim-request-id"]) == UUID_LENGTH


async def test_nonstream_has_the_2024_12_01_preview_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/openai/deployments/gpt-5-nano/chat/completions?api-version=2024-12-01-preview",
                                 content=NONSTREAM_PREVIEW.request_body, headers=KEY)
    assert response.status_code == 200
    # That recorder sorted and re-indented the body: compare the set of fields, not their order.
    assert sorted(_key_paths(NONSTREAM_PREVIEW.json())) == sorted(
        p for p in _key_paths(response.json()) if ".content_filter_results." not in p)


async def test_stream_matches_the_recording(client: httpx.AsyncClient) -> None:
    response = await client.post(_deployment_path(STREAM).replace("gpt-5.2_2025-12-11", "gpt-4o"),
                                 content=STREAM.request_body, headers=KEY)
    assert response.status_code == 200
    assert response.headers["content-type"] == STREAM.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert {n for n in STREAM.headers if n.startswith(("x-ratelimit-", "x-ms-"))} <= set(response.headers.keys())
    payloads, recorded = openai_chunks(response.text), openai_chunks(STREAM.body)
    assert payloads[-1] == recorded[-1] == "[DONE]"
    ours, theirs = [json.loads(p) for p in payloads[:-1]], [json.loads(p) for p in recorded[:-1]]
    # The prompt_filter_results chunk first, byte for byte as recorded.
    assert payloads[0] == recorded[0]
    # Role chunk, a text chunk, the finish chunk and the usage chunk: the recorded key paths, sorted keys.
    for mine, theirs_chunk in ((ours[1], theirs[1]), (ours[2], theirs[2]), (ours[-2], theirs[-2]),
                               (ours[-1], theirs[-1])):
        assert _key_paths(mine) == _key_paths(theirs_chunk)
    assert ours[1]["choices"][0] == {**theirs[1]["choices"][0]}
    assert ours[-2]["choices"] == theirs[-2]["choices"]
    assert ours[2]["choices"][0]["content_filter_results"] == theirs[2]["choices"][0]["content_filter_results"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in ours[2:-2])
    assert text == textgen.reply(35).text and ours[-1]["usage"]["completion_tokens"] == 35
    assert all(c["usage"] is None for c in ours[1:-1])
    assert all(p.startswith('{"choices":') for p in payloads[:-1])


async def test_stream_without_include_usage(client: httpx.AsyncClient) -> None:
    payloads = openai_chunks((await client.post(PATH, json={**BODY, "stream": True}, headers=KEY)).text)
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all("usage" not in c for c in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_unknown_deployment_matches_the_recording_byte_for_byte(client: httpx.AsyncClient) -> None:
    response = await client.post(_deployment_path(NOT_FOUND).replace("gpt-5-nano", "no-such-deployment"),
                                 content=NOT_FOUND.request_body, headers=KEY)
    assert response.status_code == NOT_FOUND.status == 404
    assert response.text == NOT_FOUND.body
    for name in ("apim-request-id", "x-ms-region", "x-content-type-options", "strict-transport-security"):
        assert name in response.headers and name in NOT_FOUND.headers, name


async def test_v1_path_names_the_deployment_in_the_body(client: httpx.AsyncClient) -> None:
    ok = await client.post(V1, json={**BODY, "model": "gpt-4o-mini"}, headers=KEY)
    assert ok.status_code == 200 and ok.json()["model"] == "gpt-4o-mini"
    assert (await client.post(f"{V1}?api-version=preview", json={**BODY, "model": "gpt-4o"}, headers=KEY)).is_success
    missing = await client.post(V1, json={**BODY, "model": "gpt-9"}, headers=KEY)
    assert missing.status_code == 404 and missing.text == NOT_FOUND.body
    no_model = await client.post(V1, json=BODY, headers=KEY)
    assert no_model.status_code == 400 and no_model.json()["error"]["message"] == "you must provide a model parameter"


@pytest.mark.parametrize(
    ("path", "headers", "status", "body"),
    [
        pytest.param("/openai/deployments/gpt-4o/chat/completions", KEY, 404,
                     '{"error":{"code":"404","message": "Resource not found"}}', id="no-api-version"),
        pytest.param("/openai/deployments/gpt-4o/chat/completions?api-version=1999", KEY, 400,
                     '{"error":{"code":"BadRequest","message":"API version not supported"}}', id="bad-api-version"),
        pytest.param(f"{V1}?api-version=2024-10-21", KEY, 400,
                     '{"error":{"code":"BadRequest","message":"API version not supported"}}', id="v1-dated-version"),
        pytest.param(PATH, {}, 401,
                     '{"error":{"code":"401","message":"Access denied due to missing subscription key. Make sure to '
                     'include subscription key when making requests to an API."}}', id="no-key"),
        pytest.param(PATH, {"api-key": "wrong"}, 401,
                     '{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API '
                     'endpoint. Make sure to provide a valid key for an active subscription and use a correct '
                     'regional API endpoint for your resource."}}', id="wrong-key"),
    ],
)
async def test_azure_refusals(client: httpx.AsyncClient, path: str, headers: dict[str, str], status: int,
                              body: str) -> None:
    response = await client.post(path, json={**BODY, "model": "gpt-4o"}, headers=headers)
    assert (response.status_code, response.text) == (status, body)
    assert len(response.headers["apim-request-id"]) == UUID_LENGTH


async def test_bearer_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=BODY, headers={"authorization": f"Bearer {AZURE_KEY}"})
    assert response.status_code == 200


async def test_validation_passes_through_in_openai_format(client: httpx.AsyncClient) -> None:
    response = await client.post("/openai/deployments/o3-mini/chat/completions?api-version=2024-12-01-preview",
                                 json={**BODY, "max_tokens": 5}, headers=KEY)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_parameter"
    empty = await client.post(PATH, json={"messages": []}, headers=KEY)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_array"


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("429:6", 429, "429"), ("overloaded", 503, "ServiceUnavailable"), ("401", 401, "401")],
)
async def test_status_faults(client: httpx.AsyncClient, fault: str, status: int, code: str) -> None:
    response = await client.post(PATH, json=BODY, headers={**KEY, "x-simulator-fault": fault})
    assert response.status_code == status and response.json()["error"]["code"] == code
    if status == 429:
        assert response.headers["retry-after"] == "6" and response.headers["retry-after-ms"] == "6000"
        assert "Please retry after 6 seconds." in response.json()["error"]["message"]
        assert f"API version {VERSION}" in response.json()["error"]["message"]


async def test_stream_error_fault(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=STREAM_BODY, headers={**KEY, "x-simulator-fault": "stream_error:2"})
    payloads = openai_chunks(response.text)
    assert "[DONE]" not in payloads and json.loads(payloads[-1])["error"]["type"] == "server_error"
    assert len(payloads) == 1 + 1 + 2 + 1


async def test_deployments_are_configurable(start: Start) -> None:
    url = await start(azure_openai={"deployments": {"prod-chat": "gpt-4.1"}})
    async with httpx.AsyncClient(base_url=url) as http:
        ok = await http.post(f"/openai/deployments/prod-chat/chat/completions?api-version={VERSION}", json=BODY,
                             headers=KEY)
        gone = await http.post(PATH, json=BODY, headers=KEY)
    assert ok.json()["model"] == "gpt-4.1" and ok.headers["x-ms-deployment-name"] == "prod-chat"
    assert gone.status_code == 404


async def test_openai_sdk_azure_client(base_url: str) -> None:
    async with openai.AsyncAzureOpenAI(api_key=AZURE_KEY, api_version=VERSION, azure_endpoint=base_url,
                                       max_retries=0) as azure:
        completion = await azure.chat.completions.create(model="gpt-4o", messages=BODY["messages"])
        stream = await azure.chat.completions.create(model="gpt-4o-mini", messages=BODY["messages"], stream=True,
                                                     stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        with pytest.raises(openai.NotFoundError) as missing:
            await azure.chat.completions.create(model="gpt-9", messages=BODY["messages"])
    assert completion.choices[0].message.content == textgen.reply(35).text
    assert completion.prompt_filter_results[0]["prompt_index"] == 0  # type: ignore[attr-defined]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == textgen.reply(35).text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 35
    assert missing.value.code == "DeploymentNotFound"
