"""Text spans against the real Label Studio (issue 31): it takes the span config, keeps a ``labels`` result as
posted, and what its export hands back reads into the same stored spans; a bad region it stores too (Label
Studio checks neither offsets nor the region's text against the task's), and reading drops it with its reason.
The kind is not registered yet, so this talks to the server through the client's plain requests."""

import uuid
from typing import Any

import pytest

from labeling_assets.core.tasks.text_spans.spans import (
    SKIP_OUTSIDE,
    SKIP_TEXT,
    Span,
    config_entity_types,
    label_config,
    read_spans,
    span_result,
)
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

TYPES = ["PER", "ORG", "LOC"]
TEXTS = {
    "spans": ("Ada Lovelace met Charles Babbage in London.", (Span(0, 12, "PER"), Span(36, 42, "LOC"))),
    "emoji": ("🎉 Ada Lovelace joined Acme Corp.", (Span(2, 14, "PER"), Span(22, 31, "ORG"))),
    "none": ("Nothing to see here.", ()),
    "bad": ("Ada Lovelace met Charles Babbage.", (Span(0, 12, "PER"),)),
}


def test_label_studio_keeps_span_answers_that_read_back_into_the_same_spans(label_studio: LabelStudioServer) -> None:
    client = label_studio.client()
    title = f"spans-{uuid.uuid4().hex[:8]}"
    project = client.ensure_project(title=title, classes=TYPES, overlap=1, label_config=label_config(TYPES))
    assert config_entity_types(client.label_config(project)) == TYPES  # the server kept our config as sent
    client.import_tasks(project, [{"data": {"text": text, "item_id": item}} for item, (text, _) in TEXTS.items()])
    task_of = {t["data"]["item_id"]: int(t["id"]) for t in client.iter_tasks(project)}
    me = int(client.whoami()["id"])
    for item, (text, spans) in TEXTS.items():
        result: list[dict[str, Any]] = span_result(spans, text)
        if item == "bad":  # a region past the end, and one whose text is not the task's slice
            result += [{"from_name": "label", "to_name": "text", "type": "labels",
                        "value": {"start": 20, "end": 99, "text": "x", "labels": ["LOC"]}},
                       {"from_name": "label", "to_name": "text", "type": "labels",
                        "value": {"start": 17, "end": 24, "text": "Charlie", "labels": ["PER"]}}]  # fmt: skip
        client.request("POST", f"/api/tasks/{task_of[item]}/annotations/", json={"result": result, "completed_by": me})

    exported = client.request("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})
    read = {}
    for task in exported:
        (annotation,) = task["annotations"]
        text = task["data"]["text"]
        assert text == TEXTS[task["data"]["item_id"]][0]  # the emoji survives the round trip
        read[task["data"]["item_id"]] = read_spans(annotation["result"], text, TYPES)
    assert {item: r.spans for item, r in read.items()} == {item: spans for item, (_, spans) in TEXTS.items()}
    assert dict(read["bad"].skipped) == {SKIP_OUTSIDE: 1, SKIP_TEXT: 1}
    assert read["none"].spans == () and read["none"].problem is None  # "no entity", not a blank submit
