"""Entity spans in texts as a kind of task (``text_spans``): the ``TaskKind`` parts over the span core of this
package. Its model is a spaCy NER trained from blank by its own trainer (``trainer.py``, a ``KindTrainer``).

A stored answer is a sorted list of ``[start, end, type]``, character offsets of the stored text (``[]``: "no
entity"); the classes of the project are its entity types. What this kind calls ``probs`` (pre-labels, the
queue's score, the review line) is the NER's output for one text: ``{"text": str, "spans": [{start, end, label,
score}, ...]}``, every candidate entity with its probability.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.agreement import FleissKappa
from labeling_assets.core.consensus.label_issues import LabelIssues
from labeling_assets.core.consensus.labeler_stats import LabelerStats, weekly_trend
from labeling_assets.core.consensus.leaderboard import QualityInputs, per_class_quality_inputs
from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.card import CardInputs, render_label_set_card
from labeling_assets.core.dataset.export import ExportReport
from labeling_assets.core.display import md_text
from labeling_assets.core.ingest.text import read_stored_text
from labeling_assets.core.labelstudio.answers import Answer
from labeling_assets.core.store.queries import gold_labels
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
from labeling_assets.core.tasks.region_gold import labeler_gold_scores, region_gold_gate
from labeling_assets.core.tasks.text_spans import spans as span_core
from labeling_assets.core.tasks.text_spans.answers import (
    SPAN_VOTE_SKIPS,
    answer_spans,
    gold_counts,
    gold_span_table,
    item_texts,
    presence_manifest,
    read_result,
    result_types,
    span_labeler_window,
    span_votes,
    valid_span_answers,
)
from labeling_assets.core.tasks.text_spans.consensus import METHODS, aggregate_spans
from labeling_assets.core.tasks.text_spans.evaluation import (
    ENTITY_F1,
    encode_answers,
    entity_scores,
    span_test_report,
)
from labeling_assets.core.tasks.text_spans.export import EXPORT_FORMATS, SpanRecord, export_spans
from labeling_assets.core.tasks.text_spans.qa import SPAN_VIEW
from labeling_assets.core.tasks.text_spans.splits import assign_span_splits
from labeling_assets.core.tasks.text_spans.stats import span_agreement
from labeling_assets.core.tasks.text_spans.trainer import PRELABEL_MIN_SCORE, TRAINER, decided
from labeling_assets.core.tasks.text_spans.votes import SpanConsensus
from labeling_assets.core.training import promotion


@dataclass(frozen=True)
class SpanConsensusResult:
    """What :meth:`TextSpansKind.consensus` hands back: ``labels`` as the class kinds have it (``item_id, label,
    confidence, agreement, n_annotators``; ``label`` the decided spans as a stored answer) and the span run."""

    labels: pd.DataFrame
    run: SpanConsensus
    method: str
    notes: list[str] = field(default_factory=list)
    scoreboard: Any = None  # no bake-off


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _uncertainty(probs: Mapping[str, Any]) -> float:
    """The chance that one of the model's span decisions (each candidate kept or dropped) is wrong."""
    scores = np.clip([float(c["score"]) for c in probs.get("spans") or []], 0.0, 1.0)
    return float(1.0 - np.prod(np.maximum(scores, 1.0 - scores))) if len(scores) else 0.0


