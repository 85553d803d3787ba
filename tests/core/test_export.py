"""Exports: formats, the ImageFolder layout, hard links with a copy fallback, clear errors."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from labeling_assets.core.dataset import export as ex


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
        {"item_id": ["h3", "h1", "h2"], "label": ["b", "a", "a"], "split": ["test", "train", "train"]}
    )
    return ex.export_rows(manifest, uris)


def test_every_format_is_written_with_the_same_rows(rows: pd.DataFrame, tmp_path: Path) -> None:
    report = ex.export_dataset(rows, tmp_path / "out", ["jsonl", "CSV", "parquet", "imagefolder", "jsonl"])

    assert list(report.paths) == ["jsonl", "csv", "parquet", "imagefolder"]
    records = [json.loads(line) for line in report.paths["jsonl"].read_text().splitlines()]
    assert [r["item_id"] for r in records] == ["h1", "h2", "h3"]
    assert set(records[0]) == {"image_path", "label", "split", "item_id"}
    assert pd.read_csv(report.paths["csv"]).equals(pd.DataFrame(records))
    assert pd.read_parquet(report.paths["parquet"]).equals(pd.DataFrame(records))
    tree = sorted(
        p.relative_to(report.paths["imagefolder"]).as_posix()
        for p in report.paths["imagefolder"].rglob("*.png")
    )
    assert tree == ["test/b/h3.png", "train/a/h1.png", "train/a/h2.png"]
    assert report.linked + report.copied == 3


def test_imagefolder_hard_links_share_the_raw_bytes(rows: pd.DataFrame, tmp_path: Path) -> None:
    linked, copied = ex.write_imagefolder(rows, tmp_path / "tree")
    assert (linked, copied) == (3, 0)
    assert os.path.samefile(tmp_path / "tree" / "train" / "a" / "h1.png", rows.loc[0, "image_path"])


def test_imagefolder_copies_when_links_fail(
    rows: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(ex.os, "link", no_links)
    linked, copied = ex.write_imagefolder(rows, tmp_path / "tree")
    copy = tmp_path / "tree" / "test" / "b" / "h3.png"
    assert (linked, copied) == (0, 3)
    assert copy.read_bytes() == Path(rows.loc[2, "image_path"]).read_bytes()
    assert not os.path.samefile(copy, rows.loc[2, "image_path"])


def test_rewriting_an_imagefolder_drops_stale_files(rows: pd.DataFrame, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    ex.write_imagefolder(rows, root)
    (root / "train" / "a" / "stale.png").write_bytes(b"old")
    ex.write_imagefolder(rows.iloc[:2], root)
    assert sorted(p.name for p in root.rglob("*.png")) == ["h1.png", "h2.png"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_class_names_cannot_escape_the_tree(rows: pd.DataFrame, tmp_path: Path) -> None:
    ex.write_imagefolder(rows.assign(label=["a/b", "a/b", "c"]), tmp_path / "tree")
    assert (tmp_path / "tree" / "train" / "a_b" / "h1.png").is_file()
    with pytest.raises(ValueError, match="cannot be a directory name"):
        ex.write_imagefolder(rows.assign(label=[".."] * 3), tmp_path / "tree2")
    assert not (tmp_path / "tree2").exists()


def test_unknown_format_and_missing_images_are_clear_errors(tmp_path: Path) -> None:
    manifest = pd.DataFrame({"item_id": ["h1", "h2"], "label": ["a", "b"], "split": ["train", "val"]})
    with pytest.raises(ValueError, match="unknown export format 'tfrecord'"):
        ex.validate_formats(["jsonl", "tfrecord"])
    with pytest.raises(ValueError, match="no export format"):
        ex.validate_formats([])
    with pytest.raises(ValueError, match="1 items have no stored image"):
        ex.export_rows(manifest, {"h1": "/raw/h1.png", "h2": None})
