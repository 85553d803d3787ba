"""The QA report's time and size with one megabyte answer among ordinary ones (issue 28, finding 7).

    python benchmarks/qa_report_long_answer.py                 # 2,000 votes, one answer of 1,000,000 characters
    python benchmarks/qa_report_long_answer.py --votes 20000 --chars 2000000

A labeler can answer with any string (Label Studio stores it); the store keeps it whole, and the report shows it
bounded (``core/display.py``). Printed: ``build_qa_report`` seconds and page size without and with the long
answer. Before the bound, the class-share chart drew the whole string as a legend entry: 101.6 s vs 0.9 s on
the issue's machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.reporting.qa_report import build_qa_report  # noqa: E402

CLASSES = ["cat", "dog", "bird"]


def votes(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pd.DataFrame(
        {
            "item_id": [f"i{k // 3}" for k in range(n)],
            "labeler_id": [f"l{k % 7}" for k in range(n)],
            "label": rng.choice(CLASSES, n).astype(object),
            "lead_time_s": rng.gamma(2.0, 3.0, n),
            "created_at": [start + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 14, n)],
        }
    )


def timed(frame: pd.DataFrame) -> tuple[float, int]:
    consensus = pd.DataFrame({"item_id": frame["item_id"].unique(), "label": "cat", "confidence": 0.9})
    started = time.perf_counter()
    report = build_qa_report(frame, pd.Series(dtype=object), consensus, title="bench", classes=CLASSES)
    return time.perf_counter() - started, len(report.html.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--chars", type=int, default=1_000_000)
    args = parser.parse_args()
    frame = votes(args.votes)
    plain_s, plain_bytes = timed(frame)
    frame.loc[0, "label"] = "m" * args.chars
    long_s, long_bytes = timed(frame)
    print(f"{args.votes} votes: report {plain_s:.2f} s, {plain_bytes:,} bytes")
    print(f"with one {args.chars:,}-character answer: report {long_s:.2f} s, {long_bytes:,} bytes")


if __name__ == "__main__":
    main()
