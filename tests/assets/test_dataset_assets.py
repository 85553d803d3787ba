"""dataset_splits / dataset_export / their checks, materialized on a real Dagster instance and a real store.

Items are real PNG files inserted straight into the label store (SQLite and PostgreSQL) with consensus
rows, as consensus_labels would leave them.
"""

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets.dataset import dataset_export, dataset_splits
from labeling_assets.checks import dataset as checks
from labeling_assets.core.dataset.splits import manifest_from_json
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    dataset_versions_table,
    items_table,
    splits_table,
)
from labeling_assets.lineage import BLOCKING_DATASET_CHECKS
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CHECKS = [
    checks.dataset_splits_no_hash_in_two_splits,
    checks.dataset_splits_no_group_in_two_splits,
    checks.dataset_splits_no_near_duplicates_in_two_splits,
    checks.dataset_splits_class_proportions_within_tolerance,
    checks.dataset_splits_frozen_assignments_unchanged,
    checks.dataset_splits_every_class_in_every_split,
    checks.dataset_splits_every_label_in_val_and_test,
    checks.dataset_splits_only_live_labeled_items,
    checks.dataset_splits_machine_labels_hold_target,
]
CLASSES = ["cat", "dog", "eel"]


def _png(index: int) -> bytes:
    """A distinct small grayscale PNG per index (real bytes that PIL and torchvision decode)."""
    pixels = np.random.default_rng(index).integers(0, 256, size=(12, 12), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class Project:
    """A data folder, a store and a Dagster instance, plus helpers to add labeled items."""

    def __init__(self, store: LabelStore, data_dir: Path, instance: dg.DagsterInstance) -> None:
        self.store, self.data_dir, self.instance = store, data_dir, instance
        self.next_index = 0
        self.resources = {
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(data_dir), classes=CLASSES),
        }

    def add_items(self, labels: Sequence[str], groups: Sequence[str | None] | None = None) -> list[str]:
        """Ingest-like rows with real PNG copies, and a consensus row (version 1) per item."""
        raw = self.data_dir / "raw"
        raw.mkdir(exist_ok=True)
        ids, item_rows, consensus_rows = [], [], []
        for k, label in enumerate(labels):
            data = _png(self.next_index)
            self.next_index += 1
            item_id = hashlib.sha256(data).hexdigest()
            path = raw / f"{item_id}.png"
            path.write_bytes(data)
            ids.append(item_id)
            item_rows.append(
                {
                    "item_id": item_id,
                    "uri": str(path),
                    "source_path": f"file:///src/{item_id[:8]}.png",
                    "n_bytes": len(data),
                    "ingested_at": NOW,
                    "status": "active",
                    "group_key": groups[k] if groups else None,
                }
            )
            consensus_rows.append(
                {
                    "item_id": item_id,
                    "version": 1,
                    "label": label,
                    "method": "dawid_skene",
                    "confidence": 0.9,
                    "agreement": 1.0,
                    "n_annotators": 2,
                    "computed_at": NOW,
                }
            )
        with self.store.begin() as conn:
            conn.execute(items_table.insert(), item_rows)
            conn.execute(consensus_table.insert(), consensus_rows)
        return ids

    def annotate(self, item_ids: Sequence[str], labels: Sequence[str], labeler: str) -> None:
        base = self.store.count(annotations_table) + 1
        rows = [
            {
                "ls_annotation_id": base + k,
                "version": 1,
                "item_id": i,
                "labeler_id": labeler,
                "label": label,
                "synced_at": NOW,
                "deleted": False,
                "content_hash": f"{base + k}",
            }
            for k, (i, label) in enumerate(zip(item_ids, labels, strict=True))
        ]
        with self.store.begin() as conn:
            conn.execute(annotations_table.insert(), rows)

    def materialize(self, *, export: bool = False, checks_only: bool = False) -> dg.ExecuteInProcessResult:
        assets = [dataset_splits, dataset_export, *CHECKS] if export else [dataset_splits, *CHECKS]
        selection = dg.AssetSelection.checks_for_assets(dataset_splits) if checks_only else None
        return dg.materialize(
            assets,
            instance=self.instance,
            resources=self.resources,
            selection=selection,
            raise_on_error=False,
        )

    def split_of(self) -> dict[str, str]:
        return {
            r["item_id"]: r["split"] for r in self.store.fetch(sa.select(splits_table.c.item_id, splits_table.c.split))
        }


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _imbalanced_labels(n_cat: int = 42, n_dog: int = 14, n_eel: int = 4) -> list[str]:
    return ["cat"] * n_cat + ["dog"] * n_dog + ["eel"] * n_eel


