"""Multi-label on the Label Studio side, pure: the config a person answers in, the results that go back and
forth, the pre-fill of a prediction and the order of the queue (issue 16)."""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.labelstudio.config import (
    ConfigLayout,
    LabelConfigError,
    choice_result,
    choices_label_config,
    config_choices,
    config_layout,
)
from labeling_assets.core.labelstudio.review import review_config
from labeling_assets.core.labelstudio.tasks import (
    Candidate,
    build_payloads,
    payload_leaks,
    select_queue,
    task_payload,
    uncertainty,
)
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.multi_label.kind import PREFILL_THRESHOLD, prefill_set
from labeling_assets.core.training.active_learning import mean_binary_entropy

CLASSES = ["effusion", "mass", "nodule"]
MULTI = task_kind("multi_label")
SINGLE = task_kind("single_label")


def label_from_result(result: object, multi_label: bool = False) -> object:
    return (MULTI if multi_label else SINGLE).answer_from_result(result)  # type: ignore[arg-type]


def wanted_layout(
    classes: list[str], multi_label: bool = False, allow_empty: bool = True
) -> ConfigLayout | None:
    return config_layout((MULTI if multi_label else SINGLE).label_config(classes, allow_empty))


def _choices(config: str) -> ET.Element:
    choices = ET.fromstring(config).find("Choices")
    assert choices is not None
    return choices


def test_a_multi_label_config_has_checkboxes_for_every_class_and_a_last_none_of_these_choice() -> None:
    choices = _choices(MULTI.label_config(CLASSES))
    assert choices.get("choice") == "multiple"
    assert [c.get("value") for c in choices.findall("Choice")] == [*CLASSES, NONE_OF_THESE]


def test_without_the_empty_set_a_multi_label_config_offers_no_none_of_these() -> None:
    choices = _choices(MULTI.label_config(CLASSES, allow_empty=False))
    assert choices.get("choice") == "multiple"
    assert [c.get("value") for c in choices.findall("Choice")] == CLASSES


def test_the_single_label_config_is_the_same_text_as_before_multi_label_existed() -> None:
    expected = (
        "<View>\n"
        '  <Image name="image" value="$image"/>\n'
        '  <Choices name="label" toName="image" choice="single" showInLine="true" required="true">\n'
        '    <Choice value="effusion"/>\n    <Choice value="mass"/>\n    <Choice value="nodule"/>\n'
        "  </Choices>\n"
        "</View>"
    )
    assert choices_label_config(CLASSES) == expected
    assert SINGLE.label_config(CLASSES, allow_empty=False) == expected


def test_a_class_named_like_the_none_choice_is_refused_in_a_multi_label_project() -> None:
    with pytest.raises(LabelConfigError, match="None of these.*rename"):
        MULTI.label_config(["mass", NONE_OF_THESE])
    with pytest.raises(LabelConfigError, match="rename"):
        MULTI.label_config(["mass", NONE_OF_THESE], allow_empty=False)


def test_a_set_becomes_several_choices_and_the_empty_set_the_none_choice() -> None:
    assert choice_result(["mass", "effusion"])[0]["value"]["choices"] == ["mass", "effusion"]
    assert choice_result([])[0]["value"]["choices"] == [NONE_OF_THESE]
    assert choice_result("mass")[0]["value"]["choices"] == ["mass"]  # a bare class stays one choice


@pytest.mark.parametrize(
    ("label", "stored"),
    [
        (["nodule", "effusion"], ["effusion", "nodule"]),
        (["mass"], ["mass"]),
        ([], []),
        ("mass", ["mass"]),  # one choice in a multi-label config is still a set
    ],
)
def test_multi_label_results_round_trip_to_sorted_lists(label: str | list[str], stored: list[str]) -> None:
    assert label_from_result(choice_result(label), multi_label=True) == stored


def test_none_of_these_alone_is_the_empty_set_and_with_classes_it_is_kept_as_it_came() -> None:
    none_alone = [{"type": "choices", "from_name": "label", "value": {"choices": [NONE_OF_THESE]}}]
    assert label_from_result(none_alone, multi_label=True) == []
    both = [
        {"type": "choices", "from_name": "label", "value": {"choices": ["nodule", NONE_OF_THESE, "nodule"]}}
    ]
    assert label_from_result(both, multi_label=True) == sorted(["nodule", NONE_OF_THESE])


