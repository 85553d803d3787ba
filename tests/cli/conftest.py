"""The CLI tests' commands: ``labeling-assets`` forked from one Python that imported it once (tests/forked_cli.py)."""

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.forked_cli import ForkedCli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def forked_cli() -> Iterator[ForkedCli]:
    script = shutil.which("labeling-assets", path=str(Path(sys.executable).parent))
    assert script, "labeling-assets is not installed next to this Python: pip install -e ."
    # The server's own environment only serves its imports (which read none of it): a throwaway data folder,
    # Dagster home and matplotlib folder, so nothing it does lands in the developer's.
    home = Path(tempfile.mkdtemp(prefix="forked-cli-home-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_", "LABELING_ASSETS_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=str(REPO),
        LABELING_ASSETS_HOME=str(home / "data"),
        DAGSTER_HOME=str(home),
        MPLCONFIGDIR=str(home / "matplotlib"),
    )
    forks = ForkedCli(script, env)
    yield forks
    forks.close()
    shutil.rmtree(home, ignore_errors=True)
