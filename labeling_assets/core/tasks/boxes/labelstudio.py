"""Label Studio side of boxes: the ``RectangleLabels`` config from a class list, and a result read as the stored
answer (boxes in pixels of the raw image), or why it holds none.

Label Studio sends a rectangle as ``value: {x, y, width, height, rotation, rectanglelabels: [..]}`` in percent
of the region's ``original_width`` / ``original_height``; the store keeps pixels, so an answer means the same
whatever size the image was shown at. Reading never judges: a rotated box, a polygon, a box outside the image
or of an unknown class is stored as it came, and :mod:`.votes` skips such an answer as a vote with a counted
reason. "No object" is its own choice in the config, so an explicit empty set of boxes is an answer while a
task submitted with nothing drawn (result ``[]``) is blank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from labeling_assets.core.errors import one_line
from labeling_assets.core.labelstudio.answers import (
    DETAIL_CHARS,
    FROM_NAME,
    UNREADABLE_EMPTY,
    UNREADABLE_NOT_A_LIST,
    UNREADABLE_NULL,
    UNREADABLE_REGION,
    UNREADABLE_VALUE,
)
from labeling_assets.core.labelstudio.config import TO_NAME, LabelConfigError, control_tag

NO_OBJECT_NAME = "no_object"  # the <Choices name> of the "no object" answer
NO_OBJECT = "No object"  # its one choice
RECTANGLE = "rectangle"  # the shape of a stored box (other shapes keep Label Studio's region type)
RECTANGLE_TYPES = ("rectanglelabels", "rectangle")
# Other drawings on the image: stored with their type, refused as votes. Regions of any other type (a TextArea
# comment, a Rating added to the config by hand) are not answers about objects and are ignored.
DRAWING_TYPES = (
    *RECTANGLE_TYPES, "polygonlabels", "polygon", "ellipselabels", "ellipse", "keypointlabels", "keypoint",
    "brushlabels", "brush", "polylinelabels", "polyline",
)
# Why a result holds no answer, besides the UNREADABLE_* keys shared with the class kinds.
UNREADABLE_GEOMETRY = "box_geometry_not_numeric"  # x/y/width/height or original size missing or not a number


@dataclass(frozen=True)
class BoxReading:
    """One result read: ``answer`` (the stored form, :func:`read_boxes`) or ``problem`` and ``detail``."""

    answer: dict[str, Any] | None
    problem: str | None = None
    detail: str = ""


def box_label_config(classes: Sequence[str], allow_empty: bool = True) -> str:
    """A ``RectangleLabels`` config over ``classes`` (at least one, no blanks or duplicates; names XML-escaped),
    rotation disabled in the editor, and a "No object" choice when an image without objects is an answer."""
    names = [str(c) for c in classes]
    if not names:
        raise LabelConfigError("need at least one class to draw boxes of")
    if any(not n.strip() for n in names):
        raise LabelConfigError("class names must not be blank")
    if len(set(names)) != len(names):
        raise LabelConfigError(f"duplicate class names: {sorted({n for n in names if names.count(n) > 1})}")
    labels = "\n".join(f"    <Label value={quoteattr(n)}/>" for n in names)
    no_object = (
        f'\n  <Choices name="{NO_OBJECT_NAME}" toName="{TO_NAME}" choice="single">\n'
        f"    <Choice value={quoteattr(NO_OBJECT)}/>\n  </Choices>"
        if allow_empty else ""
    )  # fmt: skip
    return (
        f'<View>\n  <Image name="{TO_NAME}" value="${TO_NAME}"/>\n'
        f'  <RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}" canRotate="false">\n{labels}\n'
        f"  </RectangleLabels>{no_object}\n</View>"
    )


def config_box_classes(config: str) -> list[str] | None:
    """The classes of a config's ``<RectangleLabels name="label">``; None when it has none (not a box config)."""
    tag = control_tag(config, "RectangleLabels")
    return None if tag is None else [str(label.get("value")) for label in tag.iter("Label")]


def _bad(problem: str, detail: str) -> BoxReading:
    return BoxReading(None, problem, one_line(detail, DETAIL_CHARS))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _labels(value: Mapping[str, Any], region_type: str) -> list[Any]:
    labels = value.get(region_type) if region_type.endswith("labels") else value.get("labels")
    return list(labels) if isinstance(labels, list) else []


