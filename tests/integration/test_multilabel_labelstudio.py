"""Multi-label projects on a real Label Studio with real SQLite and PostgreSQL stores (issue 16).

The pipeline's own assets run: ``labeling_tasks`` creates the project and pushes the tasks, ``annotations``
(collect) syncs what people answered. Label Studio shows checkboxes with a "None of these" choice, predictions
pre-check the likely classes, gold sets never reach it, and every answer lands in the store as a sorted list,
edits as new versions and deletions as tombstones, exactly as single-label answers do.
"""

import argparse
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.assets import collect, queue
from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.labelstudio.config import ConfigLayout, config_layout
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    current_annotations_query,
    items_table,
    prelabels_table,
    tasks_table,
    utcnow,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.labelstudio import LabelStudioClient
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["effusion", "mass", "nodule"]


def wanted_layout(
    classes: list[str], task_type: str = "single_label", allow_empty: bool = True
) -> ConfigLayout | None:
    """The layout of the config the kind of ``task_type`` builds."""
    return config_layout(task_kind(task_type).label_config(classes, allow_empty))


GOLD_SET = ["mass", "nodule"]
LABELERS = ["ml_first", "ml_second"]
# item -> prelabel marginals (None: not scored); item 0 is gold
PRELABELS: list[dict[str, float] | None] = [
    None,
    {"effusion": 0.9, "mass": 0.7, "nodule": 0.1},  # pre-checks effusion and mass
    {"effusion": 0.1, "mass": 0.02, "nodule": 0.3},  # pre-checks None of these
    {"effusion": 0.99, "mass": 0.99, "nodule": 0.01},  # sure of two findings: queued last
]


@dataclass
class MultiLabelProject:
    ls: LabelStudioServer
    store: LabelStore
    folder: Path
    title: str
    items: list[str]

    @property
    def client(self) -> LabelStudioClient:
        return self.ls.client()

    @property
    def project_id(self) -> int:
        (pid,) = [int(p["id"]) for p in self.client.list_projects() if p["title"] == self.title]
        return pid

    def settings(self, **overrides: Any) -> ProjectSettings:
        return ProjectSettings(
            data_dir=str(self.folder), classes=CLASSES, **{"task_type": "multi_label", **overrides}
        )

    def resources(self, **settings: Any) -> dict[str, Any]:
        return {
            "label_store": LabelStoreResource(url=self.store.url),
            "label_studio": self.ls.resource(self.title),
            "project": self.settings(**settings),
        }

    def queue(self, **settings: Any) -> dict[str, Any]:
        result = dg.materialize(
            [queue.labeling_tasks],
            resources=self.resources(**settings),
            run_config={"ops": {"labeling_tasks": {"config": {"overlap": 2, "gold_rate": 0.25}}}},
        )
        assert result.success
        (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
        return {k: v.value for k, v in mat.metadata.items()}

    def collect(self, **config: Any) -> dict[str, Any]:
        resources = self.resources()
        del resources["project"]  # collect needs no task type: it reads the project's config
        result = dg.materialize(
            [collect.annotations],
            resources=resources,
            run_config={"ops": {"annotations": {"config": config}}} if config else None,
        )
        assert result.success
        (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
        return {k: v.value for k, v in mat.metadata.items()}

    def task_of(self, item: str) -> int:
        return self.client.task_ids_by_item(self.project_id)[item]

    def versions(self, ls_annotation_id: int) -> list[dict[str, Any]]:
        a = annotations_table
        return self.store.fetch(
            sa.select(a.c.id, a.c.version, a.c.label, a.c.deleted, a.c.supersedes)
            .where(a.c.ls_annotation_id == ls_annotation_id)
            .order_by(a.c.version)
        )


def _seed(store: LabelStore, folder: Path, title: str) -> list[str]:
    items = [hashlib.sha256(f"{title}-{i}".encode()).hexdigest() for i in range(len(PRELABELS))]
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {
                    "item_id": item,
                    "uri": str(folder / "raw" / f"{item}.png"),
                    "source_path": f"x{n}.png",
                    "n_bytes": 10,
                    "ingested_at": utcnow(),
                    "status": "active",
                    "gold_label": GOLD_SET if n == 0 else None,
                }  # fmt: skip
                for n, item in enumerate(items)
            ],
        )
        conn.execute(
            prelabels_table.insert(),
            [
                {"item_id": item, "model_version": "sigmoid/1", "probs": probs, "computed_at": utcnow()}
                for item, probs in zip(items, PRELABELS, strict=True)
                if probs is not None
            ],
        )
    return items


@pytest.fixture
def project(
    label_studio: LabelStudioServer, store: LabelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MultiLabelProject]:
    """A multi-label project of four items (one gold, three with prelabel marginals) queued through the asset."""
    folder = tmp_path_factory.mktemp("multilabel")
    title = f"multilabel-{uuid.uuid4().hex[:8]}"
    built = MultiLabelProject(label_studio, store, folder, title, _seed(store, folder, title))
    meta = built.queue()
    assert meta["pushed"] == len(PRELABELS) and meta["with_predictions"] == 3
    yield built