def test_a_result_with_no_choice_at_all_is_not_an_answer_in_either_task_type() -> None:
    assert label_from_result([], multi_label=True) is None
    assert label_from_result(None, multi_label=True) is None
    other_tag = [{"type": "choices", "from_name": "quality", "value": {"choices": ["blurry"]}}]
    assert label_from_result(other_tag, multi_label=True) is None


def test_single_label_parsing_is_unchanged_and_keeps_a_multi_choice_answer_as_the_list_it_came_as() -> None:
    several = [{"type": "choices", "from_name": "label", "value": {"choices": ["nodule", "effusion"]}}]
    assert label_from_result(several) == ["nodule", "effusion"]  # chosen order, never sorted or dropped
    assert label_from_result(choice_result("mass")) == "mass"
    assert label_from_result(choice_result([])) == NONE_OF_THESE  # a single-label project has no empty set


def test_the_config_layout_tells_task_type_classes_and_none_choice_apart() -> None:
    multi = MULTI.label_config(CLASSES)
    assert config_layout(multi) == ConfigLayout(CLASSES, True, True) == wanted_layout(CLASSES, True, True)
    assert config_choices(multi) == CLASSES  # the none choice is not a class
    assert MULTI.owns_config(multi) and not SINGLE.owns_config(multi)
    single = choices_label_config(CLASSES)
    assert SINGLE.owns_config(single) and not MULTI.owns_config(single)
    assert config_layout(choices_label_config(CLASSES)) == wanted_layout(CLASSES)
    assert config_layout(MULTI.label_config(CLASSES, allow_empty=False)) == wanted_layout(
        CLASSES, True, False
    )
    # a switch of task type or of the empty set is a different layout: the queue updates the config
    assert wanted_layout(CLASSES, True, True) != wanted_layout(CLASSES, True, False) != wanted_layout(CLASSES)
    assert config_layout("not xml <") is None
    assert not MULTI.owns_config("not xml <") and not SINGLE.owns_config("not xml <")


def test_the_review_project_answers_with_the_crowds_choices() -> None:
    assert _choices(review_config(MULTI.label_config(CLASSES))).get("choice") == "multiple"
    assert config_layout(review_config(MULTI.label_config(CLASSES))) == wanted_layout(CLASSES, True)
    assert config_layout(review_config(SINGLE.label_config(CLASSES))) == wanted_layout(CLASSES)


# --- predictions and the queue ---------------------------------------------------------------------------


def test_a_multi_label_prediction_pre_checks_every_class_at_or_above_one_half() -> None:
    probs = {"effusion": 0.9, "mass": PREFILL_THRESHOLD, "nodule": 0.49}
    (prediction,) = task_payload("i1", "/img.png", probs=probs, model_version="m/1", kind=MULTI)[
        "predictions"
    ]
    assert prediction["result"][0]["value"]["choices"] == ["effusion", "mass"]
    assert prediction["score"] == pytest.approx(np.mean([0.9, 0.5, 0.51]))  # mean of max(p, 1 - p)
    assert prediction["model_version"] == "m/1"


def test_a_multi_label_prediction_with_no_likely_class_pre_checks_none_of_these() -> None:
    probs = {"effusion": 0.1, "mass": 0.2, "nodule": 0.3}
    (prediction,) = task_payload("i1", "/img.png", probs=probs, kind=MULTI)["predictions"]
    assert prediction["result"][0]["value"]["choices"] == [NONE_OF_THESE]


def test_the_pre_fill_uses_the_models_own_threshold_per_class_and_one_half_for_a_class_without_one() -> None:
    probs = {"effusion": 0.3, "mass": 0.6, "nodule": 0.6}
    # effusion's threshold is low (rare class, sigmoids run low), mass's high; nodule has none: 0.5.
    assert prefill_set(probs, thresholds={"effusion": 0.25, "mass": 0.7}) == ["effusion", "nodule"]
    assert prefill_set(probs) == ["mass", "nodule"]


