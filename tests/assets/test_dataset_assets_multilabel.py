"""dataset_splits / dataset_export / their checks for a multi-label project, on a real Dagster instance and
real SQLite and PostgreSQL stores: label sets in the manifest, iterative stratification, the per-label
presence check, exports with a list field and 0/1 columns, ImageFolder refused."""

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterator, Sequence
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
from labeling_assets.checks import dataset as checks
from labeling_assets.cli import dataset as dataset_cli
from labeling_assets.core.dataset import iterative_stratification as it
from labeling_assets.core.dataset.build import manifest_bytes
from labeling_assets.core.dataset.splits import manifest_from_json
from labeling_assets.core.labelstudio.crowd import SetLabelerSpec, plan_set_crowd
from labeling_assets.core.store.as_of import rebuild_dataset_as_of
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    dataset_versions_table,
    items_table,
    splits_table,
)
from labeling_assets.lineage import BLOCKING_DATASET_CHECKS, failed_blocking_dataset_checks
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CLASSES = ["Effusion", "Mass", "Nodule", "Hernia"]
CHECKS = [
    checks.dataset_splits_no_hash_in_two_splits,
    checks.dataset_splits_no_group_in_two_splits,
    checks.dataset_splits_no_near_duplicates_in_two_splits,
    checks.dataset_splits_class_proportions_within_tolerance,
    checks.dataset_splits_frozen_assignments_unchanged,
    checks.dataset_splits_every_class_in_every_split,
    checks.dataset_splits_every_label_in_val_and_test,
    checks.dataset_splits_only_live_labeled_items,
]


def _png(index: int) -> bytes:
    pixels = np.random.default_rng(index).integers(0, 256, size=(12, 12), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


class Project:
    """A multi-label project: a data folder, a store, a Dagster instance, and items with label-set consensus."""

    def __init__(self, store: LabelStore, data_dir: Path, instance: dg.DagsterInstance) -> None:
        self.store, self.data_dir, self.instance = store, data_dir, instance
        self.next_index = 0
        self.resources = {
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(data_dir), classes=CLASSES, task_type="multi_label"),
        }

    def add_items(self, labels: Sequence[Any], groups: Sequence[str | None] | None = None) -> list[str]:
        raw = self.data_dir / "raw"
        raw.mkdir(exist_ok=True)
        ids, item_rows, consensus_rows = [], [], []
        for k, label in enumerate(labels):
            data = _png(self.next_index)
            self.next_index += 1
            item_id = hashlib.sha256(data).hexdigest()
            (raw / f"{item_id}.png").write_bytes(data)
            ids.append(item_id)
            item_rows.append(
                {
                    "item_id": item_id,
                    "uri": str(raw / f"{item_id}.png"),
                    "source_path": f"file:///src/{item_id[:8]}.png",
                    "n_bytes": len(data),
                    "ingested_at": NOW,
                    "status": "active",
                    "group_key": groups[k] if groups else None,
                }
            )
            marginals = {c: (0.9 if isinstance(label, list) and c in label else 0.1) for c in CLASSES}
            consensus_rows.append(
                {
                    "item_id": item_id,
                    "version": 1,
                    "label": label,
                    "method": "dawid_skene",
                    "confidence": 0.9,
                    "agreement": 1.0,
                    "n_annotators": 3,
                    "computed_at": NOW,
                    "probabilities": marginals,
                }
            )
        with self.store.begin() as conn:
            conn.execute(items_table.insert(), item_rows)
            conn.execute(consensus_table.insert(), consensus_rows)
        return ids

    def freeze(self, item_ids: Sequence[str], split: str) -> None:
        with self.store.begin() as conn:
            conn.execute(
                splits_table.insert(),
                [
                    {"item_id": i, "split": split, "dataset_version": "old", "assigned_at": NOW}
                    for i in item_ids
                ],
            )

    def materialize(
        self, *, export: bool = False, formats: list[str] | None = None
    ) -> dg.ExecuteInProcessResult:
        assets = [dataset_splits, dataset_export, *CHECKS] if export else [dataset_splits, *CHECKS]
        run_config = {"ops": {"dataset_export": {"config": {"formats": formats}}}} if formats else None
        return dg.materialize(
            assets,
            instance=self.instance,
            resources=self.resources,
            run_config=run_config,
            raise_on_error=False,
        )


