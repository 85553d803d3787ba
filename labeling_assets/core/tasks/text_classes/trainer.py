"""The text class kinds' model: TF-IDF features and logistic regression (scikit-learn), a ``KindTrainer``.

One class per text: multinomial logistic regression, its probabilities calibrated by one temperature fitted on
the val split (the negative log-likelihood over a grid; 1 when val is empty), so that the pre-labels' scores and
the queue's uncertainty read as probabilities. A set per text: one binary logistic regression per class (a class
the train split never or always has gets its train share as a constant). Consensus confidence weighs each text.

Saved as a torch-only checkpoint (``torch.save`` of tensors, strings and numbers: the vocabulary, idf weights,
coefficients), so ``torch.load(weights_only=True)`` reads it and no pickled scikit-learn object is ever loaded;
prediction rebuilds the vectorizer from the vocabulary and idf weights and computes the probabilities in numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.ingest.text import read_texts
from labeling_assets.core.tasks.kind import EpochReport, FittedModel, TrainerSettingsError
from labeling_assets.core.training.types import AnyArray

FORMAT = "labeling-assets/text-classes-tfidf-logreg/v1"
_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
_EPS = 1e-12


@dataclass
class TextClassModel:
    """What predicts: the vectorizer's vocabulary (column order) and idf, the coefficients, the temperature."""

    vocabulary: list[str]
    idf: AnyArray  # (F,)
    coef: AnyArray  # (K, F): one row per class of the class list
    intercept: AnyArray  # (K,)
    temperature: float
    multiple: bool
    ngram_max: int

    def vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, self.ngram_max),
                                     vocabulary={term: n for n, term in enumerate(self.vocabulary)})  # fmt: skip
        vectorizer.idf_ = self.idf
        return vectorizer

    def probabilities(self, texts: Sequence[str]) -> AnyArray:
        """(n, K) class probabilities: a softmax over the classes (one class), a sigmoid per class (a set)."""
        features = self.vectorizer().transform(list(texts))
        logits = np.asarray(features @ self.coef.T) + self.intercept
        if self.multiple:
            return np.asarray(1.0 / (1.0 + np.exp(-logits)))
        logits = logits / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def _indicator(labels: Sequence[Any], classes: Sequence[str]) -> AnyArray:
    index = {c: k for k, c in enumerate(classes)}
    matrix = np.zeros((len(labels), len(classes)))
    for n, answer in enumerate(labels):
        for name in answer:
            if str(name) in index:
                matrix[n, index[str(name)]] = 1.0
    return matrix


def _codes(labels: Sequence[Any], classes: Sequence[str]) -> AnyArray:
    index = {c: k for k, c in enumerate(classes)}
    unknown = sorted({str(x) for x in labels} - set(index))
    if unknown:
        raise TrainerSettingsError(f"labels outside the class list: {unknown[:5]}")
    return np.asarray([index[str(x)] for x in labels], dtype=np.int64)


def _macro_f1(truth: AnyArray, predicted: AnyArray) -> float:
    """Macro-F1 over the columns of 0/1 matrices, a class absent from both counting as 1."""
    scores = []
    for k in range(truth.shape[1]):
        tp = float((truth[:, k] * predicted[:, k]).sum())
        denominator = float(truth[:, k].sum() + predicted[:, k].sum())
        scores.append(1.0 if denominator == 0 else 2 * tp / denominator)
    return float(np.mean(scores)) if scores else 0.0


