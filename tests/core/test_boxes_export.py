"""Box exports read back by readers nobody here wrote: COCO JSON by ``pycocotools.COCO``, YOLO and Pascal VOC by
``globox``, with the same boxes per image (count, class and coordinates) and images without boxes kept."""

from __future__ import annotations

from pathlib import Path

import globox
import pandas as pd
import pytest
import yaml
from PIL import Image
from pycocotools.coco import COCO

from labeling_assets.core.tasks.boxes.export import BoxExportError, export_coco, export_voc, export_yolo

CLASSES = ["cat", "dog", "traffic light"]
BOXES = pd.DataFrame(
    [("a", "cat", 10.5, 20.25, 110.0, 220.75), ("a", "dog", 300.0, 40.0, 639.0, 479.0),
     ("b", "traffic light", 0.0, 0.0, 32.0, 16.0), ("b", "cat", 5.0, 5.0, 6.5, 9.0)],
    columns=["item_id", "label", "x0", "y0", "x1", "y1"],
)  # fmt: skip
IMAGES = pd.DataFrame({"item_id": ["a", "b", "empty"], "file_name": ["a.png", "b.png", "empty.png"],
                       "width": [640, 320, 100], "height": [480, 240, 50]})  # fmt: skip


def expected() -> set[tuple[str, str, float, float, float, float]]:
    names = dict(zip(IMAGES["item_id"], IMAGES["file_name"], strict=True))
    return {(Path(names[i]).stem, label, round(x0, 3), round(y0, 3), round(x1, 3), round(y1, 3))
            for i, label, x0, y0, x1, y1 in BOXES.itertuples(index=False)}  # fmt: skip


def from_globox(annotations: globox.AnnotationSet, names: dict[str, str] | None = None) -> set[tuple[str, str, float, float, float, float]]:
    out = set()
    for annotation in annotations:
        for box in annotation.boxes:
            label = names[box.label] if names else box.label
            out.add((Path(annotation.image_id).stem, label, *(round(c, 3) for c in box.ltrb)))
    return out


def test_coco_export_reads_back_in_pycocotools(tmp_path: Path) -> None:
    coco = COCO(str(export_coco(BOXES, IMAGES, CLASSES, tmp_path / "coco.json")))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == len(BOXES)
    read = set()
    for image in coco.loadImgs(coco.getImgIds()):
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
            x, y, w, h = ann["bbox"]
            name = coco.loadCats([ann["category_id"]])[0]["name"]
            read.add((Path(image["file_name"]).stem, name, round(x, 3), round(y, 3), round(x + w, 3), round(y + h, 3)))
    assert read == expected()
    empty = next(i for i in coco.loadImgs(coco.getImgIds()) if i["file_name"] == "empty.png")
    assert (empty["width"], empty["height"]) == (100, 50) and coco.getAnnIds(imgIds=[empty["id"]]) == []


