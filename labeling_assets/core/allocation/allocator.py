"""Choose, for each free slot of a queue run, the action that buys the most expected accuracy per unit of cost.

Three kinds of action compete for a slot (the queue's old rules, one of each, made comparable):

- ``new_item``: send an unlabeled item (ranked by the selected active-learning score,
  ``core/training/active_learning.py``) to a labeler;
- ``more_label``: one more labeler for an item whose consensus is unsure (what dynamic overlap,
  ``core/consensus/review_routing.plan_overlap_raises``, does by a fixed threshold);
- ``expert``: an expert settles an unsure item.

The unit of value is an item's expected accuracy: the probability that its label is right, read from its
posterior over classes (the consensus posterior for a labeled item; the model's probabilities, or a flat
prior, for a new one). An answer from a labeler of accuracy ``a`` (one-coin: right with ``a``, otherwise
any other class alike) turns the posterior ``p`` into one per answer, so the expected accuracy after it is
``sum_v max_c p_c L(v|c)`` exactly. One answer can be worth nothing on its own (after one vote of a binary
item, a second vote can only tie), so a crowd action is valued at its best rate over one or two answers
(``(E_m - max p) / m``): the gain per answer of going that way, not of the single answer alone.

A share of slots (``random_share``, default 10 %, seeded) goes to a uniformly random crowd action so
that the savings stay measurable in production: compare what the allocator's arm buys with what the
random arm buys. Every decision carries its arm, reason, estimated gain and cost, for the store to audit.

Costs per answer come from the pay rates (``ProjectSettings.pay_rate_per_hour`` / ``pay_rates_per_hour``)
and the median time per answer (labeler stats); without them a labeler answer costs
:data:`DEFAULT_LABELER_COST` (one label) and an expert review :data:`DEFAULT_EXPERT_COST` labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from labeling_assets.core.training.types import AnyArray

Action = Literal["new_item", "more_label", "expert"]
Arm = Literal["allocator", "random"]
NEW_ITEM: Final = "new_item"
MORE_LABEL: Final = "more_label"
EXPERT: Final = "expert"

DEFAULT_RANDOM_SHARE: Final = 0.10
DEFAULT_LABELER_COST: Final = 1.0  # one answer = one label when no pay rate is known
DEFAULT_EXPERT_COST: Final = 5.0  # an expert review, in labeler answers, when no pay rate is known
DEFAULT_EXPERT_ACCURACY: Final = 0.98
DEFAULT_MAX_VOTES: Final = 5  # consensus_labels' max annotators: above it only an expert helps
# Two-answer lookahead enumerates n_classes**2 answer pairs per item: above this it looks one answer ahead.
LOOKAHEAD_MAX_CLASSES: Final = 20


@dataclass(frozen=True)
class Costs:
    """Cost of one labeler answer and of one expert review, in one currency (or in labels)."""

    labeler: float = DEFAULT_LABELER_COST
    expert: float = DEFAULT_EXPERT_COST
    source: str = "defaults: 1 label per answer, 5 per expert review"

    def __post_init__(self) -> None:
        if not (self.labeler > 0 and self.expert > 0):
            raise ValueError(f"costs must be positive, got labeler={self.labeler}, expert={self.expert}")


def costs_from_pay_rates(
    *,
    pay_rate_per_hour: float | None,
    pay_rates_per_hour: Mapping[str, float],
    median_time_s: Mapping[str, float | None],
    reviewers: Sequence[str] = (),
    expert_median_time_s: float | None = None,
) -> Costs:
    """Costs per answer from the project's pay rates and each person's median time per answer.

    A labeler's answer costs ``rate * median_time_s / 3600`` (``pay_rates_per_hour`` by name, else
    ``pay_rate_per_hour``); the labeler cost is the mean over labelers with both, the expert cost the same
    over ``reviewers`` (their time: ``expert_median_time_s``, else their own median time, else the
    labelers' mean time). Anything unknown falls back to the defaults, scaled to what is known.
    """

    def per_answer(names: Sequence[str], time_for: Mapping[str, float | None]) -> float | None:
        costs = []
        for name in names:
            rate = pay_rates_per_hour.get(name, pay_rate_per_hour)
            seconds = time_for.get(name)
            if rate is not None and seconds is not None and np.isfinite(seconds) and seconds > 0:
                costs.append(rate * seconds / 3600.0)
        return float(np.mean(costs)) if costs else None

    expert_names = set(reviewers)
    labelers = [n for n in median_time_s if n not in expert_names]
    labeler = per_answer(labelers, median_time_s)
    times = [t for n, t in median_time_s.items() if n in labelers and t is not None and t > 0]
    fallback_time = float(np.mean(times)) if times else None
    expert_times: dict[str, float | None] = {
        r: expert_median_time_s or median_time_s.get(r) or fallback_time for r in reviewers
    }
    expert = per_answer(list(reviewers), expert_times)
    if labeler is None and expert is None:
        return Costs()
    if labeler is None:
        assert expert is not None
        return Costs(expert / DEFAULT_EXPERT_COST, expert, "expert from pay rates; labeler = expert / 5")
    if expert is None or expert <= 0:
        return Costs(labeler, labeler * DEFAULT_EXPERT_COST, "labeler from pay rates; expert = 5 labeler answers")
    return Costs(labeler, expert, "pay rates x median time per answer")


@dataclass(frozen=True)
class NewItem:
    """An unlabeled item the queue may send. ``posterior``: the model's probabilities (None: flat prior)."""

    item_id: str
    score: float = 0.0  # the selected active-learning score (higher = more informative); breaks ties
    posterior: Sequence[float] | None = None
    weight: float = 1.0  # what the item teaches the model (e.g. its uncertainty score); 1: every item alike


@dataclass(frozen=True)
class LabeledItem:
    """A labeled item: its consensus posterior over classes and how many answers it holds."""

    item_id: str
    posterior: Sequence[float]
    n_votes: int
    more_votes_possible: bool = True  # False: no labeler left to ask (every one answered, or a replay ran dry)


@dataclass(frozen=True)
class Decision:
    """One slot's choice, as the store audits it."""

    slot: int
    item_id: str
    action: Action
    arm: Arm
    estimated_gain: float  # expected accuracy gained per answer (per review for an expert)
    cost: float
    gain_per_cost: float
    reason: str


def posterior_from_confidence(label_index: int, confidence: float, n_classes: int) -> AnyArray:
    """A posterior from a consensus row that only keeps its label and confidence: the rest spread evenly."""
    if not 0 <= label_index < n_classes:
        raise ValueError(f"label index {label_index} is outside {n_classes} classes")
    if n_classes == 1:
        return np.ones(1)
    conf = float(np.clip(confidence, 0.0, 1.0))
    out = np.full(n_classes, (1.0 - conf) / (n_classes - 1))
    out[label_index] = conf
    return out


def _likelihood(accuracy: float, n_classes: int) -> AnyArray:
    """``L[v, c]``: probability that a labeler of this accuracy answers ``v`` when the truth is ``c``."""
    if n_classes == 1:
        return np.ones((1, 1))
    off = (1.0 - accuracy) / (n_classes - 1)
    return np.where(np.eye(n_classes, dtype=bool), accuracy, off)


def expected_accuracy_after(posteriors: AnyArray, accuracy: float, answers: int) -> AnyArray:
    """Expected ``max`` posterior of each row after ``answers`` (1 or 2) answers from a one-coin labeler."""
    p = np.asarray(posteriors, dtype=np.float64)
    lik = _likelihood(accuracy, p.shape[1])
    if answers == 1:
        # joint[n, v, c] = p[n, c] * L[v, c]; the best guess after seeing v keeps max_c of it.
        joint = p[:, None, :] * lik[None, :, :]
        result: AnyArray = joint.max(axis=2).sum(axis=1)
        return result
    if answers == 2:
        pair = lik[:, None, :] * lik[None, :, :]  # [v1, v2, c]
        joint2 = p[:, None, None, :] * pair[None, :, :, :]
        result = joint2.max(axis=3).sum(axis=(1, 2))
        return result
    raise ValueError(f"answers must be 1 or 2, got {answers}")


def expected_value_after(
    posteriors: AnyArray, accuracy: float, answers: int, value: Callable[[AnyArray], AnyArray]
) -> AnyArray:
    """Expected ``value(max posterior)`` of each row after ``answers`` (1 or 2) one-coin answers."""
    p = np.asarray(posteriors, dtype=np.float64)
    lik = _likelihood(accuracy, p.shape[1])
    if answers == 1:
        # joint[n, v, c] = p[n, c] * L[v, c]; the best guess after seeing v keeps max_c of it.
        joint = p[:, None, :] * lik[None, :, :]
    elif answers == 2:
        pair = lik[:, None, :] * lik[None, :, :]  # [v1, v2, c]
        joint = (p[:, None, None, :] * pair[None, :, :, :]).reshape(len(p), -1, p.shape[1])
    else:
        raise ValueError(f"answers must be 1 or 2, got {answers}")
    seen = joint.sum(axis=2)  # P(answers) per row
    top = joint.max(axis=2)
    q = np.divide(top, seen, out=np.zeros_like(top), where=seen > 0)
    result: AnyArray = (seen * value(q)).sum(axis=1)
    return result


def _crowd_rate(
    posteriors: AnyArray, accuracy: float, value: Callable[[AnyArray], AnyArray], now: AnyArray
) -> tuple[AnyArray, AnyArray]:
    """Best expected gain in ``value`` per answer over a one- or two-answer horizon (from ``now``), and that horizon."""
    one = expected_value_after(posteriors, accuracy, 1, value) - now
    if posteriors.shape[1] > LOOKAHEAD_MAX_CLASSES:
        return one, np.ones(len(now), dtype=int)
    two = (expected_value_after(posteriors, accuracy, 2, value) - now) / 2.0
    # A hair of tolerance: the one-answer rate wins ties, so a flat posterior reads "one answer".
    better_two = two > one + 1e-12
    return np.where(better_two, two, one), np.where(better_two, 2, 1)


def _linear_crowd_rate(posteriors: AnyArray, accuracy: float) -> tuple[AnyArray, AnyArray]:
    """Best expected gain per answer over a one- or two-answer horizon, and that horizon."""
    now = posteriors.max(axis=1)
    one = expected_accuracy_after(posteriors, accuracy, 1) - now
    if posteriors.shape[1] > LOOKAHEAD_MAX_CLASSES:
        return one, np.ones(len(now), dtype=int)
    two = (expected_accuracy_after(posteriors, accuracy, 2) - now) / 2.0
    # A hair of tolerance: the one-answer rate wins ties, so a flat posterior reads "one answer".
    better_two = two > one + 1e-12
    return np.where(better_two, two, one), np.where(better_two, 2, 1)


def _value(q: AnyArray, wrong_label_cost: float) -> AnyArray:
    """An item's worth at accuracy ``q``: right counts 1, wrong costs ``wrong_label_cost``."""
    result: AnyArray = q - wrong_label_cost * (1.0 - q)
    return result


def item_value(wrong_label_cost: float = 0.0, usable_confidence: float = 0.0) -> Callable[[AnyArray], AnyArray]:
    """An item's worth at accuracy ``q``: right counts 1, wrong costs ``wrong_label_cost``; a label under
    ``usable_confidence`` counts nothing (it is not yet a label anyone would train on)."""

    def value(q: AnyArray) -> AnyArray:
        worth: AnyArray = q - wrong_label_cost * (1.0 - q)
        if usable_confidence > 0:
            worth = np.where(q >= usable_confidence - 1e-9, worth, 0.0)
        return worth

    return value


def _normalised(rows: Sequence[Sequence[float] | None], n_classes: int) -> AnyArray:
    out = np.full((len(rows), n_classes), 1.0 / n_classes)
    for i, row in enumerate(rows):
        if row is None:
            continue
        r = np.asarray(row, dtype=np.float64)
        if r.shape != (n_classes,) or not np.isfinite(r).all() or r.min() < 0 or r.sum() <= 0:
            raise ValueError(f"posterior {i} must be {n_classes} non-negative numbers, got {row!r}")
        out[i] = r / r.sum()
    return out


@dataclass(frozen=True)
class _Candidate:
    item_id: str
    action: Action
    gain: float
    cost: float
    score: float
    reason: str

    @property
    def rate(self) -> float:
        return self.gain / self.cost


def candidates(
    new_items: Sequence[NewItem],
    labeled: Sequence[LabeledItem],
    *,
    n_classes: int,
    labeler_accuracy: float,
    costs: Costs,
    expert_accuracy: float | None = DEFAULT_EXPERT_ACCURACY,
    max_votes: int = DEFAULT_MAX_VOTES,
    wrong_label_cost: float = 0.0,
    usable_confidence: float = 0.0,
) -> list[_Candidate]:
    """Every action on offer with its expected gain and cost (``expert_accuracy=None``: no expert).

    ``wrong_label_cost`` (lambda): what a wrong label costs against a right one's worth 1. 0 values the
    data set's accuracy (an unlabeled item counts at its machine label's confidence); for training data a
    wrong label does harm (1: it undoes a right one), so an item's worth is ``q - lambda (1 - q)`` and an
    unlabeled one starts at no worth, not at its model's guess. ``usable_confidence`` (tau): a label under
    it is worth nothing (consensus would send it back for more votes; a model trained on it learns its noise),
    so an answer is valued by the chance that it lifts its item over tau.
    """
    if wrong_label_cost < 0:
        raise ValueError(f"wrong_label_cost must be >= 0, got {wrong_label_cost}")
    if not 0.0 <= usable_confidence < 1.0:
        raise ValueError(f"usable_confidence must be in [0, 1), got {usable_confidence}")
    if n_classes < 2:
        raise ValueError(f"need at least two classes, got {n_classes}")
    if not 1.0 / n_classes < labeler_accuracy <= 1.0:
        raise ValueError(f"labeler accuracy {labeler_accuracy} must beat chance (1/{n_classes}) and be at most 1")
    out: list[_Candidate] = []
    value = item_value(wrong_label_cost, usable_confidence)
    lam, linear = wrong_label_cost, usable_confidence == 0

    def after(p: AnyArray, accuracy: float, answers: int) -> AnyArray:
        # The linear value's expectation is exact from the expected accuracy (the figures in docs/allocation.md).
        if linear:
            return _value(expected_accuracy_after(p, accuracy, answers), lam)
        return expected_value_after(p, accuracy, answers, value)

    if new_items:
        prior = _normalised([n.posterior for n in new_items], n_classes)
        q = prior.max(axis=1)
        # An unlabeled item is worth its machine label at most, and nothing when that label would do harm.
        now = np.maximum(value(q), 0.0) if wrong_label_cost > 0 or usable_confidence > 0 else q
        one = after(prior, labeler_accuracy, 1) - now
        if n_classes <= LOOKAHEAD_MAX_CLASSES:
            two = (after(prior, labeler_accuracy, 2) - now) / 2.0
        else:
            two = np.full(len(q), -np.inf)
        rate = np.maximum(one, two)
        horizon = np.where(two > one + 1e-12, 2, 1)
        for new, p, g, h in zip(new_items, q, rate, horizon, strict=True):
            g = float(g) * new.weight
            out.append(
                _Candidate(
                    new.item_id, NEW_ITEM, g, costs.labeler, new.score,
                    f"new item: accuracy {p:.2f} now (model or prior), +{g:.3f} per answer over {h} answer(s)"
                    + (f" (weight {new.weight:.2f})" if new.weight != 1.0 else ""),
                )
            )
    if labeled:
        post = _normalised([item.posterior for item in labeled], n_classes)
        now = post.max(axis=1)
        worth = value(now)
        if linear:  # a label that turns right also stops doing harm
            rate, horizon = _linear_crowd_rate(post, labeler_accuracy)
            rate = rate * (1.0 + lam)
        else:
            rate, horizon = _crowd_rate(post, labeler_accuracy, value, worth)
        expert_gain = None
        if expert_accuracy is not None:
            expert_gain = ((1.0 + lam) * (expected_accuracy_after(post, expert_accuracy, 1) - now) if linear
                           else expected_value_after(post, expert_accuracy, 1, value) - worth)  # fmt: skip
        for i, item in enumerate(labeled):
            if item.more_votes_possible and item.n_votes < max_votes:
                out.append(
                    _Candidate(
                        item.item_id, MORE_LABEL, float(rate[i]), costs.labeler, 0.0,
                        f"{item.n_votes} vote(s), confidence {now[i]:.2f}: +{rate[i]:.3f} per answer over "
                        f"{horizon[i]} more",
                    )
                )
            if expert_gain is not None:
                out.append(
                    _Candidate(
                        item.item_id, EXPERT, float(expert_gain[i]), costs.expert, 0.0,
                        f"{item.n_votes} vote(s), confidence {now[i]:.2f}: an expert at {expert_accuracy:.2f} "
                        f"adds +{expert_gain[i]:.3f}",
                    )
                )
    return out


def allocate(
    slots: int,
    new_items: Sequence[NewItem],
    labeled: Sequence[LabeledItem],
    *,
    n_classes: int,
    labeler_accuracy: float,
    costs: Costs | None = None,
    expert_accuracy: float | None = DEFAULT_EXPERT_ACCURACY,
    max_votes: int = DEFAULT_MAX_VOTES,
    random_share: float = DEFAULT_RANDOM_SHARE,
    min_gain_per_cost: float = 0.0,
    wrong_label_cost: float = 0.0,
    usable_confidence: float = 0.0,
    seed: int = 0,
) -> list[Decision]:
    """Fill up to ``slots`` slots, one action per item per run (an answer's outcome is unknown until it comes).

    The random arm: each slot is random with probability ``random_share`` (the count is the share of
    ``slots`` rounded stochastically, positions drawn by ``seed``), and takes a uniformly random crowd
    action (a new item or one more label) not yet taken. Other slots take the best gain per cost left;
    an action whose gain per cost is not above ``min_gain_per_cost`` is never bought, so a run can leave
    slots empty when nothing is worth its cost. Deterministic for a given ``seed``.
    """
    if slots < 0:
        raise ValueError(f"slots must be >= 0, got {slots}")
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")
    costs = costs or Costs()
    offer = candidates(
        new_items, labeled, n_classes=n_classes, labeler_accuracy=labeler_accuracy, costs=costs,
        expert_accuracy=expert_accuracy, max_votes=max_votes, wrong_label_cost=wrong_label_cost,
        usable_confidence=usable_confidence,
    )
    ranked = sorted(offer, key=lambda c: (-c.rate, -c.score, c.action, c.item_id))
    crowd = [c for c in offer if c.action != EXPERT]
    rng = np.random.default_rng(seed)
    wanted = random_share * slots
    n_random = int(np.floor(wanted)) + int(rng.random() < wanted - np.floor(wanted))
    random_slots = set(rng.choice(slots, size=min(n_random, slots), replace=False).tolist()) if slots else set()
    random_order = [crowd[i] for i in rng.permutation(len(crowd))]
    taken: set[str] = set()
    decisions: list[Decision] = []
    best = iter(ranked)
    rand = iter(random_order)
    for slot in range(slots):
        arm: Arm = "random" if slot in random_slots else "allocator"
        source = rand if arm == "random" else best
        pick = next((c for c in source if c.item_id not in taken), None)
        if pick is None or (arm == "allocator" and pick.rate <= min_gain_per_cost):
            continue
        taken.add(pick.item_id)
        reason = pick.reason if arm == "allocator" else f"random arm ({random_share:.0%} of slots); {pick.reason}"
        decisions.append(
            Decision(slot, pick.item_id, pick.action, arm, pick.gain, pick.cost, pick.rate, reason)
        )
    return decisions
