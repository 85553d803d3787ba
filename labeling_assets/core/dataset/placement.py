"""Placing new units of items into splits (the greedy steps of :func:`..splits.assign_splits`).

Works on integer codes: ``unit_of`` (unit per item), ``label_codes`` (class per item), ``split_codes``
(split per item, -1 while free) and ``counts`` (split x class), updated in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class Placement:
    """What the greedy steps read, and update in place (``split_codes``, ``counts``)."""

    unit_of: Ints  # unit per item
    label_codes: Ints  # class per item
    split_codes: Ints  # split per item, -1 while free
    counts: Ints  # split x class
    targets: Floats  # split x class: the items each split should hold
    ratio: Floats  # per split
    rng: np.random.Generator


def _relative_deficit(counts: Ints, targets: Floats) -> Floats:
    """How far each split is behind its overall target, as a fraction of that target."""
    overall = targets.sum(axis=1)
    deficit: Floats = (overall - counts.sum(axis=1)) / np.maximum(overall, 1e-9)
    return deficit


def place_mixed_groups(state: Placement, mask: Bools) -> None:
    """Greedy placement of units with several classes, largest first, each into the split whose per-class
    deficit it fills best (gain minus overflow); ties go to the split furthest behind overall."""
    unit_of, label_codes, split_codes, counts = state.unit_of, state.label_codes, state.split_codes, state.counts
    targets, ratio, rng = state.targets, state.ratio, state.rng
    n_classes = targets.shape[1]
    idx = np.flatnonzero(mask)
    # Per-unit class counts as (unit, class, count) runs, computed once outside the loop.
    pairs, pair_counts = np.unique(unit_of[idx] * n_classes + label_codes[idx], return_counts=True)
    pair_units, pair_classes = pairs // n_classes, pairs % n_classes
    starts = np.flatnonzero(np.r_[True, pair_units[1:] != pair_units[:-1]])
    ends = np.r_[starts[1:], len(pairs)]
    sizes = np.add.reduceat(pair_counts, starts)
    # Largest groups first (bin packing), random order among equal sizes so no class is favoured.
    visit = np.lexsort((rng.random(len(starts)), -sizes))
    # Plain Python lists: per unit the work is a handful of scalar operations, where numpy's per-call
    # overhead would dominate (about 5x slower at 10^5 groups).
    active = [s for s in range(len(ratio)) if ratio[s] > 0]
    overall = targets.sum(axis=1).tolist()
    target_rows = targets.tolist()
    count_rows = counts.tolist()
    split_totals = [float(sum(row)) for row in count_rows]
    classes_l, counts_l, starts_l, ends_l = (
        pair_classes.tolist(),
        pair_counts.tolist(),
        starts.tolist(),
        ends.tolist(),
    )
    sizes_l, units_l = sizes.tolist(), pair_units.tolist()
    unit_split = np.full(int(unit_of.max()) + 1, -1, dtype=np.int64)
    for u in visit.tolist():
        a, b = starts_l[u], ends_l[u]
        best, best_score = active[0], -np.inf
        for s in active:
            t_row, c_row = target_rows[s], count_rows[s]
            gain = 0.0
            for j in range(a, b):
                c = classes_l[j]
                room = t_row[c] - c_row[c]
                if room > 0:
                    gain += min(counts_l[j], room)
            behind = (overall[s] - split_totals[s]) / max(overall[s], 1e-9)
            score = 2.0 * gain - sizes_l[u] + 1e-6 * behind
            if score > best_score:
                best, best_score = s, score
        c_row = count_rows[best]
        for j in range(a, b):
            c_row[classes_l[j]] += counts_l[j]
        split_totals[best] += sizes_l[u]
        unit_split[units_l[a]] = best
    counts[:] = np.asarray(count_rows, dtype=counts.dtype)
    split_codes[idx] = unit_split[unit_of[idx]]


def _quotas(k: int, deficit: Floats, ratio: Floats, behind: Floats) -> Ints:
    """Split ``k`` items over the splits in proportion to their deficits, largest remainder; remainder
    ties go to the split furthest behind overall."""
    deficit = np.where(ratio > 0, deficit, 0.0)
    share = k * deficit / deficit.sum() if deficit.sum() > 0 else k * ratio
    alloc = np.floor(share + 1e-9).astype(np.int64)
    remainder = k - int(alloc.sum())
    if remainder > 0:
        frac = np.where(ratio > 0, share - alloc, -np.inf)
        alloc[np.lexsort((-behind, -frac))[:remainder]] += 1
    return alloc


def place_pure_units(state: Placement, mask: Bools) -> None:
    """Per class, toward the deficit: single-class groups first, cut in random order at quotas (a group goes
    where its midpoint falls), then single items by exact largest-remainder quotas, shuffled (seeded)."""
    unit_of, label_codes, split_codes, counts = state.unit_of, state.label_codes, state.split_codes, state.counts
    targets, ratio, rng = state.targets, state.ratio, state.rng
    idx = np.flatnonzero(mask)
    units, first, sizes = np.unique(unit_of[idx], return_index=True, return_counts=True)
    unit_class = label_codes[idx[first]]
    # Within a class: groups before singles, random order inside each kind.
    order = np.lexsort((rng.random(len(units)), sizes == 1, unit_class))
    units, sizes, unit_class = units[order], sizes[order], unit_class[order]
    starts = np.flatnonzero(np.r_[True, unit_class[1:] != unit_class[:-1]])
    ends = np.r_[starts[1:], len(units)]
    unit_split = np.full(int(unit_of.max()) + 1, -1, dtype=np.int64)
    block_items = np.add.reduceat(sizes, starts)
    # Larger classes first: their rounding matters least, and the smaller classes' ties then go toward
    # the splits that are behind overall.
    for b in np.argsort(-block_items, kind="stable"):
        c = int(unit_class[starts[b]])
        block = slice(int(starts[b]), int(ends[b]))
        b_units, b_sizes = units[block], sizes[block]
        n_groups = int(np.count_nonzero(b_sizes > 1))
        for kind in (slice(0, n_groups), slice(n_groups, len(b_units))):
            k_units, k_sizes = b_units[kind], b_sizes[kind]
            if not len(k_units):
                continue
            deficit = np.maximum(targets[:, c] - counts[:, c], 0.0)
            alloc = _quotas(int(k_sizes.sum()), deficit, ratio, _relative_deficit(counts, targets))
            midpoints = np.cumsum(k_sizes) - k_sizes / 2.0
            chosen = np.searchsorted(np.cumsum(alloc)[:-1], midpoints, side="right")
            # A zero-ratio split may still get a group whose midpoint lands on its empty range: push it on.
            chosen = np.where(ratio[chosen] > 0, chosen, np.argmax(ratio))
            unit_split[k_units] = chosen
            np.add.at(counts[:, c], chosen, k_sizes)
    split_codes[idx] = unit_split[unit_of[idx]]


def ensure_every_class_everywhere(
    unit_of: Ints,
    label_codes: Ints,
    is_new: Bools,
    split_codes: Ints,
    counts: Ints,
    ratio: Floats,
    classes: pd.Index,
    *,
    split_names: Sequence[str],
    min_items: int,
) -> list[str]:
    """Move the smallest new unit of a class into each split that lacks the class, when the class has
    enough items and the move takes no class out of the donor split; return notes on what is impossible."""
    notes: list[str] = []
    totals = counts.sum(axis=0)
    active = np.flatnonzero(ratio > 0)
    needs = [
        (c, s)
        for c in np.flatnonzero(totals >= max(min_items, len(active)))
        for s in active
        if counts[s, c] == 0
    ]
    if not needs:
        return notes
    unit_size = np.bincount(unit_of)
    frozen_units = np.zeros(len(unit_size), dtype=bool)
    frozen_units[unit_of[~is_new]] = True
    impossible: list[str] = []
    for c, s in needs:
        if counts[s, c] > 0:  # an earlier move already brought the class here
            continue
        # Donors must keep at least one item of the class themselves.
        rich = np.flatnonzero(counts[:, c] >= 2)
        candidates = np.unique(unit_of[(label_codes == c) & is_new & np.isin(split_codes, rich)])
        candidates = candidates[~frozen_units[candidates]]
        moved = False
        for u in candidates[np.argsort(unit_size[candidates], kind="stable")]:
            members = np.flatnonzero(unit_of == u)
            donor = int(split_codes[members[0]])
            cls, u_counts = np.unique(label_codes[members], return_counts=True)
            left = counts[donor, cls] - u_counts
            # Never empty the donor of a class that itself must be everywhere.
            if np.any((left == 0) & (totals[cls] >= min_items)):
                continue
            split_codes[members] = s
            counts[donor, cls] -= u_counts
            counts[s, cls] += u_counts
            moved = True
            break
        if not moved:
            impossible.append(f"{classes[c]} not in {split_names[s]}")
    if impossible:
        notes.append(
            "frozen assignments or group sizes keep these classes out of a split although they have "
            f"≥ {min_items} items: " + ", ".join(impossible)
        )
    return notes