@pytest.fixture
def project(store: LabelStore, data_dir: Path) -> Iterator[Project]:
    with dg.instance_for_test() as instance:
        yield Project(store, data_dir, instance)


@pytest.fixture
def sqlite_project(sqlite_store: LabelStore, data_dir: Path) -> Iterator[Project]:
    with dg.instance_for_test() as instance:
        yield Project(sqlite_store, data_dir, instance)


@pytest.mark.slow
def test_dataset_splits_records_version_weights_and_card_and_every_check_passes(project: Project) -> None:
    ids = project.add_items(
        _imbalanced_labels(), groups=[f"p{i // 3}" if i < 12 else None for i in range(60)]
    )
    project.annotate(ids[:10], ["cat"] * 10, labeler="7")
    project.annotate(ids[:10], ["cat"] * 9 + ["dog"], labeler="8")

    result = project.materialize()

    assert result.success
    assert _check_results(result) == {c.check_key.name: True for c in CHECKS}
    materialization = result.asset_materializations_for_node("dataset_splits")[0]
    version = materialization.metadata["dataset_version"].value
    assert materialization.tags["dagster/data_version"] == version
    row = project.store.fetch(
        sa.select(dataset_versions_table).where(dataset_versions_table.c.dataset_version == version)
    )[0]
    manifest = manifest_from_json(row["manifest"])
    assert row["n_items"] == len(manifest) == 60
    assert set(project.split_of()) == set(ids)
    # Weights are total / (n_classes * count) over the train split; every item carries its class weight.
    train = manifest[manifest["split"] == "train"]["label"].value_counts()
    expected = {c: train.sum() / (len(train) * n) for c, n in train.items()}
    assert row["class_weights"] == pytest.approx(expected)
    assert manifest["sample_weight"].tolist() == pytest.approx(manifest["label"].map(expected).tolist())
    card = materialization.metadata["card"].value
    assert "Imbalance ratio" in card and "10.50" in card  # 42 cat / 4 eel
    assert "**Annotators**: 2" in card
    assert "not resampled" in card
    assert row["card"] == card
    assert Path(materialization.metadata["card_path"].value).read_text() == card
    # Groups of three items (p0..p3) never straddle splits.
    by_group = pd.DataFrame({"item_id": ids[:12], "group": [f"p{i // 3}" for i in range(12)]})
    by_group["split"] = by_group["item_id"].map(project.split_of())
    assert (by_group.groupby("group")["split"].nunique() == 1).all()