def test_payloads_pre_fill_each_item_at_the_thresholds_of_the_model_that_scored_it() -> None:
    pending = [{"item_id": "a", "uri": None}, {"item_id": "b", "uri": None}, {"item_id": "c", "uri": None}]
    probs = {"effusion": 0.3, "mass": 0.6, "nodule": 0.1}
    shown = {"a": (probs, "model/2"), "b": (probs, "baseline-1")}
    payloads = build_payloads(pending, shown, Path("/data"), kind=MULTI,
                              thresholds={"model/2": {"effusion": 0.2, "mass": 0.9, "nodule": 0.5}})  # fmt: skip
    picked = [p["predictions"][0]["result"][0]["value"]["choices"] if "predictions" in p else None for p in payloads]
    assert picked == [["effusion"], ["mass"], None]  # model/2's cut-offs; the baseline's 0.5; c has no prelabel


def test_without_the_empty_set_the_pre_fill_is_the_most_probable_class() -> None:
    assert prefill_set({"effusion": 0.1, "mass": 0.3, "nodule": 0.2}, allow_empty=False) == ["mass"]
    assert prefill_set({"effusion": 0.7, "mass": 0.3}, allow_empty=False) == ["effusion"]


def test_single_label_predictions_are_unchanged() -> None:
    probs = {"effusion": 0.6, "mass": 0.3, "nodule": 0.1}
    (prediction,) = task_payload("i1", "/img.png", probs=probs)["predictions"]
    assert prediction["result"][0]["value"]["choices"] == ["effusion"] and prediction["score"] == 0.6


def test_a_gold_items_set_never_reaches_the_payload() -> None:
    gold = {"i1": ["effusion", "mass"]}
    payload = task_payload(
        "i1", "/img.png", probs={"effusion": 0.9, "mass": 0.8, "nodule": 0.1}, kind=MULTI
    )
    assert payload_leaks(payload, gold) == []  # the model's pre-fill is allowed to agree with gold
    assert payload_leaks({**payload, "data": {**payload["data"], "truth": gold["i1"]}}, gold) != []
    shuffled = {**payload, "data": {**payload["data"], "hint": ["mass", "effusion"]}}
    assert payload_leaks(shuffled, gold) == ["gold label of i1 in data['hint']"]  # the same set in any order


def test_mean_binary_entropy_is_zero_when_sure_of_every_class_and_one_at_coin_flips() -> None:
    scores = mean_binary_entropy(
        np.array([[0.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0.5, 0.0, 1.0], [0.99, 0.99, 0.01]])
    )
    assert scores[0] == 0.0 and scores[1] == pytest.approx(1.0) and scores[2] == pytest.approx(1 / 3)
    assert (
        0 < scores[3] < 0.1
    )  # sure of two findings at once: not uncertain (a softmax score would say it is)
    assert mean_binary_entropy(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mean_binary_entropy(np.array([[1.5, 0.2]]))


def test_multi_label_queue_order_follows_mean_binary_entropy_for_every_strategy_but_random() -> None:
    sure_of_two = Candidate("sure", probs={"effusion": 0.99, "mass": 0.99, "nodule": 0.01})
    unsure = Candidate("unsure", probs={"effusion": 0.5, "mass": 0.4, "nodule": 0.6})
    middling = Candidate("middling", probs={"effusion": 0.8, "mass": 0.1, "nodule": 0.2})
    unscored = Candidate("unscored")
    for strategy in ("uncertainty", "margin", "entropy"):
        order = select_queue([sure_of_two, middling, unsure, unscored], limit=4, gold_rate=0.0, strategy=strategy,
                             kind=MULTI)  # fmt: skip
        # scored items first, the unscored one last (issue 26: it would reach labelers without a prediction)
        assert [q.item_id for q in order] == ["unsure", "middling", "sure", "unscored"], strategy
    assert uncertainty(sure_of_two.probs, "random", kind=MULTI) == 1.0
    # the single-label scores renormalise over classes and would put the sure item first
    assert uncertainty(sure_of_two.probs, "margin") > uncertainty(middling.probs, "margin")