def test_yolo_export_reads_back_in_globox(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name, w, h in zip(IMAGES["file_name"], IMAGES["width"], IMAGES["height"], strict=True):
        Image.new("RGB", (int(w), int(h))).save(images / name)
    out = export_yolo(BOXES, IMAGES, CLASSES, tmp_path / "yolo")
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["nc"] == 3 and data["names"] == {0: "cat", 1: "dog", 2: "traffic light"}
    read = globox.AnnotationSet.from_yolo_v5(out / "labels", image_folder=images, image_extension=".png")
    assert len(read) == 3  # the image without boxes is there, with none
    assert sum(len(a.boxes) for a in read) == len(BOXES)
    assert from_globox(read, {str(n): c for n, c in enumerate(CLASSES)}) == expected()
    assert (out / "labels" / "empty.txt").read_text() == ""


def test_voc_export_reads_back_in_globox(tmp_path: Path) -> None:
    out = export_voc(BOXES, IMAGES, CLASSES, tmp_path / "voc")
    read = globox.AnnotationSet.from_pascal_voc(out / "Annotations")
    assert len(read) == 3 and sum(len(a.boxes) for a in read) == len(BOXES)
    assert from_globox(read) == expected()
    sizes = {Path(a.image_id).stem: a.image_size for a in read}
    assert sizes == {"a": (640, 480), "b": (320, 240), "empty": (100, 50)}


def test_export_refuses_a_class_outside_the_list_and_boxes_without_an_image(tmp_path: Path) -> None:
    with pytest.raises(BoxExportError, match="not in the class list"):
        export_coco(BOXES, IMAGES, ["cat"], tmp_path / "x.json")
    with pytest.raises(BoxExportError, match="without an image row"):
        export_voc(BOXES, IMAGES[IMAGES["item_id"] != "a"], CLASSES, tmp_path)
    assert not (tmp_path / "x.json").exists()


def test_a_box_manifest_goes_through_export_rows_to_the_kinds_formats(tmp_path: Path) -> None:
    """``export_rows`` (what the dataset_export stage reads a version with) keeps each box answer a dict, so the
    kind writes it; a label that is text is still text. The COCO file pycocotools reads holds every box."""
    from labeling_assets.core.dataset import export as ex
    from labeling_assets.core.tasks.boxes.gold import gold_answer
    from labeling_assets.core.tasks.boxes.kind import KIND

    uris = {}
    for item in ("a", "b"):
        Image.new("RGB", (64, 48)).save(tmp_path / f"{item}.png")
        uris[item] = str(tmp_path / f"{item}.png")
    two = gold_answer([{"label": "cat", "x0": 1.0, "y0": 2.0, "x1": 11.0, "y1": 12.0},
                       {"label": "dog", "x0": 20.0, "y0": 5.0, "x1": 40.0, "y1": 30.0}], 64.0, 48.0)  # fmt: skip
    manifest = pd.DataFrame({"item_id": ["b", "a"], "label": [gold_answer([]), two], "split": ["train", "train"]})
    rows = ex.export_rows(manifest, uris)
    assert rows["label"].tolist() == [two, gold_answer([])]
    assert ex.export_rows(manifest.assign(label=["cat", 3]), uris)["label"].tolist() == ["3", "cat"]
    assert {"coco", "yolo", "voc"} <= set(ex.FORMATS)
    KIND.export(rows, tmp_path / "out", ["coco"], ["cat", "dog"])
    coco = COCO(str(tmp_path / "out" / "coco" / "train.json"))
    assert len(coco.getImgIds()) == 2 and len(coco.getAnnIds()) == 2
    every = KIND.export(rows, tmp_path / "every", list(KIND.export_formats), ["cat", "dog"])  # the stage's default
    assert set(every.paths) == {"coco", "yolo", "voc", "jsonl", "parquet"}
    assert pd.read_parquet(every.paths["parquet"])["boxes"].map(len).tolist() == [2, 0]


def test_a_dataset_diff_of_box_versions_reads_boxes_not_the_answer_text() -> None:
    """Relabeled when a box moved, class deltas per box of each class ("(no object)" for none), votes and
    transitions shown as boxes in pixels."""
    from labeling_assets.core.dataset.diff import diff_manifests, render_diff, vote_changes
    from labeling_assets.core.tasks.boxes.gold import gold_answer

    def answer(*boxes: tuple[str, float]) -> dict[str, object]:
        return gold_answer([{"label": c, "x0": x, "y0": 0.0, "x1": x + 10.0, "y1": 10.0} for c, x in boxes], 64.0, 48.0)

    old = pd.DataFrame({"item_id": ["a", "b", "c"], "split": ["train", "val", "test"],
                        "label": [answer(("cat", 1.0)), answer(), answer(("dog", 5.0), ("cat", 20.0))]})  # fmt: skip
    new = old.assign(label=[answer(("cat", 2.0)), answer(("dog", 3.0)), answer(("cat", 20.0), ("dog", 5.0))])
    diff = diff_manifests(old, new, "v1", "v2")
    assert diff.relabeled["item_id"].tolist() == ["a", "b"]  # a box moved, one drawn; c's in another order: no change
    deltas = diff.class_deltas.set_index("class")
    assert deltas["delta"].to_dict() == {"(no object)": -1, "cat": 0, "dog": 1}
    assert diff.transitions()["no object -> dog (3.00, 0.00, 13.00, 10.00)"] == 1
    votes = pd.DataFrame({"item_id": ["c"], "labeler_id": ["L1"], "label": [answer(("dog", 5.0))]})
    changed = vote_changes(votes, votes.assign(label=[answer(("dog", 6.0))]), ["c"])
    assert changed["c"][0]["after"] == "dog (6.00, 0.00, 16.00, 10.00)"
    assert "'boxes'" not in render_diff(diff)  # no Python repr of an answer anywhere


def test_the_jsonl_and_parquet_tables_hold_each_image_with_its_split_and_boxes(tmp_path: Path) -> None:
    """Issue 30: the existing JSONL/Parquet exports beside COCO, YOLO and VOC, read back by pandas (and pyarrow):
    one row per image, its boxes in pixels, an image without objects with none."""
    from labeling_assets.core.tasks.boxes.export import export_table

    images = IMAGES.assign(split=["train", "val", "test"])
    jsonl = pd.read_json(export_table(BOXES, images, tmp_path / "dataset.jsonl"), lines=True, dtype=False)
    parquet = pd.read_parquet(export_table(BOXES, images, tmp_path / "dataset.parquet"))
    for table in (jsonl, parquet):
        assert table["item_id"].tolist() == ["a", "b", "empty"] and table["split"].tolist() == ["train", "val", "test"]
        assert table["width"].tolist() == [640.0, 320.0, 100.0]
        read = {(Path(name).stem, b["label"], round(b["x0"], 3), round(b["y0"], 3), round(b["x1"], 3), round(b["y1"], 3))
                for name, boxes in zip(table["file_name"], table["boxes"], strict=True) for b in boxes}  # fmt: skip
        assert read == expected()
        assert len(table.set_index("item_id").loc["empty", "boxes"]) == 0