class TextSpansKind:
    """Entity spans with one type each in a text, "no entity" an answer."""

    name = "text_spans"
    consensus_methods: tuple[str, ...] = METHODS
    export_formats: tuple[str, ...] = EXPORT_FORMATS
    export_note = (
        "an ImageFolder tree cannot hold spans; export jsonl (spans as character offsets), csv or parquet (one row "
        "per span), conll (IOB2), spacy (a DocBin) or hf_datasets (tokens and ner_tags) instead."
    )
    skip_reasons: tuple[str, ...] = SPAN_VOTE_SKIPS
    decision_thresholds = False  # one score cut for every span (PRELABEL_MIN_SCORE)
    gold_gate_rate = "gold gate (matched spans / (gold spans + false spans), strict)"
    # Strict, not partial (same type, overlapping): partial matching scores the demo's boundary-sloppy labeler
    # (ends a token too far half the time) 0.80, as high as the good ones, and the spans a dataset keeps are
    # judged strict (the export, consensus, entity F1); strict scores it 0.26 and good labelers 0.60-0.75.
    gold_gate_threshold = GOLD_MATCH_THRESHOLD
    gold_accuracy_name = "span gold score (matched / (gold + false spans), same offsets and type)"
    label_issue_model = "none yet (no out-of-sample span model is kept per item)"
    qa_view = SPAN_VIEW
    test_metric = ENTITY_F1
    trainer: KindTrainer | None = TRAINER

    # Label Studio.
    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        """``<Labels>`` over the entity types on the ``<Text>``, and the "no entity" choice."""
        return span_core.label_config(classes)

    def owns_config(self, config: str) -> bool:
        """A config with our ``<Labels name="label">`` on a ``<Text>``."""
        return span_core.config_entity_types(config) is not None

    def read_answer(self, result: Any) -> Answer:
        """The stored spans (:func:`.answers.read_result`), or why the result holds none."""
        return read_result(result)

    def read_answer_in_task(self, result: Any, data: Mapping[str, Any]) -> Answer:
        """The stored spans of a result checked against the text of its task (``data["text"]``: the stored text the
        queue pushed): a region outside the text, or whose ``text`` is not the task's slice, is dropped (the sync
        calls this where a kind has it); without a text in the data, :meth:`read_answer`. Overlapping spans are
        stored as given: the project's ``allow_overlapping_spans`` is applied to votes and consensus, so changing it
        needs no new sync."""
        text = data.get(span_core.DATA_KEY)
        if not isinstance(text, str):
            return self.read_answer(result)
        reading = span_core.read_spans(result, text, result_types(result), allow_overlap=True)  # votes decide
        if reading.spans is None:
            return Answer(None, reading.problem, reading.detail)
        dropped = "; ".join(f"{n} {reason}" for reason, n in sorted(reading.skipped.items()))
        return Answer(cast(Any, span_core.stored(reading.spans)), None, f"dropped: {dropped}" if dropped else "")

    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any:
        return self.read_answer(result).label


    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The answer's spans as regions of the text ("no entity" for none); None without the text or for what is
        no span answer."""
        spans = span_core.from_stored(answer)
        if spans is None or media.text is None or any(s.end > len(media.text) for s in spans):
            return None
        return span_core.span_result(spans, media.text)

    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Any:
        """:func:`.answers.span_votes`: an answer with overlapping spans is skipped unless ``allow_overlap``."""
        return span_votes(annotations, classes, allow_overlap=allow_overlap)[0]

    # Gold.
    def parse_gold(self, text: str, classes: Sequence[str] | None, allow_empty: bool = True) -> tuple[Any, str | None]:
        """A gold file's entry: JSON ``[[start, end, type], ...]`` (``[]``: no entity)."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return text, f"not JSON ({exc.msg}): a span answer is [[start, end, type], ...]"
        spans = span_core.from_stored(value)
        if spans is None:
            return value, "not a list of [start, end, type] with 0 <= start < end"
        alien = sorted({s.label for s in spans} - {str(c) for c in classes}) if classes is not None else []
        if alien:
            return value, f"entity types {', '.join(alien)} not among the project's types"
        return span_core.stored(spans), None

    def valid_answers(self, stored: pd.Series, classes: Sequence[str]) -> pd.Series:
        return valid_span_answers(stored, classes)

    def is_answer(self, value: Any, classes: Sequence[str]) -> bool:
        return answer_spans(value, classes)[1] is None

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
        """(matched spans, gold spans + false spans) over the answers to gold items (:func:`.answers.gold_counts`)."""
        return gold_counts(labels, truth, classes)

    def gold_gate(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float
    ) -> tuple[Any, dict[str, Any]]:
        """(the gate on the span gold score, per type: the same score on that type's spans alone)."""
        return region_gold_gate(gold_counts, votes, truth, classes, threshold, "span gold score")

    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Each labeler's span gold score, and precision, recall and F1 against gold, strict and partial."""
        scores = labeler_gold_scores(gold_counts, votes, truth, classes, names)
        return {"span_gold_score": scores, "gold_spans": Markdown(gold_span_table(votes, truth, classes, names)),
                "gold_gate": "spans: the gold gate judges matched spans / (gold spans + false spans), strict"}  # fmt: skip

    # Consensus, agreement, labeler statistics.
    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome:
        """Span consensus (:func:`.consensus.aggregate_spans`) of the eligible votes on the items' stored texts
        (the frame's ``uri``); gold decides its items (``span_em`` also learns from them). ``allow_overlap``:
        ``span_em`` keeps overlapping entities (else the more probable of two stays); the token baselines tag each
        token once and so never give overlapping spans."""
        if method not in METHODS:
            raise ConsensusFailure(f"consensus method {method!r} is not a span method; a text_spans project uses one "
                                   f"of {', '.join(METHODS)}")  # fmt: skip
        _, votes = span_votes(eligible, classes, allow_overlap=allow_overlap)
        texts = item_texts(eligible, votes)
        truth = valid_span_answers(gold, classes)
        voted = {v.item_id for v in votes}
        gold_spans = {str(k): span_core.from_stored(v) or () for k, v in truth.items() if str(k) in voted}
        run = aggregate_spans(votes, texts, classes, method, gold=gold_spans, allow_overlap=allow_overlap)
        by_item: dict[str, list[Any]] = {}
        for vote in votes:
            by_item.setdefault(vote.item_id, []).append(vote)
        rows = []
        for item in sorted(run.labels):
            pairwise = span_agreement(by_item.get(item, []))
            rows.append((item, span_core.stored(run.labels[item]), float(run.confidence[item]),
                         1.0 if pairwise.f1 is None else float(pairwise.f1), int(run.n_annotators[item])))  # fmt: skip
        labels = pd.DataFrame(rows, columns=["item_id", "label", "confidence", "agreement", "n_annotators"])
        result = SpanConsensusResult(labels, run, run.method, [f"{run.method} over {len(votes)} span answers"])
        no_bakeoff = "no bake-off: span consensus has none (auto runs span_em; gold decides its items)"
        return ConsensusOutcome(result, len(gold_spans), None, no_bakeoff)

    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> FleissKappa:
        """Not a kappa: the pairwise strict span F1, overall and per type, in its fields (chance agreement is
        ill-defined for spans)."""
        _, votes = span_votes(eligible, classes, allow_overlap=True)  # votes: the project's rule applied at load
        overall = span_agreement(votes)
        per_type = {}
        for name in classes:
            only = [dataclasses.replace(v, spans=tuple(s for s in v.spans if s.label == name)) for v in votes]
            per_type[str(name)] = span_agreement(only).f1
        nan = float("nan")
        f1 = nan if overall.f1 is None else overall.f1
        return FleissKappa(f1, {k: nan if v is None else v for k, v in per_type.items()}, nan, nan, overall.n_items)

    def classes_of(self, answer: Any) -> list[str]:
        """The entity types an answer marks, sorted (whatever its validity)."""
        if not isinstance(answer, list):
            return []
        return sorted({str(x[2]) for x in answer if isinstance(x, list | tuple) and len(x) == 3})

    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Agreement (pairwise span F1), spans per type, items without entities, each labeler's estimates."""
        run: SpanConsensus = result.run
        agreement = self.agreement(eligible, classes)
        counts = Counter(s.label for spans in run.labels.values() for s in spans)
        lines = ["| labeler | estimates |", "|---|---|"]
        for labeler, quality in sorted(run.labeler_quality.items()):
            shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(quality.items()) if np.isfinite(v))
            lines.append(f"| {md_text(names.get(str(labeler), labeler))} | {md_text(shown)} |")
        return {
            "task_type": self.name,
            "method": run.method,
            "pairwise_span_f1": _finite(agreement.kappa),
            "pairwise_span_f1_per_type": {str(k): _finite(v) for k, v in agreement.per_class.items()},
            "class_distribution": {str(c): int(counts.get(str(c), 0)) for c in classes},
            "items_without_entities": sum(1 for spans in run.labels.values() if not spans),
            "labeler_quality": Markdown("\n".join(lines)) if run.labeler_quality else "no estimates (a baseline ran)",
        }

    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> QualityInputs:
        """Span answers throughout; population shares per type are the share of consensus answers marking it."""
        return per_class_quality_inputs(self, votes, gold, adjudicated, consensus, classes)

    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> LabelerStats:
        return span_labeler_window(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus)

    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[LabelerStats]:
        return weekly_trend(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus,
                            last_weeks=last_weeks, stats=span_labeler_window)  # fmt: skip

    # Label issues: not searched yet.
    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        return None, self.label_issue_model

    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]:
        """No issues searched: spans have no out-of-sample model per item yet (a note says so)."""
        empty = pd.DataFrame(columns=["item_id", "given_label", "suggested_label", "label_quality",
                                      "suggested_probability"])  # fmt: skip
        note = "label issues are not searched for spans yet: no out-of-sample span model per item is kept"
        return LabelIssues(empty, pd.Series(dtype=float), [note]), float("nan")

    # Datasets.
    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """The consensus rows that are span answers of the project; the others counted by the vote rule's reason."""
        return usable_rows(frame, lambda value: answer_spans(value, classes or [])[1],
                           "a span answer of the project", excluded)  # fmt: skip

    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str:
        """The multi-label card over the entity types each text holds (prevalence per type and split)."""
        card: CardInputs = inputs
        shown = dataclasses.replace(card, manifest=presence_manifest(card.manifest, list(card.expected_classes)))
        return render_label_set_card(shown, with_plot=with_plot)

    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]:
        """(labelers, annotations, no kappa: span agreement is a pairwise F1) over a version's span answers."""
        if annotations.empty:
            return 0, 0, None
        answers = annotations.loc[annotations["label"].map(lambda v: isinstance(v, list)).astype(bool)]
        return int(answers["labeler_id"].nunique()), len(answers), None

    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]:
        return "class_weights", multi_core.label_imbalance_ratio(presence_manifest(manifest, classes), classes)

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """JSONL, CSV, Parquet, CoNLL, spaCy DocBin and a ``DatasetDict`` per split (:func:`.export.export_spans`) of the stored
        texts (``rows.image_path``: the stored copy)."""
        records = [SpanRecord(str(item), read_stored_text(str(path)), span_core.from_stored(label) or (), str(split))
                   for item, path, label, split in zip(rows["item_id"], rows["image_path"], rows["label"], rows["split"],
                                                       strict=True)]  # fmt: skip
        written = export_spans(records, classes, Path(out_dir), formats)
        # As the dataset_export asset reads an export: one path per file (per format and split) or folder.
        paths = {name.replace(".", "_").replace("hf_dataset", "hf_datasets"): Path(out_dir) / name
                 for files in written.files.values() for name in files}  # fmt: skip
        return ExportReport(out_dir=Path(out_dir), paths=paths, notes=written.notes())

    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
        return multi_core.prevalence_deviations(presence_manifest(manifest, classes), classes, tolerance)

    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        missing = multi_core.labels_missing_from_splits(presence_manifest(manifest, classes), classes, split_core.SPLITS)
        return missing[missing["positives"] >= multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]

    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Nothing: no per-type threshold is chosen on val (one score cut for every span)."""
        return pd.DataFrame(columns=["label", "split", "positives"])

    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series,
        ratios: split_core.SplitRatios, seed: int,
    ) -> split_core.SplitAssignment:
        """Iterative stratification on the entity types each text holds (:func:`.splits.assign_span_splits`);
        the frame's ``label`` is the stored answer again."""
        answers = dict(zip(rows["item_id"].astype(str), rows["label"], strict=True))
        groups = dict(zip(rows["item_id"].astype(str), rows["group_key"], strict=True)) if "group_key" in rows else None
        assignment = assign_span_splits({i: span_core.from_stored(a) or () for i, a in answers.items()}, classes,
                                        groups=groups, existing={str(k): str(v) for k, v in existing.items()}, ratios=ratios, seed=seed)  # fmt: skip
        frame = assignment.frame.assign(types_present=assignment.frame["label"])
        frame["label"] = [answers[str(item)] for item in frame["item_id"]]
        return split_core.SplitAssignment(frame, assignment.notes)

    def manifest(
        self, manifest: pd.DataFrame, classes: Sequence[str], *, previous_version: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, float], dict[str, Any]]:
        """(version: the hash over each item's answer JSON and split, no class weights, the manifest JSON)."""
        canonical = manifest.assign(label=manifest["label"].map(lambda a: json.dumps(a, sort_keys=True)))
        rows = manifest.sort_values("item_id", kind="stable")
        document = {
            "format": split_core.MANIFEST_FORMAT, "previous_version": previous_version, **extra, "task_type": self.name,
            "classes": [str(c) for c in classes], "item_id": rows["item_id"].astype(str).tolist(),
            "label": rows["label"].tolist(), "types_present": presence_manifest(rows, classes)["label"].tolist(),
            "split": rows["split"].astype(str).tolist(),
        }  # fmt: skip
        return split_core.manifest_version(canonical), {}, document

    # Pre-labels and active learning: ``probs`` is the NER's output for one text (module docstring).
    def prediction(
        self, probs: Mapping[str, Any], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """The candidates at :data:`.trainer.PRELABEL_MIN_SCORE` or more as predicted regions ("no entity" when
        none); the score is the chance every span decision is right."""
        spans = decided(probs.get("spans") or [])
        return {"model_version": model_version or "unknown", "score": 1.0 - _uncertainty(probs),
                "result": span_core.span_result(spans, str(probs.get("text") or ""))}  # fmt: skip

    def informativeness(self, probs: Mapping[str, Any] | None, strategy: str) -> float:
        """Every strategy but ``random`` is the chance that one of the model's span decisions is wrong."""
        if not probs or strategy == "random":
            return 1.0
        return _uncertainty(probs)

    def review_model_line(self, probs: Mapping[str, Any] | None, model_version: str | None) -> str | None:
        """The model's spans at the pre-label cut, with their types and scores."""
        if not probs:
            return "model: no prediction"
        text = str(probs.get("text") or "")
        shown = [c for c in probs.get("spans") or [] if float(c["score"]) >= PRELABEL_MIN_SCORE]
        if not shown:
            return f"model {model_version or 'unknown'}: no entity"
        parts = ", ".join(f"{text[int(c['start']):int(c['end'])]!r} {c['label']} {float(c['score']):.2f}" for c in shown)
        return f"model {model_version or 'unknown'}: {parts}"

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        return None, "no baseline for spans (the pixel baseline reads images): train the NER first"

    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]:
        """Over the NER's outputs: spans per text at the pre-label cut, per type, and the mean uncertainty."""
        outputs = [o for o in list(probs) if o]
        if not outputs:
            return {}
        shown = [decided(o.get("spans") or []) for o in outputs]
        return {
            "mean_spans_per_text": round(float(np.mean([len(s) for s in shown])), 4),
            "texts_without_spans": sum(not s for s in shown),
            "predicted_spans": {str(c): sum(x.label == str(c) for s in shown for x in s) for c in classes},
            "mean_uncertainty": round(float(np.mean([_uncertainty(o) for o in outputs])), 4),
        }

    # Evaluation on the test split: ``answers`` stored answers (:meth:`encode`), ``probs`` the NER's outputs.
    def test_scoring(
        self, store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int
    ) -> promotion.ScoringSet:
        """The gold answers of the gold test items when there are at least ``min_gold``, else the consensus."""
        stored = self.valid_answers(gold_labels(store, item_ids), classes)
        return promotion.answer_scoring_set(item_ids, stored, encode_answers, np.asarray(answers), min_gold)

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        """Entity F1 (seqeval, strict) of the model's spans at the pre-label cut against the answers."""
        return entity_scores(list(probs), list(truth))[0]["f1"]

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        return span_test_report(answers, probs, failed, model=model)

    # Training: the kind's own trainer (``trainer.py``), no training head.
    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> Any:
        """The answers as they are (an object array: the truth :meth:`test_score` reads)."""
        return encode_answers(answers)

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> Any:
        """None: the NER trains on the consensus spans (no soft targets)."""
        return None

    def training_head(self) -> TrainingHead:
        raise NotImplementedError("text spans train a spaCy NER through the kind's trainer (KIND.trainer), not the "
                                  "image classifier's training head")  # fmt: skip


KIND = TextSpansKind()
