"""Consensus on real crowds: our methods against crowd-kit's on public answers with known truth.

    python benchmarks/real_crowd.py                      # every data set in ../shared/data/real_crowd
    python benchmarks/real_crowd.py --cap 60 --reveals 10 --ablations
    python benchmarks/real_crowd.py --data /path/to/crowds --crowdkit MV DS   # other real crowds

A data set is a folder with ``labels.txt`` (labeler TAB item TAB answer) and ``truth.txt`` (item TAB
true answer), tab-separated, no header; a repeated (labeler, item) keeps its last answer, truth of items
without answers is dropped. Accuracy is on the items with truth.

1. The table: each of our methods (one set of defaults, printed first) and crowd-kit's MajorityVote,
   DawidSkene, OneCoinDawidSkene, GLAD and MACE (each in a child process killed after ``--cap`` seconds,
   shown as "> cap"), seconds per call, then our best minus crowd-kit's best (each picked on truth, so
   both sides get the same optimism) with a paired bootstrap 95 % interval over truth items; and our
   ``auto`` (no gold: the Dawid-Skene prior with the better held-out answer likelihood, shown in
   brackets) minus crowd-kit's best, with the discordant items (ours right / theirs right).
2. Gold: ``--gold-shares`` of the truth revealed as gold (``--reveals`` random draws each), the rest
   scored. Our dawid_skene without gold, with gold clamped, and ``auto`` with gold (the cross-fitted
   bake-off when there are at least 30 annotated gold items, which keeps the no-gold choice unless a
   method is significantly better on gold; else its no-gold rule), against crowd-kit's best (which does
   not use gold) on the same scored items.
3. ``--ablations``: what was tried to find why Dawid-Skene lost, as variants of the same EM written out
   here (not in the package): prior strength, no prior, prior strength chosen by held-out likelihood,
   majority-vote (hard) initialization, class prior uniform or tempered or shrunk toward uniform,
   decisions without the class prior, pooled prior. The variants are also run on simulated crowds whose
   truth is skewed, where the ones that ignore the class prior fail. Then the held-out log-likelihood
   of answers per Dawid-Skene prior on every crowd and the choice auto makes from it, and our
   Dawid-Skene's accuracy by EM convergence tolerance (how much of a difference is the stopping point).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import digamma

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus import bakeoff, selection  # noqa: E402
from labeling_assets.core.consensus.dawid_skene import informative_items  # noqa: E402
from labeling_assets.core.consensus.encoding import Encoded, encode, vote_counts  # noqa: E402
from labeling_assets.core.consensus.methods import PRIOR_STRENGTH, aggregate_full  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real_crowd"
OURS = ("majority", "dawid_skene", "dawid_skene_pooled", "auto")
CROWDKIT = ("MV", "DS", "OneCoinDS", "GLAD", "MACE")


def load(folder: Path) -> tuple[pd.DataFrame, pd.Series]:
    labels = pd.read_csv(
        folder / "labels.txt", sep="\t", header=None, names=["labeler_id", "item_id", "label"], dtype=str
    ).drop_duplicates(["item_id", "labeler_id"], keep="last")
    truth = pd.read_csv(folder / "truth.txt", sep="\t", header=None, names=["item_id", "truth"], dtype=str)
    truth = truth.drop_duplicates("item_id", keep="last").set_index("item_id")["truth"]
    return labels[["item_id", "labeler_id", "label"]], truth[truth.index.isin(set(labels["item_id"]))]


def ours(frame: pd.DataFrame, method: str, gold: pd.Series | None = None) -> tuple[pd.Series, float, str]:
    """Labels by item, seconds, and the method that ran (auto's choice)."""
    started = time.perf_counter()
    result = aggregate_full(frame, method, gold=gold)
    return result.labels.set_index("item_id")["label"], time.perf_counter() - started, result.method


def _crowdkit_child(frame: pd.DataFrame, name: str, queue: mp.Queue) -> None:
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote, OneCoinDawidSkene

    models: dict[str, Callable[[], Any]] = {
        "MV": MajorityVote,
        "DS": lambda: DawidSkene(n_iter=100),
        "OneCoinDS": lambda: OneCoinDawidSkene(n_iter=100),
        "GLAD": GLAD,
        "MACE": MACE,
    }
    data = frame.rename(columns={"item_id": "task", "labeler_id": "worker"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        model = models[name]()
        labels = model.fit_predict(data)
    # EM iterations run (DS, OneCoinDS): crowd-kit stops once its bound stops rising by tol.
    queue.put((labels, time.perf_counter() - started, len(getattr(model, "loss_history_", []) or [])))


def crowdkit(frame: pd.DataFrame, name: str, cap: float) -> tuple[pd.Series | None, float | None, int]:
    """crowd-kit's labels, seconds and EM iterations (0: not reported), or (None, None, 0) when it ran
    past ``cap`` (the child is killed)."""
    context = mp.get_context("fork")
    queue: mp.Queue = context.Queue()
    child = context.Process(target=_crowdkit_child, args=(frame, name, queue))
    child.start()
    deadline = time.monotonic() + cap
    while child.is_alive() and time.monotonic() < deadline and queue.empty():
        time.sleep(0.05)
    if queue.empty():
        child.kill()
        child.join()
        return None, None, 0
    labels, seconds, iterations = queue.get()
    child.join()
    return labels, seconds, iterations


def correct(labels: pd.Series, truth: pd.Series) -> np.ndarray:
    return (labels.reindex(truth.index).astype(object).to_numpy() == truth.to_numpy()).astype(float)


def paired_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b (per-item correctness) with a paired bootstrap 95 % interval, in points."""
    rng = np.random.default_rng(seed)
    diff = a - b
    boots = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(axis=1)
    return 100 * diff.mean(), 100 * float(np.quantile(boots, 0.025)), 100 * float(np.quantile(boots, 0.975))


def main_table(sets: dict[str, tuple[pd.DataFrame, pd.Series]], kit: list[str], cap: float) -> dict[str, Any]:
    rows, state = [], {}
    for name, (frame, truth) in sets.items():
        row: dict[str, str] = {"data set": f"{name} ({len(frame):,} / {frame['item_id'].nunique():,} / {len(truth):,})"}
        hits: dict[str, np.ndarray] = {}
        for method in OURS:
            labels, seconds, used = ours(frame, method)
            hits[f"ours {method}"] = correct(labels, truth)
            shown = f"{seconds:.2f} s" + (f", {used}" if method == "auto" else "")
            row[f"ours {method}"] = f"{100 * hits[f'ours {method}'].mean():.2f} ({shown})"
        theirs: dict[str, np.ndarray] = {}
        for method in kit:
            labels, seconds, iterations = crowdkit(frame, method, cap)
            if labels is None:
                row[f"crowd-kit {method}"] = f"> {cap:.0f} s"
                continue
            theirs[method] = correct(labels, truth)
            shown = f"{seconds:.2f} s" + (f", {iterations} EM iterations" if iterations else "")
            row[f"crowd-kit {method}"] = f"{100 * theirs[method].mean():.2f} ({shown})"
        best_ours = max((m for m in hits if m != "ours auto"), key=lambda m: hits[m].mean())
        best_kit = max(theirs, key=lambda m: theirs[m].mean())
        diff, low, high = paired_ci(hits[best_ours], theirs[best_kit])
        row["ours best - theirs best [95% CI]"] = f"{best_ours[5:]} - {best_kit}: {diff:+.2f} [{low:+.2f}, {high:+.2f}]"
        diff, low, high = paired_ci(hits["ours auto"], theirs[best_kit])
        wins, losses = int((hits["ours auto"] > theirs[best_kit]).sum()), int((hits["ours auto"] < theirs[best_kit]).sum())
        row["ours auto - theirs best [95% CI]"] = f"{diff:+.2f} [{low:+.2f}, {high:+.2f}] ({wins} / {losses} items)"
        rows.append(row)
        state[name] = {"best_kit": best_kit, "kit_hits": theirs[best_kit]}
        answers = frame["label"].value_counts(normalize=True).round(2).to_dict()
        print(f"  {name}: class shares of answers {answers}, of truth {truth.value_counts(normalize=True).round(2).to_dict()}")
        print(f"  {name}: done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).set_index("data set").T
    print("\nAccuracy % on truth items (seconds per call); data set (answers / items / truth items):\n")
    print(table.to_markdown())
    return state


def gold_table(sets: dict[str, tuple[pd.DataFrame, pd.Series]], state: dict[str, Any], shares: list[float], reveals: int) -> None:
    rows = []
    for name, (frame, truth) in sets.items():
        kit_hits = pd.Series(state[name]["kit_hits"], index=truth.index)
        for share in shares:
            scores: dict[str, list[float]] = {"ds": [], "ds+gold": [], "auto+gold": [], "kit": []}
            chosen: list[str] = []
            for draw in range(reveals):
                revealed = np.random.default_rng(draw).random(len(truth)) < share
                if not revealed.any() or revealed.all():
                    continue
                gold, rest = truth[revealed], truth[~revealed]
                scores["ds"].append(correct(ours(frame, "dawid_skene")[0], rest).mean())
                scores["ds+gold"].append(correct(ours(frame, "dawid_skene", gold)[0], rest).mean())
                result = aggregate_full(frame, "auto", gold=gold)
                chosen.append(result.method if result.scoreboard is not None else f"{result.method} (rule)")
                scores["auto+gold"].append(correct(result.labels.set_index("item_id")["label"], rest).mean())
                scores["kit"].append(kit_hits[rest.index].mean())
            mean = {k: 100 * float(np.mean(v)) for k, v in scores.items()}
            rows.append(
                {
                    "data set": name,
                    "gold share": f"{share:.0%} ({int(round(share * len(truth)))} items)",
                    "ours DS, no gold": f"{mean['ds']:.2f}",
                    "ours DS + gold clamped": f"{mean['ds+gold']:.2f} ({mean['ds+gold'] - mean['ds']:+.2f})",
                    "ours auto + gold": f"{mean['auto+gold']:.2f}",
                    "crowd-kit best": f"{mean['kit']:.2f} ({state[name]['best_kit']})",
                    "auto + gold - crowd-kit": f"{mean['auto+gold'] - mean['kit']:+.2f}",
                    "auto chose": ", ".join(f"{m} x{chosen.count(m)}" for m in sorted(set(chosen))),
                }
            )
    print(f"\nGold revealed at random, accuracy % on the rest of the truth items, mean of {reveals} draws:\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


# --- ablations: the same EM as core.consensus.dawid_skene with switches --------------------------


def _one_coin(counts: np.ndarray) -> np.ndarray:
    from labeling_assets.core.consensus.dawid_skene import PRIORS

    return PRIORS["one_coin"](counts)


def _pooled(counts: np.ndarray) -> np.ndarray:
    from labeling_assets.core.consensus.dawid_skene import PRIORS

    return PRIORS["pooled"](counts)


def em(enc: Encoded, *, prior: str | None = "one_coin", strength: float = 10.0, init: str = "votes", class_prior: float = 1.0, shrink: float = 0.0, decide_without_prior: bool = False, vb: bool = False, smoothing: float = 0.01, count_single: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors and confusion; class_prior is an exponent (1 = estimated, 0 = uniform), shrink adds
    shrink * n_items / k pseudo-items per class (shrink 1 = halfway to uniform); decide_without_prior
    divides the class prior out of the returned posteriors (decisions by the answers' likelihood only);
    vb: variational Bayes E-step (Liu, Peng & Ihler 2012), E[log confusion] under the Dirichlet posterior
    (digamma) instead of the log of its mode, so a sparse labeler's answers weigh less; count_single: items
    with one answer also count in the M-step, confusions and class prior (the package before it fitted
    both only on items with two or more answers, core.consensus.dawid_skene.informative_items; the one-coin
    prior is the package's, so this is the change of the M-step alone)."""
    n, m, k = enc.n_items, enc.n_labelers, enc.n_classes
    a = sp.csr_matrix((np.ones(len(enc.item)), (enc.item, enc.labeler * k + enc.label)), shape=(n, m * k))
    fitted = np.ones(n, dtype=bool) if count_single else informative_items(enc.item, n)
    a_t = a.multiply(fitted[:, None]).tocsr().T.tocsr()
    votes = vote_counts(enc) + 1e-9
    post = votes / votes.sum(1, keepdims=True) if init == "votes" else (votes == votes.max(1, keepdims=True)) / 1.0
    post /= post.sum(1, keepdims=True)
    mean = {"one_coin": _one_coin, "pooled": _pooled}.get(prior or "")
    previous = -np.inf
    for _ in range(100):
        counts = np.asarray(a_t @ post).reshape(m, k, k).transpose(0, 2, 1)
        alpha = counts + smoothing + (strength * mean(counts) if mean is not None else 0.0)
        conf = alpha / alpha.sum(2, keepdims=True)
        cp = (post[fitted].sum(0) + smoothing + shrink * fitted.sum() / k) ** class_prior
        log_conf = digamma(alpha) - digamma(alpha.sum(2, keepdims=True)) if vb else np.log(conf)
        log_cp = digamma(cp + 1.0) - digamma(cp.sum() + k) if vb else np.log(cp / cp.sum())
        log_joint = np.asarray(a @ log_conf.transpose(0, 2, 1).reshape(m * k, k)) + log_cp
        top = log_joint.max(1, keepdims=True)
        post = np.exp(log_joint - top)
        norm = post.sum(1, keepdims=True)
        post /= norm
        ll = float((top + np.log(norm)).sum())
        if abs(ll - previous) <= 1e-6 * max(abs(ll), 1.0):
            break
        previous = ll
    if decide_without_prior:
        post = post / (cp / cp.sum())
        post /= post.sum(1, keepdims=True)
    return post, conf


def majority_model(enc: Encoded, prior: str = "pooled", strength: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote as a model of answers: vote shares as posteriors, confusions from one M-step."""
    n, m, k = enc.n_items, enc.n_labelers, enc.n_classes
    a_t = sp.csr_matrix((np.ones(len(enc.item)), (enc.item, enc.labeler * k + enc.label)), shape=(n, m * k)).T.tocsr()
    votes = vote_counts(enc) + 1e-9
    post = votes / votes.sum(1, keepdims=True)
    counts = np.asarray(a_t @ post).reshape(m, k, k).transpose(0, 2, 1)
    conf = counts + 0.01 + strength * {"one_coin": _one_coin, "pooled": _pooled}[prior](counts)
    return post, conf / conf.sum(2, keepdims=True)


def heldout_ll(enc: Encoded, folds: int = 5, **kw: Any) -> float:
    """Mean log-likelihood of held-out answers (items with 2+ answers), 5-fold, given the other answers."""
    per_item = np.bincount(enc.item, minlength=enc.n_items)
    fold = np.random.default_rng(0).integers(0, folds, len(enc.item))
    total = 0.0
    for f in range(folds):
        held = (fold == f) & (per_item[enc.item] >= 2)
        kept = Encoded(enc.item[~held], enc.labeler[~held], enc.label[~held], enc.item_ids, enc.labeler_ids, enc.classes, [])
        post, conf = em(kept, **kw)
        total += float(np.log((post[enc.item[held]] * conf[enc.labeler[held], :, enc.label[held]]).sum(1)).mean())
    return total / folds


def skewed_crowd(seed: int, k: int, p_major: float, n_labelers: int = 20, n_items: int = 2000) -> tuple[Encoded, np.ndarray]:
    """Truth skewed toward class 0, labelers 60-90 % right with errors spread evenly (no shared lean)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(k, n_items, p=[p_major] + [(1 - p_major) / (k - 1)] * (k - 1))
    accuracy = rng.uniform(0.6, 0.9, n_labelers)
    who = np.argsort(rng.random((n_items, n_labelers)), axis=1)[:, :3].ravel()
    item = np.repeat(np.arange(n_items), 3)
    label = np.where(rng.random(len(item)) < accuracy[who], truth[item], (truth[item] + rng.integers(1, k, len(item))) % k)
    return Encoded(item, who, label.astype(np.int64), np.arange(n_items), np.arange(n_labelers), list(range(k)), []), truth


def ablations(sets: dict[str, tuple[pd.DataFrame, pd.Series]]) -> None:
    variants: list[tuple[str, dict[str, Any]]] = [
        ("dawid_skene as shipped (one-coin prior 10, class prior estimated, vote-share init)", {}),
        ("one-answer items also counted in the M-step, one-coin prior 10", {"count_single": True}),
        ("one-answer items also counted in the M-step, pooled prior 3", {"prior": "pooled", "strength": 3.0, "count_single": True}),
        ("no prior (crowd-kit-like)", {"prior": None, "strength": 0.0}),
        *[(f"one-coin prior strength {s:g}", {"strength": s}) for s in (1.0, 3.0, 30.0)],
        ("majority-vote (hard) initialization", {"init": "hard"}),
        ("class prior tempered (exponent 0.5)", {"class_prior": 0.5}),
        ("class prior uniform", {"class_prior": 0.0}),
        *[(f"class prior shrunk toward uniform ({s:g} x n/k pseudo-items per class)", {"shrink": s}) for s in (0.1, 0.3)],
        ("decisions without the class prior (fitted with it)", {"decide_without_prior": True}),
        ("pooled prior 3, decisions without the class prior", {"prior": "pooled", "strength": 3.0, "decide_without_prior": True}),
        ("pooled prior strength 3 (= dawid_skene_pooled)", {"prior": "pooled", "strength": 3.0}),
        ("pooled prior strength 10", {"prior": "pooled", "strength": 10.0}),
        ("variational Bayes E-step, one-coin prior 10", {"vb": True}),
        ("variational Bayes E-step, pooled prior 3", {"prior": "pooled", "strength": 3.0, "vb": True}),
    ]
    encoded = {}
    for name, (frame, truth) in sets.items():
        enc = encode(frame, None)
        position = {c: i for i, c in enumerate(enc.classes)}
        encoded[name] = (enc, pd.Index(enc.item_ids).get_indexer(truth.index), truth.map(position).to_numpy())
    skewed = {f"skewed sim k={k} p0={p}": [skewed_crowd(s, k, p) for s in range(3)] for k, p in ((2, 0.85), (4, 0.7))}
    rows = []
    for label, kw in variants:
        row: dict[str, Any] = {"variant": label}
        for name, (enc, idx, truth) in encoded.items():
            row[name] = f"{100 * (em(enc, **kw)[0][idx].argmax(1) == truth).mean():.2f}"
        for name, crowds in skewed.items():
            row[name] = f"{100 * np.mean([(em(enc, **kw)[0].argmax(1) == t).mean() for enc, t in crowds]):.2f}"
        rows.append(row)
    print("\nAblations (accuracy % on truth items; skewed sims: mean of 3 seeds, truth 85/15 or 70/10/10/10):\n")
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(
        f"\nThe choice auto makes without gold: held-out log-likelihood per answer (1 of {selection.FOLDS} folds held "
        "out, as core.consensus.selection) of each Dawid-Skene prior, and accuracy % of each:\n"
    )
    rows = []
    crowds = {name: [(enc, idx, truth)] for name, (enc, idx, truth) in encoded.items()}
    crowds.update({name: [(enc, np.arange(enc.n_items), t) for enc, t in sims] for name, sims in skewed.items()})
    candidates = {"dawid_skene": {"prior": "one_coin", "strength": PRIOR_STRENGTH["dawid_skene"]}, "dawid_skene_pooled": {"prior": "pooled", "strength": PRIOR_STRENGTH["dawid_skene_pooled"]}}
    for name, cases in crowds.items():
        for n, (enc, idx, truth) in enumerate(cases):
            fits = {m: functools.partial(em, **kw) for m, kw in candidates.items()}
            chosen, scores = selection.select(enc, fits)
            vote_model = selection.heldout_log_likelihood(enc, majority_model)
            accuracy = {m: 100 * (em(enc, **kw)[0][idx].argmax(1) == truth).mean() for m, kw in candidates.items()}
            rows.append(
                {
                    "crowd": name if len(cases) == 1 else f"{name} seed {n}",
                    **{f"held-out LL {m}": f"{v:.4f}" for m, v in scores.items()},
                    "held-out LL majority vote (shares + one M-step, pooled prior)": f"{vote_model:.4f}",
                    **{f"accuracy {m}": f"{v:.2f}" for m, v in accuracy.items()},
                    "auto chooses": chosen,
                }
            )
    print(pd.DataFrame(rows).to_markdown(index=False))
    print("\nEM stopping: accuracy % (EM iterations) of our Dawid-Skene by convergence tolerance (package defaults: tol 1e-6, max 100):\n")
    rows = []
    for name, (frame, truth) in sets.items():
        row = {"data set": name}
        for method in ("dawid_skene", "dawid_skene_pooled"):
            for tol, cap in ((1e-6, 100), (1e-8, 500), (1e-10, 2000)):
                result = aggregate_full(frame, method, tol=tol, max_iter=cap)
                accuracy = 100 * correct(result.labels.set_index("item_id")["label"], truth).mean()
                row[f"{method} tol {tol:g}"] = f"{accuracy:.2f} ({result.iterations})"
        rows.append(row)
    print(pd.DataFrame(rows).to_markdown(index=False))
    print("\nPrior strength chosen by held-out likelihood of answers (one-coin prior, class prior estimated):\n")
    rows = []
    for name, (enc, idx, truth) in encoded.items():
        grid = {s: heldout_ll(enc, strength=s) for s in (1.0, 3.0, 10.0, 30.0)}
        best = max(grid, key=lambda s: grid[s])
        accuracy = 100 * (em(enc, strength=best)[0][idx].argmax(1) == truth).mean()
        rows.append({"data set": name, **{f"held-out LL s={s:g}": f"{v:.4f}" for s, v in grid.items()}, "chosen": best, "accuracy": f"{accuracy:.2f}"})
    print(pd.DataFrame(rows).to_markdown(index=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of data set folders")
    parser.add_argument("--crowdkit", nargs="+", default=list(CROWDKIT), choices=CROWDKIT)
    parser.add_argument("--cap", type=float, default=120.0, help="seconds before a crowd-kit method is killed")
    parser.add_argument("--gold-shares", type=float, nargs="*", default=[0.01, 0.05, 0.10])
    parser.add_argument("--reveals", type=int, default=20, help="random gold draws per share")
    parser.add_argument("--ablations", action="store_true")
    args = parser.parse_args()
    try:
        from importlib.metadata import version

        kit_version = version("crowd-kit")
    except Exception:
        print("crowd-kit is not installed: pip install crowd-kit (benchmark-only dependency)", file=sys.stderr)
        return 2
    folders = sorted(p for p in args.data.iterdir() if (p / "labels.txt").is_file() and (p / "truth.txt").is_file())
    if not folders:
        print(f"no data set (labels.txt + truth.txt) under {args.data.resolve()}", file=sys.stderr)
        return 2
    print(f"crowd-kit {kit_version}, numpy {np.__version__}, pandas {pd.__version__}; data: {args.data.resolve()}")
    print(
        "Our defaults (the same for every data set): "
        f"Dawid-Skene prior strength {PRIOR_STRENGTH} pseudo-labels per confusion row, smoothing 0.01, "
        "max 100 EM iterations, tol 1e-6, init from vote shares, class prior estimated, confusions learned from "
        "items with two or more answers or gold; majority ties -> the "
        "class answered least often overall. auto without gold (with overlap): the Dawid-Skene prior of "
        f"{selection.CANDIDATES} with the higher held-out log-likelihood of answers (1 of {selection.FOLDS} folds "
        f"held out, seed {selection.SEED}) = dawid_skene_selected; with >= {bakeoff.MIN_GOLD_FOR_BAKEOFF} annotated gold "
        f"items a bake-off of {bakeoff.BAKEOFF_METHODS} ({bakeoff.FOLDS}-fold cross-fitted on gold) replaces "
        f"that choice only with a method better on gold by an exact one-sided McNemar test at {bakeoff.ALPHA}. "
        "crowd-kit: library defaults, n_iter=100 for DS and OneCoinDS."
    )
    sets = {p.name: load(p) for p in folders}
    state = main_table(sets, args.crowdkit, args.cap)
    if args.gold_shares:
        gold_table(sets, state, args.gold_shares, args.reveals)
    if args.ablations:
        ablations(sets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
