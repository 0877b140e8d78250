"""The official anthropic and openai SDKs work through the gateway exactly as against the vendor."""

from collections.abc import Iterator

import anthropic
import openai
import pytest

from switchboard_stack.launcher import Stack


@pytest.fixture()
def claude(stack: Stack, keys) -> Iterator[anthropic.Anthropic]:  # type: ignore[no-untyped-def]
    with anthropic.Anthropic(base_url=f"{stack.base_url}/claude", api_key=keys.full, max_retries=0) as client:
        yield client


@pytest.fixture()
def gpt(stack: Stack, keys) -> Iterator[openai.OpenAI]:  # type: ignore[no-untyped-def]
    with openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=keys.full, max_retries=0) as client:
        yield client


def test_anthropic_sdk_non_stream(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-20250514", max_tokens=64, messages=[{"role": "user", "content": "Hello!"}]
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.model == "claude-sonnet-4-20250514"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_anthropic_sdk_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-sonnet-4-20250514", max_tokens=64, messages=[{"role": "user", "content": "Hello!"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and "message_delta" in kinds
    assert final.content[0].text and final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0


def test_anthropic_sdk_with_platform_prefix(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-console,claude-sonnet-4-20250514", max_tokens=16,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert message.model == "claude-sonnet-4-20250514"


def test_anthropic_sdk_bearer_token(stack: Stack, keys) -> None:  # type: ignore[no-untyped-def]
    with anthropic.Anthropic(base_url=f"{stack.base_url}/claude", auth_token=keys.full, max_retries=0) as client:
        message = client.messages.create(model="claude-sonnet-4-20250514", max_tokens=16,
                                         messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].text


def test_openai_sdk_non_stream(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}])
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_openai_sdk_stream_without_usage_request_sees_no_usage_chunk(gpt: openai.OpenAI) -> None:
    chunks = list(gpt.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True
    ))
    assert chunks and all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks)


def test_openai_sdk_stream_with_usage(gpt: openai.OpenAI) -> None:
    chunks = list(gpt.chat.completions.create(
        model="openai,gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True,
        stream_options={"include_usage": True},
    ))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
