"""A Responses client's tools as a chat-style upstream (Anthropic Messages, OpenAI chat) sees them, and back.

Such upstreams know flat function tools only. A `namespace` tool (Codex groups its sub-agent and MCP tools
this way) becomes its function/custom children, each named `<namespace>__<name>`; a custom (freeform) tool
becomes a function taking one string `input`. On the way back the request's own tool table says what each
called name was, so a call returns as a `custom_tool_call` or as a `function_call` with its `namespace`
exactly when the client declared it so (`Target.tools`, filled by `client_tools`).

Responses' hosted web search (`web_search`, `web_search_preview…`), which Codex offers the model on every turn,
is left out: these upstreams cannot run OpenAI's search, and the client is never waiting on a call of it (the
model simply answers without searching). Every other hosted tool is refused by the translator with a 400.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from switchboard_edge.errors import InvalidRequest
from switchboard_edge.translate.base import ClientTool

SEPARATOR = "__"
_HOSTED_SEARCH = "web_search"


def upstream_name(name: Any, namespace: Any) -> Any:
    """The name the upstream knows a (possibly namespaced) function by."""
    return f"{namespace}{SEPARATOR}{name}" if isinstance(namespace, str) and namespace else name


def flattened(tools: list[Any], where: str) -> Iterator[tuple[Any, str]]:
    """Each tool with where it sits in the request, hosted web search left out; a namespace's children renamed
    for the upstream (their description led by the namespace's, which the upstream would otherwise never see)."""
    if not isinstance(tools, list):
        raise InvalidRequest(f"{where} must be an array.")
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind.startswith(_HOSTED_SEARCH):
            continue
        if kind != "namespace":
            yield tool, f"{where}[{index}]"
            continue
        namespace, about = tool.get("name"), tool.get("description")
        for number, child in enumerate(tool.get("tools") or []):
            if not isinstance(child, dict):
                yield child, f"{where}[{index}].tools[{number}]"
                continue
            renamed = {**child, "name": upstream_name(child.get("name"), namespace)}
            if isinstance(about, str) and about:
                own = child.get("description")
                renamed["description"] = f"{about}\n\n{own}" if isinstance(own, str) and own else about
            yield renamed, f"{where}[{index}].tools[{number}]"


def _declare(table: dict[str, ClientTool], tools: Any) -> None:
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        kind, name = tool.get("type"), tool.get("name")
        if kind == "namespace" and isinstance(name, str):
            for child in tool.get("tools") or ():
                if isinstance(child, dict) and isinstance(child.get("name"), str):
                    table[upstream_name(child["name"], name)] = ClientTool(
                        child["name"], name, child.get("type") == "custom")
        elif kind in ("function", "custom") and isinstance(name, str):
            table[name] = ClientTool(name, None, kind == "custom")


def client_tools(body: Mapping[str, Any]) -> dict[str, ClientTool]:
    """The request's function and custom tools (`tools` and `additional_tools` items) by upstream name."""
    table: dict[str, ClientTool] = {}
    _declare(table, body.get("tools"))
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            _declare(table, item.get("tools"))
    return table


def _custom_input(arguments: str) -> str | None:
    """The string of a call whose arguments are exactly `{"input": <string>}`."""
    if not arguments.startswith("{"):
        return None
    try:
        payload = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    if isinstance(payload, dict) and len(payload) == 1 and isinstance(payload.get("input"), str):
        return str(payload["input"])
    return None


def answered(name: str, arguments: str, tools: Mapping[str, ClientTool] | None
             ) -> tuple[str, str | None, str | None]:
    """How an upstream call reads to the client: (name, namespace, the custom tool's input or None for a
    function call). Without the request's table (`tools` None) a call whose arguments are exactly one string
    `input` is taken for a custom tool's."""
    if tools is None:
        return name, None, _custom_input(arguments)
    declared = tools.get(name)
    if declared is None:
        return name, None, None
    custom = (_custom_input(arguments) or "") if declared.custom else None
    return declared.name, declared.namespace, custom


def call_item(call_id: Any, item_id: str, name: str, arguments: str, namespace: str | None, custom: str | None,
              status: str) -> dict[str, Any]:
    """The client's output item for one tool call (`answered` says which kind): a `custom_tool_call` carrying
    the custom tool's input, or a `function_call` (with its namespace when it has one)."""
    if custom is not None:
        return {"id": f"ctc_{item_id}", "type": "custom_tool_call", "status": status, "call_id": call_id,
                "input": custom, "name": name}
    item = {"id": f"fc_{item_id}", "type": "function_call", "status": status, "arguments": arguments,
            "call_id": call_id, "name": name}
    if namespace is not None:
        item["namespace"] = namespace
    return item
