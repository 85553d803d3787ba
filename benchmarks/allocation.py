"""Labels (and cost) needed to reach a target accuracy: fixed overlap 3, dynamic overlap, active learning, the allocator.

    python benchmarks/allocation.py                       # digits + the three real crowds, 5 seeds
    python benchmarks/allocation.py --only digits --seeds 2
    python benchmarks/allocation.py --trace dynamic "allocator l=0" "allocator l=3" --wrong-label-cost 0 3

Every policy spends answers in steps of ``--batch`` slots and is scored after each step; "labels" is the
number of crowd answers spent when the target is first reached, "cost" adds expert reviews at their cost
(:data:`core.allocation.allocator.DEFAULT_EXPERT_COST` labels each). A run that never reaches the target
counts as its whole budget (for a replay, every real answer of the pool) and shows in "reached";
"final acc" is the accuracy where a run stopped (the target, or the best it got).

Policies (each beside its random-arm baseline, the same policy with its choices made at random):

- ``fixed3``: new items in random order, 3 answers each (it is its own random arm, and active learning's);
- ``dynamic``: 2 answers per new item, then one more while the item's consensus confidence is under 0.7,
  up to 5 (``plan_overlap_raises``' rule); random arm: the same number of raises on random labeled items;
- ``active_learning`` (digits only: the real crowds have no features): fixed overlap 3, new items by the
  margin of the model (``core.training.active_learning``);
- ``allocator``: ``core.allocation.allocator.allocate`` with its default 10 % random arm (on digits, new
  items carry the model's probabilities and margin score; a simulated expert at 0.98 costs 5 labels);
  random arm: the allocator with every slot random (``random_share=1``).

Consensus for every policy: one-coin Dawid-Skene posteriors (per-labeler accuracy by EM, shrunk toward the
crowd's mean), the allocator's own arithmetic.

Data:

- ``digits``: the 1,797 bundled digits, 30 % fixed test set; every pool item has 5 answers planned by
  ``core.labelstudio.crowd.plan_crowd`` (5 labelers at accuracy 0.7, errors spread over the other classes),
  revealed one at a time. Accuracy = test accuracy of the pre-label baseline
  (``core.training.baseline``) fitted on the consensus labels; target ``--digits-target`` (default 0.85).
- real crowds (``../shared/data/real_crowd`` or ``$REAL_CROWD_DIR``): the items with truth; each answer
  asked for is drawn without replacement from the item's real answers (an item with none left can get no
  more). Accuracy = share of those items whose consensus label is right (an unlabeled item counts as
  wrong), truth used for scoring only; target = ``--real-target-share`` (default 0.99) of fixed overlap
  3's mean final accuracy, i.e. the same accuracy. No expert: nobody's real expert answers exist.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.allocation.allocator import (  # noqa: E402
    DEFAULT_EXPERT_ACCURACY,
    DEFAULT_EXPERT_COST,
    Costs,
    LabeledItem,
    NewItem,
    allocate,
)
from labeling_assets.core.labelstudio.crowd import LabelerSpec, plan_crowd  # noqa: E402
from labeling_assets.core.training import active_learning as al  # noqa: E402
from labeling_assets.core.training.baseline import fit_baseline  # noqa: E402

REAL_SETS = ("BarzanMozafari", "HITspam-UsingCrowdflower", "AdultContent2")
DYNAMIC_THRESHOLD, MAX_VOTES = 0.7, 5


@dataclass
class Pool:
    """Items, their answers still unasked (shuffled per seed) and what has been revealed."""

    n_classes: int
    truth: np.ndarray
    queue: list[list[tuple[int, int]]]  # per item: (labeler, class) answers not yet drawn
    votes: list[list[tuple[int, int]]] = field(default_factory=list)
    expert: dict[int, int] = field(default_factory=dict)
    labels_spent: int = 0
    expert_reviews: int = 0

    def __post_init__(self) -> None:
        self.votes = [[] for _ in self.queue]

    def can_ask(self, i: int) -> bool:
        return bool(self.queue[i]) and len(self.votes[i]) < MAX_VOTES and i not in self.expert

    def ask(self, i: int) -> None:
        if self.queue[i]:
            self.votes[i].append(self.queue[i].pop())
            self.labels_spent += 1

    def labeled(self) -> list[int]:
        return [i for i, v in enumerate(self.votes) if v or i in self.expert]

    def posteriors(self, items: list[int], prior_acc: float = 0.7) -> tuple[np.ndarray, float]:
        """One-coin posteriors of ``items`` (EM over every revealed vote) and the crowd's mean accuracy."""
        c = self.n_classes
        rows = [(i, lab, cls) for i in range(len(self.votes)) for lab, cls in self.votes[i]]
        post = np.full((len(self.votes), c), 1.0 / c)
        acc_mean = prior_acc
        if rows:
            it, lab, cls = (np.array(x) for x in zip(*rows, strict=True))
            n_lab = int(lab.max()) + 1
            acc = np.full(n_lab, prior_acc)
            for _ in range(4):
                a = np.clip(acc[lab], 1.0 / c + 1e-3, 1 - 1e-3)
                loglik = np.tile(np.log((1 - a) / (c - 1))[:, None], (1, c))
                loglik[np.arange(len(a)), cls] = np.log(a)
                logp = np.zeros((len(self.votes), c))
                np.add.at(logp, it, loglik)
                post = np.exp(logp - logp.max(axis=1, keepdims=True))
                post /= post.sum(axis=1, keepdims=True)
                hit = post[it, cls]
                n = np.bincount(lab, minlength=n_lab)
                acc_mean = float(np.clip(hit.mean(), 1.0 / c + 0.02, 0.99))
                acc = (np.bincount(lab, weights=hit, minlength=n_lab) + 4 * acc_mean) / (n + 4)
        for i, cls_e in self.expert.items():
            post[i] = (1 - DEFAULT_EXPERT_ACCURACY) / (c - 1)
            post[i, cls_e] = DEFAULT_EXPERT_ACCURACY
        return post[items], acc_mean


