"""The EM stopping point chosen by held-out likelihood: does it make ``auto`` win on every real crowd?

    python benchmarks/consensus_early_stopping.py --seeds 5     # ~3 min on 2 loaded cores
    python benchmarks/consensus_early_stopping.py --data /path/to/crowds --seeds 1

``auto`` (no gold) fits Dawid-Skene with the one-coin and with the pooled prior on two thirds of the
answers (``core/consensus/selection.py``), keeps the one whose converged fit predicts the held-out third
better, and runs it on all answers to convergence. On AdultContent2 our Dawid-Skene moves with the EM
stopping point and crowd-kit's DS stops after 2 iterations, so the variant tried here chooses the
stopping point the same way as the prior: the held-out log-likelihood per answer is scored after every
EM iteration of each candidate's fit on two thirds, the (prior, iteration) with the best score wins, and
the full fit runs that many iterations (to convergence when the best is the fit's last iteration).

- ``auto``: today's choice (the converged fits compared).
- ``early stop``: the (prior, iteration) with the best held-out score.
- ``early stop, z >= 2``: stop early only when the best iteration beats the converged one by at least
  two standard errors of the paired per-answer difference of held-out log-probabilities (z printed).
- ``early stop, split seeds``: ``early stop`` with split seeds 0..4 (real crowds only; min-max).

Each scored by accuracy on the real crowds (items with truth) and on the simulated mixes of
``benchmarks/consensus.py`` (mean over ``--seeds``), with crowd-kit's MajorityVote and DawidSkene on the
same answers. Fits use our ``dawid_skene`` with ``max_iter=t`` for each t (EM is deterministic, so that is
its t-th iterate).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus import CLASSES, MIXES, crowdkit_frame, simulate  # noqa: E402
from real_crowd import DEFAULT_DATA, load  # noqa: E402

from labeling_assets.core.consensus.dawid_skene import dawid_skene  # noqa: E402
from labeling_assets.core.consensus.encoding import Encoded, encode  # noqa: E402
from labeling_assets.core.consensus.methods import _PRIOR_MEAN, PRIOR_STRENGTH  # noqa: E402
from labeling_assets.core.consensus.selection import CANDIDATES, _subset, heldout_folds  # noqa: E402

SETTINGS = {"tol": 1e-6, "smoothing": 0.01}


def _fit(enc: Encoded, method: str, iterations: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Posteriors, confusion and iterations run: to convergence (None) or exactly ``iterations``."""
    post, conf, ran, _ = dawid_skene(
        enc,
        max_iter=100 if iterations is None else iterations,
        tol=SETTINGS["tol"] if iterations is None else 0.0,
        prior_strength=PRIOR_STRENGTH[method],
        smoothing=SETTINGS["smoothing"],
        prior=_PRIOR_MEAN[method],
    )
    return post, conf, ran


def curve(enc: Encoded, method: str, seed: int) -> np.ndarray:
    """Held-out log-probability of each held-out answer (columns) after each EM iteration (rows)."""
    held = heldout_folds(enc, seed=seed) == 0
    kept = _subset(enc, ~held)
    item, labeler, label = enc.item[held], enc.labeler[held], enc.label[held]
    converged = _fit(kept, method, None)[2]
    rows = []
    for t in range(1, converged + 1):
        post, conf, _ = _fit(kept, method, t) if t < converged else _fit(kept, method, None)
        rows.append(np.log(np.maximum(np.einsum("ac,ac->a", post[item], conf[labeler, :, label]), 1e-300)))
    return np.stack(rows)


def choose(enc: Encoded, seed: int = 0, min_z: float | None = None) -> tuple[str, int | None, float]:
    """(prior, iterations, z of the best iteration vs the converged one) of a variant: min_z None = today's
    auto, 0 = early stop, 2 = z-gated."""
    curves = {m: curve(enc, m, seed) for m in CANDIDATES}
    if min_z is None:
        return max(CANDIDATES, key=lambda m: curves[m][-1].mean()), None, 0.0
    best = max(CANDIDATES, key=lambda m: curves[m].mean(axis=1).max())
    scores = curves[best].mean(axis=1)
    stop = int(np.argmax(scores))
    if stop == len(scores) - 1:
        return best, None, 0.0
    diff = curves[best][stop] - curves[best][-1]
    z = diff.mean() / max(float(diff.std(ddof=1)) / np.sqrt(len(diff)), 1e-300)
    return best, (stop + 1 if z >= min_z else None), float(z)


