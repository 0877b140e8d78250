"""Configuration (defaults, YAML, flags) and the program itself: readiness line, pacing, clean stop."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from switchboard_simulator import defaults, faults, textgen
from switchboard_simulator.__main__ import main
from switchboard_simulator.config import CONFIG_VARIABLE, ConfigError, load

from .conftest import Start
from .sim_testing import ANTHROPIC_HEADERS, CLAUDE_BODY, CLAUDE_STREAM, OPENAI_BODY, OPENAI_HEADERS

NO_ENV: dict[str, str] = {}


def test_defaults() -> None:
    config = load([], NO_ENV)
    assert (config.host, config.port, config.reply_tokens, config.chunk_tokens) == ("127.0.0.1", 8090, 35, 1)
    assert (config.latency_ms, config.tokens_per_second, config.faults) == (0.0, 0.0, ())
    assert config.fault_header and config.record_requests and config.record_limit == 1000
    assert config.anthropic.keys == {"sk-sim-anthropic"} and config.openai.keys == {"sk-sim-openai"}
    assert not config.anthropic.accept_any_key and not config.openai.accept_any_key
    assert config.anthropic.models == ("claude-*",) and config.openai.models == ("gpt-*", "o*")
    assert config.openai.key_faults["sk-sim-broken"] == faults.parse("500")
    assert config.anthropic.key_faults["sk-sim-overloaded"].kind == "overloaded"
    assert config.openai.rejects_max_tokens("gpt-5-nano") and not config.openai.rejects_max_tokens("gpt-4o")
    assert config.azure_openai.keys == {defaults.AZURE_OPENAI_KEY}
    assert config.azure_openai.deployments == defaults.AZURE_OPENAI_DEPLOYMENTS
    assert config.azure_openai.api_version_ok("2024-10-21") and config.azure_openai.api_version_ok("2025-04-01-preview")
    assert not config.azure_openai.api_version_ok("2024-13-01x")
    assert config.bedrock.keys == {defaults.BEDROCK_API_KEY} and config.bedrock.region == "us-east-1"
    assert config.bedrock.credentials[defaults.BEDROCK_ACCESS_KEY_ID].secret_access_key == "sim-bedrock-secret"
    assert config.bedrock.serves("us.anthropic.claude-sonnet-4-20250514-v1:0") and not config.bedrock.serves("gpt-4o")
    assert config.anthropic.oauth_refresh_tokens == {"sim-refresh-token"}
    assert config.anthropic.oauth_token_lifetime_seconds == 28800 and config.anthropic.oauth_token_fault is None
    for section in (config.anthropic, config.openai, config.azure_openai, config.bedrock):
        assert section.key_faults["sk-sim-ratelimited"] == faults.parse("429")


def test_new_vendor_flags() -> None:
    config = load(["--azure-key", "az2", "--azure-deployment", "prod=gpt-4.1", "--azure-deployment", "gpt-x",
                   "--bedrock-credential", "AKIAOTHER=s2", "--bedrock-region", "eu-west-1", "--bedrock-key", "bk2",
                   "--bedrock-model", "eu.anthropic.*", "--anthropic-refresh-token", "r2",
                   "--anthropic-access-token", "a1", "--oauth-token-lifetime", "2.5", "--oauth-token-fault", "500",
                   "--key-fault", "AKIAOTHER=stream_error:2"], NO_ENV)
    assert config.azure_openai.keys == {defaults.AZURE_OPENAI_KEY, "az2"}
    assert config.azure_openai.deployments["prod"] == "gpt-4.1" and config.azure_openai.deployments["gpt-x"] == "gpt-x"
    assert "gpt-4o" in config.azure_openai.deployments
    assert set(config.bedrock.credentials) == {defaults.BEDROCK_ACCESS_KEY_ID, "AKIAOTHER"}
    assert config.bedrock.region == "eu-west-1" and config.bedrock.keys == {defaults.BEDROCK_API_KEY, "bk2"}
    assert config.bedrock.models == ("eu.anthropic.*",)
    assert config.bedrock.key_faults["AKIAOTHER"] == faults.parse("stream_error:2")
    assert config.anthropic.oauth_refresh_tokens == {"sim-refresh-token", "r2"}
    assert config.anthropic.oauth_access_tokens == {"a1"} and config.anthropic.oauth_token_lifetime_seconds == 2.5
    assert config.anthropic.oauth_token_fault == faults.parse("500")


def test_yaml_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({
        "port": 9000, "latency_ms": 50, "faults": ["500@0.1"], "reply_tokens": 20,
        "anthropic": {"keys": ["a1"], "key_faults": {"bad": "hang"}},
        "openai": {"models": ["gpt-4o*"]},
    }))
    config = load(["--config", str(path), "--port", "0", "--latency-ms", "5", "--fault", "slow:10",
                   "--anthropic-key", "a2", "--key-fault", "k=429:3", "--openai-model", "o3*", "--no-record",
                   "--accept-any-key"], NO_ENV)
    assert (config.port, config.latency_ms, config.reply_tokens) == (0, 5.0, 20)
    assert [f.spec for f in config.faults] == ["500@0.1", "slow:10"]
    assert config.anthropic.keys == {"a1", "a2"}
    assert set(config.anthropic.key_faults) == {"bad", "k"}
    assert config.anthropic.key_faults["k"].retry_after == 3
    assert set(config.openai.key_faults) == {"sk-sim-broken", "sk-sim-ratelimited", "sk-sim-overloaded", "k"}
    assert config.openai.models == ("o3*",) and config.openai.serves("o3-mini")
    assert not config.openai.serves("gpt-4o")
    assert not config.record_requests and config.anthropic.accept_any_key and config.openai.accept_any_key


SLOW_AND_FAULTY = {
    "latency_ms": 250, "tokens_per_second": 12.5, "reply_tokens": 80, "chunk_tokens": 2,
    "faults": [500, "stream_error:5@0.1"],
    "anthropic": {"keys": ["sk-sim-anthropic", "sk-extra"], "key_faults": {"sk-cut": "disconnect:4"}},
    "openai": {"keys": ["sk-sim-openai", "sk-extra"]},
}
SAME_AS_FLAGS = ["--latency-ms", "250", "--tokens-per-second", "12.5", "--reply-tokens", "80",
                 "--chunk-tokens", "2", "--fault", "500", "--fault", "stream_error:5@0.1",
                 "--anthropic-key", "sk-extra", "--openai-key", "sk-extra"]


def test_file_named_by_the_variable_gives_the_same_config_as_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(SLOW_AND_FAULTY))
    from_file = load([], {CONFIG_VARIABLE: str(path)})
    from_flags = load(SAME_AS_FLAGS, NO_ENV)
    # The one thing flags cannot say: key faults for one vendor only.
    assert from_file.anthropic.key_faults["sk-cut"] == faults.parse("disconnect:4")
    anthropic = dataclasses.replace(from_file.anthropic, key_faults=from_flags.anthropic.key_faults)
    assert dataclasses.replace(from_file, anthropic=anthropic) == from_flags
    assert from_file != load([], NO_ENV)


def test_flags_override_the_variable_and_config_overrides_both(tmp_path: Path) -> None:
    named = tmp_path / "named.yaml"
    named.write_text(yaml.safe_dump({"reply_tokens": 7, "latency_ms": 5}))
    flagged = tmp_path / "flagged.yaml"
    flagged.write_text(yaml.safe_dump({"reply_tokens": 9}))
    env = {CONFIG_VARIABLE: str(named)}
    assert (load([], env).reply_tokens, load([], env).latency_ms) == (7, 5.0)
    assert load(["--reply-tokens", "3"], env).reply_tokens == 3
    only_flagged = load(["--config", str(flagged)], env)
    assert (only_flagged.reply_tokens, only_flagged.latency_ms) == (9, 0.0)
    assert load([], {CONFIG_VARIABLE: ""}) == load([], NO_ENV)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        pytest.param({"portt": 1}, "portt", id="unknown-key"),
        pytest.param({"anthropic": {"keyz": []}}, "anthropic.keyz", id="unknown-vendor-key"),
        pytest.param({"faults": ["teapot"]}, "faults", id="bad-fault"),
        pytest.param({"faults": "500"}, "faults", id="faults-not-a-list"),
        pytest.param({"openai": {"key_faults": {"k": "999"}}}, "openai.key_faults.k", id="bad-key-fault"),
        pytest.param({"openai": {"key_faults": ["k"]}}, "openai.key_faults", id="key-faults-not-a-mapping"),
        pytest.param({"anthropic": ["sk-a"]}, "anthropic", id="vendor-not-a-mapping"),
        pytest.param({"anthropic": {"keys": "sk-a"}}, "anthropic.keys", id="keys-not-a-list"),
        pytest.param({"openai": {"models": [4]}}, "openai.models", id="model-not-a-string"),
        pytest.param({"openai": {"accept_any_key": "yes"}}, "openai.accept_any_key", id="vendor-bool-type"),
        pytest.param({"reply_tokens": 0}, "reply_tokens", id="zero-reply"),
        pytest.param({"latency_ms": -1}, "latency_ms", id="negative-latency"),
        pytest.param({"latency_ms": "slow"}, "latency_ms", id="latency-type"),
        pytest.param({"port": "eighty"}, "port", id="port-type"),
        pytest.param({"port": True}, "port", id="port-bool"),
        pytest.param({"reply_tokens": 2.5}, "reply_tokens", id="int-float"),
        pytest.param({"record_requests": "no"}, "record_requests", id="bool-type"),
        pytest.param({"openai": {"sse_padding": False}}, "openai.sse_padding", id="key-of-another-vendor"),
        pytest.param({"azure_openai": {"deployments": ["gpt-4o"]}}, "azure_openai.deployments",
                     id="deployments-not-a-mapping"),
        pytest.param({"azure_openai": {"models": ["gpt-4o"]}}, "azure_openai.models", id="azure-has-no-models"),
        pytest.param({"bedrock": {"credentials": {"AKIA": 5}}}, "bedrock.credentials.AKIA", id="credential-type"),
        pytest.param({"bedrock": {"credentials": {"AKIA": {"secret": "s"}}}}, "bedrock.credentials.AKIA",
                     id="credential-fields"),
        pytest.param({"bedrock": {"region": 1}}, "bedrock.region", id="region-type"),
        pytest.param({"anthropic": {"oauth_token_lifetime_seconds": 0}}, "anthropic.oauth_token_lifetime_seconds",
                     id="lifetime-zero"),
        pytest.param({"anthropic": {"oauth_token_fault": "teapot"}}, "anthropic.oauth_token_fault",
                     id="token-fault"),
    ],
)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, raw: dict[str, object], named: str) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(raw))
    for argv, env in ((["--config", str(path)], NO_ENV), ([], {CONFIG_VARIABLE: str(path)})):
        with pytest.raises(ConfigError) as refused:
            load(argv, env)
        assert named in str(refused.value) and str(path) in str(refused.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("- a list\n", "expected a mapping of settings", id="top-level-list"),
        pytest.param("latency_ms: [\n", "not valid YAML", id="broken-yaml"),
        pytest.param(None, "cannot read it", id="missing-file"),
    ],
)
def test_unusable_file_is_refused_naming_the_variable(tmp_path: Path, text: str | None, expected: str) -> None:
    path = tmp_path / "sim.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as refused:
        load([], {CONFIG_VARIABLE: str(path)})
    assert str(refused.value).startswith(f"{CONFIG_VARIABLE}={path}: ")


def test_bad_flag_exits_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--key-fault", "no-equals-sign"]) == 2
    assert "KEY=SPEC" in capsys.readouterr().err


def test_textgen_reply_and_estimate() -> None:
    for tokens in (1, 7, 35, 36, 100):
        reply = textgen.reply(tokens)
        chunks = textgen.chunks(tokens, 3)
        assert reply.tokens == tokens and sum(count for _, count in chunks) == tokens
        assert "".join(json.loads(data) for data, _ in chunks) == reply.text
    assert textgen.reply(35).text.endswith("judge my vow.")
    assert textgen.estimate_tokens("abcd" * 10) == 10
    # Every string value counts: "user" + "text" + "abcdefgh" = 16 characters.
    assert textgen.estimate_tokens([{"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]}]) == 4
    assert textgen.estimate_tokens(None, {"n": 5}) == 1


async def test_latency_delays_the_first_byte(start: Start) -> None:
    url = await start(latency_ms=150)
    async with httpx.AsyncClient(base_url=url) as http:
        started = time.monotonic()
        response = await http.post("/v1/chat/completions", json=OPENAI_BODY, headers=OPENAI_HEADERS)
    assert response.status_code == 200 and time.monotonic() - started >= 0.15
    assert int(response.headers["openai-processing-ms"]) >= 150


async def test_tokens_per_second_paces_a_stream(start: Start) -> None:
    url = await start(tokens_per_second=100, reply_tokens=10)
    arrivals = []
    async with httpx.AsyncClient(base_url=url) as http:
        started = time.monotonic()
        request = http.stream("POST", "/v1/messages", json=CLAUDE_STREAM, headers=ANTHROPIC_HEADERS)
        async with request as response:
            async for chunk in response.aiter_raw():
                arrivals.append((time.monotonic() - started, chunk.count(b"content_block_delta") // 2))
    assert arrivals[-1][0] >= 0.1  # 10 tokens at 100/s
    delta_times = [at for at, deltas in arrivals if deltas]
    assert len(delta_times) >= 5 and delta_times[-1] - delta_times[0] >= 0.05, "deltas arrive spread out"


async def test_tokens_per_second_paces_a_nonstream_answer(start: Start) -> None:
    url = await start(tokens_per_second=200, reply_tokens=20)
    async with httpx.AsyncClient(base_url=url) as http:
        started = time.monotonic()
        response = await http.post("/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS)
    assert response.json()["usage"]["output_tokens"] == 20 and time.monotonic() - started >= 0.1


def test_program_prints_ready_line_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard_simulator", "--port", "0", "--reply-tokens", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("SIMULATOR_READY http://127.0.0.1:"), line
        url = line.split(" ", 1)[1]
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        message = httpx.post(f"{url}/v1/messages", json=CLAUDE_BODY, headers=ANTHROPIC_HEADERS).json()
        assert message["content"][0]["text"] == "The quick brown"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _simulator(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "switchboard_simulator", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )


def test_program_takes_its_settings_from_the_file_named_by_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({"faults": [503], "openai": {"keys": ["sk-from-file"]}}))
    process = _simulator({CONFIG_VARIABLE: str(path)})
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().split(" ", 1)[1]
        response = httpx.post(f"{url}/v1/chat/completions", json=OPENAI_BODY,
                              headers={"authorization": "Bearer sk-from-file"})
        assert response.status_code == 503 and response.json()["error"]["type"]
        refused = httpx.post(f"{url}/v1/chat/completions", json=OPENAI_BODY, headers=OPENAI_HEADERS)
        assert refused.status_code == 401, "the file's key list replaced the default one"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_program_refuses_a_bad_file_named_by_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({"tokens_per_secnd": 5}))
    process = _simulator({CONFIG_VARIABLE: str(path)})
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert f"{CONFIG_VARIABLE}={path}" in err and "tokens_per_secnd" in err
