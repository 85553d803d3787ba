"""Label tiers and machine labels with a guarantee (docs/tiers.md).

Every dataset item carries a tier: ``verified`` (a gold item, or settled by an expert), ``consensus`` (people
agreed), ``machine`` (the champion's pre-label above a threshold, no human label). A machine tier is only
allowed when a threshold ``t`` is found such that, on human-labeled items the champion did not train on, the
one-sided Clopper-Pearson lower bound of its accuracy among items with confidence >= ``t`` is at least the
target, at the stated confidence.

Scanning thresholds is multiple testing: testing each one at 5% and keeping the lowest that passes would break
the guarantee. Fixed-sequence testing keeps it: the thresholds are tested in a fixed order, highest first, each
at the full level, and the scan stops at the first failure (Bauer 1991; Angelopoulos et al. 2021, "Learn then
Test"). The scan starts at the highest threshold with enough items above it (see ``choose_threshold``): that
depends on the reference items' confidences only, not on whether the model was right, so it keeps the guarantee.

Pure: no Dagster, no store.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from labeling_assets.core.consensus.spot_check import draws

Tier = Literal["verified", "consensus", "machine"]
TIERS: tuple[Tier, ...] = ("verified", "consensus", "machine")
VERIFIED_METHODS = frozenset({"adjudicated", "gold"})  # consensus methods that mean an expert (or gold) settled it

DEFAULT_TARGET = 0.98
DEFAULT_CONFIDENCE = 0.95
DEFAULT_CHECK_RATE = 0.05
START_FACTOR = 4  # the scan starts where 4x the fewest items that could pass lie above the threshold
# The fixed sequence of thresholds, highest first: fine steps near 1, where machine labels are worth having.
THRESHOLD_GRID: tuple[float, ...] = (
    0.999, 0.998, 0.997, 0.995, 0.993, 0.99, 0.985, 0.98, 0.975, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91,
    *(round(0.90 - 0.02 * k, 2) for k in range(21)),
)  # fmt: skip


def lower_bound(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson lower bound of a binomial proportion (0 when ``n`` is 0 or nothing succeeded)."""
    if n <= 0 or successes <= 0:
        return 0.0
    from scipy.stats import beta  # here, not at import: scipy.stats is ~1 s of every run's start

    return float(beta.ppf(1 - confidence, successes, n - successes + 1))


def upper_bound(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound (1 when ``n`` is 0 or everything succeeded)."""
    if n <= 0 or successes >= n:
        return 1.0
    from scipy.stats import beta  # here, not at import: scipy.stats is ~1 s of every run's start

    return float(beta.ppf(confidence, successes + 1, n - successes))


def min_items_to_pass(target: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest reference items with which the bound can reach ``target`` at all (all of them right):
    ``target**n <= 1 - confidence``."""
    return max(1, math.ceil(math.log(1 - confidence) / math.log(target))) if 0 < target < 1 else 1


@dataclass(frozen=True)
class ThresholdTest:
    threshold: float
    n: int  # reference items with confidence >= threshold
    n_correct: int  # of them, where the model's label is the human label
    lower_bound: float
    passed: bool


@dataclass(frozen=True)
class ThresholdDecision:
    """Which threshold (if any) lets the machine label, and the evidence: every test of the fixed sequence."""

    target: float
    confidence: float
    threshold: float | None  # None: no machine tier
    lower_bound: float | None  # at the chosen threshold
    n: int  # reference items at the chosen threshold (all reference items when none was chosen)
    n_correct: int
    n_reference: int
    tests: tuple[ThresholdTest, ...] = ()
    reason: str = ""

    @property
    def on(self) -> bool:
        return self.threshold is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "confidence": self.confidence, "threshold": self.threshold,
            "lower_bound": None if self.lower_bound is None else round(self.lower_bound, 6), "n": self.n,
            "n_correct": self.n_correct, "n_reference": self.n_reference, "reason": self.reason,
            "tests": len(self.tests),
        }  # fmt: skip


