"""The real coding CLIs (Claude Code, Codex CLI, Gemini CLI), installed from npm, each completing one turn
offline through a stack started the way `make run` starts it (the demo pool, one account per platform, all
on the simulator) with nothing but a base URL and a Switchboard key.

Each run gets a scratch HOME, a clean environment (PATH only, then the client's own variables) and stdin
from /dev/null, as /work/shared/design/CLIENTS.md describes. A run must exit 0 and print the simulator's
reply; the simulator's request log must show the turn on the vendor route of the platform the gateway
picked, and the usage ledger must hold the turn's tokens under the key that was used.

Every run's wall time (for Codex CLI the turn time of `codex exec`, with the edge's Responses WebSocket on
and off) is shown in the terminal summary and kept in client-timings.json in pytest's base temp directory.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchboard_simulator import textgen
from switchboard_simulator.config import SimulatorConfig
from switchboard_stack.demo import create_demo_key
from switchboard_stack.launcher import Ports, Stack, demo_accounts

from .conftest import InstallClient, RecordTiming

RUN_TIMEOUT = 120.0
LEDGER_TIMEOUT = 15.0
PROMPT = "say hi"
# The simulator runs with its defaults, as under `make run`: every reply is this many tokens of pangrams
# unless the request's own output limit is lower.
REPLY_TOKENS = int(next(f.default for f in dataclasses.fields(SimulatorConfig) if f.name == "reply_tokens"))  # type: ignore[arg-type]

# The upstream route each platform's turn must arrive on at the simulator.
VENDOR_ROUTES = {
    "claude-official": re.compile(r"/v1/messages"),
    "claude-console": re.compile(r"/v1/messages"),
    "claude-ccr": re.compile(r"/v1/messages"),
    "bedrock": re.compile(r"/model/[^/]+/invoke-with-response-stream"),
    # An API key reaches the Responses API; a ChatGPT sign-in the Codex backend.
    "openai-responses": re.compile(r"/v1/responses|/backend-api/codex/responses"),
    "gemini": re.compile(r"/v1(beta)?/models/[^/:]+:streamGenerateContent"),
    "openai": re.compile(r"/v1/chat/completions"),
    "azure-openai": re.compile(r"/openai/(deployments/[^/]+|v1)/chat/completions"),
}


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, env: Mapping[str, str]) -> Stack:
    ports = Ports.free()
    stack = Stack(tmp_path_factory.mktemp(name), ports,
                  accounts=demo_accounts(f"http://127.0.0.1:{ports.simulator}"), env=env)
    return stack.start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack as `make run` starts it: the demo pool and the launcher's environment, nothing added."""
    running = _start(tmp_path_factory, "clients-stack", {})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack_without_websocket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same, with the edge's Responses WebSocket off: Codex must fall back to HTTP (for the timing)."""
    running = _start(tmp_path_factory, "clients-stack-http", {"SWITCHBOARD_EDGE_RESPONSES_WEBSOCKET": "false"})
    try:
        yield running
    finally:
        running.stop()


@dataclasses.dataclass
class Run:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


class Turn:
    """One CLI run against one stack, with everything needed to explain a failure."""

    def __init__(self, stack: Stack, home: Path, key_name: str, key: str) -> None:
        self.stack, self.home, self.key_name, self.key = stack, home, key_name, key
        self.run: Run | None = None
        self.requests: list[dict[str, Any]] = []

    def report(self) -> str:
        parts = []
        if self.run is not None:
            parts += [f"command: {' '.join(self.run.argv)}",
                      f"exit status: {self.run.returncode} after {self.run.seconds:.1f}s",
                      f"--- stdout ---\n{self.run.stdout}", f"--- stderr ---\n{self.run.stderr[-6000:]}"]
        parts.append("--- simulator requests ---\n" + "\n".join(
            f"{entry.get('method')} {entry.get('path')}?{entry.get('query_string')} -> {entry.get('status')}"
            f" (fault {entry.get('fault')})" for entry in self.requests))
        for process in self.stack.processes:
            parts.append(f"--- {process.name} log tail ---\n{process.tail(40)}")
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.report()}", pytrace=False)


