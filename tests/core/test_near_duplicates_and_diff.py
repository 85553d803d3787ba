"""Near-duplicate hashing and pair search, the dataset diff: pure logic, no store."""

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageEnhance

from labeling_assets.core.dataset.build import BuildInputs, build_dataset
from labeling_assets.core.dataset.diff import diff_manifests, vote_changes
from labeling_assets.core.dataset.near_duplicates import (
    DEFAULT_MAX_DISTANCE,
    from_hex,
    near_duplicate_groups,
    near_duplicate_pairs,
    pairs_across_splits,
    phash,
    phash_bytes,
    to_hex,
)
from labeling_assets.core.dataset.splits import SplitRatios
from labeling_assets.core.ingest.demo_data import render_digits


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


def test_re_encodes_and_brightness_changes_of_demo_digits_are_found_as_pairs(tmp_path: Path) -> None:
    render_digits(tmp_path, limit=40)
    images = [Image.open(p).convert("L") for p in sorted(tmp_path.rglob("*.png"))][:40]
    originals = [phash(im) for im in images]
    variants = [phash_bytes(_jpeg(im)) for im in images] + [
        phash(ImageEnhance.Brightness(im).enhance(0.85)) for im in images
    ]
    hashes = np.array(originals + variants, dtype=np.uint64)
    i, j = near_duplicate_pairs(hashes, DEFAULT_MAX_DISTANCE)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    n = len(images)
    assert all((k, n + k) in found and (k, 2 * n + k) in found for k in range(n))
    # bit 63 is the first low-frequency coefficient; the hex form round-trips
    assert from_hex([to_hex(originals[0])])[0] == np.uint64(originals[0])


def test_banded_pair_search_finds_exactly_the_pairs_all_pairs_would() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=400, dtype=np.uint64) * np.uint64(2)
    for k in range(0, 60, 2):  # plant pairs at distance 0..7
        flipped = hashes[k]
        for bit in rng.choice(64, size=k % 8, replace=False):
            flipped ^= np.uint64(1) << np.uint64(int(bit))
        hashes[k + 1] = flipped
    i, j = near_duplicate_pairs(hashes, 5)
    brute = {
        (a, b)
        for a in range(len(hashes))
        for b in range(a + 1, len(hashes))
        if bin(int(hashes[a]) ^ int(hashes[b])).count("1") <= 5
    }
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == brute
    assert len(brute) >= 20
    assert near_duplicate_pairs(hashes, -1)[0].size == 0


def test_groups_chain_through_pairs_and_pairs_across_splits_are_reported() -> None:
    hexes = [to_hex(v) for v in (0b0, 0b11, 0b1111, 0xFFFF_FFFF_0000_0000)]
    groups = near_duplicate_groups(["a", "b", "c", "d"], hexes, 2)
    assert groups["a"] == groups["b"] == groups["c"] and "d" not in groups
    manifest = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "split": ["train", "train", "test", "test"]})
    bad = pairs_across_splits(manifest, pd.Series(dict(zip("abcd", hexes, strict=True))), 2)
    assert bad[["item_a", "item_b", "distance"]].values.tolist() == [["b", "c", 2]]


def test_build_keeps_a_near_duplicate_group_in_one_split() -> None:
    n = 60
    ids = [f"{k:04d}" for k in range(n)]
    hexes = pd.Series({i: to_hex(int(np.random.default_rng(k).integers(0, 2**62))) for k, i in enumerate(ids)})
    hexes[ids[1]] = hexes[ids[0]]  # a re-encode of item 0
    hexes[ids[2]] = to_hex(int(hexes[ids[0]], 16) ^ 0b101)  # and a brightness change of it
    labeled = pd.DataFrame({"item_id": ids, "label": ["a", "b", "c"] * 20, "group_key": None})
    labeled.loc[[0, 1, 2], "label"] = "a"
    built = build_dataset(BuildInputs(labeled, pd.Series(dtype=object), SplitRatios(), 0, hexes, 4, None))
    splits = built.assignment.frame.set_index("item_id")["split"]
    assert splits[ids[0]] == splits[ids[1]] == splits[ids[2]]
    assert set(built.near_duplicates) == set(ids[:3])
    assert built.manifest_json["near_duplicate_distance"] == 4
    # Frozen: an item already in test pulls its new near-duplicates there.
    frozen = pd.Series({ids[0]: "test"})
    again = build_dataset(BuildInputs(labeled, frozen, SplitRatios(), 0, hexes, 4, None))
    assert set(again.assignment.frame.set_index("item_id")["split"][ids[:3]]) == {"test"}


def test_diff_counts_added_removed_relabeled_moved_and_class_deltas() -> None:
    old = pd.DataFrame({"item_id": list("abcde"), "label": list("xxyyz"), "split": ["train"] * 4 + ["test"]})
    new = pd.DataFrame({"item_id": list("abcfg"), "label": list("xyyxx"), "split": ["train", "train", "val", "test", "train"]})
    diff = diff_manifests(old, new, "v1", "v2")
    assert diff.counts() == {"added": 2, "removed": 2, "relabeled": 1, "moved_between_splits": 1}
    assert diff.transitions() == {"x -> y": 1}
    deltas = diff.class_deltas.set_index("class")
    assert deltas["delta"].to_dict() == {"x": 1, "y": 0, "z": -1}
    votes_before = pd.DataFrame({"item_id": ["b", "b"], "labeler_id": ["1", "2"], "label": ["x", "x"]})
    votes_after = pd.DataFrame({"item_id": ["b", "b", "b"], "labeler_id": ["1", "2", "3"], "label": ["y", "x", "y"]})
    assert vote_changes(votes_before, votes_after, ["b"]) == {
        "b": [{"labeler": "1", "before": "x", "after": "y"}, {"labeler": "3", "before": None, "after": "y"}]
    }


@pytest.mark.parametrize("distance", [0, 3, 10])
def test_pair_search_at_any_distance_matches_brute_force_on_clustered_hashes(distance: int) -> None:
    rng = np.random.default_rng(distance)
    base = rng.integers(0, 2**63, size=5, dtype=np.uint64)
    hashes = np.array([b ^ np.uint64(int(rng.integers(0, 2**12))) for b in np.repeat(base, 30)], dtype=np.uint64)
    i, j = near_duplicate_pairs(hashes, distance)
    brute = {
        (a, b)
        for a in range(len(hashes))
        for b in range(a + 1, len(hashes))
        if bin(int(hashes[a]) ^ int(hashes[b])).count("1") <= distance
    }
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == brute
