"""Checks on raw_images: one property each."""

import random
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from labeling_assets.core.images import sha256_hex
from labeling_assets.core.store import items
from labeling_assets.resources.store import LabelStoreResource

# Re-hashing every stored file is O(data); a random sample catches silent corruption at bounded cost.
HASH_SAMPLE = 2000


@dg.asset_check(asset="raw_images", blocking=True)
def content_hashes_unique(label_store: LabelStoreResource) -> dg.AssetCheckResult:
    """No content hash is stored as two items."""
    store = label_store.get_store()
    dupes = store.fetch(
        sa.select(items.c.item_id, sa.func.count().label("n"))
        .group_by(items.c.item_id)
        .having(sa.func.count() > 1)
        .limit(20)
    )
    return dg.AssetCheckResult(
        passed=not dupes,
        metadata={"duplicated_hashes": dg.MetadataValue.json([d["item_id"] for d in dupes])},
    )


@dg.asset_check(asset="raw_images", blocking=True)
def active_items_have_readable_copy(label_store: LabelStoreResource) -> dg.AssetCheckResult:
    """Every active item has a stored copy; a random sample of copies still hashes to its item id."""
    store = label_store.get_store()
    rows = store.fetch(sa.select(items.c.item_id, items.c.uri).where(items.c.status == "active"))
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