def _clean_environment(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """`env -i` plus PATH (with this machine's node first), a scratch HOME and the client's variables."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    path = os.pathsep.join(dict.fromkeys([str(Path(node).parent), "/usr/local/bin", "/usr/bin", "/bin"]))
    tmp = home / "tmp"  # Gemini CLI writes its error reports there
    tmp.mkdir(exist_ok=True)
    return {"PATH": path, "HOME": str(home), "TMPDIR": str(tmp), "LANG": "C.UTF-8", **extra}


Watch = Callable[[list[dict[str, Any]]], str | None]


def _run(turn: Turn, argv: Sequence[str], extra_env: Mapping[str, str], watch: Watch | None = None) -> Run:
    """Runs the CLI to its end or RUN_TIMEOUT; `watch` sees the simulator's log every half second and, by
    returning a reason, stops a run that can no longer pass (the test then fails with that reason)."""
    workdir = turn.home / "work"
    workdir.mkdir(exist_ok=True)
    started = time.monotonic()
    process = subprocess.Popen(list(argv), env=_clean_environment(turn.home, extra_env), cwd=workdir,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group, so it can be stopped whole
    stopped: str | None = None
    try:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() - started > RUN_TIMEOUT:
                    stopped = f"{Path(argv[0]).name} did not finish within {RUN_TIMEOUT:.0f}s"
                elif watch is not None:
                    stopped = watch(_simulator_requests(turn.stack))
                if stopped is not None:
                    _stop(process)
                    stdout, stderr = process.communicate()
                    break
    finally:
        if process.poll() is None:
            _stop(process)
            process.communicate()
    run = Run(list(argv), process.returncode, stdout, stderr, time.monotonic() - started)
    turn.run = run
    turn.requests = _simulator_requests(turn.stack)
    if stopped is not None:
        turn.fail(f"stopped after {run.seconds:.1f}s: {stopped}")
    return run


def _stop(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _simulator_requests(stack: Stack) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = httpx.get(f"{stack.simulator_url}/_simulator/requests", timeout=10).json()[
        "requests"]
    return requests


def _clear_simulator_log(stack: Stack) -> None:
    httpx.delete(f"{stack.simulator_url}/_simulator/requests", timeout=10).raise_for_status()


def _ledger(stack: Stack, key_name: str) -> list[dict[str, Any]]:
    with sqlite3.connect(stack.db_path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT u.platform, u.model, u.input_tokens, u.output_tokens, u.status_code, u.stream FROM usage_records u "
            "JOIN api_keys k ON k.key_id = u.key_id WHERE k.name = ?", (key_name,)).fetchall()
    return [dict(row) for row in rows]


def _output_tokens_observed(stack: Stack, platform: str) -> float:
    """How many output-token observations the edge's gen_ai_client_token_usage histogram holds for `platform`."""
    text = httpx.get(f"http://127.0.0.1:{stack.ports.edge_metrics}/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "gen_ai_client_token_usage":
            continue
        for sample in family.samples:
            if (sample.name == "gen_ai_client_token_usage_count" and sample.labels.get("gen_ai_token_type") == "output"
                    and sample.labels.get("gen_ai_provider_name") == platform):
                total += sample.value
    return total


def _output_limit(body: Mapping[str, Any]) -> int | None:
    for value in (body.get("max_tokens"), body.get("max_completion_tokens"), body.get("max_output_tokens"),
                  (body.get("generationConfig") or {}).get("maxOutputTokens")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _turn(stack: Stack, tmp_path: Path, key_name: str) -> tuple[Turn, str]:
    """A scratch HOME, a fresh key minted as `make run` mints its demo key, and an empty simulator log."""
    home = tmp_path / "home"
    home.mkdir()
    key = create_demo_key(stack.db_path, key_name)
    _clear_simulator_log(stack)
    return Turn(stack, home, key_name, key), key


def _check_turn(turn: Turn, platforms: set[str], metrics_before: Mapping[str, float]) -> dict[str, Any]:
    """The run printed the simulator's reply; its request reached the vendor route of the platform that
    served it (one of `platforms`); the ledger and the edge's metrics hold its usage. Returns the ledger row."""
    run = turn.run
    assert run is not None
    if run.returncode != 0:
        turn.fail(f"{Path(run.argv[0]).name} exited with status {run.returncode}")
    deadline = time.monotonic() + LEDGER_TIMEOUT
    rows = _ledger(turn.stack, turn.key_name)
    while not any(row["output_tokens"] > 0 for row in rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = _ledger(turn.stack, turn.key_name)
    served = [row for row in rows if row["output_tokens"] > 0 and row["status_code"] == 200]
    if not served:
        turn.fail(f"no usage with output tokens in the ledger for key {turn.key_name} after {LEDGER_TIMEOUT}s: {rows}")
    row = served[-1]
    if row["platform"] not in platforms:
        turn.fail(f"served by platform {row['platform']}, expected one of {sorted(platforms)}: {rows}")
    route = VENDOR_ROUTES[row["platform"]]
    turns = [entry for entry in turn.requests if entry.get("method") == "POST" and route.fullmatch(entry["path"])
             and entry.get("status") == 200]
    if not turns:
        turn.fail(f"no answered POST on the simulator matching {route.pattern} (platform {row['platform']})")
    limits = [_output_limit(entry.get("body") or {}) for entry in turns]
    candidates = {textgen.reply(min(REPLY_TOKENS, limit or REPLY_TOKENS)).text for limit in limits}
    if not any(text in run.stdout for text in candidates):
        turn.fail(f"stdout does not hold the simulator's reply (one of {sorted(candidates)!r})")
    if _output_tokens_observed(turn.stack, row["platform"]) <= metrics_before.get(row["platform"], 0.0):
        turn.fail(f"the edge's gen_ai_client_token_usage has no new output observation for {row['platform']}")
    leaked = [entry["path"] for entry in turn.requests
              if turn.key in json.dumps(entry.get("headers")) or turn.key in (entry.get("query_string") or "")]
    if leaked:
        turn.fail(f"the Switchboard key went upstream: {leaked}")
    return row


def _metrics_now(stack: Stack, platforms: set[str]) -> dict[str, float]:
    return {platform: _output_tokens_observed(stack, platform) for platform in platforms}


# -- Claude Code ------------------------------------------------------------------------------------------

CLAUDE_PLATFORMS = {"claude-official", "claude-console", "claude-ccr", "bedrock"}


@pytest.mark.parametrize("key_variable", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_claude_code(stack: Stack, install_client: InstallClient, record_timing: RecordTiming, tmp_path: Path,
                     key_variable: str) -> None:
    claude = install_client("claude")
    turn, key = _turn(stack, tmp_path, f"clients-claude-{key_variable.lower()}")
    before = _metrics_now(stack, CLAUDE_PLATFORMS)
    run = _run(turn, [str(claude), "-p", PROMPT, "--output-format", "text", "--no-session-persistence"], {
        "ANTHROPIC_BASE_URL": f"{stack.base_url}/claude",
        key_variable: key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    })
    row = _check_turn(turn, CLAUDE_PLATFORMS, before)
    record_timing({"test": f"claude-code {key_variable}", "seconds": round(run.seconds, 3),
                   "platform": row["platform"]})


def test_claude_code_with_a_gpt_model(stack: Stack, install_client: InstallClient, record_timing: RecordTiming,
                                      tmp_path: Path) -> None:
    """Claude Code asking for a GPT model: no Anthropic account serves it, so the edge translates Claude
    Code's Messages request (tools, thinking, system blocks with cache_control) for an OpenAI platform and
    the answer back into the Anthropic stream Claude Code reads."""
    claude = install_client("claude")
    turn, key = _turn(stack, tmp_path, "clients-claude-gpt")
    platforms = {"openai", "azure-openai", "openai-responses"}
    before = _metrics_now(stack, platforms)
    model = "gpt-5.1"
    run = _run(turn, [str(claude), "-p", PROMPT, "--output-format", "text", "--no-session-persistence",
                      "--model", model], {
        "ANTHROPIC_BASE_URL": f"{stack.base_url}/claude",
        "ANTHROPIC_API_KEY": key,
        # Claude Code's side requests (titles, summaries) use its small model: the same GPT model here.
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    })
    row = _check_turn(turn, platforms, before)
    record_timing({"test": "claude-code with a GPT model", "seconds": round(run.seconds, 3),
                   "platform": row["platform"]})


# -- Codex CLI --------------------------------------------------------------------------------------------

def _codex_config(base_url: str, websocket: bool, model: str | None = None) -> str:
    chosen = f'model = "{model}"\n' if model else ""
    return f"""\
{chosen}model_provider = "switchboard"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[features]
plugins = false

[model_providers.switchboard]
name = "Switchboard"
base_url = "{base_url}"
env_key = "SWITCHBOARD_API_KEY"
wire_api = "responses"
supports_websockets = {"true" if websocket else "false"}
"""


def _edge_websockets_accepted(stack: Stack, path: str) -> int:
    edge = next(process for process in stack.processes if process.name == "edge")
    assert edge.log_path is not None
    return edge.log_path.read_text(errors="replace").count(f'"WebSocket {path}" [accepted]')


def _codex_turn(stack: Stack, install_client: InstallClient, record_timing: RecordTiming, tmp_path: Path,
                prefix: str, *, client_websocket: bool, edge_websocket: bool, model: str | None = None,
                platforms: frozenset[str] = frozenset({"openai-responses"})) -> None:
    """One `codex exec` turn; with `client_websocket` the provider says it supports WebSockets (as OpenAI's
    own does), so Codex tries the WebSocket first and falls back to HTTP only if the edge refuses it."""
    codex = install_client("codex")
    transport = f"{'ws' if client_websocket else 'http'}-{'ws' if edge_websocket else 'http'}"
    turn, key = _turn(stack, tmp_path, f"clients-codex{prefix.replace('/', '-')}-{transport}-{model or 'default'}")
    codex_home = turn.home / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(_codex_config(f"{stack.base_url}{prefix}", client_websocket, model))
    before = _metrics_now(stack, set(platforms))
    sockets_before = _edge_websockets_accepted(stack, f"{prefix}/responses")
    run = _run(turn, [str(codex), "exec", "--skip-git-repo-check", PROMPT],
               {"CODEX_HOME": str(codex_home), "SWITCHBOARD_API_KEY": key})
    row = _check_turn(turn, set(platforms), before)
    fell_back = "Falling back from WebSockets to HTTPS transport" in run.stderr
    if fell_back != (client_websocket and not edge_websocket):
        turn.fail(f"Codex {'fell' if fell_back else 'did not fall'} back from the WebSocket to HTTP "
                  f"(provider supports_websockets={client_websocket}, edge WebSocket {edge_websocket})")
    sockets = _edge_websockets_accepted(stack, f"{prefix}/responses") - sockets_before
    if (sockets > 0) != (client_websocket and edge_websocket):
        turn.fail(f"the edge accepted {sockets} WebSocket(s) on {prefix}/responses "
                  f"(provider supports_websockets={client_websocket}, edge WebSocket {edge_websocket})")
    record_timing({"test": f"codex-cli {prefix}" + (f" with {model}" if model else ""),
                   "seconds": round(run.seconds, 3),
                   "provider_websocket": client_websocket, "edge_websocket": edge_websocket,
                   "platform": row["platform"]})


@pytest.mark.parametrize(("prefix", "client_websocket"), [("/openai/v1", True), ("/v1", True), ("/openai/v1", False)],
                         ids=["openai-v1-websocket", "v1-websocket", "openai-v1-http"])
def test_codex_cli(stack: Stack, install_client: InstallClient, record_timing: RecordTiming, tmp_path: Path,
                   prefix: str, client_websocket: bool) -> None:
    _codex_turn(stack, install_client, record_timing, tmp_path, prefix, client_websocket=client_websocket,
                edge_websocket=True)


def test_codex_cli_with_a_claude_model(stack: Stack, install_client: InstallClient, record_timing: RecordTiming,
                                      tmp_path: Path) -> None:
    """Codex CLI asking for a Claude model: its Responses request (over the WebSocket, as Codex prefers) is
    translated for an Anthropic platform and Claude's stream back into the Responses events Codex reads."""
    _codex_turn(stack, install_client, record_timing, tmp_path, "/openai/v1", client_websocket=True,
                edge_websocket=True, model="claude-sonnet-4-5", platforms=frozenset(CLAUDE_PLATFORMS))


def test_codex_cli_edge_without_websocket(stack_without_websocket: Stack, install_client: InstallClient,
                                          record_timing: RecordTiming, tmp_path: Path) -> None:
    """Codex trying the WebSocket against an edge with it off still completes the turn, over HTTP after its
    WebSocket attempts fail; its wall time is the one to compare with test_codex_cli's."""
    _codex_turn(stack_without_websocket, install_client, record_timing, tmp_path, "/openai/v1",
                client_websocket=True, edge_websocket=False)


# -- Gemini CLI -------------------------------------------------------------------------------------------

GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
}


def _classifier_retried(requests: list[dict[str, Any]]) -> str | None:
    """Gemini CLI's model-routing classifier (a generateContent call) asks for JSON fitting a schema
    (generationConfig.responseMimeType and responseJsonSchema); while the answer is not such JSON it retries,
    with backoff, for about two minutes before it gives up and picks a model without it."""
    calls = [entry for entry in requests if entry["method"] == "POST" and entry["path"].endswith(":generateContent")]
    if len(calls) < 2:
        return None
    config = (calls[0].get("body") or {}).get("generationConfig")
    return (f"Gemini CLI sent its classifier call {len(calls)} times: the answer was not the JSON its "
            f"generationConfig asks for ({json.dumps(config)})")


def test_gemini_cli(stack: Stack, install_client: InstallClient, record_timing: RecordTiming, tmp_path: Path) -> None:
    gemini = install_client("gemini")
    turn, key = _turn(stack, tmp_path, "clients-gemini")
    settings = turn.home / ".gemini"
    settings.mkdir()
    (settings / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))
    before = _metrics_now(stack, {"gemini"})
    run = _run(turn, [str(gemini), "-p", PROMPT], {
        "GOOGLE_GEMINI_BASE_URL": f"{stack.base_url}/gemini",
        "GEMINI_API_KEY": key,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_TELEMETRY_ENABLED": "false",
    }, watch=_classifier_retried)
    row = _check_turn(turn, {"gemini"}, before)
    record_timing({"test": "gemini-cli", "seconds": round(run.seconds, 3), "platform": row["platform"]})
