"""A simulated crowd: labelers with known confusion matrices and lognormal lead times.

Pure and seeded (numpy only). :func:`plan_crowd` decides who labels which item with what answer;
``labeling_assets.local.crowd.simulate_crowd`` submits that plan to a real Label Studio. For multi-label
projects, :func:`plan_set_crowd` does the same with per-class miss and false-alarm rates
(:data:`SET_PRESETS`: expert, average, lazy, spammer) and ``simulate_set_crowd`` submits it.

Presets (accuracy = probability of answering the true class):

- ``expert`` 0.95, ``average`` 0.80, ``noisy`` 0.60: errors spread uniformly over the other classes;
- ``spammer``: uniform over all classes, whatever the truth;
- ``biased``: correct with probability 0.60, otherwise always the ``biased_toward`` class.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

K = TypeVar("K", bound=Hashable)  # how the caller keys its items: item ids, or plain ints in tests

PRESET_ACCURACY: dict[str, float] = {"expert": 0.95, "average": 0.80, "noisy": 0.60, "biased": 0.60}
PRESETS: tuple[str, ...] = ("expert", "average", "noisy", "spammer", "biased")


@dataclass(frozen=True)
class LabelerSpec:
    """One simulated labeler.

    Args:
        name: username in Label Studio (stable: re-runs reuse the user).
        preset: one of :data:`PRESETS`.
        accuracy: overrides the preset's accuracy (not used by ``spammer``).
        biased_toward: the class a ``biased`` labeler falls back to (default: the first class).
        median_lead_time_s: median seconds per annotation (lognormal).
        lead_time_sigma: lognormal sigma (spread) of the lead time.
    """

    name: str
    preset: str = "average"
    accuracy: float | None = None
    biased_toward: str | None = None
    median_lead_time_s: float = 8.0
    lead_time_sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown labeler preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {self.accuracy}")
        if self.median_lead_time_s <= 0 or self.lead_time_sigma < 0:
            raise ValueError("median_lead_time_s must be > 0 and lead_time_sigma >= 0")


@dataclass(frozen=True)
class PlannedAnnotation:
    """One annotation the crowd will submit."""

    item_id: Hashable  # an item id, or whatever key the caller's truth mapping uses for one
    labeler: str
    label: str
    lead_time_s: float


@dataclass(frozen=True)
class PlannedSetAnnotation:
    """One multi-label annotation the crowd will submit: ``labels`` sorted, () = "none of these"."""

    item_id: Hashable
    labeler: str
    labels: tuple[str, ...]
    lead_time_s: float


Planned = TypeVar("Planned", PlannedAnnotation, PlannedSetAnnotation)


@dataclass(frozen=True)
class CrowdPlan(Generic[Planned]):
    """The annotations a simulated crowd will submit: one class each (:func:`plan_crowd`) or one set of classes
    each (:func:`plan_set_crowd`)."""

    annotations: list[Planned] = field(default_factory=list)

    def by_labeler(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.annotations:
            counts[a.labeler] = counts.get(a.labeler, 0) + 1
        return counts


def default_crowd(n: int = 5, *, prefix: str = "sim") -> list[LabelerSpec]:
    """A mixed crowd of ``n`` labelers cycling expert, average, average, noisy, spammer, biased."""
    cycle = ("expert", "average", "average", "noisy", "spammer", "biased")
    return [
        LabelerSpec(name=f"{prefix}_{i:02d}_{cycle[i % len(cycle)]}", preset=cycle[i % len(cycle)])
        for i in range(n)
    ]


def confusion_matrix(spec: LabelerSpec, classes: Sequence[str]) -> NDArray[np.float64]:
    """Row-stochastic matrix ``P[true, answered]`` for ``spec`` over ``classes``."""
    k = len(classes)
    if k < 2:
        raise ValueError("need at least two classes")
    if spec.preset == "spammer":
        return np.full((k, k), 1.0 / k)
    acc = spec.accuracy if spec.accuracy is not None else PRESET_ACCURACY[spec.preset]
    if spec.preset == "biased":
        target = spec.biased_toward if spec.biased_toward is not None else classes[0]
        if target not in classes:
            raise ValueError(f"biased_toward {target!r} is not one of the classes")
        b = list(classes).index(target)
        matrix = np.eye(k) * acc
        matrix[:, b] += 1.0 - acc
        return matrix
    matrix = np.full((k, k), (1.0 - acc) / (k - 1))
    np.fill_diagonal(matrix, acc)
    return matrix


def lead_times(spec: "LabelerSpec | SetLabelerSpec", n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``n`` lognormal lead times (seconds) with the labeler's median and sigma."""
    return rng.lognormal(mean=np.log(spec.median_lead_time_s), sigma=spec.lead_time_sigma, size=n)


