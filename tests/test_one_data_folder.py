"""One source of configuration (issue 27, item 4): every file the project writes lies in one data folder, and
only ``labeling_assets/env.py`` reads the environment.

The flow runs as a person runs it, with only ``LABELING_ASSETS_HOME`` set (and the Label Studio installation
named): ``labeling-assets ingest`` on a tiny source (a real Dagster run: the store, raw copies, the instance's
storage and compute logs), ``labeling-assets store backup``, a local Label Studio started and stopped for the
data folder, and MLflow's local store. Then it lists what was written: under a fresh HOME, TMPDIR and working
folder, and in the repository checkout (its ``./data`` included), and finds nothing outside the data folder.
"""

import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from labeling_assets.local import labelstudio as server

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]  # commands in a fresh Python; a local Label Studio

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "labeling_assets"
# Core never imports env.py (it imports no Dagster layer): these hand the environment on to a child process
# (pg_dump, torchrun, git and dvc) or read torchrun's own protocol variables (RANK, WORLD_SIZE), and write no file.
CORE_CHILD_PROCESS_ENVIRONMENT = {"core/store/backup.py", "core/training/launch.py", "core/training/distributed.py",
                                  "core/dataset/dvc.py"}  # fmt: skip
# Caches, lock files and the bytecode Python writes beside the code: not the project's files.
NOT_WRITTEN_BY_THE_PROJECT = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git")


# MLflow as the trained_model asset uses it: a run in the project's experiment (created here) with an artifact.
MLFLOW_RUN_WITH_AN_ARTIFACT = """
from labeling_assets.resources.mlflow import MLflowResource
mlflow = MLflowResource()
with mlflow.start_run(run_name="one-data-folder"):
    mlflow.log_artifact_bytes("note.txt", b"an artifact")
mlflow.registered_versions()
"""


def environment_readers() -> dict[str, list[int]]:
    """Module (relative path) -> the lines where it reads ``os.environ`` or calls ``os.getenv``/``os.putenv``."""
    found: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        lines = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "putenv", "environb")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ]
        if lines:
            found[str(path.relative_to(PACKAGE))] = lines
    return found


def test_only_env_py_reads_the_environment() -> None:
    readers = environment_readers()
    assert "env.py" in readers  # the walker finds what it looks for
    assert set(readers) - {"env.py"} - CORE_CHILD_PROCESS_ENVIRONMENT == set(), readers


def written_since(folder: Path, started: float) -> list[Path]:
    if not folder.exists():
        return []
    out = []
    for path in folder.rglob("*"):
        if any(part in NOT_WRITTEN_BY_THE_PROJECT for part in path.parts) or path.suffix == ".pyc":
            continue
        try:
            if not path.is_dir() and path.lstat().st_mtime >= started:
                out.append(path)
        except FileNotFoundError:
            continue
    return out


def test_setting_only_the_data_folder_keeps_every_written_file_inside_it(tmp_path: Path) -> None:
    data, home, tmp, cwd, source = (tmp_path / name for name in ("data", "home", "tmp", "cwd", "photos"))
    for folder in (home, tmp, cwd, source):
        folder.mkdir()
    for value in range(3):
        Image.new("L", (8, 8), color=value * 40).save(source / f"{value}.png")
        os.utime(source / f"{value}.png", (time.time() - 3600, time.time() - 3600))  # written before the flow
    keep = ("PATH", "LANG", "LC_ALL")
    environment = {k: v for k, v in os.environ.items() if k in keep}
    environment.update(
        LABELING_ASSETS_HOME=str(data),
        HOME=str(home),
        TMPDIR=str(tmp),
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
        LABEL_STUDIO_VENV=str(server.ls_venv()),  # where Label Studio is installed: read, never written
        LABELING_ASSETS_IMAGE_SOURCE=str(source),  # what to ingest: read, never written
    )
    command = shutil.which("labeling-assets", path=str(Path(sys.executable).parent))
    assert command is not None
    port = server.free_port()
    steps = [
        [command, "ingest"],
        [command, "store", "backup"],
        [sys.executable, "-c", MLFLOW_RUN_WITH_AN_ARTIFACT],
    ]
    if server.is_installed():
        steps.append([sys.executable, "-c", "from labeling_assets.local import labelstudio as s; "
                      f"s.start_fresh(s.default_paths(), port={port}); s.stop()"])  # fmt: skip
    started = time.time() - 1  # mtimes have a coarse clock on some filesystems
    for step in steps:
        proc = subprocess.run(step, env=environment, cwd=cwd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (step[1:], proc.stdout[-2000:], proc.stderr[-2000:])

    # tests/ is the suite's own (its screenshots): tests running beside this one in other workers write there.
    outside = [
        p
        for folder in (home, tmp, cwd, source, REPO)
        for p in written_since(folder, started)
        if not p.is_relative_to(REPO / "tests")
    ]
    assert outside == [], f"written outside the data folder {data}: {outside}"
    written = {p.relative_to(data).parts[0] for p in written_since(data, started)}
    expected = {"labels.db", "raw", "backups", "dagster", "mlflow"} | ({"labelstudio"} if server.is_installed() else set())
    assert expected <= written, written
