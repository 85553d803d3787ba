"""Entity spans of a text: the Label Studio config, a ``labels`` result read as stored spans, tokens and BIO tags.

A stored answer is a list of ``[start, end, type]`` (character offsets of the stored text, Python ``str`` indices,
end exclusive, sorted); ``[]`` is an explicit "no entity" answer, which the config offers as its own choice so that
it differs from a blank submit (nothing marked, nothing chosen: no answer). Label Studio checks little: a region
may hold offsets outside the text, a ``text`` that is not the stored slice, overlapping regions, a type the
project no longer has. Each such span is dropped with a counted reason and the rest of the answer kept; no shape
raises. Label Studio 1.23 counts offsets in code points, as Python does (its labeling page places a span at
Python's offsets after an emoji: ``tests/browser/test_text_spans_in_browser.py``); older versions counted
JavaScript's UTF-16 code units, which differ once a text holds a character outside the Basic Multilingual Plane,
so a region whose ``text`` does not match at its offsets is also tried at the UTF-16 reading.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from labeling_assets.core.labelstudio.config import control_tag

FROM_NAME = "label"  # the <Labels name> of the config
TO_NAME = "text"  # the <Text name>
DATA_KEY = "text"  # the task data key holding the text
NO_ENTITY_NAME = "no_entity"  # the <Choices name> of the explicit "no entity" answer
NO_ENTITY = "No entities"  # its one choice

# Why a result holds no answer at all (the answer-level reasons).
UNREADABLE_NULL = "result_null"
UNREADABLE_NOT_A_LIST = "result_not_a_list"
UNREADABLE_EMPTY = "result_empty"  # nothing marked and "no entity" not chosen: a blank submit
NO_ENTITY_WITH_SPANS = "no_entity_with_spans"  # "no entity" chosen and spans marked: which one is meant?
NO_VALID_SPAN = "no_valid_span"  # spans marked, every one of them dropped (the counts say why)

# Why one span of a result is dropped (keys of SpanReading.skipped).
SKIP_REGION = "region_not_an_object"
SKIP_TYPE = "unknown_result_type"  # a region of our Labels tag whose type is not "labels"
SKIP_VALUE = "value_not_an_object"
SKIP_OFFSETS = "offsets_not_integers"  # start/end missing, not integers, or start >= end
SKIP_OUTSIDE = "offset_outside_text"
SKIP_TEXT = "text_mismatch"  # the region's text is not the stored text's slice
SKIP_BLANK = "blank_span"  # only whitespace selected
SKIP_ONE_TYPE = "not_one_entity_type"  # value.labels missing, not a list of one string
SKIP_UNKNOWN = "unknown_entity_type"
SKIP_OVERLAP = "overlapping_span"  # overlaps an earlier span where the project forbids overlaps
SKIP_DUPLICATE = "duplicate_span"  # the same span twice
SPAN_SKIP_REASONS = (SKIP_REGION, SKIP_TYPE, SKIP_VALUE, SKIP_OFFSETS, SKIP_OUTSIDE, SKIP_TEXT, SKIP_BLANK,
                     SKIP_ONE_TYPE, SKIP_UNKNOWN, SKIP_OVERLAP, SKIP_DUPLICATE)  # fmt: skip
NOTES_KEPT = 5  # details of the first dropped spans (the counts hold them all)


class SpanConfigError(ValueError):
    """The entity-type list cannot become a label config (empty, blank or duplicate names)."""


@dataclass(frozen=True, order=True)
class Span:
    """One entity: ``text[start:end]`` (Python offsets, end exclusive) is of type ``label``."""

    start: int
    end: int
    label: str

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class SpanReading:
    """One result read: ``spans`` (``()`` is "no entity") or None with ``problem`` (an answer-level reason), and
    the spans dropped by reason (``skipped``) with the first few ``notes``."""

    spans: tuple[Span, ...] | None
    problem: str | None = None
    detail: str = ""
    skipped: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def validate_entity_types(entity_types: Sequence[str]) -> list[str]:
    """The entity types, checked: at least one, none blank, no duplicates (case-sensitive)."""
    names = [str(t) for t in entity_types]
    if not names:
        raise SpanConfigError("need at least one entity type")
    blank = [i for i, name in enumerate(names) if not name.strip()]
    if blank:
        raise SpanConfigError(f"entity types must not be blank (positions {blank})")
    dupes = sorted(name for name, n in Counter(names).items() if n > 1)
    if dupes:
        raise SpanConfigError(f"duplicate entity types: {dupes}")
    return names


def label_config(entity_types: Sequence[str]) -> str:
    """The span config: ``<Labels>`` over the entity types on a ``<Text>``, and the explicit "no entity" choice.
    Names are XML-escaped, so any type name round-trips through :func:`config_entity_types`."""
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in validate_entity_types(entity_types))
    return (
        "<View>\n"
        f'  <Labels name="{FROM_NAME}" toName="{TO_NAME}" showInline="true">\n'
        f"{labels}\n"
        "  </Labels>\n"
        f'  <Text name="{TO_NAME}" value="${DATA_KEY}"/>\n'
        f'  <Choices name="{NO_ENTITY_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
        f"    <Choice value={quoteattr(NO_ENTITY)}/>\n"
        "  </Choices>\n"
        "</View>"
    )


def config_entity_types(config: str) -> list[str] | None:
    """The entity types of a config's ``<Labels name="label">`` on a ``<Text>``; None when it has none (not a span
    config) or is not XML."""
    labels = control_tag(config, "Labels", on="Text")
    return None if labels is None else [str(label.get("value")) for label in labels.iter("Label")]


def _utf16_index(text: str) -> list[int] | None:
    """Python offset -> UTF-16 offset for every position of ``text`` (and its end); None when they are equal."""
    if all(ord(ch) <= 0xFFFF for ch in text):
        return None
    index = [0]
    for ch in text:
        index.append(index[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return index


def span_result(spans: Sequence[Span], text: str) -> list[dict[str, Any]]:
    """The ``result`` of an annotation or prediction marking ``spans`` of ``text`` (Python offsets, as Label
    Studio 1.23 counts them); no span is the "no entity" choice."""
    if not spans:
        return [{"from_name": NO_ENTITY_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [NO_ENTITY]}}]
    return [
        {
            "id": f"s{n}",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "labels",
            "value": {
                "start": span.start,
                "end": span.end,
                "text": text[span.start : span.end],
                "labels": [span.label],
            },
        }
        for n, span in enumerate(spans)
    ]


def _offsets(value: Mapping[str, Any], text: str, utf16: list[int] | None) -> tuple[int, int] | str:
    """The Python offsets of a region's value, or the skip reason."""
    start, end = value.get("start"), value.get("end")
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        return SKIP_OFFSETS
    if start >= end:
        return SKIP_OFFSETS
    said = value.get("text")
    candidates = [(start, end)]
    if utf16 is not None:  # an older Label Studio's UTF-16 offsets, mapped back to Python's where they land on one
        back = {u: i for i, u in enumerate(utf16)}
        if start in back and end in back:
            candidates.append((back[start], back[end]))
    inside = [(s, e) for s, e in candidates if s >= 0 and e <= len(text)]
    if not inside:
        return SKIP_OUTSIDE
    if not isinstance(said, str):
        return inside[0]  # no text to check against (a prediction may omit it): read as Label Studio 1.23 counts
    for s, e in inside:
        if text[s:e] == said:
            return s, e
    # Label Studio has been seen to give a region's text with runs of spaces collapsed while its offsets are right
    # (label-studio issue 3078): the same words at the offsets is a match
    for s, e in inside:
        if text[s:e].split() == said.split():
            return s, e
    return SKIP_TEXT


