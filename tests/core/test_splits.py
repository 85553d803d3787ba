"""Split rules: stratified, group-aware, frozen, rare classes documented, weights and version hash."""

import numpy as np
import pandas as pd
import pytest

from labeling_assets.core.dataset import split_checks as sc
from labeling_assets.core.dataset import splits as sp


def _items(
    n: int, *, seed: int = 0, groups: int | None = None, p: tuple[float, ...] = (0.7, 0.2, 0.08, 0.02)
):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "item_id": [f"{seed:04d}{i:060x}" for i in range(n)],
            "label": rng.choice(list("abcd")[: len(p)], size=n, p=p),
        }
    )
    if groups:
        frame["group_key"] = rng.integers(0, groups, size=n).astype(str)
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("groups", [None, 300])
def test_proportions_stay_within_tolerance_on_imbalanced_data(seed: int, groups: int | None) -> None:
    result = sp.assign_splits(_items(2000, seed=seed, groups=groups), seed=seed)

    deviations = sc.proportion_deviations(result.frame)
    assert deviations["ok"].all(), deviations[~deviations["ok"]]
    shares = result.frame["split"].value_counts(normalize=True)
    assert shares.to_dict() == pytest.approx({"train": 0.70, "val": 0.15, "test": 0.15}, abs=0.02)
    # The 2% class (about 40 items) is in every split.
    assert sc.classes_missing_from_splits(result.frame).empty


def test_planted_skew_is_flagged_by_proportion_deviations() -> None:
    manifest = pd.DataFrame(
        {"item_id": list("abcdefghij"), "label": ["x"] * 5 + ["y"] * 5, "split": ["train"] * 5 + ["test"] * 5}
    )
    bad = sc.proportion_deviations(manifest).query("not ok")
    assert set(bad["split"]) == {"train", "test"}


def test_a_class_spread_one_per_split_as_every_class_in_every_split_demands_is_within_tolerance() -> None:
    """The soak's first dataset version (11 items; class 0 has 3, one per split; train 9): train holds 1 of them where
    the overall share asks 2.45, but the every-class check allows it no more; it failed here by 0.0005 before."""
    labels = ["0", "0", "0", *[str(c) for c in range(1, 9)]]
    splits = ["train", "val", "test", *["train"] * 8]
    manifest = pd.DataFrame({"item_id": [f"i{n:02d}" for n in range(11)], "label": labels, "split": splits})
    assert sc.classes_missing_from_splits(manifest).empty
    deviations = sc.proportion_deviations(manifest)
    assert deviations["ok"].all(), deviations[~deviations["ok"]]
    # A real skew of that class is still flagged: all three in train, none left for val and test.
    skewed = manifest.assign(split=["train"] * 3 + ["train"] * 6 + ["val", "test"])
    assert not sc.proportion_deviations(skewed).query("`class` == '0'")["ok"].all()


def test_every_group_lands_in_one_split_even_when_groups_mix_classes() -> None:
    frame = _items(1500, seed=3, groups=120)  # about 12 items per group, several classes each
    result = sp.assign_splits(frame, seed=3)

    assert sc.groups_in_several_splits(result.frame).empty
    per_group = result.frame.groupby("group_key")["split"].nunique()
    assert (per_group == 1).all()
    shares = result.frame["split"].value_counts(normalize=True)
    assert shares["test"] == pytest.approx(0.15, abs=0.05)


def test_one_content_hash_is_one_item_and_ties_its_group_keys_together() -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["h1", "h1", "h2", "h3", *[f"x{i}" for i in range(30)]],
            "label": ["a", "a", "a", "a", *(["a", "b", "c"] * 10)],
            # h1 appears under two groups: g1 and g2 become one unit with h2 and h3.
            "group_key": ["g1", "g2", "g1", "g2", *[None] * 30],
        }
    )
    result = sp.assign_splits(frame, seed=0)

    assert result.frame["item_id"].is_unique and len(result.frame) == 33
    tied = result.frame.set_index("item_id").loc[["h1", "h2", "h3"], "split"]
    assert tied.nunique() == 1
    assert sc.hashes_in_several_splits(result.frame).empty


def test_one_content_hash_with_two_labels_is_an_error() -> None:
    frame = pd.DataFrame({"item_id": ["h1", "h1", "h2"], "label": ["a", "b", "a"]})
    with pytest.raises(ValueError, match="different labels"):
        sp.assign_splits(frame)


def test_hashes_in_several_splits_finds_a_planted_duplicate() -> None:
    manifest = pd.DataFrame(
        {"item_id": ["h1", "h1", "h2"], "label": ["a", "a", "b"], "split": ["train", "test", "val"]}
    )
    bad = sc.hashes_in_several_splits(manifest)
    assert bad.to_dict(orient="records") == [{"item_id": "h1", "splits": "test, train"}]


def test_frozen_assignments_survive_a_rerun_with_new_items() -> None:
    frame = _items(1000, seed=5, groups=250)
    first = sp.assign_splits(frame.iloc[:600], seed=1)
    existing = first.frame.set_index("item_id")["split"]

    # Another seed and ratios on purpose: neither may move an assigned item.
    second = sp.assign_splits(frame, existing=existing, seed=99, ratios=sp.SplitRatios(0.6, 0.2, 0.2))

    assert sc.moved_items(first.frame, second.frame).empty
    assert second.n_new == 400
    old_test = set(first.frame.loc[first.frame["split"] == "test", "item_id"])
    now_test = set(second.frame.loc[second.frame["split"] == "test", "item_id"])
    assert old_test == now_test & set(first.frame["item_id"])
    # New members of a group that already has a split follow it (no leakage through new items).
    assert sc.groups_in_several_splits(second.frame).empty


