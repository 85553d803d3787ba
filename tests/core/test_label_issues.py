"""Label issues: out-of-sample baseline probabilities and cleanlab's find_label_issues."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from labeling_assets.core.consensus.label_issues import cross_val_pred_probs, find_issues, image_features

CLASSES = [str(d) for d in range(10)]


def _digits(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return digits.data[:n] / 16.0, digits.target[:n]


def _flip(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), int(share * len(labels)), replace=False)
    noisy = labels.copy()
    noisy[flipped] = (noisy[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return noisy, flipped


def test_cross_val_pred_probs_are_out_of_sample_probabilities() -> None:
    features, truth = _digits()
    probs = cross_val_pred_probs(features, truth, 10, seed=0)
    assert probs.shape == (600, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == truth).mean() > 0.9
    np.testing.assert_array_equal(probs, cross_val_pred_probs(features, truth, 10, seed=0))


def test_cross_val_pred_probs_survive_rare_and_absent_classes() -> None:
    features, truth = _digits(60)
    labels = np.where(truth == 9, 8, truth)  # class 9 absent
    labels[0] = 9  # ... except once: a class with one item cannot be stratified
    probs = cross_val_pred_probs(features, labels, 11, n_folds=5)
    assert probs.shape == (60, 11)
    assert np.isfinite(probs).all() and (probs > 0).all()


def test_find_issues_flags_most_flipped_labels_and_few_clean_ones() -> None:
    features, truth = _digits()
    noisy, flipped = _flip(truth, 0.08, seed=1)
    probs = cross_val_pred_probs(features, noisy, 10)
    ids = [f"i{n:04d}" for n in range(len(noisy))]
    result = find_issues(ids, [str(v) for v in noisy], probs, CLASSES)
    found = {int(i[1:]) for i in result.issues["item_id"]}
    recall = len(found & set(flipped.tolist())) / len(flipped)
    precision = len(found & set(flipped.tolist())) / max(len(found), 1)
    assert recall > 0.7 and precision > 0.6
    assert result.issues["label_quality"].is_monotonic_increasing  # worst first
    first = result.issues.iloc[0]
    assert first["suggested_label"] == str(truth[int(first["item_id"][1:])])


def test_find_issues_returns_nothing_for_too_few_items_or_one_class() -> None:
    probs = np.full((5, 3), 1 / 3)
    assert find_issues(list("abcde"), ["x"] * 5, probs, ["x", "y", "z"]).issues.empty
    result = find_issues(list("abcde"), ["x", "y", "x", "y", "z"], probs, ["x", "y", "z"])
    assert result.issues.empty and "only 5 item(s)" in result.notes[0]


def test_find_issues_rejects_labels_outside_the_classes() -> None:
    with pytest.raises(ValueError, match="not in classes"):
        find_issues(["a"], ["cow"], np.ones((1, 2)) / 2, ["cat", "dog"])


def test_image_features_downsample_to_gray_pixels_in_unit_range(tmp_path: Path) -> None:
    picture = np.zeros((32, 32), dtype=np.uint8)
    picture[:, 16:] = 255  # right half white
    Image.fromarray(picture).convert("RGB").save(tmp_path / "a.png")
    rows = image_features([tmp_path / "a.png"], size=4)
    assert rows.shape == (1, 16)
    np.testing.assert_allclose(rows.reshape(4, 4), [[0, 0, 1, 1]] * 4)


def test_image_features_name_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="bad.png"):
        image_features([tmp_path / "bad.png"])
