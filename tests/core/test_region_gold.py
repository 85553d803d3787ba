"""The region kinds' shared gold pieces (core/tasks/region_gold.py): gate, per-labeler score, QA gold table."""

from collections.abc import Sequence

import pandas as pd

from labeling_assets.core.tasks.region_gold import labeler_gold_scores, region_gold_gate, whole_answer_table

# Each vote's label is its (matched, gold + false) counts per class: a counter that needs no geometry.
VOTES = pd.DataFrame({"labeler_id": ["a", "a", "b", "c"], "item_id": ["i", "j", "i", "i"],
                      "label": [{"x": (2, 2)}, {"x": (0, 1), "y": (1, 1)}, {"x": (0, 3)}, {}]})  # fmt: skip
TRUTH = pd.Series({"i": "gold", "j": "gold"})


def counts(labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str], only: str | None = None) -> tuple[int, int]:
    pairs = [v for answer in labels["label"] for c, v in answer.items() if only in (None, c)]
    return sum(m for m, _ in pairs), sum(n for _, n in pairs)


def test_the_gate_judges_all_regions_and_each_class_with_gold_regions_alone() -> None:
    verdict, per_class = region_gold_gate(counts, VOTES, TRUTH, ["x", "y", "z"], 0.5, "box gold score")
    assert (verdict.successes, verdict.n) == (3, 7) and "box gold score" in verdict.reason
    assert sorted(per_class) == ["x", "y"]  # no gold region of z: no gate on it
    assert (per_class["x"]["n"], per_class["x"]["rate"], per_class["y"]["n"]) == (6, 2 / 6, 1)


def test_each_named_labeler_scores_matched_over_gold_plus_false_and_none_without_regions() -> None:
    assert labeler_gold_scores(counts, VOTES, TRUTH, ["x", "y"], {"a": "Ann", "c": "Cy"}) == {"Ann": 0.75, "Cy": None}


def test_the_qa_table_names_the_whole_answer_accuracy_and_adds_the_score_column() -> None:
    table = pd.DataFrame({"labeler_id": ["a", "b", "c"], "gold_accuracy": [0.5, 0.0, 1.0]})
    shown = whole_answer_table(counts, "span gold score", table, VOTES, TRUTH, ["x", "y"])
    assert list(shown.columns) == ["labeler_id", "whole-answer accuracy", "span gold score"]
    assert list(shown["span gold score"]) == ["0.750", "0.000", "n/a"]
