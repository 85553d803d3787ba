"""A configuration or connection error is one or two lines naming what is wrong and where, never a trace.

Each case runs the ``labeling-assets`` command in a process of its own (forked from one that imported it once:
tests/forked_cli.py; tests/cli/test_help.py runs the installed script) against real parts (the PostgreSQL
server on 127.0.0.1:5432, the integration tests' real Label Studio, a port where nothing listens) and checks
what a person would see: at most two lines, the cause (database name, host:port, URL, path), the exit code
(2 configuration, 3 unreachable) and no password or token anywhere in the output. The asset-level half: a
run against a misconfigured resource fails with a ``dg.Failure`` whose description is that same line.
"""

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.assets.collect import annotations
from labeling_assets.assets.ingest import raw_images
from labeling_assets.assets.prelabel import prelabels
from labeling_assets.constants import REPO_ROOT
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.mlflow import MLflowResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.forked_cli import ForkedCli
from tests.labelstudio_server import LabelStudioServer

# Most cases run the installed command in a fresh Python.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MISSING_DB = "does_not_exist"
MISSING_DB_URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{MISSING_DB}"
# Every variable that points the command somewhere; each test sets the ones it means.
SETTINGS = (
    "LABEL_STORE_URL",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "LABEL_STUDIO_PROJECT",
    "LABELING_ASSETS_IMAGE_SOURCE",
    "LABELING_ASSETS_DEPLOYMENT",
    "LABELING_ASSETS_DEBUG",
    "MLFLOW_TRACKING_URI",
)


def free_port() -> int:
    """A local port where nothing listens (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_forks: list[ForkedCli] = []  # the session's forking server (tests/forked_cli.py), set for each test below


@pytest.fixture(autouse=True)
def _commands_fork_from_one_python(forked_cli: ForkedCli) -> Iterator[None]:
    _forks.append(forked_cli)
    yield
    _forks.remove(forked_cli)


def cli(tmp_path: Path, *args: str, cwd: Path | None = None, **settings: str) -> subprocess.CompletedProcess[str]:
    """``labeling-assets ARGS`` in a process of its own with a fresh data folder and Dagster home, and only
    ``settings`` set: a fork of a Python that imported the command once (tests/forked_cli.py), not a fresh
    interpreter that spends seconds on Dagster's and torch's imports before the first line of the command."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(
        LABELING_ASSETS_HOME=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "dagster"), PYTHONPATH=str(REPO)
    )
    (tmp_path / "dagster").mkdir(exist_ok=True)
    # An instance of its own; without dagster.yaml (and telemetry off) Dagster prints notices of several lines.
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Unset, the image source is the demo: ingest would render its 1,797 digits (importing scikit-learn) before it
    # checks the store, 20-45 s a command. An empty folder instead; the image source's own cases set theirs.
    (tmp_path / "no-images").mkdir(exist_ok=True)
    env["LABELING_ASSETS_IMAGE_SOURCE"] = str(tmp_path / "no-images")
    env.update(settings)
    return _forks[-1].run(list(args), env=env, cwd=cwd or tmp_path, timeout=300)


