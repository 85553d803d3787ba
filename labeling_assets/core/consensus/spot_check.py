"""Spot-check review: a random, seeded, auditable share of every labeler's answers is judged by a reviewer.

Pure functions (the store side is ``core/store/spot_checks.py``, the Label Studio side
``core/labelstudio/spot_check.py``):

- :func:`draws`: each answer's draw in [0, 1), a keyed hash of its Label Studio annotation id (SplitMix64's
  mixer over the id XOR a key made from the seed). It depends on nothing else, so a rerun draws the same, and new answers never change whether an
  earlier one is picked: an answer is sampled when its draw is below its labeler's rate.
- :func:`labeler_rate`: the labeler's rate and why: the new-labeler rate until the 95% Wilson interval of their
  gold score clears the gold gate (the gate passes), then the base rate.
- :func:`pick_sample`: the answers to sample now, with draw, rate and reason (what the audit row stores). A pick
  is never withdrawn; a labeler whose rate rises (a gold gate no longer clear) has more of their answers picked.
- :func:`acceptance_counts` and :func:`acceptance_gate`: accepted / reviewed per labeler (the newest verdict per
  sampled answer; a fix is not an acceptance) and its Wilson gate, which pauses a labeler like a failed gold gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.gates import RateGate, gate

ACCEPT = "accept"
REJECT = "reject"
FIX = "fix"
VERDICTS = (ACCEPT, REJECT, FIX)
DEFAULT_RATE = 0.10
DEFAULT_NEW_LABELER_RATE = 0.30
# A reviewer who must reject or correct more than one answer in five (surely, by the Wilson interval) is looking
# at a labeler the crowd should not count on: the class kinds' gold gate, on a person's judgement instead of gold.
DEFAULT_ACCEPTANCE_THRESHOLD = 0.8
SAMPLE_COLUMNS = ["ls_annotation_id", "item_id", "labeler_id", "answer", "answer_created_at", "draw", "rate",
                  "reason"]  # fmt: skip


def _mix(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finalizer (a bijection of 64-bit words that spreads every input bit over the output)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return out


def draws(seed: int, ls_annotation_ids: NDArray[Any]) -> NDArray[np.float64]:
    """Each answer's draw in [0, 1): its annotation id XOR a key made from the seed, mixed (SplitMix64); vectorized,
    so a run over 10^6 answers costs milliseconds, and the same on every run and machine."""
    key = _mix(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    mixed = _mix(np.asarray(ls_annotation_ids).astype(np.int64).view(np.uint64) ^ key)
    out: NDArray[np.float64] = (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)
    return out


def draw(seed: int, ls_annotation_id: int) -> float:
    """One answer's draw (:func:`draws`)."""
    return float(draws(seed, np.array([ls_annotation_id]))[0])


@dataclass(frozen=True)
class SamplingRates:
    """The project's spot-check settings."""

    rate: float = DEFAULT_RATE
    new_labeler_rate: float = DEFAULT_NEW_LABELER_RATE
    seed: int = 0


def labeler_rate(gold: RateGate | None, rates: SamplingRates) -> tuple[float, str]:
    """(rate, why) for a labeler whose gold gate is ``gold`` (None: no gold answered): the new-labeler rate until
    the gold interval is clear of the gate's threshold, then the base rate."""
    if gold is not None and gold.verdict == "pass":
        return rates.rate, f"base rate: {gold.reason}"
    why = gold.reason if gold is not None and gold.verdict != "no_data" else "no gold answered yet"
    return max(rates.rate, rates.new_labeler_rate), f"new labeler until the gold interval clears the gate: {why}"


def pick_sample(
    answers: pd.DataFrame,
    rates: Mapping[str, tuple[float, str]],
    seed: int,
    already: set[int],
) -> pd.DataFrame:
    """The answers to sample now (:data:`SAMPLE_COLUMNS`), by annotation id: those not sampled yet (``already``)
    whose draw is below their labeler's rate (``rates``: labeler id -> (rate, why); a labeler absent: not
    sampled). ``answers``: ``ls_annotation_id, item_id, labeler_id, label`` and optionally ``created_at``."""
    if answers.empty:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    frame = answers.reset_index(drop=True)  # positions, whatever index the caller's frame had
    ids = frame["ls_annotation_id"].astype("int64")
    codes, uniques = pd.factorize(frame["labeler_id"].astype(str))  # per labeler once, not per answer
    names_of = np.asarray(uniques, dtype=object)
    rate_of = np.array([rates[k][0] if k in rates else np.nan for k in names_of], dtype=float)[codes]
    todo = np.flatnonzero(~ids.isin(already).to_numpy(dtype=bool) & ~np.isnan(rate_of))
    drawn = draws(seed, ids.to_numpy()[todo])
    keep = drawn < rate_of[todo]
    at, chosen_draws = todo[keep], drawn[keep]
    chosen = frame.iloc[at]
    created = chosen["created_at"].tolist() if "created_at" in chosen else [None] * len(at)
    names = names_of[codes[at]]
    picks = pd.DataFrame({
        "ls_annotation_id": ids.to_numpy()[at], "item_id": chosen["item_id"].astype(str).to_numpy(),
        "labeler_id": names, "answer": chosen["label"].to_numpy(dtype=object),
        "answer_created_at": [None if pd.isna(c) else pd.Timestamp(c) for c in created],
        "draw": chosen_draws, "rate": rate_of[at], "reason": [rates[k][1] for k in names],
    }, columns=SAMPLE_COLUMNS)  # fmt: skip
    return picks.sort_values("ls_annotation_id", ignore_index=True)


def acceptance_counts(verdicts: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Labeler id -> (accepted, reviewed) from the newest verdict per sampled answer (``verdicts``:
    ``ls_annotation_id, labeler_id, verdict`` in the order they were given)."""
    if verdicts.empty:
        return {}
    newest = verdicts.drop_duplicates("ls_annotation_id", keep="last")
    out = {}
    for labeler_id, rows in newest.groupby("labeler_id", sort=True):
        out[str(labeler_id)] = (int((rows["verdict"] == ACCEPT).sum()), len(rows))
    return out


def acceptance_gate(accepted: int, reviewed: int, threshold: float = DEFAULT_ACCEPTANCE_THRESHOLD) -> RateGate:
    """The share of a labeler's reviewed answers a reviewer accepted, judged by its 95% Wilson interval (fails only
    when the whole interval is below ``threshold``)."""
    return gate(accepted, reviewed, threshold, higher_is_better=True, what="acceptance rate")
