"""`make bench-peers` when LiteLLM cannot be installed: it says why (the failing step and pip's last lines), and the
command exits non-zero."""

from pathlib import Path

import pytest

from switchboard_stack import bench_peers


def test_an_install_that_fails_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A requirement pip refuses before looking anything up: no index is asked.
    monkeypatch.setattr(bench_peers, "LITELLM", "litellm[proxy]===not a version!")
    with pytest.raises(bench_peers.PeerUnavailable) as raised:
        bench_peers.install(tmp_path / "cache")
    message = str(raised.value)
    assert "pip install" in message and "failed" in message and "install.log" in message
    assert not (tmp_path / "cache" / "litellm-venv" / "bin" / "litellm").exists()


def test_the_command_exits_non_zero_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def unavailable(cache: Path = tmp_path) -> Path:
        raise bench_peers.PeerUnavailable("no network")

    monkeypatch.setattr(bench_peers, "install", unavailable)
    monkeypatch.setattr("sys.argv", ["bench_peers", "--json", str(tmp_path / "out.json")])
    with pytest.raises(SystemExit) as exited:
        bench_peers.main()
    assert exited.value.code == 1
    assert "LiteLLM is not available: no network" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
