"""``labeling-assets demo --task boxes``: its crowd's answers reach Label Studio as the boxes it drew, and its
summary scores the store's consensus and labelers against the simulated truth."""

import csv
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labeling_assets.cli.demo import start_over
from labeling_assets.cli.demo_boxes import SCENES, store_summary, use_boxes_environment
from labeling_assets.core.ingest.demo_data import LABELS_FILE
from labeling_assets.core.store.consensus_versions import write_consensus
from labeling_assets.core.store.queries import consensus_frame, current_annotations
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    labelers_table,
    source_files_table,
    sqlite_url,
)
from labeling_assets.core.tasks.boxes.crowd import default_box_crowd
from labeling_assets.core.tasks.boxes.crowd_report import consensus_map, labeler_recovery
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.labelstudio import box_label_config, read_boxes
from labeling_assets.core.tasks.boxes.votes import answer_boxes
from labeling_assets.env import data_dir
from labeling_assets.local.box_crowd import simulate_box_crowd
from tests.labelstudio_server import LabelStudioServer

CORNERS = ("x0", "y0", "x1", "y1")


@pytest.mark.labelstudio
def test_the_box_crowd_posts_boxes_that_read_back_in_pixels_as_drawn(
    label_studio: LabelStudioServer, tmp_path: Path
) -> None:
    scenes = render_digit_scenes(tmp_path / "scenes", n_images=12, canvas=160, empty_share=0.2, seed=3)
    truth = load_scene_truth(scenes.folder)
    assert any(not boxes for boxes in truth.values()), "the sample needs an empty scene"
    client = label_studio.client()
    project = client.ensure_project(title=f"demo-boxes-{uuid.uuid4().hex[:8]}", classes=SCENE_CLASSES, overlap=3,
                                    label_config=box_label_config(SCENE_CLASSES))  # fmt: skip
    client.import_tasks(project, [{"data": {"image": f"/data/{name}", "item_id": name}} for name in truth])
    crowd = default_box_crowd(5, prefix=f"t{uuid.uuid4().hex[:6]}")

    posted = simulate_box_crowd(client, project, crowd, truth=truth, classes=SCENE_CLASSES, canvas=(160, 160))

    assert sum(posted.per_labeler().values()) == 3 * len(truth)
    drawn = {(one.item_id, posted.user_ids[one.labeler]): one.boxes for _, one in posted.posted}
    exported = client.request("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})
    read = 0
    for task in exported:
        for annotation in task["annotations"]:
            reading = read_boxes(annotation["result"])
            assert reading.problem is None, reading.detail
            boxes, reason = answer_boxes(reading.answer, SCENE_CLASSES)
            assert reason is None
            want = drawn[(task["data"]["item_id"], int(annotation["completed_by"]))]
            assert reading.answer is not None and reading.answer["no_object"] == (not want)
            assert [b[0] for b in boxes] == [w["label"] for w in want]
            for got, w in zip(boxes, want, strict=True):
                assert list(got[1:]) == pytest.approx([w[k] for k in CORNERS], abs=1e-6)  # pixels, as drawn
            read += 1
    assert read == len(drawn)
    # A second run tops up to the overlap: everything is there already.
    again = simulate_box_crowd(client, project, crowd, truth=truth, classes=SCENE_CLASSES, canvas=(160, 160))
    assert again.posted == []


# A known store: three scenes (digit "1" boxes only), two labelers, and a consensus that found 2 of the 3 objects.
TRUTH: dict[str, list[dict[str, Any]]] = {
    "s1.png": [{"label": "1", "x0": 10.0, "y0": 10.0, "x1": 40.0, "y1": 50.0},
               {"label": "1", "x0": 80.0, "y0": 80.0, "x1": 120.0, "y1": 130.0}],
    "s2.png": [{"label": "1", "x0": 60.0, "y0": 20.0, "x1": 90.0, "y1": 60.0}],
    "s3.png": [],
}  # fmt: skip
FALSE_BOX = {"label": "1", "x0": 100.0, "y0": 0.0, "x1": 150.0, "y1": 40.0}
NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def _known_store(folder: Path) -> LabelStore:
    store = LabelStore(sqlite_url(str(folder / "labels.db")), cache_dir=folder / "cache")
    store.migrate()
    item = {name: f"item-{name[:2]}" for name in TRUTH}
    answers = {
        "1": {name: TRUTH[name] for name in TRUTH},  # draws every object exactly
        "2": {"s1.png": TRUTH["s1.png"][:1], "s2.png": [], "s3.png": [FALSE_BOX]},  # misses 2, one false box
    }
    rows = [
        {"ls_annotation_id": n, "version": 1, "item_id": item[name], "labeler_id": who,
         "label": gold_answer(boxes, 160.0, 160.0), "created_at": NOW, "synced_at": NOW, "deleted": False,
         "content_hash": str(n)}
        for n, (who, name, boxes) in enumerate(
            ((w, nm, b) for w, by in answers.items() for nm, b in by.items()), start=1)
    ]  # fmt: skip
    with store.begin() as conn:
        conn.execute(annotations_table.insert(), rows)
        conn.execute(labelers_table.insert(), [
            {"labeler_id": "1", "username": "sim_00_good", "first_seen_at": NOW},
            {"labeler_id": "2", "username": "sim_01_lazy", "first_seen_at": NOW},
        ])  # fmt: skip
        conn.execute(source_files_table.insert(), [
            {"source": "demo", "path": name, "item_id": item[name], "outcome": "new", "first_seen_at": NOW,
             "last_checked_at": NOW} for name in TRUTH
        ])  # fmt: skip
    consensus = {"s1.png": TRUTH["s1.png"], "s2.png": [], "s3.png": []}  # missed s2's object
    write_consensus(store, pd.DataFrame({
        "item_id": [item[n] for n in consensus], "label": [gold_answer(b, 160.0, 160.0) for b in consensus.values()],
        "confidence": [0.9, 0.6, 0.95], "agreement": [1.0, 0.5, 0.5], "n_annotators": [2, 2, 2],
    }), method="box_em", run_id=None)  # fmt: skip
    return store


def test_the_summary_scores_the_stored_consensus_and_each_labeler_against_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path))
    monkeypatch.delenv("LABEL_STORE_URL", raising=False)
    store = _known_store(tmp_path)
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    with open(scenes / LABELS_FILE, "w", newline="") as fh:  # as render_digit_scenes writes it
        csv.writer(fh).writerows([("filename", "label"), *((name, json.dumps(b)) for name, b in TRUTH.items())])
    truth = {f"item-{name[:2]}": boxes for name, boxes in TRUTH.items()}

    # 2 of 3 objects found exactly, no false box: precision 1 up to recall 2/3, so COCO's 101-point AP is 67/101
    # at every IoU threshold.
    found = consensus_map(truth, consensus_frame(store), ["1"])
    assert (found.map, found.ap50, found.n_truth, found.n_detections) == (pytest.approx(67 / 101), pytest.approx(67 / 101), 3, 2)
    table = labeler_recovery(truth, current_annotations(store), consensus_frame(store), ["1"]).set_index("labeler_id")
    assert table.loc["1", ["true_recall", "true_false_boxes_per_item", "true_mean_iou"]].tolist() == [1.0, 0.0, 1.0]
    # Against consensus the exact labeler looks as if they drew a false box on s2 (the object consensus missed).
    assert table.loc["1", ["consensus_recall", "consensus_false_boxes_per_item"]].tolist() == pytest.approx([1.0, 1 / 3])
    assert table.loc["2", ["true_recall", "true_false_boxes_per_item"]].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert table.loc["2", ["consensus_recall", "consensus_false_boxes_per_item"]].tolist() == pytest.approx([0.5, 1 / 3])

    lines = store_summary(scenes, ["1"], {}, {"test_map": 0.4321, "test_ap50": 0.9, "test_ap75": 0.5, "test_items": 45})
    text = "\n".join(lines)
    assert "3 items, 2 boxes (truth 3 on 3 scored items)" in text
    assert f"mAP@[.5:.95] {67 / 101:.3f}, AP50 {67 / 101:.3f}" in text
    assert "sim_01_lazy" in text and "0.333" in next(line for line in lines if "sim_01_lazy" in line)
    assert "model on the test split:   mAP@[.5:.95] 0.432, AP50 0.900, AP75 0.500 (45 items" in text


