"""The vendor registry: one module per vendor, its config section and its routes, all on one port."""

import dataclasses
import re
from pathlib import Path

import httpx
import pytest

from switchboard_simulator import config as config_module
from switchboard_simulator import defaults
from switchboard_simulator.app import create_app
from switchboard_simulator.config import SimulatorConfig, load, read_file
from switchboard_simulator.vendors import VENDORS

EXAMPLE = Path(__file__).resolve().parents[2] / "simulator" / "examples" / "slow-and-faulty.yaml"
NO_ENV: dict[str, str] = {}


def test_every_registered_vendor_has_its_config_section() -> None:
    names = [vendor.name for vendor in VENDORS]
    assert names == ["anthropic", "openai", "azure_openai", "bedrock", "openai_responses", "codex", "gemini"]
    fields = [field.name for field in dataclasses.fields(SimulatorConfig)]
    assert fields[: len(names)] == names
    config = load([], NO_ENV)
    for vendor in VENDORS:
        assert isinstance(config.section(vendor.name), vendor.section.settings)


def test_the_config_docstring_documents_every_section_key() -> None:
    doc = config_module.__doc__ or ""
    # Top-level YAML keys are indented by four spaces in the docstring; a section runs to the next one.
    sections = dict(re.findall(r"\n    (\w+):(.*?)(?=\n    \w+:|\n\S|\Z)", doc, re.S))
    for vendor in VENDORS:
        assert vendor.name in sections, f"{vendor.name} is not documented"
        for field in vendor.section.fields:
            assert f"\n      {field.name}:" in sections[vendor.name], f"{vendor.name}.{field.name} is not documented"


def test_routes_do_not_collide() -> None:
    app = create_app(load([], NO_ENV))
    seen = [(route.method, route.resource.canonical) for route in app.router.routes()  # type: ignore[union-attr]
            if route.resource is not None]
    assert len(seen) == len(set(seen))
    paths = {path for _, path in seen}
    assert {"/v1/messages", "/v1/messages/count_tokens", "/v1/oauth/token", "/v1/chat/completions",
            "/openai/deployments/{deployment}/chat/completions", "/openai/v1/chat/completions",
            "/model/{model_id}/invoke", "/model/{model_id}/invoke-with-response-stream"} <= paths


async def test_one_port_serves_every_vendor_with_the_default_credentials(client: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": "hi"}]
    answers = [
        await client.post("/v1/messages", json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": messages},
                          headers={"x-api-key": defaults.ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}),
        await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": messages},
                          headers={"authorization": f"Bearer {defaults.OPENAI_KEY}"}),
        await client.post(f"/openai/deployments/gpt-4o-mini/chat/completions?api-version="
                          f"{defaults.AZURE_OPENAI_API_VERSION}", json={"messages": messages},
                          headers={"api-key": defaults.AZURE_OPENAI_KEY}),
        await client.post("/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke",
                          json={"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": messages},
                          headers={"authorization": f"Bearer {defaults.BEDROCK_API_KEY}"}),
        await client.post("/v1/oauth/token", json={"grant_type": "refresh_token",
                                                   "refresh_token": defaults.ANTHROPIC_OAUTH_REFRESH_TOKEN}),
    ]
    assert [answer.status_code for answer in answers] == [200] * 5
    entries = (await client.get("/_simulator/requests")).json()["requests"]
    assert [entry["api"] for entry in entries] == ["anthropic", "openai_chat", "azure_openai", "bedrock",
                                                   "anthropic_oauth"]
    metrics = (await client.get("/metrics")).text
    assert 'switchboard_simulator_requests_total{api="bedrock",status_code="200"} 1' in metrics


def test_the_example_file_loads() -> None:
    raw = read_file(EXAMPLE, str(EXAMPLE))
    config = load(["--config", str(EXAMPLE)], NO_ENV)
    assert config.anthropic.keys >= {defaults.ANTHROPIC_KEY} and raw


@pytest.mark.parametrize("name", ["ANTHROPIC_KEY", "OPENAI_KEY", "AZURE_OPENAI_KEY", "BEDROCK_API_KEY",
                                  "BEDROCK_ACCESS_KEY_ID", "BEDROCK_SECRET_ACCESS_KEY", "BEDROCK_REGION",
                                  "ANTHROPIC_OAUTH_REFRESH_TOKEN"])
def test_defaults_are_importable_strings(name: str) -> None:
    assert isinstance(getattr(defaults, name), str) and getattr(defaults, name)
