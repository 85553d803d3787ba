"""``labeling-assets item flag ITEM --reason ...`` and ``item unflag ITEM``: an item sent to expert review by hand,
through the review requests the adjudications stage queues (its Label Studio side: tests/integration/test_human_loop.py).
In-process against the test's own SQLite store."""

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from labeling_assets.cli.common import label_store
from labeling_assets.cli.main import main
from labeling_assets.core.consensus.review_routing import EXPERT_REVIEW, plan_overlap_raises
from labeling_assets.core.store.flags import MANUAL_SOURCE
from labeling_assets.core.store.human_loop_schema import adjudications_table
from labeling_assets.core.store.reviews import open_review_requests
from labeling_assets.core.store.schema import (
    LabelStore,
    items_table,
    review_requests_table,
    source_files_table,
    utcnow,
)

IDS = [hashlib.sha256(f"flag-{i}".encode()).hexdigest() for i in range(3)]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating costs ~0.5 s a test)."""
    path = tmp_path_factory.mktemp("flag-template") / "labels.db"
    template = LabelStore(f"sqlite:///{path}")
    template.migrate()
    template.dispose()
    return path


@pytest.fixture
def store(migrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabelStore]:
    shutil.copy(migrated, tmp_path / "labels.db")
    monkeypatch.setenv("LABEL_STORE_URL", f"sqlite:///{tmp_path / 'labels.db'}")  # this test's own store
    store = label_store()
    now = utcnow()
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": IDS[0], "uri": "/data/raw/a.png", "source_path": "/photos/a.png", "n_bytes": 1,
             "ingested_at": now, "status": "active", "status_reason": None},
            {"item_id": IDS[1], "uri": "/data/raw/b.png", "source_path": "/photos/b.png", "n_bytes": 1,
             "ingested_at": now, "status": "active", "status_reason": None},
            {"item_id": IDS[2], "uri": None, "source_path": "/photos/c.png", "n_bytes": 1, "ingested_at": now,
             "status": "quarantined", "status_reason": "not_an_image"}])  # fmt: skip
        conn.execute(source_files_table.insert(), [{"source": "/photos", "path": "/photos/b.png", "item_id": IDS[1],
                                                    "outcome": "new", "first_seen_at": now, "last_checked_at": now}])  # fmt: skip
    yield store
    store.dispose()


def _requests(store: LabelStore) -> list[dict[str, object]]:
    rr = review_requests_table
    return store.fetch(sa.select(rr.c.item_id, rr.c.source, rr.c.action, rr.c.reason, rr.c.resolved_at).order_by(rr.c.id))


def test_a_flag_is_an_open_expert_review_request_that_the_adjudications_stage_queues(
    store: LabelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["item", "flag", IDS[0][:10], "--reason", "  the scan  is mirrored "]) == 0
    assert "flagged for expert review" in capsys.readouterr().out
    [row] = _requests(store)
    assert (row["item_id"], row["source"], row["action"]) == (IDS[0], MANUAL_SOURCE, EXPERT_REVIEW)
    assert str(row["reason"]).endswith(": the scan is mirrored") and row["resolved_at"] is None
    # What adjudications reads: the open request needs an expert, task or not.
    plan = plan_overlap_raises(open_review_requests(store, project_id=1), max_overlap=5)
    assert [r.item_id for r in plan.needs_expert] == [IDS[0]]
    # Flagging again adds nothing.
    assert main(["item", "flag", IDS[0], "--reason", "again"]) == 0
    assert "already flagged" in capsys.readouterr().out and len(_requests(store)) == 1


def test_an_item_is_named_by_its_id_a_prefix_its_source_path_or_its_uri(store: LabelStore) -> None:
    for name, item in (("/photos/b.png", IDS[1]), ("/data/raw/a.png", IDS[0]), (IDS[1][:6], IDS[1])):
        assert main(["item", "flag", name, "--reason", "r"]) == 0
        assert item in {r["item_id"] for r in _requests(store)}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["item", "flag", "0000000000", "--reason", "r"], "no item '0000000000' in the label store"),
        (["item", "flag", "/photos/nowhere.png", "--reason", "r"], "no item '/photos/nowhere.png'"),
        (["item", "flag", IDS[0]], "a flag needs a reason"),
        (["item", "flag", IDS[0], "--reason", "   "], "a flag needs a reason"),
        (["item", "flag", IDS[2], "--reason", "r"], "is quarantined (not_an_image): only active items go to review"),
        (["item", "flag"], "item flag needs an ITEM"),
    ],
)
def test_what_cannot_be_flagged_is_one_line_and_a_non_zero_exit_and_records_nothing(
    store: LabelStore, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and err[0].startswith("labeling-assets item:"), err
    assert _requests(store) == []


def test_an_item_an_expert_already_answered_is_refused(store: LabelStore, capsys: pytest.CaptureFixture[str]) -> None:
    with store.begin() as conn:
        conn.execute(adjudications_table.insert().values(
            item_id=IDS[0], label="cat", reviewer_id="9", ls_project_id=2, ls_annotation_id=1, content_hash="h",
            synced_at=utcnow()))  # fmt: skip
    assert main(["item", "flag", IDS[0], "--reason", "r"]) == 2
    assert "already has an expert answer ('cat')" in capsys.readouterr().err and _requests(store) == []


def test_unflag_resolves_the_open_flag_and_says_when_there_is_none(
    store: LabelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["item", "flag", IDS[0], "--reason", "r"]) == 0
    assert main(["item", "unflag", IDS[0]]) == 0
    assert "flag resolved" in capsys.readouterr().out
    assert [r["resolved_at"] is not None for r in _requests(store)] == [True]
    assert open_review_requests(store, project_id=1) == []
    assert main(["item", "unflag", IDS[0]]) == 0
    assert "has no open flag" in capsys.readouterr().out


def test_item_alone_still_prints_the_history_and_a_pasted_printout_is_a_usage_error(
    store: LabelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["item", IDS[0][:8]]) == 0
    assert IDS[0] in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["item", "item", IDS[0][:8]])
    assert refused.value.code == 2
