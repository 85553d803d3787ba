"""Drift alarms: detection delay and false alarms per labeler-month of the CUSUM detectors, on planted drifts.

    python benchmarks/drift_alarms.py                  # 5 seeds, 500 labelers x 2 years of stable work per seed
    python benchmarks/drift_alarms.py --seeds 3 --labelers 50 --years 5

Each series is one value per ISO week, as the labeler statistics keep them (core/drift/changepoint.py):
- gold accuracy: ``--gold-per-week`` gold answers a week (50), correct with probability p (0.85, 0.90, 0.95);
  the planted drift drops p by 15 points at week 12;
- speed: the weekly median log time per answer, log(20 s) plus week-to-week noise (sd 0.10); the planted drift
  halves the time (clicking through);
- class use: one class's share of a labeler's 100 answers a week, 0.25; the planted drift halves it to 0.125
  (a labeler who stopped using it);
- model-vs-consensus disagreement on one class: 40 items a week, 10% disagreement; the planted drift raises it
  to 25%.
Delay is counted in weeks: 1 = the alarm fires at the end of the first drifted week. False alarms are counted on
stable series (no drift; every alarm is false; each labeler's series starts with no history, so the noisier
first baseline weeks count) and reported per labeler-month and per 10 labeler-years. The gold
table sweeps the threshold ``h``; the chosen defaults (``RATE_H``, ``SPEED_H``) are the row marked *.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from labeling_assets.core.drift.changepoint import RATE_H, RATE_SHIFT, SPEED_H, mean_cusum, rate_cusum

DRIFT_WEEK = 12
AFTER_WEEKS = 8
WEEKS_PER_MONTH = 52 / 12


def rate_figures(
    rng: np.random.Generator, p: float, p_after: float, n: int, *, h: float, direction: int, labelers: int,
    years: int, runs: int = 500,
) -> tuple[float, list[int]]:  # fmt: skip
    """(false alarms on ``labelers`` x ``years`` of stable weeks, delays of ``runs`` planted drifts)."""
    weeks = 52 * years
    false = sum(
        len(rate_cusum(np.asarray(rng.binomial(n, p, size=weeks)).tolist(), [n] * weeks, h=h, direction=direction))
        for _ in range(labelers)
    )
    delays = []
    for _ in range(runs):
        rates = np.r_[np.full(DRIFT_WEEK, p), np.full(AFTER_WEEKS, p_after)]
        found = [c for c in rate_cusum(np.asarray(rng.binomial(n, rates)).tolist(), [n] * len(rates), h=h, direction=direction)
                 if c.alarm_index >= DRIFT_WEEK]  # fmt: skip
        delays.append(found[0].alarm_index - DRIFT_WEEK + 1 if found else AFTER_WEEKS + 1)
    return false, delays


def speed_figures(rng: np.random.Generator, *, h: float, labelers: int, years: int, runs: int = 500
                  ) -> tuple[float, list[int]]:  # fmt: skip
    weeks = 52 * years
    base = math.log(20.0)
    false = sum(len(mean_cusum((base + rng.normal(0, 0.1, weeks)).tolist(), h=h)) for _ in range(labelers))
    delays = []
    for _ in range(runs):
        values = np.r_[np.full(DRIFT_WEEK, base), np.full(AFTER_WEEKS, base - math.log(2))]
        found = [c for c in mean_cusum((values + rng.normal(0, 0.1, len(values))).tolist(), h=h)
                 if c.alarm_index >= DRIFT_WEEK]  # fmt: skip
        delays.append(found[0].alarm_index - DRIFT_WEEK + 1 if found else AFTER_WEEKS + 1)
    return false, delays


def row(name: str, false: list[float], delays: list[list[int]], labelers: int, years: int) -> str:
    months = labelers * years * 12
    per_month = [f / months for f in false]
    within = [np.mean(np.asarray(d) <= 2) for d in delays]
    median = [float(np.median(d)) for d in delays]
    return (f"| {name} | {np.mean(within):.1%} (min {min(within):.1%}) | {np.mean(median):.1f} | "
            f"{np.mean(per_month):.5f} | {np.mean(per_month) * 120:.2f} |")  # fmt: skip


HEADER = ("| series | detected within 2 weeks (mean over seeds, min) | median delay (weeks) | false alarms per "
          "labeler-month | per 10 labeler-years |\n|---|---|---|---|---|")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--labelers", type=int, default=500, help="stable labelers per seed (false alarms)")
    parser.add_argument("--years", type=int, default=2, help="years of stable weekly windows per labeler")
    parser.add_argument("--gold-per-week", type=int, default=50)
    args = parser.parse_args()
    seeds = range(args.seeds)
    L, Y = args.labelers, args.years
    print(f"{args.seeds} seeds; false alarms on {L} labelers x {Y} years a seed; 500 planted drifts a seed at week "
          f"{DRIFT_WEEK}; rate shift {RATE_SHIFT}\n")  # fmt: skip
    print("Gold accuracy, 15-point drop, threshold sweep (* = the default RATE_H)\n")
    print(HEADER.replace("| series |", "| p, h |"))
    for p in (0.95, 0.90, 0.85):
        for h in (3.0, 4.0, 5.0, 6.0):
            figures = [rate_figures(np.random.default_rng([s, int(p * 100), int(h * 10)]), p, p - 0.15,
                                    args.gold_per_week, h=h, direction=-1, labelers=L, years=Y) for s in seeds]
            mark = " *" if h == RATE_H else ""
            print(row(f"{p:.2f}, {h}{mark}", [f for f, _ in figures], [d for _, d in figures], L, Y))
    print("\nThe other series at the defaults\n")
    print(HEADER)
    cases = {
        "class use: share 0.25 -> 0.125 (100 answers/week)": (0.25, 0.125, 100, -1),
        "disagreement on a class: 0.10 -> 0.25 (40 items/week)": (0.10, 0.25, 40, 1),
    }
    for name, (p, after, n, direction) in cases.items():
        figures = [rate_figures(np.random.default_rng([s, n]), p, after, n, h=RATE_H, direction=direction,
                                labelers=L, years=Y) for s in seeds]  # fmt: skip
        print(row(name, [f for f, _ in figures], [d for _, d in figures], L, Y))
    speed = [speed_figures(np.random.default_rng([s, 7]), h=SPEED_H, labelers=L, years=Y) for s in seeds]
    print(row("speed: median time halves (sd 0.10 week to week)", [f for f, _ in speed], [d for _, d in speed], L, Y))


if __name__ == "__main__":
    main()
