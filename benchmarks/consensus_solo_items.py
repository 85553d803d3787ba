"""Items with one answer: how each consensus method decides them, on real and simulated crowds (issue 14).

    python benchmarks/consensus_solo_items.py                # ~3 min on 2 cores (crowd-kit needed)
    python benchmarks/consensus_solo_items.py --seeds 3 --data /path/to/crowds

Our Dawid-Skene fits its confusions and class prior on the items that can identify them (two or more
answers, or gold) and decides an item one labeler answered alone with the fitted model
(``core.consensus.dawid_skene.informative_items``). Three views:

1. Real crowds (``../shared/data/real_crowd``): accuracy % on the truth items, split by how many answers
   an item has (one, two or more), for our majority vote and ``auto``.
2. Random solo items: simulated crowds (20 labelers 55-90 % right, errors spread evenly, truth skewed)
   where a share of the items got one answer from a random labeler and the rest three, i.e. Dawid-Skene's
   own assumption holds; accuracy % (mean over ``--seeds``) of ours and crowd-kit's MajorityVote and
   DawidSkene. Fitting on every item is the right model here; this shows what fitting on the overlapped
   items costs.
3. A solo expert: the same crowds without solo items, plus an always-right expert who alone answered 40
   items of the rare classes (the hard cases sent to them); accuracy % on the expert's items.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_crowd import DEFAULT_DATA, load  # noqa: E402

from labeling_assets.core.consensus.methods import aggregate  # noqa: E402

OURS = ("majority", "dawid_skene", "dawid_skene_pooled", "auto")
CROWDS = ((2, 0.8), (4, 0.6))  # (classes, share of the commonest class)


def simulate(seed: int, k: int, p0: float, solo_share: float, n_items: int = 2000, n_labelers: int = 20) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(k, n_items, p=[p0] + [(1 - p0) / (k - 1)] * (k - 1))
    accuracy = rng.uniform(0.55, 0.9, n_labelers)
    rows = []
    for i in range(n_items):
        for j in rng.choice(n_labelers, 1 if rng.random() < solo_share else 3, replace=False):
            right = rng.random() < accuracy[j]
            rows.append((f"i{i:05d}", f"u{j:02d}", int(truth[i] if right else (truth[i] + rng.integers(1, k)) % k)))
    return pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"]), truth


def with_solo_expert(seed: int, k: int, p0: float, n_solo: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    frame, _ = simulate(seed, k, p0, 0.0)
    rng = np.random.default_rng(seed + 1000)
    solo = pd.Series(rng.integers(1, k, n_solo), index=[f"s{i:03d}" for i in range(n_solo)])
    expert = pd.DataFrame({"item_id": solo.index, "labeler_id": "expert", "label": solo.to_numpy()})
    return pd.concat([frame, expert], ignore_index=True), solo


def crowdkit_labels(frame: pd.DataFrame) -> dict[str, pd.Series]:
    from crowdkit.aggregation import DawidSkene, MajorityVote

    ck = frame.rename(columns={"item_id": "task", "labeler_id": "worker"})
    return {"crowd-kit MV": MajorityVote().fit_predict(ck), "crowd-kit DS": DawidSkene(n_iter=100).fit_predict(ck)}


def ours_labels(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {f"ours {m}": aggregate(frame, m).set_index("item_id")["label"] for m in OURS}


def real_table(data: Path) -> pd.DataFrame:
    rows = []
    for folder in sorted(p for p in data.iterdir() if (p / "labels.txt").is_file() and (p / "truth.txt").is_file()):
        frame, truth = load(folder)
        answers = frame.groupby("item_id").size().loc[truth.index]
        labels = {m: aggregate(frame, m).set_index("item_id")["label"].loc[truth.index] for m in ("majority", "auto")}
        for name, mask in (("one answer", answers == 1), ("two or more", answers >= 2), ("all", answers >= 1)):
            if not mask.any():
                continue
            row: dict[str, object] = {"crowd": folder.name, "truth items": name, "n": int(mask.sum())}
            for method, got in labels.items():
                row[f"ours {method}"] = f"{100 * (got[mask] == truth[mask]).mean():.2f}"
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real crowd folders")
    parser.add_argument("--seeds", type=int, default=10, help="simulated crowds per setting")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.data.is_dir():
        print("1. Real crowds, accuracy % on truth items by how many answers an item has:\n")
        print(real_table(args.data).to_markdown(index=False))
    print(f"\n2. Random solo items, accuracy % on every item (mean of {args.seeds} seeds, 2,000 items):\n")
    rows = []
    for k, p0 in CROWDS:
        for share in (0.3, 0.6):
            scores: dict[str, list[float]] = {}
            for seed in range(args.seeds):
                frame, truth = simulate(seed, k, p0, share)
                index = [f"i{i:05d}" for i in range(len(truth))]
                for name, got in {**ours_labels(frame), **crowdkit_labels(frame)}.items():
                    scores.setdefault(name, []).append(100 * float((got.loc[index].to_numpy() == truth).mean()))
            rows.append({"crowd": f"{k} classes, {p0:.0%} one class, {share:.0%} of items one answer",
                         **{name: f"{np.mean(v):.2f}" for name, v in scores.items()}})  # fmt: skip
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(f"\n3. A solo expert (40 rare-class items only they answered), accuracy % on those items (mean of {args.seeds} seeds):\n")
    rows = []
    for k, p0 in CROWDS:
        scores = {}
        for seed in range(args.seeds):
            frame, solo = with_solo_expert(seed, k, p0)
            for name, got in {**ours_labels(frame), **crowdkit_labels(frame)}.items():
                scores.setdefault(name, []).append(100 * float((got.loc[solo.index] == solo).mean()))
        rows.append({"crowd": f"{k} classes, {p0:.0%} one class", **{n: f"{np.mean(v):.2f}" for n, v in scores.items()}})
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
