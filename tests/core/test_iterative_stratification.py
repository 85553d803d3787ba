"""Multi-label splits: iterative stratification keeps per-label proportions, groups whole, frozen items put,
deterministic; the multi-label manifest and its measures; the single-label build unchanged byte for byte."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.dataset import iterative_stratification as it
from labeling_assets.core.dataset.build import BuildInputs, build_dataset, manifest_bytes
from labeling_assets.core.dataset.splits import SPLITS, SplitRatios, manifest_from_json
from labeling_assets.core.label_sets import MULTI_LABEL

CLASSES = [f"finding_{k}" for k in range(8)]
# Skewed prevalences with a long tail: the last labels have a handful of positives in 2000 items.
PREVALENCE = np.array([0.35, 0.2, 0.1, 0.05, 0.02, 0.008, 0.004, 0.0025])


def _items(n: int, *, seed: int, groups: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.random((n, len(CLASSES))) < PREVALENCE
    # Co-occurrence: the rarest finding mostly comes with the most common one.
    y[:, 0] |= y[:, -1] & (rng.random(n) < 0.8)
    frame = pd.DataFrame(
        {
            "item_id": [hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(n)],
            "label": [[CLASSES[k] for k in np.flatnonzero(row)] for row in y],
        }
    )
    if groups:
        frame["group_key"] = [f"patient{g}" for g in rng.integers(0, groups, size=n)]
    return frame


def _codes(frame: pd.DataFrame) -> np.ndarray:
    return pd.Index(list(SPLITS)).get_indexer(frame["split"])


def _random_unit_assignment(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """The baseline: each unit (group, or item without one) drawn into a split with the target ratios."""
    rng = np.random.default_rng(seed)
    keys = frame["group_key"].fillna(frame["item_id"]) if "group_key" in frame else frame["item_id"]
    units, unit_of = np.unique(keys.to_numpy(dtype=str), return_inverse=True)
    return rng.choice(3, size=len(units), p=[0.7, 0.15, 0.15])[unit_of]


@pytest.mark.parametrize("groups", [None, 900])
def test_iterative_stratification_keeps_per_label_proportions_better_than_random(groups: int | None) -> None:
    iterative, random = [], []
    for seed in range(5):
        items = _items(2000, seed=seed, groups=groups)
        result = it.assign_label_set_splits(items, CLASSES, seed=seed)
        y = it.indicator_of(result.frame, CLASSES)
        iterative.append(it.max_proportion_deviation(y, _codes(result.frame)))
        random.append(it.max_proportion_deviation(y, _random_unit_assignment(result.frame, seed)))
    # Every seed: iterative beats random, and by a wide margin on average.
    assert all(a < b for a, b in zip(iterative, random, strict=True)), (iterative, random)
    assert np.mean(iterative) < 0.5 * np.mean(random), (iterative, random)
    assert max(iterative) < 0.02


def test_split_sizes_follow_the_70_15_15_targets() -> None:
    result = it.assign_label_set_splits(_items(2000, seed=1, groups=900), CLASSES, seed=1)
    shares = result.frame["split"].value_counts(normalize=True)
    assert shares.to_dict() == pytest.approx({"train": 0.70, "val": 0.15, "test": 0.15}, abs=0.01)


def test_other_ratios_are_honoured_and_a_zero_ratio_split_stays_empty() -> None:
    result = it.assign_label_set_splits(
        _items(1000, seed=2), CLASSES, ratios=SplitRatios(0.8, 0.2, 0.0), seed=2
    )
    shares = result.frame["split"].value_counts(normalize=True)
    assert "test" not in shares
    assert shares["val"] == pytest.approx(0.2, abs=0.01)


def test_groups_are_never_split_even_when_a_content_hash_joins_two_groups() -> None:
    items = _items(1500, seed=3, groups=300)  # about 5 items per patient, several findings each
    # The same content hash under a second key (as a near-duplicate group adds it) joins two patients.
    bridge = items.iloc[[0]].assign(group_key=items["group_key"].iloc[1])
    result = it.assign_label_set_splits(pd.concat([items, bridge], ignore_index=True), CLASSES, seed=3)

    frame = result.frame.merge(items[["item_id", "group_key"]], on="item_id", suffixes=("", "_input"))
    assert (frame.groupby("group_key_input")["split"].nunique() == 1).all()
    joined = frame[frame["group_key_input"].isin(items["group_key"].iloc[[0, 1]])]
    assert joined["split"].nunique() == 1
    assert len(result.frame) == 1500  # one row per distinct item


def test_frozen_items_never_move_and_new_members_of_their_group_follow_them() -> None:
    items = _items(600, seed=4, groups=200)
    first = it.assign_label_set_splits(items.iloc[:300], CLASSES, seed=4).frame
    # Freeze everything against the proportions: every frozen item in test.
    frozen = pd.Series("test", index=first["item_id"])
    second = it.assign_label_set_splits(items, CLASSES, existing=frozen, seed=4).frame.set_index("item_id")

    assert (second.loc[frozen.index, "split"] == "test").all()
    assert not second.loc[frozen.index, "is_new"].any()
    frozen_groups = set(items.set_index("item_id").loc[frozen.index, "group_key"])
    followers = items[~items["item_id"].isin(frozen.index) & items["group_key"].isin(frozen_groups)]
    assert len(followers) and (second.loc[followers["item_id"], "split"] == "test").all()
    # New units fill what the frozen ones left: test is over target, so the free units go to train and val.
    free = second[second["is_new"] & ~second.index.isin(followers["item_id"])]
    assert set(free["split"]) <= {"train", "val"}


def test_the_assignment_is_deterministic_for_a_seed_and_independent_of_row_order() -> None:
    items = _items(800, seed=5, groups=300)
    a = it.assign_label_set_splits(items, CLASSES, seed=11).frame
    b = it.assign_label_set_splits(items.sample(frac=1.0, random_state=0), CLASSES, seed=11).frame
    c = it.assign_label_set_splits(items, CLASSES, seed=12).frame

    pd.testing.assert_frame_equal(a, b)
    assert (a["split"] != c["split"]).any()


def test_every_label_with_three_positives_reaches_val_and_test() -> None:
    rare = pd.DataFrame(
        {
            "item_id": [f"{i:064x}" for i in range(200)],
            "label": [["common"]] * 120 + [["common", "rare"]] * 3 + [[]] * 77,
        }
    )
    for seed in range(10):
        frame = it.assign_label_set_splits(rare, ["common", "rare"], seed=seed).frame
        assert it.labels_missing_from_splits(frame, ["common", "rare"]).empty
        assert set(frame.loc[frame["label"].map(lambda s: "rare" in s), "split"]) == set(SPLITS)


def test_labels_too_rare_for_every_split_are_noted() -> None:
    items = pd.DataFrame(
        {"item_id": [f"{i:064x}" for i in range(50)], "label": [["a"]] * 48 + [["a", "b"]] * 2}
    )
    result = it.assign_label_set_splits(items, ["a", "b"], seed=0)
    assert any("fewer than 3 positive items" in note and "b (2)" in note for note in result.notes)


def test_frozen_items_that_keep_a_label_out_of_a_split_are_noted_not_moved() -> None:
    items = pd.DataFrame(
        {"item_id": [f"{i:064x}" for i in range(40)], "label": [["a"]] * 36 + [["a", "b"]] * 4}
    )
    frozen = pd.Series("train", index=items["item_id"])  # every item already frozen in train
    result = it.assign_label_set_splits(items, ["a", "b"], existing=frozen, seed=0)
    assert (result.frame["split"] == "train").all()
    assert any("keep these labels out of a split" in note for note in result.notes)


def test_the_empty_set_share_is_stratified_like_a_label() -> None:
    result = it.assign_label_set_splits(_items(2000, seed=6), CLASSES, seed=6)
    table = it.prevalence_table(result.frame, CLASSES)
    sizes = result.frame["split"].value_counts()
    shares = {s: table.at[it.EMPTY_SET_ROW, s] / sizes[s] for s in SPLITS}
    overall = table.at[it.EMPTY_SET_ROW, "total"] / len(result.frame)
    assert max(abs(v - overall) for v in shares.values()) < 0.01


def test_one_content_hash_with_two_label_sets_is_an_error() -> None:
    items = pd.DataFrame({"item_id": ["x", "x"], "label": [["a"], ["a", "b"]]})
    with pytest.raises(ValueError, match="different label sets"):
        it.assign_label_set_splits(items, ["a", "b"])


def test_a_label_outside_the_classes_is_an_error() -> None:
    with pytest.raises(ValueError, match="not in the project"):
        it.assign_label_set_splits(pd.DataFrame({"item_id": ["x"], "label": [["zebra"]]}), ["a"])


def test_max_proportion_deviation_is_the_largest_prevalence_gap_to_the_whole_set() -> None:
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    # Label 0 is half the set, all of train and none of test: a gap of 0.5.
    assert it.max_proportion_deviation(y, np.array([0, 0, 2, 2])) == pytest.approx(0.5)
    assert it.max_proportion_deviation(y, np.array([0, 2, 0, 2])) == pytest.approx(0.0)


def test_pos_weight_is_negatives_over_positives_in_train() -> None:
    train = pd.DataFrame({"label": [["a"], ["a", "b"], [], []], "split": ["train"] * 4})
    assert it.pos_weights(train, ["a", "b", "c"]) == {"a": 1.0, "b": 3.0, "c": 4.0}


def test_prevalence_deviations_flag_a_planted_skew() -> None:
    manifest = pd.DataFrame(
        {
            "item_id": list("abcdefghij"),
            "label": [["x"]] * 5 + [[]] * 5,
            "split": ["train"] * 5 + ["test"] * 5,
        }
    )
    bad = it.prevalence_deviations(manifest, ["x"], 0.05).query("not ok")
    assert set(bad["split"]) == {"train", "test"}


def test_cooccurrence_counts_items_with_both_labels() -> None:
    manifest = pd.DataFrame({"label": [["a", "b"], ["a"], ["a", "b"], []], "split": ["train"] * 3 + ["val"]})
    table = it.cooccurrence(manifest, ["a", "b"])
    assert table.to_numpy().tolist() == [[3, 2], [2, 2]]


# --- build_dataset -----------------------------------------------------------------------------------


def _build(labeled: pd.DataFrame, task_type: str = MULTI_LABEL, seed: int = 0):
    return build_dataset(
        BuildInputs(
            labeled,
            pd.Series(dtype=object),
            SplitRatios(),
            seed,
            pd.Series(dtype=object),
            -1,
            None,
            task_type=task_type,  # type: ignore[arg-type]
            classes=CLASSES,
        )
    )


def test_a_multi_label_build_stores_sorted_lists_classes_and_pos_weight() -> None:
    labeled = _items(400, seed=8).assign(group_key=None)
    labeled["label"] = labeled["label"].map(lambda s: list(reversed(s)))  # unsorted input
    built = _build(labeled)

    document = built.manifest_json
    assert document["task_type"] == MULTI_LABEL and document["classes"] == CLASSES
    assert all(value == sorted(value) for value in document["label"])
    assert "sample_weight" not in document
    assert document["pos_weight"] == built.class_weights
    manifest = manifest_from_json(json.loads(json.dumps(document)))  # as stored and read back
    train = manifest[manifest["split"] == "train"]
    assert built.class_weights == it.pos_weights(train, CLASSES)
    # The version is the hash of the canonical (item, label set, split) rows: the same input, the same version.
    assert _build(labeled).version == built.version
    assert _build(labeled, seed=1).version != built.version


def test_the_single_label_build_is_unchanged_byte_for_byte() -> None:
    """Reference digest computed with the code before multi-label support (commit 9bed1de)."""
    rng = np.random.default_rng(7)
    n = 300
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    labeled = pd.DataFrame(
        {
            "item_id": ids,
            "label": rng.choice(["cat", "dog", "eel"], size=n, p=[0.6, 0.3, 0.1]),
            "group_key": [f"g{i // 4}" if i < 80 else None for i in range(n)],
        }
    )
    phashes = pd.Series({i: f"{int(rng.integers(0, 2**63)):016x}" for i in ids[:200]})
    phashes.iloc[1] = phashes.iloc[0]
    existing = pd.Series({ids[i]: ("test" if i % 3 == 0 else "train") for i in range(0, 60, 2)})
    built = build_dataset(BuildInputs(labeled, existing, SplitRatios(), 3, phashes, 4, "abc"))

    assert built.version == "f188e30c5c061c24"
    assert (
        hashlib.sha256(manifest_bytes(built.manifest_json)).hexdigest()
        == "bcfe3eb3a854f101bd765110556aa23b5750d12a325ce4dede66737a57b8db3e"
    )
