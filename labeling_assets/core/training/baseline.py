"""A fast baseline classifier for pre-labels before any trained model exists.

Multinomial logistic regression on downsampled grayscale pixels (scikit-learn, a second or two on a
CPU for thousands of items). It is weak, but it is better than no pre-label at all: it orders the
queue by uncertainty from the first consensus labels on, and Label Studio shows its guess.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from labeling_assets.core.images import decode
from labeling_assets.core.training.types import AnyArray

DEFAULT_SIZE = 16
MIN_LABELS = 10  # fewer than this many labeled items: no baseline (it would mostly echo the class prior)


def pixel_features(
    paths: Sequence[str | Path],
    size: int = DEFAULT_SIZE,
    *,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> tuple[AnyArray, list[int]]:
    """Grayscale ``size`` x ``size`` pixels in [0, 1], one flattened row per readable file.

    Returns the features and the indices (into ``paths``) of files that could not be read; their rows
    are zeros, so callers can keep positions aligned and drop them.
    """
    out = np.zeros((len(paths), size * size), dtype=np.float32)
    failed: list[int] = []
    for i, path in enumerate(paths):
        try:
            small = decode(path).convert("L").resize((size, size), resample)
            out[i] = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
        except (OSError, ValueError):
            failed.append(i)
    return out, failed


@dataclass
class PixelBaseline:
    """A fitted baseline: probabilities over the full class list (classes never seen get 0)."""

    classes: list[str]
    model: object  # sklearn Pipeline
    seen: list[int]  # column in ``classes`` of each of the model's outputs
    size: int
    n_train: int
    version: str

    def predict_proba(self, features: AnyArray) -> AnyArray:
        """(n_items, n_classes) probabilities, columns in ``classes`` order."""
        out = np.zeros((len(features), len(self.classes)), dtype=np.float64)
        if len(features):
            out[:, self.seen] = self.model.predict_proba(features)  # type: ignore[attr-defined]
        return out


def fit_on_examples(
    examples: Sequence[tuple[str, Any]], size: int, fit: Callable[[AnyArray, list[Any]], Any], what: str
) -> tuple[Any, str]:
    """``fit(features, answers)`` on the pixel features of ``examples`` ((uri, answer) pairs; a file that does not
    decode is left out), or None and why not: fewer than :data:`MIN_LABELS` examples (``what`` names them in the
    reason), or the ValueError ``fit`` raised."""
    if len(examples) < MIN_LABELS:
        return None, f"only {len(examples)} {what} (the baseline needs {MIN_LABELS})"
    features, failed = pixel_features([uri for uri, _ in examples], size=size)
    keep = np.ones(len(examples), dtype=bool)
    keep[failed] = False
    try:
        return fit(features[keep], [answer for (_, answer), ok in zip(examples, keep, strict=True) if ok]), ""
    except ValueError as exc:
        return None, str(exc)


def fit_baseline(
    features: AnyArray,
    labels: Sequence[str],
    classes: Sequence[str],
    *,
    size: int = DEFAULT_SIZE,
    c: float = 1.0,
    seed: int = 0,
) -> PixelBaseline:
    """Fit the baseline on labeled items.

    Raises:
        ValueError: fewer than :data:`MIN_LABELS` items, fewer than two distinct classes, or a label
            outside ``classes``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = list(classes)
    index = {name: k for k, name in enumerate(classes)}
    unknown = sorted({str(label) for label in labels} - set(index))
    if unknown:
        raise ValueError(f"labels outside the class list: {unknown[:5]}")
    if len(labels) < MIN_LABELS:
        raise ValueError(f"only {len(labels)} labeled items; the baseline needs at least {MIN_LABELS}")
    y = np.array([index[str(label)] for label in labels], dtype=np.int64)
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError("the labeled items hold a single class; a classifier needs at least two")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300, random_state=seed))
    model.fit(np.asarray(features, dtype=np.float32), y)
    seen = [int(k) for k in model.classes_]
    digest = hashlib.sha256(np.ascontiguousarray(features).tobytes() + y.tobytes()).hexdigest()[:10]
    return PixelBaseline(
        classes=classes,
        model=model,
        seen=seen,
        size=size,
        n_train=len(y),
        version=f"baseline-logreg-px{size}-n{len(y)}-{digest}",
    )


@dataclass
class SetBaseline:
    """A fitted multi-label baseline: one logistic regression per class (a class always absent or always
    present in the labels gets that constant), per-class probabilities P(class present)."""

    classes: list[str]
    models: list[object | float]  # sklearn Pipeline per class, or the constant probability
    size: int
    n_train: int
    version: str

    def predict_proba(self, features: AnyArray) -> AnyArray:
        """(n_items, n_classes) per-class probabilities (rows do not sum to 1)."""
        out = np.zeros((len(features), len(self.classes)), dtype=np.float64)
        for k, model in enumerate(self.models):
            if isinstance(model, float):
                out[:, k] = model
            elif len(features):
                out[:, k] = model.predict_proba(features)[:, 1]  # type: ignore[attr-defined]
        return out


def fit_set_baseline(
    features: AnyArray,
    indicator: AnyArray,
    classes: Sequence[str],
    *,
    size: int = DEFAULT_SIZE,
    c: float = 1.0,
    seed: int = 0,
) -> SetBaseline:
    """Fit the multi-label baseline on items with their (n, K) 0/1 label sets.

    Raises:
        ValueError: fewer than :data:`MIN_LABELS` items, or a label matrix of the wrong shape.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(indicator, dtype=np.int64)
    if y.ndim != 2 or y.shape != (len(features), len(classes)):
        raise ValueError(f"label sets must be ({len(features)}, {len(classes)}) 0/1, got {y.shape}")
    if len(y) < MIN_LABELS:
        raise ValueError(f"only {len(y)} labeled items; the baseline needs at least {MIN_LABELS}")
    x = np.asarray(features, dtype=np.float32)
    models: list[object | float] = []
    for k in range(len(classes)):
        if y[:, k].min() == y[:, k].max():
            models.append(float(y[0, k]))
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300, random_state=seed))
        model.fit(x, y[:, k])
        models.append(model)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + y.tobytes()).hexdigest()[:10]
    return SetBaseline(
        classes=list(classes),
        models=models,
        size=size,
        n_train=len(y),
        version=f"baseline-setlogreg-px{size}-n{len(y)}-{digest}",
    )
