"""Text spans on the Label Studio side, pure (issue 31): the config a person marks spans in, and how what Label
Studio hands back becomes stored spans: character offsets of the stored text, checked against it, a bad span
dropped with a counted reason and never a crash, "no entity" distinct from a blank submit."""

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from labeling_assets.core.tasks.text_spans.spans import (
    NO_ENTITY,
    NO_ENTITY_NAME,
    NO_ENTITY_WITH_SPANS,
    NO_VALID_SPAN,
    SKIP_BLANK,
    SKIP_DUPLICATE,
    SKIP_OFFSETS,
    SKIP_ONE_TYPE,
    SKIP_OUTSIDE,
    SKIP_OVERLAP,
    SKIP_REGION,
    SKIP_TEXT,
    SKIP_TYPE,
    SKIP_UNKNOWN,
    SKIP_VALUE,
    UNREADABLE_EMPTY,
    UNREADABLE_NOT_A_LIST,
    UNREADABLE_NULL,
    Span,
    SpanConfigError,
    bio_tags,
    config_entity_types,
    from_stored,
    label_config,
    read_spans,
    span_result,
    spans_from_bio,
    stored,
    tokenize,
)

TYPES = ["PER", "ORG", "LOC"]
TEXT = "Ada Lovelace met Charles Babbage in London."
ADA, CHARLES, LONDON = Span(0, 12, "PER"), Span(17, 32, "PER"), Span(36, 42, "LOC")


def region(start: Any, end: Any, label: Any = "PER", text: Any = None, **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"start": start, "end": end, "labels": [label] if isinstance(label, str) else label}
    if text is not None:
        value["text"] = text
    return {"from_name": "label", "to_name": "text", "type": "labels", "value": value, **extra}


def read(result: Any, text: str = TEXT, **kw: Any) -> Any:
    return read_spans(result, text, TYPES, **kw)


# --- the config ---------------------------------------------------------------------------------------------


def test_the_config_offers_each_entity_type_on_the_text_and_an_explicit_no_entity_choice() -> None:
    root = ET.fromstring(label_config(TYPES))
    labels = root.find("Labels")
    assert labels is not None and labels.get("toName") == "text"
    assert [label.get("value") for label in labels.iter("Label")] == TYPES
    assert root.find("Text").get("value") == "$text"  # type: ignore[union-attr]
    choices = root.find("Choices")
    assert choices is not None and choices.get("name") == NO_ENTITY_NAME
    assert [c.get("value") for c in choices.iter("Choice")] == [NO_ENTITY]


def test_any_entity_type_name_round_trips_through_the_config() -> None:
    odd = ['Q"uote', "a<b", "x & y", "PER"]
    assert config_entity_types(label_config(odd)) == odd


def test_a_config_without_span_labels_on_a_text_is_not_a_span_config() -> None:
    assert config_entity_types('<View><Image name="image" value="$image"/></View>') is None
    assert config_entity_types("not xml") is None


@pytest.mark.parametrize("types", [[], ["PER", " "], ["PER", "PER"]])
def test_an_empty_blank_or_duplicated_type_list_is_refused(types: list[str]) -> None:
    with pytest.raises(SpanConfigError):
        label_config(types)


def test_one_entity_type_is_enough_for_spans() -> None:
    assert config_entity_types(label_config(["PER"])) == ["PER"]


# --- reading a result -----------------------------------------------------------------------------------------


def test_marked_spans_are_stored_as_sorted_character_offsets_of_the_stored_text() -> None:
    got = read([region(36, 42, "LOC", "London"), region(0, 12, "PER", "Ada Lovelace")])
    assert got.spans == (ADA, LONDON) and got.problem is None and dict(got.skipped) == {}
    assert stored(got.spans) == [[0, 12, "PER"], [36, 42, "LOC"]]
    assert from_stored(stored(got.spans)) == got.spans


def test_no_entity_is_an_answer_with_no_spans_and_a_blank_submit_is_no_answer() -> None:
    assert read(span_result([], TEXT)).spans == ()
    blank = read([])
    assert blank.spans is None and blank.problem == UNREADABLE_EMPTY
    assert from_stored([]) == () and from_stored(None) is None


def test_no_entity_chosen_together_with_spans_is_no_answer() -> None:
    assert read([*span_result([], TEXT), region(0, 12, "PER", "Ada Lovelace")]).problem == NO_ENTITY_WITH_SPANS


@pytest.mark.parametrize(
    ("result", "problem"), [(None, UNREADABLE_NULL), ({"start": 0}, UNREADABLE_NOT_A_LIST), ("x", UNREADABLE_NOT_A_LIST)]
)
def test_a_result_that_is_not_a_list_of_regions_is_no_answer(result: Any, problem: str) -> None:
    assert read(result).spans is None and read(result).problem == problem


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (region(36, 99, "LOC", "London."), SKIP_OUTSIDE),
        (region(-1, 3, "PER"), SKIP_OUTSIDE),
        (region(17, 32, "PER", "Charles Babbagx"), SKIP_TEXT),
        (region(17, 32, "NORP", "Charles Babbage"), SKIP_UNKNOWN),
        (region(17, 32, ["PER", "ORG"], "Charles Babbage"), SKIP_ONE_TYPE),
        (region(17, 32, [], "Charles Babbage"), SKIP_ONE_TYPE),
        (region("17", 32, "PER"), SKIP_OFFSETS),
        (region(True, 32, "PER"), SKIP_OFFSETS),
        (region(32, 17, "PER"), SKIP_OFFSETS),
        (region(12, 13, "PER", " "), SKIP_BLANK),
        ({"from_name": "label", "type": "labels", "value": "Charles"}, SKIP_VALUE),
        ({"from_name": "label", "type": "rectanglelabels", "value": {}}, SKIP_TYPE),
        ("Charles", SKIP_REGION),
    ],
)
def test_a_bad_span_is_dropped_with_its_reason_and_the_rest_of_the_answer_kept(bad: Any, reason: str) -> None:
    got = read([region(0, 12, "PER", "Ada Lovelace"), bad])
    assert got.spans == (ADA,) and got.problem is None
    assert dict(got.skipped) == {reason: 1} and len(got.notes) == 1


