import xml.etree.ElementTree as ET

import pytest

from labeling_assets.core.labelstudio.config import (
    LabelConfigError,
    choice_result,
    choices_label_config,
)
from labeling_assets.core.tasks import task_kind


def test_config_has_one_single_choice_per_class_in_order() -> None:
    root = ET.fromstring(choices_label_config(["cat", "dog", "bird"]))
    choices = root.find("Choices")
    assert choices is not None and choices.get("choice") == "single"
    assert [c.get("value") for c in choices.findall("Choice")] == ["cat", "dog", "bird"]
    assert root.find("Image").get("value") == "$image"  # type: ignore[union-attr]


def test_class_names_with_xml_characters_round_trip() -> None:
    names = ['a "quoted" one', "x<y & z", "ok"]
    root = ET.fromstring(choices_label_config(names))
    assert [c.get("value") for c in root.iter("Choice")] == names


@pytest.mark.parametrize("classes", [[], ["only"], ["a", "a"], ["a", " "]])
def test_bad_class_lists_are_rejected_with_a_reason(classes: list[str]) -> None:
    with pytest.raises(LabelConfigError):
        choices_label_config(classes)


def test_result_round_trips_to_the_label() -> None:
    label_from_result = task_kind("single_label").answer_from_result
    assert label_from_result(choice_result("7")) == "7"
    assert label_from_result([]) is None
    assert label_from_result(None) is None
    multi = [{"type": "choices", "from_name": "label", "value": {"choices": ["a", "b"]}}]
    assert label_from_result(multi) == ["a", "b"]
