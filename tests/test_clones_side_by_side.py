"""Two checkouts on one machine share the dependency venv but each runs its own code and data folder.

Before: scripts/setup.sh re-pointed the shared venv's editable install at whichever clone sourced it last,
so a shell set up in clone A silently imported clone B's code after B was set up.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _clone(target: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)], check=True)
    return target


def _shell(script: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"LABELING_ASSETS_HOME", "PYTHONPATH", "DAGSTER_HOME"}}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.slow
def test_a_shell_set_up_in_one_clone_keeps_running_that_clone_after_another_clone_is_set_up(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("this test clones the repository: it needs git and a git checkout")
    a, b = _clone(tmp_path / "a"), _clone(tmp_path / "b")
    probe = (
        "python -c 'import labeling_assets, labeling_assets.env as c; "
        "print(labeling_assets.__file__); print(c.data_dir())'"
    )
    out = _shell(
        f"source {a}/scripts/setup.sh >/dev/null 2>&1 && "
        f"(source {b}/scripts/setup.sh >/dev/null 2>&1 && {probe}) && {probe} && "
        "labeling-assets --help >/dev/null && echo cli-ok"
    )
    in_b_file, in_b_data, in_a_file, in_a_data, cli = out.splitlines()[-5:]
    assert Path(in_b_file).is_relative_to(b) and Path(in_b_data) == b / "data"
    assert Path(in_a_file).is_relative_to(a), "clone A's shell runs clone B's code"
    assert Path(in_a_data) == a / "data"
    assert cli == "cli-ok"
