"""CROWDLAB (cleanlab): labelers combined with out-of-sample model probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.encoding import (
    ConsensusInputError,
    ConsensusResult,
    Encoded,
    Floats,
    PredProbs,
    build_result,
)


def _align_pred_probs(enc: Encoded, pred_probs: PredProbs) -> Floats:
    if isinstance(pred_probs, pd.DataFrame):
        missing_items = pd.Index(enc.item_ids).difference(pred_probs.index)
        if len(missing_items):
            raise ConsensusInputError(
                f"pred_probs has no row for {len(missing_items)} annotated item(s), e.g. {list(missing_items[:3])}"
            )
        missing_classes = [c for c in enc.classes if c not in pred_probs.columns]
        if missing_classes:
            raise ConsensusInputError(f"pred_probs has no column for class(es) {missing_classes}")
        probs: Floats = pred_probs.loc[list(enc.item_ids), enc.classes].to_numpy(dtype=np.float64)
    else:
        probs = np.asarray(pred_probs, dtype=np.float64)
        if probs.shape != (enc.n_items, enc.n_classes):
            raise ConsensusInputError(
                f"pred_probs has shape {probs.shape}; expected (n_items, n_classes) = "
                f"({enc.n_items}, {enc.n_classes}) with rows in sorted item_id order"
            )
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ConsensusInputError("pred_probs must be finite and non-negative")
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        raise ConsensusInputError("pred_probs rows must sum to 1")
    normalized: Floats = probs / sums[:, None]
    return normalized


def crowdlab(
    enc: Encoded, pred_probs: PredProbs | None, notes: list[str]
) -> ConsensusResult:
    if pred_probs is None:
        raise ConsensusInputError("crowdlab needs out-of-sample pred_probs (n_items, n_classes)")
    probs = _align_pred_probs(enc, pred_probs)
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    if enc.n_labelers < 2 or (per_item < 2).all():
        raise ConsensusInputError("crowdlab needs at least two labelers and one item with two annotations")
    from cleanlab.multiannotator import get_label_quality_multiannotator  # heavy import, only here

    wide = np.full((enc.n_items, enc.n_labelers), np.nan)
    wide[enc.item, enc.labeler] = enc.label
    with warnings.catch_warnings():
        # cleanlab warns when a class is absent from the consensus; our notes and metadata cover that.
        warnings.simplefilter("ignore")
        info = get_label_quality_multiannotator(
            pd.DataFrame(wide, columns=[str(x) for x in enc.labeler_ids]),
            probs,
            return_detailed_quality=False,
            return_annotator_stats=True,
            verbose=False,
        )
    quality = info["label_quality"]
    codes = quality["consensus_label"].to_numpy(dtype=np.int64)
    stats = info["annotator_stats"].reindex([str(x) for x in enc.labeler_ids])
    result = build_result(enc, "crowdlab", codes, quality["consensus_quality_score"].to_numpy(float), None, notes)
    labeler_quality = result.labeler_quality.copy()
    labeler_quality["quality"] = stats["annotator_quality"].to_numpy(float)
    return ConsensusResult(
        labels=result.labels,
        labeler_quality=labeler_quality,
        method="crowdlab",
        classes=enc.classes,
        notes=notes,
    )

