"""``labeling-assets`` commands, each in a process of its own, without paying the imports every time.

A fresh ``labeling-assets`` spends 5 s of CPU importing Dagster and pandas before it reads a single setting, and
a command that runs a job as much again on the definitions (torch, mlflow); a test file that runs forty commands
paid that forty times. The project reads no setting and no file at import (tests/test_import_side_effects.py), so
one Python that has done those imports can fork a child per command instead: the child takes the command's
environment, working folder, argv, stdin (/dev/null), stdout and stderr, runs ``labeling_assets.cli.main.main()``
as the installed console script does (``sys.exit(main())``) and exits as Python does (``_exit``). A test sees what
the script gives it: the exit code and the two streams. tests/cli/test_help.py runs the installed script itself,
so the entry point stays covered. A test's own script (``start_script``: tests/faults/test_sync_faults.py kills
a collect mid-way) runs the same way, as ``python SCRIPT`` would.

``python tests/forked_cli.py`` is the forking server (the ``forked_cli`` fixture of tests/conftest.py starts
it once a session): a request is one JSON line on its stdin; it answers the child's pid, then its exit status.
"""

import atexit
import contextlib
import gc
import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, NoReturn

READY = "ready"


# -- the server ------------------------------------------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the command ``request`` describes, run it, exit with its code."""
    # os.environ also sets the C environment (putenv): what the command starts inherits it.
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [request["script"], *request["argv"]]
    try:
        if request.get("run_path"):  # a test's own script, run as ``python SCRIPT`` runs it
            runpy.run_path(request["run_path"], run_name="__main__")
            code: object = 0
        else:
            from labeling_assets.cli.main import main

            code = main()  # the console script: sys.exit(main())
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    _exit(code)


def _exit(code: object) -> NoReturn:
    """What Python's exit does that a command can see: SystemExit's code (a message is printed, exit 1), the
    wait for non-daemon threads, the atexit handlers, flushed streams. Not its teardown of every module: in a
    fork of a process that holds Dagster and torch that alone took 9 s (each page it touches is copied)."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status & 0xFF)


def serve() -> None:
    # The protocol goes through copies of fds 0 and 1; nothing an import prints can reach it.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    requests = os.fdopen(os.dup(0), "r")
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 0)
    os.dup2(quiet, 1)
    os.close(quiet)
    # What every command imports, and what its runs load (the definitions: every asset, torch, mlflow).
    import labeling_assets.cli.main  # noqa: F401
    import labeling_assets.definitions  # noqa: F401

    gc.freeze()  # the imported objects: the children's collections skip them (and leave their pages shared)
    print(READY, file=answers)
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            answers.close()
            requests.close()
            _child(request)
        print(pid, file=answers)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), file=answers)


# -- the client ------------------------------------------------------------------------------------------


class ForkedCli:
    """Runs ``labeling-assets ARGS`` through one forking server; ``run`` returns what ``subprocess.run`` would."""

    def __init__(self, script: str, env: dict[str, str]) -> None:
        self.script = script
        self._env = env
        self._scratch = Path(tempfile.mkdtemp(prefix="forked-cli-"))
        self._runs = 0
        self._server: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _started(self) -> subprocess.Popen[bytes]:
        """The server, started by the first command (a test that runs none pays nothing)."""
        if self._server is None:
            self._server = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self._env,
                cwd=self._scratch,
            )
            ready = self._line(600)
            assert ready == READY, f"the forking server did not start: {ready!r}"
        return self._server

    def _line(self, timeout: float) -> str:
        assert self._server is not None and self._server.stdout is not None
        fd = self._server.stdout.fileno()
        while b"\n" not in self._buffer:
            readable, _, _ = select.select([fd], [], [], timeout)
            if not readable:
                raise TimeoutError(f"no answer from the forking server in {timeout:.0f} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the forking server exited ({self._server.wait()})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def _fork(self, request: dict[str, Any]) -> tuple[int, Path, Path]:
        """Send one request; the child's pid and the files of its stdout and stderr."""
        server = self._started()
        assert server.stdin is not None
        self._runs += 1
        out, err = self._scratch / f"{self._runs}.out", self._scratch / f"{self._runs}.err"
        request = {**request, "stdout": str(out), "stderr": str(err)}
        server.stdin.write((json.dumps(request) + "\n").encode())
        server.stdin.flush()
        return int(self._line(60)), out, err

    def run(
        self, argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        pid, out, err = self._fork({"script": self.script, "argv": argv, "env": env, "cwd": str(cwd)})
        try:
            code = int(self._line(timeout))
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            self._line(60)
            raise subprocess.TimeoutExpired([self.script, *argv], timeout) from None
        result = subprocess.CompletedProcess([self.script, *argv], code, out.read_text(), err.read_text())
        out.unlink()
        err.unlink()
        return result

    def start_script(self, script: Path, *, env: dict[str, str], cwd: Path) -> "ForkedScript":
        """``python SCRIPT`` as a forked child (a test that kills a process mid-way): its pid at once, its end
        through :meth:`ForkedScript.wait`. The server forks nothing else until it has ended."""
        pid, out, err = self._fork({"script": str(script), "run_path": str(script), "argv": [], "env": env, "cwd": str(cwd)})
        return ForkedScript(self, pid, out, err)

    def close(self) -> None:
        if self._server is not None:
            assert self._server.stdin is not None
            self._server.stdin.close()  # the server's loop ends at end of input
            try:
                self._server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        shutil.rmtree(self._scratch, ignore_errors=True)


class ForkedScript:
    """A script running in a child of the forking server (``ForkedCli.start_script``)."""

    def __init__(self, forks: ForkedCli, pid: int, out: Path, err: Path) -> None:
        self.pid, self._forks, self._files = pid, forks, (out, err)
        self.returncode: int | None = None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        """The exit code (-9: killed); the child's output files are removed."""
        if self.returncode is None:
            self.returncode = int(self._forks._line(timeout))
            for path in self._files:
                path.unlink(missing_ok=True)
        return self.returncode


if __name__ == "__main__":
    serve()
