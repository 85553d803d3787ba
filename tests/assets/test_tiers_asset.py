"""Machine labels with a guarantee through Dagster: dataset_splits labels confident items by the champion, every item
carries its tier into the export, and a check sample that disagrees with people suspends the tier (docs/tiers.md).

Reuses the store/instance helpers of test_dataset_assets (real PNGs, a real SQLite store, a real Dagster instance).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.core.dataset.splits import manifest_from_json
from labeling_assets.core.store.dataset_versions import manifest_document
from labeling_assets.core.store.schema import LabelStore, consensus_table, items_table, prelabels_table
from labeling_assets.core.store.tiers import (
    check_sample_labels,
    decision_of,
    machine_labeled_not_for_people,
    machine_tier_items,
)
from labeling_assets.resources.project import ProjectSettings
from tests.assets.test_dataset_assets import CHECKS, CLASSES, NOW, Project, _png

CHAMPION = "labeling-assets-classifier/1"


@pytest.fixture
def tiers_project(sqlite_store: LabelStore, data_dir: Path) -> Iterator[Project]:
    with dg.instance_for_test() as instance:
        yield Project(sqlite_store, data_dir, instance)


def _probs(label: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(CLASSES) - 1)
    return {c: (p if c == label else rest) for c in CLASSES}


def _add_unlabeled(project: Project, n: int) -> list[str]:
    raw = project.data_dir / "raw"
    raw.mkdir(exist_ok=True)
    ids, rows = [], []
    for _ in range(n):
        data = _png(project.next_index)
        project.next_index += 1
        item_id = hashlib.sha256(data).hexdigest()
        (raw / f"{item_id}.png").write_bytes(data)
        ids.append(item_id)
        rows.append({"item_id": item_id, "uri": str(raw / f"{item_id}.png"), "source_path": f"file:///u/{item_id[:8]}",
                     "n_bytes": len(data), "ingested_at": NOW, "status": "active"})  # fmt: skip
    with project.store.begin() as conn:
        conn.execute(items_table.insert(), rows)
    return ids


def _prelabel(project: Project, probs: dict[str, dict[str, float]]) -> None:
    with project.store.begin() as conn:
        conn.execute(prelabels_table.insert(), [
            {"item_id": i, "model_version": CHAMPION, "probs": p, "computed_at": NOW} for i, p in probs.items()
        ])  # fmt: skip


@pytest.mark.slow
def test_confident_items_get_machine_labels_in_train_with_tiers_in_the_export_until_the_check_sample_disagrees(
    tiers_project: Project,
) -> None:
    project = tiers_project
    project.resources["project"] = ProjectSettings(
        data_dir=str(project.data_dir), classes=CLASSES, machine_label_target=0.98, machine_label_check_rate=0.5
    )
    labels = [CLASSES[k % 3] for k in range(300)]
    humans = project.add_items(labels)
    with project.store.begin() as conn:  # one gold item: the verified tier
        conn.execute(items_table.update().where(items_table.c.item_id == humans[0]).values(gold_label="cat"))
    confident, unsure = _add_unlabeled(project, 40), _add_unlabeled(project, 10)
    # The champion is right at 0.999 on every human item (300/300: lower bound 0.990 >= 0.98).
    _prelabel(project, {i: _probs(lab, 0.999) for i, lab in zip(humans, labels, strict=True)}
              | {i: _probs("dog", 0.995) for i in confident} | {i: _probs("eel", 0.40) for i in unsure})

    result = project.materialize(export=True)

    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {c.check_key.name: True for c in CHECKS}
    meta = result.asset_materializations_for_node("dataset_splits")[0].metadata
    version = meta["dataset_version"].value
    decided = decision_of(project.store, version)
    assert decided is not None and decided["status"] == "on" and decided["n_machine"] == 40
    assert decided["n_reference"] == 300 and decided["lower_bound"] >= 0.98
    assert meta["items_per_tier"].value == {"verified": 1, "consensus": 299, "machine": 40}
    document = manifest_document(project.store, version)
    assert machine_tier_items(document) == set(confident)
    manifest = manifest_from_json(document).set_index("item_id")
    assert (manifest.loc[confident, "split"] == "train").all()  # val and test stay human-labeled
    assert (manifest.loc[confident, "label"] == "dog").all() and not set(unsure) & set(manifest.index)
    lines = {r["item_id"]: r for r in map(json.loads, (project.data_dir / "exports" / version / "dataset.jsonl")
                                          .read_text().splitlines())}  # fmt: skip
    assert (lines[confident[0]]["tier"], lines[confident[0]]["tier_confidence"]) == ("machine", 0.995)
    assert (lines[humans[0]]["tier"], lines[humans[1]]["tier"], lines[humans[1]]["tier_confidence"]) == (
        "verified", "consensus", 0.9)
    assert "## Label tiers" in meta["card"].value and "Machine labels: **on**" in meta["card"].value
    sampled = check_sample_labels(project.store, CHAMPION)
    assert 5 <= len(sampled) <= 35 and set(sampled) <= set(confident)
    # The queue leaves out the machine-labeled items, except the check sample.
    assert machine_labeled_not_for_people(project.store) == set(confident) - set(sampled)

    # People label the check sample and disagree with every machine label: the upper bound falls below the
    # target, the next version has no machine tier, and the (non-blocking) check says so.
    with project.store.begin() as conn:
        conn.execute(consensus_table.insert(), [
            {"item_id": i, "version": 1, "label": "cat", "method": "dawid_skene", "confidence": 0.9, "agreement": 1.0,
             "n_annotators": 2, "computed_at": NOW + dt.timedelta(hours=1)} for i in sampled
        ])  # fmt: skip
    again = project.materialize(export=False)
    assert again.success
    evaluations = {e.check_name: e for e in again.get_asset_check_evaluations()}
    assert not evaluations["dataset_splits_machine_labels_hold_target"].passed
    assert all(e.passed for name, e in evaluations.items() if name != "dataset_splits_machine_labels_hold_target")
    second = again.asset_materializations_for_node("dataset_splits")[0].metadata["dataset_version"].value
    decided = decision_of(project.store, second)
    assert decided is not None and decided["status"] == "suspended" and decided["n_machine"] == 0
    assert decided["production"]["n"] == len(sampled) and decided["production"]["below_target"]
    document = manifest_document(project.store, second)
    assert machine_tier_items(document) == set() and machine_labeled_not_for_people(project.store) == set()
    # The earlier machine items stay frozen in train (splits never move) but leave the version until people label.
    frozen = project.split_of()
    assert all(frozen[i] == "train" for i in confident)
    assert not (set(confident) - set(sampled)) & set(document["item_id"])
    assert project.store.count(items_table) == 350  # nothing was deleted on the way

