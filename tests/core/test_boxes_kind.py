"""The box kind (``core/tasks/boxes/kind.py``) beyond the kind-level contract of ``tests/core/test_task_kinds.py``
(which runs over it too, now that it is registered): what is particular to boxes, checked over box data made the
way a labeler makes it: a detector's pre-label
(``prediction``) accepted in Label Studio becomes the stored answer (``answer_from_result``). Item ``i`` holds one
object of class ``i mod 3``; three labelers; gold on one item.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from pycocotools.coco import COCO

from labeling_assets.core.dataset.card import CardInputs
from labeling_assets.core.dataset.splits import SPLITS, SplitRatios
from labeling_assets.core.labelstudio.tasks import STRATEGIES
from labeling_assets.core.tasks import KINDS, task_kind
from labeling_assets.core.tasks.boxes.export import BoxExportError
from labeling_assets.core.tasks.boxes.kind import KIND, BoxesKind
from labeling_assets.core.tasks.boxes.votes import answer_boxes, box_confidences
from labeling_assets.core.tasks.kind import KindTrainer, TaskKind
from labeling_assets.core.tasks.registry import KIND_ATTRIBUTES, KIND_METHODS, missing_parts

CLASSES = ["cat", "dog", "fox"]
N_ITEMS = 30
W, H = 100.0, 80.0


def _box(k: int, score: float = 0.98, shift: float = 0.0) -> dict[str, Any]:
    """The object of class ``k`` (a place per class, so that a wrong class is also a wrong box)."""
    x0 = 10.0 + 25 * k + shift
    return {"label": CLASSES[k], "x0": x0, "y0": 20.0, "x1": x0 + 20.0, "y1": 50.0, "score": score}


def _detections(*boxes: dict[str, Any]) -> dict[str, Any]:
    return {"boxes": list(boxes), "image_width": W, "image_height": H}


def _answer(k: int | None, shift: float = 0.0) -> Any:
    """What a labeler stores after accepting the pre-label of class ``k``'s object (None: "No object")."""
    found = _detections() if k is None else _detections(_box(k, shift=shift))
    return KIND.answer_from_result(KIND.prediction(found, "m1")["result"])