def test_a_multi_label_project_asks_with_checkboxes_and_none_of_these_and_pre_checks_likely_classes(
    project: MultiLabelProject,
) -> None:
    config = project.client.label_config(project.project_id)
    assert config_layout(config) == wanted_layout(CLASSES, "multi_label", allow_empty=True)
    assert project.client.answer_kind(project.project_id).name == "multi_label"
    tasks = {t["data"]["item_id"]: t for t in project.client.iter_tasks(project.project_id, fields="all")}
    prefilled = {
        item: [c for p in tasks[item]["predictions"] for r in p["result"] for c in r["value"]["choices"]]
        for item in project.items[1:]
    }
    assert prefilled == {
        project.items[1]: ["effusion", "mass"],
        project.items[2]: [NONE_OF_THESE],
        project.items[3]: ["effusion", "mass"],
    }
    # queue order: unscored first (the gold item here), then by mean binary entropy; the sure item is last
    t = tasks_table
    order = [r["item_id"] for r in project.store.fetch(sa.select(t.c.item_id).order_by(t.c.id))]
    assert order.index(project.items[2]) < order.index(project.items[3])
    assert order.index(project.items[1]) < order.index(project.items[3])


def test_a_gold_items_set_never_reaches_label_studio(project: MultiLabelProject) -> None:
    (gold_task,) = [
        t
        for t in project.client.iter_tasks(project.project_id, fields="all")
        if t["data"]["item_id"] == project.items[0]
    ]
    text = json.dumps(gold_task)
    assert "gold" not in text and gold_task["predictions"] == [] and gold_task["annotations"] == []
    assert set(gold_task["data"]) == {"image", "item_id"}


def test_answers_sync_as_sorted_sets_edits_version_and_deletions_tombstone(
    project: MultiLabelProject,
) -> None:
    client = project.client
    users = client.ensure_users(LABELERS)
    first, second = users[LABELERS[0]], users[LABELERS[1]]
    several = client.create_annotation(
        project.task_of(project.items[1]), ["nodule", "effusion"], completed_by=first
    )
    none = client.create_annotation(project.task_of(project.items[1]), [], completed_by=second)
    both = client.create_annotation(
        project.task_of(project.items[2]), ["mass", NONE_OF_THESE], completed_by=first
    )
    gold_answer = client.create_annotation(project.task_of(project.items[0]), GOLD_SET, completed_by=second)

    meta = project.collect()  # the first sync: the full export
    assert meta["sync_mode"] == "full" and meta["new"] == 4
    stored = {r["ls_annotation_id"]: r["label"] for r in project.store.fetch(current_annotations_query())}
    assert stored == {
        several: ["effusion", "nodule"],
        none: [],  # "None of these" is the empty set
        both: sorted(["mass", NONE_OF_THESE]),  # kept as answered: consensus skips it, nothing is lost
        gold_answer: GOLD_SET,
    }

    client.update_annotation(several, ["mass"])
    client.delete_annotation(none)
    meta = project.collect()  # changed tasks only
    assert meta["sync_mode"] == "incremental"
    assert (meta["new"], meta["updated"], meta["deleted"]) == (0, 1, 1)
    edited = project.versions(several)
    assert [(v["version"], v["label"], v["deleted"]) for v in edited] == [
        (1, ["effusion", "nodule"], False),
        (2, ["mass"], False),
    ]
    assert edited[1]["supersedes"] == edited[0]["id"]  # append-only: the first answer is still there
    gone = project.versions(none)
    assert [(v["version"], v["label"], v["deleted"]) for v in gone] == [(1, [], False), (2, None, True)]
    live = {r["ls_annotation_id"]: r["label"] for r in project.store.fetch(current_annotations_query())}
    assert live == {several: ["mass"], both: sorted(["mass", NONE_OF_THESE]), gold_answer: GOLD_SET}

    # the full export reads the same sets: nothing to write, no drift
    meta = project.collect(full=True)
    assert (meta["new"], meta["updated"], meta["deleted"], meta["drift_repaired"]) == (0, 0, 0, 0)


def test_the_config_follows_the_task_type_and_the_empty_set_setting(project: MultiLabelProject) -> None:
    no_empty = project.queue(allow_empty_set=False)
    assert no_empty["label_config_updated"] is True
    assert config_layout(project.client.label_config(project.project_id)) == wanted_layout(
        CLASSES, "multi_label", False
    )
    single = project.queue(task_type="single_label")
    assert single["label_config_updated"] is True
    assert config_layout(project.client.label_config(project.project_id)) == wanted_layout(CLASSES)
    assert project.queue(task_type="single_label")["label_config_updated"] is False  # in line: left alone


def test_a_single_label_project_keeps_storing_a_multi_choice_answer_as_the_list_it_came_as(
    project: MultiLabelProject,
) -> None:
    project.queue(task_type="single_label")
    users = project.client.ensure_users(LABELERS)
    task = project.task_of(project.items[3])
    one = project.client.create_annotation(task, "mass", completed_by=users[LABELERS[0]])
    two = project.client.create_annotation(task, ["nodule", "effusion"], completed_by=users[LABELERS[1]])
    project.collect()
    stored = {r["ls_annotation_id"]: r["label"] for r in project.store.fetch(current_annotations_query())}
    assert stored == {
        one: "mass",
        two: ["nodule", "effusion"],
    }  # as before multi-label: chosen order, not dropped


def test_labelstudio_bootstrap_creates_a_multi_label_project_when_the_environment_says_so(
    label_studio: LabelStudioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeling_assets.cli.labelstudio import cmd_bootstrap

    title = f"bootstrap-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    monkeypatch.setenv("LABELING_ASSETS_TASK_TYPE", "multi_label")
    assert cmd_bootstrap(argparse.Namespace(url=None, project=title, overlap=2)) == 0
    client = label_studio.client()
    (pid,) = [int(p["id"]) for p in client.list_projects() if p["title"] == title]
    classes = list(ProjectSettings().classes)
    assert config_layout(client.label_config(pid)) == wanted_layout(classes, "multi_label", allow_empty=True)
