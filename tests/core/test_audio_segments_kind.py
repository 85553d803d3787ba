"""What is particular to the audio_segments kind (the contract is tests/core/test_task_kinds.py): Label Studio results
of any shape read as region answers, votes, consensus on a simulated crowd (ours against frame majority, gold
used), labeler statistics and the gold gate, gold entries, splits that keep a recording whole, and the JSONL and
RTTM exports read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.votes import SKIP_UNKNOWN_CLASS
from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.label_sets import SKIP_UNREADABLE
from labeling_assets.core.speech.crowd import SegmentLabeler, good_segment_labeler
from labeling_assets.core.speech.regions import Region, pooled_segment_score
from labeling_assets.core.speech.rttm import parse_rttm
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.audio_segments.agreement import frame_agreement
from labeling_assets.core.tasks.audio_segments.answers import (
    SKIP_NOT_REGIONS,
    UNREADABLE_LABELS,
    UNREADABLE_TIME,
    from_stored,
    stored,
)
from labeling_assets.core.tasks.audio_segments.label_issues import LOW_CONFIDENCE
from labeling_assets.core.tasks.kind import ItemMedia

KIND = task_kind("audio_segments")
CLASSES = ["en", "vi", "noise"]


def _result(*regions: tuple[float, float, str]) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "audio", "type": "labels",
             "value": {"start": s, "end": e, "channel": 0, "labels": [label]}} for s, e, label in regions]  # fmt: skip


def test_a_stored_answer_is_drawn_as_a_result_that_reads_back_as_the_same_answer() -> None:
    answer = [{"start": 0.25, "end": 1.5, "label": "en"}, {"start": 1.5, "end": 2.125, "label": "vi"}]
    result = KIND.answer_result(answer, ItemMedia())
    assert result is not None and [r["value"]["labels"] for r in result] == [["en"], ["vi"]]
    assert KIND.read_answer(result).label == answer
    assert KIND.answer_result([], ItemMedia()) == [] and KIND.read_answer([]).label == []  # no region
    assert KIND.answer_result([{"start": 2.0, "end": 1.0, "label": "en"}], ItemMedia()) is None


def test_label_studio_results_of_any_shape_read_as_regions_or_a_reason_and_never_raise() -> None:
    # Out of order, more decimals than stored, a rating region of another tag beside ours.
    messy = _result((1.23456, 2.0, "vi"), (0.1, 1.0, "en")) + [{"from_name": "confidence", "type": "rating",
                                                                "value": {"rating": 4}}]  # fmt: skip
    assert KIND.read_answer(messy).label == [{"start": 0.1, "end": 1.0, "label": "en"},
                                             {"start": 1.235, "end": 2.0, "label": "vi"}]  # fmt: skip
    click = KIND.read_answer(_result((0.5, 0.5, "en"), (1.0, 2.0, "vi")))  # a click on the waveform, no drag
    assert click.label == [{"start": 1.0, "end": 2.0, "label": "vi"}] and "zero length" in click.detail
    bad: dict[str, Any] = {
        UNREADABLE_TIME: _result((0.5, "late", "en")),  # type: ignore[arg-type]
        UNREADABLE_LABELS: [{"from_name": "label", "type": "labels", "value": {"start": 0, "end": 1, "labels": ["en", "vi"]}}],
        "result_not_a_list": {"start": 0},
        "region_not_an_object": ["en"],
        "unknown_result_type": [{"from_name": "label", "type": "choices", "value": {"choices": ["en"]}}],
        "value_not_an_object": [{"from_name": "label", "type": "labels", "value": "0-1 en"}],
        "result_null": None,
    }
    for reason, result in bad.items():
        answer = KIND.read_answer(result)
        assert (answer.label, answer.problem) == (None, reason) and answer.detail, reason
    negative = KIND.read_answer(_result((-1.0, 1.0, "en")))
    assert negative.problem == UNREADABLE_TIME


def test_votes_keep_each_labelers_newest_answer_and_skip_what_is_no_region_answer() -> None:
    good = [{"start": 0.0, "end": 1.0, "label": "en"}]
    rows = pd.DataFrame({
        "item_id": ["a", "a", "a", "b", "b"], "labeler_id": ["L1", "L1", "L2", "L1", "L2"],
        "label": [[{"start": 0.0, "end": 9.0, "label": "vi"}], good, [{"start": 0, "end": 1, "label": "klingon"}],
                  None, "en"],
        "created_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01", "2026-01-01", "2026-01-01"], utc=True),
    })  # fmt: skip
    votes = KIND.votes(rows, CLASSES)
    assert votes.frame[["item_id", "labeler_id"]].values.tolist() == [["a", "L1"]]
    assert votes.frame["label"].tolist() == [good]  # the newest, not the older answer
    assert votes.skipped == {SKIP_UNKNOWN_CLASS: 1, SKIP_UNREADABLE: 1, SKIP_NOT_REGIONS: 1}


def _crowd(n_items: int, seed: int) -> tuple[pd.DataFrame, dict[str, list[Region]]]:
    """Utterances of alternating language regions, answered by three good labelers, one who marks 0.15 s late and
    a spammer (core/speech/crowd.py), every labeler on every item."""
    rng = np.random.default_rng(seed)
    labelers = [good_segment_labeler(f"good{k}", rng) for k in range(3)]
    labelers += [SegmentLabeler("late", start_offset=0.15, end_offset=0.15), SegmentLabeler("spam", spammer=True)]
    truth: dict[str, list[Region]] = {}
    rows = []
    for n in range(n_items):
        t, regions, lang = 0.2, [], str(rng.choice(["en", "vi"]))
        for _ in range(4):
            length = float(rng.uniform(0.8, 1.6))
            regions.append(Region(round(t, 3), round(t + length, 3), lang))
            t += length + float(rng.uniform(0.15, 0.4))
            lang = "vi" if lang == "en" else "en"
        item = f"u{n:02d}"
        truth[item] = regions
        for labeler in labelers:
            rows.append({"item_id": item, "labeler_id": labeler.name,
                         "label": stored(labeler.mark(regions, t + 0.2, CLASSES[:2], rng))})  # fmt: skip
    return pd.DataFrame(rows), truth


def test_labeler_aware_consensus_beats_frame_majority_on_a_simulated_crowd_and_gold_decides_its_items() -> None:
    rows, truth = _crowd(24, seed=3)
    gold_items = sorted(truth)[:6]
    gold = pd.Series({i: stored(truth[i]) for i in gold_items}, dtype=object)
    eligible = KIND.votes(rows, CLASSES).frame
    scores = {}
    for method in ("auto", "frame_majority"):
        outcome = KIND.consensus(eligible, method, CLASSES, gold)
        labels = outcome.result.labels.set_index("item_id")
        assert outcome.n_gold == 6 and all(labels.loc[i, "label"] == gold[i] for i in gold_items)
        assert labels.loc[gold_items, "confidence"].eq(1.0).all() and labels["confidence"].between(0, 1).all()
        rest = [i for i in sorted(truth) if i not in gold_items]
        scores[method] = pooled_segment_score([from_stored(labels.loc[i, "label"]) or [] for i in rest],
                                              [truth[i] for i in rest])  # fmt: skip
    ours, baseline = scores["auto"], scores["frame_majority"]
    assert ours.boundary_error < baseline.boundary_error and ours.f1 >= baseline.f1
    report = KIND.consensus_report(outcome.result, eligible, CLASSES, {})
    assert report["method"] == "frame_majority" and 0.0 < report["frame_alpha"] < 1.0
    learned = KIND.consensus(eligible, "labeler_aware", CLASSES, gold).result.run.labelers
    assert learned["late"].start_offset == pytest.approx(0.15, abs=0.03)  # learnt against gold: absolute
    assert learned["spam"].weight < min(learned[f"good{k}"].weight for k in range(3))


def test_labeler_statistics_measure_offsets_misses_and_false_regions_and_the_gate_fails_a_spammer() -> None:
    rows, truth = _crowd(30, seed=5)
    gold = pd.Series({i: stored(r) for i, r in truth.items()}, dtype=object)
    eligible = KIND.votes(rows, CLASSES).frame
    late = KIND.labeler_stats(eligible[eligible["labeler_id"] == "late"], labeler_id="late", classes=CLASSES,
                              gold=gold, consensus=gold, population_shares={})  # fmt: skip
    assert late.n_gold == 30 and late.gold_accuracy is not None and late.gold_accuracy > KIND.gold_gate_threshold
    assert late.vs_consensus["gold_start_offset"] == pytest.approx(0.15, abs=0.02)
    assert late.vs_consensus["gold_end_offset"] == pytest.approx(0.15, abs=0.02)
    low, high = late.vs_consensus["gold_miss_rate_ci"]
    assert low <= late.vs_consensus["gold_miss_rate"] <= high
    spam = eligible[eligible["labeler_id"] == "spam"]
    verdict, _ = KIND.gold_gate(spam, gold, CLASSES, KIND.gold_gate_threshold)
    assert verdict.verdict == "fail"
    good = eligible[eligible["labeler_id"] == "good0"]
    assert KIND.gold_gate(good, gold, CLASSES, KIND.gold_gate_threshold)[0].verdict == "pass"
    spam_stats = KIND.labeler_stats(spam, labeler_id="spam", classes=CLASSES, gold=gold, consensus=gold,
                                    population_shares={})  # fmt: skip
    assert spam_stats.vs_consensus["gold_false_rate"] > 0.8
    assert "| late |" in str(KIND.gold_report(eligible, gold, CLASSES, {"late": "late"})["gold_regions"])


def test_frame_agreement_is_one_for_identical_answers_and_near_chance_for_random_ones() -> None:
    same = {"a": {"x": [Region(0, 1, "en")], "y": [Region(0, 1, "en")]}}
    assert frame_agreement(same, {"a": 2.0}, CLASSES).alpha == pytest.approx(1.0)
    rows, _ = _crowd(10, seed=1)
    spam = rows[rows["labeler_id"].isin(["spam", "good0"])]
    noisy = KIND.agreement(KIND.votes(spam, CLASSES).frame, CLASSES)
    assert noisy.kappa < 0.3 and noisy.n_items == 10


def test_a_gold_entry_is_a_json_list_of_regions() -> None:
    read, why = KIND.parse_gold('[{"start": 1.5, "end": 2, "label": "vi"}, {"start": 0, "end": 1, "label": "en"}]',
                                CLASSES)  # fmt: skip
    assert why is None and read == [{"start": 0.0, "end": 1.0, "label": "en"}, {"start": 1.5, "end": 2.0, "label": "vi"}]
    assert KIND.parse_gold("[]", CLASSES) == ([], None)
    assert "not JSON" in str(KIND.parse_gold("en 0 1", CLASSES)[1])
    assert "start < end" in str(KIND.parse_gold('[{"start": 2, "end": 1, "label": "en"}]', CLASSES)[1])
    assert "klingon" in str(KIND.parse_gold('[{"start": 0, "end": 1, "label": "klingon"}]', CLASSES)[1])


def test_splits_keep_every_recording_in_one_split_and_spread_the_labels() -> None:
    answers = [[{"start": 0.0, "end": 1.0, "label": CLASSES[n % 3]}] for n in range(60)]
    rows = pd.DataFrame({"item_id": [f"i{n:02d}" for n in range(60)], "label": answers,
                         "group_key": [f"rec{n // 4}" for n in range(60)]})  # fmt: skip
    frame = KIND.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0).frame
    merged = frame.merge(rows[["item_id", "group_key"]].rename(columns={"group_key": "recording"}), on="item_id")
    assert merged.groupby("recording")["split"].nunique().eq(1).all() and merged["recording"].nunique() == 15
    assert set(frame["split"]) == {"train", "val", "test"} and frame["label"].tolist()[0] in answers
    assert KIND.missing_from_splits(frame, CLASSES).empty


def test_exports_write_jsonl_rows_and_rttm_that_parses_back_into_the_regions(tmp_path: Path) -> None:
    regions = {"i1": [{"start": 0.2, "end": 1.25, "label": "en"}, {"start": 1.4, "end": 2.0, "label": "vi"}],
               "i2": [], "i3": [{"start": 0.0, "end": 0.5, "label": "noise"}]}  # fmt: skip
    rows = pd.DataFrame({"item_id": list(regions), "image_path": [str(tmp_path / f"{i}.wav") for i in regions],
                         "label": list(regions.values()), "split": ["train", "train", "test"]})  # fmt: skip
    report = KIND.export(rows, tmp_path / "out", ["jsonl", "rttm"], CLASSES)
    assert sorted(report.paths) == ["test_jsonl", "test_rttm", "train_jsonl", "train_rttm"]
    lines = [json.loads(x) for x in report.paths["train_jsonl"].read_text().splitlines()]
    assert [(x["item_id"], x["regions"], x["split"]) for x in lines] == [("i1", regions["i1"], "train"),
                                                                        ("i2", [], "train")]  # fmt: skip
    assert lines[0]["duration"] is None and lines[0]["uri"].endswith("i1.wav")  # no audio there to read
    read = {**parse_rttm(report.paths["train_rttm"].read_text()), **parse_rttm(report.paths["test_rttm"].read_text())}
    assert {k: stored(v) for k, v in read.items()} == {k: v for k, v in regions.items() if v}
    # pyannote's own reader (what diarization tools load RTTM with) reads the same regions.
    from pyannote.database.util import load_rttm

    found = {**load_rttm(str(report.paths["train_rttm"])), **load_rttm(str(report.paths["test_rttm"]))}
    assert {uri: [{"start": round(s.start, 3), "end": round(s.end, 3), "label": label}
                  for s, _, label in annotation.itertracks(yield_label=True)]
            for uri, annotation in found.items()} == {k: v for k, v in regions.items() if v}  # fmt: skip
    with pytest.raises(ValueError, match="klingon"):
        KIND.export(rows.assign(label=[[{"start": 0, "end": 1, "label": "klingon"}]] * 3), tmp_path / "x", ["rttm"],
                    CLASSES)  # fmt: skip


def test_label_issues_flag_items_the_labelers_disagreed_on() -> None:
    answers = [[{"start": 0.0, "end": 1.0, "label": "en"}]] * 12
    features = [{"confidence": 0.95}] * 10 + [{"confidence": 0.4}, {"confidence": 0.55}]
    items = [f"i{n:02d}" for n in range(12)]
    issues, agreement = KIND.find_label_issues(items, answers, features, CLASSES, 5)
    assert issues.issues["item_id"].tolist() == ["i10", "i11"] and (issues.issues["label_quality"] < LOW_CONFIDENCE).all()
    assert np.isnan(agreement) and len(issues.label_quality) == 12
