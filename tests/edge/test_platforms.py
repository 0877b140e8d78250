"""Bedrock and Azure OpenAI requests as built by their platforms, and Bedrock's stream read back as Anthropic SSE."""

from pathlib import Path

import orjson
import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from switchboard.router.v1 import router_pb2
from switchboard_edge.errors import ClientFormat
from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.azure_openai import AzureOpenAI
from switchboard_edge.upstream.base import Call
from switchboard_edge.upstream.bedrock import Bedrock, BedrockDecoder, bedrock_model_id
from switchboard_edge.upstream.registry import reachable

RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "vendor-recordings"
BODY = {"model": "claude-sonnet-4-20250514", "max_tokens": 32, "stream": True,
        "messages": [{"role": "user", "content": "Hi"}]}


def _bedrock_account(**credentials: str) -> router_pb2.Account:
    return router_pb2.Account(platform="bedrock", region="us-east-1",
                              base_url="https://bedrock-runtime.us-east-1.amazonaws.com",
                              credential=router_pb2.Credential(secrets=credentials))


def _call(account: router_pb2.Account, body: dict, model: str, headers: dict[str, str] | None = None) -> Call:  # type: ignore[type-arg]
    return Call(account, model, body, orjson.dumps(body), bool(body.get("stream")), "", headers or {})


def test_routes_reach_their_native_platforms_first() -> None:
    claude = ("claude-official", "claude-console", "claude-ccr", "bedrock")
    assert reachable(ClientFormat.ANTHROPIC)[:4] == claude
    assert reachable(ClientFormat.ANTHROPIC, "count_tokens") == claude[:3]  # Bedrock counts no tokens
    assert reachable(ClientFormat.OPENAI)[:2] == ("openai", "azure-openai")


def test_bedrock_request_is_rewritten_and_signed_with_sigv4() -> None:
    account = _bedrock_account(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                               aws_session_token="token")
    headers = {"anthropic-beta": "interleaved-thinking-2025-05-14,some-future-beta-2099-01-01"}
    built = Bedrock().build(_call(account, BODY, "claude-sonnet-4-20250514", headers))
    assert built.url == ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                         "us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream")
    body = orjson.loads(built.body)
    assert "model" not in body and "stream" not in body
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    # The signature is the one botocore computes for the same request: recompute it at the same instant.
    assert built.headers["X-Amz-Security-Token"] == "token"
    unsigned = {name: value for name, value in built.headers.items()
                if name.lower() in ("content-type", "accept")}
    check = AWSRequest(method="POST", url=built.url, data=built.body, headers=unsigned)
    check.context["timestamp"] = built.headers["X-Amz-Date"]
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret", "token"), "bedrock", "us-east-1").add_auth(check)
    assert check.headers["Authorization"] == built.headers["Authorization"]
    assert "Credential=AKIDEXAMPLE/" in built.headers["Authorization"] and "/bedrock/aws4_request" in \
        built.headers["Authorization"]


def test_bedrock_api_key_is_a_bearer_token_and_profiles_pass_unchanged() -> None:
    account = _bedrock_account()
    account.credential.api_key = "bedrock-api-key"
    body = {**BODY, "stream": False}
    built = Bedrock().build(_call(account, body, "us.anthropic.claude-sonnet-4-20250514-v1:0"))
    assert built.headers["authorization"] == "Bearer bedrock-api-key"
    assert built.url.endswith("/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke")


def test_bedrock_stream_becomes_the_sse_anthropic_would_send() -> None:
    recording = yaml.safe_load((RECORDINGS / "bedrock" / "invoke-model-with-response-stream-anthropic.yaml")
                               .read_text())
    raw = recording["interactions"][0]["response"]["body"]["string"]
    decoder = BedrockDecoder()
    events = []
    for start in range(0, len(raw), 97):  # frames split at arbitrary points, as TCP delivers them
        events.extend(decoder.feed(raw[start:start + 97]))
    names = [event.name for event in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_delta" in names and "message_delta" in names
    assert all(b"amazon-bedrock-invocationMetrics" not in event.raw for event in events)
    # What a /claude client receives parses as the SSE stream Anthropic would send.
    again = SSEDecoder().feed(b"".join(event.raw for event in events))
    assert [event.name for event in again] == names
    assert orjson.loads(again[-1].data) == {"type": "message_stop"}
    tap = Bedrock().tap({})
    for event in again:
        tap.observe(event)
    assert tap.complete and tap.final_usage and tap.usage.input_tokens > 0


def test_bedrock_errors_are_reshaped_into_anthropic_errors() -> None:
    body = Bedrock().client_error(400, {"x-amzn-errortype": "ValidationException:http://internal.amazon.com/"},
                                  b'{"message":"messages: field required"}')
    assert body is not None
    assert orjson.loads(body) == {"type": "error", "error": {"type": "invalid_request_error",
                                                             "message": "messages: field required"}}


@pytest.mark.parametrize("style, model, url_tail, body_model", [
    pytest.param("", "gpt-4o", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "gpt-4o",
                 id="deployment-mapped"),
    pytest.param("", "gpt-4o-mini", "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
                 "gpt-4o-mini", id="deployment-is-the-model"),
    pytest.param("v1", "gpt-4o", "/openai/v1/chat/completions", "prod-4o", id="v1-path"),
])
def test_azure_urls_deployments_and_key(style: str, model: str, url_tail: str, body_model: str) -> None:
    account = router_pb2.Account(platform="azure-openai", base_url="https://res.openai.azure.com",
                                 deployments={"gpt-4o": "prod-4o"}, path_style=style,
                                 credential=router_pb2.Credential(api_key="azure-key"))
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    built = AzureOpenAI().build(_call(account, body, model, {"authorization": "Bearer client-key"}))
    assert built.url == "https://res.openai.azure.com" + url_tail
    assert built.headers["api-key"] == "azure-key" and "authorization" not in built.headers
    assert orjson.loads(built.body)["model"] == body_model


@pytest.mark.parametrize("model, region, expected", [
    pytest.param("claude-sonnet-4-20250514", "eu-central-1", "eu.anthropic.claude-sonnet-4-20250514-v1:0", id="eu"),
    pytest.param("claude-opus-4-1-20250805", "ap-northeast-1", "apac.anthropic.claude-opus-4-1-20250805-v1:0",
                 id="apac"),
    pytest.param("claude-3-5-haiku-20241022", "us-west-2", "anthropic.claude-3-5-haiku-20241022-v1:0",
                 id="on-demand"),
    pytest.param("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1",
                 "global.anthropic.claude-sonnet-4-5-20250929-v1:0", id="profile-as-is"),
])
def test_bedrock_model_ids(model: str, region: str, expected: str) -> None:
    assert bedrock_model_id(model, region) == expected