def _annotations(n_labelers: int = 3) -> pd.DataFrame:
    rows = [
        {"item_id": f"i{i:02d}", "labeler_id": f"L{j}", "label": _answer(i % 3),
         "created_at": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(hours=i), "lead_time_s": 4.0}
        for i in range(N_ITEMS) for j in range(n_labelers)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _boxes_of(answer: Any) -> list[tuple[str, float, float, float, float]]:
    boxes, reason = answer_boxes(answer, CLASSES)
    assert reason is None, reason
    return boxes


def test_the_box_kind_is_registered_with_every_part_but_those_not_written() -> None:
    assert isinstance(KIND, TaskKind) and isinstance(KIND, BoxesKind)
    assert missing_parts(KIND, KIND_ATTRIBUTES + KIND_METHODS) == []
    assert "boxes" in KINDS and task_kind("boxes") is KIND


def test_the_box_kind_trains_a_detector_through_its_trainer_not_a_training_head() -> None:
    assert isinstance(KIND.trainer, KindTrainer)
    with pytest.raises(NotImplementedError, match="trainer"):
        KIND.training_head()
    answers = [_answer(0), _answer(None)]
    encoded = KIND.encode(answers, CLASSES)
    assert encoded.dtype == object and encoded.shape == (2,) and list(encoded) == answers
    assert KIND.stored_targets(None, ["i0"], encoded, CLASSES) is None


def test_answers_in_its_config_are_read_by_it_and_by_no_class_kind() -> None:
    for allow_empty in (True, False):
        config = KIND.label_config(CLASSES, allow_empty=allow_empty)
        assert KIND.owns_config(config)
        assert [name for name in KINDS if task_kind(name).owns_config(config)] == ["boxes"]
    assert not any(KIND.owns_config(task_kind(name).label_config(CLASSES)) for name in KINDS if name != "boxes")
    result = KIND.prediction(_detections(_box(1)), "m1")["result"]
    answer = KIND.read_answer(result)
    assert answer.problem is None and answer.label == KIND.answer_from_result(result) is not None
    assert _boxes_of(answer.label) == [("dog", 35.0, 20.0, 55.0, 50.0)]
    unreadable = KIND.read_answer([{"from_name": "label", "type": "rectanglelabels", "value": "not a box"}])
    assert unreadable.label is None and unreadable.problem and unreadable.detail
    assert KIND.read_answer(None).label is None and not KIND.owns_config("not xml <")
    assert KIND.classes_of(answer.label) == ["dog"] and KIND.classes_of(_answer(None)) == []


def test_an_accepted_prelabel_is_a_vote_and_a_bad_answer_is_skipped_with_a_known_reason() -> None:
    votes = KIND.votes(_annotations(), CLASSES)
    assert votes.skipped == {} and len(votes.frame) == 3 * N_ITEMS
    stored = pd.Series({f"i{k}": _answer(k) for k in range(3)} | {"empty": _answer(None)})
    assert len(KIND.valid_answers(stored, CLASSES)) == 4
    rotated = json.loads(json.dumps(_answer(0)))
    rotated["boxes"][0]["rotation"] = 30.0
    bad = pd.Series(["no-such-class", {"not": "an answer"}, rotated, _answer(None)], dtype=object)
    rows = _annotations(1).head(4).assign(label=bad)
    found = KIND.votes(rows, CLASSES, allow_empty=False)
    assert found.frame.empty
    assert sum(found.skipped.values()) == 4 and set(found.skipped) <= set(KIND.skip_reasons)
    assert {"rotated_box", "empty_set_not_allowed"} <= set(found.skipped)
    assert KIND.valid_answers(pd.Series({"a": {"not": "an answer"}, "b": rotated}), CLASSES).empty


def test_unanimous_votes_are_the_consensus_of_every_method() -> None:
    assert KIND.consensus_methods[0] == "auto"
    eligible = KIND.votes(_annotations(), CLASSES).frame
    for method in KIND.consensus_methods:
        outcome = KIND.consensus(eligible, method, CLASSES, pd.Series({"i00": _answer(0)}))
        labels = outcome.result.labels.set_index("item_id")["label"]
        for i in range(N_ITEMS):
            (got,), (want,) = _boxes_of(labels[f"i{i:02d}"]), _boxes_of(_answer(i % 3))
            assert got[0] == want[0] and got[1:] == pytest.approx(want[1:]), method
        assert outcome.n_gold == 1 and outcome.probabilities is None and outcome.no_bakeoff


def test_consensus_keeps_what_most_labelers_drew_and_says_what_it_found() -> None:
    """One labeler adds a box nobody else drew, one misses the object of an item: consensus follows the other two;
    an item everybody marked "No object" has no object; a method it does not have is one clear error."""
    rows = _annotations().head(9).copy()  # items i00-i02, labelers L0-L2
    rows.loc[(rows["item_id"] == "i00") & (rows["labeler_id"] == "L0"), "label"] = [
        KIND.answer_from_result(KIND.prediction(_detections(_box(0), _box(2)), "m1")["result"])
    ]
    rows.loc[(rows["item_id"] == "i01") & (rows["labeler_id"] == "L2"), "label"] = [_answer(None)]
    rows.loc[rows["item_id"] == "i02", "label"] = pd.Series([_answer(None)] * 3, index=rows.index[6:9], dtype=object)
    eligible = KIND.votes(rows, CLASSES).frame
    for method in ("majority", "wbf"):
        result = KIND.consensus(eligible, method, CLASSES, pd.Series(dtype=object)).result
        labels = result.labels.set_index("item_id")["label"]
        assert [b[0] for b in _boxes_of(labels["i00"])] == ["cat"], method
        assert [b[0] for b in _boxes_of(labels["i01"])] == ["dog"], method
        assert labels["i02"] == {"no_object": True, "boxes": []}, method
        report = KIND.consensus_report(result, eligible, CLASSES, {})
        assert report["objects_per_class"] == {"cat": 1, "dog": 1, "fox": 0} and report["items_without_objects"] == 1
        assert 0.0 < report["pairwise_f1"] < 1.0
    with pytest.raises(ValueError, match="not a box method"):
        KIND.consensus(eligible, "dawid_skene", CLASSES, pd.Series(dtype=object))


def test_a_consensus_answer_keeps_each_boxs_posterior_and_an_answer_without_one_reads_as_sure() -> None:
    """box_em's posterior that a box is an object is stored with the box (the trainer's per-box weight): two of three
    labelers behind a box make it less sure than three; answers stored before kept none and read as 1.0."""
    rows = _annotations().head(6).copy()  # items i00-i01, labelers L0-L2
    rows.loc[(rows["item_id"] == "i01") & (rows["labeler_id"] == "L2"), "label"] = [_answer(None)]
    eligible = KIND.votes(rows, CLASSES).frame
    outcome = KIND.consensus(eligible, "box_em", CLASSES, pd.Series(dtype=object))
    labels = outcome.result.labels.set_index("item_id")["label"]
    run = outcome.result.run
    for item in ("i00", "i01"):
        (box,) = labels[item]["boxes"]
        posterior = float(run.objects.loc[run.objects["item_id"] == item, "score"].iloc[0])
        assert box["confidence"] == pytest.approx(posterior, abs=1e-6) and 0.5 < posterior <= 1.0
        assert box_confidences(labels[item]) == [box["confidence"]]
        (got,), (want,) = _boxes_of(labels[item]), _boxes_of(_answer(0 if item == "i00" else 1))  # rules ignore it
        assert got[0] == want[0] and got[1:] == pytest.approx(want[1:])
    assert labels["i01"]["boxes"][0]["confidence"] < labels["i00"]["boxes"][0]["confidence"]
    assert box_confidences(_answer(0)) == [1.0]  # a labeler's answer (or one stored before) keeps none
    assert box_confidences({"boxes": [{"confidence": "x"}, {"confidence": float("nan")}, {"confidence": 2}]}) == [1.0] * 3


def test_agreement_is_perfect_for_unanimous_boxes_and_falls_for_a_shifted_labeler() -> None:
    rows = _annotations()
    assert KIND.agreement(KIND.votes(rows, CLASSES).frame, CLASSES).kappa == pytest.approx(1.0)
    shifted = rows.assign(label=[_answer(int(i[1:]) % 3, shift=15.0) if who == "L0" else a
                                 for i, who, a in zip(rows["item_id"], rows["labeler_id"], rows["label"], strict=True)])
    found = KIND.agreement(KIND.votes(shifted, CLASSES).frame, CLASSES)
    assert found.kappa == pytest.approx(1 / 3) and found.n_items == N_ITEMS


def test_a_gold_files_entry_reads_as_the_answer_it_writes() -> None:
    for k in range(3):
        box = {key: v for key, v in _box(k).items() if key != "score"}
        text = json.dumps({"width": W, "height": H, "boxes": [box]})
        answer, why = KIND.parse_gold(text, CLASSES)
        assert why is None and _boxes_of(answer) == _boxes_of(_answer(k))
        assert KIND.parse_gold(text, None)[1] is None
    alien = json.dumps([{"label": "wolf", "x0": 1, "y0": 1, "x1": 9, "y1": 9}])
    _, why = KIND.parse_gold(alien, CLASSES)
    assert why and "wolf" in why
    assert KIND.parse_gold(alien, None)[1] is None
    assert KIND.parse_gold('{"not": "an answer"}', CLASSES)[1]
    assert KIND.parse_gold("[]", CLASSES) == ({"no_object": True, "boxes": []}, None)


def test_gold_scores_right_and_wrong_answers() -> None:
    gold = pd.Series({f"i{k}": _answer(k) for k in range(3)})
    right = pd.DataFrame({"item_id": list(gold.index), "labeler_id": "L0", "label": list(gold)})
    wrong = right.assign(label=[_answer((k + 1) % 3) for k in range(3)])
    correct, trials = KIND.gold_score(right, gold, CLASSES)
    assert correct == trials == 3
    verdict, per_class = KIND.gold_gate(right, gold, CLASSES, 0.5)
    assert verdict.n == 3 and verdict.rate == 1.0 and set(per_class) == set(CLASSES)
    assert KIND.gold_score(wrong, gold, CLASSES) == (0, 6)  # 3 missed gold boxes + 3 false boxes
    report = KIND.gold_report(pd.concat([right, wrong.assign(labeler_id="L1")]), gold, CLASSES, {"L0": "ann", "L1": "bob"})
    assert report["box_gold_score"] == {"ann": 1.0, "bob": 0.0} and "ann" in report["gold_boxes"]


def test_labeler_stats_count_each_labelers_votes() -> None:
    votes = KIND.votes(_annotations(), CLASSES).frame
    gold = pd.Series({"i00": _answer(0)})
    consensus = pd.Series({f"i{i:02d}": _answer(i % 3) for i in range(N_ITEMS)})
    mine = votes[votes["labeler_id"] == "L0"]
    stats = KIND.labeler_stats(mine, labeler_id="L0", classes=CLASSES, gold=gold, consensus=consensus,
                               population_shares={c: 1 / 3 for c in CLASSES})  # fmt: skip
    assert stats.n_labels == N_ITEMS and stats.n_gold == 1 and stats.gold_accuracy == 1.0
    assert stats.n_with_consensus == N_ITEMS and stats.class_distribution == {c: 10 for c in CLASSES}
    trend = KIND.weekly_trend(mine, labeler_id="L0", classes=CLASSES, gold=gold, consensus=consensus, last_weeks=4)
    assert sum(week.n_labels for week in trend) == N_ITEMS
    inputs = KIND.quality_inputs(votes, gold, pd.Series(dtype=object), consensus, CLASSES)
    assert len(inputs.gold) == 1 and inputs.population_shares == pytest.approx({c: 1 / 3 for c in CLASSES})


def test_splits_give_every_item_one_split_and_a_manifest() -> None:
    answers = [_answer(i % 3) for i in range(N_ITEMS)]
    rows = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(N_ITEMS)], "label": answers,
                         "group_key": [f"g{i}" for i in range(N_ITEMS)]})  # fmt: skip
    usable, excluded = KIND.usable_labels(rows.assign(label=[*answers[:-1], "cat"]), CLASSES, True, {})
    assert len(usable) == N_ITEMS - 1 and sum(excluded.values()) == 1
    assignment = KIND.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0)
    manifest = assignment.frame
    assert sorted(manifest["item_id"]) == sorted(rows["item_id"]) and set(manifest["split"]) <= set(SPLITS)
    again = KIND.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0).frame
    assert manifest.equals(again)
    version, weights, document = KIND.manifest(manifest, CLASSES, previous_version=None, extra={})
    assert isinstance(version, str) and version and set(weights) <= set(CLASSES) and document["label"][0] == answers[0]
    moved = manifest.assign(label=[_answer(i % 3, shift=1.0) for i in range(N_ITEMS)])
    assert KIND.manifest(moved, CLASSES, previous_version=None, extra={})[0] != version  # a moved box is a new version
    deviations = KIND.split_deviations(manifest, CLASSES, 0.5)
    assert len(deviations) and {"split", "deviation", "ok"} <= set(deviations.columns) and deviations["ok"].all()
    assert KIND.missing_from_splits(manifest, CLASSES).empty and KIND.missing_for_thresholds(manifest, CLASSES).empty
    only_train = manifest.assign(split="train")
    assert set(KIND.missing_from_splits(only_train, CLASSES)["split"]) == {"val", "test"}
    assert list(KIND.missing_for_thresholds(only_train, CLASSES).columns) == ["label", "split", "positives"]
    assert KIND.split_balance(manifest, CLASSES)[1] == pytest.approx(1.0)
    assert KIND.annotation_summary(_annotations()) == (3, 3 * N_ITEMS, None)


