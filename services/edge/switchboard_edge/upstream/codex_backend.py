"""The ChatGPT/Codex backend: openai-responses accounts signed in with ChatGPT, as Codex CLI is when logged in.

`POST {base_url}/responses` (default base URL https://chatgpt.com/backend-api/codex) and
`{base_url}/responses/compact`, with `authorization: Bearer <access token>` (kept fresh by
`switchboard_edge.oauth`, issued by auth.openai.com) and `chatgpt-account-id: <the account's ChatGPT account
id>` (`Credential.secrets["chatgpt_account_id"]`). Codex's own headers pass as they came (session_id,
originator, version, x-codex-*, …); `originator: codex_cli_rs` is sent when the client sent none.

The backend is not the public API: it refuses some of the public API's parameters and insists on others.
What it requires is enforced, what it refuses is removed; everything else passes untouched:

- `store: false` (it keeps nothing: "Store must be set to false") and `stream: true` ("Stream must be set to
  true"; a client that asked for a whole answer still gets one: the edge collects the stream to its
  `response.completed` and answers that event's `response` object, see `collect`);
- a non-empty `instructions` ("Instructions are required"): the edge's `codex_default_instructions` when
  the client sent none (Codex CLI always sends its own);
- `input` a list ("Input must be a list"): a string becomes one user message; `role: "system"` items
  become `role: "developer"` (the backend takes no system role in `input`);
- removed, each refused as "Unsupported parameter: <name>": `max_output_tokens`, `max_completion_tokens`,
  `temperature`, `top_p`, `frequency_penalty`, `presence_penalty`, `seed`, `top_logprobs`, `metadata`,
  `user`, `truncation`, `stop_sequences`, `prompt_cache_retention`, `safety_identifier`, `stream_options`,
  `context_management`; and `service_tier` unless it is `priority` (or `fast`), the tiers it serves.
- the compact operation (`/responses/compact`, one JSON answer) takes neither `store` nor `stream`: both
  are removed; the rest is as above.

Sources (2026): sub2api `backend/internal/service/openai_codex_transform.go` (store/stream, the refused
sampling and token-limit fields, prompt_cache_retention, default instructions, string input to a list,
compact without store/stream, the ChatGPT-internal list metadata, user, prompt_cache_retention,
safety_identifier, stream_options, truncation, stop_sequences); CLIProxyAPI
`internal/runtime/executor/codex_executor.go` and
`internal/translator/codex/openai/responses/codex_openai-responses_request.go` (stream forced,
prompt_cache_retention, safety_identifier, stream_options, max_output_tokens, max_completion_tokens,
temperature, top_p, truncation, context_management ("Unsupported parameter: context_management"), user,
service_tier other than priority/fast, system role to developer; non-stream answers collected from
`response.completed`); openai/codex `codex-rs/login/src/auth/manager.rs` (the token refresh); the
simulator's Codex backend (`seed`, `top_logprobs`).
"""

from collections.abc import Mapping
from typing import Any

import orjson

from switchboard.router.v1 import router_pb2
from switchboard_edge.sse import SSEDecoder
from switchboard_edge.upstream.base import Call, IncompleteAnswer, with_query

CHATGPT_ACCOUNT_ID = "chatgpt_account_id"
DEFAULT_ORIGINATOR = "codex_cli_rs"
REFUSED = frozenset({
    "max_output_tokens", "max_completion_tokens", "temperature", "top_p", "frequency_penalty", "presence_penalty",
    "seed", "top_logprobs", "metadata", "user", "truncation", "stop_sequences", "prompt_cache_retention",
    "safety_identifier", "stream_options", "context_management",
})
SERVICE_TIERS = frozenset({"priority", "fast"})
_FINISHED = ("response.completed", "response.incomplete")
_FAILED = ("response.failed", "error")


def signs_in_with_chatgpt(account: router_pb2.Account) -> bool:
    """An openai-responses account with a ChatGPT sign-in (the router hands it the account id, no API key)."""
    return not account.credential.api_key and bool(account.credential.secrets.get(CHATGPT_ACCOUNT_ID))


def url(call: Call) -> str:
    path = "/responses/compact" if call.operation == "compact" else "/responses"
    return with_query(f"{call.account.base_url}{path}", call.query)


def headers(call: Call, forwarded: dict[str, str]) -> dict[str, str]:
    """`forwarded`: the client's headers the Responses platform lets through, with the account's own."""
    secrets = call.account.credential.secrets
    forwarded.setdefault("originator", DEFAULT_ORIGINATOR)
    forwarded["accept"] = "application/json" if call.operation == "compact" else "text/event-stream"
    forwarded["authorization"] = f"Bearer {secrets.get('access_token', '')}"
    forwarded["chatgpt-account-id"] = secrets.get(CHATGPT_ACCOUNT_ID, "")
    return forwarded


def body(call: Call) -> bytes:
    """The client's body with what the backend requires and without what it refuses (see the module)."""
    out: dict[str, Any] = {name: value for name, value in call.body.items() if name not in REFUSED}
    out["model"] = call.upstream_model
    if out.get("service_tier") is not None and out.get("service_tier") not in SERVICE_TIERS:
        del out["service_tier"]
    if call.operation == "compact":
        out.pop("store", None)
        out.pop("stream", None)
    else:
        out["store"] = False
        out["stream"] = True
    instructions = out.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        out["instructions"] = call.default_instructions
    items = out.get("input")
    if isinstance(items, str):
        out["input"] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": items}]}]
    elif isinstance(items, list) and any(_system(item) for item in items):
        out["input"] = [{**item, "role": "developer"} if _system(item) else item for item in items]
    return orjson.dumps(out)


def _system(item: Any) -> bool:
    return isinstance(item, dict) and item.get("role") == "system"


def collect(payload: bytes) -> bytes:
    """The `response` object of a stream's `response.completed` (or `response.incomplete`) event, as JSON.

    A stream that failed (`response.failed`, `error`) or ended early raises `IncompleteAnswer`."""
    decoder = SSEDecoder()
    events = decoder.feed(payload)
    rest = decoder.flush()
    if rest:
        events += decoder.feed(rest + b"\n\n")
    for event in events:
        kind = event.name
        if kind and kind not in _FINISHED and kind not in _FAILED:
            continue
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        kind = kind or str(data.get("type", ""))  # an event without an `event:` line names itself in `type`
        if kind in _FAILED:
            raise IncompleteAnswer(_failure(data), _error_body(data))
        if kind in _FINISHED and isinstance(data.get("response"), dict):
            return orjson.dumps(data["response"])
    raise IncompleteAnswer("The upstream stream ended before the answer was complete.")


def _error_body(data: dict[str, Any]) -> dict[str, Any] | None:
    """The vendor's error body in a failure event: an `error` event itself, a `response.failed`'s
    `response.error`."""
    response = data.get("response")
    if isinstance(response, dict):
        error = response.get("error")
        return {"error": error} if isinstance(error, dict) else None
    return data


def _failure(data: Mapping[str, Any]) -> str:
    """A short reason from a failure event (its error code), never the vendor's text."""
    response = data.get("response")
    error = data.get("error") or (response.get("error") if isinstance(response, dict) else None) or data
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code.isidentifier():
        return f"The upstream API failed the answer ({code})."
    return "The upstream API failed the answer."
