"""Drift alarms from the label store's frames: per labeler (gold accuracy, speed, class use) and per class
(the model's disagreement with consensus), each naming what a person should do.

The series are weekly, by the ISO week an answer was created in (the labeler statistics' windows, built the same
way as ``labeler_stats.weekly_windows``). A labeler's series skip the weeks they did not work: a holiday is not a
drift. Every alarm has a stable ``key`` (what drifted, whose, since which week) so the same alarm is posted once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.labeler_stats import iso_week
from labeling_assets.core.drift.changepoint import Change, mean_cusum, rate_cusum

GUIDELINES = "docs/guidelines.md"


@dataclass(frozen=True)
class Alarm:
    """One detected drift and the one line that tells a person what to do about it."""

    key: str  # kind:subject:first drifted week (de-duplication)
    kind: str  # gold_accuracy | speed | class_use | disagreement
    subject: str  # the labeler's name, or the class
    since: str  # ISO week the change began (the CUSUM excursion's first window)
    detected: str  # ISO week the threshold was crossed
    baseline: float
    recent: float
    text: str  # one line: what changed, and what to do
    labeler: str | None = None  # the labeler's name (None: a class's alarm)


def _same(answer: Any, truth: Any) -> bool:
    if isinstance(answer, list | tuple) or isinstance(truth, list | tuple):
        return sorted(map(str, answer if isinstance(answer, list | tuple) else [answer])) == sorted(
            map(str, truth if isinstance(truth, list | tuple) else [truth])
        )
    return bool(answer == truth)


def _uses(answer: Any, label: str) -> bool:
    return label in answer if isinstance(answer, list | tuple) else bool(answer == label)


def _weeks(frame: pd.DataFrame) -> pd.Series:
    return frame["iso_week"] if "iso_week" in frame else iso_week(frame["created_at"])


def _answers_since(weeks: pd.Series, since: str) -> int:
    return int((weeks >= since).sum())


def labeler_alarms(
    votes: pd.DataFrame, gold: pd.Series, classes: Sequence[str], names: Mapping[str, str] | None = None,
) -> list[Alarm]:  # fmt: skip
    """Alarms on each labeler's weekly gold accuracy, median time per answer and use of each class.

    ``votes``: ``labeler_id, item_id, label, lead_time_s, created_at`` (one row per vote); ``gold``: item_id ->
    the hidden gold label; ``names``: labeler id -> the name people read (the partition key)."""
    names = names or {}
    if votes.empty or "created_at" not in votes:
        return []
    dated = votes[votes["created_at"].notna()].copy()
    if dated.empty:
        return []
    dated["iso_week"] = _weeks(dated)
    # Gold is looked up once for every vote (not per labeler-week: that is most of the time on a big store).
    truth = dated["item_id"].map(gold.to_dict()) if len(gold) else pd.Series(None, index=dated.index, dtype=object)
    is_gold = truth.notna().to_numpy()
    dated["is_gold"] = is_gold
    dated["right"] = [bool(g) and _same(a, t) for g, a, t in zip(is_gold, dated["label"], truth, strict=True)]
    alarms: list[Alarm] = []
    for labeler_id, rows in dated.groupby("labeler_id", sort=True):
        name = names.get(str(labeler_id), str(labeler_id))
        weeks = sorted(map(str, rows["iso_week"].unique()))
        by_week = {str(w): g for w, g in rows.groupby("iso_week")}
        alarms += _gold(name, rows, weeks, by_week)
        alarms += _speed(name, rows, weeks, by_week)
        alarms += _class_use(name, rows, classes, weeks, by_week)
    return alarms


def _last(name: str, rows: pd.DataFrame, since: str) -> str:
    return f"review {name}'s last {_answers_since(rows['iso_week'], since)} answers"


def _gold(name: str, rows: pd.DataFrame, weeks: list[str], by_week: dict[str, pd.DataFrame]) -> list[Alarm]:
    right = [int(by_week[w]["right"].sum()) for w in weeks]
    total = [int(by_week[w]["is_gold"].sum()) for w in weeks]
    return [
        _alarm("gold_accuracy", name, weeks, c,
               f"{name}'s gold accuracy fell from {c.baseline:.0%} to {c.recent:.0%} since {weeks[c.start_index]}"
               f" ({sum(total[c.start_index:c.alarm_index + 1])} gold answers): {_last(name, rows, weeks[c.start_index])}",
               name)
        for c in rate_cusum(right, total, direction=-1)
    ]  # fmt: skip


def _speed(name: str, rows: pd.DataFrame, weeks: list[str], by_week: dict[str, pd.DataFrame]) -> list[Alarm]:
    if "lead_time_s" not in rows:
        return []
    values: list[float | None] = []
    for w in weeks:
        times = pd.to_numeric(by_week[w]["lead_time_s"], errors="coerce")
        times = times[times > 0]
        values.append(math.log(float(times.median())) if len(times) else None)
    out = []
    for c in mean_cusum(values):
        since = weeks[c.start_index]
        why = "clicking through without looking?" if c.recent < c.baseline else "a harder batch or an unclear rule?"
        out.append(_alarm("speed", name, weeks, c,
                          f"{name}'s median time per answer went from {math.exp(c.baseline):.0f} s to "
                          f"{math.exp(c.recent):.0f} s since {since} ({why}): {_last(name, rows, since)}", name))  # fmt: skip
    return out


def _class_use(name: str, rows: pd.DataFrame, classes: Sequence[str], weeks: list[str],
               by_week: dict[str, pd.DataFrame]) -> list[Alarm]:  # fmt: skip
    total = [len(by_week[w]) for w in weeks]
    out = []
    for label in classes:
        used = [int(sum(_uses(a, label) for a in by_week[w]["label"])) for w in weeks]
        for direction, verb in ((-1, "fell"), (1, "rose")):
            for c in rate_cusum(used, total, direction=direction):
                since = weeks[c.start_index]
                out.append(_alarm(
                    f"class_use_{'down' if direction < 0 else 'up'}", f"{name}/{label}", weeks, c,
                    f"{name}'s use of class {label} {verb} from {c.baseline:.0%} to {c.recent:.0%} of answers since "
                    f"{since}: {_last(name, rows, since)} and compare them with the guideline for {label} "
                    f"({GUIDELINES}); if the items changed instead, nothing to do", name,
                ))  # fmt: skip
    return out


def disagreement_alarms(
    model_class: pd.Series, consensus: pd.Series, labeled_week: pd.Series, classes: Sequence[str],
) -> list[Alarm]:  # fmt: skip
    """Alarms on the weekly share of items of each consensus class where the model's top class differs.

    ``model_class``: item_id -> the prelabel's top class; ``consensus``: item_id -> consensus label;
    ``labeled_week``: item_id -> ISO week the item was first answered (the week its consensus belongs to)."""
    common = model_class.index.intersection(consensus.index).intersection(labeled_week.index)
    if common.empty:
        return []
    frame = pd.DataFrame({"model": model_class[common], "truth": consensus[common], "week": labeled_week[common]})
    frame = frame[frame["truth"].map(lambda v: isinstance(v, str))]
    weeks = sorted(frame["week"].unique())
    alarms = []
    for label in classes:
        rows = frame[frame["truth"] == label]
        by_week = {w: g for w, g in rows.groupby("week")}
        missed = [int((by_week[w]["model"] != label).sum()) if w in by_week else 0 for w in weeks]
        total = [len(by_week[w]) if w in by_week else 0 for w in weeks]
        for c in rate_cusum(missed, total, direction=1):
            since = weeks[c.start_index]
            recent = rows[(rows["week"] >= since) & (rows["model"] != label)]["model"]
            other = Counter(map(str, recent)).most_common(1)[0][0] if len(recent) else "another class"
            alarms.append(_alarm(
                "disagreement", str(label), weeks, c,
                f"the model disagrees with consensus on class {label} in {c.recent:.0%} of items since {since} "
                f"(was {c.baseline:.0%}), mostly answering {other}: refresh the guideline for class pair "
                f"{label}/{other} ({GUIDELINES}), or retrain if the crowd is right",
            ))  # fmt: skip
    return alarms


def _alarm(kind: str, subject: str, weeks: list[str], c: Change, text: str, labeler: str | None = None) -> Alarm:
    since, detected = weeks[c.start_index], weeks[c.alarm_index]
    return Alarm(f"{kind}:{subject}:{since}", kind, subject, since, detected, c.baseline, c.recent,
                 f"Drift: {text}.", labeler)  # fmt: skip
