"""Near-duplicate images: a 64-bit perceptual hash per item and groups of items within a Hamming distance.

Pure logic (numpy, scipy, PIL). Re-encodes, small crops, resizes and brightness changes of one picture keep
most bits of its DCT perceptual hash (pHash), so items whose hashes differ in at most ``max_distance`` bits
form one near-duplicate group, and the splits keep a group together like a path-pattern group.

Why our own pHash and not the ``imagehash`` package: it is the same algorithm (32x32 grayscale, 2-D DCT,
the 8x8 lowest frequencies against their median) in a dozen lines over numpy and scipy, which the project
already has; ``imagehash`` would add itself and PyWavelets for one function.

Finding pairs never compares all pairs: by the pigeonhole principle two 64-bit hashes within ``d`` bits differ
in at most one bit on one of ``max(d // 2 + 1, 3)`` disjoint bands, so only items whose band values are equal or one bit
apart are compared (multi-index hashing), each candidate pair checked with a popcount.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from labeling_assets.core.images import decode

HASH_BITS = 64
DEFAULT_MAX_DISTANCE = 4  # chosen by benchmarks/near_duplicates.py on the demo digits (README)
GROUP_PREFIX = "near-dup:"
# Candidate pairs expanded at once (bounded memory, even when many items share a band value).
_EXPAND = 4_000_000

UInt64s = NDArray[np.uint64]
Ints = NDArray[np.int64]


def phash(image: Image.Image) -> int:
    """The 64-bit DCT perceptual hash of an image (bit 63 = the first low-frequency coefficient)."""
    gray = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = np.asarray(gray, dtype=np.float64)
    low = dctn(pixels, type=2, norm="ortho")[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def phash_bytes(data: bytes) -> int:
    """:func:`phash` of encoded image bytes as shown (``core.images.decode``: upright, 16-bit scaled); raises
    ``ImageDecodeError`` on bytes that do not decode."""
    return phash(decode(data))


def to_hex(value: int) -> str:
    return f"{value:016x}"


def from_hex(values: Sequence[str]) -> UInt64s:
    return np.array([int(v, 16) for v in values], dtype=np.uint64)


def hamming(a: UInt64s, b: UInt64s) -> Ints:
    """Bitwise Hamming distance of two equally long uint64 arrays."""
    counts: Ints = np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)
    return counts


def _bands(n_bands: int) -> list[tuple[int, int]]:
    """``n_bands`` disjoint (shift, width) bit ranges covering the 64 bits."""
    edges = np.linspace(0, HASH_BITS, n_bands + 1).round().astype(int)
    return [(int(lo), int(hi - lo)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def near_duplicate_pairs(hashes: UInt64s, max_distance: int) -> tuple[Ints, Ints]:
    """Index pairs (i < j) of hashes within ``max_distance`` bits, each pair once, sorted.

    ``max(d // 2 + 1, 3)`` bands: two hashes within d bits differ in at most one bit in some band (pigeonhole),
    so each band is probed for its exact value and (when d >= 3) its one-bit neighbours, and only those
    candidates are compared.
    """
    n = len(hashes)
    empty = np.zeros(0, dtype=np.int64)
    if n < 2 or max_distance < 0:
        return empty, empty
    hashes = np.asarray(hashes, dtype=np.uint64)
    # At least 3 bands keeps each band at most 22 bits: a dense table of 4M buckets answers each probe with
    # two array reads (binary search over unsorted probes was 50x slower at 10^6 items).
    n_bands = max(max_distance // 2 + 1, 3)
    radius = max_distance // n_bands  # 0 or 1
    found_i: list[Ints] = []
    found_j: list[Ints] = []
    rows = np.arange(n, dtype=np.int64)
    for shift, width in _bands(n_bands):
        keys = ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        bucket_size = np.bincount(keys, minlength=1 << width)
        bucket_start = np.cumsum(bucket_size) - bucket_size
        flips = [0] + ([1 << bit for bit in range(width)] if radius else [])
        for flip in flips:
            probe = keys ^ flip
            lo = bucket_start[probe]
            counts = bucket_size[probe]
            hit = np.flatnonzero(counts)
            # Expand (query, match) pairs in slices of bounded size: a crowded key (blank images) stays in memory.
            bounds = np.searchsorted(np.cumsum(counts[hit]), np.arange(_EXPAND, counts.sum() + _EXPAND, _EXPAND))
            start = 0
            for stop in np.unique(np.r_[bounds + 1, len(hit)]).tolist():
                part = hit[start:stop]
                start = stop
                if not len(part):
                    continue
                c = counts[part]
                i = np.repeat(rows[part], c)
                offsets = np.arange(len(i)) - np.repeat(np.cumsum(c) - c, c)
                j = order[np.repeat(lo[part], c) + offsets]
                keep = i < j
                i, j = i[keep], j[keep]
                close = hamming(hashes[i], hashes[j]) <= max_distance
                found_i.append(i[close])
                found_j.append(j[close].astype(np.int64))
    if not found_i:
        return empty, empty
    # One int64 per pair (i * n + j) so the de-duplication across bands is a plain 1-D unique.
    pairs = np.unique(np.concatenate(found_i) * n + np.concatenate(found_j))
    return pairs // n, pairs % n


def near_duplicate_groups(item_ids: Sequence[str], hex_hashes: Sequence[str], max_distance: int) -> dict[str, str]:
    """item_id -> group key for every item in a near-duplicate group of two or more (connected components of
    the within-distance pairs). The key names the group's smallest item id, so it is stable and readable."""
    ids = np.asarray(list(item_ids), dtype=object)
    i, j = near_duplicate_pairs(from_hex(list(hex_hashes)), max_distance)
    if not len(i):
        return {}
    n = len(ids)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members = np.unique(np.concatenate([i, j]))
    frame = pd.DataFrame({"item_id": ids[members], "component": component[members]})
    first = frame.groupby("component")["item_id"].transform("min")
    return {str(k): GROUP_PREFIX + str(v)[:16] for k, v in zip(frame["item_id"], first, strict=True)}


def pairs_across_splits(
    manifest: pd.DataFrame, hashes: pd.Series, max_distance: int
) -> pd.DataFrame:
    """Near-duplicate pairs of ``manifest`` items (``item_id, split``) that sit in different splits.

    ``hashes``: item_id -> 16-hex-digit pHash (items without one are not compared). Columns of the result:
    item_a, split_a, item_b, split_b, distance.
    """
    columns = ["item_a", "split_a", "item_b", "split_b", "distance"]
    known = manifest[manifest["item_id"].isin(hashes.index)].reset_index(drop=True)
    if len(known) < 2:
        return pd.DataFrame(columns=columns)
    values = from_hex(hashes.reindex(known["item_id"]).astype(str).tolist())
    i, j = near_duplicate_pairs(values, max_distance)
    splits = known["split"].to_numpy()
    straddle = splits[i] != splits[j]
    i, j = i[straddle], j[straddle]
    ids = known["item_id"].to_numpy()
    return pd.DataFrame(
        {
            "item_a": ids[i],
            "split_a": splits[i],
            "item_b": ids[j],
            "split_b": splits[j],
            "distance": hamming(values[i], values[j]),
        },
        columns=columns,
    )


def group_summary(groups: dict[str, str]) -> dict[str, int]:
    """Counts for the dataset card: groups, items in them, the largest group."""
    if not groups:
        return {"groups": 0, "items_in_groups": 0, "largest_group": 0}
    sizes = pd.Series(list(groups.values())).value_counts()
    return {"groups": int(len(sizes)), "items_in_groups": int(sizes.sum()), "largest_group": int(sizes.max())}


HELD_OUT_REASON = "near-duplicate of frozen items in more than one split"


def unplaceable_items(
    item_ids: Sequence[str], hex_hashes: Sequence[str], frozen: pd.Series, max_distance: int
) -> dict[str, list[dict[str, str]]]:
    """New items that no split can take without a near-duplicate pair crossing frozen splits.

    ``frozen``: item_id -> split of the items that already have one (they never move). New items within
    ``max_distance`` of each other must share a split, so each connected group of new items (linked by new
    pairs only) goes where its frozen near-duplicates are; a group whose frozen near-duplicates sit in two
    splits or more cannot be placed anywhere, and all its items are returned (item_id -> those frozen
    near-duplicates, ``{"item_id", "split"}``), to be held out of the dataset rather than stop it.
    """
    ids = np.asarray(list(item_ids), dtype=object)
    i, j = near_duplicate_pairs(from_hex(list(hex_hashes)), max_distance)
    is_frozen = pd.Series(ids).isin(frozen.index).to_numpy()
    if not len(i) or is_frozen.all():
        return {}
    n = len(ids)
    both_new = ~is_frozen[i] & ~is_frozen[j]
    graph = coo_matrix((np.ones(int(both_new.sum()), dtype=np.int8), (i[both_new], j[both_new])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    # (new item's component, frozen neighbour) for every new-frozen pair, in either order.
    cross = is_frozen[i] != is_frozen[j]
    new_side = np.where(is_frozen[i[cross]], j[cross], i[cross])
    frozen_side = np.where(is_frozen[i[cross]], i[cross], j[cross])
    touching = pd.DataFrame({"component": component[new_side], "item_id": ids[frozen_side]})
    touching["split"] = touching["item_id"].map(frozen).astype(str)
    stuck = touching.groupby("component")["split"].nunique()
    stuck_components = set(stuck[stuck > 1].index.tolist())
    out: dict[str, list[dict[str, str]]] = {}
    for k in np.flatnonzero(~is_frozen):
        if component[k] in stuck_components:
            neighbours = touching[touching["component"] == component[k]].drop_duplicates("item_id")
            out[str(ids[k])] = [
                {"item_id": str(r.item_id), "split": str(r.split)} for r in neighbours.sort_values("item_id").itertuples()
            ]
    return out