def said(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Every non-blank line the command printed, stdout and stderr together."""
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def assert_clear_error(proc: subprocess.CompletedProcess[str], code: int, *names: str, secrets: tuple[str, ...] = ()) -> str:
    """At most two lines, on stderr, naming every one of ``names``; exit ``code``; no secret anywhere."""
    lines = said(proc)
    assert proc.returncode == code, (proc.returncode, lines)
    assert 1 <= len(lines) <= 2, "\n".join(lines)
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    for name in names:
        assert name in message, (name, message)
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    return message


# -- the label store -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["store", "status"], ["store", "migrate"], ["ingest"]], ids=" ".join)
def test_a_missing_postgresql_database_is_named_in_one_line_and_exits_2(
    tmp_path: Path, command: list[str], pg_databases: object
) -> None:
    proc = cli(tmp_path, *command, LABEL_STORE_URL=MISSING_DB_URL)
    message = assert_clear_error(proc, 2, f"'{MISSING_DB}'", "does not exist", "127.0.0.1:5432")
    assert message.startswith(f"labeling-assets {' '.join(command)}: label store:")


@pytest.mark.parametrize("command", [["store", "status"], ["ingest"]], ids=" ".join)
def test_a_wrong_port_says_no_server_answers_there_and_exits_3(tmp_path: Path, command: list[str]) -> None:
    port = free_port()
    proc = cli(tmp_path, *command, LABEL_STORE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/labels")
    assert_clear_error(proc, 3, f"127.0.0.1:{port}", "no PostgreSQL server answers", "Connection refused")


@pytest.mark.parametrize("reachable", [True, False], ids=["database-missing", "port-closed"])
def test_a_store_password_never_appears_in_the_output(tmp_path: Path, reachable: bool, pg_databases: object) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    port = 5432 if reachable else free_port()
    url = f"postgresql+psycopg2://postgres:{secret}@127.0.0.1:{port}/{MISSING_DB}"
    for command in (["store", "status"], ["ingest"]):
        proc = cli(tmp_path, *command, LABEL_STORE_URL=url)
        message = assert_clear_error(proc, 2 if reachable else 3, f"127.0.0.1:{port}", secrets=(secret,))
        assert "postgres:***@" in message  # the URL is shown, its password hidden
    debug = cli(tmp_path, "--debug", "store", "status", LABEL_STORE_URL=url)
    assert "Traceback" in debug.stderr and secret not in debug.stdout + debug.stderr


def test_an_unusable_store_url_is_a_configuration_error_without_its_password(tmp_path: Path) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    for url in (f"postgres://u:{secret}@db/labels", f"postgresql+psycopg2://u:{secret}@db:notaport/labels"):
        proc = cli(tmp_path, "store", "status", LABEL_STORE_URL=url)
        assert_clear_error(proc, 2, "not a usable SQLAlchemy URL", "u:***@db", secrets=(secret,))


def test_a_sqlite_store_whose_folder_cannot_be_made_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli(tmp_path, "store", "status", LABEL_STORE_URL=f"sqlite:///{blocker}/labels.db")
    assert_clear_error(proc, 2, f"{blocker}/labels.db", "cannot open the SQLite file")


# -- Label Studio ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["labelstudio", "bootstrap"], ["labelstudio", "push"], ["simulate-crowd"]], ids=" ".join)
def test_a_label_studio_url_where_nothing_listens_is_named_and_exits_3(tmp_path: Path, command: list[str]) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    url = f"http://127.0.0.1:{free_port()}"
    proc = cli(tmp_path, *command, LABEL_STUDIO_URL=url, LABEL_STUDIO_API_KEY=token)
    assert_clear_error(proc, 3, f"Label Studio at {url} is unreachable", "LABEL_STUDIO_URL", secrets=(token,))


@pytest.mark.parametrize("command", [["labelstudio", "bootstrap"], ["labelstudio", "push"], ["labelstudio", "collect"]], ids=" ".join)
def test_a_wrong_token_against_the_real_label_studio_is_named_and_exits_2(
    tmp_path: Path, command: list[str], label_studio: LabelStudioServer
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    proc = cli(tmp_path, *command, LABEL_STUDIO_URL=label_studio.url, LABEL_STUDIO_API_KEY=wrong)
    message = assert_clear_error(proc, 2, secrets=(wrong, label_studio.token))
    assert message.endswith(f"Label Studio at {label_studio.url} rejected the API token (401): set LABEL_STUDIO_API_KEY")


def test_a_run_that_fails_with_a_dg_failure_prints_its_cause_not_a_trace(
    tmp_path: Path, label_studio: LabelStudioServer
) -> None:
    title = f"never-created-{uuid.uuid4().hex[:8]}"
    proc = cli(
        tmp_path,
        "labelstudio",
        "collect",
        LABEL_STUDIO_URL=label_studio.url,
        LABEL_STUDIO_API_KEY=label_studio.token,
        LABEL_STUDIO_PROJECT=title,
    )
    lines = [line for line in said(proc) if " - INFO - " not in line]  # progress lines may come first
    assert proc.returncode == 1, "\n".join(lines)
    assert lines == [
        f"annotations failed: Label Studio project {title!r} does not exist: materialize labeling_tasks first",
        lines[-1],
    ]
    assert lines[-1].startswith("Run ") and "failed: its log is in the Dagster UI" in lines[-1]
    assert label_studio.token not in proc.stdout + proc.stderr


def test_no_token_for_an_external_label_studio_names_the_variable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = cli(tmp_path, "labelstudio", "bootstrap", LABEL_STUDIO_URL=url)
    assert_clear_error(proc, 2, url, "LABEL_STUDIO_API_KEY")


# -- the image source ------------------------------------------------------------------------------------


def test_a_missing_image_source_folder_fails_ingest_naming_its_absolute_path(tmp_path: Path) -> None:
    proc = cli(tmp_path, "ingest", LABELING_ASSETS_IMAGE_SOURCE=str(tmp_path / "no-such-folder"))
    assert_clear_error(proc, 2, f"image source {tmp_path / 'no-such-folder'} does not exist")


def test_a_relative_image_source_is_resolved_against_the_working_folder_and_shown_absolute(tmp_path: Path) -> None:
    workdir = tmp_path / "here"
    workdir.mkdir()
    proc = cli(tmp_path, "ingest", cwd=workdir, LABELING_ASSETS_IMAGE_SOURCE="photos")
    assert_clear_error(proc, 2, f"image source {workdir / 'photos'} does not exist")


def test_an_image_source_that_is_a_file_is_not_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "one.png"
    file.write_bytes(b"\x89PNG")
    proc = cli(tmp_path, "ingest", LABELING_ASSETS_IMAGE_SOURCE=str(file))
    assert_clear_error(proc, 2, f"image source {file} is not a folder")


# -- every command --------------------------------------------------------------------------------------

# What each command says with every service misconfigured (store: no such database; Label Studio: nothing
# listening): its exit code. `labelstudio start` is left out: it starts a real server (tests/integration).
EXPECTED_EXIT = {
    ("ingest",): 2,
    ("store", "migrate"): 2,
    ("store", "status"): 2,
    ("labelstudio", "stop"): 0,  # nothing to stop: says so
    ("labelstudio", "status"): 1,  # no local server: says where it looked
    ("labelstudio", "bootstrap"): 3,
    ("labelstudio", "add-user"): 3,  # with its NAME (ARGS below)
    ("labelstudio", "push"): 2,  # the store is checked first
    ("labelstudio", "collect"): 2,
    ("simulate-crowd",): 3,
    ("demo",): 2,  # before starting Label Studio
    ("dataset", "as-of"): 2,
    ("dataset", "diff"): 2,
    ("dataset", "tag"): 2,
    ("dataset", "list"): 2,
    ("dataset", "publish"): 2,  # the store is read before the repository is touched
    ("item",): 2,
    ("item", "flag"): 2,  # with ITEM and --reason (ARGS below): the store is read first
    ("labeler", "list"): 2,  # the store is read first
    ("labeler", "pause"): 3,  # with its NAME (ARGS below): Label Studio unreachable
    ("webhooks", "serve"): 2,  # no shared secret: refuses to serve
    ("sweep",): 2,  # with the demo's grid (ARGS below): the store is named before a run starts
}
ARGS = {  # required positionals
    ("labelstudio", "add-user"): ("someone@example.org",),
    ("dataset", "as-of"): ("2026-11-20T12:00Z",),
    ("dataset", "diff"): ("v1", "v2"),
    ("dataset", "tag"): ("v1", "release"),
    ("dataset", "publish"): ("v1", "--dvc", "published"),
    ("item",): ("abc123",),
    ("item", "flag"): ("abc123", "--reason", "looks wrong"),
    ("labeler", "pause"): ("someone",),
    ("sweep",): ("--settings", str(REPO_ROOT / "docs" / "sweep-demo.toml")),
}


def test_the_table_covers_every_command() -> None:
    from tests.cli.test_help import COMMANDS

    leaves = {path for path in COMMANDS if path and not any(p[: len(path)] == path and p != path for p in COMMANDS)}
    # `store`'s, `labeler`'s and `item`'s actions are positional choices, not subcommands: the table lists some.
    covered = {path[:1] if path[0] in ("store", "labeler", "item") else path for path in EXPECTED_EXIT}
    assert leaves - {("labelstudio", "start")} == covered


@pytest.mark.parametrize("command", sorted(EXPECTED_EXIT), ids=" ".join)
def test_every_command_with_misconfigured_services_says_what_in_at_most_two_lines(
    tmp_path: Path, command: tuple[str, ...], pg_databases: object
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    proc = cli(
        tmp_path,
        *command,
        *ARGS.get(command, ()),
        LABEL_STORE_URL=MISSING_DB_URL,
        LABEL_STUDIO_URL=f"http://127.0.0.1:{free_port()}",
        LABEL_STUDIO_API_KEY=token,
    )
    lines = said(proc)
    assert proc.returncode == EXPECTED_EXIT[command], lines
    assert 1 <= len(lines) <= 2 and "Traceback" not in proc.stderr, "\n".join(lines)
    assert token not in proc.stdout + proc.stderr


# -- debug, help ----------------------------------------------------------------------------------------


def test_debug_flag_or_variable_shows_the_traceback(tmp_path: Path, pg_databases: object) -> None:
    flag = cli(tmp_path, "--debug", "store", "status", LABEL_STORE_URL=MISSING_DB_URL)
    variable = cli(tmp_path, "store", "status", LABEL_STORE_URL=MISSING_DB_URL, LABELING_ASSETS_DEBUG="1")
    for proc in (flag, variable):
        assert proc.returncode != 0
        assert "Traceback (most recent call last)" in proc.stderr
        assert "ConfigurationError" in proc.stderr and MISSING_DB in proc.stderr


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    proc = cli(tmp_path, "--help")
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    assert "Exit codes: 0 success; 1 a run or step failed" in text
    assert "2 configuration" in text and "3 a service does not answer" in text
    assert "--debug" in text and "LABELING_ASSETS_DEBUG=1" in text


# -- assets: the same line as the run's dg.Failure --------------------------------------------------------


def failure_description(result: dg.ExecuteInProcessResult, step: str) -> str:
    assert not result.success
    [event] = [e for e in result.get_step_failure_events() if e.step_key == step]
    data = event.step_failure_data
    assert data is not None and data.user_failure_data is not None, "not a dg.Failure"
    return str(data.user_failure_data.description)


def test_an_asset_run_against_a_missing_database_fails_with_the_one_line_cause(
    tmp_path: Path, pg_databases: object
) -> None:
    # An instance the test holds: the result reads events through it (an ephemeral one made inside
    # materialize() can be garbage-collected first: 'undefined DagsterInstance weakref').
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [raw_images],
        instance=instance,
        resources={
            "label_store": LabelStoreResource(url=MISSING_DB_URL),
            "image_source": ImageSourceResource(uri=str(tmp_path)),
            "project": ProjectSettings(),
        },
        raise_on_error=False,
    )
    description = failure_description(result, "raw_images")
    assert description.startswith(f"label store: PostgreSQL database '{MISSING_DB}' does not exist on 127.0.0.1:5432")
    assert "\n" not in description


def test_an_asset_run_with_a_wrong_label_studio_token_fails_with_the_one_line_cause(
    tmp_path: Path, label_studio: LabelStudioServer
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    # An instance the test holds: the result reads events through it (an ephemeral one made inside
    # materialize() can be garbage-collected first: 'undefined DagsterInstance weakref').
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [annotations],
        instance=instance,
        resources={
            "label_store": LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}"),
            "label_studio": LabelStudioResource(url=label_studio.url, api_key=wrong),
        },
        raise_on_error=False,
    )
    description = failure_description(result, "annotations")
    assert description == f"Label Studio at {label_studio.url} rejected the API token (401): set LABEL_STUDIO_API_KEY"
    assert wrong not in description


def test_an_asset_run_against_an_unreachable_mlflow_server_fails_with_the_one_line_cause(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    # An instance the test holds: the result reads events through it (an ephemeral one made inside
    # materialize() can be garbage-collected first: 'undefined DagsterInstance weakref').
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [prelabels],
        instance=instance,
        resources={
            "label_store": LabelStoreResource(url=f"sqlite:///{tmp_path / 'labels.db'}"),
            "project": ProjectSettings(),
            "mlflow": MLflowResource(tracking_uri=url),
        },
        raise_on_error=False,
    )
    description = failure_description(result, "prelabels")
    assert description.startswith(f"MLflow tracking server at {url} is unreachable (Connection refused)")


def test_the_mlflow_run_link_in_metadata_never_holds_the_tracking_servers_password() -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    resource = MLflowResource(tracking_uri=f"postgresql://mlflow:{secret}@127.0.0.1:5432/mlflow")
    link = resource.run_url("abc123")
    assert secret not in link and link == "postgresql://mlflow:***@127.0.0.1:5432/mlflow#run=abc123"
