"""Derived data follows its sources, against a real Label Studio (issue 12, items 2-4).

Each test builds its own small project (6 items, overlap 2, two crowd labelers who agree; collected,
aggregated, split and exported), then changes a source the way a person would: deletes a task in Label
Studio, removes a class from the class list, or changes a source file's bytes. After the pipeline runs
again, the store and Label Studio agree, the item is re-queued the way Label Studio supports, and no export
holds a retracted or superseded item's label.
"""

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets import collect, consensus, dataset, qa_report, queue
from labeling_assets.checks import dataset as dataset_checks
from labeling_assets.core.labelstudio.config import config_choices
from labeling_assets.core.store.derived_schema import item_conflicts_table, requeue_actions_table
from labeling_assets.core.store.schema import (
    LabelStore,
    items_table,
    latest_consensus_query,
    utcnow,
)
from labeling_assets.lineage import current_dataset_version
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["cat", "dog", "eel"]


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class Setup:
    def __init__(self, ls: LabelStudioServer, folder: Path) -> None:
        self.ls, self.folder = ls, folder
        self.store = LabelStore(f"sqlite:///{folder / 'labels.db'}")
        self.store.migrate()
        self.instance = dg.DagsterInstance.ephemeral()
        self.title = f"derived-{folder.name}"
        self.truth: dict[str, str] = {}
        for n in range(6):
            self.add_item(_png(n), f"src/{n}.png", CLASSES[n % 3])

    def add_item(self, data: bytes, source_path: str, label: str, **extra: Any) -> str:
        item_id = hashlib.sha256(data).hexdigest()
        path = self.folder / "raw" / f"{item_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self.store.begin() as conn:
            conn.execute(
                items_table.insert().values(
                    item_id=item_id, uri=str(path), source_path=source_path, n_bytes=len(data),
                    ingested_at=utcnow(), status="active", **extra,
                )
            )
        self.truth[item_id] = label
        return item_id

    @property
    def client(self) -> Any:
        return self.ls.client()

    @property
    def project_id(self) -> int:
        pid = self.ls.resource(self.title).find_project_id()
        assert pid is not None
        return pid

    def materialize(
        self, assets: list[Any], classes: list[str] = CLASSES, changes: str | None = None
    ) -> dg.ExecuteInProcessResult:
        configs = {
            "labeling_tasks": {"config": {"gold_rate": 0.0, "overlap": 2}},
            "consensus_labels": {"config": {"method": "majority"}},
        }
        names = {getattr(a, "op", None) and a.op.name for a in assets}
        result = dg.materialize(
            assets,
            instance=self.instance,
            resources={
                "label_store": LabelStoreResource(url=self.store.url),
                "label_studio": self.ls.resource(self.title),
                "project": ProjectSettings(data_dir=str(self.folder), classes=classes, class_changes=changes),
            },
            run_config={"ops": {name: config for name, config in configs.items() if name in names}},
        )
        assert result.success
        return result

    def queue(self, classes: list[str] = CLASSES, changes: str | None = None) -> dict[str, Any]:
        result = self.materialize([queue.labeling_tasks], classes, changes)
        return {k: v.value for k, v in result.asset_materializations_for_node("labeling_tasks")[0].metadata.items()}

    def collect_to_export(self, classes: list[str] = CLASSES, changes: str | None = None) -> None:
        self.materialize(
            [collect.annotations, consensus.consensus_labels, dataset.dataset_splits, dataset.dataset_export,
             dataset_checks.dataset_splits_only_live_labeled_items],
            classes,
            changes,
        )

    def task_of(self, item_id: str) -> int:
        return int(self.client.task_ids_by_item(self.project_id)[item_id])

    def annotate(self, item_ids: list[str], users: list[str]) -> None:
        ids = self.client.ensure_users(users)
        for item in item_ids:
            for user in users:
                self.client.create_annotation(self.task_of(item), self.truth[item], completed_by=ids[user])

    def live_consensus(self) -> dict[str, Any]:
        return {r["item_id"]: r["label"] for r in self.store.fetch(latest_consensus_query())}

    def exported_items(self) -> dict[str, set[str]]:
        """format -> item ids in the current export, for JSONL, CSV, Parquet and ImageFolder."""
        import pandas as pd

        out = self.folder / "exports" / str(current_dataset_version(self.instance))
        return {
            "jsonl": {json.loads(line)["item_id"] for line in (out / "dataset.jsonl").read_text().splitlines()},
            "csv": set(pd.read_csv(out / "dataset.csv", dtype=str)["item_id"]),
            "parquet": set(pd.read_parquet(out / "dataset.parquet")["item_id"]),
            "imagefolder": {p.stem for p in (out / "imagefolder").glob("*/*/*")},
        }

    def next_for_admin(self) -> int | None:
        body = self.client.request("GET", f"/api/projects/{self.project_id}/next", ok=(200, 404))
        return None if body.get("status_code") == 404 else int(body["id"])


