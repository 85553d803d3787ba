"""Spot-check sampling at scale: how long a run's pick takes, and how close each labeler's share is to their rate.

    python benchmarks/spot_check_sampling.py                       # 10^6 answers, 200 labelers
    python benchmarks/spot_check_sampling.py --answers 100000 --labelers 50 --seed 3

Half of the labelers are "new" (rate 0.30), half sampled at the base rate (0.10); the answers' annotation ids are
consecutive, their labelers drawn at random. ``core.consensus.spot_check.pick_sample`` runs twice: a first run
over every answer, then a second with 10% more answers and the first run's picks as already sampled (what every
collect run does). Printed: the seconds of each run, the realised share per rate group, and whether the second
run kept every earlier pick (it must: a draw depends only on the seed and the annotation id).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.spot_check import pick_sample  # noqa: E402


def _answers(n: int, labelers: int, rng: np.random.Generator, start: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"ls_annotation_id": np.arange(start, start + n), "item_id": [f"i{k}" for k in range(n)],
                         "labeler_id": rng.integers(0, labelers, n).astype(str), "label": "cat"})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--labelers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rates = {str(k): ((0.30, "new labeler") if k % 2 else (0.10, "base rate")) for k in range(args.labelers)}
    answers = _answers(args.answers, args.labelers, rng)
    began = time.perf_counter()
    first = pick_sample(answers, rates, args.seed, set())
    first_s = time.perf_counter() - began
    grown = pd.concat([answers, _answers(args.answers // 10, args.labelers, rng, start=args.answers + 1)])
    began = time.perf_counter()
    second = pick_sample(grown, rates, args.seed, set(first["ls_annotation_id"]))
    second_s = time.perf_counter() - began
    again = pick_sample(answers, rates, args.seed, set())
    per = answers.assign(rate=answers["labeler_id"].map(lambda k: rates[k][0]))
    picked = set(first["ls_annotation_id"])
    print(f"answers: {args.answers:,}, labelers: {args.labelers}, seed {args.seed}")
    print(f"first pick: {len(first):,} sampled in {first_s:.2f} s; second pick (+{args.answers // 10:,} answers, "
          f"earlier picks known): {len(second):,} more in {second_s:.2f} s")  # fmt: skip
    for rate, rows in per.groupby("rate"):
        share = rows["ls_annotation_id"].isin(picked).mean()
        print(f"rate {rate:.2f}: {len(rows):,} answers, sampled share {share:.4f}")
    print(f"a rerun picks the same answers: {again['ls_annotation_id'].tolist() == first['ls_annotation_id'].tolist()}; "
          f"new answers picked none again: {not (set(second['ls_annotation_id']) & picked)}")  # fmt: skip


if __name__ == "__main__":
    main()
