"""Importing the definitions has no side effects: no project setting is read and no data file is touched.

Settings are read when a run or a sensor tick starts, so ``dagster dev`` started before
``labeling-assets labelstudio start`` finds the server without a restart. Each check runs in a fresh
interpreter: third-party libraries are imported first (they may read their own settings), then every read
of ``os.environ`` and every file access (open, stat, listdir, mkdir, ...) is recorded while the project
is imported.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Each case imports the package in a fresh Python.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

# The environment variables the project reads (README, Configuration).
PROJECT_VARIABLES = (
    "LABELING_ASSETS_HOME",
    "LABELING_ASSETS_DEPLOYMENT",
    "LABELING_ASSETS_IMAGE_SOURCE",
    "LABEL_STORE_URL",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "LABEL_STUDIO_PROJECT",
    "MLFLOW_TRACKING_URI",
    # the loop's thresholds (core/automation.py), read when a sensor ticks
    "LABELING_ASSETS_QUEUE_LOW_WATER",
    "LABELING_ASSETS_QUEUE_BATCH",
    "LABELING_ASSETS_RETRAIN_MIN_NEW_ITEMS",
    "LABELING_ASSETS_RETRAIN_CHANGED_SHARE",
    "LABELING_ASSETS_BACKUP_KEEP",
)

# Runs in the child: spies on os.environ and on file access, then executes the code under test.
HARNESS = textwrap.dedent(
    """
    import json, os, sys, traceback
    import dagster, pydantic, requests, sqlalchemy, numpy, pandas  # third-party reads are theirs

    WATCHED = set(json.loads(sys.argv[1]))
    DATA = os.path.realpath(sys.argv[2])
    found = []

    def where():
        frames = [f for f in traceback.extract_stack()[:-2] if "labeling_assets" in f.filename
                  or f.filename.endswith("definitions.py") or f.filename == "<string>"]
        return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"

    class SpyEnviron(type(os.environ)):
        def __getitem__(self, key):
            if key in WATCHED and asked_by_us():
                found.append(f"env {key} read at {where()}")
            return super().__getitem__(key)

    def asked_by_us():
        # The reader is project code, or Dagster on its behalf (EnvVar); a library copying the whole
        # environment for itself (fsspec does at import) asks for no setting of ours.
        frame = sys._getframe(2)
        while frame and frame.f_code.co_filename.endswith(("os.py", "<frozen os>", "_collections_abc.py", "<frozen _collections_abc>")):
            frame = frame.f_back
        name = frame.f_code.co_filename if frame else ""
        return "site-packages" not in name or f"{os.sep}dagster{os.sep}" in name

    def touches_data(path):
        try:
            text = os.fsdecode(path) if not isinstance(path, int) else ""
        except TypeError:
            return False
        return bool(text) and (os.path.abspath(text) + os.sep).startswith(DATA + os.sep)

    def audit(event, args):
        if event in ("open", "os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rename") and args:
            if touches_data(args[0]):
                found.append(f"{event} {args[0]} at {where()}")

    def spy(name):
        real = getattr(os, name)
        def wrapper(path, *args, **kwargs):
            if touches_data(path):
                found.append(f"os.{name} {path} at {where()}")
            return real(path, *args, **kwargs)
        setattr(os, name, wrapper)

    os.environ.__class__ = SpyEnviron
    for name in ("stat", "lstat", "access"):
        spy(name)
    sys.addaudithook(audit)
    exec(sys.argv[3])
    print("FINDINGS " + json.dumps(found))
    """
)


def findings(code: str, tmp_path: Path) -> list[str]:
    """What ``code`` read or touched, run in a fresh interpreter whose data folder holds a local server."""
    data = tmp_path / "data"
    server = data / "labelstudio"
    server.mkdir(parents=True)
    # The files `labeling-assets labelstudio start` leaves behind: importing must not look at them.
    (server / "server.json").write_text(json.dumps({"pid": 0, "port": 18080}))
    (server / "api_token").write_text("0123456789abcdef")
    # Only the data folder is set: the local defaults are what an import would go looking for. A read of an
    # unset variable is seen too (os.environ.get asks for it by name).
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path), "LABELING_ASSETS_HOME": str(data)}
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, json.dumps(PROJECT_VARIABLES), str(data), code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("FINDINGS "))
    return list(json.loads(line.removeprefix("FINDINGS ")))


def test_importing_the_definitions_reads_no_setting_and_touches_no_data_file(tmp_path: Path) -> None:
    assert findings("import definitions", tmp_path) == []


def test_importing_the_cli_reads_no_setting_and_touches_no_data_file(tmp_path: Path) -> None:
    assert findings("import labeling_assets.cli.main", tmp_path) == []


def test_the_spy_sees_a_setting_read_and_a_token_file_read(tmp_path: Path) -> None:
    """The harness itself can fail: a planted environment read and token read are both reported."""
    planted = (
        "import os\n"
        "os.environ.get('LABEL_STUDIO_URL')\n"
        "open(os.path.join(os.environ['LABELING_ASSETS_HOME'], 'labelstudio', 'api_token')).read()\n"
        "os.path.exists(os.path.join(os.environ['LABELING_ASSETS_HOME'], 'labelstudio', 'server.json'))\n"
    )
    found = findings(planted, tmp_path)
    assert any(f.startswith("env LABEL_STUDIO_URL read") for f in found), found
    assert any(f.startswith("env LABELING_ASSETS_HOME read") for f in found), found
    assert any(f.startswith("open ") and f.split()[1].endswith("api_token") for f in found), found
    assert any(f.startswith("os.stat ") and "server.json" in f for f in found), found


@pytest.mark.parametrize("module", ["labeling_assets.definitions", "labeling_assets.cli.main"])
def test_loading_the_code_location_or_the_cli_does_not_load_torch(module: str) -> None:
    """Every run process, sensor evaluation and CLI command loads the code location; torch and torchvision took
    over half of that (41 s of 43 s under load 6, against 16 s without them): only steps that train or predict
    import them."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
