"""Is the consensus confidence a probability? Calibration of each method on real and simulated crowds.

    python benchmarks/consensus_calibration.py                     # real crowds + simulated, 3 seeds
    python benchmarks/consensus_calibration.py --seeds 5 --draws 10 --out /tmp/calib

The confidence is what ``consensus_labels`` stores per item: the method's probability of the label it
chose (Dawid-Skene: posterior; majority: vote share; CROWDLAB: cleanlab's consensus quality score).
Calibration error is ECE over 10 equal-width confidence bins (``core.consensus.calibration``), top-label:
|mean confidence - accuracy| per bin, weighted by the bin's items; 0 is perfect.

1. No gold: per method, accuracy and ECE on the truth items of each real crowd in
   ``../shared/data/real_crowd`` (loaded as ``benchmarks/real_crowd.py`` does) and of the simulated crowds
   of ``benchmarks/consensus.py`` (10 classes, 2,000 items, ``--seeds`` seeds), with the reliability table
   of ``auto`` and a reliability plot per crowd (PNG under the printed output folder).
2. Calibration on gold, held out: ``--gold-share`` of the truth (at least 30 items) revealed as gold, the
   method run with it (gold clamped, as the pipeline does) with and without ``calibrate=True``
   (a temperature fitted on the gold items), scored on the other truth items: ECE and accuracy, mean of
   ``--draws`` draws (real) or over seeds (simulated).
3. The held-back crowd's shape: binary, 176 labelers whose answer counts are log-normal (median about
   30-50), 3 answers per item, 8,315 items, in three kinds of labelers (``SHAPES``). Accuracy of our
   methods and ``auto`` against crowd-kit's DawidSkene (and its EM iterations) per shape and seed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from consensus import CLASSES, MIXES, simulate, simulated_pred_probs  # noqa: E402
from real_crowd import DEFAULT_DATA, load  # noqa: E402

from labeling_assets.core.consensus.calibration import (  # noqa: E402
    BINS,
    MIN_GOLD_FOR_CALIBRATION,
    expected_calibration_error,
    reliability_table,
)
from labeling_assets.core.consensus.methods import aggregate_full  # noqa: E402

METHODS = ("majority", "dawid_skene", "dawid_skene_pooled", "dawid_skene_weak", "auto")
CALIBRATED = ("dawid_skene", "dawid_skene_pooled", "dawid_skene_weak", "auto")


def scored(labels: pd.DataFrame, truth: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) on the truth items."""
    by_item = labels.set_index("item_id").reindex(truth.index)
    return by_item["confidence"].to_numpy(float), (by_item["label"].astype(object).to_numpy() == truth.to_numpy())


def simulated_crowds(seeds: int) -> dict[str, list[tuple[pd.DataFrame, pd.Series, np.ndarray]]]:
    """Per mix: (annotations, truth by item id, CROWDLAB's pred_probs in sorted item order) per seed."""
    crowds: dict[str, list[tuple[pd.DataFrame, pd.Series, np.ndarray]]] = {}
    for mix in MIXES:
        for seed in range(seeds):
            frame, truth = simulate(mix.presets, mix.n_items, mix.overlap, seed)
            ids = np.char.add("item", np.arange(len(truth)).astype(str))
            order = pd.Series(np.sort(frame["item_id"].unique())).str[4:].astype(int).to_numpy()
            crowds.setdefault(f"sim {mix.name}", []).append(
                (frame, pd.Series(np.asarray(CLASSES, dtype=object)[truth], index=ids), simulated_pred_probs(truth, order, seed))
            )
    return crowds


SHAPES = {
    "balanced": "truth 50/50; labelers right 55-80 %, a fifth 99 %, each leaning up to 0.2 toward one class",
    "skewed": "truth 12 % yes; labelers right on no-items 85-99 %, on yes-items 30-95 % (they miss positives)",
    "activity": "truth 30 % yes; the less active half right 45-60 %, the more active half 85-97 %",
}


