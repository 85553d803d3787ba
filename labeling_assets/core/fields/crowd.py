"""The simulated crowd's extra answers: each field's truth by construction, each labeler's answer to it, and the
labeler's own confidence rating. Pure and seeded (hash-seeded per item and labeler, so an answer does not depend on
the order or the thread it is posted in).

Model assumptions (what ``benchmarks/self_rating.py`` measures is only as true as these):

- A field's truth is a hash of the item id and the field name: ``choice`` one option, ``choices`` each option with
  probability 1/4, ``rating`` uniform over 1..max.
- A labeler answers a ``choice`` field right with their preset's accuracy (``crowd.PRESET_ACCURACY``; a spammer
  picks uniformly), else one of the other options uniformly; a ``choices`` field flips each option with
  probability (1 - accuracy) / 2; a ``rating`` field is the truth moved by one star with probability 1 - accuracy.
- The self-confidence rating depends only on whether the labeler's main answer (the class) is right, through the
  labeler's rating style (:data:`RATING_STYLES`): ``calibrated`` rates right answers high and wrong ones low,
  ``overconfident`` rates everything 4-5 whatever the answer. Expert, average and noisy labelers are calibrated;
  spammers and biased labelers overconfident (:func:`rating_style`). A real crowd may be neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from labeling_assets.core.fields.spec import SELF_CONFIDENCE, FieldSpec
from labeling_assets.core.labelstudio.crowd import PRESET_ACCURACY, LabelerSpec

# P(rating = 1..5 | main answer right), P(rating = 1..5 | wrong).
RATING_STYLES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "calibrated": ((0.02, 0.06, 0.14, 0.33, 0.45), (0.25, 0.30, 0.25, 0.13, 0.07)),
    "overconfident": ((0.00, 0.02, 0.08, 0.30, 0.60), (0.00, 0.02, 0.08, 0.30, 0.60)),
}


def rating_style(spec: LabelerSpec) -> str:
    """The labeler's self-rating style: spammers and biased labelers are overconfident, the others calibrated."""
    return "overconfident" if spec.preset in ("spammer", "biased") else "calibrated"


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def field_truth(item_id: Hashable, spec: FieldSpec) -> Any:
    """The field's true answer for an item, by construction (a hash of the item id and the field's name)."""
    rng = np.random.default_rng(_hash("truth", spec.name, item_id))
    if spec.kind == "choice":
        return spec.options[int(rng.integers(len(spec.options)))]
    if spec.kind == "choices":
        return sorted(o for o in spec.options if rng.random() < 0.25)
    return int(rng.integers(1, spec.max_rating + 1))


def _accuracy(spec: LabelerSpec) -> float | None:
    if spec.preset == "spammer":
        return None
    return spec.accuracy if spec.accuracy is not None else PRESET_ACCURACY[spec.preset]


def _answer(field: FieldSpec, truth: Any, accuracy: float | None, rng: np.random.Generator) -> Any:
    if field.kind == "choice":
        if accuracy is None:
            return field.options[int(rng.integers(len(field.options)))]
        if rng.random() < accuracy:
            return truth
        others = [o for o in field.options if o != truth]
        return others[int(rng.integers(len(others)))]
    if field.kind == "choices":
        flip = 0.5 if accuracy is None else (1 - accuracy) / 2
        return sorted(o for o in field.options if (o in truth) != (rng.random() < flip))
    if accuracy is None:
        return int(rng.integers(1, field.max_rating + 1))
    moved = truth + (int(rng.choice([-1, 1])) if rng.random() > accuracy else 0)
    return int(min(max(moved, 1), field.max_rating))


def self_rating(style: str, right: bool, rng: np.random.Generator, max_rating: int = 5) -> int:
    """A self-confidence rating 1..5 drawn from the style's distribution given whether the main answer is right."""
    probs = RATING_STYLES[style][0 if right else 1]
    if len(probs) != max_rating:
        raise ValueError(f"the rating styles have {len(probs)} levels, the field {max_rating}")
    return int(rng.choice(np.arange(1, max_rating + 1), p=np.asarray(probs) / sum(probs)))


def field_answers(
    labeler: LabelerSpec, item_id: Hashable, answered: Any, true_label: Any, fields: Sequence[FieldSpec], *, seed: int = 0
) -> dict[str, Any]:
    """What ``labeler`` answers to each extra field on an item whose main answer was ``answered`` (truth
    ``true_label``): the field's answer, and for :data:`SELF_CONFIDENCE` a self-rating (see the module's model)."""
    rng = np.random.default_rng(_hash("answer", seed, labeler.name, item_id))
    out: dict[str, Any] = {}
    for f in fields:
        if f.name == SELF_CONFIDENCE:
            out[f.name] = self_rating(rating_style(labeler), answered == true_label, rng, f.max_rating)
        else:
            out[f.name] = _answer(f, field_truth(item_id, f), _accuracy(labeler), rng)
    return out


def truth_table(item_ids: Sequence[Hashable], fields: Sequence[FieldSpec]) -> dict[str, Mapping[Hashable, Any]]:
    """Each field's truth (not the self-confidence: it has none) for the items: field -> item -> answer."""
    return {f.name: {i: field_truth(i, f) for i in item_ids} for f in fields if f.name != SELF_CONFIDENCE}
