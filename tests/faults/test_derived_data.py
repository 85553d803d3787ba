"""Derived data follows its sources (issue 12, items 2-4), on SQLite and PostgreSQL.

Faults a probe found: votes deleted (or a task deleted: its annotations are tombstoned) left the item's
consensus standing, in the train split of the export with 0 live votes; a class removed from the class list
left its items' consensus standing and exported; a superseded item's votes kept feeding consensus and labeler
statistics. Each test plants the fault on a labeled, exported project, runs the pipeline again and asserts
the end state: a retraction version (never a DELETE), the item out of the next dataset version and out of
every export format (JSONL, CSV, Parquet, ImageFolder), the checks green; the frozen split is remembered.
"""

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets.consensus import consensus_labels
from labeling_assets.assets.dataset import dataset_export, dataset_splits
from labeling_assets.checks import dataset as dataset_checks
from labeling_assets.checks.consensus import build_consensus_checks
from labeling_assets.core.store.derived_schema import class_list_versions_table, vote_retractions_table
from labeling_assets.core.store.queries import load_quality_inputs
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    items_table,
    latest_consensus_query,
    splits_table,
)
from labeling_assets.lineage import current_dataset_version
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

CLASSES = ["cat", "dog", "eel"]
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
N_ITEMS = 45
CONSENSUS_CHECKS = build_consensus_checks()
DATASET_CHECKS = [
    dataset_checks.dataset_splits_no_hash_in_two_splits,
    dataset_checks.dataset_splits_frozen_assignments_unchanged,
    dataset_checks.dataset_splits_only_live_labeled_items,
]


