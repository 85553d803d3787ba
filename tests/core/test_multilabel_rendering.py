"""What a person reads about a multi-label project: report tables, review tasks, plot labels.

Each test states a rendering promise found broken or misleading in a real browser (QA report, Dagster UI,
Label Studio review project of the multi-label demo): no Python list reprs, no single-label wording for sets,
no unlabeled numbers, no overlapping tick labels. The single-label text stays as it was.
"""

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.review_routing import label_issue_review_requests
from labeling_assets.core.label_sets import NONE_OF_THESE, shown_label
from labeling_assets.core.labelstudio.review import (
    VOTES_KEY,
    ShownVote,
    review_task,
    set_prediction_line,
)
from labeling_assets.core.reporting.plots import legend_placement, lines_png, tick_rotation
from labeling_assets.core.reporting.qa_report import build_qa_report
from labeling_assets.core.reporting.qa_sets import finding_rates, per_class_kappa
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.training import multilabel_metrics as mm

CLASSES = ["1", "4", "7"]
START = dt.datetime(2026, 11, 30, 5, tzinfo=dt.UTC)


def _flag(given: object, suggested: object) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "item_id": "a",
                "given_label": given,
                "suggested_label": suggested,
                "suggested_probability": 0.97,
                "label_quality": 0.046,
            }
        ]  # fmt: skip
    )


def test_a_label_issue_review_reason_writes_sets_as_a_person_reads_them_and_single_labels_as_before() -> None:
    [request] = label_issue_review_requests(_flag(["0", "4"], []))
    assert request.reason == (
        "consensus {0, 4} but an out-of-sample baseline says none of these (confidence 0.97, label quality 0.046)"
    )
    assert "[" not in request.reason and "'" not in request.reason
    [single] = label_issue_review_requests(_flag("cat", "dog"))
    assert (
        single.reason
        == "consensus 'cat' but an out-of-sample baseline says 'dog' (p=0.97, label quality 0.046)"
    )


def test_the_review_task_of_a_set_shows_the_models_probable_classes_not_one_top_class() -> None:
    probs = {"1": 0.91, "4": 0.05, "7": 0.72, "9": 0.4}
    line = set_prediction_line(probs, "clf/2")
    assert line == "model clf/2: P(present) 1 0.91, 7 0.72, 9 0.40"  # the second finding is visible
    assert set_prediction_line(None, "clf/2") == "model: no prediction"
    vote = ShownVote("sim_03_average", "1, 7", 0.8, 10, 0.49, 0.94)
    task = review_task(
        "i", "/img", [vote], reason="split vote", model_line=line, gold_header="exact-set gold accuracy"
    )
    assert task["data"]["context"] == f"Why: split vote | {line}"
    assert "<th>exact-set gold accuracy</th>" in task["data"][VOTES_KEY]
    single = review_task(
        "i", "/img", [vote], reason="split vote", prediction=("1", 0.91), model_version="clf/2"
    )
    assert single["data"]["context"] == "Why: split vote | model clf/2: 1 (p=0.91)"
    assert "<th>gold accuracy</th>" in single["data"][VOTES_KEY]


def test_set_agreement_is_per_class_so_a_missed_finding_is_not_a_total_disagreement() -> None:
    # Two labelers who agree on every class but one item's "7": exact-set kappa would count 1 of 3 sets
    # equal; per class, "1" and "4" agree perfectly.
    sets_a = [["1", "7"], ["1"], ["4"], ["1", "4"], [], ["4", "7"]] * 2
    sets_b = [["1"], ["1"], ["4"], ["1", "4"], [], ["4", "7"]] * 2
    votes = pd.DataFrame(
        [
            {"item_id": n, "labeler_id": who, "label": s}
            for who, sets in (("a", sets_a), ("b", sets_b))
            for n, s in enumerate(sets)
        ]  # fmt: skip
    )
    kappa = per_class_kappa(votes, CLASSES)
    assert kappa is not None and 0.8 < kappa < 1.0
    assert per_class_kappa(votes.iloc[0:0], CLASSES) is None


def test_finding_rates_separate_a_lazy_labeler_from_a_trigger_happy_one() -> None:
    gold = pd.Series({0: ["1", "7"], 1: ["4"], 2: []}, dtype=object)
    votes = pd.DataFrame(
        [{"item_id": 0, "labeler_id": "lazy", "label": ["1"]}, {"item_id": 1, "labeler_id": "lazy", "label": []},
         {"item_id": 2, "labeler_id": "lazy", "label": []}, {"item_id": 0, "labeler_id": "eager", "label": CLASSES},
         {"item_id": 1, "labeler_id": "eager", "label": CLASSES}, {"item_id": 2, "labeler_id": "eager", "label": ["4"]}]
    )  # fmt: skip
    rates = finding_rates(votes, gold, CLASSES).set_index("labeler_id")
    assert (
        rates.loc["lazy", "sensitivity"] == pytest.approx(1 / 3) and rates.loc["lazy", "specificity"] == 1.0
    )
    assert rates.loc["eager", "sensitivity"] == 1.0 and rates.loc["eager", "specificity"] == pytest.approx(
        2 / 6
    )