def _trimmed(start: int, end: int, text: str) -> tuple[int, int]:
    """The span without the whitespace a double-click selection often takes along."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def read_spans(
    result: Any, text: str, entity_types: Sequence[str], *, allow_overlap: bool = False
) -> SpanReading:
    """The spans an annotation ``result`` of any shape marks in ``text`` (the stored text), checked against it.

    Regions of other tags are not ours and are ignored (the "no entity" choice excepted). A bad span is dropped
    and counted by reason; where overlaps are forbidden the earlier span (by start, then the longer) is kept.
    """
    if result is None:
        return SpanReading(None, UNREADABLE_NULL, "the result is null")
    if not isinstance(result, list):
        return SpanReading(None, UNREADABLE_NOT_A_LIST, f"the result is a {type(result).__name__}, not a list")
    allowed = set(entity_types)
    utf16 = _utf16_index(text)
    skipped: Counter[str] = Counter()
    notes: list[str] = []
    kept: list[Span] = []
    no_entity = False

    def skip(reason: str, n: int, what: str) -> None:
        skipped[reason] += 1
        if len(notes) < NOTES_KEPT:
            notes.append(f"region {n}: {what}"[:200])

    for n, region in enumerate(result):
        if not isinstance(region, Mapping):
            skip(SKIP_REGION, n, f"a {type(region).__name__}, not an object")
            continue
        if region.get("from_name") == NO_ENTITY_NAME:
            value = region.get("value")
            no_entity = no_entity or (isinstance(value, Mapping) and NO_ENTITY in (value.get("choices") or ()))
            continue
        if region.get("from_name", FROM_NAME) != FROM_NAME:
            continue
        if region.get("type") != "labels":
            skip(SKIP_TYPE, n, f"type {str(region.get('type'))[:40]!r}, not 'labels'")
            continue
        value = region.get("value")
        if not isinstance(value, Mapping):
            skip(SKIP_VALUE, n, f"value is a {type(value).__name__}, not an object")
            continue
        where = _offsets(value, text, utf16)
        if isinstance(where, str):
            skip(where, n, f"start {value.get('start')!r}, end {value.get('end')!r}, text {str(value.get('text'))[:40]!r}")
            continue
        start, end = _trimmed(*where, text)
        if start == end:
            skip(SKIP_BLANK, n, "only whitespace selected")
            continue
        labels = value.get("labels")
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
            skip(SKIP_ONE_TYPE, n, f"labels {str(labels)[:60]}")
            continue
        if labels[0] not in allowed:
            skip(SKIP_UNKNOWN, n, f"type {labels[0][:40]!r} is not an entity type of the project")
            continue
        kept.append(Span(start, end, labels[0]))

    spans: list[Span] = []
    reach = 0  # the furthest end of the spans kept so far (sorted by start: a span overlaps one iff it starts before)
    for span in sorted(kept, key=lambda s: (s.start, -s.end, s.label)):
        if span in spans:
            skip(SKIP_DUPLICATE, -1, f"{span.start}-{span.end} {span.label} twice")
        elif not allow_overlap and span.start < reach:
            skip(SKIP_OVERLAP, -1, f"{span.start}-{span.end} {span.label} overlaps an earlier span")
        else:
            spans.append(span)
            reach = max(reach, span.end)
    counts, kept_notes = dict(skipped), tuple(notes)
    if no_entity and spans:
        return SpanReading(None, NO_ENTITY_WITH_SPANS, "'no entity' chosen together with spans", counts, kept_notes)
    if spans or no_entity:
        return SpanReading(tuple(sorted(spans)), None, "", counts, kept_notes)
    if skipped:
        return SpanReading(None, NO_VALID_SPAN, f"every marked span was dropped: {counts}", counts, kept_notes)
    return SpanReading(None, UNREADABLE_EMPTY, "nothing marked and 'no entity' not chosen")


def stored(spans: Sequence[Span]) -> list[list[Any]]:
    """Spans as the store keeps them: a sorted JSON list of ``[start, end, type]``."""
    return [[s.start, s.end, s.label] for s in sorted(spans)]


def from_stored(value: Any) -> tuple[Span, ...] | None:
    """A stored answer back as spans (None when it is not one: it is then no answer)."""
    if not isinstance(value, list):
        return None
    spans = []
    for entry in value:
        if not (isinstance(entry, list | tuple) and len(entry) == 3):
            return None
        start, end, label = entry
        if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str) and 0 <= start < end):
            return None
        spans.append(Span(start, end, label))
    return tuple(sorted(spans))


# Tokens: runs of word characters, or one other non-space character (punctuation stands alone).
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[tuple[int, int]]:
    """The tokens of ``text`` as ``(start, end)`` character offsets."""
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def token_range(span: Span, tokens: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """The tokens a span touches, as ``(first, last + 1)`` token indices; None when it touches none."""
    inside = [i for i, (s, e) in enumerate(tokens) if s < span.end and span.start < e]
    return (inside[0], inside[-1] + 1) if inside else None


def overlapping(spans: Sequence[Span]) -> bool:
    """Whether two of ``spans`` share a character."""
    reach = 0  # the furthest end so far (by start: a span overlaps an earlier one iff it starts before it)
    for span in sorted(spans):
        if span.start < reach:
            return True
        reach = max(reach, span.end)
    return False


def flat_spans(spans: Sequence[Span]) -> tuple[tuple[Span, ...], int]:
    """The spans no two of which overlap, by :func:`read_spans`' rule where overlaps are forbidden (the earlier,
    then the longer, stays), and how many were left out: what BIO tags and spaCy's ``doc.ents`` can hold."""
    kept: list[Span] = []
    reach = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end, s.label)):
        if span.start >= reach:
            kept.append(span)
            reach = span.end
    return tuple(sorted(kept)), len(spans) - len(kept)


