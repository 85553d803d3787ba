"""raw_images as Dagster runs it: metadata a person can act on, and checks that can fail."""

import io
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from PIL import Image

from labeling_assets.assets.ingest import raw_images
from labeling_assets.checks.ingest import active_items_have_readable_copy, content_hashes_unique
from labeling_assets.core.store.schema import LabelStore, items_table
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (12, 12), color=value).save(buffer, format="PNG")
    return buffer.getvalue()


def _materialize(store: LabelStore, source: Path, data_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_images, content_hashes_unique, active_items_have_readable_copy],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "image_source": ImageSourceResource(uri=str(source), demo_dir=str(data_dir / "demo")),
            "project": ProjectSettings(data_dir=str(data_dir)),
        },
        raise_on_error=False,
    )


def _evaluate(check: dg.AssetChecksDefinition, store: LabelStore) -> dg.AssetCheckEvaluation:
    """Run one check alone against the store (as the UI's "Execute check" does)."""
    result = dg.materialize(
        [check],
        resources={"label_store": LabelStoreResource(url=store.url)},
        selection=dg.AssetSelection.checks(check),
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(_png(i * 40))
    (folder / "copy-of-0.png").write_bytes(_png(0))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_bytes(b"not a jpeg at all")
    return folder


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [event] = result.get_asset_materialization_events()
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_a_materialization_reports_counts_quarantine_and_a_preview(
    store: LabelStore, source: Path, data_dir: Path
) -> None:
    result = _materialize(store, source, data_dir)
    assert result.success
    meta = _metadata(result)
    assert (meta["files_new"], meta["files_duplicate"], meta["files_quarantined"]) == (4, 1, 2)
    assert meta["quarantined_by_reason"] == {"empty_file": 1, "not_an_image": 1}
    assert "`empty.png` | empty_file" in str(meta["quarantined_files"])
    assert str(meta["preview"]).count("data:image/png;base64,") == 4
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_a_second_materialization_reads_no_unchanged_file(
    store: LabelStore, source: Path, data_dir: Path
) -> None:
    assert _materialize(store, source, data_dir).success
    meta = _metadata(_materialize(store, source, data_dir))
    assert meta["files_read"] == 0
    assert meta["files_unchanged"] == 7


def test_the_copy_check_fails_when_a_stored_copy_disappears(
    store: LabelStore, source: Path, data_dir: Path
) -> None:
    assert _materialize(store, source, data_dir).success
    [row] = store.fetch(sa.select(items_table.c.uri).where(items_table.c.status == "active").limit(1))
    Path(row["uri"]).unlink()
    evaluation = _evaluate(active_items_have_readable_copy, store)
    assert not evaluation.passed
    assert evaluation.metadata["missing_copies"].value == 1


def test_the_copy_check_fails_when_a_stored_copy_is_silently_corrupted(
    store: LabelStore, source: Path, data_dir: Path
) -> None:
    assert _materialize(store, source, data_dir).success
    [row] = store.fetch(sa.select(items_table.c.uri).where(items_table.c.status == "active").limit(1))
    Path(row["uri"]).write_bytes(b"bit rot")
    evaluation = _evaluate(active_items_have_readable_copy, store)
    assert not evaluation.passed
    assert evaluation.metadata["hash_mismatches"].value == 1


def test_the_hash_check_fails_on_an_id_that_is_not_a_content_hash_or_a_shared_copy(
    store: LabelStore, source: Path, data_dir: Path
) -> None:
    assert _materialize(store, source, data_dir).success
    [row] = store.fetch(sa.select(items_table).where(items_table.c.status == "active").limit(1))
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{**row, "item_id": "hand-imported-1"}])
    evaluation = _evaluate(content_hashes_unique, store)
    assert not evaluation.passed
    assert evaluation.metadata["ids_not_sha256"].value == ["hand-imported-1"]
    assert evaluation.metadata["copies_shared_by_several_items"].value == [row["uri"]]