@pytest.mark.slow
def test_test_split_is_frozen_across_a_rematerialization_with_new_items(project: Project) -> None:
    old = project.add_items(_imbalanced_labels())
    first = project.materialize()
    assert first.success
    before = project.split_of()
    v1 = first.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value

    # New items arrive and one old item's consensus flips: splits of old items must not move.
    new = project.add_items(_imbalanced_labels(30, 10, 3))
    with project.store.begin() as conn:
        conn.execute(
            consensus_table.insert().values(
                item_id=old[0],
                version=2,
                label="dog",
                method="majority",
                confidence=0.6,
                agreement=0.5,
                n_annotators=3,
                computed_at=NOW,
            )
        )
    second = project.materialize()

    assert second.success
    assert all(_check_results(second).values()), _check_results(second)
    after = project.split_of()
    assert {i: after[i] for i in old} == before
    assert {i for i in old if before[i] == "test"} == {i for i in after if after[i] == "test" and i in before}
    assert set(new) <= set(after)
    v2 = second.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value
    assert v2 != v1
    manifest = manifest_from_json(
        project.store.fetch(
            sa.select(dataset_versions_table.c.manifest).where(dataset_versions_table.c.dataset_version == v2)
        )[0]["manifest"]
    )
    assert manifest.set_index("item_id").at[old[0], "label"] == "dog"
    # New items keep each split near its target share.
    shares = manifest["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.05)
    assert shares["test"] == pytest.approx(0.15, abs=0.05)

    # Nothing new: the same version again, no new rows.
    third = project.materialize()
    assert third.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value == v2
    assert project.store.count(dataset_versions_table) == 2


@pytest.mark.slow
def test_export_writes_jsonl_csv_parquet_and_an_imagefolder_torchvision_loads(
    sqlite_project: Project,
) -> None:
    from torchvision.datasets import ImageFolder

    sqlite_project.add_items(_imbalanced_labels())
    result = sqlite_project.materialize(export=True)
    assert result.success
    meta = result.asset_materializations_for_node("dataset_export")[0].metadata
    version = meta["dataset_version"].value
    out = sqlite_project.data_dir / "exports" / version
    assert Path(meta["export_dir"].value) == out
    splits_now = sqlite_project.split_of()

    lines = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert len(lines) == 60
    assert {"image_path", "label", "split"} <= set(lines[0])
    assert all(splits_now[r["item_id"]] == r["split"] and Path(r["image_path"]).is_file() for r in lines)
    with open(out / "dataset.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 60
    parquet = pd.read_parquet(out / "dataset.parquet")
    assert (
        parquet.sort_values("item_id")
        .reset_index(drop=True)
        .equals(pd.DataFrame(lines).sort_values("item_id").reset_index(drop=True))
    )

    train = ImageFolder(str(out / "imagefolder" / "train"))
    n_train = sum(1 for s in splits_now.values() if s == "train")
    assert len(train) == n_train
    assert train.classes == CLASSES
    image, target = train[0]
    assert image.size == (12, 12) and train.classes[target] in CLASSES
    labels_by_file = {Path(r["image_path"]).stem: r["label"] for r in lines}
    assert all(labels_by_file[Path(p).stem] == train.classes[t] for p, t in train.samples)
    assert meta["imagefolder_hard_links"].value + meta["imagefolder_copies"].value == 60
    assert (out / "README.md").read_text().startswith("# Dataset card")

    # Re-export of the same version replaces the files in place (no stale leftovers, same content).
    again = sqlite_project.materialize(export=True)
    assert again.success
    assert len(ImageFolder(str(out / "imagefolder" / "train"))) == n_train
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_export_rejects_an_unknown_format_before_writing(sqlite_project: Project) -> None:
    sqlite_project.add_items(_imbalanced_labels())
    result = dg.materialize(
        [dataset_splits, dataset_export],
        instance=sqlite_project.instance,
        resources=sqlite_project.resources,
        run_config={"ops": {"dataset_export": {"config": {"formats": ["jsonl", "tfrecord"]}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("dataset_export")
    assert failure is not None and "tfrecord" in str(failure.error)
    assert not (sqlite_project.data_dir / "exports").exists()


@pytest.mark.slow
def test_items_whose_consensus_is_not_one_class_are_left_out_and_documented(sqlite_project: Project) -> None:
    ids = sqlite_project.add_items(_imbalanced_labels())
    with sqlite_project.store.begin() as conn:
        conn.execute(
            consensus_table.insert().values(
                item_id=ids[0],
                version=2,
                label=["cat", "dog"],
                method="majority",
                confidence=0.5,
                agreement=0.5,
                n_annotators=2,
                computed_at=NOW,
            )
        )
    result = sqlite_project.materialize()
    assert result.success
    meta = result.asset_materializations_for_node("dataset_splits")[0].metadata
    assert meta["n_items"].value == 59
    assert meta["excluded_items"].value == {"consensus label is not exactly one class": 1}
    assert "1 items with a consensus label are left out" in meta["card"].value


def test_blocking_check_names_match_the_checks_that_block() -> None:
    blocking = {spec.name for c in CHECKS for spec in c.check_specs if spec.blocking}
    assert blocking == set(BLOCKING_DATASET_CHECKS)


def test_dataset_splits_fails_clearly_without_consensus(sqlite_project: Project) -> None:
    result = sqlite_project.materialize()
    assert not result.success
    assert "consensus" in str(result.failure_data_for_node("dataset_splits").error)


# --- each check fails on a planted violation ---------------------------------------------------


@pytest.mark.slow
def test_group_check_fails_when_frozen_rows_split_a_group(sqlite_project: Project) -> None:
    # Two items were assigned before their shared group key was known; both stay frozen.
    ids = sqlite_project.add_items(_imbalanced_labels(), groups=["patient-1", "patient-1"] + [None] * 58)
    with sqlite_project.store.begin() as conn:
        conn.execute(
            splits_table.insert(),
            [
                {"item_id": ids[0], "split": "train", "dataset_version": "old", "assigned_at": NOW},
                {"item_id": ids[1], "split": "test", "dataset_version": "old", "assigned_at": NOW},
            ],
        )
    result = sqlite_project.materialize()
    outcome = _check_results(result)
    assert outcome["dataset_splits_no_group_in_two_splits"] is False
    assert outcome["dataset_splits_no_hash_in_two_splits"] is True
    [groups] = [e for e in result.get_asset_check_evaluations() if e.check_name.endswith("no_group_in_two_splits")]
    assert list(groups.metadata) == ["dataset_version", "groups_checked", "groups_in_several_splits", "examples"]
    assert groups.metadata["groups_checked"].value == 1 and groups.metadata["groups_in_several_splits"].value == 1
    card = result.asset_materializations_for_node("dataset_splits")[0].metadata["card"].value
    assert "span more than one split" in card  # the card documents the leak it cannot undo


@pytest.mark.slow
def test_proportion_check_fails_when_frozen_rows_skew_a_split(sqlite_project: Project) -> None:
    ids = sqlite_project.add_items(_imbalanced_labels())
    # An earlier run (other ratios, a bug) put every cat in train; frozen rows cannot be rebalanced.
    with sqlite_project.store.begin() as conn:
        conn.execute(
            splits_table.insert(),
            [
                {"item_id": i, "split": "train", "dataset_version": "old", "assigned_at": NOW}
                for i in ids[:42]
            ],
        )
    result = sqlite_project.materialize(export=True)
    outcome = _check_results(result)
    assert outcome["dataset_splits_class_proportions_within_tolerance"] is False
    assert outcome["dataset_splits_frozen_assignments_unchanged"] is True
    # Blocking: a skewed dataset is not exported (nor trained on).
    assert result.asset_materializations_for_node("dataset_splits")
    assert not result.asset_materializations_for_node("dataset_export")
    assert not (sqlite_project.data_dir / "exports").exists()
    # Nor by a later run that selects only the export.
    alone = dg.materialize(
        [dataset_splits, dataset_export],
        instance=sqlite_project.instance,
        resources=sqlite_project.resources,
        selection=[dataset_export],
        raise_on_error=False,
    )
    assert not alone.success
    assert "class_proportions_within_tolerance" in str(alone.failure_data_for_node("dataset_export").error)
    assert not (sqlite_project.data_dir / "exports").exists()


@pytest.mark.slow
def test_frozen_check_fails_when_a_stored_split_row_was_moved(sqlite_project: Project) -> None:
    sqlite_project.add_items(_imbalanced_labels())
    assert sqlite_project.materialize().success
    test_item = next(i for i, s in sqlite_project.split_of().items() if s == "test")
    with sqlite_project.store.begin() as conn:
        conn.execute(sa.update(splits_table).where(splits_table.c.item_id == test_item).values(split="train"))

    outcome = _check_results(sqlite_project.materialize(checks_only=True))
    assert outcome["dataset_splits_frozen_assignments_unchanged"] is False
    assert outcome["dataset_splits_no_hash_in_two_splits"] is True


@pytest.mark.slow
def test_hash_check_fails_when_the_manifest_lists_an_item_in_two_splits(sqlite_project: Project) -> None:
    sqlite_project.add_items(_imbalanced_labels())
    result = sqlite_project.materialize()
    version = result.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value
    row = sqlite_project.store.fetch(
        sa.select(dataset_versions_table.c.manifest).where(dataset_versions_table.c.dataset_version == version)
    )[0]
    manifest = dict(row["manifest"])
    first_train = manifest["split"].index("train")
    for column, value in (
        ("item_id", manifest["item_id"][first_train]),
        ("label", manifest["label"][first_train]),
    ):
        manifest[column] = [*manifest[column], value]
    manifest["split"] = [*manifest["split"], "test"]
    manifest.pop("sample_weight")
    with sqlite_project.store.begin() as conn:
        conn.execute(
            sa.update(dataset_versions_table)
            .where(dataset_versions_table.c.dataset_version == version)
            .values(manifest=manifest)
        )

    outcome = _check_results(sqlite_project.materialize(checks_only=True))
    assert outcome["dataset_splits_no_hash_in_two_splits"] is False
    assert outcome["dataset_splits_frozen_assignments_unchanged"] is False
