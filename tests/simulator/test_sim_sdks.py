"""The official anthropic and openai SDKs, pointed at the simulator, work as against the vendors."""

from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from switchboard_simulator import textgen

from .sim_testing import ANTHROPIC_KEY, OPENAI_KEY

MESSAGES = [{"role": "user", "content": "Two names for a pet pelican, be brief"}]
REPLY = textgen.reply(35).text


@pytest.fixture
async def claude(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, base_url=base_url, max_retries=0) as client:
        yield client


@pytest.fixture
async def gpt(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=f"{base_url}/v1", max_retries=0) as client:
        yield client


async def test_anthropic_sdk_nonstream(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES)
    assert message.content[0].type == "text" and message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 35
    assert message.usage.input_tokens == textgen.estimate_tokens(MESSAGES)
    assert message.id.startswith("msg_") and message.model == "claude-sonnet-4-6"


async def test_anthropic_sdk_stream(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=99, messages=MESSAGES) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == REPLY and len(pieces) == 35
    assert final.content[0].text == REPLY
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 35


async def test_anthropic_sdk_stream_truncated_by_max_tokens(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=3, messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.content[0].text == "The quick brown"


async def test_anthropic_sdk_oauth_bearer_token(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # else the SDK also sends it as x-api-key
    async with anthropic.AsyncAnthropic(api_key=None, auth_token=ANTHROPIC_KEY, base_url=base_url,
                                        max_retries=0) as client:
        message = await client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES)
    assert message.usage.output_tokens == 8
    async with httpx.AsyncClient() as http:
        seen = (await http.get(f"{base_url}/_simulator/requests")).json()["requests"][-1]["headers"]
    assert seen["authorization"] == f"Bearer {ANTHROPIC_KEY}" and "x-api-key" not in seen


async def test_anthropic_sdk_count_tokens(claude: anthropic.AsyncAnthropic) -> None:
    counted = await claude.messages.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES)
    assert counted.input_tokens == textgen.estimate_tokens(MESSAGES)


async def test_anthropic_sdk_errors(base_url: str, claude: anthropic.AsyncAnthropic) -> None:
    async with anthropic.AsyncAnthropic(api_key="sk-wrong", base_url=base_url, max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            await wrong.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert auth.value.request_id == auth.value.response.headers["request-id"]
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.create(model="gpt-4o", max_tokens=8, messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await claude.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES,
                                     extra_headers={"x-simulator-fault": "429:3"})
    assert limited.value.response.headers["retry-after"] == "3"
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await claude.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES,
                                     extra_headers={"x-simulator-fault": "overloaded"})
    assert overloaded.value.status_code == 529


async def test_anthropic_sdk_raises_on_in_stream_error(claude: anthropic.AsyncAnthropic) -> None:
    seen = []
    with pytest.raises(anthropic.APIStatusError) as failure:
        async with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES,
                                          extra_headers={"x-simulator-fault": "stream_error:2"}) as stream:
            async for text in stream.text_stream:
                seen.append(text)
    assert seen == ["The", " quick"]
    assert failure.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_openai_sdk_nonstream(gpt: openai.AsyncOpenAI) -> None:
    completion = await gpt.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 35
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0


async def test_openai_sdk_stream_with_usage(gpt: openai.AsyncOpenAI) -> None:
    stream = await gpt.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.completion_tokens == 35


async def test_openai_sdk_length_limit(gpt: openai.AsyncOpenAI) -> None:
    completion = await gpt.chat.completions.create(
        model="o3-mini", messages=MESSAGES, max_completion_tokens=2,  # type: ignore[arg-type]
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "The quick"


async def test_openai_sdk_errors(base_url: str, gpt: openai.AsyncOpenAI) -> None:
    async with openai.AsyncOpenAI(api_key="sk-wrong-000", base_url=f"{base_url}/v1", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as auth:
            await wrong.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]
    assert auth.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        await gpt.chat.completions.create(model="davinci-999", messages=MESSAGES)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await gpt.chat.completions.create(model="gpt-5-mini", messages=MESSAGES, max_tokens=5)  # type: ignore[arg-type]
    assert bad.value.code == "unsupported_parameter" and bad.value.param == "max_tokens"
    with pytest.raises(openai.RateLimitError) as limited:
        await gpt.chat.completions.create(model="gpt-4o", messages=MESSAGES,  # type: ignore[arg-type]
                                          extra_headers={"x-simulator-fault": "rate_limit"})
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError) as broken:
        await gpt.chat.completions.create(model="gpt-4o", messages=MESSAGES,  # type: ignore[arg-type]
                                          extra_headers={"x-simulator-fault": "500"})
    assert broken.value.type == "server_error"


async def test_openai_sdk_raises_on_in_stream_error(gpt: openai.AsyncOpenAI) -> None:
    stream = await gpt.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        extra_headers={"x-simulator-fault": "stream_error:2"},
    )
    seen = []
    with pytest.raises(openai.APIError) as failure:
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["", "The", " quick"]
    assert failure.value.type == "server_error"
