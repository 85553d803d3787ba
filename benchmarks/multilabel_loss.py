"""Which multi-label loss to default to: every loss of ``core.training.multilabel`` on the same digit grids.

    python benchmarks/multilabel_loss.py --train 800 --val 300 --test 1500 --epochs 12   # README figures
    python benchmarks/multilabel_loss.py --seeds 0 1 2 3 4 --train 3000 --epochs 20

The data: 2x2 grids of real scikit-learn digit scans (the multi-label demo's generator,
``core.ingest.demo_data.grid_layouts``, when it is there; else the same process defined below), label set =
the digits present, skewed prevalence ("0" about 23%, "9" about 4%) and partner co-occurrence. Train, val
and test grids draw their cells from disjoint pools of scans, so a test grid never shows a scan seen in
training. Images are 16x16 (the scans' own 8x8 per cell), the model is the small CNN.

For each variant and seed: the test macro ROC-AUC, macro mAP, macro-F1 and exact-match ratio at the
per-class thresholds chosen on val, and the mean AUC of the three rarest classes. Printed as mean +- std
over seeds, and as JSON with --json. Needs only torch, numpy and scikit-learn (for the scans).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.training.config import TrainConfig  # noqa: E402
from labeling_assets.core.training.loop import fit  # noqa: E402
from labeling_assets.core.training.multilabel_metrics import evaluate_multilabel  # noqa: E402
from labeling_assets.core.training.predict import predict_proba  # noqa: E402

CLASSES = [str(d) for d in range(10)]
# (name, TrainConfig overrides): the losses DESIGN §10 lists, with and without pos_weight.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("bce", {"multi_label_loss": "bce", "pos_weight": "none"}),
    ("bce+pos_weight(inverse)", {"multi_label_loss": "bce", "pos_weight": "inverse_frequency"}),
    ("bce+pos_weight(effective)", {"multi_label_loss": "bce", "pos_weight": "effective_number"}),
    ("bce+rarest-label sampler", {"multi_label_loss": "bce", "multi_label_sampler": "weighted"}),
    ("focal(a=.25,g=2)", {"multi_label_loss": "focal"}),
    ("asl(g-=4,m=.05)", {"multi_label_loss": "asl"}),
    ("0.7bce(inverse)+0.3focal", {"multi_label_loss": "bce_focal", "pos_weight": "inverse_frequency"}),
    ("0.7bce+0.3focal+sampler", {"multi_label_loss": "bce_focal", "multi_label_sampler": "weighted"}),
    ("asl+sampler", {"multi_label_loss": "asl", "multi_label_sampler": "weighted"}),
]
# Every variant but the sampler's trains on plain shuffled epochs (the sampler replaces pos_weight).
SHUFFLE = {"multi_label_sampler": "shuffle"}


def _layouts(n: int, seed: int) -> tuple[list[list[int | None]], str]:
    try:
        from labeling_assets.core.ingest.demo_data import grid_layouts  # type: ignore[attr-defined]

        return grid_layouts(n, seed=seed), "core.ingest.demo_data.grid_layouts"
    except ImportError:
        return _local_layouts(n, seed), "benchmark's own layout generator"


def _local_layouts(n: int, seed: int) -> list[list[int | None]]:
    """The demo's process: 0-4 filled cells (35/30/20/10/5 %), digit d with weight 0.75**d, each further
    digit the first one's partner with probability 0.45."""
    partner = {0: 6, 1: 7, 2: 3, 3: 8, 4: 9, 5: 6, 6: 0, 7: 1, 8: 3, 9: 4}
    rng = np.random.default_rng(seed)
    weights = 0.75 ** np.arange(10)
    weights /= weights.sum()
    layouts: list[list[int | None]] = []
    for _ in range(n):
        filled = int(rng.choice(5, p=[0.35, 0.30, 0.20, 0.10, 0.05]))
        digits: list[int] = []
        for _cell in range(filled):
            first = digits[0] if digits else None
            digits.append(
                partner[first]
                if first is not None and rng.random() < 0.45
                else int(rng.choice(10, p=weights))
            )
        cells: list[int | None] = [None] * 4
        for position, digit in zip(rng.permutation(4)[:filled], digits, strict=True):
            cells[int(position)] = digit
        layouts.append(cells)
    return layouts