def heldback_shape(seed: int, shape: str = "balanced", n_items: int = 8315, n_labelers: int = 176) -> tuple[pd.DataFrame, pd.Series]:
    """A binary crowd shaped like the held-back one (module docstring, part 3; ``SHAPES``)."""
    rng = np.random.default_rng(seed)
    activity = np.log(rng.lognormal(0.0, 1.8, n_labelers))
    if shape == "balanced":
        truth = (rng.random(n_items) < 0.5).astype(np.int64)
        accuracy = rng.uniform(0.55, 0.8, n_labelers)
        accuracy[rng.random(n_labelers) < 0.2] = 0.99  # a fifth are near-perfect
        tilt = rng.choice([-1.0, 1.0], n_labelers) * rng.uniform(0.0, 0.2, n_labelers)
        right_if = np.stack([np.clip(accuracy - tilt, 0.05, 1.0), np.clip(accuracy + tilt, 0.05, 1.0)], axis=1)
    elif shape == "skewed":
        truth = (rng.random(n_items) < 0.12).astype(np.int64)
        right_if = np.stack([rng.uniform(0.85, 0.99, n_labelers), rng.uniform(0.3, 0.95, n_labelers)], axis=1)
    else:
        truth = (rng.random(n_items) < 0.3).astype(np.int64)
        active = activity.argsort().argsort() >= n_labelers // 2
        accuracy = np.where(active, rng.uniform(0.85, 0.97, n_labelers), rng.uniform(0.45, 0.6, n_labelers))
        right_if = np.stack([accuracy, accuracy], axis=1)
    # 3 distinct labelers per item, each drawn in proportion to activity (Gumbel top-k).
    who = np.argsort(-(activity + rng.gumbel(size=(n_items, n_labelers))), axis=1)[:, :3].ravel()
    item = np.repeat(np.arange(n_items), 3)
    right = rng.random(len(item)) < right_if[who, truth[item]]
    answer = np.where(right, truth[item], 1 - truth[item])
    names = np.array(["no", "yes"], dtype=object)
    frame = pd.DataFrame(
        {"item_id": np.char.add("i", item.astype(str)), "labeler_id": np.char.add("w", who.astype(str)), "label": names[answer]}
    )
    return frame, pd.Series(names[truth], index=np.char.add("i", np.arange(n_items).astype(str)))


def no_gold_table(crowds: dict[str, list[tuple[pd.DataFrame, pd.Series, Any]]], out: Path) -> None:
    rows, reliability = [], []
    for name, cases in crowds.items():
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        row: dict[str, Any] = {"crowd": name + (f" ({len(cases)} seeds)" if len(cases) > 1 else "")}
        methods = (*METHODS, "crowdlab") if cases[0][2] is not None else METHODS
        for method in methods:
            conf, hit, ece, used = [], [], [], []
            for frame, truth, probs in cases:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = aggregate_full(frame, method, probs if method == "crowdlab" else None)
                c, h = scored(result.labels, truth)
                conf.append(c)
                hit.append(h)
                ece.append(expected_calibration_error(c, h))
                used.append(result.method)
            curves[method] = (np.concatenate(conf), np.concatenate(hit))
            row[f"{method} acc %"] = f"{100 * curves[method][1].mean():.2f}"
            row[f"{method} ECE"] = f"{np.mean(ece):.4f}"
            if method == "auto":
                row["auto used"] = ", ".join(f"{m} x{used.count(m)}" for m in sorted(set(used)))
        rows.append(row)
        table = reliability_table(*curves["auto"])
        reliability.append((name, table))
        _plot(name, curves, out / f"reliability_{name.replace(' ', '_')}.png")
    print(f"\nNo gold: accuracy % and ECE ({BINS} equal-width bins, top-label confidence) on truth items; "
          "simulated: ECE is the mean over seeds:\n")
    print(pd.DataFrame(rows).to_markdown(index=False))
    print("\nReliability of auto (all seeds pooled): items, mean confidence and accuracy per confidence bin:\n")
    for name, table in reliability:
        cells = ", ".join(
            f"[{r.low:.1f},{r.high:.1f}) n={r.n} conf {r.mean_confidence:.3f} acc {r.accuracy:.3f}"
            for r in table.itertuples()
        )
        print(f"- {name}: {cells}")


