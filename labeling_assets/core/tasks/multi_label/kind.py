"""Multi-label: a sorted list of class names per answer (the empty list is "None of these"); per-class sigmoids,
set consensus, iterative stratification, no ImageFolder export."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.agreement import FleissKappa
from labeling_assets.core.consensus.gates import gate
from labeling_assets.core.consensus.label_issues import pixel_inputs
from labeling_assets.core.consensus.labeler_stats import LabelerStats, weekly_trend
from labeling_assets.core.consensus.leaderboard import QualityInputs, per_class_quality_inputs
from labeling_assets.core.consensus.multilabel import SET_METHODS, aggregate_sets, set_probabilities_by_item
from labeling_assets.core.consensus.multilabel_quality import (
    krippendorff_alpha_sets,
    per_class_fleiss_kappa,
    set_labeler_stats,
)
from labeling_assets.core.consensus.multilabel_stats import (
    compute_set_labeler_stats,
    set_gold_counts,
    set_gold_gate_name,
)
from labeling_assets.core.consensus.set_label_issues import cross_val_set_pred_probs, find_set_issues
from labeling_assets.core.consensus.votes import Votes, latest_set_votes, single_class
from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.card import label_set_annotation_summary, render_label_set_card
from labeling_assets.core.dataset.export import export_dataset
from labeling_assets.core.display import md_text
from labeling_assets.core.images import markdown_image
from labeling_assets.core.label_sets import (
    NONE_OF_THESE,
    SKIP_EMPTY_NOT_ALLOWED,
    SKIP_NONE_WITH_CLASSES,
    SKIP_NOT_A_SET,
    SKIP_UNKNOWN_IN_SET,
    LabelSetError,
    label_set,
    to_indicator,
)
from labeling_assets.core.labelstudio import config as ls_config
from labeling_assets.core.labelstudio.answers import Answer, read_choices
from labeling_assets.core.labelstudio.config import about_text, choice_result, config_layout
from labeling_assets.core.labelstudio.review import set_prediction_line
from labeling_assets.core.reporting.answer_views import SET_VIEW
from labeling_assets.core.store.dataset_versions import usable_label_sets
from labeling_assets.core.store.datasets import StoredTargets
from labeling_assets.core.store.multilabel_targets import (
    consensus_set_examples,
    gold_label_sets,
    label_set_indicator,
    stored_marginal_targets,
)
from labeling_assets.core.tasks.kind import (
    GOLD_ACCURACY_THRESHOLD,
    MACRO_F1,
    ConsensusFailure,
    ConsensusOutcome,
    ItemMedia,
    Markdown,
    TestSplitReport,
    TrainingHead,
)
from labeling_assets.core.tasks.multi_label.gold import parse_gold_set
from labeling_assets.core.tasks.multi_label.tables import (
    LABELER_CLASS_ROWS,
    NO_NEGATIVE,
    NO_POSITIVE,
    finite,
    finite_rate,
    labeler_table,
    per_class_table,
    rate_text,
)
from labeling_assets.core.training import baseline as core_baseline
from labeling_assets.core.training import multilabel_metrics as ml_metrics
from labeling_assets.core.training import promotion
from labeling_assets.core.training.active_learning import mean_binary_entropy
from labeling_assets.core.training.multilabel import apply_thresholds

PREFILL_THRESHOLD = 0.5  # a class is pre-checked when its probability reaches this (or the model's own cut)


class MultiLabel:
    """A set of classes per item, ChestX-ray14 style (several findings per image, often none)."""

    name = "multi_label"
    consensus_methods: tuple[str, ...] = SET_METHODS
    export_formats: tuple[str, ...] = ("jsonl", "csv", "parquet")  # ImageFolder puts an image in one folder
    export_note = (
        "an ImageFolder tree puts each image in one class folder, and these images carry a set of classes (or "
        "none). Export jsonl (label as a list of class names), csv or parquet (one 0/1 column per class) instead."
    )  # why a format outside export_formats is refused
    skip_reasons: tuple[str, ...] = (SKIP_NOT_A_SET, SKIP_UNKNOWN_IN_SET, SKIP_EMPTY_NOT_ALLOWED, SKIP_NONE_WITH_CLASSES)
    decision_thresholds = True
    label_issue_model = "logistic regression per class"  # what scores consensus labels out of sample for label issues
    gold_gate_rate = "gold gate (worse of sens./spec.)"  # what the gold gate judges when it is not the gold accuracy ("": it is)
    gold_gate_threshold = GOLD_ACCURACY_THRESHOLD  # on the worse of sensitivity and specificity

    qa_view = SET_VIEW  # how the QA report reads and names its answers
    gold_accuracy_name = "exact-set gold accuracy"
    test_metric = MACRO_F1  # over classes, each decided at its own threshold
    trainer: Any = None  # the image classifier, through the training head (training.py)

    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        """Checkboxes over the classes, plus a last ``NONE_OF_THESE`` choice when the empty set is an answer (a
        class of that name is refused: it would read as the empty set)."""
        names = ls_config.validate_classes(classes)
        if NONE_OF_THESE in names:
            raise ls_config.LabelConfigError(
                f"a class is named {NONE_OF_THESE!r}, the multi-label choice that means the empty set: rename that class"
            )
        return ls_config.render_choices(ls_config.ConfigLayout(names, multiple=True, none_choice=allow_empty))

    def owns_config(self, config: str) -> bool:
        """A config whose class choices take several choices."""
        layout = config_layout(config)
        return layout is not None and layout.multiple and not about_text(config)  # a text kind's choices are its own

    def read_answer(self, result: Any) -> Answer:
        """Always a sorted list without duplicates; ``NONE_OF_THESE`` alone is ``[]``. ``NONE_OF_THESE`` chosen
        together with classes is kept as it came (consensus skips it as a vote, ``SKIP_NONE_WITH_CLASSES``)."""
        answer = read_choices(result)
        if not isinstance(answer.label, list):
            return answer
        names = sorted(set(answer.label))
        return Answer([] if names == [NONE_OF_THESE] else names)

    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any:
        return self.read_answer(result).label

    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The classes of the set chosen ("none of these" for the empty set)."""
        if not isinstance(answer, list | tuple) or not all(isinstance(c, str) for c in answer):
            return None
        return choice_result(sorted(answer))

    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Votes:
        return latest_set_votes(annotations, classes, allow_empty=allow_empty)

    parse_gold = staticmethod(parse_gold_set)  # a gold file's entry: a label set as a JSON list

    def valid_answers(self, stored: pd.Series, classes: Sequence[str]) -> pd.Series:
        """The stored values that are label sets of the project, as sorted lists; a stale or malformed one is
        not truth and is left out."""
        out: dict[Any, list[str]] = {}
        for item, value in stored.items():
            try:
                out[item] = label_set(value, classes, allow_empty=True)
            except LabelSetError:
                continue
        return pd.Series(out, dtype=object)

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
        """(successes, trials) of the gate nearer to failing: findings caught or absent classes left unticked."""
        return set_gold_counts(labels, truth, classes)

    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome:
        """Set consensus with the hidden gold sets clamped (Dawid-Skene methods); the method must be a set method."""
        if method not in SET_METHODS:
            raise ConsensusFailure(
                f"consensus method {method!r} is single-label only; a multi_label project uses one of "
                f"{', '.join(SET_METHODS)}"
            )
        names = list(classes)
        gold = self.valid_answers(gold, names)
        gold = gold[gold.index.isin(set(eligible["item_id"].astype(str)))]
        result = aggregate_sets(
            eligible, method, classes=names, gold=gold, thresholds=thresholds or None, allow_empty=allow_empty
        )
        no_bakeoff = "no bake-off: multi-label consensus has none (auto picks by overlap; gold is clamped)"
        return ConsensusOutcome(result, len(gold), set_probabilities_by_item(result), no_bakeoff)

    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> FleissKappa:
        """Fleiss' kappa per class (binary: present or not) and their mean over the classes where it is defined."""
        per_class = per_class_fleiss_kappa(eligible, list(classes))
        defined = [v for v in per_class.values() if v == v]
        n_items = int((eligible.groupby("item_id")["labeler_id"].nunique() >= 2).sum()) if len(eligible) else 0
        nan = float("nan")
        return FleissKappa(sum(defined) / len(defined) if defined else nan, per_class, nan, nan, n_items)

    def classes_of(self, answer: Any) -> list[str]:
        """The classes a stored answer names: each class of a set (a bare class name names itself)."""
        if isinstance(answer, list | tuple):
            return [str(v) for v in answer]
        name = single_class(answer)
        return [] if name is None else [str(name)]

    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Per-class agreement, prevalence and thresholds, set alpha (MASI), empty sets, labelers' sensitivity."""
        names_ = list(classes)
        kappa = per_class_fleiss_kappa(eligible, names_)
        defined = [v for v in kappa.values() if np.isfinite(v)]
        distribution = result.per_class.set_index("class")["n_items"].reindex(names_, fill_value=0)
        return {
            "task_type": self.name,
            "per_class": Markdown(per_class_table(result, kappa)),
            "fleiss_kappa": finite(float(np.mean(defined))) if defined else None,
            "fleiss_kappa_per_class": {str(k): finite(v) for k, v in kappa.items()},
            "krippendorff_alpha_masi": finite(krippendorff_alpha_sets(eligible, names_)),
            "class_thresholds": dict(zip(names_, result.thresholds.tolist(), strict=True)),
            "empty_sets": int((result.labels["label"].map(len) == 0).sum()),
            "class_distribution": {str(k): int(v) for k, v in distribution.items()},
            "labeler_quality": Markdown(labeler_table(result, names)),
        }

    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> QualityInputs:
        """Label sets throughout; population shares are per class (share of consensus sets holding it)."""
        return per_class_quality_inputs(self, votes, gold, adjudicated, consensus, classes)

    def gold_gate(self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float) -> tuple[Any, dict[str, Any]]:
        """(the gate on the worse of sensitivity and specificity over all classes, per class: sensitivity)."""
        names = list(classes)
        per_class: dict[str, Any] = {}
        if not votes.empty and not truth.empty:
            _, rows = set_labeler_stats(votes, truth, names)
            per_class = {
                str(r["class"]): gate(int(r["tp"]), int(r["tp"] + r["fn"]), threshold,
                                      what=f"sensitivity on {r['class']}").metadata()
                for r in rows.to_dict("records")
                if r["tp"] + r["fn"] > 0
            }
        what = set_gold_gate_name(votes, truth, names)  # the reason names the rate it judged
        return gate(*set_gold_counts(votes, truth, names), threshold, what=what), per_class

    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Each labeler's exact-set gold accuracy and per-class sensitivity / specificity (95% Wilson)."""
        overall, per_class = set_labeler_stats(votes[votes["labeler_id"].astype(str).isin(set(names))], truth, list(classes))
        lines = ["| labeler | class | sensitivity (95% CI) | specificity (95% CI) | gold items |", "|---|---|---|---|---:|"]
        for r in per_class.head(LABELER_CLASS_ROWS).to_dict("records"):
            lines.append(
                f"| {md_text(names.get(str(r['labeler_id']), r['labeler_id']))} | {md_text(r['class'])} | "
                f"{rate_text(r['sensitivity'], r['sensitivity_ci_low'], r['sensitivity_ci_high'], NO_POSITIVE)} | "
                f"{rate_text(r['specificity'], r['specificity_ci_low'], r['specificity_ci_high'], NO_NEGATIVE)} | "
                f"{r['tp'] + r['fn'] + r['tn'] + r['fp']} |"
            )
        exact = {names.get(str(r["labeler_id"]), str(r["labeler_id"])): finite_rate(r["exact_accuracy"])
                 for r in overall.to_dict("records")}
        return {
            "gold_per_class": Markdown("\n".join(lines)),
            "exact_set_gold_accuracy": exact,
            "gold_gate": "label sets: the gold gate judges findings (sensitivity and specificity over all classes, "
            "the worse of the two), gold_accuracy is exact-set accuracy",
        }

    def is_answer(self, value: Any, classes: Sequence[str]) -> bool:
        """Whether a stored consensus label is a label set of the project (label issues check only those)."""
        try:
            label_set(value, classes, allow_empty=True)
        except LabelSetError:
            return False
        return True

    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        """Downsampled grayscale pixels of the items' images, for the cross-validated model."""
        return pixel_inputs(uris, feature_size=feature_size, n_folds=n_folds, model=self.label_issue_model)

    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]:
        """One out-of-sample probability per class, cleanlab's multi-label search; (issues, exact agreement of
        the model's sets with consensus)."""
        indicator = to_indicator(labels, classes)
        probs = cross_val_set_pred_probs(features, indicator, n_folds=n_folds)
        agreement = float(((probs > 0.5) == indicator.astype(bool)).all(axis=1).mean())
        return find_set_issues(item_ids, labels, probs, classes), agreement

    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> LabelerStats:
        """Sensitivity and specificity on gold and against consensus (population shares are per class)."""
        return compute_set_labeler_stats(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus)

    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[LabelerStats]:
        return weekly_trend(
            votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus, last_weeks=last_weeks,
            stats=compute_set_labeler_stats,
        )

    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """The consensus rows a dataset version may hold, and counts of the others by reason."""
        return usable_label_sets(frame, classes, allow_empty, excluded)

    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str:
        """The dataset card (Markdown) of a version of this kind."""
        return render_label_set_card(inputs, with_plot=with_plot)

    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]:
        """(labelers, annotations, no kappa: set agreement is per class) over a version's items, for its card."""
        n_labelers, n_annotations = label_set_annotation_summary(annotations)
        return n_labelers, n_annotations, None

    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]:
        """(the name of the manifest's training weights, the imbalance ratio over the classes' prevalences)."""
        return "pos_weight", multi_core.label_imbalance_ratio(manifest, classes)

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """The files of a version: JSONL keeps the set as a list, CSV and Parquet one 0/1 column per class."""
        return export_dataset(rows, out_dir, formats, classes=classes)

    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
        """Per (split, label with a positive): its prevalence in the split vs overall (and the empty sets' share)."""
        return multi_core.prevalence_deviations(manifest, classes, tolerance)

    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Labels with at least 3 positives that have no positive in a split: label, split, positives."""
        missing = multi_core.labels_missing_from_splits(manifest, classes, split_core.SPLITS)
        return missing[missing["positives"] >= multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]

    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Labels with a positive but none in val (no threshold can be chosen) or in test (no test metric)."""
        return multi_core.labels_missing_from_splits(manifest, classes)

    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series,
        ratios: split_core.SplitRatios, seed: int,
    ) -> split_core.SplitAssignment:
        """Iterative stratification over the classes' indicators (each class, rare ones first, spread in the ratios)."""
        return multi_core.assign_label_set_splits(rows, classes, existing=existing, ratios=ratios, seed=seed)

    def manifest(
        self, manifest: pd.DataFrame, classes: Sequence[str], *, previous_version: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, float], dict[str, Any]]:
        """(version, per-class pos_weight of the train split, the manifest JSON with label sets)."""
        weights = multi_core.pos_weights(manifest[manifest["split"] == "train"], classes)
        document = multi_core.manifest_to_json(
            manifest, classes=classes, previous_version=previous_version, extra=extra, weights=weights
        )
        return multi_core.manifest_version(manifest), weights, document

    def prediction(
        self, probs: Mapping[str, float], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """A pre-filled set (:func:`prefill_set`); its score is the mean over classes of max(p, 1 - p), the
        confidence consensus reports for sets."""
        marginals = np.clip(np.asarray(list(probs.values()), dtype=float), 0.0, 1.0)
        chosen = prefill_set(probs, allow_empty=allow_empty, thresholds=thresholds)
        return {"model_version": model_version or "unknown", "score": float(np.maximum(marginals, 1.0 - marginals).mean()),
                "result": choice_result(chosen)}

    def informativeness(self, probs: Mapping[str, float] | None, strategy: str) -> float:
        """Every strategy but ``random`` is the mean binary entropy of the per-class marginals."""
        if not probs or strategy == "random":
            return 1.0
        marginals = np.asarray(list(probs.values()), dtype=float)
        if not np.isfinite(marginals).all():
            return 1.0
        return float(mean_binary_entropy(np.clip(marginals, 0.0, 1.0)[None, :])[0])

    def review_model_line(self, probs: Mapping[str, float] | None, model_version: str | None) -> str | None:
        """The most probable classes, each with P(present): one "top class" would hide a second finding."""
        return set_prediction_line(probs, model_version)

    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> NDArray[np.uint8]:
        """(n, K) 0/1 indicators, columns in ``classes`` order (the sigmoid head's hard labels); raises
        UnknownLabels."""
        return label_set_indicator(answers, classes)

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> StoredTargets:
        """The stored per-class consensus marginals of the items (soft targets)."""
        return stored_marginal_targets(store, item_ids, labels, classes)

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        """The per-class pixel baseline fitted on current consensus sets, or None and why not."""
        def fit(features: Any, answers: list[Any]) -> Any:
            return core_baseline.fit_set_baseline(features, to_indicator(answers, classes), classes, size=size)

        return core_baseline.fit_on_examples(consensus_set_examples(store, classes), size, fit, "consensus label sets")

    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]:
        """Mean binary entropy (the per-label uncertainty), mean predicted set size, items predicted per class (at
        the model's thresholds, 0.5 for the baseline) and the thresholds."""
        if not len(probs):
            return {}
        predicted = apply_thresholds(probs, thresholds)
        report: dict[str, Any] = {
            "mean_binary_entropy": round(float(mean_binary_entropy(probs).mean()), 4),
            "mean_predicted_set_size": round(float(predicted.sum(axis=1).mean()), 4),
            "predicted_classes": {name: int(n) for name, n in zip(classes, predicted.sum(axis=0), strict=True)},
        }
        if thresholds is not None:
            report["thresholds"] = dict(zip(classes, thresholds, strict=True))
        return report

    def test_scoring(
        self, store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int
    ) -> promotion.ScoringSet:
        """The gold sets of the gold test items when there are at least ``min_gold`` (as single-label), else every
        item's consensus set; the scoring set's labels are (n, K) indicators."""
        gold = gold_label_sets(store, item_ids, classes)
        rows = np.array([i for i, g in enumerate(gold) if g is not None], dtype=np.int64)
        if len(rows) >= min_gold:
            return promotion.ScoringSet("gold", rows, to_indicator([gold[i] or [] for i in rows], classes), len(rows))
        return promotion.ScoringSet("consensus", np.arange(len(answers), dtype=np.int64), answers, len(rows))

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        """Macro-F1 of the sets the model predicts at its own per-class thresholds."""
        return ml_metrics.macro_f1_multilabel(truth, apply_thresholds(probs, thresholds))

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        """Per-label and averaged metrics at the model's thresholds, the per-label AUC/AP bar plot, ROC curve data
        (no calibration error: ``ece_bins`` is not read)."""
        keep = np.ones(len(answers), dtype=bool)
        keep[failed] = False
        report = ml_metrics.evaluate_multilabel(answers[keep], probs[keep], classes, thresholds)
        bars = ml_metrics.per_label_bar_png(report, title=f"{model}: per-label ROC-AUC and AP")
        shown: dict[str, Any] = {
            "task_type": self.name,
            "test_items": report.n_items,
            "undecodable_test_items": len(failed),
            "test_macro_f1": round(report.macro_f1, 6),
            "test_micro_f1": round(report.micro_f1, 6),
            "test_hamming_loss": round(report.hamming_loss, 6),
            "test_exact_match": round(report.exact_match, 6),
            "summary": Markdown(report.summary_markdown()),
            "per_label": Markdown(report.per_label_markdown()),
            "per_label_auc_ap": Markdown(markdown_image(bars, "per-label ROC-AUC and AP")),
            "labels_with_undefined_auc": report.undefined_labels,
        }
        for name in ("macro_auc", "micro_auc", "macro_map", "micro_map"):
            value = float(getattr(report, name))
            if not np.isnan(value):
                shown[f"test_{name}"] = round(value, 6)
        return TestSplitReport(
            metrics=report.scalar_metrics("test_"),
            files={
                "evaluation/per_label_auc_ap.png": bars,
                "evaluation/roc_curves.json": json.dumps(report.roc).encode("utf-8"),
            },
            texts={"evaluation/per_label.md": report.per_label_markdown(), "evaluation/summary.md": report.summary_markdown()},
            tags={"test_macro_f1": f"{report.macro_f1:.6f}", "test_macro_auc": f"{report.macro_auc:.6f}"},
            summary=f"{model}: macro-AUC {report.macro_auc:.4f}, mAP {report.macro_map:.4f}, macro-F1 "
            f"{report.macro_f1:.4f}, Hamming {report.hamming_loss:.4f}",
            report=shown,
        )

    def training_head(self) -> TrainingHead:
        from labeling_assets.core.tasks.multi_label.training import HEAD

        return HEAD


def prefill_set(
    probs: Mapping[str, float], *, allow_empty: bool = True, thresholds: Mapping[str, float] | None = None
) -> list[str]:
    """The classes a prediction pre-checks, sorted: those whose probability reaches the model's own threshold for
    the class (``thresholds``, chosen on val at training), else :data:`PREFILL_THRESHOLD`.

    None of them: ``[]`` ("None of these"), or the most probable class when the project has no empty set (the
    config then offers no "None of these", and a pre-fill should be an answer a person could give).
    """
    cut = thresholds or {}
    chosen = sorted(str(c) for c, p in probs.items() if float(p) >= cut.get(str(c), PREFILL_THRESHOLD))
    if chosen or allow_empty or not probs:
        return chosen
    return [str(max(probs.items(), key=lambda kv: (float(kv[1]), kv[0]))[0])]


__all__ = ["KIND", "NONE_OF_THESE", "MultiLabel", "prefill_set"]

KIND = MultiLabel()