def test_an_answer_whose_every_span_is_bad_is_no_answer_and_says_why() -> None:
    got = read([region(0, 99, "PER"), region(0, 12, "NORP", "Ada Lovelace")])
    assert got.spans is None and got.problem == NO_VALID_SPAN
    assert dict(got.skipped) == {SKIP_OUTSIDE: 1, SKIP_UNKNOWN: 1}


def test_overlapping_spans_keep_the_earlier_longer_one_where_the_project_forbids_overlaps() -> None:
    result = [region(17, 24, "PER", "Charles"), region(17, 32, "PER", "Charles Babbage"), region(25, 42, "ORG")]
    forbidden = read(result)
    assert forbidden.spans == (CHARLES,) and dict(forbidden.skipped) == {SKIP_OVERLAP: 2}
    allowed = read(result, allow_overlap=True)
    assert allowed.spans == (Span(17, 24, "PER"), CHARLES, Span(25, 42, "ORG")) and dict(allowed.skipped) == {}


def test_the_same_span_twice_is_kept_once_and_counted() -> None:
    got = read([region(0, 12, "PER", "Ada Lovelace")] * 2, allow_overlap=True)
    assert got.spans == (ADA,) and dict(got.skipped) == {SKIP_DUPLICATE: 1}


def test_a_region_text_with_runs_of_spaces_collapsed_matches_the_same_words_at_its_offsets() -> None:
    text = "Text: Berlin,  Germany."
    assert read([region(6, 22, "LOC", "Berlin, Germany")], text).spans == (Span(6, 22, "LOC"),)
    assert dict(read([region(6, 22, "LOC", "Berlin Germany")], text).skipped) == {SKIP_TEXT: 1}


def test_whitespace_a_selection_took_along_is_trimmed() -> None:
    assert read([region(16, 33, "PER", " Charles Babbage ")]).spans == (CHARLES,)


def test_regions_of_other_tags_are_not_spans() -> None:
    other = {"from_name": "sentiment", "type": "choices", "value": {"choices": ["positive"]}}
    assert read([other, region(0, 12, "PER", "Ada Lovelace")]).spans == (ADA,)


def test_a_region_without_text_is_checked_only_against_the_text_length() -> None:
    assert read([region(0, 12, "PER")]).spans == (ADA,)


def test_offsets_after_an_emoji_are_python_offsets_as_label_studio_counts_them() -> None:
    text = "🎉 Ada Lovelace met Charles Babbage."
    ada, charles = Span(2, 14, "PER"), Span(19, 34, "PER")
    assert text[ada.start : ada.end] == "Ada Lovelace" and text[charles.start : charles.end] == "Charles Babbage"
    result = span_result([ada, charles], text)
    assert [r["value"]["start"] for r in result] == [2, 19]
    assert read(result, text).spans == (ada, charles)
    assert read([region(2, 14, "PER")], text).spans == (ada,)  # no text to check: read as given


def test_an_older_label_studios_utf16_offsets_are_read_where_the_regions_text_says_so() -> None:
    text = "🎉 Ada Lovelace met Charles Babbage."
    # JavaScript counts the emoji as two code units: every later offset is one more
    assert read([region(3, 15, "PER", "Ada Lovelace"), region(20, 35, "PER", "Charles Babbage")], text).spans == (
        Span(2, 14, "PER"), Span(19, 34, "PER"))  # fmt: skip


def test_a_stored_value_that_is_not_a_list_of_offsets_and_a_type_is_no_answer() -> None:
    for bad in ([[0, 12]], [[5, 2, "PER"]], [["0", 12, "PER"]], "PER", [{"start": 0}]):
        assert from_stored(bad) is None


# --- tokens and BIO tags -----------------------------------------------------------------------------------------


def test_tokens_are_words_and_single_punctuation_marks_with_their_offsets() -> None:
    text = "Acme Corp., Paris"
    assert [text[s:e] for s, e in tokenize(text)] == ["Acme", "Corp", ".", ",", "Paris"]


def test_spans_become_iob2_tags_and_back() -> None:
    tokens = tokenize(TEXT)
    tags = bio_tags([ADA, CHARLES, LONDON], tokens)
    assert tags == ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]
    assert spans_from_bio(tags, tokens) == [ADA, CHARLES, LONDON]


def test_an_i_tag_that_continues_nothing_starts_a_span_as_conlleval_reads_it() -> None:
    tokens = tokenize(TEXT)
    assert spans_from_bio(["I-PER", "I-PER", "O", "O", "I-LOC", "O", "O", "O"], tokens) == [ADA, Span(25, 32, "LOC")]
    # a type change inside a run starts a new span
    assert spans_from_bio(["B-PER", "I-ORG", "O", "O", "O", "O", "O", "O"], tokens) == [
        Span(0, 3, "PER"), Span(4, 12, "ORG")]  # fmt: skip


def test_a_span_cut_mid_word_tags_the_whole_word() -> None:
    tokens = tokenize(TEXT)
    assert bio_tags([Span(2, 6, "PER")], tokens)[:2] == ["B-PER", "I-PER"]
