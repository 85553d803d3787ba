"""Decode throughput of the training cache's input path (``core.training.decode.decode_images``): images/s for
N real files, PNG (grey) and JPEG (colour) at a given side, decoded and resized to the training resolution.

    python benchmarks/decode.py                          # 2,000 files of each kind, 256 px -> 64 px, 2 threads
    python benchmarks/decode.py --n 5000 --side 512 --size 224 --workers 8

Issue 28 moved every decode to ``core.images.decode`` (Pillow, EXIF orientation, 16-bit scaling); torchvision's
decoders were used before for PNG/JPEG. Run it with PYTHONPATH pointing at either checkout to compare.
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

from labeling_assets.core.training.decode import decode_images


def write_files(folder: Path, n: int, side: int, fmt: str, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), np.ones((1, side // 16, side // 16, 1), np.uint8))
    paths = []
    for i in range(n):
        noisy = np.clip(base[i].astype(np.int16) + rng.integers(-8, 9, base[i].shape), 0, 255).astype(np.uint8)
        picture = Image.fromarray(noisy, mode="RGB")
        buffer = io.BytesIO()
        if fmt == "PNG":
            picture.convert("L").save(buffer, format="PNG")
        else:
            picture.save(buffer, format="JPEG", quality=90)
        path = folder / f"{i:06d}.{fmt.lower()}"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="files of each kind (default 2000)")
    parser.add_argument("--side", type=int, default=256, help="side of the files in pixels (default 256)")
    parser.add_argument("--size", type=int, default=64, help="training resolution (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="decode threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported (default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-decode-"))
    try:
        for fmt, channels in (("PNG", 1), ("JPEG", 3)):
            paths = write_files(work, args.n, args.side, fmt, seed=0)
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                _, failures = decode_images(paths, args.size, channels, workers=args.workers)
                best = min(best, time.perf_counter() - t0)
                assert not failures, failures[:3]
            print(f"{fmt:4s} {args.side}px -> {args.size}px, {channels} ch, {args.workers} threads: "
                  f"{args.n / best:,.0f} images/s (best of {args.repeats})")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
