"""What a speech task shows in Label Studio: an audio item's stored copy through the local-files endpoint, as an
image is (``{"audio": url}``); a text_edits item its audio (or ""), its source sentence (or "") and the machine
output, in every task builder (queue, review, spot check); every other kind's task data as before."""

import json
from pathlib import Path

from labeling_assets.core.ingest.edits import edit_document
from labeling_assets.core.labelstudio.review import review_task
from labeling_assets.core.labelstudio.spot_check import spot_check_task
from labeling_assets.core.labelstudio.tasks import build_payloads, payload_leaks, task_data
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.core.store.spot_checks import spot_check_payloads
from labeling_assets.core.tasks import task_kind


def stored_edit(root: Path, row_id: str, machine: str, source: str | None, audio: tuple[str, str] | None) -> Path:
    path = root / "raw" / "ed" / f"ed{row_id}.edit.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(edit_document(row_id, machine, source, audio), encoding="utf-8")
    return path


def test_an_audio_item_is_its_local_files_url_under_the_key_its_config_reads(tmp_path: Path) -> None:
    uri = str(tmp_path / "raw" / "ab" / "abc.flac")
    assert task_data(uri, tmp_path, ("Audio", "audio")) == {"audio": "/data/local-files/?d=raw/ab/abc.flac"}


def test_a_text_edits_item_shows_its_audio_source_and_machine_output(tmp_path: Path) -> None:
    wav = tmp_path / "raw" / "cd" / "cde.wav"
    transcript = stored_edit(tmp_path, "1", "xin chao world", None, ("cde", str(wav)))
    translation = stored_edit(tmp_path, "2", "I eat rice", "Tôi ăn cơm", None)

    assert task_data(str(transcript), tmp_path, ("Audio", "audio")) == {
        "audio": "/data/local-files/?d=raw/cd/cde.wav", "source": "", "source_text": "", "machine": "xin chao world",
        "audio_header": "Listen: what was said", "source_header": ""}
    assert task_data(str(translation), tmp_path, ("Text", "source")) == {
        "audio": "", "source": "Tôi ăn cơm", "source_text": "Tôi ăn cơm", "machine": "I eat rice",
        "audio_header": "", "source_header": "Source sentence"}
    assert task_data(str(tmp_path / "gone.edit.json"), tmp_path, ("Audio", "audio")) == {
        "audio": "", "source": "", "source_text": "", "machine": "", "audio_header": "", "source_header": ""}  # an unreadable copy shows nothing, as an image without one


def test_every_task_builder_carries_the_edit_data_and_an_image_task_is_unchanged(tmp_path: Path) -> None:
    edit = stored_edit(tmp_path, "2", "I eat rice", "Tôi ăn cơm", None)
    image = tmp_path / "raw" / "ef" / "efg.png"
    kind = task_kind("single_label")  # any kind: the edit data comes from the stored copy itself
    queued, plain = build_payloads([{"item_id": "e2", "uri": str(edit)}, {"item_id": "efg", "uri": str(image)}], {},
                                   tmp_path, kind=kind)  # fmt: skip
    shown = {"audio": "", "source": "Tôi ăn cơm", "source_text": "Tôi ăn cơm", "machine": "I eat rice",
        "audio_header": "", "source_header": "Source sentence"}
    assert queued["data"] == {**shown, "item_id": "e2"}
    # a machine output that is already right equals the gold text: the item's own content, not a leak
    assert payload_leaks(queued, {"e2": "I eat rice"}) == []
    assert payload_leaks({"data": {**queued["data"], "hint": "I eat rice"}}, {"e2": "I eat rice"}) == [
        "gold label of e2 in data['hint']"]
    assert json.dumps(plain) == json.dumps({"data": {"image": "/data/local-files/?d=raw/ef/efg.png", "item_id": "efg"}})

    review = review_task("e2", "", [], reason="low confidence", data=shown)
    assert {k: review["data"][k] for k in (*shown, "item_id")} == {**shown, "item_id": "e2"}
    assert "image" not in review["data"]
    check = spot_check_task("e2", "", ls_annotation_id=7, labeler="ann", drawn=None, why="random", data=shown)
    assert {k: check["data"][k] for k in shown} == shown and "image" not in check["data"]
    assert review_task("i", "/u.png", [], reason="r")["data"]["image"] == "/u.png"  # without data: as before


def test_a_spot_check_of_an_edit_shows_the_edit(sqlite_store: LabelStore, tmp_path: Path) -> None:
    edit = stored_edit(tmp_path, "9", "hello wrld", None, None)
    with sqlite_store.begin() as conn:
        conn.execute(items_table.insert().values(item_id="e9", uri=str(edit), source_path="s/rows.jsonl#9",
                                                 format="EDIT", n_bytes=10, ingested_at=utcnow(), status="active"))  # fmt: skip
    row = {"item_id": "e9", "answer": "hello world", "draw": 0.01, "rate": 0.1, "reason": "random",
           "ls_annotation_id": 3, "labeler_id": "1"}  # fmt: skip
    [task] = spot_check_payloads(sqlite_store, [row], task_kind("single_label"), tmp_path)
    assert (task["data"]["machine"], task["data"]["audio"], task["data"]["item_id"]) == ("hello wrld", "", "e9")
