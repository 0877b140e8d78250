"""Sealed reasoning on the way to an upstream of the client's own format: opened for the platform that made
it, removed for any other, the format's own tokens untouched, unsealed bodies not even parsed."""

import orjson

from switchboard_edge.errors import ClientFormat
from switchboard_edge.translate import seal
from switchboard_edge.translate.scrub import scrubbed, without_reasoning

GEMINI_MADE = seal.sealed("gemini", "CiQB-gemini-thought-signature")
CONSOLE_MADE = seal.sealed("claude-console", "EqQBCkYIBx-anthropic-signature")


def _scrub(body: dict, client_format: ClientFormat, platform: str) -> dict | None:  # type: ignore[type-arg]
    return scrubbed(body, orjson.dumps(body), client_format, platform)


def test_anthropic_history_keeps_own_and_native_signatures_and_drops_foreign_ones() -> None:
    body = {"model": "claude-sonnet-4", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "from gemini", "signature": GEMINI_MADE},
            {"type": "thinking", "thinking": "from console", "signature": CONSOLE_MADE},
            {"type": "thinking", "thinking": "native", "signature": "EqQBnative"},
            {"type": "redacted_thinking", "data": seal.sealed("bedrock", "opaque")},
            {"type": "text", "text": "hello"}]},
        {"role": "user", "content": "again"}]}
    out = _scrub(body, ClientFormat.ANTHROPIC, "claude-console")
    assert out is not None
    blocks = out["messages"][1]["content"]
    assert blocks == [{"type": "thinking", "thinking": "from console", "signature": "EqQBCkYIBx-anthropic-signature"},
                      {"type": "thinking", "thinking": "native", "signature": "EqQBnative"},
                      {"type": "text", "text": "hello"}]
    assert out["messages"][0] == body["messages"][0] and out["messages"][2] == body["messages"][2]
    assert body["messages"][1]["content"][0]["signature"] == GEMINI_MADE  # the client's body is not modified


def test_responses_reasoning_items_of_another_platform_are_removed() -> None:
    body = {"model": "gpt-5", "input": [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": CONSOLE_MADE},
        {"type": "reasoning", "summary": [], "encrypted_content": seal.sealed("openai-responses", "gAAAA")},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAnative"}]}
    out = _scrub(body, ClientFormat.RESPONSES, "openai-responses")
    assert out is not None
    assert [item.get("encrypted_content") for item in out["input"]] == [None, "gAAAA", "gAAAAnative"]


def test_gemini_thought_signatures_of_another_platform_are_removed_with_their_thoughts() -> None:
    body = {"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [
            {"text": "thinking…", "thought": True, "thoughtSignature": CONSOLE_MADE},
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": CONSOLE_MADE},
            {"text": "mine", "thoughtSignature": GEMINI_MADE}]}]}
    out = _scrub(body, ClientFormat.GEMINI, "gemini")
    assert out is not None
    assert out["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}},
                                           {"text": "mine", "thoughtSignature": "CiQB-gemini-thought-signature"}]


def test_bodies_without_the_seal_mark_are_left_alone() -> None:
    body = {"messages": [{"role": "assistant", "content": [{"type": "thinking", "signature": "EqQB"}]}]}
    assert _scrub(body, ClientFormat.ANTHROPIC, "claude-console") is None
    assert _scrub({"messages": []}, ClientFormat.OPENAI, "openai") is None


def test_without_reasoning_removes_every_token_and_turns_thinking_off_for_a_bare_tool_loop() -> None:
    body = {"model": "m", "thinking": {"type": "enabled", "budget_tokens": 2048}, "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]},
        {"role": "user", "content": "Go on"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]}
    out = without_reasoning(body, ClientFormat.ANTHROPIC)
    assert out is not None and "thinking" not in out
    assert [message["role"] for message in out["messages"]] == ["user", "user", "assistant", "user"]
    assert out["messages"][2]["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]
    # A last turn that answers in text keeps thinking on; a history without tokens gives nothing to resend.
    texts = {**body, "messages": [*body["messages"][:3], {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "Done"}]}]}
    assert without_reasoning(texts, ClientFormat.ANTHROPIC)["thinking"] == body["thinking"]  # type: ignore[index]
    assert without_reasoning({"messages": [{"role": "user", "content": "Hi"}]}, ClientFormat.ANTHROPIC) is None


def test_without_reasoning_drops_encrypted_reasoning_items_only() -> None:
    items = [{"type": "message", "role": "user", "content": "Hi"},
             {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
             {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "plain"}]},
             {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]
    out = without_reasoning({"input": items}, ClientFormat.RESPONSES)
    assert out is not None and [item.get("id") for item in out["input"]] == [None, "rs_2", None]
    assert without_reasoning({"input": "Hi"}, ClientFormat.RESPONSES) is None
    assert without_reasoning({"contents": []}, ClientFormat.GEMINI) is None
