"""The QA report of a box project (``BoxesKind.qa_view``): gold judged box for box, agreement as the pairwise F1 of
the drawn boxes, drift by the classes present, and the least confident items with what each labeler drew."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pandas as pd
import pytest

from labeling_assets.core.reporting.answer_views import AnswerView
from labeling_assets.core.reporting.qa_report import build_qa_report, class_share_per_period
from labeling_assets.core.tasks.boxes.gold import gold_answer
from labeling_assets.core.tasks.boxes.kind import KIND
from labeling_assets.core.tasks.boxes.qa import gold_correct, whole_answer_right

CLASSES = ["cat", "dog"]
W, H = 100.0, 80.0
START = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


def _answer(*boxes: tuple[str, float]) -> dict[str, Any]:
    """Boxes of 20 x 30 px at x = ``x0`` (a stored answer in pixels, as a labeler's reads back)."""
    return gold_answer([{"label": c, "x0": x, "y0": 20.0, "x1": x + 20.0, "y1": 50.0} for c, x in boxes], W, H)


RIGHT = _answer(("cat", 10.0), ("dog", 60.0))
SHIFTED = _answer(("cat", 22.0), ("dog", 60.0))  # the cat box 12 px off: IoU 0.25, a miss and a false box
MISSED = _answer(("cat", 10.0))


def _annotations() -> pd.DataFrame:
    """Items g0-g3 are gold (RIGHT); careful draws RIGHT everywhere, sloppy SHIFTED, third MISSED on g3 only."""
    rows = []
    for i in range(8):
        for who, answer in (("careful", RIGHT), ("sloppy", SHIFTED if i % 2 == 0 else RIGHT)):
            rows.append({"item_id": f"g{i}", "labeler_id": who, "label": answer, "lead_time_s": 5.0,
                         "created_at": START + dt.timedelta(minutes=i)})  # fmt: skip
    rows.append({"item_id": "g3", "labeler_id": "third", "label": MISSED, "lead_time_s": 5.0,
                 "created_at": START + dt.timedelta(minutes=3)})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_box_answer_is_right_against_gold_only_box_for_box() -> None:
    assert whole_answer_right(_answer(("cat", 11.0), ("dog", 59.0)), RIGHT, CLASSES)  # a pixel off: IoU > 0.5
    assert not whole_answer_right(SHIFTED, RIGHT, CLASSES)
    assert not whole_answer_right(MISSED, RIGHT, CLASSES)
    assert not whole_answer_right(_answer(("dog", 10.0), ("dog", 60.0)), RIGHT, CLASSES)  # a wrong class
    assert whole_answer_right(_answer(), _answer(), CLASSES)  # "No object" on an empty gold image
    assert not whole_answer_right(_answer(), RIGHT, CLASSES) and not whole_answer_right("cat", RIGHT, CLASSES)
    rows = pd.DataFrame({"item_id": ["a", "b", "c"], "label": [RIGHT, SHIFTED, RIGHT]}, index=[7, 8, 9])
    right = gold_correct(rows, pd.Series({"a": RIGHT, "b": RIGHT}), CLASSES)
    assert right.tolist() == [True, False, False] and right.index.tolist() == [7, 8, 9]  # c has no gold


def test_the_views_agreement_and_drift_read_boxes_and_classes_present() -> None:
    view = KIND.qa_view
    assert isinstance(view, AnswerView) and view.agreement_answers is not None
    votes = _annotations()
    answers = view.answers(votes["label"])
    assert answers.iloc[0] == ["cat", "dog"] and view.answers(pd.Series([_answer()])).iloc[0] == []
    share = class_share_per_period(pd.Series(["p"] * len(votes)), answers)
    assert share.loc["p", "cat"] == pytest.approx(1.0) and share.loc["p", "dog"] == pytest.approx(16 / 17)
    unanimous = votes[votes["labeler_id"] == "careful"].assign(labeler_id=lambda f: f["item_id"].map(lambda _: "x"))
    both = pd.concat([votes[votes["labeler_id"] == "careful"], unanimous])
    assert view.period_kappa(both.assign(label=view.agreement_answers(both["label"])), CLASSES) == pytest.approx(1.0)
    # careful vs sloppy: on even items 1 of 2 boxes each matched (F1 0.5), on odd ones all (F1 1).
    pair = votes[votes["labeler_id"] != "third"]
    assert view.period_kappa(pair, CLASSES) == pytest.approx(0.75)
    assert view.period_kappa(votes[votes["labeler_id"] == "careful"], CLASSES) is None  # nobody to agree with


def test_the_qa_report_of_a_box_project_judges_gold_box_for_box_and_lists_the_doubtful_items() -> None:
    votes = _annotations()
    gold = pd.Series({f"g{i}": RIGHT for i in range(4)}, dtype=object)
    labels = pd.DataFrame({"item_id": [f"g{i}" for i in range(8)], "label": [RIGHT] * 8,
                           "confidence": [0.4 if i == 2 else 0.95 for i in range(8)]})  # fmt: skip
    report = build_qa_report(votes, gold, labels, view=KIND.qa_view, classes=CLASSES, generated_at=START)
    assert {"gold_accuracy", "kappa_over_time", "class_drift", "consensus_confidence"} <= set(report.charts)
    # careful is right on all 4 gold items, sloppy on 2 (g1, g3), third on none of its 1: not 0 for everybody.
    assert report.summary["lowest_gold_accuracy"] == pytest.approx(0.0)
    page = report.html
    assert "whole-answer accuracy" in page and "box gold score" in page
    table = pd.read_html(io.StringIO(page), match="whole-answer accuracy")[0].set_index("labeler_id")
    assert table.loc["careful", "whole-answer accuracy"] == pytest.approx(1.0)
    assert table.loc["sloppy", "whole-answer accuracy"] == pytest.approx(0.5)
    # sloppy: 6 of 8 gold boxes matched, 2 false boxes: 6 / (8 + 2).
    assert table.loc["sloppy", "box gold score"] == pytest.approx(0.6)
    assert table.loc["third", "box recall"] == pytest.approx(0.5) and table.loc["third", "box precision"] == 1.0
    doubtful = pd.read_html(io.StringIO(page), match="labelers' boxes")[0]
    assert doubtful["item"].tolist() == ["g2"]
    assert doubtful["consensus objects"].iloc[0] == "cat x1, dog x1"
    assert doubtful["labelers' boxes"].iloc[0] == "careful: cat x1, dog x1; sloppy: cat x1, dog x1"


def test_a_label_outside_the_class_list_is_found_by_each_kinds_reading_of_it() -> None:
    """What the class-list checks call stale: a class the project does not have, as the kind reads its labels, or a
    value naming no class that is no answer either; the empty set and "No object" are answers."""
    from labeling_assets.core.label_sets import outside_class_list
    from labeling_assets.core.tasks import task_kind

    single, sets, boxes = task_kind("single_label"), task_kind("multi_label"), task_kind("boxes")
    assert not outside_class_list(single, "cat", CLASSES) and outside_class_list(single, "eel", CLASSES)
    assert outside_class_list(single, 3.0, CLASSES)
    assert not outside_class_list(sets, [], CLASSES) and outside_class_list(sets, ["cat", "eel"], CLASSES)
    assert not outside_class_list(boxes, RIGHT, CLASSES) and not outside_class_list(boxes, _answer(), CLASSES)
    assert outside_class_list(boxes, _answer(("eel", 10.0)), CLASSES) and outside_class_list(boxes, "cat", CLASSES)