def choose_threshold(
    confidences: Sequence[float] | NDArray[Any],
    correct: Sequence[bool] | NDArray[Any],
    *,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    grid: Sequence[float] = THRESHOLD_GRID,
) -> ThresholdDecision:
    """The lowest threshold of the fixed sequence ``grid`` (tested highest first, stopping at the first failure)
    whose Clopper-Pearson lower bound on accuracy is at least ``target``.

    ``confidences``: the model's top probability on each reference item (human-labeled, not trained on);
    ``correct``: whether its label equals the human label there.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    if conf.shape != hit.shape:
        raise ValueError("confidences and correct must have the same length")
    need = min_items_to_pass(target, confidence)
    # Where the scan starts: the highest threshold with START_FACTOR times the bare minimum above it (or all the
    # items the lowest threshold has). A top bin that passes only with no error at all would stop most scans of a
    # good model (a 99.5 % model passes 150 items without an error 47 % of the time); like the bare minimum, this
    # depends on the confidences only, so it keeps the guarantee.
    start = max(need, min(START_FACTOR * need, int((conf >= min(grid)).sum()) if len(grid) else 0))
    tests: list[ThresholdTest] = []
    chosen: ThresholdTest | None = None
    for t in sorted(set(grid), reverse=True):
        above = conf >= t
        n, k = int(above.sum()), int(hit[above].sum())
        if n < start:
            continue
        bound = lower_bound(k, n, confidence)
        test = ThresholdTest(t, n, k, bound, bound >= target)
        tests.append(test)
        if not test.passed:
            break
        chosen = test
    if chosen is not None:
        reason = (f"{chosen.n_correct}/{chosen.n} reference items right at confidence >= {chosen.threshold:g}: "
                  f"lower bound {chosen.lower_bound:.4f} >= target {target:g} at {confidence:.0%}")  # fmt: skip
        return ThresholdDecision(target, confidence, chosen.threshold, chosen.lower_bound, chosen.n,
                                 chosen.n_correct, len(conf), tuple(tests), reason)  # fmt: skip
    if not tests:
        reason = (f"{len(conf)} reference items, fewer than the {need} above any threshold that the target "
                  f"{target:g} at {confidence:.0%} needs")  # fmt: skip
    else:
        first = tests[0]
        reason = (f"the highest testable threshold {first.threshold:g} fails: {first.n_correct}/{first.n} right, "
                  f"lower bound {first.lower_bound:.4f} < target {target:g}")  # fmt: skip
    return ThresholdDecision(target, confidence, None, None, len(conf), int(hit.sum()), len(conf), tuple(tests), reason)


def item_tier(method: str | None, is_gold: bool) -> Tier:
    """A human-labeled item's tier: ``verified`` for gold or an expert's settlement, else ``consensus``."""
    return "verified" if is_gold or (method or "") in VERIFIED_METHODS else "consensus"


def check_sample(item_ids: Sequence[str], rate: float, seed: int = 0) -> NDArray[np.bool_]:
    """Which machine-labeled items still go to people, to check the guarantee in production: a keyed hash of
    the item id below ``rate`` (the same items on every run; a new item never changes an earlier pick)."""
    if not len(item_ids):
        return np.zeros(0, dtype=bool)
    numbers = np.array([hash_text(str(i)) for i in item_ids], dtype=np.int64)
    out: NDArray[np.bool_] = draws(seed, numbers) < rate
    return out


def hash_text(text: str) -> int:
    """A stable 60-bit number for an id (sha256 of the whole id, not Python's salted hash)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


@dataclass(frozen=True)
class ProductionCheck:
    """Machine labels that people labeled anyway (the check sample): how often the machine was right."""

    n: int
    n_agree: int
    target: float
    confidence: float
    lower: float = 0.0
    upper: float = 1.0
    disagreements: list[str] = field(default_factory=list)  # item ids

    @property
    def accuracy(self) -> float | None:
        return self.n_agree / self.n if self.n else None

    @property
    def below_target(self) -> bool:
        """True when even the upper bound is under the target: the guarantee does not hold in production."""
        return self.n > 0 and self.upper < self.target

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_agree": self.n_agree, "accuracy": self.accuracy, "lower": round(self.lower, 6),
                "upper": round(self.upper, 6), "target": self.target, "confidence": self.confidence,
                "below_target": self.below_target}  # fmt: skip


def production_check(
    machine_labels: dict[str, str], human_labels: dict[str, str], *, target: float, confidence: float
) -> ProductionCheck:
    """Compare each sampled machine label (item -> label) with the label people gave it since (item -> label)."""
    both = sorted(set(machine_labels) & set(human_labels))
    wrong = [i for i in both if str(machine_labels[i]) != str(human_labels[i])]
    n, k = len(both), len(both) - len(wrong)
    return ProductionCheck(n, k, target, confidence, lower_bound(k, n, confidence), upper_bound(k, n, confidence), wrong)