class TextClassTrainer:
    """Fits :class:`TextClassModel` on a dataset version's rows (``uri`` of the stored text, ``label``)."""

    model_name = "tfidf_logistic_regression"

    def __init__(self, *, multiple: bool) -> None:
        self.multiple = multiple

    def default_settings(self) -> dict[str, Any]:
        return {"c": 4.0, "ngram_max": 2, "min_df": 1, "max_features": 50_000, "calibrate": True}

    def _settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(self.default_settings()))
        if unknown:
            raise TrainerSettingsError(f"unknown setting {unknown[0]}; this trainer has {sorted(self.default_settings())}")
        chosen = {**self.default_settings(), **settings}
        if float(chosen["c"]) <= 0 or int(chosen["ngram_max"]) < 1 or int(chosen["max_features"]) < 1:
            raise TrainerSettingsError(f"c > 0, ngram_max >= 1 and max_features >= 1 are needed, got {chosen}")
        return chosen

    def _rows(self, frame: pd.DataFrame, classes: Sequence[str]) -> tuple[list[str], AnyArray, AnyArray]:
        """(texts, targets: codes or a 0/1 matrix, weights) of the rows whose stored text reads."""
        texts, failed = read_texts(frame["uri"].astype(str).tolist())
        keep = [n for n in range(len(frame)) if n not in set(failed)]
        labels = [frame["label"].iloc[n] for n in keep]
        targets = _indicator(labels, classes) if self.multiple else _codes(labels, classes)
        weights = frame["confidence"] if "confidence" in frame else pd.Series(1.0, index=frame.index)
        weight = pd.to_numeric(weights, errors="coerce").fillna(1.0).clip(lower=0.05).to_numpy()[keep]
        return [str(texts[n]) for n in keep], targets, weight

    def fit(
        self, train: pd.DataFrame, val: pd.DataFrame, classes: Sequence[str], settings: Mapping[str, Any], *,
        log: Callable[[str], None] | None = None, on_epoch: Callable[[EpochReport], None] | None = None,
    ) -> FittedModel:
        """One pass (an "epoch" of one): vectorizer and regression on train, the temperature and metrics on val."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        chosen = self._settings(settings)
        classes = [str(c) for c in classes]
        texts, targets, weight = self._rows(train, classes)
        if not texts:
            raise ValueError("no readable text in the train split")
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, int(chosen["ngram_max"])),
                                     min_df=int(chosen["min_df"]), max_features=int(chosen["max_features"]))  # fmt: skip
        features = vectorizer.fit_transform(texts)
        coef, intercept = (self._fit_sets if self.multiple else self._fit_one)(features, targets, weight, classes, chosen)
        model = TextClassModel(vectorizer.get_feature_names_out().tolist(), np.asarray(vectorizer.idf_, dtype=np.float64),
                               coef, intercept, 1.0, self.multiple, int(chosen["ngram_max"]))  # fmt: skip
        metrics = {"train_log_loss": self._log_loss(model.probabilities(texts), targets)}
        val_texts, val_targets, _ = self._rows(val, classes)
        if val_texts:
            if chosen["calibrate"] and not self.multiple:
                model.temperature = self._temperature(model, val_texts, val_targets)
            metrics.update(self._scores(model.probabilities(val_texts), val_targets))
        if log:
            log(f"{self.model_name}: {len(texts)} train texts, {len(model.vocabulary)} terms, {metrics}")
        report = EpochReport(1, metrics)
        if on_epoch:
            on_epoch(report)
        summary = {"best_epoch": 1.0, "temperature": model.temperature, **{f"best_{k}": v for k, v in metrics.items()}}
        return FittedModel(model, classes, chosen, summary, [report])

    def _fit_one(self, features: Any, codes: AnyArray, weight: AnyArray, classes: list[str],
                 chosen: Mapping[str, Any]) -> tuple[AnyArray, AnyArray]:  # fmt: skip
        from sklearn.linear_model import LogisticRegression

        seen = sorted(set(codes.tolist()))
        coef = np.zeros((len(classes), features.shape[1]))
        intercept = np.full(len(classes), -30.0)  # a class the train split lacks: (almost) never predicted
        if len(seen) == 1:
            intercept[seen[0]] = 0.0
            return coef, intercept
        regression = LogisticRegression(C=float(chosen["c"]), max_iter=2000)
        regression.fit(features, codes, sample_weight=weight)
        rows = regression.coef_ if len(seen) > 2 else np.vstack([-regression.coef_[0] / 2, regression.coef_[0] / 2])
        bias = regression.intercept_ if len(seen) > 2 else np.array([-regression.intercept_[0] / 2, regression.intercept_[0] / 2])
        coef[seen] = rows
        intercept[seen] = bias
        return coef, intercept

    def _fit_sets(self, features: Any, matrix: AnyArray, weight: AnyArray, classes: list[str],
                  chosen: Mapping[str, Any]) -> tuple[AnyArray, AnyArray]:  # fmt: skip
        from sklearn.linear_model import LogisticRegression

        coef = np.zeros((len(classes), features.shape[1]))
        intercept = np.zeros(len(classes))
        for k in range(len(classes)):
            column = matrix[:, k]
            if column.min() == column.max():  # never or always: its share, as a constant
                share = float(np.clip(column.mean(), 0.01, 0.99))
                intercept[k] = np.log(share / (1 - share))
                continue
            regression = LogisticRegression(C=float(chosen["c"]), max_iter=2000)
            regression.fit(features, column.astype(np.int64), sample_weight=weight)
            coef[k], intercept[k] = regression.coef_[0], regression.intercept_[0]
        return coef, intercept

    def _log_loss(self, probs: AnyArray, targets: AnyArray) -> float:
        if self.multiple:
            p = np.clip(probs, _EPS, 1 - _EPS)
            return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())
        return float(-np.log(np.clip(probs[np.arange(len(targets)), targets], _EPS, 1.0)).mean())

    def _temperature(self, model: TextClassModel, texts: list[str], codes: AnyArray) -> float:
        """The temperature of least negative log-likelihood on val."""
        best, chosen = np.inf, 1.0
        for temperature in _TEMPERATURES:
            model.temperature = float(temperature)
            loss = self._log_loss(model.probabilities(texts), codes)
            if loss < best - 1e-12:
                best, chosen = loss, float(temperature)
        return chosen

    def _scores(self, probs: AnyArray, targets: AnyArray) -> dict[str, float]:
        if self.multiple:
            return {"val_log_loss": self._log_loss(probs, targets),
                    "val_macro_f1": _macro_f1(targets, (probs >= 0.5).astype(float))}  # fmt: skip
        predicted = probs.argmax(axis=1)
        k = probs.shape[1]
        return {"val_log_loss": self._log_loss(probs, targets), "val_accuracy": float((predicted == targets).mean()),
                "val_macro_f1": _macro_f1(np.eye(k)[targets], np.eye(k)[predicted])}  # fmt: skip

    def save(self, fitted: FittedModel, path: Path) -> None:
        import torch

        model: TextClassModel = fitted.model
        torch.save({
            "format": FORMAT, "classes": list(fitted.classes), "settings": dict(fitted.settings),
            "metrics": dict(fitted.metrics), "history": [{"epoch": e.epoch, "metrics": e.metrics} for e in fitted.history],
            "vocabulary": model.vocabulary, "idf": torch.from_numpy(model.idf), "coef": torch.from_numpy(model.coef),
            "intercept": torch.from_numpy(model.intercept), "temperature": model.temperature,
            "multiple": model.multiple, "ngram_max": model.ngram_max,
        }, path)  # fmt: skip

    def load(self, path: Path, device: str = "cpu") -> FittedModel:
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {self.model_name} checkpoint ({saved.get('format')!r})")
        model = TextClassModel(list(saved["vocabulary"]), saved["idf"].numpy(), saved["coef"].numpy(),
                               saved["intercept"].numpy(), float(saved["temperature"]), bool(saved["multiple"]),
                               int(saved["ngram_max"]))  # fmt: skip
        history = [EpochReport(int(e["epoch"]), dict(e["metrics"])) for e in saved["history"]]
        return FittedModel(model, list(saved["classes"]), dict(saved["settings"]), dict(saved["metrics"]), history)

    def predict(
        self, fitted: FittedModel, uris: Sequence[str], *, batch_size: int = 16
    ) -> tuple[list[Any], list[int]]:
        """Per uri ``{class: probability}`` in class-list order (None for a file that is no stored text)."""
        texts, failed = read_texts(list(uris))
        readable = [n for n, t in enumerate(texts) if t is not None]
        probs = fitted.model.probabilities([texts[n] for n in readable]) if readable else np.zeros((0, 0))
        outputs: list[Any] = [None] * len(uris)
        for row, n in enumerate(readable):
            outputs[n] = {c: float(p) for c, p in zip(fitted.classes, probs[row], strict=True)}
        return outputs, failed


SINGLE = TextClassTrainer(multiple=False)
SETS = TextClassTrainer(multiple=True)