# A policy spends up to ``batch`` slots on ``pool``; ``model_probs`` (pool-wide, or None) feeds the choice.
Policy = Callable[[Pool, int, np.ndarray | None, np.random.Generator, int], None]


def _new_items(pool: Pool, rng: np.random.Generator) -> list[int]:
    fresh = [i for i, v in enumerate(pool.votes) if not v and i not in pool.expert and pool.queue[i]]
    return [fresh[j] for j in rng.permutation(len(fresh))]


def _by_margin(items: list[int], probs: np.ndarray | None) -> list[int]:
    if probs is None or not items:
        return items
    scores = al.uncertainty_scores(probs[items], "margin")
    return [items[j] for j in np.argsort(-scores, kind="stable")]


def fixed(overlap: int, by_model: bool) -> Policy:
    def run(pool: Pool, batch: int, probs: np.ndarray | None, rng: np.random.Generator, seed: int) -> None:
        fresh = _new_items(pool, rng)
        order = _by_margin(fresh, probs) if by_model else fresh
        for i in order[: max(1, batch // overlap)]:
            for _ in range(overlap):
                pool.ask(i)

    return run


def dynamic(random_raises: bool) -> Policy:
    def run(pool: Pool, batch: int, probs: np.ndarray | None, rng: np.random.Generator, seed: int) -> None:
        labeled = [i for i in pool.labeled() if pool.can_ask(i)]
        spent = 0
        if labeled:
            post, _ = pool.posteriors(labeled)
            unsure = [i for i, p in zip(labeled, post.max(axis=1), strict=True) if p < DYNAMIC_THRESHOLD]
            if random_raises:
                unsure = [labeled[j] for j in rng.permutation(len(labeled))[: len(unsure)]]
            for i in unsure[:batch]:
                pool.ask(i)
                spent += 1
        for i in _new_items(pool, rng)[: max(0, batch - spent) // 2]:
            pool.ask(i)
            pool.ask(i)

    return run


def allocator(random_share: float, expert: bool, wrong_label_cost: float, usable: float = 0.0) -> Policy:
    def run(pool: Pool, batch: int, probs: np.ndarray | None, rng: np.random.Generator, seed: int) -> None:
        c = pool.n_classes
        labeled = pool.labeled()
        post, acc = pool.posteriors(labeled) if labeled else (np.zeros((0, c)), 0.7)
        fresh = _new_items(pool, rng)
        scores = al.uncertainty_scores(probs[fresh], "margin") if probs is not None and fresh else np.zeros(len(fresh))
        new = [
            NewItem(str(i), float(s), probs[i].tolist() if probs is not None else None,
                    weight=float(s) if probs is not None else 1.0)
            for i, s in zip(fresh, scores, strict=True)
        ]
        old = [
            LabeledItem(str(i), p.tolist(), len(pool.votes[i]), pool.can_ask(i))
            for i, p in zip(labeled, post, strict=True)
            if i not in pool.expert
        ]
        decisions = allocate(
            batch, new, old, n_classes=c, labeler_accuracy=max(acc, 1.0 / c + 0.02), costs=Costs(1.0, DEFAULT_EXPERT_COST),
            expert_accuracy=DEFAULT_EXPERT_ACCURACY if expert else None, random_share=random_share, seed=seed,
            wrong_label_cost=wrong_label_cost, usable_confidence=usable,
        )
        for d in decisions:
            i = int(d.item_id)
            if d.action == "expert":
                right = rng.random() < DEFAULT_EXPERT_ACCURACY
                pool.expert[i] = int(pool.truth[i]) if right else int((pool.truth[i] + 1 + rng.integers(c - 1)) % c)
                pool.expert_reviews += 1
            else:
                pool.ask(i)

    return run


@dataclass(frozen=True)
class Outcome:
    labels: int
    cost: float
    reached: bool
    final_accuracy: float


def simulate(
    pool: Pool, policy: Policy, score: Callable[[Pool], tuple[float, np.ndarray | None]], *, target: float,
    batch: int, budget: int, seed: int,
) -> Outcome:
    rng = np.random.default_rng(seed)
    step = 0
    acc, probs = score(pool)
    while True:
        before = (pool.labels_spent, pool.expert_reviews)
        policy(pool, batch, probs, rng, seed * 10_000 + step)
        step += 1
        acc, probs = score(pool)
        cost = pool.labels_spent + DEFAULT_EXPERT_COST * pool.expert_reviews
        if acc >= target:
            return Outcome(pool.labels_spent, cost, True, acc)
        if pool.labels_spent >= budget or (pool.labels_spent, pool.expert_reviews) == before:
            # Never reached: it counts as its whole budget (for a replay, every answer the pool holds).
            whole = min(budget, pool.labels_spent + sum(len(q) for q in pool.queue))
            return Outcome(whole, cost + whole - pool.labels_spent, False, acc)


def digits_case(seed: int, crowd_accuracy: float = 0.7) -> tuple[Callable[[], Pool], Callable[[Pool], tuple[float, np.ndarray | None]]]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: nothing is downloaded

    d = load_digits()
    x, y = d.data.astype(np.float32) / 16.0, d.target
    order = np.random.default_rng(seed).permutation(len(y))
    test, pool_idx = order[: int(0.3 * len(y))], order[int(0.3 * len(y)) :]
    classes = [str(k) for k in range(10)]
    crowd = [LabelerSpec(name=f"a{k}", preset="average", accuracy=crowd_accuracy) for k in range(5)]
    plan = plan_crowd({j: str(y[i]) for j, i in enumerate(pool_idx)}, crowd, classes, overlap=5, seed=seed)
    answers: list[list[tuple[int, int]]] = [[] for _ in pool_idx]
    for a in plan.annotations:
        answers[int(a.item_id)].append((int(a.labeler[1:]), int(a.label)))

    def make() -> Pool:
        rng = np.random.default_rng(seed + 1)
        return Pool(10, y[pool_idx], [[q[j] for j in rng.permutation(len(q))] for q in answers])

    def score(pool: Pool) -> tuple[float, np.ndarray | None]:
        labeled = pool.labeled()
        if len(labeled) < 20:
            return 0.0, None
        post, _ = pool.posteriors(labeled)
        labels = [classes[k] for k in post.argmax(axis=1)]
        if len(set(labels)) < 2:
            return 0.0, None
        model = fit_baseline(x[pool_idx[labeled]], labels, classes, seed=seed)
        acc = float((model.predict_proba(x[test]).argmax(axis=1) == y[test]).mean())
        return acc, model.predict_proba(x[pool_idx])

    return make, score


def real_case(folder: Path, seed: int) -> tuple[Callable[[], Pool], Callable[[Pool], tuple[float, np.ndarray | None]]]:
    truth_rows = [line.rstrip("\n").split("\t") for line in (folder / "truth.txt").read_text().splitlines() if line]
    label_rows = [line.rstrip("\n").split("\t") for line in (folder / "labels.txt").read_text().splitlines() if line]
    last: dict[tuple[str, str], str] = {}
    for worker, item, answer in label_rows:
        last[(worker, item)] = answer  # a worker's repeat on an item: keep the last
    classes = sorted({a for a in last.values()} | {t for _, t in truth_rows})
    cls = {c: k for k, c in enumerate(classes)}
    truth = {item: cls[t] for item, t in truth_rows}
    workers = {w: k for k, w in enumerate(sorted({w for w, _ in last}))}
    answers: dict[str, list[tuple[int, int]]] = {}
    for (worker, item), answer in last.items():
        if item in truth:
            answers.setdefault(item, []).append((workers[worker], cls[answer]))
    items = sorted(answers)

    def make() -> Pool:
        rng = np.random.default_rng(seed)
        queue = [[answers[i][j] for j in rng.permutation(len(answers[i]))] for i in items]
        return Pool(len(classes), np.array([truth[i] for i in items]), queue)

    def score(pool: Pool) -> tuple[float, np.ndarray | None]:
        labeled = pool.labeled()
        if not labeled:
            return 0.0, None
        post, _ = pool.posteriors(labeled)
        return float((post.argmax(axis=1) == pool.truth[labeled]).sum() / len(pool.truth)), None

    return make, score


def policies(expert: bool, wrong_label_costs: list[float], usable: Sequence[float] = ()) -> dict[str, tuple[Policy, Policy | str]]:
    """Each policy with its random arm (or a note naming the row that already is its random arm)."""
    table: dict[str, tuple[Policy, Policy | str]] = {
        "fixed3": (fixed(3, by_model=False), "(itself)"),
        "dynamic": (dynamic(random_raises=False), dynamic(random_raises=True)),
        "active_learning": (fixed(3, by_model=True), "(= fixed3)"),
    }
    for n, lam in enumerate(wrong_label_costs):
        # The all-random arm does not depend on lambda: run it once.
        table[f"allocator l={lam:g}"] = (allocator(0.10, expert, lam), allocator(1.0, expert, lam) if n == 0 else "(above)")
    for tau in usable:  # a label under tau is worth nothing (core.allocation.allocator.item_value)
        table[f"allocator c={tau:g}"] = (allocator(0.10, expert, 0.0, tau), "(above)")
    return table


def run_case(name: str, cases: list[tuple[Callable[[], Pool], Callable[[Pool], tuple[float, np.ndarray | None]]]],
             target: float | None, target_share: float, batch: int, budget: int, names: list[str],
             expert: bool, wrong_label_costs: list[float], usable: Sequence[float] = ()) -> None:
    started = time.perf_counter()
    table = policies(expert, wrong_label_costs, usable)
    if target is None:  # the same accuracy as fixed overlap 3 at the end of the pool
        finals = [simulate(make(), table["fixed3"][0], score, target=2.0, batch=batch, budget=budget, seed=s)
                  for s, (make, score) in enumerate(cases)]
        target = target_share * float(np.mean([o.final_accuracy for o in finals]))
    print(f"\n{name}: target accuracy {target:.4f}; batch {batch}, budget {budget} labels; {len(cases)} seeds")
    header = (f"{'policy':<17} {'labels (mean +- sd)':>20} {'cost':>8} {'reached':>8} {'final acc':>9} {'vs fixed3':>10}   "
              f"{'random arm: labels':>19} {'reached':>8}")
    print(header)
    print("-" * len(header))
    base = None
    for policy in names:
        main, rand = table[policy]
        rows = []
        for arm in (main, rand):
            if isinstance(arm, str):
                rows.append(None)
                continue
            outs = [simulate(make(), arm, score, target=target, batch=batch, budget=budget, seed=s)
                    for s, (make, score) in enumerate(cases)]
            rows.append(outs)
        outs = rows[0]
        assert outs is not None
        labels = np.array([o.labels for o in outs])
        cost = np.mean([o.cost for o in outs])
        if policy == "fixed3":
            base = labels.mean()
        saving = f"{1 - labels.mean() / base:+.0%}" if base else ""
        rnd = rows[1]
        rnd_txt = (f"{np.mean([o.labels for o in rnd]):>10.0f} +- {np.std([o.labels for o in rnd]):>4.0f}"
                   f" {sum(o.reached for o in rnd):>6}/{len(rnd)}" if rnd else f"{rand:>19} {'':>8}")
        print(f"{policy:<17} {labels.mean():>11.0f} +- {labels.std():>5.0f} {cost:>8.0f} "
              f"{sum(o.reached for o in outs):>5}/{len(outs)} {np.mean([o.final_accuracy for o in outs]):>9.4f} "
              f"{saving:>10}   {rnd_txt}")
    print(f"({time.perf_counter() - started:.0f} s)")


def trace(name: str, case: tuple[Callable[[], Pool], Callable[[Pool], tuple[float, np.ndarray | None]]],
          policy: Policy, batch: int, steps: int) -> None:
    """Why a policy does what it does: per step, items labeled per answer and the consensus accuracy."""
    make, score = case
    pool, rng = make(), np.random.default_rng(0)
    acc, probs = score(pool)
    print(f"\ntrace {name}, seed 0: labels, items labeled, items per answer, consensus accuracy of labeled items, test accuracy")
    for step in range(steps):
        policy(pool, batch, probs, rng, step)
        acc, probs = score(pool)
        labeled = pool.labeled()
        post, _ = pool.posteriors(labeled)
        consensus = float((post.argmax(axis=1) == pool.truth[labeled]).mean())
        if step % 5 == 4:
            print(f"  {pool.labels_spent:>5} {len(labeled):>5} {len(labeled) / max(pool.labels_spent, 1):>6.2f} "
                  f"{consensus:>6.3f} {acc:>6.3f}")


# --- machine labels with a guarantee (docs/tiers.md) ---------------------------------------------------------

MACHINE_WEIGHT = 0.5  # a machine label's weight in the model's fit (the tier_weights default of the benchmark)


def _is_train(i: int, seed: int) -> bool:
    """A labeled item's frozen split: train for 70 % (a keyed hash, as dataset_splits freezes one per item)."""
    return bool(np.random.default_rng([seed, i]).random() < 0.7)


@dataclass
class MachineRun:
    """One seed of the allocator with machine labels: what each step decided, and the labels to the target."""

    outcome: Outcome | None = None
    decisions: list[tuple[int, float | None, int, float | None]] = field(default_factory=list)  # labels, t, n, acc


def machine_label_digits(seed: int, *, target: float, confidence: float, check_rate: float, use_machine: bool,
                         random_share: float, acc_target: float, batch: int, budget: int,
                         min_reference_confidence: float = 0.0, crowd_accuracy: float = 0.7) -> MachineRun:
    """The allocator on the digits, its model fitted on the human labels of the train split plus (``use_machine``)
    the machine labels chosen with a guarantee on the other human labels; machine-labeled items leave the
    allocator's pool except a ``check_rate`` sample."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from labeling_assets.core.dataset.tiers import check_sample, choose_threshold

    d = load_digits()
    x, y = d.data.astype(np.float32) / 16.0, d.target
    make, _ = digits_case(seed, crowd_accuracy)
    order = np.random.default_rng(seed).permutation(len(y))
    test, pool_idx = order[: int(0.3 * len(y))], order[int(0.3 * len(y)):]
    scaler = StandardScaler().fit(x[pool_idx])
    xs = scaler.transform(x)
    pool = make()
    run = MachineRun()
    sampled = check_sample([f"{seed:04x}{i:011x}" for i in range(len(pool_idx))], check_rate, seed)
    machine: dict[int, int] = {}
    policy = allocator(random_share, True, 0.0)
    rng = np.random.default_rng(seed)

    def fit_and_decide() -> tuple[float, np.ndarray | None]:
        labeled = pool.labeled()
        if len(labeled) < 20:
            return 0.0, None
        post, _ = pool.posteriors(labeled)
        human = dict(zip(labeled, post.argmax(axis=1).tolist(), strict=True))
        train = [i for i in labeled if _is_train(i, seed)]
        rows = train + [i for i in machine if i not in human]
        labels = [human[i] if i in human else machine[i] for i in rows]
        weights = [1.0 if i in human else MACHINE_WEIGHT for i in rows]
        if len(set(labels)) < 2:
            return 0.0, None
        model = LogisticRegression(C=1.0, max_iter=300, random_state=seed)
        model.fit(xs[pool_idx[rows]], labels, sample_weight=weights)
        probs = np.zeros((len(pool_idx), 10))
        probs[:, model.classes_] = model.predict_proba(xs[pool_idx])
        acc = float((model.predict(xs[test]) == y[test]).mean())
        # The guarantee: reference = human-labeled items outside train (the model never fitted them).
        # (machine_label_min_reference_confidence: only human labels that sure; an expert's always count)
        sure = post.max(axis=1) >= min_reference_confidence
        ref = [i for i, ok in zip(labeled, sure, strict=True) if not _is_train(i, seed) and (ok or i in pool.expert)]
        decision = choose_threshold(probs[ref].max(axis=1), probs[ref].argmax(axis=1) == np.array([human[i] for i in ref]),
                                    target=target, confidence=confidence)
        machine.clear()
        if use_machine and decision.threshold is not None:
            for i in np.flatnonzero(probs.max(axis=1) >= decision.threshold):
                if int(i) not in human:
                    machine[int(i)] = int(probs[i].argmax())
        truth_acc = float(np.mean([pool.truth[i] == k for i, k in machine.items()])) if machine else None
        run.decisions.append((pool.labels_spent, decision.threshold, len(machine), truth_acc))
        return acc, probs

    acc, probs = fit_and_decide()
    while True:
        before = pool.labels_spent
        hidden = {i: pool.queue[i] for i in machine if not sampled[i]}  # machine-labeled: not for people
        for i in hidden:
            pool.queue[i] = []
        policy(pool, batch, probs, rng, seed * 10_000 + len(run.decisions))
        for i, q in hidden.items():
            pool.queue[i] = q
        acc, probs = fit_and_decide()
        if run.outcome is None and acc >= acc_target:
            run.outcome = Outcome(pool.labels_spent, pool.labels_spent + DEFAULT_EXPERT_COST * pool.expert_reviews,
                                  True, acc)
        if pool.labels_spent >= budget or pool.labels_spent == before:
            if run.outcome is None:
                run.outcome = Outcome(budget, budget + DEFAULT_EXPERT_COST * pool.expert_reviews, False, acc)
            return run


def run_machine_labels(args: argparse.Namespace) -> None:
    """Rows "allocator with machine labels" (labels to the target, beside its random arm and the same allocator
    without machine labels under the same 70 % train split), and the machine labels' accuracy on the truth against
    the guaranteed target over ``--machine-seeds`` seeds."""
    started = time.perf_counter()
    common = dict(target=args.machine_target, confidence=args.machine_confidence, check_rate=args.machine_check_rate,
                  acc_target=args.digits_target, batch=args.batch, budget=args.machine_budget,
                  min_reference_confidence=args.machine_min_reference_confidence,
                  crowd_accuracy=args.machine_crowd_accuracy)
    print(f"\ndigits, machine labels: 5 labelers at {args.machine_crowd_accuracy}; "
          f"target {args.machine_target} at {args.machine_confidence:.0%} confidence, "
          f"reference: human labels at consensus confidence >= {args.machine_min_reference_confidence} (or expert), "
          f"check sample {args.machine_check_rate:.0%}, machine weight {MACHINE_WEIGHT}; test accuracy target "
          f"{args.digits_target}; budget {args.machine_budget} labels")
    rows = {
        "allocator (train split only)": dict(use_machine=False, random_share=0.10),
        "allocator + machine labels": dict(use_machine=True, random_share=0.10),
        "random arm + machine labels": dict(use_machine=True, random_share=1.0),
    }
    runs: dict[str, list[MachineRun]] = {}
    if args.machine_rows == "guarantee":
        rows = {"allocator + machine labels": rows["allocator + machine labels"]}
    for name, kw in rows.items():
        seeds = args.machine_seeds if name == "allocator + machine labels" else args.seeds
        runs[name] = [machine_label_digits(s, **kw, **common) for s in range(seeds)]  # type: ignore[arg-type]
        outs = [r.outcome for r in runs[name][: args.seeds] if r.outcome]
        labels = np.array([o.labels for o in outs])
        print(f"{name:<30} labels to {args.digits_target}: {labels.mean():>6.0f} +- {labels.std():>4.0f} "
              f"({sum(o.reached for o in outs)}/{len(outs)} reached; {len(outs)} seeds)")
    met, active, accs, shares, step_met, step_n = 0, 0, [], [], 0, 0
    for r in runs["allocator + machine labels"]:
        final = r.decisions[-1]
        if final[3] is not None:
            active += 1
            accs.append(final[3])
            shares.append(final[2])
        met += final[3] is None or final[3] >= args.machine_target
        for _, _, _, acc in r.decisions:
            if acc is not None:
                step_n += 1
                step_met += acc >= args.machine_target
    n_seeds = len(runs["allocator + machine labels"])
    print(f"machine labels on the truth at the end of the budget ({n_seeds} seeds): a threshold in {active}; "
          f"target met in {met}/{n_seeds} seeds ({met / n_seeds:.0%}); accuracy on the truth mean "
          f"{np.mean(accs) if accs else float('nan'):.4f}, min {min(accs) if accs else float('nan'):.4f}; "
          f"machine-labeled items mean {np.mean(shares) if shares else 0:.0f}; every step with machine labels: "
          f"{step_met}/{step_n} at or above the target")
    thresholds = [r.decisions[-1][1] for r in runs["allocator + machine labels"] if r.decisions[-1][1] is not None]
    if thresholds:
        print(f"thresholds chosen at the end: {sorted(set(thresholds))}")
    print(f"({time.perf_counter() - started:.0f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", nargs="+", default=["digits", *REAL_SETS])
    parser.add_argument("--digits-target", type=float, default=0.85)
    parser.add_argument("--real-target-share", type=float, default=0.99)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--wrong-label-cost", type=float, nargs="+", default=[0.0, 1.0],
                        help="digits: the allocator's lambda, one row each (real crowds: 0, their metric)")
    parser.add_argument("--usable-confidence", type=float, nargs="+", default=[],
                        help="the allocator's tau (a label under it is worth nothing), one row each (digits, 0.9: "
                             "worse than tau = 0, docs/allocation.md)")
    parser.add_argument("--policies", nargs="+", default=None, help="run only these rows (fixed3 always runs)")
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--trace", nargs="+", default=[], help="digits, seed 0: trace these policies and stop")
    parser.add_argument("--trace-steps", type=int, default=30)
    parser.add_argument("--machine-labels", action="store_true", help="only the machine-label rows (docs/tiers.md)")
    parser.add_argument("--machine-target", type=float, default=0.98)
    parser.add_argument("--machine-confidence", type=float, default=0.95)
    parser.add_argument("--machine-check-rate", type=float, default=0.05)
    parser.add_argument("--machine-seeds", type=int, default=20)
    parser.add_argument("--machine-budget", type=int, default=1200)
    parser.add_argument("--machine-min-reference-confidence", type=float, default=0.0)
    parser.add_argument("--machine-crowd-accuracy", type=float, default=0.7)
    parser.add_argument("--machine-rows", choices=["all", "guarantee"], default="all",
                        help="guarantee: only the machine labels' accuracy over --machine-seeds")
    args = parser.parse_args()
    if args.trace:
        table = policies(True, args.wrong_label_cost, args.usable_confidence)
        for name in args.trace:
            trace(name, digits_case(0), table[name][0], args.batch, args.trace_steps)
        return 0
    if args.machine_labels:
        run_machine_labels(args)
        return 0
    real_dir = Path(os.environ.get("REAL_CROWD_DIR", Path(__file__).resolve().parents[2] / "shared/data/real_crowd"))
    def chosen(names: list[str]) -> list[str]:
        return names if args.policies is None else ["fixed3", *(n for n in names if n in args.policies and n != "fixed3")]

    usable = args.usable_confidence
    for name in args.only:
        if name == "digits":
            run_case("digits (simulated crowd, 5 labelers at 0.7)", [digits_case(s) for s in range(args.seeds)],
                     args.digits_target, 0, args.batch, args.budget,
                     chosen(list(policies(True, args.wrong_label_cost, usable))),
                     expert=True, wrong_label_costs=args.wrong_label_cost, usable=usable)
        else:
            cases = [real_case(real_dir / name, s) for s in range(args.seeds)]
            run_case(f"{name} (real answers, replayed)", cases, None, args.real_target_share, args.batch,
                     10**7, chosen(["fixed3", "dynamic", "allocator l=0", *(f"allocator c={t:g}" for t in usable)]),
                     expert=False, wrong_label_costs=[0.0], usable=usable)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
