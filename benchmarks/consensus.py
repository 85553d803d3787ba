"""Consensus accuracy and speed: our majority / Dawid-Skene / CROWDLAB against crowd-kit on simulated crowds.

    pip install crowd-kit                       # benchmark-only dependency
    python benchmarks/consensus.py              # accuracy on 5 crowd mixes x 5 seeds, then timings
    python benchmarks/consensus.py --seeds 10 --sizes 10000 100000 1000000 --crowdkit-cap 300

Crowds use the annotator presets of ``core.crowd`` (confusion matrices: expert 0.95, average 0.80,
noisy 0.60, spammer uniform, biased 0.60 else one favourite class) plus a "confuser" who mixes up
class pairs, sampled with numpy so that 10^6 annotations take a second to make. Each item gets ``overlap`` distinct annotators drawn at random.
Accuracy = share of items whose consensus equals the simulated truth (ties count as decided by each
method's own tie rule). CROWDLAB gets out-of-sample probabilities of a simulated model that is right on
75 % of items (its probability mass 0.6 on its guess), like a weak baseline classifier.

``ours auto`` is what a user gets by default: without gold, the Dawid-Skene prior (one-coin or pooled)
that predicts held-out answers better (``dawid_skene_selected``).

Timing: one call of ``core.consensus.aggregate`` on a long DataFrame with string ids (encoding included)
vs crowd-kit's ``DawidSkene(n_iter=100).fit_predict`` on the same frame; crowd-kit runs in a child
process killed after ``--crowdkit-cap`` seconds (printed as "> cap"). Threads are whatever the machine
gives (this project's reference: 2 cores).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.methods import aggregate  # noqa: E402
from labeling_assets.core.labelstudio.crowd import LabelerSpec, confusion_matrix  # noqa: E402

N_CLASSES = 10
CLASSES = [f"c{k}" for k in range(N_CLASSES)]


@dataclass(frozen=True)
class Mix:
    name: str
    presets: list[str]  # one entry per annotator
    overlap: int
    n_items: int = 2000


def _presets(**counts: int) -> list[str]:
    return [name for name, n in counts.items() for _ in range(n)]


MIXES = [
    Mix("all-good", _presets(expert=3, average=7), overlap=3),
    Mix("mixed", _presets(expert=2, average=3, noisy=2, spammer=1, biased=2), overlap=3),
    Mix("with spammers", _presets(expert=2, average=4, spammer=4), overlap=3),
    Mix("biased", _presets(expert=1, average=4, biased=5), overlap=3),
    Mix("sparse overlap 2", _presets(expert=2, average=3, noisy=2, spammer=1, biased=2), overlap=2),
    # Not a core.crowd preset: class-specific confusion (c0<->c1, c2<->c3, ...), the structure a
    # one-coin model cannot express, so it shows whether our DS prior costs anything when it is wrong.
    Mix("confusable pairs", _presets(expert=2, confuser=6, noisy=2), overlap=3),
]


def _confuser_matrix() -> np.ndarray:
    """Right 65 %, the paired class (c0<->c1, c2<->c3, ...) 30 %, anything else 5 %."""
    matrix = np.full((N_CLASSES, N_CLASSES), 0.05 / (N_CLASSES - 2))
    for c in range(N_CLASSES):
        matrix[c, c] = 0.65
        matrix[c, c ^ 1] = 0.30
    return matrix


def simulate(presets: list[str], n_items: int, overlap: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Long-format annotations (string ids, class-name labels) and the true class code per item."""
    rng = np.random.default_rng(seed)
    matrices = np.stack(
        [
            _confuser_matrix()
            if p == "confuser"
            # Biased annotators favour different classes (annotator j -> class j mod K), as real ones do.
            else confusion_matrix(
                LabelerSpec(f"w{j}", p, biased_toward=CLASSES[j % N_CLASSES] if p == "biased" else None),
                CLASSES,
            )
            for j, p in enumerate(presets)
        ]
    )  # (annotators, true, answered)
    truth = rng.integers(0, N_CLASSES, n_items)
    # overlap distinct annotators per item: the first columns of a random permutation per item.
    who = np.argsort(rng.random((n_items, len(presets))), axis=1)[:, :overlap].ravel()
    item = np.repeat(np.arange(n_items), overlap)
    cumulative = np.cumsum(matrices[who, truth[item]], axis=1)
    answer = (rng.random(len(item))[:, None] > cumulative).sum(axis=1).clip(max=N_CLASSES - 1)
    frame = pd.DataFrame(
        {
            "item_id": np.char.add("item", item.astype(str)),
            "labeler_id": np.char.add("w", who.astype(str)),
            "label": np.asarray(CLASSES, dtype=object)[answer],
        }
    )
    return frame, truth


def simulated_pred_probs(
    truth: np.ndarray, order: np.ndarray, seed: int, accuracy: float = 0.75
) -> np.ndarray:
    rng = np.random.default_rng(seed + 10_000)
    guess = np.where(rng.random(len(truth)) < accuracy, truth, rng.integers(0, N_CLASSES, len(truth)))
    probs = np.full((len(truth), N_CLASSES), 0.4 / (N_CLASSES - 1))
    probs[np.arange(len(truth)), guess] = 0.6
    return probs[order]


