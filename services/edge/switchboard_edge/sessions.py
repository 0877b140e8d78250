"""The session hint: which conversation a request belongs to, for the router's sticky account choice.

One reader per request format, each `(body, headers) -> str`, pure and sans-I/O. A client's own session id comes
first, where the client sends one:

- Claude: Claude Code's `x-claude-code-session-id` header, else `metadata.user_id` in either of its forms (a JSON
  string holding `session_id`, or the older `user_<hash>_account_<uuid>_session_<uuid>`); any other `user_id`
  names an end user, not a conversation, and is ignored.
- OpenAI chat and Responses: the `session_id` / `session-id` header (Codex), then the body's `prompt_cache_key`,
  then `conversation_id` (older Codex's header, or a body field), and for Responses its `conversation` (an id,
  or an object with one). OpenAI's `user` is never used: it names an end user, and all of a user's parallel
  sessions and subagents would pile onto one account.
- Gemini: nothing. Gemini CLI (0.6x, API key or gateway base URL) calls the Gemini API through google-genai with
  only `User-Agent`, custom headers and, when usage statistics are on, `x-gemini-api-privileged-user-id` (one id
  per installation, not per session); its `session_id` travels only on the Code Assist path (`v1internal`).

Otherwise the hint is `h:` and a truncated SHA-256 of the conversation's opening: the (cache-controlled) system
text and the first user message, serialised canonically (sorted keys), at most 64 KiB of each. Later turns repeat
that opening, so they hash alike; a request with neither part has no hint. Explicit ids are cut to 200 characters.
"""

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

SessionHeaders = Mapping[str, str]
Body = Mapping[str, Any]

MAX_ID_CHARS = 200
# Each hashed part is cut to this many bytes of its canonical JSON: a 30 K-character system prompt stays cheap
# (about 50 µs for a Claude Code opening). Serialising stays linear in the part, far below the body's own parse.
MAX_HASHED_BYTES = 64 * 1024
HASH_PREFIX = "h:"
_HASH_HEX_CHARS = 32
# A Claude Code `user_id` is a small JSON object; anything longer is not parsed.
_MAX_USER_ID_CHARS = 4096


def explicit_id(value: Any) -> str:
    """A client-sent id as a hint: a non-empty string, at most `MAX_ID_CHARS`; anything else is no id."""
    if not isinstance(value, str):
        return ""
    return value[:MAX_ID_CHARS].strip()


def opening_hash(kind: str, system: Any, user: Any) -> str:
    """`h:` + SHA-256 (truncated) of a conversation's system part and first user message; "" if neither is there."""
    if _absent(system) and _absent(user):
        return ""
    digest = hashlib.sha256(kind.encode())
    for part in (system, user):
        data = b"" if _absent(part) else orjson.dumps(part, option=orjson.OPT_SORT_KEYS)[:MAX_HASHED_BYTES]
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return HASH_PREFIX + digest.hexdigest()[:_HASH_HEX_CHARS]


# -- Claude ------------------------------------------------------------------------------------------------------


def anthropic_session(body: Body, headers: SessionHeaders) -> str:
    return (explicit_id(headers.get("x-claude-code-session-id"))
            or claude_code_user_session(body.get("metadata"))
            or opening_hash("anthropic", _cached_system(body.get("system")),
                            _first_user(body.get("messages"), "text")))


def claude_code_user_session(metadata: Any) -> str:
    """The session id inside Claude Code's `metadata.user_id` (JSON-string or legacy form), else ""."""
    user_id = metadata.get("user_id") if isinstance(metadata, Mapping) else None
    if not isinstance(user_id, str) or len(user_id) > _MAX_USER_ID_CHARS:
        return ""
    if user_id.startswith("{"):
        try:
            parsed = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return ""
        return explicit_id(parsed.get("session_id")) if isinstance(parsed, dict) else ""
    if user_id.startswith("user_") and "_account_" in user_id and "_session_" in user_id:
        return explicit_id(user_id.rsplit("_session_", 1)[1])
    return ""