@pytest.fixture
def setup(label_studio: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Labeled, aggregated, split and exported: every item has 2 agreeing votes and is in every export."""
    built = Setup(label_studio, tmp_path_factory.mktemp("derived"))
    assert built.queue()["pushed"] == 6
    built.annotate(sorted(built.truth), ["dd_crowd_1", "dd_crowd_2"])
    built.collect_to_export()
    assert set(built.live_consensus()) == set(built.truth)
    assert all(items == set(built.truth) for items in built.exported_items().values())
    yield built
    built.store.dispose()


def test_a_task_deleted_in_label_studio_retracts_the_consensus_and_gets_a_new_task(setup: Setup) -> None:
    item = sorted(setup.truth)[0]
    old_task = setup.task_of(item)
    setup.client.request("DELETE", f"/api/tasks/{old_task}/")

    # The queue runs before collect has recorded the deletion: it waits rather than hide those annotations.
    early = setup.queue()
    assert early["deleted_tasks_recreated"] == 0 and early["waiting_for_collect_to_record_deletions"] == 1

    setup.collect_to_export()
    assert item not in setup.live_consensus()
    assert all(item not in items for items in setup.exported_items().values())

    meta = setup.queue()
    assert meta["deleted_tasks_recreated"] == 1 and meta["pushed"] == 1
    new_task = setup.task_of(item)
    assert new_task != old_task
    (action,) = setup.store.fetch(sa.select(requeue_actions_table))
    assert (action["item_id"], action["action"], action["old_ls_task_id"]) == (item, "task_recreated", old_task)
    assert setup.queue()["deleted_tasks_recreated"] == 0  # idempotent

    setup.annotate([item], ["dd_crowd_1", "dd_crowd_2"])  # labeled again: the item comes back
    setup.collect_to_export()
    assert setup.live_consensus()[item] == setup.truth[item]
    assert all(item in items for items in setup.exported_items().values())


def test_a_removed_class_updates_the_label_config_and_sends_its_items_back_to_labelers_a_renamed_one_keeps_them(
    setup: Setup,
) -> None:
    eels = sorted(i for i, label in setup.truth.items() if label == "eel")
    assert setup.next_for_admin() is None  # every task has its 2 labelers

    meta = setup.queue(["cat", "dog"])
    assert meta["label_config_updated"] is True
    assert config_choices(setup.client.label_config(setup.project_id)) == ["cat", "dog"]
    assert meta["overlap_raised_for_lost_votes"] == len(eels)
    overlaps = setup.client.task_overlaps(setup.project_id)
    assert {overlaps[setup.task_of(i)] for i in eels} == {4}  # 2 answers no longer count: 2 more labelers
    assert setup.next_for_admin() in {setup.task_of(i) for i in eels}  # back in the label stream
    again = setup.queue(["cat", "dog"])
    assert again["label_config_updated"] is False and again["overlap_raised_for_lost_votes"] == 0

    setup.collect_to_export(["cat", "dog"])
    assert not set(eels) & set(setup.live_consensus())

    # A rename (issue 32.3) also reaches the label config, but re-queues nothing: the cats' answers still count.
    cats = sorted(i for i, label in setup.truth.items() if label == "cat")
    renamed = setup.queue(["feline", "dog"], "rename cat->feline")
    assert renamed["label_config_updated"] is True and renamed["class_schema_changes_recorded"] == ["rename cat->feline"]
    assert config_choices(setup.client.label_config(setup.project_id)) == ["feline", "dog"]
    assert renamed["overlap_raised_for_lost_votes"] == 0
    setup.collect_to_export(["feline", "dog"], "rename cat->feline")
    assert {i: setup.live_consensus()[i] for i in cats} == dict.fromkeys(cats, "feline")
    assert all(set(cats) <= items for items in setup.exported_items().values())
    assert all(not set(eels) & items for items in setup.exported_items().values())


def test_a_changed_source_file_marks_the_old_task_queues_the_new_item_and_is_audited(setup: Setup) -> None:
    old = sorted(setup.truth)[1]
    old_task = setup.task_of(old)
    with setup.store.begin() as conn:  # what ingest records when the bytes at old's source path change
        conn.execute(items_table.update().where(items_table.c.item_id == old).values(status="superseded"))
    source_path = setup.store.fetch(sa.select(items_table.c.source_path).where(items_table.c.item_id == old))[0]
    new = setup.add_item(_png(99), source_path["source_path"], setup.truth[old], supersedes=old)

    meta = setup.queue()
    assert meta["source_conflicts_new"] == {"pending": 1}
    assert meta["source_conflict_tasks_marked"] == {"task_marked": 1}
    task = setup.client.request("GET", f"/api/tasks/{old_task}/")
    assert task["meta"]["labeling_assets"]["state"] == "superseded"
    assert task["meta"]["labeling_assets"]["superseded_by"] == new
    assert task["is_labeled"] is True
    assert setup.task_of(new) != old_task  # the new item is queued as its own task
    (conflict,) = setup.store.fetch(sa.select(item_conflicts_table))
    assert (conflict["old_item_id"], conflict["new_item_id"], conflict["outcome"]) == (old, new, "task_marked")
    assert conflict["live_votes"] == 2 and conflict["new_task_reserved"]

    setup.collect_to_export()
    assert old not in setup.live_consensus()
    assert all(old not in items for items in setup.exported_items().values())
    report = setup.materialize([qa_report.qa_report]).asset_materializations_for_node("qa_report")[0].metadata
    html = Path(str(report["report"].value)).read_text()
    assert "Source conflicts (1)" in html and old[:12] in html and report["source_conflicts"].value == 1
