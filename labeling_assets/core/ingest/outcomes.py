"""What an ingest run did with each file (or text row) it was shown: the outcomes ``core.ingest.scan`` lists."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labeling_assets.core.ingest import lifecycle
from labeling_assets.core.ingest.gold import GoldProblem
from labeling_assets.core.ingest.source import FolderNotScanned, SourceFile

NEW = "new"
UNCHANGED = "unchanged"
DUPLICATE = "duplicate"
CHANGED = "changed"
QUARANTINED = "quarantined"
MISSING = lifecycle.MISSING
RESTORED = "restored"
OUTCOMES = (NEW, UNCHANGED, DUPLICATE, CHANGED, QUARANTINED, MISSING, RESTORED)


@dataclass(frozen=True)
class FileOutcome:
    rel_path: str
    outcome: str
    item_id: str | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass
class IngestReport:
    """What one ingest run did, file by file."""

    source: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    files_read: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    gold_items: int = 0
    files_rehashed: int = 0  # read although their fingerprint was unchanged (rehash mode)
    folders_not_scanned: list[FolderNotScanned] = field(default_factory=list)
    gold_problems: list[GoldProblem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counter = Counter(o.outcome for o in self.outcomes)
        return {name: counter.get(name, 0) for name in OUTCOMES}

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(Counter(o.reason or "unknown" for o in self.outcomes if o.outcome == QUARANTINED))

    @property
    def new_item_ids(self) -> list[str]:
        return [o.item_id for o in self.outcomes if o.outcome in (NEW, CHANGED) and o.item_id]

    def of(self, outcome: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]


def pick_rehash(candidates: Sequence[tuple[SourceFile, Any]], every: int) -> set[str]:
    """The paths to re-hash this run: the least recently read ``1/every`` of the unchanged files."""
    if every <= 0 or not candidates:
        return set()
    if every == 1:
        return {f.rel_path for f, _ in candidates}
    oldest = sorted(candidates, key=lambda c: (c[1].last_checked_at is not None, c[1].last_checked_at, c[0].rel_path))
    return {f.rel_path for f, _ in oldest[: math.ceil(len(candidates) / every)]}


def manifest_row(source: str, f: SourceFile, outcome: FileOutcome, previous: Any, now: Any) -> dict[str, Any]:
    """The manifest row of ``outcome`` (a file, or a text row of the file ``f``: its path then names the row),
    with ``f``'s fingerprint."""
    fingerprint = {"size": f.size, "mtime_ns": f.mtime_ns, "ctime_ns": f.ctime_ns, "inode": f.inode}
    return {"source": source, "path": outcome.rel_path, **fingerprint, "item_id": outcome.item_id,
            "outcome": outcome.outcome, "reason": outcome.reason, "detail": outcome.detail,
            "first_seen_at": previous.first_seen_at if previous is not None else now, "last_checked_at": now}  # fmt: skip