def _cached_system(system: Any) -> Any:
    """The system blocks marked `cache_control` (the stable prompt, not e.g. a per-request billing line), or
    the whole system when none is marked; the markers themselves are left out."""
    system = _blocks(system, "text")
    if not isinstance(system, list):
        return system
    marked = [block for block in system if isinstance(block, dict) and "cache_control" in block]
    return _unmarked(marked or system)


# -- OpenAI chat and Responses -----------------------------------------------------------------------------------


def openai_session(body: Body, headers: SessionHeaders) -> str:
    """OpenAI chat completions (also `/gemini/v1/chat`, which takes the same messages)."""
    explicit = _openai_explicit(body, headers)
    if explicit:
        return explicit
    system: list[Any] = []
    user: Any = None
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "user":
            user = _blocks(message.get("content"), "text")
            break
        if role in ("system", "developer"):
            system.append(_blocks(message.get("content"), "text"))
    return opening_hash("openai", system or None, user)


def responses_session(body: Body, headers: SessionHeaders) -> str:
    """The Responses API, over HTTP and the WebSocket (whose continued turns arrive expanded to the full input)."""
    explicit = _openai_explicit(body, headers)
    if explicit:
        return explicit
    conversation = body.get("conversation")
    if isinstance(conversation, Mapping):
        conversation = conversation.get("id")
    explicit = explicit_id(conversation)
    if explicit:
        return explicit
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    return opening_hash("responses", body.get("instructions"), _first_user(items, "input_text"))


def _openai_explicit(body: Body, headers: SessionHeaders) -> str:
    for value in (headers.get("session_id"), headers.get("session-id"), body.get("prompt_cache_key"),
                  headers.get("conversation_id"), headers.get("conversation-id"), body.get("conversation_id")):
        explicit = explicit_id(value)
        if explicit:
            return explicit
    return ""


# -- Gemini ------------------------------------------------------------------------------------------------------


def gemini_session(body: Body, headers: SessionHeaders) -> str:
    """Gemini's native API: no client session id is sent (see the module docstring), so the opening's hash."""
    nested = body.get("generateContentRequest")  # countTokens may wrap a whole request
    if "contents" not in body and isinstance(nested, Mapping):
        body = nested
    system = body.get("systemInstruction", body.get("system_instruction"))
    user = None
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else ():
        if isinstance(content, dict) and content.get("role", "user") == "user" and not _context_only(content):
            user = content.get("parts")
            break
    return opening_hash("gemini", system, user)


# Gemini CLI opens every conversation with a user turn of workspace context (date, OS, folder tree) that is the
# same for every session in a project; it marks such turns this way, and so does its own history code.
_CONTEXT_MARKERS = ("<session_context>", "<hook_context>")


def _context_only(content: Mapping[str, Any]) -> bool:
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        return False
    return all(isinstance(part, dict) and isinstance(part.get("text"), str)
               and part["text"].lstrip().startswith(_CONTEXT_MARKERS) for part in parts)


# -- shared ------------------------------------------------------------------------------------------------------


def _absent(part: Any) -> bool:
    return part is None or part == "" or part == [] or part == {}


def _first_user(messages: Any, text_type: str) -> Any:
    """The content of the first message with role `user`, as blocks without cache markers; None if none."""
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict) and message.get("role") == "user":
            return _unmarked(_blocks(message.get("content"), text_type))
    return None


def _blocks(content: Any, text_type: str) -> Any:
    """A string content as the one text block it stands for, so both spellings of a message hash alike."""
    return [{"type": text_type, "text": content}] if isinstance(content, str) else content


def _unmarked(blocks: Any) -> Any:
    """Blocks without their `cache_control`: clients move that marker to the newest turn."""
    if not isinstance(blocks, list):
        return blocks
    return [{key: value for key, value in block.items() if key != "cache_control"}
            if isinstance(block, dict) and "cache_control" in block else block for block in blocks]
