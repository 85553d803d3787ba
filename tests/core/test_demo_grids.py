"""The bundled multi-label demo set: 2x2 grids of scikit-learn digit scans, labelled by the digits present.

Ground truth stays beside the images (``labels.csv``), never in the store: ingest sees only images.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.core.ingest import demo_data
from labeling_assets.core.ingest.demo_data import (
    GRID_CLASSES,
    grid_label_set,
    grid_layouts,
    label_distribution,
    load_truth_sets,
    render_digit_grids,
)
from labeling_assets.core.ingest.scan import ingest_source
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table


@pytest.fixture(scope="module")
def grids(tmp_path_factory: pytest.TempPathFactory) -> demo_data.GridDemoSet:
    return render_digit_grids(tmp_path_factory.mktemp("grids") / "set", n_images=120, cell=16, seed=3)


def test_the_label_set_is_the_digits_present_once_each_and_sorted() -> None:
    assert grid_label_set([7, None, 1, 7]) == ["1", "7"]
    assert grid_label_set([None, None, None, None]) == []


def test_every_image_is_a_2x2_grid_whose_inked_cells_are_exactly_its_layout(
    grids: demo_data.GridDemoSet,
) -> None:
    layouts = grid_layouts(grids.n_images, seed=3)
    truth = load_truth_sets(grids.folder)
    for index in (0, 1, 2, 5, 8, 13, 21):
        name = f"grid_{index:04d}.png"
        pixels = np.asarray(Image.open(grids.folder / name))
        assert pixels.shape == (32, 32)
        for position, digit in enumerate(layouts[index]):
            r, c = divmod(position, 2)
            darkest = pixels[16 * r : 16 * r + 16, 16 * c : 16 * c + 16].min()
            # ink is near black; a blank cell is paper with a little scan noise
            assert (darkest < 100) == (digit is not None), (name, position)
        assert truth[name] == grid_label_set(layouts[index])


def test_the_same_seed_renders_the_same_bytes_and_another_seed_another_set(tmp_path: Path) -> None:
    a = render_digit_grids(tmp_path / "a", n_images=30, cell=8, seed=1)
    b = render_digit_grids(tmp_path / "b", n_images=30, cell=8, seed=1)
    c = render_digit_grids(tmp_path / "c", n_images=30, cell=8, seed=2)
    files = sorted(p.name for p in a.folder.iterdir())
    assert files == sorted(p.name for p in b.folder.iterdir())
    assert all((a.folder / f).read_bytes() == (b.folder / f).read_bytes() for f in files)
    assert load_truth_sets(a.folder) != load_truth_sets(c.folder)


def test_labels_csv_holds_each_true_set_as_a_sorted_json_list(grids: demo_data.GridDemoSet) -> None:
    rows = grids.labels_csv.read_text().splitlines()
    assert rows[0] == "filename,label"
    truth = load_truth_sets(grids.folder)
    assert len(truth) == grids.n_images == 120
    assert all(
        labels == sorted(set(labels)) and set(labels) <= set(GRID_CLASSES) for labels in truth.values()
    )
    assert any(labels == [] for labels in truth.values()) and any(
        len(labels) >= 2 for labels in truth.values()
    )
    assert json.loads(demo_data.load_truth(grids.folder)["grid_0000.png"]) == truth["grid_0000.png"]


def test_gold_is_a_subset_of_the_truth_with_the_same_sets(grids: demo_data.GridDemoSet) -> None:
    truth = demo_data.load_truth(grids.folder)
    gold = dict(line.split(",", 1) for line in grids.gold_csv.read_text().splitlines()[1:])
    assert len(gold) == grids.n_gold == 6
    assert all(truth[name] == label.strip('"').replace('""', '"') for name, label in gold.items())


@pytest.mark.slow
def test_the_distribution_is_skewed_most_empty_or_single_with_rare_labels_and_partner_pairs() -> None:
    sets = [grid_label_set(cells) for cells in grid_layouts(20_000, seed=0)]
    dist = label_distribution(sets)
    prevalence = dist["prevalence"]
    assert 0.30 < dist["empty"] < 0.40  # FILLED_CELLS_P[0] = 0.35
    assert prevalence["0"] > 5 * prevalence["9"]  # a long tail: "9" is the rarest
    assert min(prevalence, key=prevalence.get) == "9" and prevalence["9"] > 0.01  # rare, not absent
    with_4 = [s for s in sets if "4" in s]
    # "9" is 4's partner: far more frequent beside a "4" than overall
    assert sum("9" in s for s in with_4) / len(with_4) > 5 * prevalence["9"]
    assert list(dist["top_pairs"])[0] == "0+6"


def test_ingest_keeps_every_grid_even_the_empty_ones_and_no_label(
    grids: demo_data.GridDemoSet, store: LabelStore, tmp_path: Path
) -> None:
    report = ingest_source(store, str(grids.folder), raw_dir=tmp_path / "raw", quarantine_dir=tmp_path / "q")
    # scan noise makes every empty grid its own bytes: the content-addressed store keeps them all
    assert len(report.outcomes) == grids.n_images
    assert store.count(items_table, items_table.c.status == "active") == grids.n_images
    # the truth beside the images is not ingested as anything: no annotation, no gold
    assert store.count(annotations_table) == 0
    assert store.fetch(sa.select(items_table.c.gold_label).where(items_table.c.gold_label.is_not(None))) == []