def accuracy(
    enc: Encoded, choice: tuple[str, int | None, float], rows: np.ndarray, truth: np.ndarray
) -> float:
    post = _fit(enc, choice[0], choice[1])[0]
    return 100.0 * float((post.argmax(1)[rows] == truth).mean())


def crowdkit(frame: pd.DataFrame, ids: pd.Index, truth: np.ndarray) -> dict[str, float]:
    from crowdkit.aggregation import DawidSkene, MajorityVote

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in (("crowd-kit MV", MajorityVote()), ("crowd-kit DS", DawidSkene(n_iter=100))):
            labels = model.fit_predict(crowdkit_frame(frame))
            out[name] = 100.0 * float((labels.reindex(ids).astype(object).to_numpy() == truth).mean())
    return out


def score(
    frame: pd.DataFrame, enc: Encoded, rows: np.ndarray, codes: np.ndarray, ids: pd.Index, seeds: range
) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, min_z in (("auto", None), ("early stop", 0.0), ("early stop, z >= 2", 2.0)):
        choice = choose(enc, 0, min_z)
        out[name] = accuracy(enc, choice, rows, codes)
        prior = choice[0].removeprefix("dawid_skene").lstrip("_") or "one_coin"
        out[f"{name}: prior, iterations (z)"] = f"{prior}, {choice[1] or 'converged'}" + (
            f" ({choice[2]:.2f})" if min_z else ""
        )
    if len(seeds) > 1:
        split = [accuracy(enc, choose(enc, s, 0.0), rows, codes) for s in seeds]
        out[f"early stop, split seeds {seeds.start}-{seeds.stop - 1}"] = f"{min(split):.2f}-{max(split):.2f}"
    out.update(crowdkit(frame, ids, np.asarray(enc.classes, dtype=object)[codes]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of data set folders")
    parser.add_argument(
        "--seeds", type=int, default=2, help="seeds per simulated mix (and split seeds on real crowds)"
    )
    args = parser.parse_args()
    print(
        f"Our defaults: prior strength {PRIOR_STRENGTH}, {SETTINGS}, max 100 EM iterations; split seed 0 unless said"
    )
    columns: dict[str, dict[str, object]] = {}
    for folder in sorted(p for p in args.data.iterdir() if (p / "truth.txt").is_file()):
        frame, truth = load(folder)
        enc = encode(frame, None)
        rows = pd.Index(enc.item_ids).get_indexer(truth.index)
        codes = pd.Index(enc.classes).get_indexer(truth.to_numpy())
        columns[folder.name] = score(frame, enc, rows, codes, truth.index, range(args.seeds))
        print(f"{folder.name} done", file=sys.stderr, flush=True)
    below = {"auto": 0, "early stop": 0}
    for mix in MIXES:
        runs = []
        for seed in range(args.seeds):
            frame, truth = simulate(mix.presets, mix.n_items, mix.overlap, seed)
            enc = encode(frame, CLASSES)
            codes = truth[pd.Series(enc.item_ids).str[4:].astype(int).to_numpy()]
            run = score(frame, enc, np.arange(enc.n_items), codes, pd.Index(enc.item_ids), range(1))
            for name in below:
                below[name] += int(run[name] < run["crowd-kit DS"])  # type: ignore[operator]
            runs.append(run)
        numeric = pd.DataFrame(runs).drop(columns=[c for c in runs[0] if isinstance(runs[0][c], str)])
        columns[f"sim {mix.name}"] = numeric.mean().to_dict()
        print(f"{mix.name} done", file=sys.stderr, flush=True)
    table = pd.DataFrame(columns)
    with pd.option_context(
        "display.width", 250, "display.max_columns", 20, "display.float_format", "{:.2f}".format
    ):
        print(f"Accuracy % (simulated mixes: mean of {args.seeds} seeds)")
        print(table.to_string())
    runs_total = args.seeds * len(MIXES)
    print(
        f"simulated runs below crowd-kit DS: auto {below['auto']} of {runs_total}, early stop {below['early stop']} of {runs_total}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
