"""qa_report (a self-contained page whose charts really render in a real headless Chromium) and the disagreement digest."""

import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets.guidelines import disagreement_digest
from labeling_assets.assets.qa_report import qa_report
from labeling_assets.core.reporting.qa_report import CHARTS, build_qa_report
from labeling_assets.core.store.guidelines import record_answer_guidelines, record_guideline_text, record_push
from labeling_assets.core.store.human_loop_schema import adjudications_table
from labeling_assets.core.store.schema import LabelStore, annotations_table, consensus_table, items_table
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

START = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
LABELERS = {"ann-good": 0.95, "ann-average": 0.8, "ann-spammer": 0.1}


def _populate(store: LabelStore, n_items: int = 60, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n_items)
    ids = [f"{i:064x}" for i in range(n_items)]
    item_rows, ann_rows, cons_rows = [], [], []
    for i, item_id in enumerate(ids):
        item_rows.append(
            {
                "item_id": item_id,
                "uri": f"/raw/{i}.png",
                "source_path": f"file:///src/{i}.png",
                "n_bytes": 100,
                "ingested_at": START,
                "status": "active",
                "gold_label": str(truth[i]) if i % 5 == 0 else None,
            }
        )
        cons_rows.append(
            {
                "item_id": item_id,
                "version": 1,
                "label": str(truth[i]),
                "method": "dawid_skene",
                "confidence": float(rng.uniform(0.5, 1.0)),
                "n_annotators": 3,
                "computed_at": START,
            }
        )
        for j, (labeler, accuracy) in enumerate(LABELERS.items()):
            label = truth[i] if rng.random() < accuracy else rng.integers(0, 4)
            created = START + dt.timedelta(days=int(i * 6 / n_items), minutes=int(rng.integers(0, 600)))
            ann_rows.append(
                {
                    "ls_annotation_id": i * 10 + j,
                    "version": 1,
                    "item_id": item_id,
                    "labeler_id": labeler,
                    "label": str(label),
                    "lead_time_s": float(rng.lognormal(2.0, 0.5)),
                    "created_at": created,
                    "updated_at": created,
                    "synced_at": created,
                    "supersedes": None,
                    "deleted": False,
                    "content_hash": f"h{i}-{j}",
                }
            )
    with store.begin() as conn:
        conn.execute(items_table.insert(), item_rows)
        conn.execute(annotations_table.insert(), ann_rows)
        conn.execute(consensus_table.insert(), cons_rows)


def _materialize(store: LabelStore, data_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [qa_report],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "project": ProjectSettings(data_dir=str(data_dir)),
        },
    )


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is missing: scripts/test installs Debian's chromium package")
    return path


@pytest.mark.slow
def test_the_report_has_every_chart_and_points_at_the_spammer(
    sqlite_store: LabelStore, data_dir: Path
) -> None:
    _populate(sqlite_store)
    record_guideline_text(sqlite_store, "# Digits", "g.md")  # version 1 pushed half way: two groups of answers
    record_push(sqlite_store, 1, 1, START + dt.timedelta(days=3))
    assert record_answer_guidelines(sqlite_store) == 180
    result = _materialize(sqlite_store, data_dir)
    [event] = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["charts"].value == list(CHARTS)
    assert meta["guideline_versions"].value == 2  # answers before any version, and under version 1
    page = Path(meta["report"].value).read_text()
    assert page.count('data-chart="') == len(CHARTS)
    assert "ann-spammer" in page
    assert meta["lowest_gold_accuracy"].value < 0.5  # the spammer's
    assert meta["period"].value == "day"


def test_an_empty_store_gives_a_page_that_says_so(sqlite_store: LabelStore, data_dir: Path) -> None:
    result = _materialize(sqlite_store, data_dir)
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["charts"].value == []
    assert "No annotations yet." in Path(event.materialization.metadata["report"].value).read_text()


def test_the_disagreement_digest_lists_the_split_items_the_expert_settled(sqlite_store: LabelStore, data_dir: Path) -> None:
    _populate(sqlite_store, n_items=20)
    votes = pd.DataFrame(sqlite_store.fetch(sa.select(annotations_table.c.item_id, annotations_table.c.label)))
    split = sorted(i for i, labels in votes.groupby("item_id")["label"] if labels.nunique() > 1)
    with sqlite_store.begin() as conn:  # the expert settles every split item with class "3"
        conn.execute(adjudications_table.insert(), [
            {"item_id": i, "label": "3", "reviewer_id": "99", "ls_project_id": 9, "ls_annotation_id": n,
             "content_hash": f"a{n}", "synced_at": START} for n, i in enumerate(split)
        ])  # fmt: skip
    result = dg.materialize(
        [disagreement_digest],
        resources={"label_store": LabelStoreResource(url=sqlite_store.url),
                   "project": ProjectSettings(data_dir=str(data_dir))},
    )  # fmt: skip
    [event] = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["split_items"].value == meta["adjudicated_items"].value == len(split) > 0
    page = Path(meta["path"].value).read_text()
    assert "| crowd answer | expert answer | items |" in page and "/raw/" in page  # example items with their uris
    assert page.endswith(meta["digest"].value + "\n")


@pytest.mark.browser
def test_the_page_renders_its_charts_in_headless_chromium(
    sqlite_store: LabelStore, data_dir: Path, tmp_path: Path
) -> None:
    chromium = _chromium()
    _populate(sqlite_store)
    [event] = _materialize(sqlite_store, data_dir).get_asset_materialization_events()
    page = Path(event.materialization.metadata["report"].value)
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
    ]

    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # The page's own script counts images that decoded to real pixels after load.
    assert f'data-charts-rendered="{len(CHARTS)}"' in dom

    shot = tmp_path / "qa.png"
    subprocess.run(
        [*flags, "--window-size=1000,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1000)
    # Charts are lines, bars and text on white: a blank or error page would be (nearly) one colour.
    assert pixels.std() > 20
    assert (pixels < 128).mean() > 0.01


@pytest.mark.slow
def test_with_a_pay_rate_the_careless_labeler_costs_more_per_correct_label() -> None:
    # Same speed and rate; the careful labeler is right on every gold item, the careless one on 2 of 8.
    gold = pd.Series({f"g{i}": "cat" for i in range(8)})
    stamp = pd.Timestamp("2026-11-20T12:00Z")
    votes = pd.DataFrame(
        [{"item_id": f"g{i}", "labeler_id": who, "label": label, "lead_time_s": 36.0, "created_at": stamp}
         for i in range(8)
         for who, label in (("careful", "cat"), ("careless", "cat" if i < 2 else "dog"))]
    )  # fmt: skip
    consensus = pd.DataFrame({"item_id": list(gold.index), "label": "cat", "confidence": 0.9})
    page = build_qa_report(votes, gold, consensus, pay_rates_per_hour={"careful": 10.0, "careless": 10.0}).html
    table = pd.read_html(io.StringIO(page), match="cost per correct label")[0].set_index("labeler_id")
    # 36 s at 10/h = 0.100 per label; / accuracy 1.0 and 0.25.
    assert table.loc["careful", "cost per label"] == table.loc["careless", "cost per label"] == 0.1
    assert table.loc["careful", "cost per correct label (95% CI)"].startswith("0.100 (")
    assert table.loc["careless", "cost per correct label (95% CI)"].startswith("0.400 (")
    assert "cost per correct label" not in build_qa_report(votes, gold, consensus).html  # no rate: no cost column
