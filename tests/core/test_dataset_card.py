"""The dataset card documents sizes, distribution, imbalance, labels and limitations; it corrects nothing."""

import pandas as pd

from labeling_assets.core.dataset.card import CardInputs, limitations, render_card
from labeling_assets.core.dataset.splits import class_weights


def _inputs(labels: list[str], splits: list[str], **extra: object) -> CardInputs:
    manifest = pd.DataFrame(
        {"item_id": [f"h{i}" for i in range(len(labels))], "label": labels, "split": splits}
    )
    defaults: dict[str, object] = {
        "name": "demo",
        "version": "abc123",
        "manifest": manifest,
        "class_weights": class_weights(manifest.loc[manifest["split"] == "train", "label"]),
        "ratios": {"train": 0.7, "val": 0.15, "test": 0.15},
        "seed": 0,
    }
    return CardInputs(**{**defaults, **extra})  # type: ignore[arg-type]


def test_card_reports_sizes_distribution_imbalance_and_labels() -> None:
    labels = ["cat"] * 8 + ["dog"] * 2
    splits = ["train"] * 6 + ["val", "test"] + ["train", "test"]
    card = render_card(
        _inputs(
            labels,
            splits,
            n_annotators=4,
            n_annotations=30,
            fleiss_kappa=0.61,
            label_sources={"dawid_skene": 9, "majority": 1},
        )
    )
    assert "| train | 7 | 70.0% |" in card
    assert "| cat | 6 | 1 | 1 | 8 | 80.0% |" in card
    assert "**Imbalance ratio** (largest / smallest class): 4.00" in card
    assert "data:image/png;base64," in card
    assert "**Annotators**: 4" in card and "Fleiss' kappa 0.610" in card
    assert "dawid_skene: 9, majority: 1" in card
    assert "not resampled" in card


def test_limitations_name_rare_absent_unexpected_and_excluded_classes() -> None:
    inputs = _inputs(
        ["cat"] * 5 + ["owl"] * 2 + ["emu"],
        ["train", "train", "train", "val", "test", "train", "val", "train"],
        expected_classes=["cat", "dog", "owl"],
        excluded={"item is quarantined": 3},
        notes=["2 groups already span more than one split from earlier assignments"],
    )
    text = " ".join(limitations(inputs))
    assert "with no labeled item: dog" in text
    assert "outside the project class list: emu" in text
    assert "fewer than 3 items" in text and "owl (2)" in text and "emu (1)" in text
    assert "3 items with a consensus label are left out: item is quarantined" in text
    assert "2 groups already span more than one split" in text


def test_a_balanced_clean_dataset_has_no_limitations() -> None:
    inputs = _inputs(["a", "b"] * 10, ["train"] * 14 + ["val", "val", "test", "test", "val", "test"])
    assert limitations(inputs) == ["None detected."]