def plan_crowd(
    truth: Mapping[K, str],
    labelers: Sequence[LabelerSpec],
    classes: Sequence[str],
    *,
    overlap: int = 3,
    seed: int = 0,
    already_done: Mapping[K, set[str]] | None = None,
) -> CrowdPlan[PlannedAnnotation]:
    """Who labels which item, with which answer and lead time.

    Every item in ``truth`` ends up with ``min(overlap, len(labelers))`` distinct labelers; those in
    ``already_done[item]`` count toward it and are never picked again (no labeler labels an item
    twice), so a second run only tops up. Same inputs and seed give the same plan.

    Args:
        truth: item key -> true class (an item id, or any hashable key the caller uses for one).
        labelers: the crowd (distinct names).
        classes: the class list; every true label must be one of them.
        overlap: labelers per item.
        seed: RNG seed.
        already_done: item key -> labeler names that already labeled it.
    """
    names, index, rng, picks, times = _assignments(
        truth, list(truth.values()), labelers, classes, overlap=overlap, seed=seed, already_done=already_done
    )
    matrices = [confusion_matrix(a, classes) for a in labelers]
    out: list[PlannedAnnotation] = []
    uniforms = rng.random(len(picks))
    for n, (item, i) in enumerate(picks):
        row = np.cumsum(matrices[i][index[truth[item]]])
        answer = int(min(np.searchsorted(row, uniforms[n], side="right"), len(classes) - 1))
        out.append(
            PlannedAnnotation(
                item_id=item, labeler=names[i], label=classes[answer], lead_time_s=float(times[n])
            )
        )
    return CrowdPlan(out)


class _Assignments(NamedTuple):
    names: list[str]  # the labelers' names, in the crowd's order
    class_index: dict[str, int]  # class -> its index in the class list
    rng: np.random.Generator  # the plan's generator, past the assignment and the lead times
    picks: list[tuple[Any, int]]  # (item key, labeler index), see _assign
    times: NDArray[np.float64]  # one lead time per pick


def _assignments(
    truth: Mapping[K, object],
    true_classes: Sequence[str],
    labelers: Sequence[LabelerSpec] | Sequence["SetLabelerSpec"],
    classes: Sequence[str],
    *,
    overlap: int,
    seed: int,
    already_done: Mapping[K, set[str]] | None,
) -> _Assignments:
    """What every kind's plan shares: the checked crowd, who labels which item, and each pick's lead time, drawn
    from ``seed`` in that order. Raises ValueError for a bad crowd or a true class outside ``classes``."""
    names = _check_crowd(labelers, overlap)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(c) for c in true_classes if c not in index})
    if unknown:
        raise ValueError(f"true labels not in the class list: {unknown[:10]}")
    rng = np.random.default_rng(seed)
    picks = _assign(truth, names, overlap, already_done or {}, rng)
    return _Assignments(names, index, rng, picks, _lead_times_in_order(picks, labelers, rng))


def _check_crowd(labelers: Sequence[LabelerSpec] | Sequence["SetLabelerSpec"], overlap: int) -> list[str]:
    names = [a.name for a in labelers]
    if len(set(names)) != len(names):
        raise ValueError("labeler names must be distinct")
    if not labelers:
        raise ValueError("need at least one labeler")
    if overlap < 1:
        raise ValueError("overlap must be >= 1")
    return names


def _assign(
    truth: Mapping[K, object],
    names: list[str],
    overlap: int,
    done: Mapping[K, set[str]],
    rng: np.random.Generator,
) -> list[tuple[K, int]]:
    """(item, labeler index) pairs: ``min(overlap, len(names))`` distinct labelers per item, counting ``done``."""
    want = min(overlap, len(names))
    # Sort keys so the plan does not depend on dict insertion order.
    picks: list[tuple[K, int]] = []
    for item in sorted(truth, key=repr):
        have = done.get(item, set())
        free = [i for i, name in enumerate(names) if name not in have]
        need = max(0, want - (len(names) - len(free)))
        for i in rng.permutation(free)[:need]:
            picks.append((item, int(i)))
    return picks


