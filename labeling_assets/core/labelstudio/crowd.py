"""A simulated crowd: annotators with known confusion matrices and lognormal lead times.

Pure and seeded (numpy only). :func:`plan_crowd` decides who labels which task with what answer;
``labeling_assets.local.crowd.simulate_crowd`` submits that plan to a real Label Studio.

Presets (accuracy = probability of answering the true class):

- ``expert`` 0.95, ``average`` 0.80, ``noisy`` 0.60: errors spread uniformly over the other classes;
- ``spammer``: uniform over all classes, whatever the truth;
- ``biased``: correct with probability 0.60, otherwise always the ``biased_toward`` class.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PRESET_ACCURACY: dict[str, float] = {"expert": 0.95, "average": 0.80, "noisy": 0.60, "biased": 0.60}
PRESETS: tuple[str, ...] = ("expert", "average", "noisy", "spammer", "biased")


@dataclass(frozen=True)
class AnnotatorSpec:
    """One simulated annotator.

    Args:
        name: username in Label Studio (stable: re-runs reuse the user).
        preset: one of :data:`PRESETS`.
        accuracy: overrides the preset's accuracy (not used by ``spammer``).
        biased_toward: the class a ``biased`` annotator falls back to (default: the first class).
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
            raise ValueError(f"unknown annotator preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {self.accuracy}")
        if self.median_lead_time_s <= 0 or self.lead_time_sigma < 0:
            raise ValueError("median_lead_time_s must be > 0 and lead_time_sigma >= 0")


@dataclass(frozen=True)
class PlannedAnnotation:
    """One annotation the crowd will submit."""

    task: Hashable
    annotator: str
    label: str
    lead_time_s: float


@dataclass(frozen=True)
class CrowdPlan:
    annotations: list[PlannedAnnotation] = field(default_factory=list)

    def by_annotator(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for a in self.annotations:
            counts[a.annotator] = counts.get(a.annotator, 0) + 1
        return counts


def default_crowd(n: int = 5, *, prefix: str = "sim") -> list[AnnotatorSpec]:
    """A mixed crowd of ``n`` annotators cycling expert, average, average, noisy, spammer, biased."""
    cycle = ("expert", "average", "average", "noisy", "spammer", "biased")
    return [
        AnnotatorSpec(name=f"{prefix}_{i:02d}_{cycle[i % len(cycle)]}", preset=cycle[i % len(cycle)])
        for i in range(n)
    ]


def confusion_matrix(spec: AnnotatorSpec, classes: Sequence[str]) -> np.ndarray:
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


def lead_times(spec: AnnotatorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` lognormal lead times (seconds) with the annotator's median and sigma."""
    return rng.lognormal(mean=np.log(spec.median_lead_time_s), sigma=spec.lead_time_sigma, size=n)


def plan_crowd(
    truth: Mapping[Hashable, str],
    annotators: Sequence[AnnotatorSpec],
    classes: Sequence[str],
    *,
    overlap: int = 3,
    seed: int = 0,
    already_done: Mapping[Hashable, set[str]] | None = None,
) -> CrowdPlan:
    """Who labels which task, with which answer and lead time.

    Every task in ``truth`` ends up with ``min(overlap, len(annotators))`` distinct annotators; those in
    ``already_done[task]`` count toward it and are never picked again (no annotator labels a task
    twice), so a second run only tops up. Same inputs and seed give the same plan.

    Args:
        truth: task key -> true class (the key is whatever the caller uses: LS task id, item id).
        annotators: the crowd (distinct names).
        classes: the class list; every true label must be one of them.
        overlap: annotators per task.
        seed: RNG seed.
        already_done: task key -> annotator names that already labeled it.
    """
    names = [a.name for a in annotators]
    if len(set(names)) != len(names):
        raise ValueError("annotator names must be distinct")
    if not annotators:
        raise ValueError("need at least one annotator")
    if overlap < 1:
        raise ValueError("overlap must be >= 1")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in truth.values() if v not in index})
    if unknown:
        raise ValueError(f"true labels not in the class list: {unknown[:10]}")
    rng = np.random.default_rng(seed)
    matrices = [confusion_matrix(a, classes) for a in annotators]
    done = already_done or {}
    want = min(overlap, len(annotators))
    # Sort keys so the plan does not depend on dict insertion order.
    picks: list[tuple[Hashable, int]] = []
    for task in sorted(truth, key=repr):
        have = done.get(task, set())
        free = [i for i, name in enumerate(names) if name not in have]
        need = max(0, want - (len(names) - len(free)))
        for i in rng.permutation(free)[:need]:
            picks.append((task, int(i)))
    out: list[PlannedAnnotation] = []
    per_annotator: dict[int, list[int]] = {}
    for n, (_task, i) in enumerate(picks):
        per_annotator.setdefault(i, []).append(n)
    times = np.zeros(len(picks))
    for i, positions in per_annotator.items():
        times[positions] = lead_times(annotators[i], len(positions), rng)
    uniforms = rng.random(len(picks))
    for n, (task, i) in enumerate(picks):
        row = np.cumsum(matrices[i][index[truth[task]]])
        answer = int(min(np.searchsorted(row, uniforms[n], side="right"), len(classes) - 1))
        out.append(
            PlannedAnnotation(
                task=task, annotator=names[i], label=classes[answer], lead_time_s=float(times[n])
            )
        )
    return CrowdPlan(out)
