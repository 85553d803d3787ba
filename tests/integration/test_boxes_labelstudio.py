"""Boxes against the real Label Studio (issue 30): it takes the ``RectangleLabels`` config, keeps a
``rectanglelabels`` result as posted (a rotated box and a polygon too), and what its export hands back reads into
the same boxes in pixels, "No object" as an explicit empty set. The kind is not registered yet, so this talks to
the server through the client's plain requests."""

import uuid
from typing import Any

import pandas as pd
import pytest

from labeling_assets.core.tasks.boxes import votes as bv
from labeling_assets.core.tasks.boxes.labelstudio import (
    box_label_config,
    box_result,
    config_box_classes,
    read_boxes,
)
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

CLASSES = ["car", "traffic light"]
W, H = 1280, 720
BOXES: dict[str, list[dict[str, Any]]] = {
    "two": [{"label": "car", "x0": 100.5, "y0": 200.25, "x1": 400.0, "y1": 500.0},
            {"label": "traffic light", "x0": 1000.0, "y0": 0.0, "x1": 1280.0, "y1": 90.0}],
    "none": [],
    "rotated": [{"label": "car", "x0": 10.0, "y0": 10.0, "x1": 110.0, "y1": 60.0}],
}  # fmt: skip


def test_label_studio_keeps_box_answers_that_read_back_in_pixels(label_studio: LabelStudioServer) -> None:
    client = label_studio.client()
    project = client.ensure_project(title=f"boxes-{uuid.uuid4().hex[:8]}", classes=CLASSES, overlap=1,
                                    label_config=box_label_config(CLASSES))  # fmt: skip
    assert config_box_classes(client.label_config(project)) == CLASSES  # the server kept our config as sent
    client.import_tasks(project, [{"data": {"image": f"/data/{item}.png", "item_id": item}} for item in BOXES])
    task_of = {t["data"]["item_id"]: int(t["id"]) for t in client.iter_tasks(project)}
    me = int(client.whoami()["id"])
    for item, boxes in BOXES.items():
        result = box_result(boxes, W, H)
        if item == "rotated":
            result[0]["value"]["rotation"] = 30
            result.append({"from_name": "outline", "to_name": "image", "type": "polygonlabels",
                           "original_width": W, "original_height": H,
                           "value": {"points": [[0, 0], [10, 0], [10, 10]], "polygonlabels": ["car"]}})  # fmt: skip
        client.request("POST", f"/api/tasks/{task_of[item]}/annotations/", json={"result": result, "completed_by": me})

    exported = client.request("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})
    answers = {}
    for task in exported:
        (annotation,) = task["annotations"]
        reading = read_boxes(annotation["result"])
        assert reading.problem is None, reading.detail
        answers[task["data"]["item_id"]] = reading.answer
    assert answers["none"] == {"no_object": True, "boxes": []}
    assert [b["rotation"] for b in answers["rotated"]["boxes"] if b["shape"] == "rectangle"] == [30]
    assert answers["rotated"]["boxes"][1]["shape"] == "polygonlabels"
    frame = pd.DataFrame({"item_id": list(answers), "labeler_id": "me", "label": list(answers.values())})
    votes = bv.box_votes(frame, CLASSES)
    assert votes.skipped == {bv.SKIP_ROTATED: 1}
    assert sorted(votes.votes["item_id"]) == ["none", "two"]
    read = votes.boxes.sort_values("x0")[["label", "x0", "y0", "x1", "y1"]].to_dict("records")
    for got, want in zip(read, BOXES["two"], strict=True):
        assert got["label"] == want["label"]
        assert [got[k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx([want[k] for k in ("x0", "y0", "x1", "y1")])
