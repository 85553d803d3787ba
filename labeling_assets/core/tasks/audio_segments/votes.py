"""Audio segment answers as votes: each labeler's newest answer per item, kept when it is a region answer of the
project, else skipped and counted by reason; and the items' durations, which the frame views need.

An item's duration is its audio's (its header, ``core.ingest.audio.audio_seconds``, where the frame has a ``uri``);
where the audio cannot be read, the latest end any answer marks stands in: past it every labeler says "no
region", so the frame vote decides the same regions.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labeling_assets.core.consensus.votes import Votes, _newest_per_labeler
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.tasks.audio_segments.answers import answer_regions, stored


@dataclass(frozen=True)
class SegmentVote:
    """One labeler's answer on one item: its regions (``[]``: no region)."""

    item_id: str
    labeler_id: str
    regions: tuple[Region, ...]


def audio_votes(annotations: pd.DataFrame, classes: Sequence[str]) -> tuple[Votes, list[SegmentVote]]:
    """(the votes frame, ``label`` the stored answer; the kept votes as :class:`SegmentVote`, by item, labeler)."""
    frame = _newest_per_labeler(annotations)
    skipped: Counter[str] = Counter()
    examples: dict[str, list[Any]] = {}
    keep, found = [], []
    for item, labeler, value in zip(frame["item_id"], frame["labeler_id"], frame["label"], strict=True):
        regions, why = answer_regions(value, classes)
        keep.append(regions is not None)
        if regions is None:
            assert why is not None
            skipped[why] += 1
            if len(examples.setdefault(why, [])) < 5:
                examples[why].append(str(value)[:80])
        else:
            found.append(SegmentVote(str(item), str(labeler), tuple(regions)))
    if len(frame):
        frame = frame[keep]
        frame = frame.assign(label=pd.Series([stored(v.regions) for v in found], index=frame.index, dtype=object))
    frame = frame.sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
    found.sort(key=lambda v: (v.item_id, v.labeler_id))
    return Votes(frame, dict(skipped), examples), found


def by_item(votes: Sequence[SegmentVote]) -> dict[str, dict[str, list[Region]]]:
    """item -> labeler -> regions (a later vote of a labeler on an item replaces the earlier one)."""
    out: dict[str, dict[str, list[Region]]] = {}
    for vote in votes:
        out.setdefault(vote.item_id, {})[vote.labeler_id] = list(vote.regions)
    return out


def audio_duration(uri: str) -> float | None:
    """Seconds of audio at ``uri`` from its header (``core.ingest.audio.audio_seconds``: ingest measured it whole),
    None when it cannot be read."""
    from labeling_assets.core.ingest.audio import audio_seconds

    with contextlib.suppress(Exception):  # any decoder failure: the answers' extent stands in
        return audio_seconds(uri)
    return None


def item_durations(
    eligible: pd.DataFrame, items: Mapping[str, Mapping[str, Sequence[Region]]]
) -> dict[str, float]:
    """Each voted item's duration in seconds (module docstring); at least every region's end."""
    uris: dict[str, str] = {}
    if "uri" in eligible:
        for item, uri in zip(eligible["item_id"].astype(str), eligible["uri"], strict=True):
            if isinstance(uri, str) and uri:
                uris.setdefault(item, uri)
    out = {}
    for item, answers in items.items():
        extent = max((r.end for regions in answers.values() for r in regions), default=0.0)
        read = audio_duration(uris[item]) if item in uris else None
        out[item] = max(read or 0.0, extent, 0.01)
    return out