@pytest.fixture
def fresh_environment(tmp_path: Path) -> Iterator[Path]:
    # The demo sets variables that were unset before: the whole environment comes back afterwards, or a leaked task
    # type turns every later test into a box project.
    saved = dict(os.environ)
    os.environ["LABELING_ASSETS_HOME"] = str(tmp_path)
    for name in ("LABELING_ASSETS_TASK_TYPE", "LABELING_ASSETS_IMAGE_SOURCE", "DAGSTER_HOME"):
        os.environ.pop(name, None)
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.slow
def test_the_box_demo_keeps_its_own_folder_and_instance_and_fresh_makes_them_again(fresh_environment: Path) -> None:
    scenes = use_boxes_environment()
    home = fresh_environment / "boxes"
    assert scenes == home / "demo" / "scenes"
    assert os.environ["LABELING_ASSETS_IMAGE_SOURCE"] == str(scenes)
    assert Path(os.environ["DAGSTER_HOME"]) == home / "dagster_home"
    assert len(load_scene_truth(scenes)) == SCENES
    # --fresh empties the data folder (its scenes and instance with it); the demo then makes them again.
    assert start_over(data_dir()) is None
    assert not scenes.exists() and not (home / "dagster_home").exists()
    assert use_boxes_environment() == scenes
    assert len(load_scene_truth(scenes)) == SCENES
    assert (home / "dagster_home" / "dagster.yaml").is_file()
    assert data_dir() == home  # not <data>/boxes/boxes
