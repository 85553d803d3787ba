"""Label issues of box consensus: cleanlab.object_detection against detector boxes that are out of sample, i.e. the
stored pre-labels of a model that did not train on the item (its train split says which items it saw)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.store.dataset_versions import load_manifest, record_dataset_version
from labeling_assets.core.store.history import record_model_training
from labeling_assets.core.store.out_of_sample import out_of_sample_prelabels, trained_items
from labeling_assets.core.store.schema import LabelStore, prelabels_table, utcnow
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.kind import KIND

CLASSES = ["cat", "dog"]
W, H = 200.0, 100.0


def _box(label: str, x0: float, score: float = 0.97) -> dict[str, Any]:
    return {"label": label, "x0": x0, "y0": 20.0, "x1": x0 + 40.0, "y1": 70.0, "score": score}


def _output(*boxes: dict[str, Any]) -> dict[str, Any]:
    return {"boxes": list(boxes), "image_width": W, "image_height": H}


def _scene(i: int) -> list[dict[str, Any]]:
    """Item i: a cat at the left, and a dog at the right on every other item."""
    return [_box("cat", 10.0)] + ([_box("dog", 120.0)] if i % 2 else [])


def test_cleanlab_flags_the_consensus_boxes_an_out_of_sample_detector_contradicts() -> None:
    ids = [f"i{i:02d}" for i in range(16)]
    answers = [gold_answer(_scene(i), W, H) for i in range(16)]
    outputs: list[dict[str, Any] | None] = [_output(*_scene(i)) for i in range(16)]
    # i03: consensus calls the right-hand object a cat; i04: consensus misses the dog the detector is sure of.
    answers[3] = gold_answer([_box("cat", 10.0), _box("cat", 120.0)], W, H)
    outputs[4] = _output(*_scene(4), _box("dog", 120.0, 0.99))
    outputs[15] = None  # no detector that did not train on it
    issues, agreement = KIND.find_label_issues(ids, answers, outputs, CLASSES, 5)
    flagged = issues.issues.set_index("item_id")
    assert set(flagged.index) == {"i03", "i04"}
    assert flagged.loc["i03", "given_label"] == ["cat"] and flagged.loc["i03", "suggested_label"] == ["cat", "dog"]
    assert flagged.loc["i04", "given_label"] == ["cat"] and flagged.loc["i04", "suggested_label"] == ["cat", "dog"]
    assert issues.issues["label_quality"].is_monotonic_increasing
    assert issues.label_quality.drop(["i03", "i04"]).min() > issues.issues["label_quality"].max()
    assert "i15" not in issues.label_quality.index and issues.notes[0].startswith("1 of 16 items have no")
    assert agreement == pytest.approx(13 / 15)


def test_too_few_items_with_an_out_of_sample_output_is_no_search_and_says_so() -> None:
    ids = [f"i{i}" for i in range(12)]
    answers = [gold_answer(_scene(i), W, H) for i in range(12)]
    outputs = [_output(*_scene(i)) if i < 3 else None for i in range(12)]
    issues, _ = KIND.find_label_issues(ids, answers, outputs, CLASSES, 5)
    assert issues.issues.empty and issues.notes[-1] == "no label-issue search: only 3 item(s) with an out-of-sample detector output"


def test_only_pre_labels_of_a_model_that_did_not_train_on_the_item_are_out_of_sample(tmp_path: Path) -> None:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    try:
        ids = [f"i{i:02d}" for i in range(12)]
        rows = pd.DataFrame({"item_id": ids, "label": [gold_answer(_scene(i), W, H) for i in range(12)]})
        split = KIND.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(0.5, 0.25, 0.25), seed=0)
        manifest = split.frame
        version, _, document = KIND.manifest(manifest, CLASSES, previous_version=None, extra={})
        record_dataset_version(store, manifest, version, class_weights={}, manifest_json=document, card="")
        assert load_manifest(store, version)["label"].tolist() == manifest.sort_values("item_id")["label"].tolist()
        record_model_training(store, dataset_version=version, model_name="det", model_version=1,
                              mlflow_run_id=None, dagster_run_id=None)  # fmt: skip
        train = set(manifest.loc[manifest["split"] == "train", "item_id"])
        assert trained_items(store, "det/1") == train and trained_items(store, "baseline-x") is None
        now = utcnow()
        with store.begin() as conn:
            conn.execute(prelabels_table.insert(), [
                {"item_id": i, "model_version": m, "probs": _output(_box("cat", 10.0, s)), "computed_at": now}
                for i in ids for m, s in (("det/1", 0.9), ("baseline-x", 0.5))
            ])  # fmt: skip
        found = out_of_sample_prelabels(store, ids)
        assert set(found) == set(ids) - train and train and set(ids) - train
        assert all(model == "det/1" and out["boxes"][0]["score"] == 0.9 for out, model in found.values())
        outputs, source = KIND.label_issue_inputs(store, ids, [], feature_size=16, n_folds=5)
        assert [o is None for o in outputs] == [i in train for i in ids]
        assert source.endswith(f"({len(ids) - len(train)} of 12 items have one)")
    finally:
        store.dispose()
