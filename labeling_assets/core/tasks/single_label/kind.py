"""Single-label: one class name per answer; softmax training, Dawid-Skene family consensus, ImageFolder export."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.adjudication import truth_for_stats
from labeling_assets.core.consensus.agreement import (
    FleissKappa,
    fleiss_kappa_from_annotations,
    krippendorff_alpha_from_annotations,
)
from labeling_assets.core.consensus.encoding import probabilities_by_item
from labeling_assets.core.consensus.gates import gold_counts, gold_gate, per_class_gold
from labeling_assets.core.consensus.label_issues import cross_val_pred_probs, find_issues, pixel_inputs
from labeling_assets.core.consensus.labeler_stats import LabelerStats, compute_labeler_stats, weekly_trend
from labeling_assets.core.consensus.leaderboard import QualityInputs
from labeling_assets.core.consensus.methods import METHODS, aggregate_full
from labeling_assets.core.consensus.votes import SKIP_MULTI_LABEL, Votes, latest_votes, single_class
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.card import annotation_summary, render_class_card
from labeling_assets.core.dataset.export import export_dataset
from labeling_assets.core.dataset.split_checks import (
    classes_missing_from_splits,
    imbalance_ratio,
    proportion_deviations,
)
from labeling_assets.core.display import md_text
from labeling_assets.core.images import markdown_image
from labeling_assets.core.labelstudio.answers import Answer, read_choices
from labeling_assets.core.labelstudio.config import (
    about_text,
    choice_result,
    choices_label_config,
    config_layout,
)
from labeling_assets.core.reporting.answer_views import CLASS_VIEW
from labeling_assets.core.store.dataset_versions import usable_classes
from labeling_assets.core.store.datasets import (
    StoredTargets,
    consensus_examples,
    gold_label_indices,
    label_indices,
    stored_soft_targets,
)
from labeling_assets.core.tasks.kind import (
    GOLD_ACCURACY_THRESHOLD,
    LABELER_TABLE_ROWS,
    MACRO_F1,
    ConsensusOutcome,
    ItemMedia,
    Markdown,
    TestSplitReport,
    TrainingHead,
)
from labeling_assets.core.training import baseline as core_baseline
from labeling_assets.core.training import promotion
from labeling_assets.core.training.active_learning import entropy
from labeling_assets.core.training.metrics import confusion_matrix_png, evaluate_probs


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _labeler_table(result: Any) -> str:
    table = result.labeler_quality.sort_values("quality", ascending=True, na_position="last")
    lines = ["| labeler | labels | estimated accuracy | agreement with consensus |", "|---|---:|---:|---:|"]
    for row in table.head(LABELER_TABLE_ROWS).to_dict("records"):
        lines.append(
            f"| {md_text(row['labeler_id'])} | {row['n_labels']} | {row['quality']:.3f} | {row['agreement_with_consensus']:.3f} |"
        )
    return "\n".join(lines)


class SingleLabel:
    """One class per item. The first kind; every part wraps the code the project had before kinds existed."""

    name = "single_label"
    consensus_methods: tuple[str, ...] = METHODS
    export_formats: tuple[str, ...] = ("jsonl", "csv", "parquet", "imagefolder")
    export_note = ""  # why a format outside export_formats is refused
    skip_reasons: tuple[str, ...] = ("class_not_in_project", SKIP_MULTI_LABEL)
    decision_thresholds = False
    label_issue_model = "logistic regression"  # what scores consensus labels out of sample for label issues
    gold_gate_rate = ""  # what the gold gate judges when it is not the gold accuracy ("": it is)
    gold_gate_threshold = GOLD_ACCURACY_THRESHOLD

    qa_view = CLASS_VIEW  # how the QA report reads and names its answers
    gold_accuracy_name = "gold accuracy"
    test_metric = MACRO_F1
    trainer: Any = None  # the image classifier, through the training head (training.py)

    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        """One choice among the classes (there is no empty answer)."""
        return choices_label_config(classes)

    def owns_config(self, config: str) -> bool:
        """A config whose class choices take one choice."""
        layout = config_layout(config)
        return layout is not None and not layout.multiple and not about_text(config)  # a text kind's choices are its own

    def read_answer(self, result: Any) -> Answer:
        """A name, or a list (in the order chosen) when several were chosen: the store never drops what a person
        answered, and consensus skips it as a vote."""
        answer = read_choices(result)
        chosen = answer.label
        if not isinstance(chosen, list):
            return answer
        return Answer(chosen[0] if len(chosen) == 1 else chosen)

    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any:
        return self.read_answer(result).label

    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The class chosen (a one-element list counts as its class)."""
        chosen = single_class(answer)
        return None if chosen is None else choice_result(str(chosen))

    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Votes:
        return latest_votes(annotations, classes)

    def parse_gold(
        self, text: str, classes: Sequence[str] | None, allow_empty: bool = True
    ) -> tuple[Any, str | None]:
        """A gold file's entry is a class name: (it, None), or (it, why it is refused) when it is not one of
        ``classes`` (None: not checked)."""
        if classes is not None and text not in classes:
            return text, f"{text!r} is not in the class list"
        return text, None

    def valid_answers(self, stored: pd.Series, classes: Sequence[str]) -> pd.Series:
        """A stored gold or expert answer is a class name (a one-element list counts as its class)."""
        return stored.map(single_class).dropna()

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
        """(correct, answered): an answer scores when it is the gold class."""
        return gold_counts(labels, truth)

    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome:
        """The consensus with gold: auto's bake-off is scored on it, the Dawid-Skene methods clamp it."""
        names = list(classes)
        gold = self.valid_answers(gold, names)
        gold = gold[gold.index.isin(set(eligible["item_id"])) & gold.isin(names)]
        result = aggregate_full(eligible, method, pred_probs, classes=names, gold=gold)
        return ConsensusOutcome(result, len(gold), probabilities_by_item(result))

    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> FleissKappa:
        """Fleiss' kappa, overall and per class."""
        return fleiss_kappa_from_annotations(eligible, classes=list(classes))

    def classes_of(self, answer: Any) -> list[str]:
        """The class a stored answer names (none when it is not one class)."""
        name = single_class(answer)
        return [] if name is None else [str(name)]

    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Agreement (Fleiss' kappa, Krippendorff's alpha), the class distribution, each labeler's estimated accuracy."""
        fleiss = self.agreement(eligible, classes)
        distribution = result.labels["label"].value_counts().reindex(list(classes), fill_value=0)
        return {
            "fleiss_kappa": _finite(fleiss.kappa),
            "fleiss_kappa_per_class": {str(k): _finite(v) for k, v in fleiss.per_class.items()},
            "krippendorff_alpha": _finite(krippendorff_alpha_from_annotations(eligible)),
            "class_distribution": {str(k): int(v) for k, v in distribution.items()},
            "labeler_quality": Markdown(_labeler_table(result)),
        }

    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> QualityInputs:
        """Gold and adjudicated answers as truth (gold wins), consensus in the class list, class shares of it."""
        truth = truth_for_stats(self.valid_answers(gold, classes), self.valid_answers(adjudicated, classes))
        # A consensus row from before a class-list change would make kappa fail on an unknown class.
        current = consensus[consensus.isin(list(classes))]
        current = pd.Series(current.to_numpy(), index=current.index, dtype=object)
        shares = current.value_counts(normalize=True)
        return QualityInputs(votes, truth, current, {str(k): float(v) for k, v in shares.items()})

    def gold_gate(self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float) -> tuple[Any, dict[str, Any]]:
        """(the gate on gold accuracy, per class: accuracy on the items of that true class, gated alike)."""
        per_class = {c: g.metadata() for c, g in per_class_gold(votes, truth, threshold).items()}
        return gold_gate(*gold_counts(votes, truth), threshold), per_class

    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Nothing beyond each labeler's gold accuracy (already in their statistics)."""
        return {}

    def is_answer(self, value: Any, classes: Sequence[str]) -> bool:
        """Whether a stored consensus label is one class of the list (label issues check only those)."""
        return bool(pd.Series([value], dtype=object).isin(list(classes)).iloc[0])

    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        """Downsampled grayscale pixels of the items' images, for the cross-validated model."""
        return pixel_inputs(uris, feature_size=feature_size, n_folds=n_folds, model=self.label_issue_model)

    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]:
        """(cleanlab's issues on out-of-sample probabilities, the model's agreement with consensus)."""
        codes = pd.Series(labels).map({c: n for n, c in enumerate(classes)}).to_numpy(dtype=np.int64)
        probs = cross_val_pred_probs(features, codes, len(classes), n_folds=n_folds)
        agreement = float((probs.argmax(axis=1) == codes).mean())
        return find_issues(item_ids, labels, probs, classes), agreement

    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> LabelerStats:
        return compute_labeler_stats(
            votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus,
            population_shares=population_shares,
        )

    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[LabelerStats]:
        return weekly_trend(
            votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus, last_weeks=last_weeks
        )

    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """The consensus rows a dataset version may hold, and counts of the others by reason."""
        return usable_classes(frame, classes, allow_empty, excluded)

    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str:
        """The dataset card (Markdown) of a version of this kind."""
        return render_class_card(inputs, with_plot=with_plot)

    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]:
        """(labelers, annotations, Fleiss' kappa) over the annotations of a version's items, for its card."""
        return annotation_summary(annotations)

    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]:
        """(the name of the manifest's training weights, the imbalance ratio of the labels)."""
        return "class_weights", imbalance_ratio(manifest["label"])

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """The files of a version: ``label`` is the class name (ImageFolder: one folder per class)."""
        return export_dataset(rows, out_dir, formats)

    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
        """Per (split, class): its share of the split vs overall, ``ok`` within ``tolerance`` + one item's worth."""
        return proportion_deviations(manifest, tolerance)

    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Classes with at least 3 items that are absent from a split: class, split, n_items."""
        return classes_missing_from_splits(manifest)

    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Nothing: a single-label model decides by its most probable class, no threshold is chosen on val."""
        return pd.DataFrame(columns=["label", "split", "positives"])

    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series,
        ratios: split_core.SplitRatios, seed: int,
    ) -> split_core.SplitAssignment:
        """Stratified by the class: each class spread over train/val/test in the ratios."""
        return split_core.assign_splits(rows, existing=existing, ratios=ratios, seed=seed)

    def manifest(
        self, manifest: pd.DataFrame, classes: Sequence[str], *, previous_version: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, float], dict[str, Any]]:
        """(version, class weights of the train split, the manifest JSON)."""
        weights = split_core.class_weights(manifest.loc[manifest["split"] == "train", "label"])
        document = split_core.manifest_to_json(
            manifest, previous_version=previous_version, extra=extra, weights=weights
        )
        return split_core.manifest_version(manifest), weights, document

    def prediction(
        self, probs: Mapping[str, float], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """The most probable class, scored by its probability."""
        label, score = max(probs.items(), key=lambda kv: kv[1])
        return {"model_version": model_version or "unknown", "score": float(score),
                "result": choice_result(str(label))}

    def informativeness(self, probs: Mapping[str, float] | None, strategy: str) -> float:
        """``uncertainty``: 1 - max p; ``margin``: 1 - (p1 - p2); ``entropy``: normalized Shannon entropy;
        ``random`` or no probabilities: 1.0."""
        if not probs or strategy == "random":
            return 1.0
        p = np.clip(np.asarray(list(probs.values()), dtype=float), 0.0, None)
        total = p.sum()
        if total <= 0 or not np.isfinite(total):
            return 1.0
        p = np.sort(p / total)[::-1]
        if strategy == "uncertainty":
            return float(1.0 - p[0])
        if strategy == "margin":
            return float(1.0 - (p[0] - (p[1] if len(p) > 1 else 0.0)))
        nz = p[p > 0]
        return float(-(nz * np.log(nz)).sum() / math.log(len(p))) if len(p) > 1 else 0.0

    def review_model_line(self, probs: Mapping[str, float] | None, model_version: str | None) -> str | None:
        """None: the review task shows the model's most probable class and its probability."""
        return None

    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> NDArray[np.int64]:
        """Class indices in ``classes`` order (the softmax head's hard labels); raises UnknownLabels."""
        return label_indices(answers, classes)

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> StoredTargets:
        """The stored consensus class probabilities of the items (soft targets)."""
        return stored_soft_targets(store, item_ids, labels, classes)

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        """The pixel baseline fitted on current consensus (pre-labels before any model), or None and why not."""
        def fit(features: Any, answers: list[Any]) -> Any:
            return core_baseline.fit_baseline(features, answers, classes, size=size)

        return core_baseline.fit_on_examples(consensus_examples(store, classes), size, fit, "consensus labels")

    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]:
        """Mean entropy, mean top probability and predicted class counts ({} without predictions)."""
        if not len(probs):
            return {}
        predicted = pd.Series(np.asarray(classes)[probs.argmax(axis=1)]).value_counts().sort_index()
        return {
            "mean_entropy": round(float(entropy(probs).mean()), 4),
            "mean_top_probability": round(float(probs.max(axis=1).mean()), 4),
            "predicted_classes": {str(k): int(v) for k, v in predicted.items()},
        }

    def test_scoring(
        self, store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int
    ) -> promotion.ScoringSet:
        """The gold classes of the gold test items when there are at least ``min_gold``, else every item's consensus."""
        return promotion.scoring_set(answers, gold_label_indices(store, item_ids, classes), min_gold)

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        """Macro-F1 of the most probable class."""
        return promotion.top_class_macro_f1(probs, truth)

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        """Accuracy, macro-F1, one-vs-rest AUC, calibration error (``ece_bins``), per class, the confusion matrix."""
        keep = np.ones(len(answers), dtype=bool)
        keep[failed] = False
        report = evaluate_probs(answers[keep], probs[keep], classes, n_bins=ece_bins)
        confusion = confusion_matrix_png(report.confusion, classes, title=model)
        shown: dict[str, Any] = {
            "test_items": report.n_items,
            "undecodable_test_items": len(failed),
            "test_accuracy": round(report.accuracy, 6),
            "test_macro_f1": round(report.macro_f1, 6),
            "test_ece": round(report.ece, 6),
            "per_class": Markdown(report.per_class_markdown()),
            "confusion_matrix": Markdown(markdown_image(confusion, "confusion matrix")),
        }
        if not np.isnan(report.macro_auc):
            shown["test_macro_auc_ovr"] = round(report.macro_auc, 6)
        return TestSplitReport(
            metrics=report.scalar_metrics("test_"),
            files={"evaluation/confusion_matrix.png": confusion},
            texts={"evaluation/per_class.md": report.per_class_markdown()},
            tags={"test_macro_f1": f"{report.macro_f1:.6f}", "test_accuracy": f"{report.accuracy:.6f}"},
            summary=f"{model}: accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, "
            f"AUC {report.macro_auc:.4f}, ECE {report.ece:.4f}",
            report=shown,
        )

    def training_head(self) -> TrainingHead:
        from labeling_assets.core.tasks.single_label.training import HEAD

        return HEAD


KIND = SingleLabel()
