"""A simulated crowd: labelers with known confusion matrices and lognormal lead times.

Pure and seeded (numpy only). :func:`plan_crowd` decides who labels which item with what answer;
``labeling_assets.local.crowd.simulate_crowd`` submits that plan to a real Label Studio.

Presets (accuracy = probability of answering the true class):

- ``expert`` 0.95, ``average`` 0.80, ``noisy`` 0.60: errors spread uniformly over the other classes;
- ``spammer``: uniform over all classes, whatever the truth;
- ``biased``: correct with probability 0.60, otherwise always the ``biased_toward`` class.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

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
class CrowdPlan:
    annotations: list[PlannedAnnotation] = field(default_factory=list)

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


def lead_times(spec: LabelerSpec, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
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
) -> CrowdPlan:
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
    names = [a.name for a in labelers]
    if len(set(names)) != len(names):
        raise ValueError("labeler names must be distinct")
    if not labelers:
        raise ValueError("need at least one labeler")
    if overlap < 1:
        raise ValueError("overlap must be >= 1")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in truth.values() if v not in index})
    if unknown:
        raise ValueError(f"true labels not in the class list: {unknown[:10]}")
    rng = np.random.default_rng(seed)
    matrices = [confusion_matrix(a, classes) for a in labelers]
    done = already_done or {}
    want = min(overlap, len(labelers))
    # Sort keys so the plan does not depend on dict insertion order.
    picks: list[tuple[K, int]] = []
    for item in sorted(truth, key=repr):
        have = done.get(item, set())
        free = [i for i, name in enumerate(names) if name not in have]
        need = max(0, want - (len(names) - len(free)))
        for i in rng.permutation(free)[:need]:
            picks.append((item, int(i)))
    out: list[PlannedAnnotation] = []
    per_labeler: dict[int, list[int]] = {}
    for n, (_item, i) in enumerate(picks):
        per_labeler.setdefault(i, []).append(n)
    times = np.zeros(len(picks))
    for i, positions in per_labeler.items():
        times[positions] = lead_times(labelers[i], len(positions), rng)
    uniforms = rng.random(len(picks))
    for n, (item, i) in enumerate(picks):
        row = np.cumsum(matrices[i][index[truth[item]]])
        answer = int(min(np.searchsorted(row, uniforms[n], side="right"), len(classes) - 1))
        out.append(
            PlannedAnnotation(item_id=item, labeler=names[i], label=classes[answer], lead_time_s=float(times[n]))
        )
    return CrowdPlan(out)