def test_items_arriving_in_small_batches_keep_proportions_near_the_targets() -> None:
    frame = _items(1000, seed=7)
    existing: pd.Series | None = None
    for end in range(25, 1001, 25):
        result = sp.assign_splits(frame.iloc[:end], existing=existing, seed=end)
        existing = result.frame.set_index("item_id")["split"]
    deviations = sc.proportion_deviations(result.frame)
    assert deviations["ok"].all(), deviations[~deviations["ok"]]
    assert result.frame["split"].value_counts(normalize=True)["test"] == pytest.approx(0.15, abs=0.01)


def test_assignment_is_reproducible_and_independent_of_row_order() -> None:
    frame = _items(500, seed=11, groups=100)
    a = sp.assign_splits(frame, seed=4).frame
    b = sp.assign_splits(frame.sample(frac=1.0, random_state=0), seed=4).frame
    pd.testing.assert_frame_equal(a, b)
    assert sp.manifest_version(a) == sp.manifest_version(b)


def test_rare_classes_are_documented_and_classes_with_three_items_reach_every_split() -> None:
    frame = pd.DataFrame(
        {"item_id": [f"i{k:02d}" for k in range(27)], "label": ["common"] * 22 + ["three"] * 3 + ["two"] * 2}
    )
    result = sp.assign_splits(frame, seed=0)

    three = result.frame.loc[result.frame["label"] == "three", "split"]
    assert sorted(three) == ["test", "train", "val"]
    assert any("fewer than 3 items" in n and "two (2)" in n for n in result.notes)
    assert sc.classes_missing_from_splits(result.frame).empty  # "two" is below the bar, not missing


def test_frozen_rows_that_split_a_group_are_kept_and_reported() -> None:
    frame = pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "x", "x"], "group_key": ["g", "g", "g"]})
    result = sp.assign_splits(frame, existing={"a": "train", "b": "test"})

    split = result.frame.set_index("item_id")["split"]
    assert (split["a"], split["b"]) == ("train", "test")
    assert any("span more than one split" in n for n in result.notes)


def test_class_weights_follow_total_over_n_classes_times_count() -> None:
    labels = pd.Series(["a"] * 6 + ["b"] * 3 + ["c"])
    weights = sp.class_weights(labels)

    assert weights == pytest.approx({"a": 10 / (3 * 6), "b": 10 / (3 * 3), "c": 10 / (3 * 1)})
    per_item = sp.sample_weights(labels, weights)
    # A weighted sampler then sees every class with the same total weight.
    totals = pd.Series(per_item).groupby(labels).sum()
    assert totals.to_numpy() == pytest.approx([10 / 3] * 3)
    assert sp.class_weights(pd.Series([], dtype=object)) == {}


def test_manifest_version_is_stable_order_independent_and_content_sensitive() -> None:
    manifest = pd.DataFrame(
        {"item_id": ["h2", "h1", "h3"], "label": ["a", "b", "a"], "split": ["train", "test", "val"]}
    )
    version = sp.manifest_version(manifest)

    assert version == sp.manifest_version(manifest.iloc[::-1])
    assert version == sp.manifest_version(manifest.assign(group_key="ignored"))
    assert len(version) == 16 and int(version, 16) >= 0
    assert sp.manifest_version(manifest.assign(split=["train", "val", "val"])) != version
    assert sp.manifest_version(manifest.assign(label=["a", "a", "a"])) != version
    # Pinned: the same manifest must give the same version in every release (runs trace to it).
    assert version == sp.manifest_version(
        pd.DataFrame(
            {"item_id": ["h1", "h2", "h3"], "label": ["b", "a", "a"], "split": ["test", "train", "val"]}
        )
    )


def test_manifest_json_round_trip_keeps_sample_weights_aligned() -> None:
    manifest = pd.DataFrame(
        {"item_id": ["h2", "h1", "h3"], "label": ["a", "b", "a"], "split": ["train", "train", "val"]}
    )
    weights = sp.class_weights(manifest.loc[manifest["split"] == "train", "label"])
    data = sp.manifest_to_json(manifest, previous_version=None, extra={"seed": 0}, weights=weights)
    back = sp.manifest_from_json(data).set_index("item_id")

    assert back.loc["h1", "sample_weight"] == pytest.approx(weights["b"])
    assert back.loc["h3", "sample_weight"] == pytest.approx(weights["a"])
    assert sp.manifest_version(back.reset_index()) == sp.manifest_version(manifest)


def test_existing_assignments_to_unknown_splits_are_rejected() -> None:
    frame = pd.DataFrame({"item_id": ["x0", "x1"], "label": ["a", "b"]})
    with pytest.raises(ValueError, match="unknown splits"):
        sp.assign_splits(frame, existing={"x0": "holdout"})


def test_bad_ratios_and_labels_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        sp.SplitRatios(0.7, 0.2, 0.2)
    with pytest.raises(ValueError, match="non-negative"):
        sp.SplitRatios(1.2, -0.1, -0.1)
    with pytest.raises(ValueError, match="no label"):
        sp.assign_splits(pd.DataFrame({"item_id": ["a"], "label": [None]}))
    with pytest.raises(ValueError, match="exactly one class"):
        sp.assign_splits(pd.DataFrame({"item_id": ["a", "b"], "label": [["x", "y"], ["x"]]}))


def test_list_and_number_labels_normalize_to_class_names() -> None:
    frame = pd.DataFrame({"item_id": ["a", "b", "c"], "label": [["cat"], 3, "3"]})
    result = sp.assign_splits(frame)
    assert sorted(result.frame["label"]) == ["3", "3", "cat"]
