"""Faults during a Label Studio sync, against a real Label Studio and real SQLite and PostgreSQL stores.

Each test builds a small project (tasks with annotations), syncs it, changes Label Studio (a new
annotation, an edit, a deletion), injects one fault into the next collect, recovers the way the pipeline
would (the next run), and asserts the store equals Label Studio: every annotation Label Studio holds is live
in the store exactly once with its current label, versions are contiguous with no repeated content, every
other stored annotation ends in a tombstone, and no deleted annotation is live.

Faults: kill -9 of a collect process (before the export, after the export before the commit, mid-commit; each a
fork of one Python that imported the project once, tests/forked_cli.py),
Label Studio stopped mid-export, the connection cut mid-response, duplicate and overlapping polls.
"""

import datetime as dt
import hashlib
import os
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from labeling_assets.assets.collect import annotations
from labeling_assets.core.labelstudio.config import choice_result
from labeling_assets.core.labelstudio.tasks import QueuedItem, task_payload
from labeling_assets.core.store.heads_schema import sync_cursors_table
from labeling_assets.core.store.incremental_sync import sync_cursor
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table, utcnow
from labeling_assets.local import labelstudio as server
from labeling_assets.local.run_launcher import reap_dead_runs
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioError, LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource
from tests.faults.conftest import CuttingProxy
from tests.forked_cli import ForkedCli
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "bird"]
LABELERS = ["fault_a", "fault_b", "fault_c"]
N_TASKS = 4


@dataclass
class Project:
    ls: LabelStudioServer
    store: LabelStore
    title: str
    project_id: int
    task_ids: list[int]
    users: dict[str, int]

    @property
    def client(self) -> LabelStudioClient:
        return self.ls.client()

    def resource(self, url: str | None = None) -> LabelStudioResource:
        return LabelStudioResource(url=url or self.ls.url, api_key=self.ls.token, project_title=self.title)

    def live_in_label_studio(self) -> dict[int, Any]:
        return {
            a.ls_annotation_id: a.label
            for a in self.client.export_annotations(self.project_id)
            if not a.was_cancelled and a.label is not None
        }

    def change_label_studio(self) -> None:
        """A new annotation, an edited one and a deleted one since the last sync."""
        live = sorted(self.live_in_label_studio())
        self.client.update_annotation(live[0], "bird")
        self.client.delete_annotation(live[1])
        self.client.create_annotation(self.task_ids[-1], "dog", completed_by=self.users["fault_c"])


def build_project(ls: LabelStudioServer, store: LabelStore) -> Project:
    """N_TASKS tasks, two annotations each, imported in one call, and the store's items and tasks to match."""
    client = ls.client()
    title = f"faults-{uuid.uuid4().hex[:8]}"
    users = client.ensure_users(LABELERS)
    project_id = client.ensure_project(title=title, classes=CLASSES, overlap=3)
    items = [hashlib.sha256(f"{title}-{i}".encode()).hexdigest() for i in range(N_TASKS)]
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {"item_id": i, "uri": f"/f/{i}.png", "source_path": f"{i}.png", "n_bytes": 1,
                 "ingested_at": utcnow(), "status": "active"}  # fmt: skip
                for i in items
            ],
        )
    queue = [QueuedItem(item_id=i, is_gold=False, position=n, priority=1.0, probs=None, model_version=None)
             for n, i in enumerate(items)]  # fmt: skip
    reserve_tasks(store, project_id, queue, overlap=3)
    tasks = []
    for n, item_id in enumerate(items):
        task = task_payload(item_id, f"/f/{item_id}.png")
        task["annotations"] = [
            {"result": choice_result(CLASSES[(n + k) % 3]), "completed_by": users[LABELERS[k]], "lead_time": 1.5}
            for k in range(2)
        ]
        tasks.append(task)
    client.import_tasks(project_id, tasks)
    by_item = client.task_ids_by_item(project_id)
    link_tasks(store, project_id, by_item)
    return Project(ls, store, title, project_id, [by_item[i] for i in items], users)


