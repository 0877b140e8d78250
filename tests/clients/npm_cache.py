"""Installs pinned npm packages (the real coding CLIs) once into a cache outside the repository.

The cache lives in $SWITCHBOARD_CLIENT_CACHE, by default ~/.cache/switchboard/npm, one directory per
`<package>@<version>` (a scope's slash becomes `__`). An install runs under an exclusive file lock, so
parallel test runs wait for each other instead of installing twice; npm installs into a temporary directory
beside the final one, which is renamed into place only after npm succeeded and the binary is there, and a
marker file written last says the directory is complete. A failed install raises NpmInstallFailed carrying
npm's output: tests treat that as a failure, never as a reason to skip.

Run as `python tests/clients/npm_cache.py` to warm the cache for the pinned clients.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CLIENTS", "Client", "NpmInstallFailed", "cache_root", "install"]

MARKER = ".switchboard-installed"
INSTALL_TIMEOUT = 1800.0


class NpmInstallFailed(RuntimeError):
    """npm could not install the package; the message holds its command, status and output."""


@dataclass(frozen=True)
class Client:
    package: str
    version: str
    binary: str

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


# Pinned to the versions /work/shared/design/CLIENTS.md was observed with.
CLIENTS = {
    "claude": Client("@anthropic-ai/claude-code", "2.1.331", "claude"),
    "codex": Client("@openai/codex", "0.169.0", "codex"),
    "gemini": Client("@google/gemini-cli", "0.61.0", "gemini"),
}


def cache_root() -> Path:
    configured = os.environ.get("SWITCHBOARD_CLIENT_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "switchboard" / "npm"


def _directory_name(package: str, version: str) -> str:
    return f"{package.replace('/', '__')}@{version}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(package: str, version: str, binary: str, *, root: Path | None = None,
            timeout: float = INSTALL_TIMEOUT) -> Path:
    """Returns `<cache>/<package>@<version>/node_modules/.bin/<binary>`, installing the package first if needed."""
    root = root if root is not None else cache_root()
    target = root / _directory_name(package, version)
    executable = target / "node_modules" / ".bin" / binary
    if (target / MARKER).exists() and executable.exists():
        return executable
    npm = shutil.which("npm")
    if npm is None:
        raise NpmInstallFailed(f"cannot install {package}@{version}: npm is not on PATH ({os.environ.get('PATH')})")
    with _locked(root / f".{_directory_name(package, version)}.lock"):
        if (target / MARKER).exists() and executable.exists():  # another run installed it while we waited
            return executable
        # Left by an interrupted run: the marker is missing, so it is not trusted.
        shutil.rmtree(target, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{_directory_name(package, version)}.", dir=root))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund",
                       "--no-update-notifier", f"{package}@{version}"]
            started = time.monotonic()
            try:
                result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                        timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise NpmInstallFailed(
                    f"{' '.join(command)} did not finish in {timeout:.0f}s\n"
                    f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}") from exc
            if result.returncode != 0:
                raise NpmInstallFailed(
                    f"{' '.join(command)} exited with status {result.returncode}\n"
                    f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")
            staged_binary = staging / "node_modules" / ".bin" / binary
            if not staged_binary.exists():
                raise NpmInstallFailed(
                    f"{' '.join(command)} succeeded but installed no {staged_binary.relative_to(staging)}\n"
                    f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")
            # The .bin links are relative, so the directory can move as a whole.
            staging.rename(target)
            (target / MARKER).write_text(
                f"{package}@{version} installed in {time.monotonic() - started:.1f}s\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return executable


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def main() -> int:
    names = sys.argv[1:] or list(CLIENTS)
    for name in names:
        client = CLIENTS[name]
        started = time.monotonic()
        try:
            path = install(client.package, client.version, client.binary)
        except NpmInstallFailed as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{client.spec}: {path} ({time.monotonic() - started:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
