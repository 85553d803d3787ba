"""Stopping a local server: "stopped" means gone and its port free, so a restart on the same port never races it."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_files import ServerPaths, pid_alive
from labeling_assets.local.processes import ignores_sigterm, stop_group

# A stand-in for the server: listens on a port and ignores SIGTERM (as a server busy in a slow shutdown would).
STUBBORN = textwrap.dedent(
    """
    import signal, socket, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen()
    print("listening", flush=True)
    time.sleep(600)
    """
)


def _wait_exited(process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + 30
    while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_process_that_exited_but_was_not_reaped_is_not_alive() -> None:
    # A server whose parent exited is reaped by PID 1, which in a container may never do it: its zombie must not
    # read as a running server (stop() then waited its full 20 s grace on every such server).
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        _wait_exited(process)
        assert not pid_alive(process.pid)
    finally:
        process.wait()


@dataclass
class Stubborn:
    """A stand-in server (``STUBBORN``) recorded in a server folder as ``labelstudio start`` records one."""

    process: "subprocess.Popen[bytes]"
    port: int
    paths: ServerPaths


@pytest.fixture
def stubborn(tmp_path: Path) -> Iterator[Stubborn]:
    port = server.free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN, str(port)], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"listening\n"
        paths = ServerPaths(tmp_path / "labelstudio")
        paths.root.mkdir()
        paths.pid_file.write_text(str(process.pid))
        paths.state_file.write_text(json.dumps({"pid": process.pid, "port": port}))
        yield Stubborn(process, port, paths)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_a_server_that_ignores_sigterm_is_killed_and_its_port_is_free_when_stop_returns(stubborn: Stubborn) -> None:
    assert server.stop(stubborn.paths, timeout_s=0.5)

    assert not pid_alive(stubborn.process.pid)
    assert server.port_is_free(stubborn.port), "stop() returned while the killed server still held its port"


@pytest.mark.slow
def test_a_server_that_inherited_sigterm_as_ignored_is_killed_without_waiting_for_the_grace(stubborn: Stubborn) -> None:
    # dagster maps SIGTERM to SIGINT's handler in the process that starts the server; in a background job SIGINT is
    # ignored, so the server inherits SIGTERM ignored and every stop() spent its whole grace (20 s) before killing.
    assert ignores_sigterm(stubborn.process.pid)

    started = time.monotonic()
    assert server.stop(stubborn.paths, timeout_s=3600)  # a grace it must not spend

    assert time.monotonic() - started < 60
    assert not pid_alive(stubborn.process.pid) and server.port_is_free(stubborn.port)


# A process that ignores SIGTERM and has a child of its own (as `dagster dev` has its daemon and webserver).
STUBBORN_PARENT = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_a_child_group_that_ignores_sigterm_is_killed_with_its_own_children() -> None:
    # `scripts/demo --serve` left in the background: its `dagster dev` inherited SIGTERM ignored, and the demo's
    # exit waited for it and then left it (and its daemon) running.
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_PARENT], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())
    try:
        code = stop_group(process, timeout_s=0.5)

        assert code == -signal.SIGKILL
        deadline = time.monotonic() + 30
        while pid_alive(grandchild):  # reaped by whoever adopted it, or a zombie: either way not running
            assert time.monotonic() < deadline, "the child's own child outlived the group"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_a_child_group_that_honours_sigterm_ends_by_it() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline() == b"up\n"
    if ignores_sigterm(process.pid):
        pytest.skip("this test run ignores SIGTERM itself and its children inherit that")
    assert stop_group(process, timeout_s=30) == -signal.SIGTERM