def collect(
    project: Project, url: str | None = None, instance: dg.DagsterInstance | None = None, **config: Any
) -> dg.ExecuteInProcessResult:
    """One materialization of the real annotations asset (what collect_job runs first); ``full=True``: the full
    export path (the first sync, the reconciliation), else changed tasks only once a first sync committed."""
    return dg.materialize(
        [annotations],
        instance=instance,
        resources={"label_store": LabelStoreResource(url=project.store.url), "label_studio": project.resource(url)},
        run_config={"ops": {"annotations": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def stored_rows(store: LabelStore) -> list[dict[str, Any]]:
    a = annotations_table
    return store.fetch(sa.select(a).order_by(a.c.ls_annotation_id, a.c.version))


def assert_store_equals_label_studio(project: Project) -> None:
    remote = project.live_in_label_studio()
    history: dict[int, list[dict[str, Any]]] = {}
    for row in stored_rows(project.store):
        history.setdefault(int(row["ls_annotation_id"]), []).append(row)
    for ls_id, versions in history.items():
        assert [v["version"] for v in versions] == list(range(1, len(versions) + 1)), ls_id
        hashes = [v["content_hash"] for v in versions]
        assert all(a != b for a, b in zip(hashes, hashes[1:], strict=False)), f"{ls_id}: a version repeats"
    latest = {ls_id: versions[-1] for ls_id, versions in history.items()}
    live = {ls_id: row["label"] for ls_id, row in latest.items() if not row["deleted"]}
    assert live == remote  # every Label Studio annotation live once, with its current label; nothing else live
    assert all(latest[ls_id]["deleted"] for ls_id in set(latest) - set(remote))  # the deleted: tombstones


@pytest.fixture
def project(label_studio: LabelStudioServer, store: LabelStore) -> Project:
    proj = build_project(label_studio, store)
    assert collect(proj).success
    assert_store_equals_label_studio(proj)
    proj.change_label_studio()
    return proj


# --- kill -9 of a collect subprocess ---------------------------------------------------------------

KILLABLE_COLLECT = textwrap.dedent(
    """
    import os, time
    import dagster as dg
    import sqlalchemy as sa
    from labeling_assets.assets.collect import annotations
    from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource
    from labeling_assets.resources.store import LabelStoreResource

    POINT = os.environ["KILL_POINT"]

    def park(point):
        if point == POINT:  # tell the test where we are, then wait for its kill -9
            with open(os.environ["PARKED_FILE"], "w") as f:
                f.write(point)
            time.sleep(600)

    export = LabelStudioClient.export_annotations
    def parked_export(self, project_id):
        park("before_export")
        out = export(self, project_id)
        park("after_export")
        return out
    LabelStudioClient.export_annotations = parked_export

    inserted = []
    @sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO ANNOTATIONS"):
            inserted.append(statement)

    # PostgreSQL writes annotations with COPY on the driver's cursor, which SQLAlchemy's events never see.
    from labeling_assets.core.store import annotation_sync
    bulk_insert = annotation_sync.bulk_insert
    def seen_bulk(conn, table, rows):
        bulk_insert(conn, table, rows)
        if table.name == "annotations" and rows:
            inserted.append("COPY annotations")
    annotation_sync.bulk_insert = seen_bulk

    @sa.event.listens_for(sa.engine.Engine, "commit")
    def committing(conn):  # fires before the database commits: the rows are written, not yet committed
        if inserted:
            park("mid_commit")

    with dg.DagsterInstance.get() as instance:
        dg.materialize(
            [annotations],
            instance=instance,
            run_config={"ops": {"annotations": {"config": {"full": True}}}},
            resources={
                "label_store": LabelStoreResource(url=os.environ["STORE_URL"]),
                "label_studio": LabelStudioResource(
                    url=os.environ["LS_URL"], api_key=os.environ["LS_TOKEN"], project_title=os.environ["LS_TITLE"]
                ),
            },
        )
    """
)


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the project's dagster.yaml (its run launcher and monitoring)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    for section in ("storage", "local_artifact_storage", "compute_logs"):  # absolute: the test's own folder
        config[section] = yaml.safe_load(
            yaml.safe_dump(config[section]).replace("base_dir: dagster", f"base_dir: {home / 'data'}")
        )
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def wait_for(what: str, condition: Callable[[], object], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s:.0f}s: {what}")


@pytest.mark.parametrize("point", ["before_export", "after_export", "mid_commit"])
def test_a_collect_killed_at_any_point_writes_nothing_and_the_next_run_catches_up(
    project: Project, dagster_home: Path, tmp_path: Path, point: str, forked_cli: ForkedCli
) -> None:
    before = stored_rows(project.store)
    parked = tmp_path / "parked"
    script = tmp_path / "killable_collect.py"
    script.write_text(KILLABLE_COLLECT)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "KILL_POINT": point,
        "PARKED_FILE": str(parked),
        "STORE_URL": project.store.url,
        "LS_URL": project.ls.url,
        "LS_TOKEN": project.ls.token,
        "LS_TITLE": project.title,
        "PYTHONPATH": str(REPO),
    }
    proc = forked_cli.start_script(script, env=env, cwd=tmp_path)  # a process of its own, without the imports
    try:
        wait_for(f"the collect subprocess reaches {point}", parked.exists)
    finally:
        proc.kill()
        proc.wait(10)
    assert stored_rows(project.store) == before  # nothing of the killed run is in the store
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # what the killed process left behind
        assert reap_dead_runs(instance) == [run.run_id]  # the next CLI run (or run monitoring) fails it
        assert collect(project, instance=instance).success
    assert_store_equals_label_studio(project)
    assert len(stored_rows(project.store)) == len(before) + 3  # one new, one edit, one tombstone


# --- incremental sync: killed between pages, deleted tasks, drift ----------------------------------

KILLED_BETWEEN_PAGES = textwrap.dedent(
    """
    import os, time
    import dagster as dg
    from labeling_assets.assets.collect import annotations
    from labeling_assets.core.store import incremental_sync
    from labeling_assets.resources.labelstudio import LabelStudioResource
    from labeling_assets.resources.store import LabelStoreResource

    page = incremental_sync.sync_changed_tasks
    def then_park(*args, **kwargs):
        report = page(*args, **kwargs)  # this page is committed
        with open(os.environ["PARKED_FILE"], "w") as f:
            f.write(str(report.written))
        time.sleep(600)  # the test's kill -9 lands before the next page
    incremental_sync.sync_changed_tasks = then_park

    dg.materialize(
        [annotations],
        resources={
            "label_store": LabelStoreResource(url=os.environ["STORE_URL"]),
            "label_studio": LabelStudioResource(
                url=os.environ["LS_URL"], api_key=os.environ["LS_TOKEN"], project_title=os.environ["LS_TITLE"]
            ),
        },
        run_config={"ops": {"annotations": {"config": {"page_size": 1}}}},
    )
    """
)


def test_an_incremental_sync_killed_between_pages_loses_nothing_and_duplicates_nothing(
    project: Project, tmp_path: Path, forked_cli: ForkedCli
) -> None:
    before = stored_rows(project.store)
    cursor = sync_cursor(project.store, project.project_id)
    parked = tmp_path / "parked"
    script = tmp_path / "killed_between_pages.py"
    script.write_text(KILLED_BETWEEN_PAGES)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "PARKED_FILE": str(parked),
        "STORE_URL": project.store.url,
        "LS_URL": project.ls.url,
        "LS_TOKEN": project.ls.token,
        "LS_TITLE": project.title,
        "PYTHONPATH": str(REPO),
    }
    proc = forked_cli.start_script(script, env=env, cwd=tmp_path)
    try:
        wait_for("the first page of changed tasks is committed", parked.exists)
    finally:
        proc.kill()
        proc.wait(10)
    # The first page (one changed task: an edit and a deletion) is in; the cursor did not move past the rest.
    assert len(stored_rows(project.store)) == len(before) + int(parked.read_text()) > len(before)
    assert sync_cursor(project.store, project.project_id).changes_since == cursor.changes_since
    result = collect(project)  # the rerun reads the committed page again and writes it nothing twice
    assert result.success
    [mat] = result.asset_materializations_for_node("annotations")
    assert mat.metadata["sync_mode"].value == "incremental"
    assert_store_equals_label_studio(project)
    assert len(stored_rows(project.store)) == len(before) + 3  # one new, one edit, one tombstone: once each


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_incremental_sync_ends_a_deleted_task_and_the_reconciliation_reports_drift(project: Project) -> None:
    assert collect(project).success  # the changes of the fixture, incrementally
    assert_store_equals_label_studio(project)
    project.client.request("DELETE", f"/api/tasks/{project.task_ids[1]}/")  # no updated_at tells of this one
    result = collect(project)
    [mat] = result.asset_materializations_for_node("annotations")
    assert mat.metadata["sync_mode"].value == "incremental" and mat.metadata["tasks_gone"].value == 1
    assert_store_equals_label_studio(project)
    # A change the incremental sync cannot see (its cursor moved past it by hand) is drift the full export repairs.
    live = sorted(project.live_in_label_studio())
    project.client.update_annotation(live[-1], "cat" if project.live_in_label_studio()[live[-1]] != "cat" else "dog")
    with project.store.begin() as conn:
        conn.execute(sa.update(sync_cursors_table).values(changes_since=utcnow() + dt.timedelta(days=1)))
    result = collect(project)
    assert result.asset_materializations_for_node("annotations")[0].metadata["updated"].value == 0
    with project.store.begin() as conn:  # as if an incremental scan had covered the edit, and missed it
        conn.execute(sa.update(sync_cursors_table).values(changes_since=utcnow() + dt.timedelta(minutes=2)))
    result = collect(project, full=True)
    [mat] = result.asset_materializations_for_node("annotations")
    assert mat.metadata["sync_mode"].value == "full" and mat.metadata["drift_repaired"].value == 1
    assert_store_equals_label_studio(project)


# --- Label Studio and the network failing mid-export ---------------------------------------------


# These two Label Studio-side faults run on one store each (the kills cover both). A cut connection heals at
# once: the retry needs no 15 s wait (quick_collect_retries); a restart takes its time: the real policy spans it.
@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_connection_cut_mid_response_is_an_error_and_never_a_partial_snapshot(
    project: Project, proxy: CuttingProxy, quick_collect_retries: dg.RetryPolicy
) -> None:
    client = LabelStudioClient(proxy.url, project.ls.token)
    proxy.cut_export(after_bytes=600)
    with pytest.raises(LabelStudioError, match="mid-response|complete JSON"):
        client.export_annotations(project.project_id)
    assert proxy.cuts == 1
    # A collect whose export is cut: that attempt fails and writes nothing, the retry policy lands the run.
    proxy.cut_export(after_bytes=600)
    result = collect(project, url=proxy.url, full=True)
    assert proxy.cuts == 2 and result.success
    assert retried(result)
    assert_store_equals_label_studio(project)


def retried(result: dg.ExecuteInProcessResult) -> bool:
    return any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


@pytest.mark.parametrize("store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_label_studio_stopped_mid_export_fails_the_attempt_and_the_retry_lands_once_it_is_back(
    project: Project, proxy: CuttingProxy, restart_spanning_retries: dg.RetryPolicy
) -> None:
    restarted = threading.Event()
    failed: list[BaseException] = []

    def restart() -> None:
        try:
            project.ls.start()
        except BaseException as error:  # the test fails with it, not with a timeout
            failed.append(error)
        restarted.set()

    def stop_then_restart() -> None:
        project.ls.stop()
        threading.Thread(target=restart, daemon=True).start()

    proxy.cut_export(after_bytes=400, on_cut=stop_then_restart)  # the server dies while sending the export
    try:
        result = collect(project, url=proxy.url, full=True)  # retries a second apart span the restart
    finally:
        wait_for("Label Studio is back", restarted.is_set, timeout_s=server.START_TIMEOUT_S + 30)
    assert not failed, f"the restart failed: {failed[0]!r}"
    assert proxy.cuts == 1
    assert result.success and retried(result)
    assert_store_equals_label_studio(project)


# --- duplicate and overlapping polls -------------------------------------------------------------


def test_duplicate_polls_in_a_row_and_at_once_write_each_change_once(project: Project) -> None:
    results: list[dg.ExecuteInProcessResult] = []
    threads = [threading.Thread(target=lambda: results.append(collect(project))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 3 and all(r.success for r in results)
    assert collect(project).success  # and once more, after all of them
    assert_store_equals_label_studio(project)


def test_an_older_export_committed_after_a_newer_one_is_refused(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault probe's case: run A exports, Label Studio changes, run B exports and commits, then A commits.
    A must write nothing: its snapshot would revive the deleted annotation and revert the edit."""
    exported, resume_a = threading.Event(), threading.Event()
    export = LabelStudioClient.export_annotations

    def parked_export(self: LabelStudioClient, project_id: int) -> Any:
        out = export(self, project_id)
        if threading.current_thread().name == "run-a":
            exported.set()
            assert resume_a.wait(60)
        return out

    monkeypatch.setattr(LabelStudioClient, "export_annotations", parked_export)
    results: dict[str, dg.ExecuteInProcessResult] = {}
    # A reads the full export, B only the changed tasks: the order holds across both ways of syncing.
    run_a = threading.Thread(target=lambda: results.setdefault("a", collect(project, full=True)), name="run-a")
    run_a.start()
    assert exported.wait(60)
    live = sorted(project.live_in_label_studio())
    project.client.delete_annotation(live[0])
    project.client.update_annotation(live[1], "cat")
    results["b"] = collect(project)
    resume_a.set()
    run_a.join(60)
    assert results["a"].success and results["b"].success
    stored = {r["ls_annotation_id"]: r for r in stored_rows(project.store)}  # the latest version wins
    assert stored[live[0]]["deleted"] and stored[live[1]]["label"] == "cat"  # not revived, not reverted
    assert_store_equals_label_studio(project)
    [a_mat] = results["a"].asset_materializations_for_node("annotations")
    assert a_mat.metadata["stale_snapshot_refused"].value is True


@pytest.fixture(autouse=True)
def _label_studio_up(label_studio: LabelStudioServer) -> Iterator[None]:
    """A test that stops the server leaves it running for the next one."""
    yield
    if not label_studio.client().health():
        label_studio.start()