def tag_names(types: Sequence[str]) -> list[str]:
    """The IOB2 tag names, ``O`` first, then ``B-`` and ``I-`` of each type in the project's order."""
    return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]


def bio_tags(spans: Sequence[Span], tokens: Sequence[tuple[int, int]]) -> list[str]:
    """IOB2 tags of the tokens: ``B-type`` on a span's first token, ``I-type`` on the rest, ``O`` outside (of two
    overlapping spans the earlier one tags a token)."""
    tags = ["O"] * len(tokens)
    for span in sorted(spans):
        where = token_range(span, tokens)
        if where is None or any(tag != "O" for tag in tags[where[0] : where[1]]):
            continue
        tags[where[0]] = f"B-{span.label}"
        for i in range(where[0] + 1, where[1]):
            tags[i] = f"I-{span.label}"
    return tags


def spans_from_bio(tags: Sequence[str], tokens: Sequence[tuple[int, int]]) -> list[Span]:
    """The spans of IOB2 tags (an ``I-`` that does not continue a span of its type starts one, as conlleval
    reads it), at the character offsets of their tokens."""
    spans: list[Span] = []
    open_at, open_type = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        kind, _, label = tag.partition("-")
        continues = kind == "I" and open_type == label
        if open_at >= 0 and not continues:
            spans.append(Span(tokens[open_at][0], tokens[i - 1][1], open_type))
            open_at, open_type = -1, ""
        if kind in ("B", "I") and not continues:
            open_at, open_type = i, label
    return spans
