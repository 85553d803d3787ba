"""Averaging instead of choosing: does mixing Dawid-Skene models beat auto's hard choice of one?

    python benchmarks/consensus_averaging.py --seeds 5     # ~3 min on 2 loaded cores
    python benchmarks/consensus_averaging.py --data /path/to/crowds --seeds 1

``auto`` (no gold) fits Dawid-Skene with a one-coin and with a pooled prior on two thirds of the answers
and keeps the one that predicts the held-out third better (``core/consensus/selection.py``). Variants
tried here, each scored by accuracy on the real crowds (items with truth), on the simulated mixes of
``benchmarks/consensus.py`` (mean over ``--seeds``) and on the skewed simulations of
``benchmarks/real_crowd.py --ablations`` (6 crowds), with crowd-kit's MajorityVote and DawidSkene on the
real crowds and mixes for reference:

- ``selected``: auto today (hard choice by held-out log-likelihood of the same held-out split).
- ``bma``: Bayesian model averaging: posteriors of the full fits averaged with weights softmax(total
  held-out log-likelihood) of one-coin and pooled.
- ``stack``: stacking: the mixture weights maximizing the held-out log-likelihood of the averaged answer
  predictions (EM on the weights), applied to the full fits' posteriors; ``stack+mv`` adds majority
  vote's implied model (vote shares, one M-step with the pooled prior) as a third candidate.
- ``shrink``: per-labeler prior mean w_j * one-coin + (1 - w_j) * pooled with w_j = n_j / (n_j + c)
  (a labeler with few answers leans on the crowd, one with many on their own accuracy); c in
  {10, 30, 100} and the two pure priors, chosen by held-out log-likelihood.
- ``difficulty``: Dawid-Skene with item difficulty, p(l | c, j, i) = (1 - e_i) C_j[c, l] + e_i pi_j[l]
  (on a hard item the labeler falls back on their answer habits pi_j), e_i ~ Beta(1, 4) MAP, pooled
  prior; ``sel+difficulty`` adds it as a third candidate of the held-out choice.
- ``glad``: GLAD-style (Whitehill et al. 2009) p(right) = sigmoid(alpha_j * exp(b_i)), errors uniform,
  EM with diagonal Newton M-steps.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus import CLASSES, MIXES, crowdkit_frame, simulate  # noqa: E402
from real_crowd import DEFAULT_DATA, load, majority_model, skewed_crowd  # noqa: E402

from labeling_assets.core.consensus import dawid_skene as dsm  # noqa: E402
from labeling_assets.core.consensus.encoding import Encoded, encode, vote_counts  # noqa: E402
from labeling_assets.core.consensus.methods import PRIOR_STRENGTH  # noqa: E402
from labeling_assets.core.consensus.selection import _subset, heldout_folds  # noqa: E402

# A model fitted on answers -> (posteriors (items, k), answer(item, labeler, label) -> p(label | class) (rows, k)).
Answer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
Model = Callable[[Encoded], tuple[np.ndarray, Answer]]


def _ds(prior: Callable[[np.ndarray], np.ndarray] | str, strength: float) -> Model:
    def fit(enc: Encoded) -> tuple[np.ndarray, Answer]:
        name = prior if isinstance(prior, str) else f"_bench_{id(prior)}"
        if not isinstance(prior, str):
            dsm.PRIORS[name] = prior
        post, conf, _, _ = dsm.dawid_skene(enc, max_iter=100, tol=1e-6, prior_strength=strength, smoothing=0.01, prior=name)
        return post, lambda item, labeler, label: conf[labeler, :, label]

    return fit


def _shrunk(c: float) -> Callable[[np.ndarray], np.ndarray]:
    def prior(counts: np.ndarray) -> np.ndarray:
        w = counts.sum(axis=(1, 2)) / (counts.sum(axis=(1, 2)) + c)
        return w[:, None, None] * dsm._one_coin_prior(counts) + (1 - w)[:, None, None] * dsm._pooled_prior(counts)

    return prior


def _majority(enc: Encoded) -> tuple[np.ndarray, Answer]:
    post, conf = majority_model(enc)
    return post, lambda item, labeler, label: conf[labeler, :, label]


def _difficulty(enc: Encoded, a0: float = 1.0, b0: float = 4.0, iters: int = 100, tol: float = 1e-6) -> tuple[np.ndarray, Answer]:
    n, m, k = enc.n_items, enc.n_labelers, enc.n_classes
    it, lb, lab = enc.item, enc.labeler, enc.label
    post = vote_counts(enc) / np.bincount(it, minlength=n)[:, None]
    habit = np.bincount(lb * k + lab, minlength=m * k).reshape(m, k) + 0.5
    habit /= habit.sum(1, keepdims=True)
    per_item, guess, previous = np.bincount(it, minlength=n), np.zeros((len(it), k)), -np.inf
    for _ in range(iters):
        flat = np.zeros((m * k, k))
        np.add.at(flat, lb * k + lab, post[it] * (1 - guess))
        counts = flat.reshape(m, k, k).transpose(0, 2, 1)
        conf = counts + PRIOR_STRENGTH["dawid_skene_pooled"] * dsm._pooled_prior(counts) + 0.01
        conf /= conf.sum(2, keepdims=True)
        e = np.clip((np.bincount(it, (post[it] * guess).sum(1), n) + a0 - 1) / (per_item + a0 + b0 - 2), 1e-6, 1 - 1e-6)
        class_prior = post.sum(0) + 0.01
        answer = (1 - e[it])[:, None] * conf[lb, :, lab] + (e[it] * habit[lb, lab])[:, None]
        guess = (e[it] * habit[lb, lab])[:, None] / answer
        log_joint = np.tile(np.log(class_prior / class_prior.sum()), (n, 1))
        np.add.at(log_joint, it, np.log(answer))
        top = log_joint.max(1, keepdims=True)
        post = np.exp(log_joint - top)
        norm = post.sum(1, keepdims=True)
        post /= norm
        ll = float((top + np.log(norm)).sum())
        if abs(ll - previous) <= tol * abs(ll):
            break
        previous = ll

    def answer_fn(item: np.ndarray, labeler: np.ndarray, label: np.ndarray) -> np.ndarray:
        return (1 - e[item])[:, None] * conf[labeler, :, label] + (e[item] * habit[labeler, label])[:, None]

    return post, answer_fn


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _glad(enc: Encoded, iters: int = 50, newton: int = 5, tol: float = 1e-6) -> tuple[np.ndarray, Answer]:
    n, m, k = enc.n_items, enc.n_labelers, enc.n_classes
    it, lb, lab = enc.item, enc.labeler, enc.label
    post = vote_counts(enc) / np.bincount(it, minlength=n)[:, None]
    alpha, b, previous = np.ones(m), np.zeros(n), -np.inf
    for _ in range(iters):
        class_prior = post.sum(0) + 0.01
        q = post[it, lab]
        for _ in range(newton):  # alpha ~ N(1, 1), b ~ N(0, 1)
            beta = np.exp(b)[it]
            s = _sigmoid(alpha[lb] * beta)
            grad = np.bincount(lb, (q - s) * beta, m) - (alpha - 1)
            alpha += grad / (np.bincount(lb, s * (1 - s) * beta**2, m) + 1)
            x = alpha[lb] * beta
            s = _sigmoid(x)
            b = np.clip(b + (np.bincount(it, (q - s) * x, n) - b) / (np.bincount(it, s * (1 - s) * x * x, n) + 1), -5, 5)
        s = np.clip(_sigmoid(alpha[lb] * np.exp(b)[it]), 1e-9, 1 - 1e-9)
        wrong = np.log1p(-s) - np.log(k - 1)
        log_joint = np.log(class_prior / class_prior.sum())[None, :] + np.bincount(it, wrong, n)[:, None]
        np.add.at(log_joint, (it, lab), np.log(s) - wrong)
        top = log_joint.max(1, keepdims=True)
        post = np.exp(log_joint - top)
        norm = post.sum(1, keepdims=True)
        post /= norm
        ll = float((top + np.log(norm)).sum())
        if abs(ll - previous) <= tol * abs(ll):
            break
        previous = ll

    def answer_fn(item: np.ndarray, labeler: np.ndarray, label: np.ndarray) -> np.ndarray:
        right = np.clip(_sigmoid(alpha[labeler] * np.exp(b)[item]), 1e-9, 1 - 1e-9)[:, None]
        return np.where(np.arange(k)[None, :] == label[:, None], right, (1 - right) / (k - 1))

    return post, answer_fn


MODELS: dict[str, Model] = {
    "one_coin": _ds("one_coin", PRIOR_STRENGTH["dawid_skene"]),
    "pooled": _ds("pooled", PRIOR_STRENGTH["dawid_skene_pooled"]),
    **{f"shrink c={c}": _ds(_shrunk(c), 6.5) for c in (10, 30, 100)},
    "majority model": _majority,
    "difficulty": _difficulty,
    "glad": _glad,
}


def _stack(p: np.ndarray, iters: int = 200) -> np.ndarray:
    """Mixture weights maximizing sum_a log sum_m w_m p[m, a] (EM)."""
    w = np.full(len(p), 1.0 / len(p))
    for _ in range(iters):
        r = w[:, None] * p
        w = (r / r.sum(0, keepdims=True)).mean(1)
    return w


def variants(enc: Encoded) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Posteriors per variant on the full crowd, and each model's held-out log-likelihood per answer."""
    held = heldout_folds(enc) == 0
    full, predicted = {}, {}
    kept = _subset(enc, ~held)
    rows = np.flatnonzero(held)
    item, labeler, label = enc.item[rows], enc.labeler[rows], enc.label[rows]
    for name, model in MODELS.items():
        full[name] = model(enc)[0]
        post, answer = model(kept)  # p(held-out answer) = sum_c posterior(c) * p(answer | c)
        predicted[name] = np.maximum((post[item] * answer(item, labeler, label)).sum(1), 1e-300)
    ll = {name: float(np.log(p).mean()) for name, p in predicted.items()}
    out = {name: full[name] for name in ("one_coin", "pooled", "majority model", "difficulty", "glad")}
    pair = ("one_coin", "pooled")
    out["selected"] = full[max(pair, key=lambda n: ll[n])]
    total = np.array([ll[n] * len(rows) for n in pair])
    weights = np.exp(total - total.max())
    out["bma"] = sum(w * full[n] for w, n in zip(weights / weights.sum(), pair, strict=True))
    for label, group in (("stack", pair), ("stack+mv", (*pair, "majority model"))):
        w = _stack(np.stack([predicted[n] for n in group]))
        out[label] = sum(wi * full[n] for wi, n in zip(w, group, strict=True))
    shrink = ("one_coin", "shrink c=10", "shrink c=30", "shrink c=100", "pooled")
    out["shrink (chosen)"] = full[max(shrink, key=lambda n: ll[n])]
    out["sel+difficulty"] = full[max((*pair, "difficulty"), key=lambda n: ll[n])]
    return out, ll


