"""Box consensus: boxes matched across labelers by an assignment, a labeler-aware EM deciding which clusters are
objects, boxes fused by labeler reliability; the majority-clustering and weighted-box-fusion baselines; labeler
statistics for boxes; COCO mAP by pycocotools."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.tasks.boxes import crowd
from labeling_assets.core.tasks.boxes.consensus import BOX_METHODS, BoxConsensusError, box_consensus
from labeling_assets.core.tasks.boxes.geometry import iou_matrix
from labeling_assets.core.tasks.boxes.labelstudio import box_result, read_boxes
from labeling_assets.core.tasks.boxes.matching import cluster_boxes
from labeling_assets.core.tasks.boxes.metrics import coco_map
from labeling_assets.core.tasks.boxes.stats import box_labeler_stats
from labeling_assets.core.tasks.boxes.votes import BOX_COLUMNS, box_votes

CLASSES = ["a", "b", "c"]


def frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def simulated(mix: str, n_items: int = 150, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[crowd.BoxLabeler]]:
    rng = np.random.default_rng(seed)
    labelers = {
        "one_spammer": [crowd.good(f"good{n}", rng) for n in range(4)] + [crowd.spammer("spammer")],
        "sparse": [crowd.good(f"good{n}", rng) for n in range(2)] + [crowd.average(f"avg{n}", rng) for n in range(3)],
        "one_loose": [crowd.good(f"good{n}", rng) for n in range(4)] + [crowd.loose("loose")],
    }[mix]
    scenes = crowd.make_scenes(n_items, CLASSES, rng)
    votes, boxes = crowd.simulate_boxes(scenes, labelers, 2 if mix == "sparse" else 3, CLASSES, rng)
    return votes, boxes, crowd.truth_boxes(scenes), labelers


def f1(objects: pd.DataFrame, truth: pd.DataFrame, items: list[str]) -> float:
    stats = box_labeler_stats(pd.DataFrame({"item_id": items, "labeler_id": "m"}), objects.assign(labeler_id="m"),
                              truth, items)  # fmt: skip
    p, r = float(stats["precision"].iloc[0]), float(stats["recall"].iloc[0])
    return 2 * p * r / (p + r)


def test_iou_of_boxes() -> None:
    iou = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 5 / 15, 0.0]])


def test_matching_is_an_assignment_where_greedy_would_split_an_object() -> None:
    # Labeler A drew r1 = [0, 10] and r2 = [4, 14] (x extent; y is 0-10 for all). B's b1 = [3, 12] overlaps r2
    # most (0.73) but r1 enough (0.58); b2 = [7, 16] overlaps only r2 well (0.58). Greedy pairs b1-r2 first and
    # leaves b2 alone (0.19 with r1); the assignment pairs b1-r1 and b2-r2.
    boxes = frame([("i", "A", "a", 0, 0, 10, 10), ("i", "A", "a", 4, 0, 14, 10),
                   ("i", "B", "a", 3, 0, 12, 10), ("i", "B", "a", 7, 0, 16, 10)])  # fmt: skip
    ids = cluster_boxes(boxes, iou_threshold=0.4)
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]


def test_boxes_of_another_class_item_or_the_same_labeler_never_share_a_cluster() -> None:
    boxes = frame([("i", "A", "a", 0, 0, 10, 10), ("i", "B", "b", 0, 0, 10, 10), ("j", "C", "a", 0, 0, 10, 10),
                   ("i", "A", "a", 1, 0, 11, 10)])  # fmt: skip
    assert len(set(cluster_boxes(boxes).tolist())) == 4


def test_ours_learns_the_spammer_and_drops_their_lone_boxes() -> None:
    votes, boxes, truth, _ = simulated("one_spammer")
    ours = box_consensus(votes, boxes)  # auto
    labelers = ours.labelers.set_index("labeler_id")
    good = labelers.drop(index="spammer")
    assert labelers.loc["spammer", "false_boxes_per_item"] > 5 * good["false_boxes_per_item"].max()
    assert labelers.loc["spammer", "recall"] < good["recall"].min()
    assert labelers.loc["spammer", "weight"] < good["weight"].min()
    items = sorted(votes["item_id"].unique())
    majority = box_consensus(votes, boxes, "majority")
    assert f1(ours.objects, truth, items) > f1(majority.objects, truth, items)


def test_at_overlap_two_a_lone_box_counts_by_who_drew_it() -> None:
    votes, boxes, truth, _ = simulated("sparse", n_items=300)
    ours = box_consensus(votes, boxes, "box_em")
    majority = box_consensus(votes, boxes, "majority")
    lone = ours.boxes[ours.boxes["n_boxes"] == 1]
    drawer = boxes.assign(cluster=cluster_boxes(boxes)).groupby("cluster")["labeler_id"].first()
    by_whom = lone["score"].groupby(drawer.reindex(lone.index).str.startswith("good")).mean()
    # a careful labeler's lone box is more likely an object than a hasty one's; majority cannot tell (0.5 each)
    assert by_whom[True] > by_whom[False] + 0.2
    assert set(majority.boxes.loc[majority.boxes["n_boxes"] == 1, "score"]) == {0.5}
    items = sorted(votes["item_id"].unique())
    assert f1(ours.objects, truth, items) > f1(majority.objects, truth, items)


def test_fused_boxes_lean_to_the_precise_labelers() -> None:
    votes, boxes, truth, _ = simulated("one_loose")
    ours = box_consensus(votes, boxes)
    assert ours.labelers.set_index("labeler_id")["weight"].idxmin() == "loose"
    items = sorted(votes["item_id"].unique())
    ours_map = coco_map(truth, ours.boxes, items, CLASSES).map
    assert ours_map > coco_map(truth, box_consensus(votes, boxes, "majority").boxes, items, CLASSES).map
    assert ours_map > coco_map(truth, box_consensus(votes, boxes, "wbf").boxes, items, CLASSES).map


def test_gold_decides_its_items_and_an_object_nobody_drew_is_everybodys_miss() -> None:
    votes, boxes, _, _ = simulated("one_spammer", n_items=60)
    gold_item = "gold-1"
    extra_votes = pd.DataFrame({"item_id": gold_item, "labeler_id": ["good0", "good1", "good2"], "n_boxes": 1})
    extra = frame([(gold_item, lab, "a", 10, 10, 50, 50) for lab in ("good0", "good1", "good2")])
    gold = pd.DataFrame({"item_id": gold_item, "label": ["b", "a"], "x0": [100, 300], "y0": [100, 300],
                         "x1": [150, 350], "y1": [150, 350]})  # fmt: skip
    votes, boxes = pd.concat([votes, extra_votes]), pd.concat([boxes, extra], ignore_index=True)
    without = box_consensus(votes, boxes)
    with_gold = box_consensus(votes, boxes, gold=gold, gold_items=[gold_item])
    on_gold = with_gold.boxes[with_gold.boxes["item_id"] == gold_item]
    assert without.boxes[without.boxes["item_id"] == gold_item]["score"].iloc[0] > 0.9  # all three drew it
    assert on_gold["score"].tolist() == [0.0]  # gold says there is nothing there
    recall = with_gold.labelers.set_index("labeler_id")["recall"]
    assert (recall.loc[["good0", "good1", "good2"]] < without.labelers.set_index("labeler_id")["recall"]
            .loc[["good0", "good1", "good2"]]).all()  # fmt: skip


def test_labelers_who_answered_no_object_make_a_lone_box_less_likely() -> None:
    votes, boxes, _, _ = simulated("one_spammer", n_items=100)
    lone = frame([("alone", "good0", "a", 10, 10, 60, 60), ("outvoted", "good0", "a", 10, 10, 60, 60)])
    extra = pd.DataFrame({"item_id": ["alone", "outvoted", "outvoted", "outvoted"],
                          "labeler_id": ["good0", "good0", "good1", "good2"], "n_boxes": [1, 1, 0, 0]})  # fmt: skip
    result = box_consensus(pd.concat([votes, extra]), pd.concat([boxes, lone], ignore_index=True))
    score = result.boxes.set_index("item_id")["score"]
    assert score["outvoted"] < 0.5 < score["alone"]


def test_item_confidence_is_lower_where_labelers_disagree_and_full_where_all_said_no_object() -> None:
    votes, boxes, _, _ = simulated("one_spammer", n_items=100)
    extra = pd.DataFrame({"item_id": ["empty"] * 3 + ["agreed"] * 3 + ["split"] * 2,
                          "labeler_id": ["good0", "good1", "good2"] * 2 + ["good0", "good1"],
                          "n_boxes": [0, 0, 0, 1, 1, 1, 1, 0]})  # fmt: skip
    drawn = frame([("agreed", lab, "a", 10, 10, 60, 60) for lab in ("good0", "good1", "good2")]
                  + [("split", "good0", "a", 10, 10, 60, 60)])  # fmt: skip
    result = box_consensus(pd.concat([votes, extra]), pd.concat([boxes, drawn], ignore_index=True))
    items = result.items.set_index("item_id")
    assert items.loc["empty", "n_objects"] == 0 and items.loc["empty", "confidence"] == 1.0
    assert items.loc["split", "confidence"] < items.loc["agreed", "confidence"]
    assert items.loc["agreed", "n_labelers"] == 3


@pytest.mark.parametrize("method", BOX_METHODS)
def test_every_method_scores_every_candidate_and_decides_objects_at_one_half(method: str) -> None:
    votes, boxes, _, _ = simulated("one_spammer", n_items=30)
    result = box_consensus(votes, boxes, method)
    assert {"item_id", "label", "x0", "y0", "x1", "y1", "score", "n_boxes", "is_object"} <= set(result.boxes)
    assert result.boxes["score"].between(0, 1).all()
    assert (result.boxes["is_object"] == (result.boxes["score"] >= 0.5)).all()
    assert set(result.items["item_id"]) == set(votes["item_id"])


def test_an_unknown_method_or_missing_columns_is_refused() -> None:
    votes, boxes, _, _ = simulated("one_spammer", n_items=5)
    with pytest.raises(BoxConsensusError, match="unknown box consensus method"):
        box_consensus(votes, boxes, "mean")
    with pytest.raises(BoxConsensusError, match="lack"):
        box_consensus(votes, boxes.drop(columns="x0"))


def test_label_studio_answers_flow_into_consensus_in_pixels() -> None:
    truth = [{"label": "a", "x0": 100.0, "y0": 50.0, "x1": 300.0, "y1": 200.0}]
    annotations = pd.DataFrame({
        "item_id": "img", "labeler_id": ["x", "y", "z"],
        "label": [read_boxes(box_result(truth, 640, 480)).answer,
                  read_boxes(box_result([dict(truth[0], x0=104.0)], 640, 480)).answer,
                  read_boxes(box_result([], 640, 480)).answer],
    })  # fmt: skip
    votes = box_votes(annotations, CLASSES)
    result = box_consensus(votes.votes, votes.boxes)
    (obj,) = result.objects.itertuples()
    assert (obj.x0, obj.y0, obj.x1, obj.y1) == pytest.approx((102, 50, 300, 200), abs=2.5)
    assert result.items["n_labelers"].tolist() == [3]


def test_labeler_stats_against_gold_count_matches_misses_and_false_boxes_with_intervals() -> None:
    gold = pd.DataFrame({"item_id": ["i1", "i1", "i2", "i2", "i3"], "label": ["a", "a", "a", "b", "a"],
                         "x0": [0, 100, 0, 0, 0], "y0": 0, "x1": [50, 150, 50, 50, 50], "y1": 50})  # fmt: skip
    boxes = frame([("i1", "x", "a", 0, 0, 50, 50), ("i1", "x", "a", 102, 0, 150, 50),   # two matches
                   ("i2", "x", "a", 0, 0, 50, 50), ("i2", "x", "a", 200, 200, 250, 250),  # a match, a false box
                   ("i2", "x", "a", 0, 0, 20, 20)])  # fmt: skip  # IoU 0.16: not a match
    votes = pd.DataFrame({"item_id": ["i1", "i2", "i4"], "labeler_id": "x"})  # i3 not answered; i4 not gold
    (row,) = box_labeler_stats(votes, boxes, gold, ["i1", "i2", "i3"]).to_dict("records")
    assert (row["n_items"], row["n_boxes"], row["n_reference"], row["matched"]) == (2, 5, 4, 3)
    assert row["precision"] == pytest.approx(3 / 5) and row["recall"] == pytest.approx(3 / 4)
    assert (row["precision_low"], row["precision_high"]) == pytest.approx(wilson_interval(3, 5))
    assert (row["recall_low"], row["recall_high"]) == pytest.approx(wilson_interval(3, 4))
    assert row["miss_rate"] == pytest.approx(1 / 4) and row["false_box_rate"] == pytest.approx(2 / 5)
    assert row["false_boxes_per_item"] == pytest.approx(1.0)
    assert row["mean_iou"] == pytest.approx((1 + 48 * 50 / (50 * 50) + 1) / 3)


def test_labeler_stats_of_an_empty_answer_on_an_item_with_objects_is_all_misses() -> None:
    gold = pd.DataFrame({"item_id": ["i1"], "label": ["a"], "x0": [0], "y0": [0], "x1": [10], "y1": [10]})
    votes = pd.DataFrame({"item_id": ["i1"], "labeler_id": ["x"]})
    (row,) = box_labeler_stats(votes, frame([]), gold, ["i1"]).to_dict("records")
    assert row["recall"] == 0 and np.isnan(row["precision"]) and row["miss_rate"] == 1


def test_coco_map_is_one_for_the_truth_and_drops_with_a_false_box_in_an_empty_scene() -> None:
    truth = pd.DataFrame({"item_id": ["i1", "i2"], "label": ["a", "b"], "x0": [0.0, 10.0], "y0": [0.0, 10.0],
                          "x1": [50.0, 90.0], "y1": [50.0, 60.0]})  # fmt: skip
    perfect = coco_map(truth, truth.assign(score=1.0), ["i1", "i2", "empty"], CLASSES)
    assert (perfect.map, perfect.ap50, perfect.n_images) == (pytest.approx(1.0), pytest.approx(1.0), 3)
    false_box = pd.DataFrame({"item_id": ["empty"], "label": ["a"], "x0": [0.0], "y0": [0.0], "x1": [50.0],
                              "y1": [50.0], "score": [0.9]})  # fmt: skip
    assert coco_map(truth, pd.concat([truth.assign(score=0.5), false_box]), ["i1", "i2", "empty"], CLASSES).map < 1
    assert coco_map(truth, truth.assign(score=1.0).iloc[:0], ["i1", "i2"], CLASSES).map == 0.0


def test_boxes_without_their_vote_are_refused_and_votes_without_boxes_are_no_object() -> None:
    votes = pd.DataFrame({"item_id": ["i", "i", "j"], "labeler_id": ["a", "b", "a"]})
    with pytest.raises(BoxConsensusError, match="without their"):
        box_consensus(votes, frame([("i", "c", "a", 0, 0, 9, 9)]))
    for method in BOX_METHODS:
        result = box_consensus(votes, frame([]), method)
        assert result.boxes.empty and result.items["n_objects"].tolist() == [0, 0]
        assert result.items["confidence"].tolist() == [1.0, 1.0]


def test_the_labeler_table_scores_each_labeler_against_consensus_and_gold_beside_the_models_estimates() -> None:
    from labeling_assets.core.tasks.boxes.stats import box_labeler_table

    votes, boxes, truth, _ = simulated("one_spammer", n_items=80)
    items = sorted(votes["item_id"].unique())
    result = box_consensus(votes, boxes)
    gold_items = items[:20]
    table = box_labeler_table(votes, boxes, result.objects, items, gold=truth[truth["item_id"].isin(gold_items)],
                              gold_items=gold_items, estimates=result.labelers).set_index("labeler_id")  # fmt: skip
    assert list(table.index) == sorted(votes["labeler_id"].unique())
    good = table.drop(index="spammer")
    for prefix in ("consensus_", "gold_"):
        assert (table.loc["spammer", f"{prefix}precision"] < good[f"{prefix}precision"]).all()
        assert (good[f"{prefix}recall_low"] <= good[f"{prefix}recall"]).all()
        assert (good[f"{prefix}recall"] <= good[f"{prefix}recall_high"]).all()
    assert (table["gold_n_items"] <= 20).all() and table["gold_n_items"].sum() == 60  # 20 gold scenes x 3
    assert table.loc["spammer", "model_false_boxes_per_item"] > good["model_false_boxes_per_item"].max()
    no_gold = box_labeler_table(votes, boxes, result.objects, items)
    assert no_gold["gold_recall"].isna().all() and (no_gold["gold_recall_high"] == 1.0).all()
