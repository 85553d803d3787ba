"""Multi-label exports (a list field in JSONL, one 0/1 column per class in CSV/Parquet, no ImageFolder) and
the multi-label dataset card (per-split prevalence, co-occurrence, pos_weight)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from labeling_assets.core.dataset import export as ex
from labeling_assets.core.dataset import iterative_stratification as it
from labeling_assets.core.dataset.card import CardInputs, render_card
from labeling_assets.core.label_sets import MULTI_LABEL

CLASSES = ["Effusion", "Pleural Thickening", "No-Finding?"]


@pytest.fixture
def rows(tmp_path: Path) -> pd.DataFrame:
    raw = tmp_path / "raw"
    raw.mkdir()
    uris = {}
    for k, item in enumerate(["h1", "h2", "h3"]):
        path = raw / f"{item}.png"
        Image.new("L", (4, 4), color=k * 40).save(path)
        uris[item] = str(path)
    manifest = pd.DataFrame(
        {
            "item_id": ["h3", "h1", "h2"],
            "label": [[], ["Pleural Thickening", "Effusion"], ["Effusion"]],
            "split": ["test", "train", "val"],
        }
    )
    return ex.export_rows(manifest, uris)


def test_jsonl_keeps_the_label_set_as_a_sorted_list(rows: pd.DataFrame, tmp_path: Path) -> None:
    report = ex.export_dataset(rows, tmp_path / "out", ["jsonl"], classes=CLASSES)
    records = [json.loads(line) for line in report.paths["jsonl"].read_text().splitlines()]
    assert [(r["item_id"], r["label"]) for r in records] == [
        ("h1", ["Effusion", "Pleural Thickening"]),
        ("h2", ["Effusion"]),
        ("h3", []),
    ]
    assert "label_columns" not in report.paths  # no 0/1 columns written, no mapping


def test_csv_and_parquet_have_one_0_1_column_per_class_with_safe_names(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    report = ex.export_dataset(rows, tmp_path / "out", ["csv", "parquet"], classes=CLASSES)

    expected = pd.DataFrame(
        {
            "image_path": rows["image_path"],
            "split": ["train", "val", "test"],
            "item_id": ["h1", "h2", "h3"],
            "label_effusion": [1, 1, 0],
            "label_pleural_thickening": [1, 0, 0],
            "label_no_finding": [0, 0, 0],
        }
    )
    pd.testing.assert_frame_equal(pd.read_csv(report.paths["csv"]), expected)
    parquet = pd.read_parquet(report.paths["parquet"])
    pd.testing.assert_frame_equal(parquet.astype({c: "int64" for c in parquet.columns[3:]}), expected)
    assert str(parquet["label_effusion"].dtype) == "uint8"
    # The column -> class mapping travels with the files.
    assert json.loads(report.paths["label_columns"].read_text()) == {
        "Effusion": "label_effusion",
        "Pleural Thickening": "label_pleural_thickening",
        "No-Finding?": "label_no_finding",
    }


def test_colliding_column_names_get_a_numbered_suffix() -> None:
    assert ex.indicator_columns(["A b", "a-b", "a_b", "!!"]) == {
        "A b": "label_a_b",
        "a-b": "label_a_b_2",
        "a_b": "label_a_b_3",
        "!!": "label_class",
    }


def test_imagefolder_is_refused_for_multi_label_with_the_alternatives(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="imagefolder export is refused for a multi_label") as refused:
        ex.export_dataset(rows, tmp_path / "out", ["jsonl", "imagefolder"], classes=CLASSES)
    assert all(name in str(refused.value) for name in ("jsonl", "csv", "parquet"))
    assert not (tmp_path / "out" / "dataset.jsonl").exists()  # refused before anything is written
    with pytest.raises(ValueError, match="refused"):
        ex.validate_formats(["imagefolder"], task_type=MULTI_LABEL)
    assert ex.validate_formats(["imagefolder"]) == ["imagefolder"]  # single-label: as before


def _card(manifest: pd.DataFrame, classes: list[str], **extra: object) -> str:
    inputs = CardInputs(
        name="chest",
        version="v1",
        manifest=manifest,
        class_weights=it.pos_weights(manifest[manifest["split"] == "train"], classes),
        ratios={"train": 0.7, "val": 0.15, "test": 0.15},
        seed=0,
        expected_classes=classes,
        task_type=MULTI_LABEL,
        **extra,  # type: ignore[arg-type]
    )
    return render_card(inputs, with_plot=False)


def test_the_card_shows_prevalence_and_co_occurrence_per_split_and_pos_weight() -> None:
    manifest = pd.DataFrame(
        {
            "item_id": [f"h{i}" for i in range(10)],
            "label": [["a", "b"], ["a"], ["a"], [], [], [], ["a", "b"], [], ["a"], []],
            "split": ["train"] * 6 + ["val"] * 2 + ["test"] * 2,
        }
    )
    card = _card(manifest, ["a", "b", "c"])

    assert "## Label prevalence per split" in card
    # a: 3 of 6 train items, 1 of 2 val, 1 of 2 test; pos_weight = 3 negatives / 3 positives in train.
    assert "| a | 3 (50.0%) | 1 (50.0%) | 1 (50.0%) | 5 (50.0%) | 1.00 |" in card
    assert "| (none of these) | 3 (50.0%) | 1 (50.0%) | 1 (50.0%) | 5 (50.0%) | - |" in card
    assert "### train" in card and "### all splits" in card
    assert "| a | 5 | 2 | 0 |" in card  # co-occurrence over all splits: a with a, b, c
    assert "negatives / positives over the train split" in card
    assert "Labels with no positive item: c." in card
    assert "b not in test" in card  # b has 2 positives: in train and val only


def test_the_card_plots_prevalence_and_co_occurrence() -> None:
    manifest = pd.DataFrame({"item_id": ["h0", "h1"], "label": [["a"], []], "split": ["train", "test"]})
    inputs = CardInputs(
        name="chest",
        version="v1",
        manifest=manifest,
        class_weights={},
        ratios={},
        seed=0,
        expected_classes=["a"],
        task_type=MULTI_LABEL,
    )
    card = render_card(inputs)
    assert card.count("data:image/png;base64,") == 2
