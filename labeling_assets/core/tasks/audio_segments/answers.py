"""Audio segment answers: the Label Studio config (``<Audio>`` + ``<Labels>``), a result of any shape read as a
stored answer, a stored answer drawn back as a result, and stored answers read as regions.

A stored answer is a list of ``{"start": s, "end": s, "label": str}`` in seconds (3 decimals), sorted by start
(``[]``: no region). A Label Studio audio region is ``{"from_name": "label", "to_name": "audio", "type":
"labels", "value": {"start", "end", "channel", "labels": [one label]}}``; an empty result is "no region" (the
labeler submitted without marking any). A region of zero length (a click on the waveform, no drag) marks nothing
and is dropped, said in the answer's detail; anything else malformed in one of our regions makes the whole
result unreadable (the sync keeps it as given, with the reason), as a partial answer would count as a vote it is
not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast
from xml.sax.saxutils import quoteattr

from labeling_assets.core.consensus.votes import SKIP_UNKNOWN_CLASS
from labeling_assets.core.label_sets import SKIP_UNREADABLE
from labeling_assets.core.labelstudio.answers import (
    UNREADABLE_NOT_A_LIST,
    UNREADABLE_NULL,
    UNREADABLE_REGION,
    UNREADABLE_TYPE,
    UNREADABLE_VALUE,
    Answer,
    _bad,
)
from labeling_assets.core.labelstudio.config import control_tag
from labeling_assets.core.speech.regions import Region

FROM_NAME = "label"
TO_NAME = "audio"
DATA_KEY = "audio"
DECIMALS = 3
UNREADABLE_TIME = "region_time_not_a_number"  # a region's start or end is missing, not a number, or negative
UNREADABLE_LABELS = "region_labels_not_one"  # a region's labels is not a list of exactly one text
SKIP_NOT_REGIONS = "not_regions"  # a stored value that is not a list of {start, end, label}
AUDIO_VOTE_SKIPS = (SKIP_NOT_REGIONS, SKIP_UNKNOWN_CLASS, SKIP_UNREADABLE)


def label_config(classes: Sequence[str]) -> str:
    """``<Labels name="label">`` over the classes on an ``<Audio name="audio">``; names XML-escaped."""
    names = [str(c) for c in classes]
    if not names or len(set(names)) != len(names) or any(not n.strip() or any(ch.isspace() for ch in n) for n in names):
        raise ValueError(f"audio segment classes must be distinct, non-empty and without whitespace (RTTM's "
                         f"speaker field holds them): {names}")  # fmt: skip
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in names)
    return (
        "<View>\n"
        f'  <Labels name="{FROM_NAME}" toName="{TO_NAME}">\n'
        f"{labels}\n"
        "  </Labels>\n"
        f'  <Audio name="{TO_NAME}" value="${DATA_KEY}"/>\n'
        "</View>"
    )


def config_classes(config: str) -> list[str] | None:
    """The classes of a config's ``<Labels name="label">`` on an ``<Audio>``; None when it has none."""
    labels = control_tag(config, "Labels", on="Audio")
    return None if labels is None else [str(label.get("value")) for label in labels.iter("Label")]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def stored(regions: Sequence[Region]) -> list[dict[str, Any]]:
    """Regions as a stored answer: sorted, times to :data:`DECIMALS` decimals."""
    rows = sorted((round(r.start, DECIMALS), round(r.end, DECIMALS), r.label) for r in regions)
    return [{"start": s, "end": e, "label": label} for s, e, label in rows if e > s]


def read_result(result: Any) -> Answer:
    """The regions a result marks as a stored answer, or why it holds none (module docstring). Regions of other
    tags (an extra field's rating) are not ours and are left alone."""
    if result is None:
        return _bad(UNREADABLE_NULL, "the result is null")
    if not isinstance(result, list):
        return _bad(UNREADABLE_NOT_A_LIST, f"the result is a {type(result).__name__}, not a list")
    found: list[Region] = []
    dropped = 0
    for n, region in enumerate(result):
        if not isinstance(region, Mapping):
            return _bad(UNREADABLE_REGION, f"region {n} is a {type(region).__name__}, not an object")
        if region.get("from_name", FROM_NAME) != FROM_NAME:
            continue
        if region.get("type") != "labels":
            return _bad(UNREADABLE_TYPE, f"region {n} has type {str(region.get('type'))[:40]!r}, not 'labels'")
        value = region.get("value")
        if not isinstance(value, Mapping):
            return _bad(UNREADABLE_VALUE, f"region {n}'s value is a {type(value).__name__}, not an object")
        start, end = _number(value.get("start")), _number(value.get("end"))
        if start is None or end is None:
            return _bad(UNREADABLE_TIME, f"region {n}: start {value.get('start')!r} or end {value.get('end')!r} "
                                         "is not a number of seconds >= 0")  # fmt: skip
        labels = value.get("labels")
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            return _bad(UNREADABLE_LABELS, f"region {n}: labels {str(labels)[:60]} is not a list of one text")
        if round(end, DECIMALS) <= round(start, DECIMALS):
            dropped += 1
            continue
        found.append(Region(start, end, labels[0]))
    detail = f"dropped {dropped} region(s) of zero length" if dropped else ""
    return Answer(cast(Any, stored(found)), None, detail)


def answer_result(answer: Any) -> list[dict[str, Any]] | None:
    """A stored answer drawn as the labeler's result would draw it (``[]`` for no region); None for what is no
    region answer."""
    regions = from_stored(answer)
    if regions is None:
        return None
    return [{"id": f"r{n}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
             "value": {"start": r.start, "end": r.end, "channel": 0, "labels": [r.label]}}
            for n, r in enumerate(regions)]  # fmt: skip


def from_stored(value: Any) -> list[Region] | None:
    """The regions of a stored answer (``{start, end, label}`` rows; ``[start, end, label]`` triples are read too),
    sorted; None when it is not one (a time not a number >= 0, an end not after its start, a label not a text)."""
    if not isinstance(value, list | tuple):
        return None
    out = []
    for row in value:
        if isinstance(row, Mapping) and set(row) == {"start", "end", "label"}:
            start, end, label = row["start"], row["end"], row["label"]
        elif isinstance(row, list | tuple) and len(row) == 3:
            start, end, label = row
        else:
            return None
        s, e = _number(start), _number(end)
        if s is None or e is None or e <= s or not isinstance(label, str) or not label:
            return None
        out.append(Region(s, e, label))
    return sorted(out, key=lambda r: (r.start, r.end, r.label))


def answer_regions(value: Any, classes: Sequence[str]) -> tuple[list[Region] | None, str | None]:
    """(the regions of a stored answer, None) or (None, why it is no vote of the project)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, SKIP_UNREADABLE
    regions = from_stored(value)
    if regions is None:
        return None, SKIP_NOT_REGIONS
    if any(r.label not in {str(c) for c in classes} for r in regions):
        return None, SKIP_UNKNOWN_CLASS
    return regions, None


def parse_gold(text: str, classes: Sequence[str] | None) -> tuple[Any, str | None]:
    """A gold file's entry: JSON ``[{"start": s, "end": s, "label": ...}, ...]`` (``[]``: no region)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return text, f"not JSON ({exc.msg}): an audio segment answer is [{{\"start\": s, \"end\": s, \"label\": ...}}]"
    regions = from_stored(value)
    if regions is None:
        return value, "not a list of {start, end, label} with 0 <= start < end (seconds)"
    alien = sorted({r.label for r in regions} - {str(c) for c in classes}) if classes is not None else []
    if alien:
        return value, f"labels {', '.join(alien)} not among the project's classes"
    return stored(regions), None
