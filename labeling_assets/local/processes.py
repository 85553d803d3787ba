"""Stopping a child process group for good: SIGTERM, a bounded wait, then SIGKILL.

A child started with ``start_new_session=True`` leads its own process group, so its own children (the daemon and
the webserver of ``dagster dev``) go with it. SIGTERM alone is not enough: a process started from a background job
inherits SIGINT ignored, and dagster maps SIGTERM to SIGINT's handler, so such a child ignores SIGTERM.
"""

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def ignores_sigterm(pid: int) -> bool:
    """Whether ``pid`` ignores SIGTERM (Linux: the SigIgn mask in /proc; False where that cannot be read)."""
    try:
        status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    ignored = next((line.split()[1] for line in status_lines if line.startswith("SigIgn:")), "0")
    return bool(int(ignored, 16) >> (signal.SIGTERM - 1) & 1)


def stop_group(process: "subprocess.Popen[bytes]", *, timeout_s: float = 30.0) -> int:
    """Stop ``process`` and its group; its exit code (negative: the signal that ended it)."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        # One that ignores SIGTERM would only spend the wait.
        return process.wait(0 if ignores_sigterm(process.pid) else timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
