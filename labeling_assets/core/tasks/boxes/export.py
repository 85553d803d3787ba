"""Box datasets in the formats detectors read: COCO JSON, YOLO (one txt per image + ``data.yaml``) and Pascal VOC
XML (one file per image). Each is read back in tests by a reader nobody here wrote (``pycocotools.COCO``;
``globox`` for YOLO and VOC) with equal box counts and coordinates. Beside them the tables every kind has:
``dataset.jsonl`` and ``dataset.parquet``, one row per image with its split and its boxes as a list.

Input: ``boxes`` (``item_id, label, x0, y0, x1, y1`` in pixels: consensus objects) and ``images`` (``item_id,
file_name, width, height``): every image is written, one without boxes too (an image known to hold no object
is a negative example, not a missing one). Coordinates are written as floats, not rounded to pixels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pandas as pd
import yaml
from PIL import Image

from labeling_assets.core.dataset.export import ExportReport
from labeling_assets.core.tasks.boxes.matching import CORNERS
from labeling_assets.core.tasks.boxes.votes import answer_boxes

BOX_EXPORT_FORMATS = ("coco", "yolo", "voc", "jsonl", "parquet")
TABLE_FORMATS = ("jsonl", "parquet")  # one file for every split, at the export folder's top


class BoxExportError(ValueError):
    """Boxes that cannot be exported as asked (a class not in the list, an image without its size)."""


def _check(boxes: pd.DataFrame, images: pd.DataFrame, classes: Sequence[str]) -> None:
    unknown = sorted(set(boxes["label"]) - set(classes))
    if unknown:
        raise BoxExportError(f"boxes of classes not in the class list: {unknown[:5]}")
    missing = sorted(set(boxes["item_id"]) - set(images["item_id"]))
    if missing:
        raise BoxExportError(f"boxes on {len(missing)} item(s) without an image row, e.g. {missing[:3]}")
    if images[["width", "height"]].isna().any().any() or (images[["width", "height"]] <= 0).any().any():
        raise BoxExportError("every image needs its width and height")


def _images(images: pd.DataFrame) -> list[tuple[Any, str, float, float]]:
    """``(item_id, file_name, width, height)`` of each image row."""
    return [(item, str(name), float(w), float(h)) for item, name, w, h in zip(
        images["item_id"].tolist(), images["file_name"].tolist(), images["width"].tolist(),
        images["height"].tolist(), strict=True)]  # fmt: skip


def _boxes_by_item(boxes: pd.DataFrame) -> dict[Any, list[tuple[str, float, float, float, float]]]:
    out: dict[Any, list[tuple[str, float, float, float, float]]] = {}
    for item, label, x0, y0, x1, y1 in zip(*(boxes[c].tolist() for c in ["item_id", "label", *CORNERS]), strict=True):
        out.setdefault(item, []).append((str(label), float(x0), float(y0), float(x1), float(y1)))
    return out


def export_coco(boxes: pd.DataFrame, images: pd.DataFrame, classes: Sequence[str], path: Path) -> Path:
    """One COCO detection JSON: images (ids from 1, in ``images`` order), categories (ids from 1, in class
    order), annotations with ``bbox`` ``[x, y, width, height]``, ``area`` and ``iscrowd`` 0."""
    _check(boxes, images, classes)
    image_id = {item: n + 1 for n, item in enumerate(images["item_id"])}
    category = {c: n + 1 for n, c in enumerate(classes)}
    annotations: list[dict[str, Any]] = []
    for item, mine in _boxes_by_item(boxes).items():
        for label, x0, y0, x1, y1 in mine:
            w, h = x1 - x0, y1 - y0
            annotations.append({"id": len(annotations) + 1, "image_id": image_id[item], "category_id": category[label],
                                "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0})  # fmt: skip
    document = {
        "images": [{"id": image_id[item], "file_name": name, "width": int(w), "height": int(h)}
                   for item, name, w, h in _images(images)],
        "categories": [{"id": i, "name": c, "supercategory": "object"} for c, i in category.items()],
        "annotations": annotations,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def export_yolo(boxes: pd.DataFrame, images: pd.DataFrame, classes: Sequence[str], out_dir: Path) -> Path:
    """YOLO: ``labels/<image stem>.txt`` with ``class cx cy w h`` (class index from 0, the rest relative to the
    image size) per box, an empty file for an image without boxes, and ``data.yaml`` (``names``, ``nc``)."""
    _check(boxes, images, classes)
    index = {c: n for n, c in enumerate(classes)}
    labels = out_dir / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    by_item = _boxes_by_item(boxes)
    for item, name, width, height in _images(images):
        lines = []
        for label, x0, y0, x1, y1 in by_item.get(item, []):
            lines.append(f"{index[label]} {(x0 + x1) / 2 / width!r} {(y0 + y1) / 2 / height!r} "
                             f"{(x1 - x0) / width!r} {(y1 - y0) / height!r}")  # fmt: skip
        (labels / f"{Path(name).stem}.txt").write_text(
            "".join(line + "\n" for line in lines), encoding="utf-8"
        )
    data = {"path": str(out_dir), "train": "images", "val": "images", "nc": len(classes),
            "names": {n: c for n, c in enumerate(classes)}}  # fmt: skip
    (out_dir / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out_dir


def export_voc(boxes: pd.DataFrame, images: pd.DataFrame, classes: Sequence[str], out_dir: Path) -> Path:
    """Pascal VOC: ``Annotations/<image stem>.xml`` per image (``filename``, ``size``, one ``object`` with
    ``name`` and ``bndbox`` ``xmin ymin xmax ymax`` per box)."""
    _check(boxes, images, classes)
    folder = out_dir / "Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    by_item = _boxes_by_item(boxes)
    for item, name, width, height in _images(images):
        root = ElementTree.Element("annotation")
        ElementTree.SubElement(root, "filename").text = name
        size = ElementTree.SubElement(root, "size")
        for tag, value in (("width", width), ("height", height), ("depth", 3.0)):
            ElementTree.SubElement(size, tag).text = str(int(value))
        for label, x0, y0, x1, y1 in by_item.get(item, []):
            obj = ElementTree.SubElement(root, "object")
            ElementTree.SubElement(obj, "name").text = label
            ElementTree.SubElement(obj, "difficult").text = "0"
            box = ElementTree.SubElement(obj, "bndbox")
            for tag, coordinate in (("xmin", x0), ("ymin", y0), ("xmax", x1), ("ymax", y1)):
                ElementTree.SubElement(box, tag).text = repr(coordinate)
        ElementTree.ElementTree(root).write(folder / f"{Path(name).stem}.xml", encoding="utf-8")
    return out_dir


def export_version(rows: pd.DataFrame, out_dir: Path, formats: Sequence[str], classes: Sequence[str]) -> ExportReport:
    """A dataset version's files, one folder per format and split (``coco/<split>.json``, ``yolo/<split>/``,
    ``voc/<split>/``). ``rows``: ``item_id, image_path, label, split`` with ``label`` the stored box answer (a
    dict, not its text); each image's size is read from its file (an image without objects has no box to carry
    it), its file name is the stored copy's."""
    unknown = sorted(set(formats) - set(BOX_EXPORT_FORMATS))
    if unknown:
        raise BoxExportError(f"unknown box export format(s) {unknown}; expected some of {list(BOX_EXPORT_FORMATS)}")
    boxes: list[tuple[Any, ...]] = []
    images: list[tuple[Any, ...]] = []
    for item, path, answer, split in zip(rows["item_id"], rows["image_path"], rows["label"], rows["split"], strict=True):
        found, reason = answer_boxes(answer, classes)
        if reason is not None:
            raise BoxExportError(f"item {item}: its label is not a box answer of the project ({reason})")
        with Image.open(path) as image:
            width, height = image.size
        images.append((item, Path(path).name, float(width), float(height), split))
        boxes.extend((item, *box) for box in found)
    image_frame = pd.DataFrame(images, columns=["item_id", "file_name", "width", "height", "split"])
    stems = image_frame["file_name"].map(lambda n: Path(n).stem)
    if stems.duplicated().any():  # YOLO and VOC name one file per image by its stem
        raise BoxExportError(f"two images share a file stem, e.g. {stems[stems.duplicated()].iloc[0]!r}")
    box_frame = pd.DataFrame(boxes, columns=["item_id", "label", *CORNERS])
    report = ExportReport(out_dir)
    for name in (f for f in formats if f in TABLE_FORMATS):
        report.paths[name] = export_table(box_frame, image_frame, out_dir / f"dataset.{name}")
    for split, mine in image_frame.groupby("split", sort=True):
        theirs = box_frame[box_frame["item_id"].isin(set(mine["item_id"]))]
        for name in (f for f in formats if f not in TABLE_FORMATS):
            target = out_dir / name
            if name == "coco":
                export_coco(theirs, mine, classes, target / f"{split!s}.json")
            elif name == "yolo":
                export_yolo(theirs, mine, classes, target / str(split))
            else:
                export_voc(theirs, mine, classes, target / str(split))
            report.paths[name] = target
    return report


def export_table(boxes: pd.DataFrame, images: pd.DataFrame, path: Path) -> Path:
    """``dataset.jsonl`` or ``dataset.parquet`` (by the suffix): one row per image, ``item_id, file_name, width,
    height, split, boxes`` with ``boxes`` a list of ``{label, x0, y0, x1, y1}`` in pixels (``[]``: no object)."""
    per_image: dict[str, list[dict[str, Any]]] = {str(i): [] for i in images["item_id"]}
    for item, label, *corners in boxes[["item_id", "label", *CORNERS]].itertuples(index=False):
        per_image[str(item)].append({"label": str(label), **{c: float(v) for c, v in zip(CORNERS, corners, strict=True)}})
    table = images.sort_values("item_id", kind="stable").reset_index(drop=True)
    table = table.assign(width=table["width"].astype(float), height=table["height"].astype(float),
                         boxes=pd.Series([per_image[str(i)] for i in table["item_id"]], dtype=object))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        lines = (json.dumps(row, ensure_ascii=False) for row in table.to_dict("records"))
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    else:
        table.to_parquet(path, index=False)
    return path