def top_label(probs: Any) -> tuple[str, float] | None:
    """A class pre-label's label and confidence (its top class and probability); None for anything that is not a
    class -> probability mapping (a detector's boxes, a span model's output: those kinds get no machine tier)."""
    if not isinstance(probs, dict) or not probs:
        return None
    try:
        label = max(probs, key=lambda c: float(probs[c]))
        return str(label), float(probs[label])
    except (TypeError, ValueError):
        return None


def reference(prelabels: dict[str, Any], human: dict[str, str]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(confidence, correct) of the model on every human-labeled item it pre-labeled (item -> pre-label,
    item -> human label): the data :func:`choose_threshold` tests."""
    conf, hit = [], []
    for item in sorted(set(prelabels) & set(human)):
        top = top_label(prelabels[item])
        if top is not None:
            conf.append(top[1])
            hit.append(top[0] == str(human[item]))
    return np.asarray(conf, dtype=np.float64), np.asarray(hit, dtype=bool)


def machine_labels(prelabels: dict[str, Any], threshold: float) -> dict[str, tuple[str, float]]:
    """item -> (label, confidence) for every pre-labeled item at or above ``threshold`` (pass only unlabeled ones)."""
    out = {}
    for item, probs in prelabels.items():
        top = top_label(probs)
        if top is not None and top[1] >= threshold:
            out[item] = top
    return out


def card_section(
    tiers: Sequence[str], status: str, decision: ThresholdDecision | None, model_version: str | None,
    production: ProductionCheck | None, check_rate: float,
) -> str:  # fmt: skip
    """The dataset card's section on tiers: items per tier and the machine-label decision behind this version."""
    counts = {t: sum(1 for x in tiers if x == t) for t in TIERS}
    lines = ["## Label tiers", "", "| tier | items | what it means |", "|---|---|---|",
             f"| verified | {counts['verified']} | a gold item, or settled by an expert |",
             f"| consensus | {counts['consensus']} | people's consensus |",
             f"| machine | {counts['machine']} | the champion's label above the threshold, no human label |", ""]  # fmt: skip
    if decision is None:
        return "\n".join([*lines, "Machine labels: off (`machine_label_target` is not set).", ""])
    lines.append(f"Machine labels: **{status}** (target accuracy {decision.target:g} with {decision.confidence:.0%} "
                 f"confidence, one-sided Clopper-Pearson bound, fixed-sequence testing of the thresholds; model "
                 f"`{model_version or '-'}`). {decision.reason}.")  # fmt: skip
    if decision.on:
        lines.append(f"Threshold {decision.threshold:g}: {decision.n_correct}/{decision.n} reference items right "
                     f"(of {decision.n_reference} human-labeled items the model did not train on), lower bound "
                     f"{(decision.lower_bound or 0):.4f}. {check_rate:.0%} of the machine-labeled items still go to "
                     "people to check the guarantee.")  # fmt: skip
    if production is not None and production.n:
        lines.append(f"Check sample so far: {production.n_agree}/{production.n} machine labels agree with people "
                     f"({production.accuracy:.3f}; {production.confidence:.0%} bounds {production.lower:.4f}-"
                     f"{production.upper:.4f}){'; below the target: the machine tier is suspended' if production.below_target else ''}.")  # fmt: skip
    return "\n".join([*lines, ""])


def item_weights(tiers: Sequence[str | None], weights: Mapping[str, float] | None) -> NDArray[np.float64]:
    """Each training item's weight from its tier (``tier_weights`` of the training config, e.g. ``{"machine": 0.5}``;
    a tier not named, or an item without a tier, weighs 1; 0 leaves the tier out).

    Raises ValueError for a tier that does not exist or a negative weight (a typo must not train on everything)."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(TIERS))
    if unknown:
        raise ValueError(f"tier_weights names {unknown}: the tiers are {', '.join(TIERS)}")
    if any(float(w) < 0 for w in weights.values()):
        raise ValueError(f"tier_weights must be >= 0: {weights}")
    return np.array([float(weights.get(str(t), 1.0)) if t is not None else 1.0 for t in tiers], dtype=np.float64)
