from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeling_assets.core.training import baseline

CLASSES = [str(d) for d in range(10)]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32) / 16.0, digits.target


def test_baseline_learns_digits_and_gives_probabilities_over_the_full_class_list() -> None:
    x, y = _digits()
    labels = [str(v) for v in y[:600]]
    fitted = baseline.fit_baseline(x[:600], labels, [*CLASSES, "unused"], size=8)
    probs = fitted.predict_proba(x[600:900])
    assert probs.shape == (300, 11)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.all(probs[:, 10] == 0.0)  # a class with no labels gets no mass
    assert (probs.argmax(axis=1) == y[600:900]).mean() > 0.9
    assert fitted.version.startswith("baseline-logreg-px8-n600-")
    # Same data, same version (prelabel rows are keyed by it); other data, another version.
    assert baseline.fit_baseline(x[:600], labels, CLASSES, size=8).version == fitted.version
    assert (
        baseline.fit_baseline(x[:601], [str(v) for v in y[:601]], CLASSES, size=8).version != fitted.version
    )


def test_baseline_refuses_too_little_or_one_class_or_unknown_labels() -> None:
    x, y = _digits()
    with pytest.raises(ValueError, match="at least"):
        baseline.fit_baseline(x[:5], [str(v) for v in y[:5]], CLASSES)
    with pytest.raises(ValueError, match="single class"):
        baseline.fit_baseline(x[:20], ["3"] * 20, CLASSES)
    with pytest.raises(ValueError, match="outside the class list"):
        baseline.fit_baseline(x[:20], ["cat"] * 20, CLASSES)


def test_pixel_features_downsample_and_report_unreadable_files(tmp_path: Path) -> None:
    good = tmp_path / "a.png"
    Image.fromarray(np.full((40, 30, 3), 255, dtype=np.uint8)).save(good)
    bad = tmp_path / "b.png"
    bad.write_bytes(b"garbage")
    features, failed = baseline.pixel_features([good, bad, tmp_path / "missing.png"], size=4)
    assert features.shape == (3, 16)
    assert np.allclose(features[0], 1.0) and failed == [1, 2]


def test_fit_on_examples_leaves_out_files_that_do_not_decode_and_says_why_there_is_no_baseline(tmp_path: Path) -> None:
    examples = []
    for k in range(12):
        path = tmp_path / f"{k}.png"
        Image.new("L", (8, 8), color=20 * k).save(path)
        examples.append((str(path), str(k % 2)))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    examples.append((str(tmp_path / "broken.png"), "1"))
    seen: list[tuple[int, list[str]]] = []

    def fit(features: np.ndarray, answers: list[str]) -> str:
        seen.append((len(features), answers))
        return "fitted"

    assert baseline.fit_on_examples(examples, 4, fit, "labels") == ("fitted", "")
    assert seen == [(12, [str(k % 2) for k in range(12)])]  # the broken file and its answer are left out
    assert baseline.fit_on_examples(examples[:3], 4, fit, "consensus labels") == (
        None,
        f"only 3 consensus labels (the baseline needs {baseline.MIN_LABELS})",
    )

    def refuse(features: np.ndarray, answers: list[str]) -> str:
        raise ValueError("a single class")

    assert baseline.fit_on_examples(examples, 4, refuse, "labels") == (None, "a single class")
