"""Near-duplicate detection: recall and precision on planted copies of the demo digits, and time at scale.

    python benchmarks/near_duplicates.py                      # distances 2..10; 10^5 and 10^6 items at distance 4
    python benchmarks/near_duplicates.py --distances 4 --scale 100000

Quality: every demo digit (1,797 real 32x32 scans, rendered by the project's demo data) plus, for a sample of
them, planted variants: a JPEG re-encode (quality 70), a crop (1 pixel off each side, resized back), and
brightness changes (x0.85 and x1.15). A planted pair (original, variant) is a true near duplicate; every
other pair within the distance is a false one (two different scans), which costs a split nothing but a
bigger group. Recall = planted (original, variant) pairs found / planted pairs (per transform); precision =
pairs found that show one digit (original or its variants) / all pairs found. Scale: 10^5 and 10^6 random
hashes with 1% planted near copies through the banded pair search and the grouping (what dataset_splits
runs); no all-pairs comparison anywhere.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from labeling_assets.core.dataset.near_duplicates import (
    hamming,
    near_duplicate_groups,
    near_duplicate_pairs,
    phash,
    phash_bytes,
    to_hex,
)
from labeling_assets.core.ingest.demo_data import render_digits

TRANSFORMS = ("jpeg", "crop", "darker", "brighter")


def variant(image: Image.Image, kind: str) -> Image.Image:
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        return Image.open(io.BytesIO(buffer.getvalue()))
    if kind == "crop":
        w, h = image.size
        return image.crop((1, 1, w - 1, h - 1)).resize((w, h), Image.Resampling.BICUBIC)
    factor = 0.85 if kind == "darker" else 1.15
    return ImageEnhance.Brightness(image).enhance(factor)


def demo_images(folder: Path) -> list[Image.Image]:
    render_digits(folder)
    files = sorted(folder.rglob("*.png"))
    # What ingest adds per new file: read its stored copy, decode, hash (raw_images calls ensure_phashes).
    started = time.perf_counter()
    for path in files:
        phash_bytes(path.read_bytes())
    seconds = time.perf_counter() - started
    print(f"pHash at ingest: {len(files)} PNGs in {seconds:.2f} s ({len(files) / seconds:,.0f} files/s, "
          f"{1000 * seconds / len(files):.2f} ms each)")
    return [Image.open(p).convert("L") for p in files]


def quality(images: list[Image.Image], distances: list[int], n_planted: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    originals = np.array([phash(im) for im in images], dtype=np.uint64)
    picks = rng.choice(len(images), size=min(n_planted, len(images)), replace=False)
    hashes = list(originals)
    source = list(range(len(images)))  # which demo digit each hash shows
    planted: dict[tuple[int, int], str] = {}
    for k in picks.tolist():
        for kind in TRANSFORMS:
            planted[(k, len(hashes))] = kind
            hashes.append(np.uint64(phash(variant(images[k], kind))))
            source.append(k)
    values = np.array(hashes, dtype=np.uint64)
    planted_distances = {
        kind: hamming(values[[a for (a, b), t in planted.items() if t == kind]],
                      values[[b for (a, b), t in planted.items() if t == kind]])
        for kind in TRANSFORMS
    }
    print(f"{len(images)} demo digits + {len(planted)} planted variants of {len(picks)} of them")
    print("planted distance (bits) median / p90 / max: " + "; ".join(
        f"{k} {np.median(d):.0f}/{np.percentile(d, 90):.0f}/{d.max()}" for k, d in planted_distances.items()))
    print("distance | recall " + " ".join(f"{t:>8}" for t in TRANSFORMS) + " |   all | precision | pairs found | groups | largest")
    for d in distances:
        i, j = near_duplicate_pairs(values, d)
        found = set(zip(i.tolist(), j.tolist(), strict=True))
        recall = {t: np.mean([(p in found) for p, k in planted.items() if k == t]) for t in TRANSFORMS}
        true = sum(p in found for p in planted)
        same_source = sum(source[a] == source[b] for a, b in found)  # two variants of one digit count as true
        groups = near_duplicate_groups([f"{k:05d}" for k in range(len(values))], [to_hex(int(v)) for v in values], d)
        print(f"{d:>8} |        " + " ".join(f"{recall[t]:>8.3f}" for t in TRANSFORMS)
              + f" | {true / len(planted):.3f} | {same_source / max(len(found), 1):>9.3f} | {len(found):>11} | "
              + f"{len(set(groups.values())):>6} | {max(Counter(groups.values()).values(), default=0):>7}")


def scale(n: int, distance: int, seed: int) -> None:
    """Uniform random hashes (unrelated pictures) with 1% planted near copies (1..distance bits flipped)."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, size=n, dtype=np.uint64)
    copies = rng.choice(n, size=n // 50, replace=False)
    originals, variants = copies[: len(copies) // 2], copies[len(copies) // 2 :]
    values[variants] = values[originals]
    for k in range(distance):
        flip = rng.random(len(variants)) < 0.5 if k else np.ones(len(variants), dtype=bool)
        bits = rng.integers(0, 64, size=len(variants)).astype(np.uint64)
        values[variants[flip]] ^= np.uint64(1) << bits[flip]
    hexes = [to_hex(int(v)) for v in values]
    started = time.perf_counter()
    i, _ = near_duplicate_pairs(values, distance)
    pairs_s = time.perf_counter() - started
    started = time.perf_counter()
    groups = near_duplicate_groups([f"{k:07d}" for k in range(n)], hexes, distance)
    groups_s = time.perf_counter() - started
    print(f"{n} items ({len(variants)} planted near copies) at distance {distance}: pair search {pairs_s:.2f} s "
          f"({len(i)} pairs), groups from hex strings {groups_s:.2f} s ({len(set(groups.values()))} groups); "
          f"all-pairs would be {n * (n - 1) // 2:.2e} comparisons")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distances", type=int, nargs="+", default=[2, 4, 6, 8, 10])
    parser.add_argument("--planted", type=int, default=300, help="digits that get planted variants")
    parser.add_argument(
        "--scale", type=int, nargs="+", default=[100_000, 1_000_000], help="items for the timing runs (0: skip)"
    )
    parser.add_argument("--scale-distance", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = demo_images(Path(tmp) / "digits")
        quality(images, args.distances, args.planted, args.seed)
        for n in args.scale:
            if n:
                scale(n, args.scale_distance, args.seed)


if __name__ == "__main__":
    main()