def test_prediction_informativeness_and_the_review_line() -> None:
    prediction = KIND.prediction(_detections(_box(1)), None)
    assert prediction["model_version"] == "unknown" and 0.0 <= prediction["score"] <= 1.0
    sure, unsure = _detections(_box(1, 0.98)), _detections(_box(1, 0.55), _box(2, 0.45))
    for strategy in STRATEGIES:
        a, b = KIND.informativeness(sure, strategy), KIND.informativeness(unsure, strategy)
        assert 0.0 <= a <= 1.0 and 0.0 <= b <= 1.0
        assert a < b or strategy == "random"
    assert KIND.informativeness(None, "uncertainty") == 1.0
    line = KIND.review_model_line(sure, "m1")
    assert line is not None and "m1" in line and "dog" in line
    assert KIND.review_model_line(None, None) == "model: no prediction" and KIND.gold_accuracy_name
    nothing_sure = _detections(_box(2, 0.3))
    assert _boxes_of(KIND.answer_from_result(KIND.prediction(nothing_sure, "m1")["result"])) == []
    best = KIND.answer_from_result(KIND.prediction(nothing_sure, "m1", allow_empty=False)["result"])
    assert [b[0] for b in _boxes_of(best)] == ["fox"]  # no "No object" in the project: the best box is shown
    report = KIND.prediction_report([sure, unsure, nothing_sure], CLASSES, None)
    assert report["predicted_boxes"] == {"cat": 0, "dog": 2, "fox": 0} and report["images_without_boxes"] == 1
    assert KIND.fit_baseline(None, CLASSES, 32)[0] is None


