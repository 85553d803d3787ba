"""Texts as items (issue 31): .txt files and JSONL/CSV rows read into normalised texts with a content hash; the same
text twice is one item; bad input refused with a reason, and nothing lost unseen."""

import csv
import json
import unicodedata

import pytest

from labeling_assets.core.ingest.text import (
    BINARY,
    DUPLICATE_ID,
    EMPTY_TEXT,
    MISSING_COLUMN,
    NO_ID,
    NO_TEXT,
    NOT_JSON,
    NOT_UTF8,
    TEXT_TOO_LARGE,
    Refused,
    TextItem,
    normalize_text,
    read_csv,
    read_jsonl,
    read_text_file,
    text_item_id,
)


def test_the_same_text_in_another_unicode_form_or_line_end_style_is_the_same_item() -> None:
    composed, decomposed = "Café\nnoir", unicodedata.normalize("NFD", "Café") + "\r\nnoir"
    assert composed != decomposed and normalize_text(decomposed) == composed
    assert text_item_id(normalize_text(decomposed)) == text_item_id(normalize_text(composed))
    assert normalize_text("\ufeffold\rmac") == "old\nmac"


def test_a_txt_file_is_one_item_named_by_its_file() -> None:
    item = read_text_file("news/a.txt", b"Ada Lovelace met Charles Babbage.\r\n")
    assert isinstance(item, TextItem)
    assert item.text == "Ada Lovelace met Charles Babbage.\n" and item.source_id == "a.txt"
    assert item.item_id == text_item_id(item.text) and len(item.item_id) == 64


@pytest.mark.parametrize(
    ("data", "reason", "detail"),
    [
        (b"caf\xe9 au lait", NOT_UTF8, "invalid UTF-8 at byte 3"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", BINARY, ""),
        (b"text\x00with a NUL", BINARY, "binary"),
        (bytes(range(1, 32)) * 4, BINARY, "control characters"),
        (b"  \n\t \r\n", EMPTY_TEXT, "empty"),
        (b"", EMPTY_TEXT, ""),
        (b"x" * 100_001, TEXT_TOO_LARGE, "over the limit of 100000 bytes"),
    ],
)
def test_a_txt_file_that_is_not_text_is_refused_with_its_reason(data: bytes, reason: str, detail: str) -> None:
    got = read_text_file("bad.txt", data)
    assert isinstance(got, Refused) and (got.source, got.row, got.reason) == ("bad.txt", 0, reason)
    assert detail in got.detail


def test_the_size_limit_is_a_setting() -> None:
    assert isinstance(read_text_file("a.txt", b"x" * 50, max_bytes=40), Refused)
    assert isinstance(read_text_file("a.txt", b"x" * 50, max_bytes=50), TextItem)


def _jsonl(*rows: object) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def test_jsonl_rows_become_items_and_bad_rows_are_refused_with_their_line() -> None:
    data = _jsonl(
        {"id": "1", "body": "Ada Lovelace met Charles Babbage."},
        "",
        "{not json",
        ["a", "list"],
        {"body": "no id here"},
        {"id": "1", "body": "the same id again"},
        {"id": 2, "body": None},
        {"id": "3", "body": "   "},
        {"id": "4", "body": "Ada Lovelace met Charles Babbage."},  # the same text as row 1: one item
        {"id": "5", "body": "Grace Hopper joined the Navy."},
    )
    batch = read_jsonl("texts.jsonl", data, "id", "body")
    assert [(i.source_id, i.text) for i in batch.items] == [
        ("1", "Ada Lovelace met Charles Babbage."), ("5", "Grace Hopper joined the Navy.")]  # fmt: skip
    assert batch.repeats == 1
    assert [(r.row, r.reason) for r in batch.refused] == [
        (3, NOT_JSON), (4, NOT_JSON), (5, NO_ID), (6, DUPLICATE_ID), (7, NO_TEXT), (8, EMPTY_TEXT)]  # fmt: skip
    # nothing lost unseen: every non-blank line is an item, a repeat or a refusal
    assert len(batch.items) + batch.repeats + len(batch.refused) == 9


def test_a_jsonl_file_that_is_not_utf8_is_refused_whole() -> None:
    batch = read_jsonl("x.jsonl", b'{"id": "1", "text": "caf\xe9"}', "id", "text")
    assert batch.items == [] and [(r.row, r.reason) for r in batch.refused] == [(0, NOT_UTF8)]


def _csv(rows: list[list[str]]) -> bytes:
    import io

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def test_csv_rows_become_items_and_a_text_may_span_lines() -> None:
    data = _csv([["doc", "content"], ["a", "Line one\nline two"], ["", "no id"], ["a", "dup"], ["b", "Third."]])
    batch = read_csv("t.csv", data, "doc", "content")
    assert [(i.source_id, i.text) for i in batch.items] == [("a", "Line one\nline two"), ("b", "Third.")]
    assert [(r.row, r.reason) for r in batch.refused] == [(2, NO_ID), (3, DUPLICATE_ID)]


def test_a_csv_without_the_named_columns_is_refused_whole_and_says_which_columns_it_has() -> None:
    batch = read_csv("t.csv", _csv([["id", "body"], ["a", "text"]]), "id", "text")
    assert batch.items == [] and batch.refused[0].reason == MISSING_COLUMN and "'body'" in batch.refused[0].detail


def test_a_csv_text_longer_than_the_csv_modules_field_limit_is_checked_and_the_rows_after_it_are_read() -> None:
    limit = csv.field_size_limit()
    long_text = "x" * (limit + 10)
    data = _csv([["id", "text"], ["long", long_text], ["after", "still read"]])
    refused = read_csv("t.csv", data, "id", "text")
    assert [(r.row, r.reason) for r in refused.refused] == [(1, TEXT_TOO_LARGE)]
    assert [i.source_id for i in refused.items] == ["after"]
    taken = read_csv("t.csv", data, "id", "text", max_bytes=limit + 10)
    assert [i.source_id for i in taken.items] == ["long", "after"]
    assert csv.field_size_limit() == limit  # the process-wide limit is put back
