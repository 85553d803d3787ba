"""raw_images of a text project as Dagster runs it: the same asset reads .txt, JSONL and CSV texts with the id and
text fields the project settings name, and its metadata says what was quarantined and why."""

import json
from pathlib import Path

import dagster as dg

from labeling_assets.assets.ingest import raw_images
from labeling_assets.checks.ingest import active_items_have_readable_copy, content_hashes_unique
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


def _materialize(store: LabelStore, source: Path, data_dir: Path, **settings: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_images, content_hashes_unique, active_items_have_readable_copy],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "image_source": ImageSourceResource(uri=str(source)),
            "project": ProjectSettings(data_dir=str(data_dir), **settings),  # type: ignore[arg-type]
        },
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [event] = result.get_asset_materialization_events()
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_a_text_project_ingests_its_texts_by_the_fields_its_settings_name(
    store: LabelStore, tmp_path: Path, data_dir: Path
) -> None:
    source = tmp_path / "texts"
    source.mkdir()
    (source / "review.txt").write_text("A fine film.\r\n", encoding="utf-8")
    rows = [{"doc": "d1", "body": "Too long by half."}, {"doc": "d2", "body": ""}, {"body": "whose?"}]
    (source / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (source / "cover.png").write_bytes(b"\x89PNG an image is not a text")
    result = _materialize(
        store, source, data_dir, task_type="text_classes", classes=["pos", "neg"], text_id_field="doc",
        text_field="body", max_text_bytes=15,
    )  # fmt: skip

    assert result.success
    meta = _metadata(result)
    assert (meta["files_new"], meta["files_quarantined"], meta["active_items"]) == (1, 3, 1)
    assert meta["quarantined_by_reason"] == {"text_too_large": 1, "empty_text": 1, "row_without_id": 1}
    assert "`more.jsonl#d1` | text_too_large" in str(meta["quarantined_files"])
    assert meta["preview"] == "- A fine film."
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_an_image_project_lists_no_text_file(store: LabelStore, tmp_path: Path, data_dir: Path) -> None:
    source = tmp_path / "images"
    source.mkdir()
    (source / "notes.txt").write_text("not an image", encoding="utf-8")
    result = _materialize(store, source, data_dir)
    assert result.success
    assert _metadata(result)["files_quarantined"] == 0 and _metadata(result)["active_items"] == 0
