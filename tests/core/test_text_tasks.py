"""A text task in Label Studio holds the text itself (under the key its config reads, ``$text``), never a URL, and
a text kind's pre-label on it; an image kind's task still holds the image's URL."""

from pathlib import Path

from labeling_assets.core.labelstudio.tasks import build_payloads, payload_leaks, shown_object
from labeling_assets.core.tasks import task_kind


def test_a_text_task_holds_the_stored_text_and_the_kind_s_prelabel(tmp_path: Path) -> None:
    stored = tmp_path / "raw" / "ab" / "abc.txt"
    stored.parent.mkdir(parents=True)
    stored.write_text("Ada met Bob in Paris.", encoding="utf-8")
    output = {"text": "Ada met Bob in Paris.", "spans": [{"start": 0, "end": 3, "label": "PER", "score": 0.9}]}
    [task] = build_payloads([{"item_id": "abc", "uri": str(stored)}], {"abc": (output, "ner/1")}, tmp_path,
                            kind=task_kind("text_spans"))  # fmt: skip
    assert task["data"] == {"text": "Ada met Bob in Paris.", "item_id": "abc"}
    [region] = task["predictions"][0]["result"]
    assert region["to_name"] == "text" and region["value"]["text"] == "Ada"
    [classes] = build_payloads([{"item_id": "abc", "uri": str(stored)}], {}, tmp_path, kind=task_kind("text_classes"))
    assert classes["data"]["text"] == "Ada met Bob in Paris." and payload_leaks(classes, {"abc": "PER"}) == []


def test_each_kind_s_task_data_is_what_its_config_reads() -> None:
    assert shown_object(task_kind("text_classes")) == ("Text", "text")
    assert shown_object(task_kind("text_class_sets")) == ("Text", "text")
    assert shown_object(task_kind("text_spans")) == ("Text", "text")
    assert shown_object(task_kind("single_label")) == ("Image", "image")
    assert shown_object(task_kind("boxes")) == ("Image", "image")


def test_an_image_task_still_holds_the_image_url(tmp_path: Path) -> None:
    image = tmp_path / "raw" / "cd" / "cde.png"
    [task] = build_payloads([{"item_id": "cde", "uri": str(image)}], {}, tmp_path, kind=task_kind("single_label"))
    assert task["data"] == {"image": "/data/local-files/?d=raw/cd/cde.png", "item_id": "cde"}


def test_the_review_project_shows_the_text_above_the_crowd_s_controls_and_its_answers_read_alike() -> None:
    from xml.etree import ElementTree

    from labeling_assets.core.labelstudio.review import review_config, review_task
    from labeling_assets.core.tasks.registry import kind_of_config

    for name in ("text_classes", "text_class_sets", "text_spans", "single_label"):
        kind = task_kind(name)
        config = review_config(kind.label_config(["PER", "LOC"]))
        root = ElementTree.fromstring(config)
        first = next(iter(root))
        assert (first.tag, first.get("value")) == (("Image", "$image") if name == "single_label" else ("Text", "$text"))
        assert [e.get("name") for e in root].count("label") == 1 and kind_of_config(config) is kind
    task = review_task("x", "Ada met Bob.", [], reason="low confidence", data_key="text")
    assert task["data"]["text"] == "Ada met Bob." and "image" not in task["data"]
