"""How long the queue's selection takes per strategy (core/labelstudio/selection.order_regular), CPU only.

    python benchmarks/queue_selection_time.py                       # 20,000 candidates, batch 1,000, 10 classes
    python benchmarks/queue_selection_time.py --candidates 100000

Synthetic single-label candidates: Dirichlet pre-labels, 5 committee members each, random 64-bit embeddings and
5,000 already queued items (the caps of core/labelstudio/selection.py). Prints seconds per strategy; the store reads
(core/store/selection_inputs.py) are not included.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.labelstudio.selection import QUEUED_CAP, SelectionInputs, order_regular  # noqa: E402
from labeling_assets.core.labelstudio.tasks import Candidate  # noqa: E402
from labeling_assets.core.tasks import task_kind  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = [str(k) for k in range(args.classes)]

    def probs() -> dict[str, float]:
        return dict(zip(names, map(float, rng.dirichlet(np.ones(args.classes))), strict=True))

    cands = [Candidate(f"i{i}", probs=probs()) for i in range(args.candidates)]
    inputs = SelectionInputs(
        embeddings={c.item_id: rng.integers(0, 2, 64).astype(np.float64) for c in cands},
        queued=rng.integers(0, 2, (QUEUED_CAP, 64)).astype(np.float64),
        committees={c.item_id: [probs() for _ in range(5)] for c in cands},
    )
    kind = task_kind("single_label")
    print(f"{args.candidates} candidates, batch {args.batch}, {args.classes} classes")
    for strategy in ("uncertainty", "random", "committee", "diversity", "hybrid"):
        started = time.perf_counter()
        order_regular(cands, args.batch, strategy, kind, np.random.default_rng(1), inputs)
        print(f"{strategy:<12} {time.perf_counter() - started:6.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
