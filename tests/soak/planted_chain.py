"""The near-duplicate chain of issue 26, planted in a running loop (the soak test and benchmarks/long_run.py).

A newly ingested item gets a perceptual hash within 4 bits of a frozen train item's and of a frozen test item's,
which are 8 bits apart (not near-duplicates of each other): wherever the new item went, one near-duplicate pair
would cross splits. Before issue 26 the blocking check then failed on every later dataset version and every
collect run failed; now the new item is held out of the dataset. The hashes are written to the label store's
``item_phashes`` after the item's ingest and before its votes can give it a consensus; the anchor is far
(> 12 bits) from every other stored hash, so no other pair changes.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from labeling_assets.core.dataset.near_duplicates import hamming
from labeling_assets.core.store.lineage_schema import item_phashes_table
from labeling_assets.core.store.schema import LabelStore, source_files_table, splits_table, utcnow


def item_ids_of(store: LabelStore, names: list[str]) -> list[str]:
    """The item ids of source files (by file name) that are ingested, in the order of ``names``."""
    rows = store.fetch(sa.select(source_files_table.c.path, source_files_table.c.item_id))
    by_name = {Path(r["path"]).name: r["item_id"] for r in rows if r["item_id"]}
    return [by_name[n] for n in names if n in by_name]


def hashed(store: LabelStore, items: list[str]) -> bool:
    """Whether the ingest has stored a perceptual hash for each of ``items``."""
    if not items:
        return False
    rows = store.fetch(sa.select(item_phashes_table.c.item_id).where(item_phashes_table.c.item_id.in_(items)))
    return len(rows) == len(set(items))


def plant_chain(store: LabelStore, bridge: str, seed: int = 0) -> dict[str, Any]:
    """Plant the chain on ``bridge`` (ingested, not frozen) and the first frozen train and test items."""
    frozen = {r["item_id"]: r["split"] for r in store.fetch(sa.select(splits_table.c.item_id, splits_table.c.split))}
    in_train = sorted(i for i, s in frozen.items() if s == "train")[0]
    in_test = sorted(i for i, s in frozen.items() if s == "test")[0]
    rows = store.fetch(sa.select(item_phashes_table.c.item_id, item_phashes_table.c.phash))
    others = np.array(
        [int(r["phash"], 16) for r in rows if r["phash"] and r["item_id"] not in (in_train, in_test, bridge)],
        dtype=np.uint64,
    )
    rng = random.Random(seed)
    while True:
        anchor = rng.getrandbits(63)
        if not len(others) or int(hamming(others, np.full(len(others), anchor, dtype=np.uint64)).min()) > 12:
            break
    planted = {in_train: anchor, in_test: anchor ^ 0xFF, bridge: anchor ^ 0x0F}  # 4, 4 and 8 bits apart
    with store.begin() as conn:
        conn.execute(item_phashes_table.delete().where(item_phashes_table.c.item_id.in_(list(planted))))
        conn.execute(item_phashes_table.insert(), [
            {"item_id": i, "phash": f"{h:016x}", "problem": None, "computed_at": utcnow()} for i, h in planted.items()
        ])  # fmt: skip
    return {"bridge": bridge, "frozen_train": in_train, "frozen_test": in_test, "planted_at": time.time()}