def build_split(n: int, pool: np.ndarray, digits: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 16x16 grids (uint8, white paper) from the scans in ``pool``, with their (n, 10) label sets."""
    layouts, _ = _layouts(n, seed)
    rng = np.random.default_rng([seed, 1])
    by_digit = {d: pool[digits.target[pool] == d] for d in range(10)}
    images = np.zeros((n, 1, 16, 16), dtype=np.uint8)
    labels = np.zeros((n, 10), dtype=np.uint8)
    for i, cells in enumerate(layouts):
        ink = np.zeros((16, 16))
        for position, digit in enumerate(cells):
            if digit is None:
                continue
            r, c = divmod(position, 2)
            ink[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = digits.images[rng.choice(by_digit[digit])]
            labels[i, digit] = 1
        noisy = 255 - ink * (255.0 / 16.0) + rng.normal(0, 6.0, (16, 16))
        images[i, 0] = noisy.clip(0, 255).astype(np.uint8)
    return images, labels


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.datasets import load_digits  # shipped with scikit-learn: nothing is downloaded

    torch.set_num_threads(args.threads)
    digits = load_digits()
    order = np.random.default_rng(12345).permutation(len(digits.target))
    pools = np.array_split(order, [int(0.6 * len(order)), int(0.8 * len(order))])
    results: dict[str, list[dict[str, float]]] = {
        name: [] for name, _ in VARIANTS if not args.variants or name in args.variants
    }
    source = _layouts(1, 0)[1]
    for seed in args.seeds:
        train = build_split(args.train, pools[0], digits, seed=1000 + seed)
        val = build_split(args.val, pools[1], digits, seed=2000 + seed)
        test = build_split(args.test, pools[2], digits, seed=3000 + seed)
        prevalence = train[1].mean(axis=0)
        rare = np.argsort(prevalence)[:3]
        for name, overrides in VARIANTS:
            if args.variants and name not in args.variants:
                continue
            config = TrainConfig(
                num_classes=10,
                image_size=16,
                channels=1,
                epochs=args.epochs,
                batch_size=64,
                lr=3e-3,
                patience=args.patience,
                device="cpu",
                seed=seed,
                task_kind="multi_label",
                **{**SHUFFLE, **overrides},
            )
            start = time.perf_counter()
            result = fit(train[0], train[1], val[0], val[1], config)
            probs = predict_proba(result.model, test[0], task_kind="multi_label")
            report = evaluate_multilabel(test[1], probs, CLASSES, result.thresholds)
            row = {
                "macro_auc": report.macro_auc,
                "macro_map": report.macro_map,
                "macro_f1": report.macro_f1,
                "micro_f1": report.micro_f1,
                "exact_match": report.exact_match,
                "rare3_auc": float(np.nanmean(report.auc_per_label[rare])),
                "epochs": float(len(result.history)),
                "seconds": time.perf_counter() - start,
            }
            results[name].append(row)
            print(f"seed {seed} {name:27s} " + " ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    return {"layouts": source, "prevalence_seed0": None, "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--test", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--variants", nargs="+", default=None, help="names of VARIANTS to run (default: all)")
    args = parser.parse_args()
    out = run(args)
    print(
        f"\nlayouts: {out['layouts']}; train {args.train} / val {args.val} / test {args.test} grids, "
        f"seeds {args.seeds}, up to {args.epochs} epochs, small CNN on CPU"
    )
    keys = ["macro_auc", "macro_map", "macro_f1", "exact_match", "rare3_auc", "seconds"]
    print("| loss | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, rows in out["results"].items():
        cells = []
        for key in keys:
            values = np.array([r[key] for r in rows])
            cells.append(
                f"{values.mean():.1f}" if key == "seconds" else f"{values.mean():.4f} ± {values.std():.4f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
