"""The Label Studio loop end to end against a real server: queue -> crowd -> sensor -> collect -> store.

Each test builds its own project (its own title, store and Dagster instance) up to the stage it needs, so
any one of them runs alone (``-k``); only the Label Studio server is shared by the session. Each asserts
one behaviour of the loop on the store, the Dagster instance or Label Studio itself.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets import collect, queue
from labeling_assets.checks import queue as queue_checks
from labeling_assets.core.labelstudio.crowd import LabelerSpec
from labeling_assets.core.labelstudio.tasks import QueuedItem, task_payload
from labeling_assets.core.store.labelstudio_sync import reserve_tasks
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    current_annotations_query,
    items_table,
    labelers_table,
    prelabels_table,
    tasks_table,
    utcnow,
)
from labeling_assets.jobs import collect_job, queue_job
from labeling_assets.local.crowd import CrowdResult, simulate_crowd
from labeling_assets.local.labelstudio_database import remembered
from labeling_assets.partitions import labelers as labelers_partitions
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.conftest import PG_ADMIN_URL
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "bird"]
N_ITEMS = 18  # every annotation is one POST: keep the crowd small so the module stays fast
N_GOLD = 3
CROWD = [
    LabelerSpec("it_expert", "expert"),
    LabelerSpec("it_average", "average"),
    LabelerSpec("it_spammer", "spammer"),
    LabelerSpec("it_biased", "biased", biased_toward="bird"),
]


@dataclass
class Loop:
    ls: LabelStudioServer
    store: LabelStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    resources: dict[str, Any]
    truth: dict[str, str]
    gold: dict[str, str]
    cursor: str | None = None

    @property
    def client(self) -> Any:
        return self.ls.client()

    @property
    def project_id(self) -> int:
        pid = self.resources["label_studio"].find_project_id()
        assert pid is not None
        return pid

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        ctx = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"label_studio": self.resources["label_studio"]},
        )
        result = annotation_sensor(ctx)
        if isinstance(result, dg.SensorResult) and result.cursor is not None:
            self.cursor = result.cursor
        return result

    def collect(self) -> dict[str, Any]:
        result = self.defs.resolve_job_def("collect_job").execute_in_process(instance=self.instance)
        assert result.success
        (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
        return {k: v.value for k, v in mat.metadata.items()}

    def push(self, **config: Any) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def("queue_job").execute_in_process(
            instance=self.instance, run_config={"ops": {"labeling_tasks": {"config": config}}}
        )
        assert result.success
        return result

    def queue_everything(self) -> None:
        """Every item becomes a task (the gold rate holds back no gold item: 3 of 18 fit 0.1 of 1000)."""
        self.push(max_new_tasks=1000, gold_rate=0.1, overlap=3)
        assert len(self.client.task_ids_by_item(self.project_id)) == N_ITEMS

    def crowd_labels_everything(self) -> CrowdResult:
        """The crowd gives every task 3 annotations, and a sensor-requested collect stores them."""
        result = simulate_crowd(
            self.client, self.project_id, CROWD, truth=self.truth, classes=CLASSES, overlap=3, seed=7
        )
        tick = self.tick()
        assert isinstance(tick, dg.SensorResult) and tick.run_requests
        assert self.collect()["new"] == N_ITEMS * 3
        return result


def _seed_items(store: LabelStore, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    truth, gold = {}, {}
    rows = []
    for i in range(N_ITEMS):
        item_id = hashlib.sha256(f"item-{i}".encode()).hexdigest()
        label = CLASSES[i % len(CLASSES)]
        truth[item_id] = label
        is_gold = i < N_GOLD
        if is_gold:
            gold[item_id] = label
        rows.append(
            {
                "item_id": item_id,
                "uri": str(folder / "raw" / f"{item_id}.png"),
                "source_path": f"img_{i}.png",
                "n_bytes": 100,
                "ingested_at": utcnow(),
                "status": "active",
                "gold_label": label if is_gold else None,
            }
        )
    with store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    return truth, gold


@pytest.fixture
def loop(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """A fresh project of N_ITEMS items (N_GOLD gold) with nothing queued yet."""
    with _loop(label_studio, tmp_path_factory) as fresh:
        yield fresh


@contextmanager
def _loop(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    folder = tmp_path_factory.mktemp("loop")
    store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
    store.migrate()
    truth, gold = _seed_items(store, folder)
    resources = {
        "label_store": LabelStoreResource(url=store.url),
        "label_studio": label_studio.resource(f"loop-{folder.name}"),
        "project": ProjectSettings(data_dir=str(folder), classes=CLASSES),
    }
    defs = dg.Definitions(
        assets=[queue.labeling_tasks, collect.annotations],
        asset_checks=[queue_checks.gold_never_in_task_data],
        jobs=[queue_job, collect_job],
        sensors=[annotation_sensor],
        resources=resources,
    )
    with dg.DagsterInstance.ephemeral() as instance:
        yield Loop(label_studio, store, instance, defs, resources, truth, gold)
    store.dispose()


PRELABELED = 5  # regular items with a confident prelabel: queued before the unscored ones, with a prediction


def test_tasks_are_pushed_once_per_item_even_when_rematerialized(loop: Loop) -> None:
    regular = [i for i in loop.truth if i not in loop.gold]
    with loop.store.begin() as conn:
        conn.execute(
            prelabels_table.insert(),
            [
                {
                    "item_id": i,
                    "model_version": "clf/3",
                    "probs": {"cat": 0.9, "dog": 0.05, "bird": 0.05},
                    "computed_at": utcnow(),
                }
                for i in regular[:PRELABELED]
            ],
        )
    first = loop.push(max_new_tasks=10, gold_rate=0.1, overlap=3)
    meta = {
        k: v.value for k, v in first.get_asset_materialization_events()[0].materialization.metadata.items()
    }
    # Scored first (issue 26: unscored items went first, to tasks without a prediction).
    assert meta["pushed"] == 10 and meta["new_gold"] == 1 and meta["with_predictions"] == PRELABELED
    # A crash after Label Studio imported a task but before the store linked it: the next run links, never re-imports.
    crashed = next(i for i in regular[PRELABELED:] if i not in loop.client.task_ids_by_item(loop.project_id))
    loop.client.import_tasks(loop.project_id, [task_payload(crashed, "/img")])
    reserve_tasks(loop.store, loop.project_id, [QueuedItem(crashed, False, 0, 1.0, None, None)], overlap=3)
    loop.push(max_new_tasks=1000, gold_rate=0.1, overlap=3)
    loop.push(max_new_tasks=1000, gold_rate=0.1, overlap=3)  # nothing left: must not duplicate
    remote = loop.client.task_ids_by_item(loop.project_id)
    remote_tasks = list(loop.client.iter_tasks(loop.project_id))
    assert len(remote_tasks) == N_ITEMS == len(remote)
    assert loop.store.count(tasks_table) == N_ITEMS
    assert loop.store.count(tasks_table, tasks_table.c.ls_task_id.is_(None)) == 0
    assert loop.store.count(tasks_table, tasks_table.c.is_gold.is_(True)) == N_GOLD
    assert loop.client.get_project(loop.project_id)["maximum_annotations"] == 3
    predicted = {
        t["data"]["item_id"]: t["predictions"]
        for t in loop.client.iter_tasks(loop.project_id, fields="all")
        if t.get("predictions")
    }
    assert set(predicted) == set(regular[:PRELABELED])
    assert all(p[0]["model_version"] == "clf/3" for p in predicted.values())
    assert loop.client.get_project(loop.project_id)["model_version"] == "clf/3"  # the UI pre-fills them


def _prelabel_all(loop: Loop, model_version: str, top: str) -> None:
    with loop.store.begin() as conn:
        conn.execute(prelabels_table.insert(), [
            {"item_id": i, "model_version": model_version, "computed_at": utcnow(),
             "probs": {c: (0.8 if c == top else 0.1) for c in CLASSES}}
            for i in loop.truth
        ])  # fmt: skip


def test_open_tasks_carry_the_champions_prediction_after_the_queue_run_that_follows_it(loop: Loop) -> None:
    """Issue 26: Label Studio held 850 tasks and 0 predictions although a champion existed. Tasks queued with
    the baseline's pre-labels; then the champion pre-labels every item (prelabel_job), and the queue run the
    intake sensor launches after it (no new items) attaches them to every open task, gold included."""
    _prelabel_all(loop, "baseline/1", "cat")
    loop.push(max_new_tasks=1000)
    tasks = list(loop.client.iter_tasks(loop.project_id, fields="all"))
    assert len(tasks) == N_ITEMS and all(t["predictions"][0]["model_version"] == "baseline/1" for t in tasks)

    _prelabel_all(loop, "digits/2", "dog")  # the champion's pre-labels
    result = loop.push(max_new_tasks=0)
    meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert meta["predictions_refreshed"] == N_ITEMS and meta["open_tasks"] == N_ITEMS
    assert meta["open_tasks_with_current_prelabel"] == N_ITEMS and meta["prelabel_model_shown"] == "digits/2"
    for task in loop.client.iter_tasks(loop.project_id, fields="all"):
        versions = {p["model_version"]: p for p in task["predictions"]}
        assert set(versions) == {"baseline/1", "digits/2"}  # versioned: the old one stays, the new one is shown
        assert versions["digits/2"]["result"][0]["value"]["choices"] == ["dog"]
    assert loop.client.get_project(loop.project_id)["model_version"] == "digits/2"  # what the UI pre-fills
    assert {r["model_version"] for r in loop.store.fetch(sa.select(tasks_table.c.model_version))} == {"digits/2"}
    again = loop.push(max_new_tasks=0)  # nothing newer: nothing attached twice
    assert again.get_asset_materialization_events()[0].materialization.metadata["predictions_refreshed"].value == 0


def test_items_ingested_after_the_last_pre_label_run_wait_for_theirs_and_then_go_with_it(loop: Loop) -> None:
    """Issue 26's long run: a top-up queue run took a newer ingest's items before their pre-label run, and their
    tasks showed no prediction. Once a model pre-labels items, they wait (``awaiting_prelabel``) for a while."""
    _prelabel_all(loop, "digits/2", "dog")
    newer = [hashlib.sha256(f"newer-{i}".encode()).hexdigest() for i in range(2)]
    with loop.store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": i, "uri": f"/raw/{i}.png", "source_path": f"newer_{n}.png", "n_bytes": 100,
             "ingested_at": utcnow(), "status": "active", "gold_label": None} for n, i in enumerate(newer)
        ])  # fmt: skip
    meta = _metadata(loop.push(max_new_tasks=1000))
    assert meta["pushed"] == N_ITEMS and meta["awaiting_prelabel"] == 2 and meta["with_predictions"] == N_ITEMS
    assert not set(newer) & set(loop.client.task_ids_by_item(loop.project_id))

    with loop.store.begin() as conn:  # their pre-label run
        conn.execute(prelabels_table.insert(), [{"item_id": i, "model_version": "digits/2", "computed_at": utcnow(),
                                                 "probs": {"cat": 0.1, "dog": 0.8, "bird": 0.1}} for i in newer])  # fmt: skip
    meta = _metadata(loop.push(max_new_tasks=1000))
    assert meta["pushed"] == 2 and meta["awaiting_prelabel"] == 0 and meta["with_predictions"] == 2

    late = hashlib.sha256(b"late").hexdigest()  # waited past the bound (prelabel_wait_minutes): queued without one
    with loop.store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": late, "uri": f"/raw/{late}.png", "source_path": "late.png",
                                             "n_bytes": 100, "ingested_at": utcnow(), "status": "active"}])  # fmt: skip
    meta = _metadata(loop.push(max_new_tasks=1000, prelabel_wait_minutes=0))
    assert meta["pushed"] == 1 and meta["awaiting_prelabel"] == 0 and meta["with_predictions"] == 0


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}


def test_gold_never_reaches_label_studio_and_the_check_says_so(loop: Loop) -> None:
    result = loop.push(max_new_tasks=1000)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "gold_never_in_task_data" and evaluation.passed
    assert evaluation.metadata["gold_tasks"].value == N_GOLD
    for task in loop.client.iter_tasks(loop.project_id, fields="all"):
        assert set(task["data"]) == {"image", "item_id"}
        assert "gold" not in str(task["data"]).lower()


def test_first_sensor_tick_requests_a_run_and_an_unchanged_project_skips(loop: Loop) -> None:
    assert isinstance(loop.tick(), dg.SkipReason)  # no project yet: nothing to collect
    loop.queue_everything()
    first = loop.tick()
    assert isinstance(first, dg.SensorResult) and len(first.run_requests or []) == 1
    assert loop.collect()["new"] == 0
    again = loop.tick()
    assert isinstance(again, dg.SkipReason) and "no annotation change" in (again.skip_message or "")


def test_crowd_annotations_are_collected_and_labelers_become_partitions(loop: Loop) -> None:
    loop.queue_everything()
    result = simulate_crowd(
        loop.client, loop.project_id, CROWD, truth=loop.truth, classes=CLASSES, overlap=3, seed=7
    )
    assert len(result.annotations) == N_ITEMS * 3
    per_task: dict[int, set[str]] = {}
    for _ann, task_id, _item, name, _label in result.annotations:
        assert name not in per_task.setdefault(task_id, set())  # nobody labels a task twice
        per_task[task_id].add(name)
    tick = loop.tick()
    assert isinstance(tick, dg.SensorResult) and tick.run_requests
    meta = loop.collect()
    assert meta["new"] == N_ITEMS * 3 and meta["updated"] == 0 and meta["deleted"] == 0
    assert loop.store.count(annotations_table) == N_ITEMS * 3
    stored = loop.store.fetch(current_annotations_query())
    assert {(r["ls_annotation_id"], r["label"]) for r in stored} == {
        (a, lab) for a, _, _, _, lab in result.annotations
    }
    assert all(r["lead_time_s"] and r["lead_time_s"] > 0 and r["created_at"] is not None for r in stored)
    user_ids = {str(uid) for uid in result.user_ids.values()}
    assert {r["labeler_id"] for r in stored} == user_ids
    # Partitions are keyed by the Label Studio username (the numeric id stays the store's key).
    assert set(result.user_ids) <= set(loop.instance.get_dynamic_partitions(labelers_partitions.name))
    assert {r["labeler_id"] for r in loop.store.fetch(sa.select(labelers_table.c.labeler_id))} == user_ids


def test_re_poll_and_retried_runs_add_nothing(loop: Loop) -> None:
    loop.queue_everything()
    loop.crowd_labels_everything()
    before = loop.store.count(annotations_table)
    assert before == N_ITEMS * 3
    assert isinstance(loop.tick(), dg.SkipReason)
    for _ in range(2):  # a retried run / a duplicate delivery
        meta = loop.collect()
        assert meta["new"] == meta["updated"] == meta["deleted"] == 0
    assert loop.store.count(annotations_table) == before
    dupes = loop.store.fetch(
        sa.select(annotations_table.c.ls_annotation_id, annotations_table.c.version)
        .group_by(annotations_table.c.ls_annotation_id, annotations_table.c.version)
        .having(sa.func.count() > 1)
    )
    assert dupes == []


def test_an_edit_becomes_a_new_version_and_a_delete_a_tombstone(loop: Loop) -> None:
    loop.queue_everything()
    loop.crowd_labels_everything()
    current = loop.store.fetch(current_annotations_query())
    edited, removed = current[0], current[1]
    new_label = next(c for c in CLASSES if c != edited["label"])
    loop.client.update_annotation(edited["ls_annotation_id"], new_label)
    loop.client.delete_annotation(removed["ls_annotation_id"])
    assert isinstance(loop.tick(), dg.SensorResult)
    meta = loop.collect()
    assert (meta["new"], meta["updated"], meta["deleted"]) == (0, 1, 1)
    versions = loop.store.fetch(
        sa.select(annotations_table)
        .where(annotations_table.c.ls_annotation_id == edited["ls_annotation_id"])
        .order_by(annotations_table.c.version)
    )
    assert [v["label"] for v in versions] == [edited["label"], new_label]
    assert versions[1]["supersedes"] == versions[0]["id"]
    tomb = loop.store.fetch(
        sa.select(annotations_table)
        .where(annotations_table.c.ls_annotation_id == removed["ls_annotation_id"])
        .order_by(annotations_table.c.version)
    )
    assert [(t["version"], t["deleted"]) for t in tomb] == [(1, False), (2, True)]
    current_ids = {r["ls_annotation_id"] for r in loop.store.fetch(current_annotations_query())}
    assert removed["ls_annotation_id"] not in current_ids
    assert len(current_ids) == N_ITEMS * 3 - 1


def test_sensor_skips_with_the_cause_while_label_studio_is_down_and_catches_up(loop: Loop) -> None:
    loop.queue_everything()
    assert isinstance(loop.tick(), dg.SensorResult) and loop.collect()["new"] == 0  # the cursor now is current
    loop.ls.stop()
    try:
        down = loop.tick()
        assert isinstance(down, dg.SkipReason)
        assert "unreachable" in (down.skip_message or "")
    finally:
        loop.ls.start()
    late = LabelerSpec("it_late", "expert")
    added = simulate_crowd(
        loop.client,
        loop.project_id,
        [late],
        truth=dict(list(loop.truth.items())[:3]),
        classes=CLASSES,
        overlap=1,
        seed=1,
    )
    assert len(added.annotations) == 3
    up = loop.tick()
    assert isinstance(up, dg.SensorResult) and up.run_requests
    meta = loop.collect()
    assert meta["new"] == 3
    assert "it_late" in loop.instance.get_dynamic_partitions(labelers_partitions.name)


def test_the_loop_runs_on_label_studio_on_postgresql(
    label_studio_postgres: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Queue -> crowd -> sensor -> collect once against Label Studio on PostgreSQL (as the docker stack runs it)."""
    with _loop(label_studio_postgres, tmp_path_factory) as pg:
        pg.queue_everything()
        crowd = pg.crowd_labels_everything()
        assert isinstance(pg.tick(), dg.SkipReason)
        stored = pg.store.fetch(current_annotations_query())
        assert {(r["ls_annotation_id"], r["label"]) for r in stored} == {(a, lab) for a, _, _, _, lab in crowd.annotations}
        # Label Studio kept them in its PostgreSQL database (no SQLite file beside it).
        database = remembered(label_studio_postgres.paths)
        assert database is not None
        assert not (label_studio_postgres.paths.ls_data / "label_studio.sqlite3").exists()
        engine = sa.create_engine(sa.make_url(PG_ADMIN_URL).set(database=database.name))
        with engine.connect() as conn:
            project = pg.project_id
            tasks = conn.execute(sa.text("SELECT count(*) FROM task WHERE project_id = :p"), {"p": project})
            annotations = conn.execute(
                sa.text("SELECT count(*) FROM task_completion WHERE project_id = :p"), {"p": project}
            )
            assert (tasks.scalar_one(), annotations.scalar_one()) == (N_ITEMS, N_ITEMS * 3)
        engine.dispose()

