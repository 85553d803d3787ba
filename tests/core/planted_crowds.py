"""Planted crowds shared by the consensus tests (pure data, no store)."""

import numpy as np
import pandas as pd


def one_good_two_random(
    rng: np.random.Generator, n_items: int = 400, k: int = 4
) -> tuple[np.ndarray, pd.DataFrame]:
    """Labelers u0-u1 are right 95 % of the time, u2-u9 answer at random; each item gets one good and two random
    labelers. Returns the truth and the votes (item_id, labeler_id, label); draws from ``rng`` in a fixed order."""
    truth = rng.integers(0, k, n_items)
    rows = []
    for item in range(n_items):
        good = int(rng.integers(0, 2))
        rows.append((item, f"u{good}", int(truth[item]) if rng.random() < 0.95 else int(rng.integers(0, k))))
        for labeler in rng.choice(np.arange(2, 10), 2, replace=False):
            rows.append((item, f"u{labeler}", int(rng.integers(0, k))))
    return truth, pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"])


MULTILABEL_PREVALENCE = (0.3, 0.2, 0.1, 0.05, 0.05, 0.02)
# labeler -> (sensitivity, specificity) per class; None = a spammer ticking each class with probability 0.3.
MULTILABEL_CROWD: dict[str, tuple[float, float] | None] = {
    "good_1": (0.9, 0.98),
    "good_2": (0.9, 0.98),
    "lazy_1": (0.35, 0.99),  # misses most findings, never invents one
    "lazy_2": (0.35, 0.99),
    "spammer_1": None,
    "spammer_2": None,
}


def multilabel_good_lazy_spammer(
    rng: np.random.Generator, n_items: int = 600, per_item: int = 3
) -> tuple[list[str], pd.DataFrame, dict[int, list[str]]]:
    """A multi-label crowd with known truth (classes c0-c5, prevalence 0.3 down to 0.02): each item gets
    ``per_item`` of MULTILABEL_CROWD's labelers. Returns classes, the set votes (item_id, labeler_id, label as a
    sorted list) and the true sets."""
    classes = [f"c{k}" for k in range(len(MULTILABEL_PREVALENCE))]
    truth = rng.random((n_items, len(classes))) < np.asarray(MULTILABEL_PREVALENCE)
    names = list(MULTILABEL_CROWD)
    rows = []
    for item in range(n_items):
        for who in rng.choice(names, per_item, replace=False):
            rates = MULTILABEL_CROWD[str(who)]
            if rates is None:
                answer = rng.random(len(classes)) < 0.3
            else:
                answer = np.where(
                    truth[item], rng.random(len(classes)) < rates[0], rng.random(len(classes)) > rates[1]
                )
            rows.append((item, str(who), [classes[k] for k in np.flatnonzero(answer)]))
    true_sets = {item: [classes[k] for k in np.flatnonzero(truth[item])] for item in range(n_items)}
    return classes, pd.DataFrame(rows, columns=["item_id", "labeler_id", "label"]), true_sets
