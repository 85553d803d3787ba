"""``source scripts/setup.sh`` as README says, from a person's interactive shell.

Issue 26: it left ``set -euo pipefail`` in that shell, so the next failing command closed the terminal.
"""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_sourcing_setup_in_an_interactive_shell_leaves_its_options_and_puts_the_commands_on_path() -> None:
    probe = (
        f"source {REPO}/scripts/setup.sh >/dev/null 2>&1; "
        "set -o | grep -E '^(errexit|nounset|pipefail)[[:space:]]'; "
        "command -v dagster labeling-assets; false; echo 'still here'"
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i", "-c", probe], capture_output=True, text=True, timeout=900, cwd=REPO
    )
    options = dict(line.split() for line in proc.stdout.splitlines() if line.split()[0] in ("errexit", "nounset", "pipefail"))
    assert options == {"errexit": "off", "nounset": "off", "pipefail": "off"}, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("still here")  # a failing command did not end the shell
    paths = [line for line in proc.stdout.splitlines() if line.startswith("/")]
    assert [Path(p).name for p in paths] == ["dagster", "labeling-assets"]


def test_a_script_that_sources_setup_keeps_strict_mode() -> None:
    probe = f"source {REPO}/scripts/setup.sh >/dev/null 2>&1; set -o | grep -E '^errexit[[:space:]]'"
    proc = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.stdout.split() == ["errexit", "on"], proc.stdout + proc.stderr