def _png(index: int) -> bytes:
    pixels = np.random.default_rng(1000 + index).integers(0, 256, size=(8, 8), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class Project:
    """45 items (15 per class), each labeled by two agreeing labelers, on a real store and Dagster instance."""

    def __init__(self, store: LabelStore, folder: Path) -> None:
        self.store, self.folder = store, folder
        self.instance = dg.DagsterInstance.ephemeral()
        self.next_annotation = 1
        self.truth: dict[str, str] = {}
        raw = folder / "raw"
        raw.mkdir(parents=True)
        rows = []
        for n in range(N_ITEMS):
            data = _png(n)
            item_id = hashlib.sha256(data).hexdigest()
            (raw / f"{item_id}.png").write_bytes(data)
            self.truth[item_id] = CLASSES[n % 3]
            rows.append(
                {
                    "item_id": item_id,
                    "uri": str(raw / f"{item_id}.png"),
                    "source_path": f"src/{n}.png",
                    "n_bytes": len(data),
                    "ingested_at": NOW,
                    "status": "active",
                }
            )
        with store.begin() as conn:
            conn.execute(items_table.insert(), rows)
        for item, label in self.truth.items():
            for labeler in ("u1", "u2"):
                self.vote(item, labeler, label)

    def vote(self, item_id: str, labeler: str, label: str) -> int:
        ls_id = self.next_annotation
        self.next_annotation += 1
        with self.store.begin() as conn:
            conn.execute(
                annotations_table.insert().values(
                    ls_annotation_id=ls_id, version=1, ls_task_id=None, item_id=item_id, labeler_id=labeler,
                    label=[label], lead_time_s=4.0, created_at=NOW, updated_at=NOW, synced_at=NOW,
                    deleted=False, content_hash=f"v{ls_id}",
                )
            )
        return ls_id

    def tombstone_votes(self, item_id: str) -> None:
        """What collect writes when Label Studio lost the item's annotations (task or votes deleted)."""
        a = annotations_table
        rows = self.store.fetch(sa.select(a).where(a.c.item_id == item_id, a.c.deleted.is_(False)))
        with self.store.begin() as conn:
            for row in rows:
                conn.execute(
                    a.insert().values(
                        ls_annotation_id=row["ls_annotation_id"], version=row["version"] + 1, item_id=item_id,
                        labeler_id=row["labeler_id"], label=None, synced_at=NOW, supersedes=row["id"],
                        deleted=True, content_hash="tombstone",
                    )
                )

    def supersede(self, item_id: str) -> str:
        """What ingest writes when the bytes at an item's source path change: a new item, the old superseded."""
        data = _png(10_000)
        new_id = hashlib.sha256(data).hexdigest()
        (self.folder / "raw" / f"{new_id}.png").write_bytes(data)
        with self.store.begin() as conn:
            old = conn.execute(sa.select(items_table).where(items_table.c.item_id == item_id)).mappings().one()
            conn.execute(items_table.update().where(items_table.c.item_id == item_id).values(status="superseded"))
            conn.execute(
                items_table.insert().values(
                    {**old, "item_id": new_id, "uri": str(self.folder / "raw" / f"{new_id}.png"),
                     "status": "active", "supersedes": item_id, "n_bytes": len(data)}
                )
            )
        return new_id

    def run(self, classes: list[str] = CLASSES, reason: str | None = None) -> dg.ExecuteInProcessResult:
        project = ProjectSettings(data_dir=str(self.folder), classes=classes, class_list_change_reason=reason)
        return dg.materialize(
            [consensus_labels, dataset_splits, dataset_export, *CONSENSUS_CHECKS, *DATASET_CHECKS],
            instance=self.instance,
            resources={"label_store": LabelStoreResource(url=self.store.url), "project": project},
            run_config={"ops": {"consensus_labels": {"config": {"method": "majority"}}}},
            raise_on_error=False,
        )

    def consensus_rows(self, item_id: str) -> list[dict[str, Any]]:
        c = consensus_table
        return self.store.fetch(sa.select(c).where(c.c.item_id == item_id).order_by(c.c.version))

    def exported(self) -> dict[str, dict[str, str]]:
        """format -> {item_id: label} of the current export (every format must agree)."""
        version = current_dataset_version(self.instance)
        out = self.folder / "exports" / str(version)
        jsonl = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
        csv = pd.read_csv(out / "dataset.csv", dtype=str)
        parquet = pd.read_parquet(out / "dataset.parquet")
        folder = {p.stem: p.parent.name for p in (out / "imagefolder").glob("*/*/*")}
        return {
            "jsonl": {r["item_id"]: r["label"] for r in jsonl},
            "csv": dict(zip(csv["item_id"], csv["label"], strict=True)),
            "parquet": dict(zip(parquet["item_id"], parquet["label"], strict=True)),
            "imagefolder": folder,
        }


def _passed(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _assert_clean_run(result: dg.ExecuteInProcessResult) -> None:
    assert result.success
    assert all(_passed(result).values()), _passed(result)


@pytest.fixture
def project(store: LabelStore, tmp_path: Path) -> Project:
    labeled = Project(store, tmp_path / "data")
    _assert_clean_run(labeled.run())
    assert all(len(labels) == N_ITEMS for labels in labeled.exported().values())
    return labeled


@pytest.mark.slow
def test_an_item_whose_votes_are_deleted_loses_its_consensus_by_a_retraction_and_leaves_every_export(
    project: Project,
) -> None:
    item = sorted(project.truth)[0]
    split = project.store.fetch(sa.select(splits_table.c.split).where(splits_table.c.item_id == item))[0]["split"]
    project.tombstone_votes(item)  # its Label Studio task was deleted: collect tombstoned both votes

    result = project.run()
    _assert_clean_run(result)
    rows = project.consensus_rows(item)
    assert [(r["version"], r["retracted"]) for r in rows] == [(1, False), (2, True)]  # appended, nothing deleted
    assert rows[1]["retraction_reason"].startswith("too_few_live_votes: 0 live votes < min_annotators 2")
    assert rows[1]["label"] == rows[0]["label"]  # the row says what was withdrawn
    assert item not in {r["item_id"] for r in project.store.fetch(latest_consensus_query())}
    assert all(item not in labels and len(labels) == N_ITEMS - 1 for labels in project.exported().values())
    meta = result.asset_materializations_for_node("dataset_splits")[0].metadata
    assert meta["left_since_previous_version"].value == {"consensus retracted: too_few_live_votes": 1}
    assert "Left since the previous version" in meta["card"].value

    # The labelers answer again: a live version, and the item comes back in the split it was frozen in.
    for labeler in ("u3", "u4"):
        project.vote(item, labeler, project.truth[item])
    _assert_clean_run(project.run())
    assert [(r["version"], r["retracted"]) for r in project.consensus_rows(item)][-1] == (3, False)
    version = current_dataset_version(project.instance)
    manifest = project.store.fetch(sa.select(splits_table).where(splits_table.c.item_id == item))
    assert manifest[0]["split"] == split
    assert all(labels[item] == project.truth[item] for labels in project.exported().values()), version


@pytest.mark.slow
def test_a_removed_class_is_a_versioned_event_that_retracts_its_votes_and_consensus(project: Project) -> None:
    eels = sorted(i for i, label in project.truth.items() if label == "eel")

    result = project.run(["cat", "dog"], reason="eels moved to another project")
    _assert_clean_run(result)
    versions = project.store.fetch(sa.select(class_list_versions_table).order_by(class_list_versions_table.c.version))
    assert [(v["version"], v["classes"], v["removed"]) for v in versions] == [
        (1, CLASSES, []),
        (2, ["cat", "dog"], ["eel"]),
    ]
    assert versions[1]["reason"] == "eels moved to another project (removed 'eel')"
    assert versions[1]["votes_retracted"] == 2 * len(eels)
    retracted_votes = project.store.fetch(sa.select(vote_retractions_table))
    assert {(r["reason"], r["class_list_version"]) for r in retracted_votes} == {("class_removed", 2)}
    assert project.store.count(annotations_table) == 2 * N_ITEMS  # the annotation log is untouched
    for item in eels:
        newest = project.consensus_rows(item)[-1]
        assert newest["retracted"] and "0 live votes" in newest["retraction_reason"]
        assert "2 votes name classes no longer in the class list" in newest["retraction_reason"]
    exported = project.exported()
    assert all(set(labels.values()) == {"cat", "dog"} for labels in exported.values())
    assert all(not set(eels) & set(labels) for labels in exported.values())
    card = result.asset_materializations_for_node("dataset_splits")[0].metadata["card"].value
    assert "Class list version** 2: cat, dog" in card and "eels moved to another project" in card
    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["class_list_change"].value["removed"] == ["eel"]
    assert meta["votes_retracted_now"].value == {"class_removed": 2 * len(eels)}

    # Running again records nothing new: the event happened once.
    _assert_clean_run(project.run(["cat", "dog"]))
    assert project.store.count(class_list_versions_table) == 2
    assert project.store.count(vote_retractions_table) == 2 * len(eels)


@pytest.mark.slow
def test_a_stale_class_consensus_fails_the_blocking_checks(project: Project) -> None:
    """Planted: a live consensus row of a class that left the list, and a manifest item that was superseded."""
    item = sorted(project.truth)[0]
    with project.store.begin() as conn:
        conn.execute(
            consensus_table.insert().values(
                item_id=item, version=2, label="shark", method="majority", confidence=1.0, agreement=1.0,
                n_annotators=2, computed_at=NOW,
            )
        )
    project.supersede(sorted(project.truth)[1])
    checks_only = dg.materialize(
        [consensus_labels, dataset_splits, *CONSENSUS_CHECKS, *DATASET_CHECKS],
        instance=project.instance,
        resources={
            "label_store": LabelStoreResource(url=project.store.url),
            "project": ProjectSettings(data_dir=str(project.folder), classes=CLASSES),
        },
        selection=dg.AssetSelection.checks(*CONSENSUS_CHECKS, *DATASET_CHECKS),
        raise_on_error=False,
    )
    passed = _passed(checks_only)
    assert passed["consensus_labels_in_class_list"] is False
    assert passed["dataset_splits_only_live_labeled_items"] is False
    # The next run heals both: the stale row is retracted, the superseded item leaves the dataset.
    _assert_clean_run(project.run())


@pytest.mark.slow
def test_a_superseded_items_votes_stop_counting_for_consensus_and_labeler_stats(project: Project) -> None:
    old = sorted(project.truth)[2]
    new = project.supersede(old)

    result = project.run()
    _assert_clean_run(result)
    newest = project.consensus_rows(old)[-1]
    assert newest["retracted"] and newest["retraction_reason"].startswith("item_superseded: ")
    assert new in newest["retraction_reason"]
    reasons = {(r["item_id"], r["reason"]) for r in project.store.fetch(sa.select(vote_retractions_table))}
    assert reasons == {(old, "item_superseded")}
    inputs = load_quality_inputs(project.store, CLASSES)
    assert old not in set(inputs.votes["item_id"]) and old not in inputs.consensus.index
    meta = result.asset_materializations_for_node("consensus_labels")[0].metadata
    assert meta["skipped_votes"].value["on_superseded_items"] == 2
    assert all(old not in labels for labels in project.exported().values())
