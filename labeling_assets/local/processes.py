"""Stopping a child process group for good: SIGTERM, a bounded wait, then SIGKILL.

A child started with ``start_new_session=True`` leads its own process group, so its own children (the daemon and
the webserver of ``dagster dev``) go with it. SIGTERM alone is not enough: a process started from a background job
inherits SIGINT ignored, and dagster maps SIGTERM to SIGINT's handler, so such a child ignores SIGTERM.
"""

import contextlib
import os
import signal
import subprocess


def stop_group(process: "subprocess.Popen[bytes]", *, timeout_s: float = 30.0) -> int:
    """Stop ``process`` and its group; its exit code (negative: the signal that ended it)."""
    if process.poll() is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