def _report_frames(multi: bool) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(0)
    truth = {n: sorted(c for c in CLASSES if rng.random() < 0.4) for n in range(30)}
    rows = []
    for who, miss in (("careful", 0.0), ("lazy", 0.7)):
        for n, labels in truth.items():
            given = [c for c in labels if rng.random() >= miss]
            stamp = START + dt.timedelta(minutes=n % 3)
            rows.append({"item_id": n, "labeler_id": who, "label": given if multi else (given[:1] or ["none"])[0],
                         "lead_time_s": 5.0, "created_at": stamp})  # fmt: skip
    gold = pd.Series(
        {n: truth[n] if multi else (truth[n][:1] or ["none"])[0] for n in range(10)}, dtype=object
    )
    consensus = pd.DataFrame({"item_id": list(truth), "label": list(truth.values()), "confidence": 0.9})
    return pd.DataFrame(rows), gold, consensus


@pytest.mark.slow
def test_the_qa_report_of_label_sets_names_exact_set_accuracy_and_gives_sensitivity_and_specificity() -> None:
    annotations, gold, consensus = _report_frames(multi=True)
    report = build_qa_report(
        annotations, gold, consensus, title="QA report: grids", view=task_kind("multi_label").qa_view, classes=CLASSES
    )
    assert "<title>QA report: grids</title>" in report.html and "<h1>QA report: grids</h1>" in report.html
    table = pd.read_html(io.StringIO(report.html), match="sensitivity")[0].set_index("labeler_id")
    assert {"exact-set accuracy", "95% CI", "sensitivity", "specificity"} <= set(table.columns)
    assert table.loc["lazy", "sensitivity"] < 0.6 < table.loc["careful", "sensitivity"] == 1.0
    assert table.loc["lazy", "specificity"] == 1.0  # missing findings is not inventing them
    assert "Exact-set accuracy on hidden gold items per labeler" in report.html
    assert "Cohen&#x27;s kappa per period, computed per class" in report.html
    assert "share of each period&#x27;s answers that tick each class" in report.html
    assert "['" not in report.html  # no Python list repr anywhere on the page


@pytest.mark.slow
def test_the_qa_report_of_single_labels_keeps_its_wording() -> None:
    annotations, gold, consensus = _report_frames(multi=False)
    report = build_qa_report(annotations, gold, consensus, title="QA report: digits")
    assert "Accuracy on hidden gold items per labeler" in report.html
    assert "Mean pairwise Cohen&#x27;s kappa per period</figcaption>" in report.html
    assert "sensitivity" not in report.html and "exact-set" not in report.html
    tables = pd.read_html(io.StringIO(report.html), match="gold_accuracy")
    table = next(t for t in tables if "labeler_id" in t.columns)
    assert list(table.columns) == ["labeler_id", "gold_labels", "gold_accuracy", "95% CI"]


def test_tick_labels_tilt_only_when_they_would_overlap() -> None:
    assert tick_rotation([str(d) for d in range(10)], 6.0, many=12) == (0, "center")  # digits fit
    names = ["sim_00_expert", "sim_01_average", "sim_02_lazy", "sim_03_average", "sim_04_spammer"]
    assert tick_rotation(names, 6.0, many=8) == (45, "right")  # the QA report's labelers overlapped
    assert tick_rotation([*map(str, range(10)), "(none of these)"], 7.0, many=12) == (45, "right")
    assert tick_rotation(["a"] * 13, 6.0, many=12) == (45, "right")


def test_the_per_label_bar_plot_puts_each_labels_positives_under_it() -> None:
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    report = mm.evaluate_multilabel(y, np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.4], [0.2, 0.1]]), ["8", "9"])
    assert mm.bar_tick_labels(report) == ["8\n(n=2)", "9\n(n=1)"]
    assert mm.per_label_bar_png(report).startswith(b"\x89PNG")


def test_a_label_shown_in_a_table_is_the_classes_joined_or_none_of_these_and_a_class_stays_itself() -> None:
    assert (
        shown_label(["1", "7"]) == "1, 7" and shown_label([]) == NONE_OF_THESE and shown_label("cat") == "cat"
    )


def test_a_legend_of_many_lines_sits_beside_the_axes_and_a_short_one_inside() -> None:
    assert "bbox_to_anchor" in legend_placement(10)  # the QA report's ten classes
    assert legend_placement(5) == {"fontsize": "small"}  # five labelers: as before
    series = {str(k): (["05:08", "05:09"], [0.1 * k, 0.1 * k + 0.05]) for k in range(10)}
    assert lines_png(series, "Share of answers that tick each class").startswith(b"\x89PNG")
