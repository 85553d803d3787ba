"""A text a person corrects (``text_edits``): the ``TaskKind`` parts over this package and ``core/speech``.

A stored answer is the corrected text (a string, as typed; comparisons read its words). An item is a stored edit
document (``items.py``): the machine transcript or translation, the source sentence and the audio. The project's
classes mean nothing here: an answer names none. What this kind calls ``probs`` (pre-labels, the queue's score,
the review line) is the correction model's output for one item, ``{"text", "machine", "words": [{"word", "from",
"confidence"}]}`` (``trainer.py``); :func:`machine_probs` is the pre-label without a model: the machine output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.adjudication import truth_for_stats
from labeling_assets.core.consensus.agreement import FleissKappa
from labeling_assets.core.consensus.gates import gate
from labeling_assets.core.consensus.label_issues import LabelIssues
from labeling_assets.core.consensus.labeler_stats import LabelerStats, weekly_trend
from labeling_assets.core.consensus.leaderboard import QualityInputs
from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.card import CardInputs, closing_sections, sizes_section
from labeling_assets.core.dataset.export import ExportReport
from labeling_assets.core.labelstudio.answers import Answer
from labeling_assets.core.speech.text_consensus import word_errors
from labeling_assets.core.store.queries import gold_labels
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
from labeling_assets.core.tasks.text_edits import answers as edit_answers
from labeling_assets.core.tasks.text_edits.answers import (
    CONFIG,
    EDIT_VOTE_SKIPS,
    edit_votes,
    normal,
    read_result,
    result_of,
    skip_reason,
    valid_texts,
    word_counts,
    words,
)
from labeling_assets.core.tasks.text_edits.consensus import METHODS, EditConsensusResult, aggregate_edits
from labeling_assets.core.tasks.text_edits.evaluation import (
    WORD_ACCURACY,
    edit_test_report,
    encode_texts,
    word_accuracy,
)
from labeling_assets.core.tasks.text_edits.export import EXPORT_FORMATS, EditRecord, export_edits
from labeling_assets.core.tasks.text_edits.items import machine_texts, read_item
from labeling_assets.core.tasks.text_edits.qa import EDIT_VIEW, LENGTH_BANDS, bands, period_agreement
from labeling_assets.core.tasks.text_edits.stats import edit_labeler_window, wer_against, wer_table
from labeling_assets.core.tasks.text_edits.trainer import TRAINER
from labeling_assets.core.training import promotion

# The gold gate: a labeler is paused when the 95% Wilson interval of their 1 - WER on gold (reference words right)
# lies wholly under 0.9. On 30 gold texts over 20 seeds (benchmarks/text_edits_gold_gate.py) careful correctors
# score 0.96 on average and 0.9 paused none of 60; a labeler submitting the machine output unchanged (0.77) and a
# spammer (0.18) were paused in every seed; 0.8 let the lazy one through in 65% of seeds, 0.95 paused 5% of careful.
GOLD_WORD_THRESHOLD = 0.9
UNSURE = 0.5  # a word the model gives with less confidence than this counts as unsure (review line)
STRATUM = "text"  # the one stratification key of splits: groups (recordings) are what keep splits apart


MACHINE_VERSION = "machine-output"  # the model version of the pre-label an item has before a model pre-labels it


def machine_probs(machine: str) -> dict[str, Any]:
    """The pre-label of an item when there is no model: the machine output itself (no word scored)."""
    return {"text": normal(machine), "machine": machine, "words": []}


def _confidences(probs: Mapping[str, Any] | None) -> list[float]:
    return [float(w.get("confidence", 1.0)) for w in (probs or {}).get("words") or [] if isinstance(w, Mapping)]


class TextEditsKind:
    """A machine transcript or translation corrected by a person."""

    name = "text_edits"
    consensus_methods: tuple[str, ...] = METHODS
    export_formats: tuple[str, ...] = EXPORT_FORMATS
    export_note = ("a corrected text is no image or span: export jsonl (machine, corrected text, source, audio path, "
                   "split, wer_before) or hf_datasets (a DatasetDict with an Audio column) instead.")  # fmt: skip
    skip_reasons: tuple[str, ...] = EDIT_VOTE_SKIPS
    decision_thresholds = False
    gold_gate_rate = "gold gate (1 - WER against the gold text, pooled over gold words)"
    gold_gate_threshold = GOLD_WORD_THRESHOLD
    gold_accuracy_name = "1 - WER against gold (words right / gold words)"
    label_issue_model = "consensus confidence and the correction model's disagreement with the consensus"
    qa_view = EDIT_VIEW
    test_metric = WORD_ACCURACY
    trainer: KindTrainer | None = TRAINER
    reads_item_uris = True  # load_quality_inputs adds each vote's item uri: unchanged answers need the machine text

    # Label Studio.
    def unscored_prelabel(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
        """(probs, model version) of a task without a model's pre-label (``data``: its task data): the machine
        output pre-fills the text area (``labelstudio.tasks.build_payloads`` asks every kind that has this)."""
        machine = data.get("machine")
        return (machine_probs(machine), MACHINE_VERSION) if isinstance(machine, str) and machine else None

    def label_config(self, classes: Sequence[str], allow_empty: bool = True) -> str:
        """Audio, source, machine output and the ``edit`` text area (:data:`.answers.CONFIG`); no classes."""
        return CONFIG

    def owns_config(self, config: str) -> bool:
        return edit_answers.owns(config)

    def read_answer(self, result: Any) -> Answer:
        return read_result(result)

    def answer_from_result(self, result: Sequence[Mapping[str, Any]] | None) -> Any:
        return self.read_answer(result).label

    def answer_result(self, answer: Any, media: ItemMedia) -> list[dict[str, Any]] | None:
        """The text in the ``edit`` text area; None for what is no text."""
        return result_of(answer) if isinstance(answer, str) else None

    def votes(
        self, annotations: pd.DataFrame, classes: Sequence[str], allow_empty: bool = True, *,
        allow_overlap: bool = False,
    ) -> Any:
        return edit_votes(annotations)

    # Gold.
    def parse_gold(self, text: str, classes: Sequence[str] | None, allow_empty: bool = True) -> tuple[Any, str | None]:
        """A gold entry is the corrected text itself (whitespace normalised); no class list applies."""
        if not isinstance(text, str):
            return text, "a text edit's gold entry is the corrected text"
        if text.lstrip().startswith("{"):
            return text, "a JSON object, not the corrected text"
        return normal(text), None

    def valid_answers(self, stored: pd.Series, classes: Sequence[str]) -> pd.Series:
        return valid_texts(stored)

    def is_answer(self, value: Any, classes: Sequence[str]) -> bool:
        return skip_reason(value) is None

    def gold_score(self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
        """(gold words right, gold words): 1 - WER pooled over the answers to gold items (each item floored at 0)."""
        return word_counts(labels, dict(truth.items()))

    def gold_gate(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float
    ) -> tuple[Any, dict[str, Any]]:
        return gate(*word_counts(votes, dict(truth.items())), threshold, what="1 - WER on gold"), {}

    def gold_report(
        self, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Each labeler's WER against gold with its 95% bootstrap interval."""
        mine = votes[votes["labeler_id"].astype(str).isin(set(names))]
        found = wer_against(mine, truth)
        return {"gold_wer": {names[k]: round(v.wer, 4) for k, v in found.items() if k in names},
                "gold_wer_table": Markdown(wer_table(found, names, {}, "gold")),
                "gold_gate": "text edits: the gold gate judges 1 - WER against the gold text"}  # fmt: skip

    # Consensus, agreement, labeler statistics.
    def consensus(
        self, eligible: pd.DataFrame, method: str, classes: Sequence[str], gold: pd.Series, *,
        pred_probs: pd.DataFrame | None = None, thresholds: Mapping[str, float] | None = None,
        allow_empty: bool = True, allow_overlap: bool = False,
    ) -> ConsensusOutcome:
        """Ours or ROVER (:func:`.consensus.aggregate_edits`) over the eligible votes, the machine output read from
        each item's stored document (the frame's ``uri``); gold decides its items."""
        if method not in METHODS:
            raise ConsensusFailure(f"consensus method {method!r} is not a text edit method; a text_edits project "
                                   f"uses one of {', '.join(METHODS)}")  # fmt: skip
        votes = edit_votes(eligible).frame
        machine = machine_texts(zip(eligible["item_id"].astype(str), eligible["uri"], strict=True)) if "uri" in eligible else {}
        voted = set(votes["item_id"].astype(str))
        truth = {str(k): str(v) for k, v in valid_texts(gold).items() if str(k) in voted}
        result = aggregate_edits(votes, machine, method, truth)
        no_bakeoff = "no bake-off: text edit consensus has none (auto runs labeler_aware_rover; gold decides its items)"
        return ConsensusOutcome(result, len(truth), None, no_bakeoff)

    def agreement(self, eligible: pd.DataFrame, classes: Sequence[str]) -> FleissKappa:
        """Not a kappa: mean over items of the mean pairwise 1 - WER of their answers, in its fields."""
        value = period_agreement(eligible, classes)
        n = int((edit_votes(eligible).frame.groupby("item_id").size() > 1).sum()) if len(eligible) else 0
        nan = float("nan")
        return FleissKappa(nan if value is None else value, {}, nan, nan, n)

    def classes_of(self, answer: Any) -> list[str]:
        return []

    def consensus_report(
        self, result: Any, eligible: pd.DataFrame, classes: Sequence[str], names: Mapping[str, str]
    ) -> dict[str, Any]:
        """Agreement, each labeler's WER against the consensus with its interval and unchanged answers, the
        machine output's share right, and ours' estimates."""
        run: EditConsensusResult = result
        votes = edit_votes(eligible).frame
        consensus = pd.Series(dict(zip(run.labels["item_id"], run.labels["label"], strict=True)), dtype=object)
        table = wer_table(wer_against(votes, consensus), names, run.unchanged, "consensus")
        estimates = "no estimates (rover ran)"
        if run.run is not None:
            lines = ["| labeler | error rate | vote weight | unchanged rate | lazy |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {names.get(k, k)} | {s.error:.4f} | {s.weight:.3f} | {s.unchanged_rate:.3f} | {s.lazy:.3f} |"
                      for k, s in sorted(run.run.labelers.items())]  # fmt: skip
            estimates = Markdown("\n".join(lines))
        agreement = self.agreement(eligible, classes)
        return {
            "task_type": self.name, "method": run.method,
            "mean_pairwise_word_agreement": None if np.isnan(agreement.kappa) else round(float(agreement.kappa), 4),
            "machine_output_right": None if run.machine_right is None else round(run.machine_right, 4),
            "unchanged_answers": {names.get(k, k): f"{s}/{n}" for k, (s, n) in sorted(run.unchanged.items())},
            # No classes: the consensus texts by length (what the run's distribution plot draws).
            "class_distribution": {band: int((bands(run.labels["label"]) == band).sum()) for _, band in LENGTH_BANDS},
            "labeler_wer_vs_consensus": Markdown(table), "labeler_quality": estimates,
        }  # fmt: skip

    def quality_inputs(
        self, votes: pd.DataFrame, gold: pd.Series, adjudicated: pd.Series, consensus: pd.Series,
        classes: Sequence[str],
    ) -> QualityInputs:
        """Text answers throughout (gold wins over adjudicated as truth); no class shares."""
        truth = truth_for_stats(valid_texts(gold), valid_texts(adjudicated))
        return QualityInputs(votes, truth, valid_texts(consensus), {})

    def labeler_stats(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, population_shares: Mapping[str, float],
    ) -> LabelerStats:
        return edit_labeler_window(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus)

    def weekly_trend(
        self, votes: pd.DataFrame, *, labeler_id: str, classes: Sequence[str], gold: pd.Series,
        consensus: pd.Series, last_weeks: int,
    ) -> list[LabelerStats]:
        return weekly_trend(votes, labeler_id=labeler_id, classes=classes, gold=gold, consensus=consensus,
                            last_weeks=last_weeks, stats=edit_labeler_window)  # fmt: skip

    # Label issues: low consensus confidence, and the correction model's disagreement with the consensus.
    def label_issue_inputs(
        self, store: Any, item_ids: list[str], uris: list[str], *, feature_size: int, n_folds: int
    ) -> tuple[Any, str]:
        """Each item's machine output (what the model's disagreement is measured from)."""
        return machine_texts(zip(item_ids, uris, strict=True)), "each item's machine output and the consensus"

    def find_label_issues(
        self, item_ids: list[str], labels: list[Any], features: Any, classes: list[str], n_folds: int
    ) -> tuple[Any, float]:
        """An item whose consensus text is far from its machine output while the machine is mostly right elsewhere
        is worth a look: quality = 1 - its WER of the machine output against the consensus, scaled by how often the
        machine output stands (an item the machine got wholly wrong in a project where it is usually right is the
        least likely consensus). Returns (issues under 0.5, the share of items whose consensus is the machine output)."""
        machine: Mapping[str, str] = features or {}
        rows, quality = [], {}
        known = [(i, str(a)) for i, a in zip(item_ids, labels, strict=True) if i in machine and isinstance(a, str)]
        if not known:
            empty = pd.DataFrame(columns=["item_id", "given_label", "suggested_label", "label_quality",
                                          "suggested_probability"])  # fmt: skip
            return LabelIssues(empty, pd.Series(dtype=float), ["no item's machine output could be read"]), float("nan")
        stands = float(np.mean([words(a) == words(machine[i]) for i, a in known]))
        for item, answer in known:
            errors = word_errors(words(answer), words(machine[item]))
            distance = min(errors / max(len(words(answer)), 1), 1.0)
            quality[item] = 1.0 - distance * stands
            if quality[item] < 0.5:
                rows.append((item, answer, normal(machine[item]), quality[item], stands))
        issues = pd.DataFrame(rows, columns=["item_id", "given_label", "suggested_label", "label_quality",
                                             "suggested_probability"]).sort_values("label_quality")  # fmt: skip
        return LabelIssues(issues.reset_index(drop=True), pd.Series(quality, dtype=float), []), stands

    # Datasets.
    def usable_labels(
        self, frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
    ) -> tuple[pd.DataFrame, dict[str, int]]:
        return usable_rows(frame, skip_reason, "a text", excluded)

    def dataset_card(self, inputs: Any, *, with_plot: bool = True) -> str:
        """Sizes and words per split, agreement, how the model's metric reads; the shared closing sections."""
        card: CardInputs = inputs
        manifest = card.manifest
        sizes = {s: int((manifest["split"].astype(str) == s).sum()) for s in split_core.SPLITS}
        lengths = manifest["label"].map(lambda a: len(words(a)) if isinstance(a, str) else 0)
        lines = [f"# Dataset card: {card.name}", "", f"- **Version**: `{card.version}`",
                 f"- **Previous version**: `{card.previous_version}`" if card.previous_version else "- **Previous version**: none",
                 f"- **Items**: {len(manifest)} corrected texts ({card.n_new_items} newly assigned)",
                 "- **Splits** are grouped by recording (or the sidecar's group): one recording never spans two",
                 *sizes_section(sizes, len(manifest)), "", "## Words per split", "", "| split | words | mean per item |",
                 "|---|---:|---:|"]  # fmt: skip
        for split in split_core.SPLITS:
            part = lengths[manifest["split"].astype(str) == split]
            lines.append(f"| {split} | {int(part.sum())} | {part.mean():.1f} |" if len(part) else f"| {split} | 0 | - |")
        agreement = (f"mean pairwise 1 - WER {card.mean_agreement if card.mean_agreement is not None else 'n/a'}, "
                     f"mean consensus confidence {card.mean_confidence if card.mean_confidence is not None else 'n/a'}")  # fmt: skip
        imbalance = ["- No classes: the texts are not rebalanced."]
        limits = ["The corrected text is the crowd's consensus (labeler-aware ROVER), not a verified transcript, "
                  "except on gold items.", *card.notes]  # fmt: skip
        return "\n".join([*lines, "", *closing_sections(card, imbalance, agreement, limits)]) + "\n"

    def annotation_summary(self, annotations: pd.DataFrame) -> tuple[int, int, float | None]:
        if annotations.empty:
            return 0, 0, None
        answers = annotations.loc[annotations["label"].map(lambda v: isinstance(v, str)).astype(bool)]
        return int(answers["labeler_id"].nunique()), len(answers), None

    def split_balance(self, manifest: pd.DataFrame, classes: Sequence[str]) -> tuple[str, float]:
        return "none (no classes)", 1.0

    def export(self, rows: pd.DataFrame, out_dir: Any, formats: list[str], classes: list[str]) -> Any:
        """JSONL and a ``DatasetDict`` (:func:`.export.export_edits`) of the stored items (``rows.image_path``)."""
        records = []
        for item, path, label, split in zip(rows["item_id"], rows["image_path"], rows["label"], rows["split"], strict=True):
            try:
                stored = read_item(str(path))
            except (OSError, ValueError) as exc:
                raise ValueError(f"item {item}: its stored edit document {path} cannot be read ({exc})") from None
            records.append(EditRecord(str(item), stored.machine, str(label), stored.source, stored.audio_uri, str(split)))
        paths = export_edits(records, Path(out_dir), formats)
        return ExportReport(out_dir=Path(out_dir), paths=paths)

    def split_deviations(self, manifest: pd.DataFrame, classes: Sequence[str], tolerance: float) -> pd.DataFrame:
        """Per split, its mean words per item against the whole version's (relative): a split of much shorter or
        longer texts scores a model on different material."""
        lengths = manifest["label"].map(lambda a: len(words(a)) if isinstance(a, str) else 0).astype(float)
        overall = float(lengths.mean()) if len(lengths) else 0.0
        rows = []
        for split in split_core.SPLITS:
            part = lengths[manifest["split"].astype(str) == split]
            if len(part) and overall > 0:
                deviation = abs(float(part.mean()) / overall - 1.0)
                rows.append({"split": split, "label": "words per item", "prevalence": float(part.mean()),
                             "overall": overall, "deviation": deviation, "ok": deviation <= tolerance + 1 / len(part)})  # fmt: skip
        return pd.DataFrame(rows, columns=["split", "label", "prevalence", "overall", "deviation", "ok"])

    def missing_from_splits(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        """The splits that hold no item at all (``label`` "items")."""
        held = set(manifest["split"].astype(str))
        rows = [{"label": "items", "split": s, "positives": 0} for s in ("val", "test") if s not in held and len(manifest)]
        return pd.DataFrame(rows, columns=["label", "split", "positives"])

    def missing_for_thresholds(self, manifest: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame(columns=["label", "split", "positives"])

    def assign_splits(
        self, rows: pd.DataFrame, classes: Sequence[str], *, existing: pd.Series,
        ratios: split_core.SplitRatios, seed: int,
    ) -> split_core.SplitAssignment:
        """Grouped splits (``group_key``: the recording or sidecar group, so a recording never spans two splits),
        one stratum; the frame's ``label`` is the stored answer again."""
        answers = dict(zip(rows["item_id"].astype(str), rows["label"], strict=True))
        items = pd.DataFrame({"item_id": rows["item_id"].astype(str), "label": STRATUM})
        if "group_key" in rows:
            items["group_key"] = rows["group_key"].to_numpy()
        assignment = split_core.assign_splits(items, existing={str(k): str(v) for k, v in existing.items()},
                                              ratios=ratios, seed=seed)  # fmt: skip
        frame = assignment.frame.copy()
        frame["label"] = pd.Series([answers[str(i)] for i in frame["item_id"]], index=frame.index, dtype=object)
        return split_core.SplitAssignment(frame, assignment.notes)

    def manifest(
        self, manifest: pd.DataFrame, classes: Sequence[str], *, previous_version: str | None,
        extra: Mapping[str, Any],
    ) -> tuple[str, dict[str, float], dict[str, Any]]:
        """(version: the hash over each item's text and split, no class weights, the manifest JSON)."""
        rows = manifest.sort_values("item_id", kind="stable")
        document = {"format": split_core.MANIFEST_FORMAT, "previous_version": previous_version, **extra,
                    "task_type": self.name, "classes": [], "item_id": rows["item_id"].astype(str).tolist(),
                    "label": [str(v) for v in rows["label"]], "split": rows["split"].astype(str).tolist()}  # fmt: skip
        return split_core.manifest_version(manifest.assign(label=manifest["label"].astype(str))), {}, document

    # Pre-labels and active learning: ``probs`` is the correction model's output (module docstring).
    def prediction(
        self, probs: Mapping[str, Any], model_version: str | None, *, allow_empty: bool = True,
        thresholds: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """The corrected text in the text area; the score is the mean word confidence (1 without scored words)."""
        scores = _confidences(probs)
        return {"model_version": model_version or "unknown", "score": float(np.mean(scores)) if scores else 1.0,
                "result": result_of(str(probs.get("text") or ""))}  # fmt: skip

    def informativeness(self, probs: Mapping[str, Any] | None, strategy: str) -> float:
        """Every strategy but ``random``: 1 - the mean confidence of the model's words (the machine's estimated
        word error rate after correction); 1.0 without a scored word."""
        scores = _confidences(probs)
        if not probs or strategy == "random" or not scores:
            return 1.0
        return float(min(max(1.0 - float(np.mean(scores)), 0.0), 1.0))

    def review_model_line(self, probs: Mapping[str, Any] | None, model_version: str | None) -> str | None:
        if not probs:
            return "model: no prediction"
        details = [w for w in probs.get("words") or [] if isinstance(w, Mapping)]
        changed = sum(w.get("word") != w.get("from") for w in details)
        unsure = sum(float(w.get("confidence", 1.0)) < UNSURE for w in details)
        return (f"model {model_version or 'unknown'}: {str(probs.get('text') or '')!r} ({changed} words changed, "
                f"{unsure} unsure)")  # fmt: skip

    def fit_baseline(self, store: Any, classes: list[str], size: int) -> tuple[Any, str]:
        return None, "no baseline for text edits: the pre-label is the machine output until a correction model is trained"

    def prediction_report(self, probs: Any, classes: list[str], thresholds: list[float] | None) -> dict[str, Any]:
        outputs = [o for o in list(probs) if o]
        if not outputs:
            return {}
        changed = [words(o.get("text") or "") != words(o.get("machine", o.get("text")) or "") for o in outputs]
        return {"items_changed_by_model": int(sum(changed)), "share_changed": round(float(np.mean(changed)), 4),
                "mean_informativeness": round(float(np.mean([self.informativeness(o, "uncertainty") for o in outputs])), 4)}  # fmt: skip

    # Evaluation on the test split.
    def test_scoring(
        self, store: Any, item_ids: list[str], answers: Any, classes: list[str], min_gold: int
    ) -> promotion.ScoringSet:
        """The gold texts of the gold test items when there are at least ``min_gold``, else the consensus."""
        stored = valid_texts(gold_labels(store, item_ids))
        return promotion.answer_scoring_set(item_ids, stored, encode_texts, np.asarray(answers), min_gold)

    def test_score(self, probs: Any, truth: Any, thresholds: list[float] | None) -> float:
        """Word accuracy (1 - WER) of the corrected texts against the reference."""
        return word_accuracy(list(probs), list(truth))

    def test_report(
        self, answers: Any, probs: Any, failed: list[int], classes: list[str], thresholds: list[float] | None,
        *, model: str, ece_bins: int,
    ) -> TestSplitReport:
        return edit_test_report(answers, probs, failed, model=model)

    # Training: the kind's own trainer (``trainer.py``), no training head.
    def encode(self, answers: Sequence[Any], classes: Sequence[str]) -> Any:
        return encode_texts(answers)

    def stored_targets(self, store: Any, item_ids: list[str], labels: Any, classes: list[str]) -> Any:
        return None

    def training_head(self) -> TrainingHead:
        raise NotImplementedError("text edits learn word correction rules through the kind's trainer (KIND.trainer), "
                                  "not the image classifier's training head")  # fmt: skip


KIND = TextEditsKind()
