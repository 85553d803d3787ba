"""Checks on raw_images: one property each."""

import random
import re
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from labeling_assets.core.images import sha256_hex
from labeling_assets.core.store.schema import items_table
from labeling_assets.resources.store import LabelStoreResource

# Re-hashing every stored file is O(data); a random sample catches silent corruption at bounded cost.
HASH_SAMPLE = 2000
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dg.asset_check(asset="raw_images", blocking=True)
def content_hashes_unique(label_store: LabelStoreResource) -> dg.AssetCheckResult:
    """One item per content hash: ids are sha256 hex, and no stored copy is shared by two items.

    The primary key already forbids a repeated id; what can still go wrong is an id that is not a content
    hash (an import by hand) or two ids pointing at one file (a copy overwritten under another name).
    """
    store = label_store.get_store()
    ids = (row["item_id"] for row in store.fetch(sa.select(items_table.c.item_id)))
    not_a_hash = sorted(i for i in ids if not _HEX64.fullmatch(i))
    shared = store.fetch(
        sa.select(items_table.c.uri, sa.func.count().label("n"))
        .where(items_table.c.uri.is_not(None))
        .group_by(items_table.c.uri)
        .having(sa.func.count() > 1)
        .limit(20)
    )
    return dg.AssetCheckResult(
        passed=not not_a_hash and not shared,
        metadata={
            "ids_not_sha256": dg.MetadataValue.json(not_a_hash[:20]),
            "copies_shared_by_several_items": dg.MetadataValue.json([r["uri"] for r in shared]),
        },
    )


@dg.asset_check(asset="raw_images", blocking=True)
def active_items_have_readable_copy(label_store: LabelStoreResource) -> dg.AssetCheckResult:
    """Every active item has a stored copy; a random sample of copies still hashes to its item id."""
    store = label_store.get_store()
    rows = store.fetch(sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.status == "active"))
    missing = [r["item_id"] for r in rows if not r["uri"] or not Path(r["uri"]).is_file()]
    sample = random.Random(0).sample(rows, min(HASH_SAMPLE, len(rows)))
    corrupt = []
    for row in sample:
        if row["item_id"] in missing:
            continue
        try:
            if sha256_hex(Path(row["uri"]).read_bytes()) != row["item_id"]:
                corrupt.append(row["item_id"])
        except OSError:
            missing.append(row["item_id"])
    return dg.AssetCheckResult(
        passed=not missing and not corrupt,
        metadata={
            "active_items": dg.MetadataValue.int(len(rows)),
            "missing_copies": dg.MetadataValue.int(len(missing)),
            "rehashed_sample": dg.MetadataValue.int(len(sample)),
            "hash_mismatches": dg.MetadataValue.int(len(corrupt)),
            "examples": dg.MetadataValue.json((missing + corrupt)[:10]),
        },
    )
