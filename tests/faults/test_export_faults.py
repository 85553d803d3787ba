"""Exports under hostile class names (issue 28, finding 11): an ImageFolder tree is one folder per class, so
two classes whose folder names would be the same must be refused, naming both, before anything is written;
merging them would silently turn two classes into one for whoever trains on the tree."""

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from labeling_assets.core.dataset import export as ex


def rows_with(tmp_path: Path, labels: list[str]) -> pd.DataFrame:
    raw = tmp_path / "raw"
    raw.mkdir()
    uris = {}
    for k in range(len(labels)):
        path = raw / f"h{k}.png"
        Image.new("L", (4, 4), color=k * 40).save(path)
        uris[f"h{k}"] = str(path)
    manifest = pd.DataFrame({"item_id": list(uris), "label": labels, "split": ["train"] * len(labels)})
    return ex.export_rows(manifest, uris)


@pytest.mark.parametrize(("first", "second"), [("a/b", "a_b"), ("cat", "cat "), ("a\\b", "a/b")])
def test_two_classes_that_would_share_a_folder_are_refused_naming_both(
    tmp_path: Path, first: str, second: str
) -> None:
    rows = rows_with(tmp_path, [first, second, "dog"])
    with pytest.raises(ValueError, match="share the ImageFolder folder") as refused:
        ex.export_dataset(rows, tmp_path / "out", ["imagefolder"])
    assert repr(first) in str(refused.value) and repr(second) in str(refused.value)
    assert not (tmp_path / "out" / "imagefolder").exists()  # nothing half-written


def test_distinct_folder_names_still_export_one_folder_per_class(tmp_path: Path) -> None:
    rows = rows_with(tmp_path, ["a/b", "cat", "Cat"])
    report = ex.export_dataset(rows, tmp_path / "out", ["imagefolder"])
    folders = sorted(p.name for p in (report.paths["imagefolder"] / "train").iterdir())
    assert folders == sorted(["a_b", "cat", "Cat"])
