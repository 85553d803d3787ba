"""Adaptive gold: a labeler sees hidden gold often until their gold score is known to be good, then rarely.

A labeler's rate is ``high`` (``ProjectSettings.gold_rate_new_labeler``, default 0.2) until the 95% Wilson
interval of their gold score is clear of the kind's gold gate (``gates.gold_gate`` passes: the same rule as the
spot checks' new-labeler rate), then ``floor`` (``gold_rate_floor``, default 0.05); a labeler whose interval
later straddles the gate again goes back to ``high``. No gold answered: ``high``.

Where the rate is applied: the queue mixes gold into the new tasks of a run, and in a shared Label Studio project
Label Studio, not the queue, decides who answers which task. So the queue's gold share is the mean rate of the
labelers working now (:func:`queue_gold_rate`); each labeler's own rate is what their evidence asks for, and is
reported beside it. Pure: no store, no Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from labeling_assets.core.consensus.gates import RateGate

DEFAULT_HIGH_RATE: Final = 0.20
DEFAULT_FLOOR_RATE: Final = 0.05


@dataclass(frozen=True)
class GoldRates:
    """The adaptive gold settings."""

    high: float = DEFAULT_HIGH_RATE
    floor: float = DEFAULT_FLOOR_RATE

    def __post_init__(self) -> None:
        if not (0.0 <= self.floor < 1.0 and 0.0 <= self.high < 1.0):
            raise ValueError(f"gold rates must be in [0, 1), got high={self.high}, floor={self.floor}")


def rate_for_verdict(verdict: str, rates: GoldRates) -> float:
    """The rate for a gold gate's verdict: the floor once it passes, else the high rate."""
    return rates.floor if verdict == "pass" else rates.high


def labeler_gold_rate(gold: RateGate | None, rates: GoldRates) -> tuple[float, str]:
    """(rate, why) for a labeler whose gold gate is ``gold`` (None: no gold answered yet)."""
    if gold is not None and gold.verdict == "pass":
        return rates.floor, f"floor: gold interval {gold.low:.2f}-{gold.high:.2f} clear of the gate {gold.threshold:.2f}"
    if gold is None or gold.verdict == "no_data":
        return rates.high, "high: no gold answered yet"
    return rates.high, (f"high: gold interval {gold.low:.2f}-{gold.high:.2f} not clear of the gate "
                        f"{gold.threshold:.2f} ({gold.n} gold answers)")  # fmt: skip


def queue_gold_rate(per_labeler: Mapping[str, float], working: Sequence[str], rates: GoldRates) -> tuple[float, str]:
    """(the queue's gold share, why): the mean rate of the ``working`` labelers (the high rate for one with no
    rate yet); the high rate when nobody works yet."""
    if not working:
        return rates.high, "no labeler yet: the high rate"
    values = [per_labeler.get(name, rates.high) for name in working]
    at_floor = sum(1 for v in values if v == rates.floor and rates.floor != rates.high)
    return sum(values) / len(values), f"mean of {len(values)} labelers' rates ({at_floor} at the floor)"


@dataclass(frozen=True)
class GoldSpend:
    """What hidden gold cost: answers on gold items and their price (None: no pay rate known)."""

    answers: int
    share_of_answers: float
    cost: float | None
    cost_source: str


def gold_spend(gold_answers_by_labeler: Mapping[str, int], all_answers: int,
               cost_per_answer: Mapping[str, float]) -> GoldSpend:  # fmt: skip
    """Sum the gold answers and price each labeler's at their cost per answer (``cost_per_answer``: name ->
    pay rate x median time, for those with both); the cost is None when no answering labeler has a price."""
    answers = int(sum(gold_answers_by_labeler.values()))
    priced = {n: c for n, c in gold_answers_by_labeler.items() if n in cost_per_answer}
    cost = sum(cost_per_answer[n] * c for n, c in priced.items()) if priced else None
    source = ("pay rate x median time per answer" + ("" if len(priced) == len(gold_answers_by_labeler) else
              f" ({len(gold_answers_by_labeler) - len(priced)} labelers without a price left out)")) if priced \
        else "no pay rate set"  # fmt: skip
    return GoldSpend(answers, answers / all_answers if all_answers else 0.0, cost, source)
