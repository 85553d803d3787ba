"""Ingest throughput: files/s for N small images, cold (first ingest), warm (re-ingest, nothing changed: no
file read, only listed and compared by size, mtime, ctime and inode) and rehash (``rehash: always``: every file
read and hashed again although nothing changed; the cost of that mode; ``every N runs`` pays 1/N of it per run).

    python benchmarks/ingest.py                 # 10,000 32x32 PNGs into a temp SQLite store
    python benchmarks/ingest.py --n 50000 --store-url postgresql+psycopg2://postgres@127.0.0.1:5432/bench

The images are real PNGs (digits of scikit-learn, jittered so every file has distinct bytes).
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from labeling_assets.core.ingest.scan import IngestOptions, ingest_source
from labeling_assets.core.store.schema import LabelStore, sqlite_url


def write_images(folder: Path, n: int, size: int, seed: int) -> int:
    digits = load_digits().images
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(n):
        base = 255 - digits[i % len(digits)] * (255 / 16)
        noisy = (base + rng.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy, mode="L").resize((size, size)).save(buffer, format="PNG")
        path = folder / f"{i // 1000:03d}" / f"img_{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        total += len(buffer.getvalue())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="number of images (default 10000)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    parser.add_argument("--store-url", default=None, help="SQLAlchemy URL (default: a temp SQLite file)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        source = work / "source"
        t0 = time.perf_counter()
        n_bytes = write_images(source, args.n, args.size, args.seed)
        print(f"wrote {args.n} PNGs ({n_bytes / 1e6:.1f} MB, {args.size}x{args.size}) in {time.perf_counter() - t0:.1f}s")
        store = LabelStore(args.store_url or sqlite_url(str(work / "labels.db")))
        store.migrate()
        print(f"store: {store.backend}")
        for label, rehash_every in (("cold", 0), ("warm", 0), ("rehash", 1)):
            report = ingest_source(
                store,
                str(source),
                raw_dir=work / "raw",
                quarantine_dir=work / "quarantine",
                options=IngestOptions(rehash_every=rehash_every),
            )
            print(
                f"{label}: {len(report.outcomes)} files in {report.seconds:.2f}s = "
                f"{len(report.outcomes) / report.seconds:,.0f} files/s; files read {report.files_read}; {report.counts}"
            )
        store.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
