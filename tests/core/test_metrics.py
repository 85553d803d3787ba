import numpy as np
import pytest
from sklearn import metrics as skm

from labeling_assets.core.training import metrics as m


@pytest.fixture(params=range(5))
def random_case(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(request.param)
    k = int(rng.integers(2, 8))
    n = int(rng.integers(20, 300))
    y_true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y_true] * rng.random((n, 1))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, probs, k


def test_confusion_accuracy_and_per_class_match_sklearn(
    random_case: tuple[np.ndarray, np.ndarray, int],
) -> None:
    y_true, probs, k = random_case
    y_pred = probs.argmax(axis=1)
    cm = m.confusion_matrix(y_true, y_pred, k)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=range(k)))
    assert m.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(k), zero_division=0)
    scores = m.per_class_scores(cm)
    np.testing.assert_allclose(scores.precision, p)
    np.testing.assert_allclose(scores.recall, r)
    np.testing.assert_allclose(scores.f1, f)
    np.testing.assert_array_equal(scores.support, s)


def test_macro_f1_matches_sklearn_including_absent_classes(
    random_case: tuple[np.ndarray, np.ndarray, int],
) -> None:
    y_true, probs, k = random_case
    y_pred = probs.argmax(axis=1)
    assert m.macro_f1(y_true, y_pred, k) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    # A class nobody has or predicts is left out of the macro mean, as sklearn does by default.
    assert m.macro_f1(y_true, y_pred, k + 2) == pytest.approx(m.macro_f1(y_true, y_pred, k))


def test_auc_per_class_matches_sklearn_with_ties(random_case: tuple[np.ndarray, np.ndarray, int]) -> None:
    y_true, probs, k = random_case
    probs = np.round(probs, 2)  # many ties: average ranks must match sklearn's trapezoids
    aucs, macro = m.roc_auc_ovr(y_true, probs)
    expected = [
        skm.roc_auc_score(y_true == c, probs[:, c]) for c in range(k) if 0 < (y_true == c).sum() < len(y_true)
    ]
    np.testing.assert_allclose(aucs[~np.isnan(aucs)], expected)
    assert macro == pytest.approx(np.mean(expected))


def test_auc_is_nan_for_a_class_without_positives() -> None:
    y_true = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0.0], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1]])
    aucs, macro = m.roc_auc_ovr(y_true, probs)
    assert np.isnan(aucs[2])
    assert macro == pytest.approx(1.0)


def test_ece_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, 500)
    probs = rng.dirichlet(np.ones(3), 500)
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, 11)
    expected = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            expected += inside.mean() * abs((pred[inside] == y_true[inside]).mean() - conf[inside].mean())
    assert m.expected_calibration_error(y_true, probs, n_bins=10) == pytest.approx(expected)
    # A perfectly confident, perfectly right model is perfectly calibrated.
    assert m.expected_calibration_error(np.array([0, 1]), np.eye(2)) == 0.0


def test_evaluate_probs_reports_everything_and_rejects_bad_shapes() -> None:
    y_true = np.array([0, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]])
    report = m.evaluate_probs(y_true, probs, ["a", "b", "c"])
    assert report.accuracy == pytest.approx(0.75)
    assert report.confusion[2, 0] == 1
    scalars = report.scalar_metrics("test_")
    assert {"test_accuracy", "test_macro_f1", "test_ece", "test_macro_auc_ovr", "test_f1_c"} <= set(scalars)
    assert "| c | 2 |" in report.per_class_markdown()
    with pytest.raises(ValueError, match="probs must be"):
        m.evaluate_probs(y_true, probs[:, :2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="outside"):
        m.confusion_matrix(np.array([3]), np.array([0]), 3)


def test_confusion_matrix_png_is_a_png() -> None:
    png = m.confusion_matrix_png(np.array([[3, 1], [0, 4]]), ["x", "y"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
