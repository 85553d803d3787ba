"""Names a person chose (file names, class names, labeler names) where they reach Dagster markdown, and ids a
person types where the store searches by pattern: text is data, never markup or a wildcard.

A file named ``a|b`c.png`` or a class named ``cat|dog`` broke every table row it sat in (Dagster renders GFM: a
``|`` ends a cell even inside a code span); ``labeling-assets item %`` matched every item (SQL LIKE).
"""

import io
import re
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from labeling_assets.assets.ingest import raw_images
from labeling_assets.core.display import md_code, md_text
from labeling_assets.core.store.history import item_history
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.core.training.cache import class_counts_markdown
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

NASTY = ["a|b`c.png", "two\nlines.png", "<img src=x onerror=alert(1)>.png", "``x``.png", "[link](x).png"]


def cells(row: str) -> list[str]:
    """A GFM table row's cells: split on every "|" that is not escaped (code spans do not protect one)."""
    return re.split(r"(?<!\\)\|", row.strip().strip("|"))


def assert_table_intact(markdown: str, columns: int) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert rows, markdown
    for row in rows:
        assert len(cells(row)) == columns, row
        outside_code = re.sub(r"(`+).+?\1", "", row)  # a code span shows its text as text
        assert re.search(r"(?<!\\)(<|\]\()", outside_code) is None, row  # no HTML tag, no link
    return rows


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), color=7).save(out, format="PNG")
    return out.getvalue()


def test_file_names_in_the_ingest_metadata_table_stay_inside_their_cells(
    sqlite_store: LabelStore, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in NASTY:  # each is corrupt: quarantined, and listed in the run's quarantine table by file name
        (source / name).write_bytes(png()[:20])
    (source / "fine.png").write_bytes(png())
    result = dg.materialize(
        [raw_images],
        resources={
            "label_store": LabelStoreResource(url=sqlite_store.url),
            "image_source": ImageSourceResource(uri=str(source), demo_dir=str(tmp_path / "demo")),
            "project": ProjectSettings(data_dir=str(tmp_path / "data")),
        },
        raise_on_error=False,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    table = str(event.materialization.metadata["quarantined_files"].value)
    rows = assert_table_intact(table, 3)
    assert len(rows) == 2 + len(NASTY)  # header, rule, one row per file (a newline in a name is not a new row)


def test_class_names_in_a_markdown_table_stay_inside_their_cells() -> None:
    classes = ["cat|dog", "`tick", "<b>bold</b>", "back\\slash|"]
    meta = {"class_counts": {"train": [1, 2, 3, 4], "val": [0, 1, 0, 1]}}
    rows = assert_table_intact(class_counts_markdown(meta, classes), 3)
    assert len(rows) == 2 + len(classes)


@pytest.mark.parametrize("text", ["a|b", "`", "``a`b``", "|", "<script>", "x\ny", "m" * 10_000])
def test_the_markdown_helpers_keep_any_text_in_one_bounded_cell(text: str) -> None:
    for shown in (md_text(text), md_code(text)):
        assert len(cells(f"| {shown} | 1 |")) == 2
        assert "\n" not in shown and len(shown) < 200
    assert re.search(r"(?<!\\)[<`|]", md_text(text)) is None  # no tag, code span or cell border opens
    fence = re.match(r"`+", md_code(text))
    assert fence and md_code(text).endswith(fence.group()) and fence.group() not in md_code(text)[len(fence.group()):-len(fence.group())]


def _items(store: LabelStore, *ids: str) -> None:
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": i, "uri": f"/x/{i}", "source_path": f"{i}.png", "n_bytes": 1, "ingested_at": utcnow(),
             "status": "active"} for i in ids
        ])  # fmt: skip


@pytest.mark.parametrize("pattern", ["%", "_", "a%", "a_", "%b", "_" * 64])
def test_a_wildcard_in_an_item_prefix_matches_only_itself(store: LabelStore, pattern: str) -> None:
    _items(store, "a" + "b" * 63)  # one item: a pattern that matched it would be taken as that item
    with pytest.raises(LookupError, match="matches 0 items"):
        item_history(store, pattern)
    assert item_history(store, "ab")["item"]["item_id"] == "a" + "b" * 63


def test_an_item_prefix_with_a_literal_wildcard_character_finds_that_item(store: LabelStore) -> None:
    _items(store, "a%" + "0" * 62, "a" + "1" * 63)
    assert item_history(store, "a%")["item"]["item_id"] == "a%" + "0" * 62
    assert store.count(items_table, items_table.c.item_id.like("a%")) == 2  # both would match an unescaped LIKE
