"""``labeling-assets labelstudio start|status`` against the real local server (issue 28, finding 9).

A token file that no longer matches the token Label Studio's database holds (edited, restored from another
copy, regenerated) makes ``start`` fail at once in one line naming the file and the variable, and stop the
server it started instead of waiting out its timeout and leaving it running; ``status`` says "healthy" on a
healthy server (it used to send an empty token header and say "not answering").
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling_assets.cli.main import main
from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_files import default_paths, status

# Each test starts a Label Studio of its own (tests/server_markers.py checks the marker).
pytestmark = pytest.mark.labelstudio


@pytest.fixture
def local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[server.ServerPaths]:
    """The data folder's own local server, started as ``labelstudio start`` starts it."""
    if not server.is_installed():
        pytest.skip(f"Label Studio is not installed at {server.ls_venv()}")
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path / "data"))
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_PORT"):
        monkeypatch.delenv(name, raising=False)
    paths = default_paths()
    server.start_fresh(paths, port=server.free_port())
    try:
        yield paths
    finally:
        server.stop(paths)


def test_status_says_healthy_on_a_healthy_server(local_server: server.ServerPaths, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["labelstudio", "status"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "running, healthy" in out and str(local_server.token_file) in out


def test_start_after_the_token_file_changed_fails_fast_in_one_line_and_leaves_no_server(
    local_server: server.ServerPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    port = status(local_server).port  # type: ignore[union-attr]
    server.stop(local_server)
    local_server.token_file.write_text("0" * 40)  # not the token Label Studio's database holds

    started = time.monotonic()
    code = main(["labelstudio", "start", "--no-bootstrap", "--port", str(port), "--timeout", "120"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]

    assert code == 2, err
    assert len(lines) == 1, err
    assert str(local_server.token_file) in lines[0] and "LABEL_STUDIO_API_KEY" in lines[0], lines[0]
    assert "0" * 40 not in err
    assert elapsed < 60, f"took {elapsed:.0f} s"  # the server's start (seconds), not the 120 s timeout
    info = status(local_server)
    assert info is not None and not info.running, "the server was left running"
    assert server.port_is_free(port)


def test_start_on_a_running_server_with_a_changed_token_file_says_so(
    local_server: server.ServerPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    local_server.token_file.write_text("1" * 40)
    code = main(["labelstudio", "start", "--no-bootstrap"])
    err = capsys.readouterr().err
    assert code == 2 and str(local_server.token_file) in err and len(err.strip().splitlines()) == 1, err
    assert "still running" in err  # it was running before: the command says so rather than stopping it
