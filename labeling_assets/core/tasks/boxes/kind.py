"""Bounding boxes as a kind of task (issue 30): the ``TaskKind`` parts over the box core of this package.

Registered in ``core/tasks/registry.py``; its model is a detector trained by its own trainer (``trainer.py``, a
``KindTrainer``), not the image classifier's training head. ``tests/core/test_task_kinds.py`` runs the contract over
it, ``tests/core/test_boxes_kind.py`` checks what is particular to boxes.

A stored answer is ``{"no_object": bool, "boxes": [...]}`` in pixels (:func:`.labelstudio.read_boxes`); a vote's
boxes come from :func:`.votes.answer_boxes`. A consensus label is stored in the same form (the objects consensus
decided, :func:`.gold.gold_answer`, each box with its ``confidence``: the posterior that it is an object; an answer
stored before consensus kept it reads as 1.0, :func:`.votes.box_confidences`), so gold, consensus and votes are read
by one rule. What this kind calls
``probs`` (pre-labels, the queue's score, the review line) is a detector's output for one image:
``{"boxes": [{label, x0, y0, x1, y1, score}, ...], "image_width": W, "image_height": H}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.agreement import FleissKappa
from labeling_assets.core.consensus.labeler_stats import LabelerStats, weekly_trend
from labeling_assets.core.consensus.leaderboard import QualityInputs, per_class_quality_inputs
from labeling_assets.core.consensus.votes import SKIP_UNKNOWN_CLASS, Votes, _newest_per_labeler
from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.labelstudio.answers import Answer
from labeling_assets.core.store.out_of_sample import out_of_sample_prelabels
from labeling_assets.core.store.queries import gold_labels
from labeling_assets.core.tasks.boxes.agreement import box_agreement
from labeling_assets.core.tasks.boxes.answers import (
    box_gold_counts,
    box_labeler_window,
    by_item,
    image_sizes,
    presence_manifest,
    valid_box_answers,
    vote_frames,
)
from labeling_assets.core.tasks.boxes.card import render_box_card
from labeling_assets.core.tasks.boxes.consensus import (
    BOX_METHODS,
    BoxConsensus,
    BoxConsensusError,
    box_consensus,
)
from labeling_assets.core.tasks.boxes.evaluation import BOX_MAP, box_test_report, detector_map, encode_answers
from labeling_assets.core.tasks.boxes.export import BOX_EXPORT_FORMATS, export_version
from labeling_assets.core.tasks.boxes.gold import (
    assign_box_splits,
    gold_answer,
    gold_frame,
    parse_gold_boxes,
)
from labeling_assets.core.tasks.boxes.label_issues import SOURCE, box_label_issues
from labeling_assets.core.tasks.boxes.labelstudio import box_label_config, config_box_classes, read_boxes
from labeling_assets.core.tasks.boxes.matching import CORNERS
from labeling_assets.core.tasks.boxes.prelabels import (
    PRELABEL_MIN_SCORE,
    answer_prediction_result,
    box_prediction,
    box_uncertainty,
)
from labeling_assets.core.tasks.boxes.qa import BOX_VIEW
from labeling_assets.core.tasks.boxes.reports import estimates_table, gold_table
from labeling_assets.core.tasks.boxes.trainer import TRAINER
from labeling_assets.core.tasks.boxes.votes import BOX_SKIP_REASONS, answer_boxes, box_votes
from labeling_assets.core.tasks.kind import (
    GOLD_MATCH_THRESHOLD,
    ConsensusFailure,
    ConsensusOutcome,
    ItemMedia,
    KindTrainer,
    Markdown,
    TestSplitReport,
    TrainingHead,
    usable_rows,
)
from labeling_assets.core.tasks.region_gold import region_gold_gate
from labeling_assets.core.training import promotion


@dataclass(frozen=True)
class BoxConsensusResult:
    """What :meth:`BoxesKind.consensus` hands back: ``labels`` as the class kinds have it (``item_id, label,
    confidence, n_annotators, agreement``; ``label`` the decided objects as a stored answer, ``agreement`` the item's
    mean pairwise F1 of boxes) and the box run itself."""

    labels: pd.DataFrame
    run: BoxConsensus
    method: str
    notes: list[str] = field(default_factory=list)
    scoreboard: None = None  # no bake-off: box consensus has none (what the consensus run records as such)


class BoxesKind:
    """Axis-aligned boxes with one class each per image, "No object" an answer (when the project allows it)."""

    name = "boxes"
    consensus_methods: tuple[str, ...] = BOX_METHODS
    export_formats: tuple[str, ...] = BOX_EXPORT_FORMATS
    export_note = (
        "an ImageFolder tree or a table of one class per image cannot hold boxes; export coco (one JSON), yolo "
        "(labels/*.txt and data.yaml) or voc (one XML per image) instead."
    )
    skip_reasons: tuple[str, ...] = BOX_SKIP_REASONS
    decision_thresholds = False  # a detector's boxes are cut at one score (PRELABEL_MIN_SCORE), not per class on val
    gold_gate_rate = "gold gate (matched boxes / (gold boxes + false boxes))"
    gold_gate_threshold = GOLD_MATCH_THRESHOLD  # good labelers 0.81-0.87 on the demo crowd, the spammer 0.02
    gold_accuracy_name = "box gold score (matched / (gold + false boxes), IoU 0.5)"
    label_issue_model = "out-of-sample detector boxes (stored pre-labels of champions that did not train on the item)"
    qa_view = BOX_VIEW  # the QA report reads classes present, pairwise box F1, whole answers against gold
    test_metric = BOX_MAP
    trainer: KindTrainer | None = TRAINER  # a detector (trainer.py), not the image classifier's training head

    # Label Studio.
    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        return box_label_config(classes, allow_empty)

    def owns_config(self, config: str) -> bool:
        """A config with our ``<RectangleLabels name="label">``."""
        return config_box_classes(config) is not None

    def read_answer(self, result: Any) -> Answer:
        """The stored answer in pixels (``label`` holds the answer dict), or why the result holds none."""
        reading = read_boxes(result)
        if reading.answer is None:
            return Answer(None, reading.problem, reading.detail)
        return Answer(cast(Any, reading.answer))

    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any:
        return self.read_answer(result).label


    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The answer's boxes pre-drawn in percent of the image (:func:`.prelabels.answer_prediction_result`)."""
        return answer_prediction_result(answer, media.width, media.height)

    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Votes:
        """Each labeler's newest answer per item, kept whole when every box of it is a valid box of the project
        (:func:`.votes.box_votes`), else skipped and counted by reason."""
        found = box_votes(annotations, classes, allow_empty)
        frame = _newest_per_labeler(annotations)
        if not frame.empty:
            valid = pd.MultiIndex.from_frame(found.votes[["item_id", "labeler_id"]].astype(str))
            keys = pd.MultiIndex.from_frame(frame[["item_id", "labeler_id"]].astype(str))
            frame = frame[keys.isin(valid)]
        frame = frame.sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
        return Votes(frame, dict(found.skipped), dict(found.examples))

    # Gold.
    def parse_gold(
        self, text: str, classes: Sequence[str] | None, allow_empty: bool = True
    ) -> tuple[Any, str | None]:
        """A gold file's entry (:func:`.gold.parse_gold_boxes`); a refusal for classes outside the project names them."""
        answer, why = parse_gold_boxes(text, classes, allow_empty)
        if why is not None and classes is not None and answer_boxes(answer, classes)[1] == SKIP_UNKNOWN_CLASS:
            alien = sorted(set(self.classes_of(answer)) - {str(c) for c in classes})
            why = f"{why}: {', '.join(alien)} not among the project's classes"
        return answer, why

    def valid_answers(self, stored: pd.Series, classes: Sequence[str]) -> pd.Series:
        """The stored values that are box answers of the project (the empty set included); others are not truth."""
        return valid_box_answers(stored, classes)

    def is_answer(self, value: Any, classes: Sequence[str]) -> bool:
        return answer_boxes(value, classes)[1] is None

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
        """(matched boxes, gold boxes + false boxes) over the labelers' answers to gold items (IoU 0.5, per class)."""
        return box_gold_counts(labels, truth, classes)

    def gold_gate(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float
    ) -> tuple[Any, dict[str, Any]]:
        """(the gate on the box gold score, per class: the same score on that class's boxes alone)."""
        return region_gold_gate(box_gold_counts, votes, truth, classes, threshold, "box gold score")

    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Each labeler's precision and recall against the gold boxes (IoU 0.5, 95% Wilson) and gold score."""
        table, score = gold_table(votes, truth, classes, names)
        return {
            "gold_boxes": Markdown(table),
            "box_gold_score": score,
            "gold_gate": "boxes: the gold gate judges matched boxes / (gold boxes + false boxes) at IoU 0.5",
        }

    # Consensus, agreement, labeler statistics.
    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome:
        """Box consensus (:func:`.consensus.box_consensus`) of the eligible votes; the gold items among them
        decide their clusters (ours only). No class probabilities are stored."""
        if method not in BOX_METHODS:
            raise ConsensusFailure(f"consensus method {method!r} is not a box method; a boxes project uses one of "
                                   f"{', '.join(BOX_METHODS)}")  # fmt: skip
        found = box_votes(eligible, classes, allow_empty)
        gold = self.valid_answers(gold, classes)
        gold = gold[gold.index.isin(set(eligible["item_id"].astype(str)))]
        gold_boxes, gold_items = gold_frame(by_item(gold), classes)
        try:
            run = box_consensus(found.votes, found.boxes, method, gold=gold_boxes, gold_items=gold_items)
        except BoxConsensusError as exc:
            raise ConsensusFailure(str(exc)) from exc
        sizes = image_sizes(eligible)
        objects = {str(k): g for k, g in run.objects.groupby(run.objects["item_id"].astype(str))}
        rows = []
        for item, n_labelers, confidence in zip(run.items["item_id"], run.items["n_labelers"],
                                                run.items["confidence"], strict=True):  # fmt: skip
            mine = objects.get(str(item), run.objects.iloc[:0])
            width, height = sizes.get(str(item), (None, None))
            # Each box keeps its score (box_em: the posterior that it is an object), the trainer's per-box weight.
            found_boxes = cast("list[dict[str, Any]]", mine[["label", *CORNERS, "score"]]
                               .rename(columns={"score": "confidence"}).to_dict("records"))  # fmt: skip
            answer = gold_answer(found_boxes, width, height)
            rows.append((item, answer, float(confidence), int(n_labelers)))
        labels = pd.DataFrame(rows, columns=["item_id", "label", "confidence", "n_annotators"])
        # An item's agreement: its labelers' mean pairwise F1 (IoU 0.5; 1.0 with one labeler, as a lone vote agrees).
        pairwise = box_agreement(found.votes, found.boxes, classes).per_item
        labels["agreement"] = [float(pairwise.get(item, 1.0)) for item in labels["item_id"]]
        labels = labels.sort_values("item_id", kind="stable").reset_index(drop=True)
        result = BoxConsensusResult(labels, run, run.method, [f"{run.method}: {run.iterations} EM iterations"])
        no_bakeoff = "no bake-off: box consensus has none (auto runs box_em; gold decides its items' clusters)"
        return ConsensusOutcome(result, len(gold_items), None, no_bakeoff)

    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> FleissKappa:
        """Not a kappa: the mean pairwise F1 of labelers' boxes (IoU 0.5), overall and per class, in its fields
        (chance agreement has no meaning for boxes at free positions)."""
        votes, boxes = vote_frames(eligible, classes)
        found = box_agreement(votes, boxes, classes)
        per_class = {c: f1 for c, (f1, _) in found.per_class.items()}
        n_items = int((votes.groupby("item_id")["labeler_id"].nunique() >= 2).sum()) if len(votes) else 0
        nan = float("nan")
        return FleissKappa(found.f1, per_class, nan, nan, n_items)

    def classes_of(self, answer: Any) -> list[str]:
        """The classes an answer has a box of, sorted (whatever their validity)."""
        if not isinstance(answer, Mapping) or not isinstance(answer.get("boxes"), list):
            return []
        names = {str(label) for box in answer["boxes"] if isinstance(box, Mapping)
                 for label in (box.get("labels") or [])}  # fmt: skip
        return sorted(names)

    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Agreement (pairwise F1), objects per class, items without objects, each labeler's estimates."""
        run: BoxConsensus = result.run
        agreement = self.agreement(eligible, classes)
        objects = run.objects["label"].astype(str).value_counts().reindex([str(c) for c in classes], fill_value=0)
        return {
            "task_type": self.name,
            "method": run.method,
            "em_iterations": run.iterations,
            "pairwise_f1": _finite(agreement.kappa),
            "pairwise_f1_per_class": {str(k): _finite(v) for k, v in agreement.per_class.items()},
            "objects_per_class": {str(k): int(v) for k, v in objects.items()},
            # the consensus run's bar chart counts items: the items with at least one object of each class
            "class_distribution": {str(c): int(run.objects.loc[run.objects["label"].astype(str) == str(c), "item_id"]
                                               .nunique()) for c in classes},
            "items_without_objects": int((run.items["n_objects"] == 0).sum()),
            "mean_item_confidence": _finite(float(run.items["confidence"].mean())) if len(run.items) else None,
            "labeler_quality": Markdown(estimates_table(run, names)) if len(run.labelers) else "no estimates (a baseline ran)",
        }

    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> QualityInputs:
        """Box answers throughout; population shares per class are the share of consensus answers with a box of it."""
        return per_class_quality_inputs(self, votes, gold, adjudicated, consensus, classes)

    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> LabelerStats:
        return box_labeler_window(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus)

    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[LabelerStats]:
        return weekly_trend(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus,
                            last_weeks=last_weeks, stats=box_labeler_window)  # fmt: skip

    # Datasets.
    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """The consensus rows that are box answers of the project; the others counted by the vote rule's reason."""
        return usable_rows(frame, lambda value: answer_boxes(value, classes or [], allow_empty)[1],
                           "a box answer of the project", excluded)  # fmt: skip

    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str:
        """Sizes, boxes per class and split, box sizes, limitations (:func:`.card.render_box_card`; no plot yet)."""
        return render_box_card(inputs, with_plot=with_plot)

    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]:
        """(labelers, annotations, no kappa: box agreement is a pairwise F1) over a version's box answers."""
        if annotations.empty:
            return 0, 0, None
        answers = annotations.loc[annotations["label"].map(lambda v: isinstance(v, Mapping)).astype(bool)]
        return int(answers["labeler_id"].nunique()), len(answers), None

    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]:
        """(the manifest's training weights: none, the imbalance ratio of the classes' presence over items)."""
        return "class_weights", multi_core.label_imbalance_ratio(presence_manifest(manifest, classes), classes)

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """COCO, YOLO and VOC per split (:func:`.export.export_version`); ``rows`` must hold the answers as dicts."""
        return export_version(rows, Path(out_dir), formats, classes)

    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
        """Per (split, class present): its share of the split's items vs overall (and the images without objects)."""
        return multi_core.prevalence_deviations(presence_manifest(manifest, classes), classes, tolerance)

    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Classes on at least 3 items that are on no item of a split: label, split, positives."""
        missing = multi_core.labels_missing_from_splits(presence_manifest(manifest, classes), classes, split_core.SPLITS)
        return missing[missing["positives"] >= multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]

    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Nothing: no per-class threshold is chosen on val (one score cut for every box)."""
        return pd.DataFrame(columns=["label", "split", "positives"])

    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series,
        ratios: split_core.SplitRatios, seed: int,
    ) -> split_core.SplitAssignment:
        """Iterative stratification on class presence (:func:`.gold.assign_box_splits`)."""
        return assign_box_splits(rows, classes, existing=existing, ratios=ratios, seed=seed)

    def manifest(
        self, manifest: pd.DataFrame, classes: Sequence[str], *, previous_version: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, float], dict[str, Any]]:
        """(version: the hash over each item's canonical answer JSON and split, no class weights, the manifest
        JSON with the answers and the classes present)."""
        canonical = manifest.assign(label=manifest["label"].map(lambda a: json.dumps(a, sort_keys=True)))
        rows = manifest.sort_values("item_id", kind="stable")
        document = {
            "format": split_core.MANIFEST_FORMAT, "previous_version": previous_version, **extra, "task_type": self.name,
            "classes": [str(c) for c in classes],
            "item_id": rows["item_id"].astype(str).tolist(),
            "label": rows["label"].tolist(),
            "classes_present": presence_manifest(rows, classes)["label"].tolist(),
            "split": rows["split"].astype(str).tolist(),
        }  # fmt: skip
        return split_core.manifest_version(canonical), {}, document

    # Pre-labels and active learning: ``probs`` is a detector's output for one image (module docstring).
    def prediction(
        self, probs: Mapping[str, Any], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """The detector's boxes scored at least :data:`.prelabels.PRELABEL_MIN_SCORE` as pre-drawn boxes (none:
        "No object", or the best box where the project has no "No object"); the score is the item's confidence."""
        boxes = list(probs.get("boxes") or [])
        min_score = PRELABEL_MIN_SCORE
        if not allow_empty and boxes and not any(float(b["score"]) >= min_score for b in boxes):
            min_score = max(float(b["score"]) for b in boxes)
        out = box_prediction(boxes, float(probs["image_width"]), float(probs["image_height"]), model_version, min_score)
        out["model_version"] = model_version or "unknown"
        return out

    def informativeness(self, probs: Mapping[str, Any] | None, strategy: str) -> float:
        """Every strategy but ``random`` is the chance that one of the detector's box decisions is wrong."""
        if not probs or strategy == "random":
            return 1.0
        scores = [float(b["score"]) for b in probs.get("boxes") or []]
        if not all(np.isfinite(scores)):
            return 1.0
        return box_uncertainty(scores)

    def review_model_line(self, probs: Mapping[str, Any] | None, model_version: str | None) -> str | None:
        """The detector's boxes at the pre-label cut, by class, with their scores."""
        if not probs:
            return "model: no prediction"
        shown = [b for b in probs.get("boxes") or [] if float(b["score"]) >= PRELABEL_MIN_SCORE]
        if not shown:
            return f"model {model_version or 'unknown'}: no object"
        parts = ", ".join(f"{b['label']} {float(b['score']):.2f}" for b in sorted(shown, key=lambda b: -float(b["score"])))
        return f"model {model_version or 'unknown'}: {len(shown)} box(es): {parts}"

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        """No baseline: the pixel baselines of the class kinds predict classes, not boxes."""
        return None, "no baseline for boxes: a pixel baseline predicts classes, not where objects are"

    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]:
        """Over a detector's outputs (one per image): boxes per image at the pre-label cut, per class, and the mean
        item uncertainty."""
        outputs = list(probs)
        if not outputs:
            return {}
        shown = [[b for b in o.get("boxes") or [] if float(b["score"]) >= PRELABEL_MIN_SCORE] for o in outputs]
        per_class = {str(c): sum(str(b["label"]) == str(c) for s in shown for b in s) for c in classes}
        return {
            "mean_boxes_per_image": round(float(np.mean([len(s) for s in shown])), 4),
            "images_without_boxes": sum(not s for s in shown),
            "predicted_boxes": per_class,
            "mean_uncertainty": round(float(np.mean([self.informativeness(o, "uncertainty") for o in outputs])), 4),
        }

    # Label issues: cleanlab's object-detection search against a detector that never trained on the item.
    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        """Per item its newest stored pre-label of a detector that did not train on it (None where none is)."""
        found = out_of_sample_prelabels(store, item_ids)
        return [found[i][0] if i in found else None for i in item_ids], f"{SOURCE} ({len(found)} of {len(item_ids)} items have one)"

    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]:
        """(cleanlab.object_detection's issues of the consensus boxes against ``features``, the detector outputs
        of :meth:`label_issue_inputs`; the share of items where the detector's boxes equal consensus)."""
        return box_label_issues(item_ids, labels, features, classes)

    # Evaluation on the test split: ``answers`` are stored answers (:meth:`encode`), ``probs`` the detector's
    # outputs per item (None where the image could not be decoded).
    def test_scoring(
        self, store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int
    ) -> promotion.ScoringSet:
        """The gold answers of the gold test items when there are at least ``min_gold`` (gold is known truth),
        else every item's consensus answer (``promotion``'s rule)."""
        stored = self.valid_answers(gold_labels(store, item_ids), classes)
        return promotion.answer_scoring_set(item_ids, stored, encode_answers, np.asarray(answers), min_gold)

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        """COCO mAP@[.5:.95] (pycocotools) of the detector's outputs against the answers' boxes, over the classes
        of either (a class with no truth box is left out of COCO's mean anyway)."""
        return detector_map(list(probs), list(truth)).map

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        """mAP@[.5:.95], AP50, AP75 and per-class AP (COCO's, by pycocotools) on the decodable test items, a bar
        plot of the per-class AP and the table (no calibration error: ``ece_bins`` is not read)."""
        return box_test_report(answers, probs, failed, classes, model=model)

    # Training: the box kind's own trainer (``trainer.py``), no training head.
    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> Any:
        """The answers as they are (an object array: the truth :meth:`test_score` reads)."""
        return encode_answers(answers)

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> Any:
        """None: a detector trains on the consensus boxes, weighted by their confidence (no soft targets)."""
        return None

    def training_head(self) -> TrainingHead:
        raise NotImplementedError("boxes train a detector through the kind's trainer (KIND.trainer), not the "
                                  "image classifier's training head")  # fmt: skip


def _finite(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


__all__ = ["KIND", "BoxConsensusResult", "BoxesKind"]

KIND = BoxesKind()
