"""The kind's model: word correction rules learnt from (machine output, consensus text) pairs. A ``KindTrainer``.

Each train item's machine words are aligned to its consensus words by edit distance
(``core.speech.text_consensus.align``). A machine word ``m`` seen at least ``min_count`` times becomes a rule
``m -> c`` (``c`` another word, or nothing: a deletion) when ``c`` is what the consensus has in its place at least
``min_precision`` of the time; then each rule is checked on val: it is dropped when, on val, the machine word was
right more often than the rule's replacement (a rule val never sees is kept). A systematic machine error (one word
always misheard as another, a filler always inserted) is what it learns; a one-off typo is not.

Its output for an item (what the kind calls ``probs``): ``{"text": corrected, "machine": machine, "words":
[{"word", "from", "confidence"}]}``; a word's confidence is the smoothed share of train occurrences of its machine
word whose consensus was what the model gives ((right + 1) / (seen + 2)), for a word never seen on train the share
of train machine words that were right. Saved as a torch-only checkpoint of plain dicts, lists, strings and numbers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labeling_assets.core.speech.text_consensus import align
from labeling_assets.core.speech.text_metrics import wer
from labeling_assets.core.tasks.kind import EpochReport, FittedModel, TrainerSettingsError
from labeling_assets.core.tasks.text_edits.answers import skip_reason, words
from labeling_assets.core.tasks.text_edits.items import read_items

FORMAT = "labeling-assets/text-edits-word-rules/v1"
DELETE = ""  # a rule's replacement when the word is deleted


@dataclass(frozen=True)
class CorrectionRules:
    """``rules``: machine word -> (replacement, times right, times seen); ``seen``: machine word -> (times kept
    right, times seen); ``prior``: the share of train machine words that were right."""

    rules: dict[str, tuple[str, int, int]]
    seen: dict[str, tuple[int, int]]
    prior: float

    def correct(self, machine: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
        """(the corrected words, per machine word what the model gives and its confidence)."""
        out: list[str] = []
        detail: list[dict[str, Any]] = []
        for word in machine:
            if word in self.rules:
                given, right, n = self.rules[word]
            elif word in self.seen:
                (right, n), given = self.seen[word], word
            else:
                given, right, n = word, -1, -1
            confidence = self.prior if n < 0 else (right + 1) / (n + 2)
            if given != DELETE:
                out.append(given)
            detail.append({"word": given, "from": word, "confidence": round(float(confidence), 6)})
        return out, detail


def _pairs(frame: pd.DataFrame) -> list[tuple[list[str], list[str]]]:
    """(machine words, consensus words) of the rows whose item reads and whose label is text."""
    items, _ = read_items(frame["uri"].astype(str).tolist()) if len(frame) else ([], [])
    return [(words(item.machine), words(str(label))) for item, label in zip(items, frame["label"], strict=True)
            if item is not None and skip_reason(label) is None]  # fmt: skip


def _counts(pairs: Sequence[tuple[list[str], list[str]]]) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for machine, target in pairs:
        for m, c in align(machine, target):
            if m is not None:
                found.setdefault(m, Counter())[c if c is not None else DELETE] += 1
    return found


def learn(train: Sequence[tuple[list[str], list[str]]], val: Sequence[tuple[list[str], list[str]]],
          min_count: int, min_precision: float) -> CorrectionRules:  # fmt: skip
    """The rules of the module docstring."""
    counts = _counts(train)
    rules: dict[str, tuple[str, int, int]] = {}
    seen: dict[str, tuple[int, int]] = {}
    for m, targets in counts.items():
        n = sum(targets.values())
        seen[m] = (targets.get(m, 0), n)
        best, right = max(((c, k) for c, k in targets.items() if c != m), key=lambda x: (x[1], x[0]), default=("", 0))
        if n >= min_count and right / n >= min_precision:
            rules[m] = (best, right, n)
    checked = _counts(val)
    for m, (given, _, _) in list(rules.items()):
        on_val = checked.get(m)
        if on_val and on_val.get(m, 0) > on_val.get(given, 0):
            del rules[m]
    total = sum(seen_n for _, seen_n in seen.values())
    prior = sum(r for r, _ in seen.values()) / total if total else 0.5
    return CorrectionRules(rules, seen, prior)


def _wers(model: CorrectionRules, pairs: Sequence[tuple[list[str], list[str]]], split: str) -> dict[str, float]:
    if not pairs:
        return {}
    refs = [t for _, t in pairs]
    return {f"{split}_wer_before": wer(refs, [m for m, _ in pairs]),
            f"{split}_wer_after": wer(refs, [model.correct(m)[0] for m, _ in pairs])}  # fmt: skip


class WordRuleTrainer:
    """Fits word correction rules on a dataset version's rows (``uri`` of the stored edit item, ``label`` the
    consensus text)."""

    model_name = "word_correction_rules"

    def default_settings(self) -> dict[str, Any]:
        return {"min_count": 2, "min_precision": 0.6}

    def _settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(self.default_settings()))
        if unknown:
            raise TrainerSettingsError(f"unknown setting {unknown[0]}; this trainer has {sorted(self.default_settings())}")
        chosen = {**self.default_settings(), **settings}
        if int(chosen["min_count"]) < 1 or not 0.5 <= float(chosen["min_precision"]) <= 1.0:
            raise TrainerSettingsError(f"min_count must be at least 1 and min_precision in [0.5, 1], got {chosen}")
        return chosen

    def fit(
        self, train: pd.DataFrame, val: pd.DataFrame, classes: Sequence[str], settings: Mapping[str, Any], *,
        log: Callable[[str], None] | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
    ) -> FittedModel:
        """One pass (reported as epoch 1): count, keep the rules, check them on val."""
        chosen = self._settings(settings)
        train_pairs, val_pairs = _pairs(train), _pairs(val)
        if not train_pairs:
            raise ValueError("no readable edit item with a text answer in the train split")
        model = learn(train_pairs, val_pairs, int(chosen["min_count"]), float(chosen["min_precision"]))
        metrics = {"rules": float(len(model.rules)), **_wers(model, train_pairs, "train"),
                   **_wers(model, val_pairs, "val")}  # fmt: skip
        report = EpochReport(1, metrics)
        if on_epoch:
            on_epoch(report)
        fitted = FittedModel(model, [str(c) for c in classes], chosen, {"best_epoch": 1.0, **{
            f"best_{k}": v for k, v in metrics.items()}}, [report])  # fmt: skip
        if log:
            log(f"{self.model_name}: {len(train_pairs)} train items, {len(model.rules)} rules: {metrics}")
        return fitted

    def save(self, fitted: FittedModel, path: Path) -> None:
        import torch

        model: CorrectionRules = fitted.model
        torch.save({
            "format": FORMAT, "classes": list(fitted.classes), "settings": dict(fitted.settings),
            "metrics": dict(fitted.metrics), "history": [{"epoch": e.epoch, "metrics": e.metrics} for e in fitted.history],
            "rules": {m: [c, right, n] for m, (c, right, n) in model.rules.items()},
            "seen": {m: [right, n] for m, (right, n) in model.seen.items()}, "prior": float(model.prior),
        }, path)  # fmt: skip

    def load(self, path: Path, device: str = "cpu") -> FittedModel:
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {self.model_name} checkpoint ({saved.get('format')!r})")
        model = CorrectionRules({m: (str(c), int(r), int(n)) for m, (c, r, n) in saved["rules"].items()},
                                {m: (int(r), int(n)) for m, (r, n) in saved["seen"].items()}, float(saved["prior"]))  # fmt: skip
        history = [EpochReport(int(e["epoch"]), dict(e["metrics"])) for e in saved["history"]]
        return FittedModel(model, list(saved["classes"]), dict(saved["settings"]), dict(saved["metrics"]), history)

    def predict(
        self, fitted: FittedModel, uris: Sequence[str], *, batch_size: int = 16
    ) -> tuple[list[Any], list[int]]:
        """Per uri the model's output (module docstring), None for a file that is no edit item."""
        items, failed = read_items(list(uris))
        outputs: list[Any] = []
        for item in items:
            if item is None:
                outputs.append(None)
                continue
            corrected, detail = fitted.model.correct(words(item.machine))
            outputs.append({"text": " ".join(corrected), "machine": item.machine, "words": detail})
        return outputs, failed


TRAINER = WordRuleTrainer()