def test_a_version_exports_per_split_with_each_images_size_read_from_its_file(tmp_path: Path) -> None:
    """An image without objects is written too, its size read from the file (no box carries it); COCO reads back
    each split's boxes; a label turned into text, or a format the kind has not, is refused."""
    paths = []
    for i, size in enumerate([(100, 80), (100, 80), (64, 48)]):
        paths.append(tmp_path / f"img{i}.png")
        Image.new("RGB", size).save(paths[-1])
    rows = pd.DataFrame({"item_id": ["a", "b", "c"], "image_path": [str(p) for p in paths],
                         "label": [_answer(0), _answer(2), _answer(None)], "split": ["train", "train", "test"]})  # fmt: skip
    report = KIND.export(rows, tmp_path / "out", ["coco", "yolo", "voc"], CLASSES)
    assert set(report.paths) == {"coco", "yolo", "voc"}
    train, test = COCO(str(tmp_path / "out/coco/train.json")), COCO(str(tmp_path / "out/coco/test.json"))
    assert len(train.getAnnIds()) == 2 and [train.cats[a["category_id"]]["name"] for a in train.anns.values()] == ["cat", "fox"]
    assert len(test.getAnnIds()) == 0 and [(im["width"], im["height"]) for im in test.imgs.values()] == [(64, 48)]
    assert (tmp_path / "out/yolo/test/labels/img2.txt").read_text() == ""
    assert sorted(p.name for p in (tmp_path / "out/voc/train/Annotations").iterdir()) == ["img0.xml", "img1.xml"]
    with pytest.raises(BoxExportError, match="not a box answer"):
        KIND.export(rows.assign(label=rows["label"].astype(str)), tmp_path / "again", ["coco"], CLASSES)
    with pytest.raises(BoxExportError, match="unknown box export format"):
        KIND.export(rows, tmp_path / "again", ["imagefolder"], CLASSES)