def _accuracy(labels: pd.Series, item_ids: pd.Series, truth: np.ndarray) -> float:
    codes = labels.map({c: k for k, c in enumerate(CLASSES)}).to_numpy()
    return float((codes == truth[item_ids.str[4:].astype(int).to_numpy()]).mean())


def crowdkit_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={"item_id": "task", "labeler_id": "worker"})


def accuracy_table(seeds: int) -> pd.DataFrame:
    from crowdkit.aggregation import DawidSkene, MajorityVote

    rows = []
    for mix in MIXES:
        for seed in range(seeds):
            frame, truth = simulate(mix.presets, mix.n_items, mix.overlap, seed)
            ours_order = np.sort(frame["item_id"].unique())  # aggregate() returns items sorted by id
            probs = simulated_pred_probs(truth, pd.Series(ours_order).str[4:].astype(int).to_numpy(), seed)
            result: dict[str, float] = {"mix": mix.name, "seed": seed}  # type: ignore[dict-item]
            for method, kwargs in (
                ("majority", {}),
                ("dawid_skene", {}),
                ("auto", {}),
                ("crowdlab", {"pred_probs": probs}),
            ):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    labels = aggregate(frame, method, classes=CLASSES, **kwargs)
                result[f"ours {method}"] = _accuracy(labels["label"], labels["item_id"], truth)
            ck = crowdkit_frame(frame)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ck_mv = MajorityVote().fit_predict(ck)
                ck_ds = DawidSkene(n_iter=100).fit_predict(ck)
            result["crowd-kit MV"] = _accuracy(ck_mv, pd.Series(ck_mv.index), truth)
            result["crowd-kit DS"] = _accuracy(ck_ds, pd.Series(ck_ds.index), truth)
            rows.append(result)
    return pd.DataFrame(rows)


def _crowdkit_ds_worker(frame: pd.DataFrame, queue: mp.Queue) -> None:
    from crowdkit.aggregation import DawidSkene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        DawidSkene(n_iter=100).fit_predict(crowdkit_frame(frame))
    queue.put(time.perf_counter() - started)


def time_crowdkit(frame: pd.DataFrame, cap: float) -> float | None:
    """crowd-kit DS seconds, or None when it ran past ``cap`` (the child is killed)."""
    queue: mp.Queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=_crowdkit_ds_worker, args=(frame, queue))
    child.start()
    child.join(cap)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return float(queue.get()) if child.exitcode == 0 else float("nan")


def timings(sizes: list[int], cap: float) -> list[dict[str, object]]:
    presets = MIXES[1].presets * 5  # 50 annotators, the "mixed" proportions
    rows = []
    for size in sizes:
        frame, truth = simulate(presets, size // 3, 3, seed=0)
        started = time.perf_counter()
        labels = aggregate(frame, "dawid_skene", classes=CLASSES)
        ours = time.perf_counter() - started
        accuracy = _accuracy(labels["label"], labels["item_id"], truth)
        started = time.perf_counter()
        aggregate(frame, "majority", classes=CLASSES)
        majority = time.perf_counter() - started
        started = time.perf_counter()
        aggregate(frame, "auto", classes=CLASSES)  # + the held-out choice of prior: 3 folds x 2 fits
        auto = time.perf_counter() - started
        crowdkit = time_crowdkit(frame, cap)
        row = {
            "annotations": len(frame),
            "ours DS s": f"{ours:.2f}",
            "ours majority s": f"{majority:.2f}",
            "ours auto s": f"{auto:.2f}",
            "crowd-kit DS s": f"> {cap:.0f} (killed)" if crowdkit is None else f"{crowdkit:.2f}",
            "ours DS accuracy": f"{accuracy:.4f}",
        }
        if not rows:
            print("".join(f"{name:>18}" for name in row), flush=True)
        print("".join(f"{value!s:>18}" for value in row.values()), flush=True)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per crowd mix")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--crowdkit-cap", type=float, default=120.0, help="seconds before crowd-kit DS is killed"
    )
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    try:
        import crowdkit
    except ImportError:
        print(
            "crowd-kit is not installed: pip install crowd-kit (benchmark-only dependency)", file=sys.stderr
        )
        return 2
    from importlib.metadata import version

    print(
        f"crowd-kit {version('crowd-kit')}, numpy {np.__version__}, pandas {pd.__version__}, {os.cpu_count()} CPUs"
    )
    del crowdkit
    failed = False
    if not args.skip_accuracy:
        print(f"\nAccuracy vs simulated truth ({N_CLASSES} classes, 2000 items, mean of {args.seeds} seeds):")
        table = accuracy_table(args.seeds)
        methods = [c for c in table.columns if c not in {"mix", "seed"}]
        means = table.groupby("mix", sort=False)[methods].mean()
        print(means.round(4).to_string())
        for ours in ("ours dawid_skene", "ours auto"):
            worse = means[means[ours] < means["crowd-kit DS"]]
            per_seed_worse = table[table[ours] < table["crowd-kit DS"]]
            print(
                f"\n{ours} >= crowd-kit DS on every mix: {worse.empty}; "
                f"seeds where ours is below: {len(per_seed_worse)} of {len(table)}"
            )
            failed = failed or not worse.empty
    print(
        f"\nTime per call (mixed crowd, 50 annotators, overlap 3, crowd-kit capped at {args.crowdkit_cap:.0f} s):"
    )
    timings(args.sizes, args.crowdkit_cap)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
