"""Box consensus: which matched clusters of boxes are objects, and where each object is.

Ours (``box_em``, what ``auto`` runs) is Dawid-Skene for boxes. Boxes are clustered per item and class
(:mod:`.matching`); each cluster is an object or not (latent). Every labeler who answered the item either drew a
box in the cluster or did not, and each labeler has a recall (draws a box of a real object), a false-box rate
(draws into a cluster that is no object) and a localization error (how far their corners sit from the fused
box, relative to its size). EM alternates: posteriors of the clusters from the labelers' rates, then the rates
from the posteriors (with Beta priors, so a labeler with few items stays near the crowd). Gold boxes, where
given, fix their items' clusters (matched at IoU 0.5: an object; unmatched: none) and add the objects nobody
drew as clusters everybody missed. Each object's box is the mean of its boxes weighted by 1 / (localization
error)^2, so a spammer's or a loose labeler's corners count little.

Baselines beside it: ``majority`` (CVAT/datumaro style: clusters at IoU 0.5 kept when at least half of the
item's labelers drew them, unweighted mean box) and ``wbf`` (weighted box fusion, the ``ensemble-boxes``
package, each labeler a model with score 1). Every method returns every candidate box with a score and an
``is_object`` decision (score at least 0.5); mAP ranks by the score, consensus keeps the objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.tasks.boxes.geometry import FloatArray
from labeling_assets.core.tasks.boxes.matching import CORNERS, assign, cluster_boxes

BOX_METHODS = ("auto", "box_em", "majority", "wbf")
MATCH_IOU = 0.4  # ours: loose boxes still join their object's cluster; EM decides what a cluster is
MAJORITY_IOU = 0.5  # the baselines' customary threshold
GOLD_IOU = 0.5
# Priors as pseudo-counts: a labeler's recall (Beta), their false boxes per item (0.5 false boxes in 2 items),
# objects per item, localization error.
RECALL_PRIOR = (4.0, 1.0)
FALSE_PRIOR = (0.5, 2.0)
# The chance that a labeler's box matches another labeler's false box (same class, IoU >= MATCH_IOU) by
# accident. Fixed, not learned: learned, it let EM drift into "every object is drawn by everybody, a cluster
# two of three drew is two false boxes that coincide" (recall 1, coincidence 0.36; F1 0.83-0.87 on 3 of 5 seeds
# of the all-good crowd in benchmarks/boxes.py), which explains the same counts.
COINCIDENCE = 0.01
OBJECTS_PRIOR = (2.0, 1.0)  # objects per item: 2, worth one item
LOC_PRIOR_SD, LOC_PRIOR_WEIGHT = 0.1, 3.0
MIN_LOC_SD = 0.01
ITERATIONS = 300
TOLERANCE = 1e-6
OUT_COLUMNS = ["item_id", "label", *CORNERS, "score", "n_boxes", "is_object"]


class BoxConsensusError(ValueError):
    """A method the box kind does not have, or input without the columns it needs."""


@dataclass(frozen=True)
class BoxConsensus:
    """A box consensus run.

    Attributes:
        boxes: every candidate (``item_id, label, x0, y0, x1, y1, score, n_boxes, is_object``); ``score`` is
            the posterior that it is an object (ours) or the share of the item's labelers behind it (baselines).
        items: ``item_id, n_labelers, n_objects, confidence``: confidence is the probability that every
            decision on the item is right (the product of max(p, 1 - p) over its candidates; 1 with none).
        labelers: ``labeler_id, n_items, n_boxes, recall, false_boxes_per_item, localization_error, weight`` (ours;
            empty for the baselines).
        method: what ran; ``iterations``: EM iterations (0 for the baselines).
    """

    boxes: pd.DataFrame
    items: pd.DataFrame
    labelers: pd.DataFrame
    method: str
    iterations: int = 0

    @property
    def objects(self) -> pd.DataFrame:
        """The consensus boxes: the candidates decided to be objects."""
        return self.boxes[self.boxes["is_object"]].reset_index(drop=True)


def _check(votes: pd.DataFrame, boxes: pd.DataFrame) -> None:
    for name, frame, cols in (("votes", votes, ["item_id", "labeler_id"]),
                              ("boxes", boxes, ["item_id", "labeler_id", "label", *CORNERS])):  # fmt: skip
        missing = set(cols) - set(frame.columns)
        if missing:
            raise BoxConsensusError(f"{name} lack column(s) {sorted(missing)}")
    # A box counts as a vote's: one without its (item, labeler) vote would be a labeler nobody asked.
    voted = pd.MultiIndex.from_frame(votes[["item_id", "labeler_id"]].astype(str))
    drawn = pd.MultiIndex.from_frame(boxes[["item_id", "labeler_id"]].astype(str))
    orphans = ~drawn.isin(voted)
    if orphans.any():
        raise BoxConsensusError(f"{int(orphans.sum())} box(es) without their (item, labeler) vote, e.g. "
                                f"{drawn[orphans][0]}")  # fmt: skip


def _items(votes: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    n_labelers = votes.groupby("item_id")["labeler_id"].nunique()
    p = out["score"].to_numpy(dtype=np.float64)
    sure = pd.Series(np.log(np.maximum(np.maximum(p, 1 - p), 1e-12)), index=out.index)
    confidence = np.exp(sure.groupby(out["item_id"]).sum().reindex(n_labelers.index, fill_value=0.0).to_numpy())
    n_objects = out["is_object"].groupby(out["item_id"]).sum().reindex(n_labelers.index, fill_value=0)
    return pd.DataFrame({
        "item_id": n_labelers.index, "n_labelers": n_labelers.to_numpy(),
        "n_objects": n_objects.to_numpy().astype(int), "confidence": confidence,
    }).reset_index(drop=True)  # fmt: skip


def box_consensus(
    votes: pd.DataFrame, boxes: pd.DataFrame, method: str = "auto", *, gold: pd.DataFrame | None = None,
    gold_items: Sequence[str] = (),
) -> BoxConsensus:
    """Consensus boxes of valid box votes (:func:`.votes.box_votes`: ``votes`` with every labeler who answered,
    ``boxes`` in pixels) by ``method`` (``BOX_METHODS``). ``gold`` (``item_id, label, x0, y0, x1, y1``) and
    ``gold_items`` (items whose gold is known, an empty set of boxes included) inform ours only."""
    _check(votes, boxes)
    if method not in BOX_METHODS:
        raise BoxConsensusError(f"unknown box consensus method {method!r}; expected one of {list(BOX_METHODS)}")
    if method == "majority":
        return majority_boxes(votes, boxes)
    if method == "wbf":
        return wbf_boxes(votes, boxes)
    return em_boxes(votes, boxes, gold=gold, gold_items=gold_items)


def majority_boxes(votes: pd.DataFrame, boxes: pd.DataFrame, iou_threshold: float = MAJORITY_IOU) -> BoxConsensus:
    """CVAT/datumaro-style merging: clusters at ``iou_threshold``, the share of the item's labelers behind each
    as its score, kept when at least half; the unweighted mean box."""
    _check(votes, boxes)
    frame = boxes.assign(cluster=cluster_boxes(boxes, iou_threshold))
    grouped = frame.groupby("cluster", sort=True)
    out = grouped[CORNERS].mean()
    first = grouped[["item_id", "label"]].first()
    n_boxes = grouped["labeler_id"].nunique()
    n_labelers = votes.groupby("item_id")["labeler_id"].nunique()
    share = n_boxes.to_numpy() / first["item_id"].map(n_labelers).to_numpy()
    result = pd.DataFrame({
        "item_id": first["item_id"].to_numpy(), "label": first["label"].to_numpy(),
        **{c: out[c].to_numpy() for c in CORNERS}, "score": share, "n_boxes": n_boxes.to_numpy(),
        "is_object": share >= 0.5,
    }, columns=OUT_COLUMNS)  # fmt: skip
    return BoxConsensus(result, _items(votes, result), pd.DataFrame(), "majority")


def wbf_boxes(votes: pd.DataFrame, boxes: pd.DataFrame, iou_threshold: float = 0.55) -> BoxConsensus:
    """Weighted box fusion (``ensemble_boxes.weighted_boxes_fusion``, its default IoU 0.55) per item, each
    labeler who answered the item a model with one score per box (an explicit empty set: a model with none)."""
    from ensemble_boxes import weighted_boxes_fusion  # numba-compiled on first use: imported only when asked

    _check(votes, boxes)
    classes = sorted(boxes["label"].astype(str).unique())
    index = {c: n for n, c in enumerate(classes)}
    rows: list[tuple[object, ...]] = []
    by_item = {item: frame for item, frame in boxes.groupby("item_id", sort=True)}
    for item, labelers in votes.groupby("item_id", sort=True)["labeler_id"]:
        frame = by_item.get(item)
        if frame is None:
            continue
        # WBF wants [0, 1] coordinates: one scale for both axes keeps every IoU as it is.
        scale = max(float(frame[CORNERS].to_numpy().max()), 1.0)
        boxes_list, scores_list, labels_list = [], [], []
        for lab in sorted(labelers.astype(str)):
            mine = frame[frame["labeler_id"].astype(str) == lab]
            boxes_list.append((mine[CORNERS].to_numpy(dtype=np.float64) / scale).tolist())
            scores_list.append([1.0] * len(mine))
            labels_list.append([index[str(c)] for c in mine["label"]])
        fused, scores, labels = weighted_boxes_fusion(
            boxes_list, scores_list, labels_list, iou_thr=iou_threshold, skip_box_thr=0.0
        )
        for box, score, label in zip(fused, scores, labels, strict=True):
            rows.append((item, classes[int(label)], *(box * scale).tolist(), float(score),
                         round(float(score) * len(boxes_list)), float(score) >= 0.5))  # fmt: skip
    result = pd.DataFrame(rows, columns=OUT_COLUMNS)
    return BoxConsensus(result, _items(votes, result), pd.DataFrame(), "wbf")


def _gold_fix(
    n_clusters: int, fused: FloatArray, meta: pd.DataFrame, gold: pd.DataFrame | None,
    gold_items: Sequence[str],
) -> tuple[FloatArray, pd.DataFrame]:
    """Per cluster: 1 / 0 where gold decides it, NaN elsewhere; and the gold objects no cluster matched."""
    fixed = np.full(n_clusters, np.nan)
    known = set(gold_items) | (set(gold["item_id"]) if gold is not None else set())
    if not known:
        return fixed, pd.DataFrame(columns=["item_id", "label", *CORNERS])
    in_gold = meta["item_id"].isin(known).to_numpy()
    fixed[in_gold] = 0.0
    missed: list[pd.Series] = []
    gold = gold if gold is not None else pd.DataFrame(columns=["item_id", "label", *CORNERS])
    candidates = meta.assign(cluster=np.arange(n_clusters))[in_gold]
    by_key = {key: g["cluster"].to_numpy() for key, g in candidates.groupby(["item_id", "label"])}
    for key, g in gold.groupby(["item_id", "label"]):
        truth = g[CORNERS].to_numpy(dtype=np.float64)
        clusters = by_key.get(key, np.zeros(0, dtype=int))
        pairs = assign(truth, fused[clusters], GOLD_IOU)
        for _, j, _ in pairs:
            fixed[clusters[j]] = 1.0
        taken = {i for i, _, _ in pairs}
        missed.extend(g.iloc[i] for i in range(len(g)) if i not in taken)
    return fixed, pd.DataFrame(missed, columns=["item_id", "label", *CORNERS]).reset_index(drop=True)


def _cluster_sums(cluster: NDArray[np.int64], values: FloatArray, n: int) -> FloatArray:
    """Per cluster, the sum of its rows of ``values`` (n x 4); bincount per column (np.add.at is far slower)."""
    sums: FloatArray = np.zeros((n, values.shape[1]))
    for k in range(values.shape[1]):
        sums[:, k] = np.bincount(cluster, values[:, k], n)
    return sums


def em_boxes(
    votes: pd.DataFrame, boxes: pd.DataFrame, *, gold: pd.DataFrame | None = None, gold_items: Sequence[str] = (),
    iou_threshold: float = MATCH_IOU, iterations: int = ITERATIONS,
) -> BoxConsensus:
    """Ours: labeler-aware EM over matched clusters (module docstring)."""
    _check(votes, boxes)
    votes = votes.drop_duplicates(["item_id", "labeler_id"])
    labeler_ids = np.array(sorted(votes["labeler_id"].astype(str).unique()), dtype=object)
    lab_index = {lab: n for n, lab in enumerate(labeler_ids)}
    n_lab = len(labeler_ids)
    frame = boxes.reset_index(drop=True).assign(cluster=cluster_boxes(boxes, iou_threshold))
    frame["lab"] = frame["labeler_id"].astype(str).map(lab_index).to_numpy()
    grouped = frame.groupby("cluster", sort=True)
    meta = grouped[["item_id", "label"]].first().reset_index(drop=True)
    n_real = len(meta)
    coords = frame[CORNERS].to_numpy(dtype=np.float64)
    box_cluster = frame["cluster"].to_numpy(dtype=np.int64)
    box_lab = frame["lab"].to_numpy(dtype=np.int64)

    def fuse(weights: FloatArray, n: int) -> FloatArray:
        w = weights[box_lab]
        sums = _cluster_sums(box_cluster, coords * w[:, None], n)
        total = np.bincount(box_cluster, weights=w, minlength=n)
        fused_boxes: FloatArray = sums / np.maximum(total, 1e-12)[:, None]
        return fused_boxes

    fused = fuse(np.ones(n_lab), n_real)
    fixed, missed = _gold_fix(n_real, fused, meta, gold, gold_items)
    # Gold objects nobody drew: clusters with no boxes, every labeler of the item missed them.
    meta_all = pd.concat([meta, missed[["item_id", "label"]]], ignore_index=True)
    fixed = np.concatenate([fixed, np.ones(len(missed))])
    n_clusters = len(meta_all)

    # (cluster, labeler) pairs: every labeler who answered the cluster's item; drew = has a box in it.
    pairs = meta_all[["item_id"]].assign(cluster=np.arange(n_clusters)).merge(
        votes[["item_id", "labeler_id"]], on="item_id", how="inner"
    )
    pair_cluster = pairs["cluster"].to_numpy()
    pair_lab = pairs["labeler_id"].astype(str).map(lab_index).to_numpy(dtype=np.int64)
    drew_keys = set(zip(box_cluster.tolist(), box_lab.tolist(), strict=True))
    drew = np.fromiter(((c, j) in drew_keys for c, j in zip(pair_cluster.tolist(), pair_lab.tolist(), strict=True)),
                       dtype=bool, count=len(pairs)).astype(np.float64)  # fmt: skip

    n_present = np.bincount(pair_cluster, minlength=n_clusters)
    n_drawers = np.bincount(pair_cluster, weights=drew, minlength=n_clusters)
    vote_lab = votes["labeler_id"].astype(str).map(lab_index).to_numpy(dtype=np.int64)
    vote_item = pd.factorize(votes["item_id"])[0]
    n_items = int(vote_item.max()) + 1 if len(votes) else 0
    items_answered = np.bincount(vote_lab, minlength=n_lab).astype(np.float64)
    # Start from majority: a cluster at least half of the item's labelers drew is an object.
    q = np.where(np.isnan(fixed), (n_drawers >= n_present / 2).astype(np.float64), fixed)
    loc_var: FloatArray = np.full(n_lab, LOC_PRIOR_SD**2)
    recall: FloatArray = np.full(n_lab, RECALL_PRIOR[0] / sum(RECALL_PRIOR))
    false_boxes: FloatArray = np.full(n_lab, FALSE_PRIOR[0] / FALSE_PRIOR[1])
    objects_per_item = OBJECTS_PRIOR[0] / OBJECTS_PRIOR[1]
    done = 0
    while done < iterations:
        done += 1
        # M-step: recall (Beta prior); false boxes per item answered (a false cluster drawn by several is the
        # false box of one of them, shared in proportion to their rates); objects per item (those seen, over
        # the chance that anybody saw one).
        # The objects nobody drew count too: each item's expected number, objects per item x the chance that
        # all its labelers missed one, is a miss for every labeler of the item (without them recall is
        # overestimated, and the misses of a weaker labeler read as false boxes of the one who drew alone).
        qp, dp = q[pair_cluster], drew
        unseen = objects_per_item * np.exp(np.bincount(vote_item, np.log1p(-recall[vote_lab]), n_items))
        recall = (np.bincount(pair_lab, qp * dp, n_lab) + RECALL_PRIOR[0]) / (
            np.bincount(pair_lab, qp, n_lab) + np.bincount(vote_lab, unseen[vote_item], n_lab) + sum(RECALL_PRIOR))
        recall = np.clip(recall, 1e-6, 1 - 1e-6)
        creators = np.bincount(pair_cluster, dp * false_boxes[pair_lab], n_clusters)
        share = dp * false_boxes[pair_lab] / np.maximum(creators[pair_cluster], 1e-300)
        false_boxes = (np.bincount(pair_lab, (1 - qp) * share, n_lab) + FALSE_PRIOR[0]) / (
            items_answered + FALSE_PRIOR[1])
        seen = -np.expm1(np.bincount(vote_item, np.log1p(-recall[vote_lab]), n_items))
        objects_per_item = (q.sum() + OBJECTS_PRIOR[0]) / (seen.sum() + OBJECTS_PRIOR[1])
        # A labeler's corners are judged against the others' fused box (leave-one-out): against a box they
        # helped make, a labeler with a large weight would look ever more precise and gain ever more weight.
        # The squared error against the others' box is the labeler's variance plus that box's; the latter,
        # 1 / (the others' total weight), is taken off (a moment estimate, floored at MIN_LOC_SD).
        w = (1 / loc_var)[box_lab]
        sums = _cluster_sums(box_cluster, coords * w[:, None], n_real)
        total = np.bincount(box_cluster, weights=w, minlength=n_real)
        others = total[box_cluster] - w
        has_others = others > 1e-9 * total[box_cluster]
        loo = (sums[box_cluster] - coords * w[:, None]) / np.where(has_others, others, 1.0)[:, None]
        wh = np.maximum(loo[:, 2:] - loo[:, :2], 1.0)  # corners relative to the object's width/height
        residual = (((coords - loo) / np.column_stack([wh, wh])) ** 2).mean(axis=1)
        residual -= 1 / np.where(has_others, others, np.inf)
        qb = q[box_cluster] * has_others
        loc_var = (np.bincount(box_lab, qb * residual, n_lab) + LOC_PRIOR_WEIGHT * LOC_PRIOR_SD**2) / (
            np.bincount(box_lab, qb, n_lab) + LOC_PRIOR_WEIGHT)
        loc_var = np.maximum(loc_var, MIN_LOC_SD**2)
        # E-step, as rates per item (a Poisson process of boxes): an object shows as this cluster when
        # exactly its drawers drew it; a false box is one drawer's (at their false-box rate), which the other
        # drawers matched only by coincidence.
        log_object = np.log(objects_per_item) + np.bincount(
            pair_cluster, np.where(drew > 0, np.log(recall[pair_lab]), np.log1p(-recall[pair_lab])), n_clusters)
        creators = np.bincount(pair_cluster, drew * false_boxes[pair_lab], n_clusters)
        log_false = np.log(np.maximum(creators, 1e-300)) + np.maximum(n_drawers - 1, 0) * np.log(COINCIDENCE)
        logit = log_object - log_false
        new_q = 1 / (1 + np.exp(-np.clip(logit, -50, 50)))
        new_q = np.where(np.isnan(fixed), new_q, fixed)
        change = float(np.max(np.abs(new_q - q))) if n_clusters else 0.0
        q = new_q
        if change < TOLERANCE:
            break

    fused = fuse(1 / loc_var, n_real)
    n_boxes = np.bincount(box_cluster, minlength=n_real)
    result = pd.DataFrame({
        "item_id": meta["item_id"].to_numpy(), "label": meta["label"].to_numpy(),
        **{c: fused[:, n] for n, c in enumerate(CORNERS)}, "score": q[:n_real], "n_boxes": n_boxes,
        "is_object": q[:n_real] >= 0.5,
    }, columns=OUT_COLUMNS)  # fmt: skip
    counts = votes.groupby(votes["labeler_id"].astype(str)).size().reindex(labeler_ids, fill_value=0)
    n_box = np.bincount(box_lab, minlength=n_lab)
    labelers = pd.DataFrame({
        "labeler_id": labeler_ids, "n_items": counts.to_numpy(), "n_boxes": n_box, "recall": recall,
        "false_boxes_per_item": false_boxes, "localization_error": np.sqrt(loc_var), "weight": 1 / loc_var,
    })  # fmt: skip
    return BoxConsensus(result, _items(votes, result), labelers, "box_em", done)
