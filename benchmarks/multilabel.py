"""Multi-label (issue 16) on the bundled digit grids: consensus, splits and training, over several seeds.

    python benchmarks/multilabel.py                      # the defaults below, all three sections
    python benchmarks/multilabel.py --seeds 3 --sections consensus splits
    python benchmarks/multilabel.py --help

The data: ``core.ingest.demo_data`` 2x2 grids of scikit-learn digit scans, the label set = the digits
present (35% empty, prevalence from 23.5% for "0" down to 3.6% for "9", partner pairs 0+6, 1+7, 2+3, 4+9).
The seed sets the grid layouts, the crowd's answers, the splits and the model initialisation.

1. consensus: the simulated multi-label crowd (``core.labelstudio.crowd.plan_set_crowd``, 5 labelers
   cycling expert / average / lazy / average / spammer, per-class miss and false-alarm rates of
   ``SET_PRESETS``; overlap 3) labels every item; each method of ``core.consensus.multilabel`` makes a set
   per item; per-class F1 against the true sets, macro over classes (and the rare "8", "9"), paired
   difference to per-class ``majority``.
2. splits: train/val/test 70/15/15 of the true sets by iterative stratification
   (``core.dataset.iterative_stratification.assign_label_set_splits``) vs a random permutation; the
   largest |prevalence of a label in a split - prevalence overall| over labels and splits
   (``max_proportion_deviation``), in percentage points, and how many labels miss a split entirely.
3. training: a small CNN (``core.training.loop.fit`` with ``task_kind`` multi_label: sigmoid outputs, BCE with
   pos_weight, best-val-macro-AUC epoch kept) on CPU, once on the true sets and once on the crowd's
   consensus (the ``--train-method`` marginals as soft targets, its sets as val labels); macro ROC-AUC on
   the test split against the truth. Goal: consensus within 2 points of truth.

Printed: one table (mean +- sd over seeds) and the settings used.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.ingest import demo_data  # noqa: E402
from labeling_assets.core.labelstudio.crowd import default_set_crowd, plan_set_crowd  # noqa: E402

CLASSES = list(demo_data.GRID_CLASSES)
RARE = ["8", "9"]
SECTIONS = ("consensus", "splits", "training")
AUC_GOAL_POINTS = 2.0


@dataclass
class Table:
    """Rows of (section, what, metric) -> one value per seed."""

    rows: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def add(self, section: str, what: str, metric: str, value: float) -> None:
        self.rows.setdefault((section, what, metric), []).append(float(value))

    def print(self) -> None:
        print(f"\n{'section':<10} {'arm':<30} {'metric':<32} {'mean':>8} {'sd':>7} {'seeds':>5}")
        for (section, what, metric), values in self.rows.items():
            v = np.asarray(values)
            finite = v[np.isfinite(v)]
            mean = float(finite.mean()) if len(finite) else float("nan")
            sd = float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
            print(f"{section:<10} {what:<30} {metric:<32} {mean:>8.4f} {sd:>7.4f} {len(finite):>5}")


def true_sets(n_items: int, seed: int) -> dict[int, list[str]]:
    return {
        i: demo_data.grid_label_set(cells)
        for i, cells in enumerate(demo_data.grid_layouts(n_items, seed=seed))
    }


def crowd_votes(truth: dict[int, list[str]], n_labelers: int, overlap: int, seed: int) -> pd.DataFrame:
    plan = plan_set_crowd(truth, default_set_crowd(n_labelers), CLASSES, overlap=overlap, seed=seed)
    return pd.DataFrame(
        {
            "item_id": [a.item_id for a in plan.annotations],
            "labeler_id": [a.labeler for a in plan.annotations],
            "label": [list(a.labels) for a in plan.annotations],
        }
    )


def consensus_section(table: Table, args: argparse.Namespace, seed: int) -> None:
    from labeling_assets.core.consensus.multilabel import SET_METHODS, aggregate_sets, per_class_f1

    truth = true_sets(args.items, seed)
    votes = crowd_votes(truth, args.labelers, args.overlap, seed)
    macro: dict[str, float] = {}
    for method in [m for m in SET_METHODS if m != "auto"]:
        result = aggregate_sets(votes, method, classes=CLASSES)
        predicted = dict(zip(result.labels["item_id"], result.labels["label"], strict=True))
        scores = per_class_f1(predicted, truth, CLASSES).set_index("class")
        macro[method] = float(scores.loc["macro", "f1"])
        table.add("consensus", method, "per-class F1, macro", macro[method])
        table.add("consensus", method, "per-class F1, rare (8, 9)", float(scores.loc[RARE, "f1"].mean()))
        exact = np.mean([sorted(predicted[i]) == truth[i] for i in truth])
        table.add("consensus", method, "exact-set accuracy", float(exact))
    for method, value in macro.items():
        if method != "majority":
            table.add("consensus", method, "macro F1 - majority (points)", 100 * (value - macro["majority"]))


def splits_section(table: Table, args: argparse.Namespace, seed: int) -> None:
    from labeling_assets.core.dataset.iterative_stratification import (
        assign_label_set_splits,
        max_proportion_deviation,
    )
    from labeling_assets.core.dataset.splits import SPLITS, SplitRatios
    from labeling_assets.core.label_sets import to_indicator

    truth = true_sets(args.items, seed)
    items = pd.DataFrame({"item_id": [f"i{i:05d}" for i in truth], "label": list(truth.values())})
    indicator = to_indicator(items["label"], CLASSES).astype(np.int64)
    ratios = SplitRatios()
    assigned = assign_label_set_splits(items, CLASSES, ratios=ratios, seed=seed).frame.set_index("item_id")
    iterative = assigned.loc[items["item_id"], "split"].map(SPLITS.index).to_numpy()
    # Random: a seeded permutation cut at the same ratios.
    order = np.random.default_rng(seed).permutation(len(items))
    cuts = np.cumsum(np.round(ratios.as_array() * len(items)).astype(int))[:-1]
    random = np.empty(len(items), dtype=np.int64)
    for code, part in enumerate(np.split(order, cuts)):
        random[part] = code
    for name, codes in (("iterative", iterative), ("random", random)):
        table.add(
            "splits", name, "max |prevalence dev.| (points)", 100 * max_proportion_deviation(indicator, codes)
        )
        missing = sum(
            int(
                indicator[:, k].sum() > 0
                and any(indicator[codes == s, k].sum() == 0 for s in range(len(SPLITS)))
            )
            for k in range(len(CLASSES))
        )
        table.add("splits", name, "labels absent from a split", missing)


def training_section(table: Table, args: argparse.Namespace, seed: int, workdir: Path) -> None:
    import torch
    from PIL import Image

    from labeling_assets.core.consensus.multilabel import aggregate_sets
    from labeling_assets.core.label_sets import to_indicator
    from labeling_assets.core.training.config import TrainConfig
    from labeling_assets.core.training.loop import fit
    from labeling_assets.core.training.multilabel_metrics import macro_auc_and_map
    from labeling_assets.core.training.predict import predict_proba

    torch.set_num_threads(args.threads)
    grids = demo_data.render_digit_grids(
        workdir / f"grids-{seed}", n_images=args.items, cell=args.cell, seed=seed
    )
    truth_by_file = demo_data.load_truth_sets(grids.folder)
    names = sorted(truth_by_file)
    images = np.stack([np.asarray(Image.open(grids.folder / n))[None] for n in names]).astype(np.uint8)
    y_true = to_indicator([truth_by_file[n] for n in names], CLASSES)
    split = _iterative_split(names, [truth_by_file[n] for n in names], seed)
    labeled = np.flatnonzero(split != 2)
    votes = crowd_votes({int(i): truth_by_file[names[i]] for i in labeled}, args.labelers, args.overlap, seed)
    result = aggregate_sets(votes, args.train_method, classes=CLASSES)
    rows = result.labels["item_id"].astype(int).to_numpy()
    crowd_hard = y_true.copy()
    crowd_hard[rows] = to_indicator(result.labels["label"], CLASSES)
    crowd_soft = y_true.astype(np.float32)
    crowd_soft[rows] = result.probabilities
    train, val, test = (np.flatnonzero(split == s) for s in range(3))
    for arm, hard, soft in (
        ("true sets", y_true, None),
        (f"consensus ({args.train_method})", crowd_hard, crowd_soft),
    ):
        config = TrainConfig(
            num_classes=len(CLASSES),
            image_size=2 * args.cell,
            channels=1,
            epochs=args.epochs,
            batch_size=64,
            patience=0,
            device="cpu",
            seed=seed,
            backbone="small_cnn",
            task_kind="multi_label",
        )
        fitted = fit(
            images[train],
            hard[train],
            images[val],
            hard[val],
            config,
            train_targets=None if soft is None else soft[train],
        )
        probs = predict_proba(fitted.model, images[test], task_kind="multi_label")
        auc, mean_ap = macro_auc_and_map(y_true[test], probs)
        table.add("training", arm, "test macro ROC-AUC", auc)
        table.add("training", arm, "test mAP", mean_ap)
        if soft is None:
            reference = auc
        else:
            table.add("training", arm, "AUC true - consensus (points)", 100 * (reference - auc))


def _iterative_split(names: list[str], sets: list[list[str]], seed: int) -> np.ndarray:
    from labeling_assets.core.dataset.iterative_stratification import assign_label_set_splits
    from labeling_assets.core.dataset.splits import SPLITS

    frame = assign_label_set_splits(pd.DataFrame({"item_id": names, "label": sets}), CLASSES, seed=seed).frame
    return frame.set_index("item_id").loc[names, "split"].map(SPLITS.index).to_numpy()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", type=int, default=5, help="seeds 0..N-1 of consensus and splits (default 5)"
    )
    parser.add_argument(
        "--train-seeds",
        type=int,
        default=3,
        help="seeds 0..N-1 of the training section (default 3: ~3 min each)",
    )
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--items", type=int, default=1000, help="grid images per seed (default 1000)")
    parser.add_argument("--labelers", type=int, default=5, help="simulated labelers (default 5)")
    parser.add_argument("--overlap", type=int, default=3, help="labelers per item (default 3)")
    parser.add_argument(
        "--cell", type=int, default=16, help="pixels per grid cell: images are 2*cell square (16)"
    )
    parser.add_argument(
        "--epochs", type=int, default=12, help="training epochs, best val macro-AUC kept (12)"
    )
    parser.add_argument(
        "--train-method",
        default="dawid_skene_shared",
        help="consensus trained on (default dawid_skene_shared)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"digit grids: {args.items} items per seed, {args.seeds} seeds ({args.train_seeds} for training); crowd: {args.labelers} labelers "
        f"(expert, average, lazy, average, spammer), overlap {args.overlap}; training: small CNN on CPU, "
        f"{2 * args.cell} px, {args.epochs} epochs, batch 64, {args.threads} threads, trained on "
        f"{args.train_method}; sections: {', '.join(args.sections)}"
    )
    table = Table()
    runners: dict[str, Callable[[int, Path], None]] = {
        "consensus": lambda seed, _: consensus_section(table, args, seed),
        "splits": lambda seed, _: splits_section(table, args, seed),
        "training": lambda seed, workdir: training_section(table, args, seed, workdir),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(max(args.seeds, args.train_seeds if "training" in args.sections else 0)):
            for section in args.sections:
                if seed >= (args.train_seeds if section == "training" else args.seeds):
                    continue
                runners[section](seed, Path(tmp))
                print(f"  seed {seed} {section} done ({time.perf_counter() - started:.0f} s)", flush=True)
    table.print()
    gaps = table.rows.get(("training", f"consensus ({args.train_method})", "AUC true - consensus (points)"))
    if gaps:
        verdict = "PASS" if float(np.mean(gaps)) <= AUC_GOAL_POINTS else "FAIL"
        print(
            f"\nmacro-AUC gap true - consensus: {np.mean(gaps):.2f} points (goal: within {AUC_GOAL_POINTS:g}) -> {verdict}"
        )
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