def _lead_times_in_order(
    picks: list[tuple[K, int]],
    labelers: Sequence[LabelerSpec] | Sequence["SetLabelerSpec"],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """One lognormal lead time per pick, drawn labeler by labeler (so a labeler's times share their median)."""
    per_labeler: dict[int, list[int]] = {}
    for n, (_item, i) in enumerate(picks):
        per_labeler.setdefault(i, []).append(n)
    times = np.zeros(len(picks))
    for i, positions in per_labeler.items():
        times[positions] = lead_times(labelers[i], len(positions), rng)
    return times


# -- multi-label: per-class misses and false alarms ------------------------------------------------------------

# (miss rate, false-alarm rate, median lead time in seconds) per preset. A miss leaves a present class
# unticked (a false negative), a false alarm ticks an absent one. ``lazy`` reads carefully what it reads but
# skips findings, ``spammer`` ticks each box with the same probability whatever the image shows.
SET_PRESETS: dict[str, tuple[float, float, float]] = {
    "expert": (0.05, 0.01, 12.0),
    "average": (0.15, 0.04, 10.0),
    "lazy": (0.50, 0.01, 5.0),
    "spammer": (0.80, 0.20, 3.0),
}
# Each ticked box adds this share of the median to the lead time: a set with three findings takes longer.
SECONDS_PER_FINDING = 0.25


@dataclass(frozen=True)
class SetLabelerSpec:
    """One simulated multi-label labeler: per class, the chance to miss a present finding and to tick an absent one.

    Args:
        name: username in Label Studio (stable: re-runs reuse the user).
        preset: one of :data:`SET_PRESETS` (``expert``, ``average``, ``lazy``, ``spammer``).
        miss: overrides the preset's miss rate for every class.
        false_alarm: overrides the preset's false-alarm rate for every class.
        class_miss: per-class miss rates (win over ``miss``), e.g. a labeler blind to one finding.
        class_false_alarm: per-class false-alarm rates (win over ``false_alarm``).
        median_lead_time_s: median seconds per annotation of an empty set (lognormal); None = the preset's.
        lead_time_sigma: lognormal sigma (spread) of the lead time.
    """

    name: str
    preset: str = "average"
    miss: float | None = None
    false_alarm: float | None = None
    class_miss: Mapping[str, float] = field(default_factory=dict)
    class_false_alarm: Mapping[str, float] = field(default_factory=dict)
    median_lead_time_s: float = 0.0  # 0 = the preset's (set in __post_init__)
    lead_time_sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.preset not in SET_PRESETS:
            raise ValueError(f"unknown labeler preset {self.preset!r}; choose from {', '.join(SET_PRESETS)}")
        rates = [self.miss, self.false_alarm, *self.class_miss.values(), *self.class_false_alarm.values()]
        if any(r is not None and not 0.0 <= r <= 1.0 for r in rates):
            raise ValueError(f"miss and false-alarm rates must be in [0, 1], got {rates}")
        if self.median_lead_time_s == 0.0:
            object.__setattr__(self, "median_lead_time_s", SET_PRESETS[self.preset][2])
        if self.median_lead_time_s <= 0 or self.lead_time_sigma < 0:
            raise ValueError("median_lead_time_s must be > 0 and lead_time_sigma >= 0")


def default_set_crowd(n: int = 5, *, prefix: str = "sim") -> list[SetLabelerSpec]:
    """A mixed multi-label crowd of ``n`` labelers cycling expert, average, lazy, average, spammer."""
    cycle = ("expert", "average", "lazy", "average", "spammer")
    return [
        SetLabelerSpec(name=f"{prefix}_{i:02d}_{cycle[i % len(cycle)]}", preset=cycle[i % len(cycle)])
        for i in range(n)
    ]


def class_rates(
    spec: SetLabelerSpec, classes: Sequence[str]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-class (miss, false alarm) rates of ``spec``, in ``classes`` order."""
    unknown = sorted((set(spec.class_miss) | set(spec.class_false_alarm)) - set(classes))
    if unknown:
        raise ValueError(f"per-class rates for classes not in the class list: {unknown}")
    miss = spec.miss if spec.miss is not None else SET_PRESETS[spec.preset][0]
    false_alarm = spec.false_alarm if spec.false_alarm is not None else SET_PRESETS[spec.preset][1]
    return (
        np.array([spec.class_miss.get(c, miss) for c in classes], dtype=np.float64),
        np.array([spec.class_false_alarm.get(c, false_alarm) for c in classes], dtype=np.float64),
    )


def plan_set_crowd(
    truth: Mapping[K, Sequence[str]],
    labelers: Sequence[SetLabelerSpec],
    classes: Sequence[str],
    *,
    overlap: int = 3,
    seed: int = 0,
    already_done: Mapping[K, set[str]] | None = None,
) -> CrowdPlan[PlannedSetAnnotation]:
    """Who labels which item with which set of classes, and how long it takes: :func:`plan_crowd` for sets.

    Per item and class, a labeler ticks a present class with probability ``1 - miss`` and an absent one with
    probability ``false_alarm`` (independently: no answer depends on another labeler's). Assignment, top-ups
    (``already_done``) and determinism are :func:`plan_crowd`'s.

    Args:
        truth: item key -> true set of classes ([] = nothing present).
        labelers: the crowd (distinct names).
        classes: the class list; every true class must be one of them.
        overlap: labelers per item.
        seed: RNG seed.
        already_done: item key -> labeler names that already labeled it.
    """
    true_classes = [c for labels in truth.values() for c in labels]
    names, index, rng, picks, times = _assignments(
        truth, true_classes, labelers, classes, overlap=overlap, seed=seed, already_done=already_done
    )
    rates = [class_rates(a, classes) for a in labelers]
    uniforms = rng.random((len(picks), len(classes)))
    out: list[PlannedSetAnnotation] = []
    for n, (item, i) in enumerate(picks):
        present = np.zeros(len(classes), dtype=bool)
        present[[index[c] for c in truth[item]]] = True
        miss, false_alarm = rates[i]
        ticked = np.where(present, uniforms[n] >= miss, uniforms[n] < false_alarm)
        labels = tuple(sorted(str(classes[k]) for k in np.flatnonzero(ticked)))
        seconds = float(times[n]) * (1.0 + SECONDS_PER_FINDING * len(labels))
        out.append(PlannedSetAnnotation(item_id=item, labeler=names[i], labels=labels, lead_time_s=seconds))
    return CrowdPlan(out)