def test_the_dataset_card_counts_boxes_per_class_and_split_and_names_its_limitations() -> None:
    """Items i00-i29 hold one box of class i mod 3, but no item holds a fox: foxes are replaced by "No object" and
    one item gets two cats; the card counts that and says the fox has no box."""
    answers = [_answer(None) if i % 3 == 2 else _answer(i % 3) for i in range(N_ITEMS)]
    answers[0] = KIND.answer_from_result(KIND.prediction(_detections(_box(0), _box(1, shift=40.0)), "m1")["result"])
    rows = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(N_ITEMS)], "label": answers})
    manifest = KIND.assign_splits(rows, CLASSES, existing=pd.Series(dtype=object), ratios=SplitRatios(), seed=0).frame
    version, weights, _ = KIND.manifest(manifest, CLASSES, previous_version=None, extra={})
    inputs = CardInputs(name="scenes", version=version, manifest=manifest, class_weights=weights,
                        ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=0, expected_classes=CLASSES,
                        mean_confidence=0.9, n_gold_items=1)  # fmt: skip
    card = KIND.dataset_card(inputs)
    row = {line.split(" | ")[0].strip("| "): line for line in card.splitlines() if line.startswith("| ")}
    assert row["cat"].endswith("| 10 (10) |") and row["dog"].endswith("| 11 (11) |")  # i00 holds a cat and a dog
    assert row["fox"].endswith("| 0 (0) |") and row["(no object)"].endswith("| 10 |")
    assert row["all"].startswith("| all | 21 | 21 | 0 | 0 | 20.0 × 30.0 |")  # 20 × 30 px boxes: all small
    assert "Classes of the project with no box: fox." in card and "1 items are gold" in card
    assert f"`{version}`" in card and "mean consensus confidence 0.900" in card


