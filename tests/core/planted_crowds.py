"""Planted crowds shared by the consensus tests (pure data, no store)."""

import numpy as np
import pandas as pd


def one_good_two_random(rng: np.random.Generator, n_items: int = 400, k: int = 4) -> tuple[np.ndarray, pd.DataFrame]:
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
