"""Time regions with a label in audio as a kind of task (``audio_segments``): the ``TaskKind`` parts over
``core/speech`` and this package. Its model is a frame classifier on log-mel features, trained by its own trainer
(``trainer.py``, a ``KindTrainer``); pre-labels and evaluation are ``prelabels.py`` and ``evaluation.py``.

A stored answer is a list of ``{"start": s, "end": s, "label": str}`` sorted by start (``[]``: no region;
:mod:`.answers`). An item's audio is read only through ``core.ingest.audio.read_audio``. What this kind calls
``probs`` (pre-labels, the queue's score, the review line) is the frame model's output for one audio file
(``prelabels.py`` says what it holds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.agreement import FleissKappa
from labeling_assets.core.consensus.labeler_stats import LabelerStats, weekly_trend
from labeling_assets.core.consensus.leaderboard import QualityInputs, per_class_quality_inputs
from labeling_assets.core.dataset import iterative_stratification as multi_core
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.card import CardInputs, render_label_set_card
from labeling_assets.core.dataset.export import ExportReport
from labeling_assets.core.display import md_text
from labeling_assets.core.labelstudio.answers import Answer
from labeling_assets.core.store.out_of_sample import out_of_sample_prelabels
from labeling_assets.core.store.queries import consensus_frame
from labeling_assets.core.tasks.audio_segments import evaluation, prelabels
from labeling_assets.core.tasks.audio_segments.agreement import frame_agreement
from labeling_assets.core.tasks.audio_segments.answers import (
    AUDIO_VOTE_SKIPS,
    answer_regions,
    answer_result,
    config_classes,
    from_stored,
    label_config,
    parse_gold,
    read_result,
    stored,
)
from labeling_assets.core.tasks.audio_segments.consensus import METHODS, SegmentRun, aggregate_segments
from labeling_assets.core.tasks.audio_segments.export import EXPORT_FORMATS, SegmentRecord, export_segments
from labeling_assets.core.tasks.audio_segments.label_issues import SOURCE, segment_label_issues
from labeling_assets.core.tasks.audio_segments.qa import SEGMENT_VIEW, labels_present
from labeling_assets.core.tasks.audio_segments.stats import gold_counts, gold_table, segment_labeler_window
from labeling_assets.core.tasks.audio_segments.trainer import TRAINER
from labeling_assets.core.tasks.audio_segments.votes import (
    audio_duration,
    audio_votes,
    by_item,
    item_durations,
)
from labeling_assets.core.tasks.kind import (
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

# The gold gate's default on the region gold score, measured (benchmarks/gold_gate_thresholds.py, 30 gold items
# answered three-fold, 20 seeds): good labelers score 0.85-0.93 and the late-and-wide marker 0.87, paused at 0.8 in
# no seed; the labeler who misses half the language switches scores 0.47 and the spammer 0.02, paused at 0.7 in
# every seed (at spans' and boxes' 0.5 the switch misser only in 15%).
GOLD_SEGMENT_THRESHOLD = 0.7


@dataclass(frozen=True)
class SegmentConsensusResult:
    """What :meth:`AudioSegmentsKind.consensus` hands back: ``labels`` as the class kinds have it (``item_id, label,
    confidence, agreement, n_annotators``; ``label`` the decided regions as a stored answer) and the run."""

    labels: pd.DataFrame
    run: SegmentRun
    method: str
    notes: list[str] = field(default_factory=list)
    scoreboard: Any = None  # no bake-off


def _finite(value: float | None) -> float | None:
    return round(float(value), 6) if value is not None and np.isfinite(value) else None


def presence_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    """A segment manifest as the multi-label split checks read it: ``label`` the labels each item has a region of."""
    return manifest.assign(label=labels_present(manifest["label"]))


class AudioSegmentsKind:
    """Time regions with one label each on an audio file (``[]``: no region)."""

    name = "audio_segments"
    consensus_methods: tuple[str, ...] = METHODS
    export_formats: tuple[str, ...] = EXPORT_FORMATS
    export_note = (
        "an ImageFolder tree or a table of one class per item cannot hold time regions; export jsonl (one row per "
        "item with its regions in seconds) or rttm (one SPEAKER line per region, the label in the speaker field)."
    )
    skip_reasons: tuple[str, ...] = AUDIO_VOTE_SKIPS
    decision_thresholds = False  # the frame model's regions are cut at one score, not per class on val
    gold_gate_rate = "gold gate (matched regions / (gold regions + false regions), same label, IoU 0.5)"
    gold_gate_threshold = GOLD_SEGMENT_THRESHOLD
    gold_accuracy_name = "region gold score (matched / (gold + false regions), same label, IoU 0.5)"
    label_issue_model = SOURCE
    qa_view = SEGMENT_VIEW
    test_metric = evaluation.SEGMENT_F1
    trainer: KindTrainer | None = TRAINER

    # Label Studio.
    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        """``<Labels name="label">`` over the classes on an ``<Audio name="audio">`` (no region: submit none)."""
        return label_config(classes)

    def owns_config(self, config: str) -> bool:
        """A config with our ``<Labels name="label">`` on an ``<Audio>``."""
        return config_classes(config) is not None

    def read_answer(self, result: Any) -> Answer:
        return read_result(result)

    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any:
        return self.read_answer(result).label

    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The answer's regions drawn on the waveform (``[]`` for no region); None for what is no region answer."""
        return answer_result(answer)

    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Any:
        return audio_votes(annotations, classes)[0]

    # Gold.
    def parse_gold(self, text: str, classes: Sequence[str] | None, allow_empty: bool = True) -> tuple[Any, str | None]:
        """A gold file's entry: JSON ``[{"start": s, "end": s, "label": ...}, ...]`` (``[]``: no region)."""
        return parse_gold(text, classes)

    def valid_answers(self, stored_answers: pd.Series, classes: Sequence[str]) -> pd.Series:
        """The stored values that are region answers of the project ("no region" included), as stored answers."""
        keep = {item: stored(regions) for item, value in stored_answers.items()
                if (regions := answer_regions(value, classes)[0]) is not None}  # fmt: skip
        return pd.Series(keep, dtype=object)

    def is_answer(self, value: Any, classes: Sequence[str]) -> bool:
        return answer_regions(value, classes)[1] is None

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
        """(matched regions, gold + false regions) over the answers to gold items (:func:`.stats.gold_counts`)."""
        return gold_counts(labels, truth, classes)

    def gold_gate(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float
    ) -> tuple[Any, dict[str, Any]]:
        """(the gate on the region gold score, per label: the same score on that label's regions alone)."""
        return region_gold_gate(gold_counts, votes, truth, classes, threshold, "region gold score")

    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Each labeler's region gold score, and offsets, jitter, miss and false-region rates against gold."""
        scores = labeler_gold_scores(gold_counts, votes, truth, classes, names)
        return {"region_gold_score": scores, "gold_regions": Markdown(gold_table(votes, truth, classes, names)),
                "gold_gate": "audio segments: the gold gate judges matched regions / (gold regions + false regions)"}  # fmt: skip

    # Consensus, agreement, labeler statistics.
    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome:
        """Segment consensus (:func:`.consensus.aggregate_segments`) of the eligible votes on the items' audio
        (the frame's ``uri`` gives each duration); gold decides its items, and ours learns from them."""
        if method not in METHODS:
            raise ConsensusFailure(f"consensus method {method!r} is not an audio segment method; an audio_segments "
                                   f"project uses one of {', '.join(METHODS)}")  # fmt: skip
        _, votes = audio_votes(eligible, classes)
        items = by_item(votes)
        durations = item_durations(eligible, items)
        truth = self.valid_answers(gold, classes)
        gold_regions = {str(k): from_stored(v) or [] for k, v in truth.items() if str(k) in items}
        run = aggregate_segments(items, durations, classes, method, gold=gold_regions)
        pairwise = frame_agreement(items, durations, classes).per_item
        rows = [(item, stored(run.labels[item]), run.confidence[item], pairwise.get(item, 1.0), run.n_annotators[item])
                for item in sorted(run.labels)]  # fmt: skip
        labels = pd.DataFrame(rows, columns=["item_id", "label", "confidence", "agreement", "n_annotators"])
        notes = [f"{run.method} over {len(votes)} answers on {len(items)} items ({len(gold_regions)} gold)"]
        result = SegmentConsensusResult(labels, run, run.method, notes)
        no_bakeoff = "no bake-off: segment consensus has none (auto runs labeler_aware; gold decides its items)"
        return ConsensusOutcome(result, len(gold_regions), None, no_bakeoff)

    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> FleissKappa:
        """Not Fleiss' kappa: Krippendorff's alpha (nominal) over 10 ms frames, overall and per label, in its
        fields (:func:`.agreement.frame_agreement`)."""
        _, votes = audio_votes(eligible, classes)
        items = by_item(votes)
        found = frame_agreement(items, item_durations(eligible, items), classes)
        return FleissKappa(found.alpha, dict(found.per_class), found.observed, found.expected, found.n_items)

    def classes_of(self, answer: Any) -> list[str]:
        """The labels an answer has a region of, sorted (whatever its validity)."""
        if not isinstance(answer, list):
            return []
        return sorted({str(r["label"]) for r in answer if isinstance(r, Mapping) and "label" in r})

    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Agreement (frame alpha), regions and seconds per label, items without regions, each labeler's
        estimates (ours: offsets, jitter, miss and false-region rates, vote weight)."""
        run: SegmentRun = result.run
        agreement = self.agreement(eligible, classes)
        regions = [r for found in run.labels.values() for r in found]
        lines = ["| labeler | start offset | end offset | jitter | miss rate | false-region rate | weight |",
                 "|---|---|---|---|---|---|---|"]  # fmt: skip
        for labeler, s in sorted(run.labelers.items(), key=lambda x: names.get(str(x[0]), str(x[0]))):
            lines.append(f"| {md_text(names.get(str(labeler), labeler))} | {s.start_offset:+.3f} s | {s.end_offset:+.3f} s "
                         f"| {s.jitter:.3f} s | {s.miss_rate:.3f} | {s.false_rate:.3f} | {s.weight:.2f} |")  # fmt: skip
        confidence = list(run.confidence.values())
        return {
            "task_type": self.name,
            "method": run.method,
            "frame_alpha": _finite(agreement.kappa),
            "frame_alpha_per_label": {str(k): _finite(v) for k, v in agreement.per_class.items()},
            "regions_per_label": {str(c): sum(r.label == str(c) for r in regions) for c in classes},
            "seconds_per_label": {str(c): round(sum(r.duration for r in regions if r.label == str(c)), 3) for c in classes},
            # the consensus run's bar chart counts items: the items with at least one region of each label
            "class_distribution": {str(c): sum(any(r.label == str(c) for r in f) for f in run.labels.values())
                                   for c in classes},  # fmt: skip
            "items_without_regions": sum(1 for found in run.labels.values() if not found),
            "mean_item_confidence": _finite(float(np.mean(confidence))) if confidence else None,
            "labeler_quality": Markdown("\n".join(lines)) if run.labelers else "no estimates (frame majority ran)",
        }

    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> QualityInputs:
        """Region answers throughout; a label's population share is the share of consensus answers marking it."""
        return per_class_quality_inputs(self, votes, gold, adjudicated, consensus, classes)

    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> LabelerStats:
        return segment_labeler_window(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus)

    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[LabelerStats]:
        return weekly_trend(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus,
                            last_weeks=last_weeks, stats=segment_labeler_window)  # fmt: skip

    # Label issues: an out-of-sample frame model's regions, else the consensus confidence (:mod:`.label_issues`).
    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        """Per item its consensus confidence and the newest pre-label of a model that did not train on it."""
        frame = consensus_frame(store)
        confidence = dict(zip(frame["item_id"].astype(str), frame["confidence"], strict=True))
        models = out_of_sample_prelabels(store, item_ids)
        features = [{"confidence": confidence.get(i), "model": models[i][0] if i in models else None} for i in item_ids]
        return features, f"{SOURCE} ({len(models)} of {len(item_ids)} items have a model output)"

    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]:
        if features is None:
            features = [{} for _ in item_ids]
        return segment_label_issues(item_ids, labels, features, classes)

    # Datasets.
    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        """The consensus rows that are region answers of the project; the others counted by the vote rule's reason."""
        return usable_rows(frame, lambda value: answer_regions(value, classes or [])[1],
                           "an audio segment answer of the project", excluded)  # fmt: skip

    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str:
        """The multi-label card over the labels each item has a region of (prevalence per label and split)."""
        card: CardInputs = inputs
        return render_label_set_card(dataclasses.replace(card, manifest=presence_manifest(card.manifest)),
                                     with_plot=with_plot)  # fmt: skip

    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]:
        """(labelers, annotations, no kappa: segment agreement is a frame alpha) over a version's region answers."""
        if annotations.empty:
            return 0, 0, None
        answers = annotations.loc[annotations["label"].map(lambda v: isinstance(v, list)).astype(bool)]
        return int(answers["labeler_id"].nunique()), len(answers), None

    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]:
        return "class_weights", multi_core.label_imbalance_ratio(presence_manifest(manifest), classes)

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """JSONL and RTTM per split (:func:`.export.export_segments`) of the stored audio (``rows.image_path``)."""
        records = [SegmentRecord(str(item), str(path), audio_duration(str(path)), tuple(from_stored(label) or ()),
                                 str(split))
                   for item, path, label, split in zip(rows["item_id"], rows["image_path"], rows["label"], rows["split"],
                                                       strict=True)]  # fmt: skip
        written = export_segments(records, classes, Path(out_dir), formats)
        # As the dataset_export asset reads an export: one path per file (per format and split).
        paths = {name.replace(".", "_"): Path(out_dir) / name for files in written.files.values() for name in files}
        return ExportReport(out_dir=Path(out_dir), paths=paths)

    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
        return multi_core.prevalence_deviations(presence_manifest(manifest), classes, tolerance)

    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        missing = multi_core.labels_missing_from_splits(presence_manifest(manifest), classes, split_core.SPLITS)
        return missing[missing["positives"] >= multi_core.MIN_POSITIVES_FOR_ALL_SPLITS]

    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """Nothing: no per-label threshold is chosen on val."""
        return pd.DataFrame(columns=["label", "split", "positives"])

    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series,
        ratios: split_core.SplitRatios, seed: int,
    ) -> split_core.SplitAssignment:
        """Iterative stratification on the labels each item has a region of, groups (``group_key``: the recording
        or speaker) kept whole; the frame's ``label`` is the stored answer again."""
        answers = dict(zip(rows["item_id"].astype(str), rows["label"], strict=True))
        items = pd.DataFrame({"item_id": list(answers), "label": list(labels_present(pd.Series(list(answers.values()),
                                                                                              dtype=object)))})  # fmt: skip
        if "group_key" in rows:
            groups = dict(zip(rows["item_id"].astype(str), rows["group_key"], strict=True))
            items["group_key"] = [groups[i] for i in items["item_id"]]
        assignment = multi_core.assign_label_set_splits(
            items, [str(c) for c in classes], existing={str(k): str(v) for k, v in existing.items()}, ratios=ratios,
            seed=seed)  # fmt: skip
        frame = assignment.frame.assign(labels_present=assignment.frame["label"])
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
            "label": rows["label"].tolist(), "labels_present": presence_manifest(rows)["label"].tolist(),
            "split": rows["split"].astype(str).tolist(),
        }  # fmt: skip
        return split_core.manifest_version(canonical), {}, document

    # Pre-labels and active learning: the frame model's (``prelabels.py``).
    def prediction(
        self, probs: Mapping[str, Any], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        return prelabels.prediction(probs, model_version, allow_empty=allow_empty, thresholds=thresholds)

    def informativeness(self, probs: Mapping[str, Any] | None, strategy: str) -> float:
        return prelabels.informativeness(probs, strategy)

    def review_model_line(self, probs: Mapping[str, Any] | None, model_version: str | None) -> str | None:
        return prelabels.review_model_line(probs, model_version)

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        return prelabels.fit_baseline(store, classes, size)

    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]:
        return prelabels.prediction_report(probs, classes, thresholds)

    # Evaluation on the frozen test split (``evaluation.py``).
    def test_scoring(self, store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int) -> Any:
        return evaluation.test_scoring(store, item_ids, answers, classes, min_gold)

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        return evaluation.test_score(probs, truth, thresholds)

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        return evaluation.test_report(answers, probs, failed, classes, thresholds, model=model, ece_bins=ece_bins)

    # Training: the kind's own trainer (``trainer.py``), no training head.
    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> Any:
        """The answers as they are (an object array: the truth :meth:`test_score` reads)."""
        return evaluation.encode_answers(answers)

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> Any:
        """None: the frame model trains on the consensus regions (no soft targets)."""
        return None

    def training_head(self) -> TrainingHead:
        raise NotImplementedError("audio segments train a frame classifier through the kind's trainer (KIND.trainer), "
                                  "not the image classifier's training head")  # fmt: skip


__all__ = ["KIND", "AudioSegmentsKind", "SegmentConsensusResult"]

KIND = AudioSegmentsKind()