def test_a_box_version_keeps_path_groups_and_near_duplicate_scenes_in_one_split() -> None:
    """Issue 30: splits keep groups and near-duplicates whole for boxes too. The build adds a second row under the
    near-duplicate key for a grouped scene; the box splitter joins both keys, so a chain of path group and
    near-duplicate pair lands whole in one split."""
    import hashlib

    from labeling_assets.core.dataset.build import BuildInputs, build_dataset

    n = 60
    ids = [f"s{i:02d}" for i in range(n)]
    labeled = pd.DataFrame({"item_id": ids, "label": [_answer(None if i % 7 == 0 else i % 3) for i in range(n)],
                            "group_key": [f"shoot{i // 4}" if i < 20 else None for i in range(n)]})  # fmt: skip
    phashes = pd.Series({item: hashlib.sha256(item.encode()).hexdigest()[:16] for item in ids})  # far apart
    for a, b in (("s03", "s30"), ("s40", "s41"), ("s50", "s51")):  # s03's twin ties s30 to the group shoot0
        phashes[b] = phashes[a]
    built = build_dataset(BuildInputs(labeled, pd.Series(dtype=object), SplitRatios(), 0, phashes, 4, None,
                                      task_type="boxes", classes=CLASSES))  # fmt: skip
    split = dict(zip(built.assignment.frame["item_id"], built.assignment.frame["split"], strict=True))
    assert sorted(split) == ids and set(built.near_duplicates) == {"s03", "s30", "s40", "s41", "s50", "s51"}
    units = (["s00", "s01", "s02", "s03", "s30"], ["s40", "s41"], ["s50", "s51"], ["s04", "s05", "s06", "s07"])
    for unit in units:
        assert len({split[item] for item in unit}) == 1, unit
    assert len(set(split.values())) == 3
    assert built.manifest_json["label"][ids.index("s05")] == labeled["label"][5]  # the answer, not its classes


def test_a_labelers_statistics_score_their_boxes_against_consensus_with_intervals() -> None:
    """Issue 30, item 3: precision and recall at IoU 0.5 against consensus too, the mean IoU of matched boxes,
    miss and false-box rates, with Wilson intervals. L0 draws 10 consensus boxes right, 5 too far off (a false
    box and a miss each) and answers "No object" on 5 items that have one."""
    answers = [_answer(i % 3) for i in range(10)] + [_answer(i % 3, shift=15.0) for i in range(10, 15)]
    answers += [_answer(None)] * 5
    rows = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(20)], "labeler_id": "L0", "label": answers,
                         "created_at": pd.Timestamp("2026-01-05", tz="UTC"), "lead_time_s": 4.0})  # fmt: skip
    mine = KIND.votes(rows, CLASSES).frame
    consensus = pd.Series({f"i{i:02d}": _answer(i % 3) for i in range(N_ITEMS)})
    stats = KIND.labeler_stats(mine, labeler_id="L0", classes=CLASSES, gold=pd.Series(dtype=object),
                               consensus=consensus, population_shares={})  # fmt: skip
    scores = stats.vs_consensus
    assert scores["consensus_items"] == 20 and scores["consensus_iou_threshold"] == 0.5
    assert scores["consensus_box_precision"] == pytest.approx(10 / 15, abs=1e-4)
    assert scores["consensus_box_recall"] == 0.5 and scores["consensus_miss_rate"] == 0.5
    assert scores["consensus_false_box_rate"] == pytest.approx(5 / 15, abs=1e-4)
    assert scores["consensus_mean_iou"] == pytest.approx(1.0, abs=1e-3)
    low, high = scores["consensus_box_recall_ci"]
    assert 0.25 < low < 0.5 < high < 0.75  # Wilson, 10 of 20
    assert "own votes included" in scores["consensus_basis"]
