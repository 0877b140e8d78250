"""Azure OpenAI chat completions (azure-openai): the `api-key` header, a deployment per model.

Path styles (the account's `path_style`):
- `deployments` (default): `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`,
  the deployment from the account's `deployments` map (exact name, then glob), else the model's own name;
- `v1`: `{endpoint}/openai/v1/chat/completions`, the model (deployment) in the body.
Answers, streams and usage are OpenAI's.
"""

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote

from switchboard_common import platforms
from switchboard_edge.errors import ClientFormat
from switchboard_edge.upstream.base import Call, Platform, UpstreamRequest
from switchboard_edge.upstream.openai import OpenAIStreamTap, openai_body, openai_headers, wants_usage
from switchboard_edge.usage import Usage, from_openai

DEFAULT_API_VERSION = "2024-10-21"


def deployment_for(deployments: Mapping[str, str], model: str) -> str:
    if model in deployments:
        return deployments[model]
    for pattern, deployment in deployments.items():
        if fnmatchcase(model, pattern):
            return deployment
    return model


class AzureOpenAI(Platform):
    id = platforms.AZURE_OPENAI
    client_format = ClientFormat.OPENAI

    def build(self, call: Call) -> UpstreamRequest:
        account = call.account
        headers = openai_headers(call)
        headers["api-key"] = account.credential.api_key
        deployment = deployment_for(account.deployments, call.upstream_model)
        if account.path_style == "v1":
            url = f"{account.base_url}/openai/v1/chat/completions"
            return UpstreamRequest(url, headers, openai_body(call, deployment))
        url = (f"{account.base_url}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
               f"?api-version={quote(account.api_version or DEFAULT_API_VERSION, safe='')}")
        return UpstreamRequest(url, headers, openai_body(call, call.upstream_model))

    def usage(self, body: Any) -> Usage:
        return from_openai(body.get("usage")) if isinstance(body, dict) else Usage()

    def tap(self, body: Mapping[str, Any]) -> OpenAIStreamTap:
        return OpenAIStreamTap(client_wants_usage=wants_usage(body))
