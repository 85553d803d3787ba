"""The gold gate judges each kind's gold score against that kind's threshold: a span or box crowd's good labelers
are not paused and its spammer is; the class kinds keep 0.8; the project's setting overrides the kind's."""

import numpy as np
import pandas as pd
import pytest

from labeling_assets.cli.demo_text import span_crowd
from labeling_assets.core.consensus.auto_pause import auto_pauses
from labeling_assets.core.consensus.labeler_run import LabelerOptions, gold_counts
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.boxes.crowd import CANVAS, default_box_crowd, make_scenes, plan_box_crowd
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences, simulate_span_crowd
from labeling_assets.core.tasks.text_spans.spans import stored

BOX_CLASSES = ["0", "1", "2", "3", "4"]


def _span_gold() -> tuple[pd.DataFrame, pd.Series]:
    """The text-spans demo's crowd (good, good, misses, sloppy, spammer) on 150 gold sentences, three answers each."""
    data = sentences(150, seed=3)
    votes = simulate_span_crowd(data, span_crowd(5, seed=3), 3, seed=3)
    frame = pd.DataFrame({"item_id": [v.item_id for v in votes], "labeler_id": [v.labeler_id for v in votes],
                          "label": [stored(v.spans) for v in votes]})  # fmt: skip
    return frame, pd.Series({s.item_id: stored(s.entities) for s in data}, dtype=object)


def _box_gold() -> tuple[pd.DataFrame, pd.Series]:
    """The box demo's crowd (good, good, average, average, spammer) on 100 gold scenes, three answers each."""
    scenes = make_scenes(100, BOX_CLASSES, np.random.default_rng(5), max_objects=4)
    truth: dict[str, list[dict[str, object]]] = {}
    for item, label, *corners in scenes.itertuples(index=False):
        boxes = truth.setdefault(str(item), [])
        if isinstance(label, str):
            boxes.append(dict(zip(("label", "x0", "y0", "x1", "y1"), (label, *corners), strict=True)))
    plan = plan_box_crowd(truth, default_box_crowd(5, seed=5), BOX_CLASSES, overlap=3, seed=5, canvas=CANVAS)
    frame = pd.DataFrame({"item_id": [p.item_id for p in plan], "labeler_id": [p.labeler for p in plan],
                          "label": [gold_answer(p.boxes, *CANVAS) for p in plan]})  # fmt: skip
    return frame, pd.Series({item: gold_answer(b, *CANVAS) for item, b in truth.items()}, dtype=object)


def _paused(task_type: str, votes: pd.DataFrame, truth: pd.Series, classes: list[str], threshold: float) -> list[str]:
    kind = task_kind(task_type)
    ids = sorted(votes["labeler_id"].unique())
    return sorted(d.labeler_id for d in auto_pauses(votes, truth, ids, {}, threshold, gold_counts(kind, classes)))


def test_the_class_kinds_keep_0_8_and_boxes_and_spans_judge_their_match_score_at_0_5() -> None:
    thresholds = {name: task_kind(name).gold_gate_threshold for name in
                  ("single_label", "multi_label", "text_classes", "text_class_sets", "boxes", "text_spans")}  # fmt: skip
    assert thresholds == {"single_label": 0.8, "multi_label": 0.8, "text_classes": 0.8, "text_class_sets": 0.8,
                          "boxes": 0.5, "text_spans": 0.5}  # fmt: skip


def test_a_span_crowds_good_labelers_are_not_paused_and_its_spammer_and_sloppy_labeler_are() -> None:
    votes, truth = _span_gold()
    kind = task_kind("text_spans")
    assert _paused("text_spans", votes, truth, list(ENTITY_TYPES), kind.gold_gate_threshold) == [
        "sim_03_sloppy", "sim_04_spammer"]  # fmt: skip
    # what 0.8 did: every labeler paused, the good ones included
    assert _paused("text_spans", votes, truth, list(ENTITY_TYPES), 0.8) == sorted(votes["labeler_id"].unique())


def test_a_box_crowds_good_labelers_are_not_paused_and_its_spammer_is() -> None:
    votes, truth = _box_gold()
    kind = task_kind("boxes")
    assert _paused("boxes", votes, truth, BOX_CLASSES, kind.gold_gate_threshold) == ["sim_04_spammer"]
    # the gate's own verdict on a good labeler: clear of the kind's threshold, not a warning
    good = votes[votes["labeler_id"] == "sim_00_good"]
    verdict, _ = kind.gold_gate(good, truth, BOX_CLASSES, kind.gold_gate_threshold)
    assert verdict.verdict == "pass", verdict.reason


@pytest.mark.parametrize(("setting", "expected"), [(None, 0.5), (0.7, 0.7), (0.0, 0.0)])
def test_the_projects_setting_overrides_the_kinds_threshold(setting: float | None, expected: float) -> None:
    options = LabelerOptions(list(ENTITY_TYPES), gold_gate_threshold=setting)
    assert options.gold_threshold(task_kind("text_spans")) == expected
