"""Does a labeler's own confidence rating predict being right? Calibration of self-ratings, and a rating-weighted
vote and :func:`without_guesses` to test whether it would help consensus (``benchmarks/self_rating.py``; consensus
uses it only when a project opts in: ``docs/answer_fields.md``).

A rating r of 1..N is read as the stated probability of being right r / N (5 of 5: sure; 1 of 5: a guess), the
scale the expected calibration error (ECE) compares with the accuracy at that level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Calibration:
    """Accuracy per rating level (``levels``: rating -> (answers, share right)), the ECE against r / N, and
    Spearman's rank correlation of the rating with being right (None when either is constant)."""

    levels: dict[int, tuple[int, float]]
    ece: float
    spearman: float | None
    n: int


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (Pearson on average ranks: ties count as such); None when x or y is constant or empty."""
    rx, ry = pd.Series(x, dtype=float).rank(), pd.Series(y, dtype=float).rank()
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def calibration(ratings: Sequence[int], right: Sequence[bool], max_rating: int = 5) -> Calibration:
    """The calibration of self-ratings against whether each answer was right (vs gold or truth)."""
    r, ok = np.asarray(ratings, dtype=int), np.asarray(right, dtype=bool)
    if len(r) != len(ok):
        raise ValueError(f"{len(r)} ratings but {len(ok)} right/wrong flags")
    levels: dict[int, tuple[int, float]] = {}
    ece = 0.0
    for level in range(1, max_rating + 1):
        mask = r == level
        if mask.any():
            accuracy = float(ok[mask].mean())
            levels[level] = (int(mask.sum()), accuracy)
            ece += mask.sum() / len(r) * abs(accuracy - level / max_rating)
    return Calibration(levels, float(ece), spearman(r.tolist(), ok.astype(float).tolist()), len(r))


def rating_weighted_vote(votes: pd.DataFrame, classes: Sequence[str]) -> pd.Series:
    """item_id -> the class whose votes carry the most rating (each vote weighs its rating, 1..N); a tie goes to
    the class listed first in ``classes``. ``votes``: ``item_id, label, rating``."""
    order = {c: n for n, c in enumerate(classes)}
    totals = votes.groupby(["item_id", "label"], sort=False)["rating"].sum().reset_index()
    totals["_order"] = totals["label"].map(order)
    best = totals.sort_values(["item_id", "rating", "_order"], ascending=[True, False, True], kind="stable")
    return best.drop_duplicates("item_id").set_index("item_id")["label"]


def _key(value: Any) -> str:
    """A label as comparable text: a class name, or a set of classes as its sorted JSON list."""
    return json.dumps(sorted(map(str, value))) if isinstance(value, list | tuple | set) else str(value)


def self_rating_section(ratings: pd.DataFrame, truths: Mapping[str, pd.Series], max_rating: int = 5) -> str:
    """The dataset card's Markdown on the project's own self-ratings: per reference (``truths``: name -> item_id ->
    label, e.g. gold and consensus), how often a vote rated r was right, the ECE and Spearman's rho.
    ``ratings``: ``item_id, value`` (the rating), ``label`` (the vote it rates)."""
    lines = ["### Self-confidence vs being right", "",
             "How often a vote was right at each self-rating (`benchmarks/self_rating.py` measures the simulated "
             "crowd; consensus ignores it unless `drop_votes_self_rated_below` is set).", "",
             "| against | votes | ECE (vs r/5) | Spearman | right at rating 1..5 |", "|---|---|---|---|---|"]  # fmt: skip
    for name, truth in truths.items():
        known = truth.dropna()
        part = ratings[ratings["item_id"].isin(known.index)]
        if part.empty:
            lines.append(f"| {name} | 0 | | | |")
            continue
        right = [_key(label) == _key(known[item]) for item, label in zip(part["item_id"], part["label"], strict=True)]
        cal = calibration(part["value"].astype(int).tolist(), right, max_rating)
        levels = " / ".join(f"{cal.levels[r][1]:.0%} of {cal.levels[r][0]}" if r in cal.levels else "-"
                            for r in range(1, max_rating + 1))  # fmt: skip
        rho = "n/a" if cal.spearman is None else f"{cal.spearman:+.2f}"
        lines.append(f"| {name} | {cal.n} | {cal.ece:.3f} | {rho} | {levels} |")
    return "\n".join(lines) + "\n"


def without_guesses(votes: pd.DataFrame, ratings: pd.DataFrame, below: int) -> tuple[pd.DataFrame, int]:
    """``votes`` less those their labeler rated under ``below`` (a self-declared guess), and how many were left out.
    An item all of whose votes are guesses keeps them (it would otherwise lose its consensus on a rating alone); a
    vote without a rating stays. ``ratings``: ``item_id, labeler_id, value`` of the self-confidence field."""
    if votes.empty or ratings.empty or below <= 1:
        return votes, 0
    rated = ratings.drop_duplicates(["item_id", "labeler_id"], keep="last").set_index(["item_id", "labeler_id"])["value"]
    keys = pd.MultiIndex.from_frame(votes[["item_id", "labeler_id"]].astype(str))
    rating = pd.to_numeric(rated.reindex(keys), errors="coerce").to_numpy()
    guess = pd.Series(rating < below, index=votes.index)  # NaN (no rating) compares False: the vote stays
    all_guesses = guess.groupby(votes["item_id"]).transform("all")
    drop = guess & ~all_guesses
    return votes[~drop].reset_index(drop=True), int(drop.sum())