def _label_sets(n: int, seed: int = 0) -> list[list[str]]:
    """Skewed findings: Effusion common, Mass and Nodule co-occurring, Hernia rare (6 positives); 40% none."""
    rng = np.random.default_rng(seed)
    sets = []
    for i in range(n):
        found = {c for c, p in zip(CLASSES[:3], (0.35, 0.15, 0.1), strict=True) if rng.random() < p}
        if "Mass" in found and rng.random() < 0.6:
            found.add("Nodule")
        if i % (n // 6) == 0:
            found.add("Hernia")
        sets.append(sorted(found))
    return sets


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def project(store: LabelStore, data_dir: Path) -> Iterator[Project]:
    with dg.instance_for_test() as instance:
        yield Project(store, data_dir, instance)


@pytest.fixture
def sqlite_project(sqlite_store: LabelStore, data_dir: Path) -> Iterator[Project]:
    with dg.instance_for_test() as instance:
        yield Project(sqlite_store, data_dir, instance)


@pytest.mark.slow
def test_a_multi_label_dataset_is_stratified_per_label_grouped_versioned_and_exported(
    project: Project,
) -> None:
    sets = _label_sets(240)
    groups = [f"patient{i // 4}" if i < 80 else None for i in range(240)]
    ids = project.add_items(sets, groups=groups)

    result = project.materialize(export=True)

    assert result.success
    outcome = _checks(result)
    assert {name: e.passed for name, e in outcome.items()} == {c.check_key.name: True for c in CHECKS}
    meta = result.asset_materializations_for_node("dataset_splits")[0].metadata
    version = meta["dataset_version"].value
    row = project.store.fetch(
        sa.select(dataset_versions_table).where(dataset_versions_table.c.dataset_version == version)
    )[0]
    document = json.loads(row["manifest"]) if isinstance(row["manifest"], str) else row["manifest"]
    assert document["task_type"] == "multi_label" and document["classes"] == CLASSES
    manifest = manifest_from_json(document)
    assert dict(zip(manifest["item_id"], manifest["label"], strict=True)) == dict(zip(ids, sets, strict=True))
    # pos_weight from the train split, stored as the version's weights and shown on the materialization.
    expected = it.pos_weights(manifest[manifest["split"] == "train"], CLASSES)
    assert row["class_weights"] == pytest.approx(expected)
    assert meta["pos_weight"].value == pytest.approx(expected)
    # Per-label proportions kept, every label (Hernia: 6 positives) in val and test, groups whole.
    assert it.prevalence_deviations(manifest, CLASSES, 0.05)["ok"].all()
    assert it.labels_missing_from_splits(manifest, CLASSES).empty
    by_group = (
        manifest.set_index("item_id").loc[ids[:80], "split"].groupby([g for g in groups[:80]]).nunique()
    )
    assert (by_group == 1).all()
    card = meta["card"].value
    assert "## Label prevalence per split" in card and "## Co-occurrence" in card
    assert row["card"] == card

    export = result.asset_materializations_for_node("dataset_export")[0].metadata
    out = Path(export["export_dir"].value)
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "dataset.csv",
        "dataset.jsonl",
        "dataset.parquet",
        "label_columns.json",
    ]  # the default formats without ImageFolder
    records = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
    assert {r["item_id"]: r["label"] for r in records} == dict(zip(ids, sets, strict=True))
    with open(out / "dataset.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    columns = ["label_effusion", "label_mass", "label_nodule", "label_hernia"]
    assert list(table[0]) == ["image_path", "split", "item_id", "tier", "tier_confidence", *columns]
    assert {r["tier"] for r in table} <= {"verified", "consensus"}  # sets of classes get no machine tier
    indicator = {r["item_id"]: [int(r[c]) for c in columns] for r in table}
    assert indicator == {i: [int(c in s) for c in CLASSES] for i, s in zip(ids, sets, strict=True)}
    parquet = pd.read_parquet(out / "dataset.parquet")
    assert parquet[columns].sum().tolist() == [sum(c in s for s in sets) for c in CLASSES]


@pytest.mark.slow
def test_consensus_rows_that_are_not_label_sets_of_the_project_are_left_out_and_counted(
    sqlite_project: Project,
) -> None:
    sqlite_project.add_items([*_label_sets(60), "Mass", ["Zebra"]])
    result = sqlite_project.materialize()
    assert result.success
    meta = result.asset_materializations_for_node("dataset_splits")[0].metadata
    assert meta["n_items"].value == 60
    assert meta["excluded_items"].value == {
        "consensus label is not a label set of the project (not_a_set)": 1,
        "consensus label is not in the class list": 1,
    }


@pytest.mark.slow
def test_an_explicit_imagefolder_export_is_refused_with_the_alternatives(sqlite_project: Project) -> None:
    sqlite_project.add_items(_label_sets(60))
    result = sqlite_project.materialize(export=True, formats=["jsonl", "imagefolder"])
    assert not result.success
    failure = result.failure_data_for_node("dataset_export")
    assert failure is not None
    message = str(failure.error)
    assert "imagefolder export is refused for a multi_label project" in message
    assert all(name in message for name in ("jsonl", "csv", "parquet"))
    assert not (sqlite_project.data_dir / "exports").exists()


@pytest.mark.slow
def test_a_label_kept_out_of_val_by_frozen_items_fails_the_presence_check_and_blocks_the_export(
    sqlite_project: Project,
) -> None:
    sets = _label_sets(120)
    ids = sqlite_project.add_items(sets)
    hernia = [i for i, s in zip(ids, sets, strict=True) if "Hernia" in s]
    sqlite_project.freeze(hernia, "train")  # an earlier run put every Hernia in train; frozen items stay

    result = sqlite_project.materialize(export=True)

    presence = _checks(result)["dataset_splits_every_label_in_val_and_test"]
    assert presence.passed is False and presence.severity == dg.AssetCheckSeverity.ERROR
    missing = presence.metadata["missing"].value
    assert {(m["label"], m["split"]) for m in missing} == {("Hernia", "val"), ("Hernia", "test")}
    assert not result.asset_materializations_for_node("dataset_export")
    assert failed_blocking_dataset_checks(sqlite_project.instance) == [
        "dataset_splits_every_label_in_val_and_test"
    ]
    card = result.asset_materializations_for_node("dataset_splits")[0].metadata["card"].value
    assert "keep these labels out of a split" in card


@pytest.mark.slow
def test_a_label_with_too_few_positives_for_every_split_only_warns_and_does_not_block(
    sqlite_project: Project,
) -> None:
    sets = [s for s in _label_sets(120) if "Hernia" not in s]
    sets[0], sets[1] = ["Hernia"], ["Effusion", "Hernia"]  # two positives: cannot be in train, val and test
    sqlite_project.add_items(sets)

    result = sqlite_project.materialize(export=True)

    presence = _checks(result)["dataset_splits_every_label_in_val_and_test"]
    assert presence.passed is False and presence.severity == dg.AssetCheckSeverity.WARN
    assert presence.metadata["blocking_missing"].value == 0
    assert failed_blocking_dataset_checks(sqlite_project.instance) == []
    assert result.asset_materializations_for_node("dataset_export")


@pytest.mark.slow
def test_a_relabeled_set_makes_a_new_version_whose_diff_counts_per_label_and_rebuilds_byte_for_byte(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = _label_sets(80)
    ids = sqlite_project.add_items(sets)
    first = sqlite_project.materialize()
    before = first.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value
    plain = next(k for k, s in enumerate(sets) if s == ["Effusion"])
    with sqlite_project.store.begin() as conn:  # consensus now also finds a Mass on that item
        conn.execute(
            consensus_table.insert().values(
                item_id=ids[plain],
                version=2,
                label=["Effusion", "Mass"],
                method="dawid_skene",
                confidence=0.8,
                agreement=0.7,
                n_annotators=3,
                computed_at=dt.datetime.now(dt.UTC),
            )
        )

    second = sqlite_project.materialize()

    meta = second.asset_materializations_for_node("dataset_splits")[0].metadata
    assert meta["dataset_version"].value != before and meta["previous_version"].value == before
    assert meta["relabeled_by_transition"].value == {'["Effusion"] -> ["Effusion", "Mass"]': 1}
    assert meta["items_moved_between_splits"].value == 0
    assert re.search(r"\| Mass \| \d+ \| \d+ \| \+1 \|", meta["diff"].value)  # a per-label delta
    assert re.search(r"\| Effusion \| \d+ \| \d+ \| \+0 \|", meta["diff"].value)
    # The store's logs rebuild this multi-label version byte for byte.
    rebuilt = rebuild_dataset_as_of(sqlite_project.store, dt.datetime.now(dt.UTC), classes=CLASSES)
    stored = sqlite_project.store.fetch(
        sa.select(dataset_versions_table.c.manifest).where(
            dataset_versions_table.c.dataset_version == meta["dataset_version"].value
        )
    )[0]["manifest"]
    assert rebuilt.built.version == meta["dataset_version"].value
    assert manifest_bytes(rebuilt.built.manifest_json) == manifest_bytes(stored)
    # So does the CLI, whose manifest.csv holds each label set as JSON text.
    monkeypatch.setenv("LABEL_STORE_URL", sqlite_project.store.url)
    monkeypatch.setattr(dataset_cli, "project_classes", lambda: CLASSES)
    out = sqlite_project.data_dir / "as-of"
    when = dt.datetime.now(dt.UTC).isoformat()
    assert dataset_cli.cmd_as_of(argparse.Namespace(time=when, out=str(out))) == 0
    assert (out / "manifest.json").read_bytes() == manifest_bytes(stored)
    written = pd.read_csv(out / "manifest.csv").set_index("item_id")["label"]
    assert json.loads(written[ids[plain]]) == ["Effusion", "Mass"]


@pytest.mark.slow
def test_a_crowd_consensus_of_label_sets_flows_into_the_dataset_and_its_export(
    sqlite_project: Project,
) -> None:
    """consensus_labels (per-class aggregation) then dataset_splits: the stages agree on the stored sets."""
    truth_sets = _label_sets(150, seed=3)
    ids = sqlite_project.add_items(truth_sets)
    with sqlite_project.store.begin() as conn:  # no consensus yet: the crowd's votes decide it
        conn.execute(consensus_table.delete())
    crowd = [SetLabelerSpec("expert", "expert"), SetLabelerSpec("average_1"), SetLabelerSpec("average_2")]
    plan = plan_set_crowd(dict(zip(ids, truth_sets, strict=True)), crowd, CLASSES, overlap=3, seed=0)
    with sqlite_project.store.begin() as conn:
        conn.execute(
            annotations_table.insert(),
            [
                {
                    "ls_annotation_id": n + 1,
                    "version": 1,
                    "item_id": str(a.item_id),
                    "labeler_id": a.labeler,
                    "label": list(a.labels),
                    "synced_at": NOW,
                    "updated_at": NOW,
                    "deleted": False,
                    "content_hash": f"h{n}",
                }  # fmt: skip
                for n, a in enumerate(plan.annotations)
            ],
        )

    result = dg.materialize(
        [consensus_labels, dataset_splits, dataset_export, *CHECKS],
        instance=sqlite_project.instance,
        resources=sqlite_project.resources,
        raise_on_error=False,
    )

    assert result.success
    assert all(e.passed for e in _checks(result).values()), _checks(result)
    meta = result.asset_materializations_for_node("dataset_splits")[0].metadata
    assert meta["n_items"].value == 150 and meta["excluded_items"].value == {}
    assert "**Annotators**: 3 (450 current annotations on these items)" in meta["card"].value
    out = Path(result.asset_materializations_for_node("dataset_export")[0].metadata["export_dir"].value)
    records = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
    consensus = {
        r["item_id"]: r["label"]
        for r in sqlite_project.store.fetch(sa.select(consensus_table.c.item_id, consensus_table.c.label))
    }
    assert {r["item_id"]: r["label"] for r in records} == consensus
    agree = np.mean([consensus[i] == s for i, s in zip(ids, truth_sets, strict=True)])
    assert agree > 0.8  # an expert and two average labelers: most consensus sets are the true ones


def test_blocking_check_names_match_the_checks_that_block() -> None:
    blocking = {spec.name for c in CHECKS for spec in c.check_specs if spec.blocking}
    assert blocking == set(BLOCKING_DATASET_CHECKS)