def _accuracy(post: np.ndarray, rows: np.ndarray, truth: np.ndarray) -> float:
    return 100.0 * float((post.argmax(1)[rows] == truth).mean())


def _crowdkit(frame: pd.DataFrame, rows: pd.Index, truth: np.ndarray) -> dict[str, float]:
    from crowdkit.aggregation import DawidSkene, MajorityVote

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in (("crowd-kit MV", MajorityVote()), ("crowd-kit DS", DawidSkene(n_iter=100))):
            labels = model.fit_predict(crowdkit_frame(frame))
            out[name] = 100.0 * float((labels.reindex(rows).astype(object).to_numpy() == truth).mean())
    return out


def score(frame: pd.DataFrame | None, enc: Encoded, rows: np.ndarray, truth: np.ndarray, ids: pd.Index) -> dict[str, float]:
    """Accuracy % per variant (and crowd-kit's when ``frame`` is given); held-out LL per model as 'LL ...'."""
    posts, ll = variants(enc)
    out = {name: _accuracy(post, rows, truth) for name, post in posts.items()}
    if frame is not None:
        out.update(_crowdkit(frame, ids, np.asarray(enc.classes, dtype=object)[truth]))
    out.update({f"LL {name}": value for name, value in ll.items()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of data set folders")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per simulated mix")
    args = parser.parse_args()
    columns: dict[str, dict[str, float]] = {}
    for folder in sorted(p for p in args.data.iterdir() if (p / "truth.txt").is_file()):
        frame, truth = load(folder)
        enc = encode(frame, None)
        rows = pd.Index(enc.item_ids).get_indexer(truth.index)
        columns[folder.name] = score(frame, enc, rows, pd.Index(enc.classes).get_indexer(truth.to_numpy()), truth.index)
        print(f"{folder.name} done", file=sys.stderr, flush=True)
    for mix in MIXES:
        runs = []
        for seed in range(args.seeds):
            frame, truth = simulate(mix.presets, mix.n_items, mix.overlap, seed)
            enc = encode(frame, CLASSES)
            codes = truth[pd.Series(enc.item_ids).str[4:].astype(int).to_numpy()]
            runs.append(score(frame, enc, np.arange(enc.n_items), codes, pd.Index(enc.item_ids)))
        columns[f"sim {mix.name}"] = pd.DataFrame(runs).mean().to_dict()
        print(f"{mix.name} done", file=sys.stderr, flush=True)
    skewed = [skewed_crowd(s, k, p) for k, p in ((2, 0.85), (4, 0.7)) for s in range(3)]
    columns["skewed sims (6)"] = pd.DataFrame(
        [score(None, enc, np.arange(enc.n_items), truth, pd.Index([])) for enc, truth in skewed]
    ).mean().to_dict()
    table = pd.DataFrame(columns)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(f"Accuracy % (simulated mixes: mean of {args.seeds} seeds; 'LL' rows: held-out log-likelihood per answer)")
        print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
