"""Sealed reasoning in a request that goes to an upstream of the client's own format.

A conversation may carry reasoning tokens that a translator sealed (`seal.py`) on an earlier turn served
by another platform: a Claude Code history with thinking blocks made from Gemini thoughts, a Codex
history with reasoning items made from Claude thinking. Sent as they are, the vendor rejects them. Here a
token sealed by the target platform is opened (restored byte-exact) and any other sealed one is removed
with the block that holds it. Unsealed tokens are the format's own and pass untouched. Only bodies whose
bytes hold the seal mark are parsed into a new body (`seal.carries_seals`); the rest go byte-exact.

Unsealed tokens are bound too: to the account or organisation that made them. When a conversation moved
(its account was cooling down, or a new key) the upstream refuses them; `without_reasoning` is the same
history with every reasoning token removed, which the relay sends once more in that case.
"""

from collections.abc import Callable, Mapping
from typing import Any

from switchboard_edge.errors import ClientFormat
from switchboard_edge.translate import seal


def _opened_or_none(value: Any, platform: str) -> tuple[bool, Any]:
    """(keep, value): a sealed token opened for `platform`, dropped when sealed elsewhere, else kept as is."""
    if not isinstance(value, str) or seal.origin(value) is None:
        return True, value
    token = seal.opened(value, platform)
    return token is not None, token


# Anthropic's reasoning blocks and the field holding each one's token.
_TOKEN_FIELDS = {"thinking": "signature", "redacted_thinking": "data"}


def _anthropic(body: Mapping[str, Any], platform: str) -> dict[str, Any]:
    messages = []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            messages.append(message)
            continue
        blocks = []
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            field = _TOKEN_FIELDS.get(kind) if isinstance(kind, str) else None
            if field is None:
                blocks.append(block)
                continue
            keep, value = _opened_or_none(block.get(field), platform)
            if keep:
                blocks.append({**block, field: value})
        messages.append({**message, "content": blocks})
    return {**body, "messages": messages}


def _responses(body: Mapping[str, Any], platform: str) -> dict[str, Any]:
    items = body.get("input")
    if not isinstance(items, list):
        return dict(body)
    kept = []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "reasoning":
            keep, value = _opened_or_none(item.get("encrypted_content"), platform)
            if not keep:
                continue
            item = {**item, "encrypted_content": value}
        kept.append(item)
    return {**body, "input": kept}


def _gemini(body: Mapping[str, Any], platform: str) -> dict[str, Any]:
    contents = []
    for content in body.get("contents") or ():
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list):
            contents.append(content)
            continue
        kept = []
        for part in parts:
            if isinstance(part, dict) and "thoughtSignature" in part:
                keep, value = _opened_or_none(part["thoughtSignature"], platform)
                if keep:
                    part = {**part, "thoughtSignature": value}
                elif part.get("thought"):
                    continue  # a thought of another platform: nothing of it is usable here
                else:
                    part = {name: field for name, field in part.items() if name != "thoughtSignature"}
            kept.append(part)
        contents.append({**content, "parts": kept})
    return {**body, "contents": contents}


_SCRUBBERS: dict[ClientFormat, Callable[[Mapping[str, Any], str], dict[str, Any]]] = {
    ClientFormat.ANTHROPIC: _anthropic,
    ClientFormat.RESPONSES: _responses,
    ClientFormat.GEMINI: _gemini,
}


def scrubbed(body: Mapping[str, Any], raw: bytes, client_format: ClientFormat, platform: str) -> dict[str, Any] | None:
    """The body with sealed reasoning opened for `platform` or removed; None when it holds none."""
    scrub = _SCRUBBERS.get(client_format)
    if scrub is None or not seal.carries_seals(raw):
        return None
    return scrub(body, platform)


def _anthropic_unsigned(body: Mapping[str, Any]) -> dict[str, Any] | None:
    messages, removed = [], False
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") != "assistant" or not isinstance(content, list):
            messages.append(message)
            continue
        blocks = [block for block in content if not (isinstance(block, dict) and block.get("type") in _TOKEN_FIELDS)]
        removed = removed or len(blocks) < len(content)
        if blocks:
            messages.append({**message, "content": blocks})
    if not removed:
        return None
    out = {**body, "messages": messages}
    last = next((message for message in reversed(messages) if message.get("role") == "assistant"), None)
    content = last.get("content") if last is not None else None
    if isinstance(content, list) and any(isinstance(block, dict) and block.get("type") == "tool_use"
                                         for block in content):
        # With thinking on, a tool loop's assistant turn must start with its thinking block, now gone.
        out.pop("thinking", None)
    return out


def _responses_unsigned(body: Mapping[str, Any]) -> dict[str, Any] | None:
    items = body.get("input")
    if not isinstance(items, list):
        return None
    kept = [item for item in items
            if not (isinstance(item, dict) and item.get("type") == "reasoning" and item.get("encrypted_content"))]
    return {**body, "input": kept} if len(kept) < len(items) else None


_UNSIGNERS: dict[ClientFormat, Callable[[Mapping[str, Any]], dict[str, Any] | None]] = {
    ClientFormat.ANTHROPIC: _anthropic_unsigned,
    ClientFormat.RESPONSES: _responses_unsigned,
}


def without_reasoning(body: Mapping[str, Any], upstream_format: ClientFormat) -> dict[str, Any] | None:
    """An upstream body (in the upstream's format) with the history's reasoning tokens removed; None when it
    holds none."""
    unsign = _UNSIGNERS.get(upstream_format)
    return unsign(body) if unsign is not None else None