def _plot(name: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for method, (conf, hit) in curves.items():
        table = reliability_table(conf, hit)
        ax.plot(table["mean_confidence"], table["accuracy"], marker="o", label=f"{method} (ECE {expected_calibration_error(conf, hit):.3f})")
    ax.set(xlabel="confidence", ylabel="accuracy", title=f"reliability: {name}", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=96)
    plt.close(fig)


def gold_table(crowds: dict[str, list[tuple[pd.DataFrame, pd.Series, Any]]], share: float, draws: int) -> None:
    rows = []
    for name, cases in crowds.items():
        # Real crowds: `draws` gold draws of the one crowd; simulated: one draw per seed.
        runs = [(cases[0][0], cases[0][1], d) for d in range(draws)] if len(cases) == 1 else [(f, t, s) for s, (f, t, _) in enumerate(cases)]
        for method in CALIBRATED:
            figures: dict[str, list[float]] = {"ece raw": [], "ece cal": [], "acc raw": [], "acc cal": [], "n gold": []}
            for frame, truth, draw in runs:
                rng = np.random.default_rng(draw)
                n_gold = max(MIN_GOLD_FOR_CALIBRATION, int(round(share * len(truth))))
                revealed = np.zeros(len(truth), dtype=bool)
                revealed[rng.choice(len(truth), n_gold, replace=False)] = True
                gold, rest = truth[revealed], truth[~revealed]
                for key, calibrate in (("raw", False), ("cal", True)):
                    result = aggregate_full(frame, method, gold=gold, calibrate=calibrate)
                    c, h = scored(result.labels, rest)
                    figures[f"ece {key}"].append(expected_calibration_error(c, h))
                    figures[f"acc {key}"].append(100 * h.mean())
                figures["n gold"].append(n_gold)
            mean = {k: float(np.mean(v)) for k, v in figures.items()}
            better = int(sum(c < r for c, r in zip(figures["ece cal"], figures["ece raw"], strict=True)))
            rows.append(
                {
                    "crowd": name,
                    "method": method,
                    "gold items": f"{mean['n gold']:.0f}",
                    "held-out acc % raw / calibrated": f"{mean['acc raw']:.2f} / {mean['acc cal']:.2f}",
                    "held-out ECE raw": f"{mean['ece raw']:.4f}",
                    "held-out ECE calibrated": f"{mean['ece cal']:.4f}",
                    "draws where calibration lowered ECE": f"{better} of {len(runs)}",
                }
            )
    print(f"\nCalibration on gold ({share:.0%} of the truth, at least {MIN_GOLD_FOR_CALIBRATION} items, clamped as gold), "
          "scored on the other truth items; mean over draws (real) or seeds (simulated):\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


def heldback_table(seeds: int) -> None:
    from crowdkit.aggregation import DawidSkene

    rows = []
    for shape, seed in ((shape, seed) for shape in SHAPES for seed in range(seeds)):
        frame, truth = heldback_shape(seed, shape)
        per = frame["labeler_id"].value_counts()
        row: dict[str, Any] = {"shape": shape, "seed": seed, "labelers": len(per), "median answers per labeler": int(per.median())}
        for method in METHODS:
            result = aggregate_full(frame, method)
            c, h = scored(result.labels, truth)
            row[f"ours {method}"] = f"{100 * h.mean():.2f}" + (f" ({result.method})" if method == "auto" else "")
            if method == "auto":
                auto_hits = h
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = DawidSkene(n_iter=100)
            kit = model.fit_predict(frame.rename(columns={"item_id": "task", "labeler_id": "worker"}))
        kit_hits = kit.reindex(truth.index).astype(object).to_numpy() == truth.to_numpy()
        row["crowd-kit DS (EM iterations)"] = f"{100 * kit_hits.mean():.2f} ({len(model.loss_history_)})"
        row["auto - crowd-kit DS (items won / lost)"] = (
            f"{100 * (auto_hits.mean() - kit_hits.mean()):+.2f} ({int((auto_hits & ~kit_hits).sum())} / {int((~auto_hits & kit_hits).sum())})"
        )
        rows.append(row)
    print("\nThe held-back crowd's shape, simulated (binary, 176 labelers, 3 answers per item, 8,315 items): accuracy %; shapes:")
    for shape, what in SHAPES.items():
        print(f"- {shape}: {what}")
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real crowd folders")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per simulated crowd")
    parser.add_argument("--draws", type=int, default=5, help="gold draws per real crowd")
    parser.add_argument("--gold-share", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=None, help="folder for the reliability plots (default: a new temp folder)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["real", "sim", "gold", "heldback"])
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="consensus_calibration_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"reliability plots: {out.resolve()}")
    crowds: dict[str, list[tuple[pd.DataFrame, pd.Series, Any]]] = {}
    if "real" not in args.skip:
        folders = sorted(p for p in args.data.iterdir() if (p / "labels.txt").is_file())
        crowds.update({p.name: [(*load(p), None)] for p in folders})
    if "sim" not in args.skip:
        crowds.update(simulated_crowds(args.seeds))
    if crowds:
        no_gold_table(crowds, out)
    if crowds and "gold" not in args.skip:
        gold_table(crowds, args.gold_share, args.draws)
    if "heldback" not in args.skip:
        heldback_table(args.seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