def read_boxes(result: Any) -> BoxReading:
    """The stored answer of an annotation ``result`` of any shape, or why it holds none (never raises).

    The answer is ``{"no_object": bool, "boxes": [...]}``; a box is ``{"shape": "rectangle", "labels": [..],
    "x", "y", "width", "height"`` (pixels, top-left corner) ``, "rotation", "image_width", "image_height"}``; a
    region of another drawing type keeps its type as ``shape`` (and ``points`` in pixels for a polygon).
    Choices of other tags, and regions that are not drawings (a comment, a rating), are not ours and are ignored;
    a region without a type is read as a drawing (and refused as a vote unless it is a rectangle).
    """
    if result is None:
        return _bad(UNREADABLE_NULL, "the result is null")
    if not isinstance(result, list):
        return _bad(UNREADABLE_NOT_A_LIST, f"the result is a {type(result).__name__}, not a list of regions")
    boxes: list[dict[str, Any]] = []
    no_object = False
    for n, region in enumerate(result):
        if not isinstance(region, Mapping):
            return _bad(UNREADABLE_REGION, f"region {n} is a {type(region).__name__}, not an object")
        region_type = str(region.get("type", ""))
        value = region.get("value")
        if region_type == "choices":
            if region.get("from_name") == NO_OBJECT_NAME and isinstance(value, Mapping):
                no_object = no_object or NO_OBJECT in (value.get("choices") or [])
            continue
        if region_type not in DRAWING_TYPES and region_type:
            continue
        if not isinstance(value, Mapping):
            return _bad(UNREADABLE_VALUE, f"region {n}: value is not an object")
        width, height = _number(region.get("original_width")), _number(region.get("original_height"))
        if width is None or height is None:
            return _bad(UNREADABLE_GEOMETRY, f"region {n}: original_width/height missing or not a number")
        labels = _labels(value, region_type)
        if region_type not in RECTANGLE_TYPES:
            shape: dict[str, Any] = {"shape": region_type or "unknown", "labels": labels}
            points = value.get("points")
            if isinstance(points, list):
                shape["points"] = [
                    [float(p[0]) / 100 * width, float(p[1]) / 100 * height]
                    for p in points
                    if isinstance(p, list) and len(p) == 2 and all(_number(c) is not None for c in p)
                ]
            boxes.append(shape)
            continue
        geometry = [_number(value.get(k)) for k in ("x", "y", "width", "height")]
        if any(g is None for g in geometry):
            return _bad(UNREADABLE_GEOMETRY, f"region {n}: x/y/width/height missing or not a number")
        x, y, w, h = (float(g) for g in geometry if g is not None)
        boxes.append({
            "shape": RECTANGLE, "labels": labels,
            "x": x / 100 * width, "y": y / 100 * height, "width": w / 100 * width, "height": h / 100 * height,
            "rotation": _number(value.get("rotation")) or 0.0,
            "image_width": width, "image_height": height,
        })  # fmt: skip
    if not boxes and not no_object:
        return _bad(UNREADABLE_EMPTY, "nothing drawn and 'No object' not chosen" if result else "the result is empty")
    return BoxReading({"no_object": no_object, "boxes": boxes})


def box_result(
    boxes: Sequence[Mapping[str, Any]], image_width: float, image_height: float
) -> list[dict[str, Any]]:
    """The Label Studio result (a prediction or a posted annotation) of pixel boxes ``{label, x0, y0, x1, y1}``
    on an image of that size; no boxes is the "No object" choice."""
    if not boxes:
        return [{"from_name": NO_OBJECT_NAME, "to_name": TO_NAME, "type": "choices",
                 "value": {"choices": [NO_OBJECT]}}]  # fmt: skip
    return [
        {
            "from_name": FROM_NAME, "to_name": TO_NAME, "type": "rectanglelabels",
            "original_width": image_width, "original_height": image_height, "image_rotation": 0,
            "value": {
                "x": 100 * b["x0"] / image_width, "y": 100 * b["y0"] / image_height,
                "width": 100 * (b["x1"] - b["x0"]) / image_width, "height": 100 * (b["y1"] - b["y0"]) / image_height,
                "rotation": 0, "rectanglelabels": [b["label"]],
            },
        }  # fmt: skip
        for b in boxes
    ]
