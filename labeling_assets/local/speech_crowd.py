"""Submit a simulated speech crowd's answers to a real Label Studio (``labeling-assets demo --task speech``, tests).

Segments: :class:`~labeling_assets.core.speech.crowd.SegmentLabeler` marks each utterance's true regions with its
habits (a boundary offset, jitter, missed switches and regions, false regions; a spammer marks random ones). Edits:
:class:`~labeling_assets.core.speech.crowd.TextLabeler` corrects the machine transcript or translation (a careful one
fixes most errors, a lazy one submits the machine output unchanged, a spammer shuffles it). Each answer is stored
as the kind stores one and posted as its labeler (``completed_by``), drawn as a Label Studio result by the kind's
``answer_result``, the same drawing the review task uses, so the annotation sync reads back what was planned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labeling_assets.core.speech.crowd import (
    SegmentLabeler,
    TextLabeler,
    careful_text_labeler,
    good_segment_labeler,
)
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import ItemMedia
from labeling_assets.local.crowd_posts import CrowdPosts, answered, post_answers
from labeling_assets.resources.labelstudio import LabelStudioClient

SEGMENTS, EDITS = "audio_segments", "text_edits"
SEGMENT_ROLES = ("good", "good", "late", "switch_misser", "spammer", "good")
TEXT_ROLES = ("careful", "careful", "lazy", "careful", "spammer", "lazy")
MEDIAN_LEAD_S = {SEGMENTS: 40.0, EDITS: 25.0}


@dataclass(frozen=True)
class SpeechAnswer:
    item_id: str
    labeler: str
    answer: Any  # audio_segments: [{"start", "end", "label"}, ...]; text_edits: the corrected text
    lead_time_s: float


SpeechCrowdResult = CrowdPosts[SpeechAnswer]


@dataclass(frozen=True)
class SegmentTruth:
    regions: tuple[Region, ...]
    duration: float  # seconds


@dataclass(frozen=True)
class EditTruth:
    text: str  # the true transcript or translation
    machine: str  # what the labeler is shown to correct


def segment_crowd(n: int, *, prefix: str = "sim", seed: int = 0) -> list[SegmentLabeler]:
    """``n`` segment labelers cycling good, good, late (starts and ends 0.12-0.15 s late, wide jitter), a switch
    misser (marks half the language switches as one region), a spammer, good."""
    rng = np.random.default_rng(seed)
    crowd = []
    for i in range(n):
        role = SEGMENT_ROLES[i % len(SEGMENT_ROLES)]
        name = f"{prefix}_{i:02d}_{role}"
        if role == "good":
            crowd.append(good_segment_labeler(name, rng))
        elif role == "late":
            crowd.append(SegmentLabeler(name, start_offset=0.12, end_offset=0.15, jitter=0.07))
        elif role == "switch_misser":
            crowd.append(SegmentLabeler(name, miss_switch=0.5, jitter=0.05))
        else:
            crowd.append(SegmentLabeler(name, spammer=True))
    return crowd


def text_crowd(n: int, *, prefix: str = "sim", seed: int = 0) -> list[TextLabeler]:
    """``n`` text labelers cycling careful, careful, lazy (submits the machine output unchanged), careful, a
    spammer (the machine's words shuffled, 30% dropped), lazy."""
    rng = np.random.default_rng(seed)
    crowd = []
    for i in range(n):
        role = TEXT_ROLES[i % len(TEXT_ROLES)]
        name = f"{prefix}_{i:02d}_{role}"
        if role == "careful":
            crowd.append(careful_text_labeler(name, rng))
        else:
            crowd.append(TextLabeler(name, lazy=role == "lazy", spammer=role == "spammer"))
    return crowd


def plan_answers(
    truth: Mapping[str, SegmentTruth | EditTruth], crowd: Sequence[SegmentLabeler | TextLabeler], *,
    labels: Sequence[str] = (), overlap: int = 3, seed: int = 0, already_done: Mapping[str, set[str]] | None = None,
) -> list[SpeechAnswer]:  # fmt: skip
    """Each item's answers from ``overlap`` labelers in all (those who answered it already count: a second plan
    only tops up), in item order; the same seed gives the same answers."""
    rng = np.random.default_rng(seed)
    done = already_done or {}
    out = []
    for item in sorted(truth):
        have = done.get(item, set())
        free = [m for m in crowd if m.name not in have]
        need = min(max(overlap - len(have), 0), len(free))
        for k in sorted(rng.choice(len(free), size=need, replace=False)) if need else []:
            member, one = free[int(k)], truth[item]
            lead = float(rng.lognormal(np.log(MEDIAN_LEAD_S[EDITS if isinstance(one, EditTruth) else SEGMENTS]), 0.4))
            out.append(SpeechAnswer(item, member.name, _answer(member, one, labels, rng), round(lead, 3)))
    return out


def _answer(member: SegmentLabeler | TextLabeler, truth: SegmentTruth | EditTruth, labels: Sequence[str],
            rng: np.random.Generator) -> Any:  # fmt: skip
    if isinstance(truth, SegmentTruth):
        assert isinstance(member, SegmentLabeler)
        regions = member.mark(truth.regions, truth.duration, labels, rng)
        return [{"start": round(r.start, 3), "end": round(r.end, 3), "label": r.label} for r in regions]
    assert isinstance(member, TextLabeler)
    return " ".join(member.correct(truth.text.split(), truth.machine.split(), rng))


def simulate_speech_crowd(
    client: LabelStudioClient, project_id: int, task_type: str, crowd: Sequence[SegmentLabeler | TextLabeler], *,
    truth: Mapping[str, SegmentTruth | EditTruth], labels: Sequence[str] = (), overlap: int = 3, seed: int = 0,
    progress: Callable[[int, int], None] | None = None, workers: int = 4,
) -> SpeechCrowdResult:  # fmt: skip
    """Create the crowd's users (idempotent) and post their answers to the tasks of ``truth``'s items (item_id ->
    its truth; items without a task are skipped) in a project of ``task_type`` (``audio_segments`` with the
    region ``labels``, or ``text_edits``); answers already there count towards ``overlap``."""
    kind = task_kind(task_type)
    user_ids = client.ensure_users([m.name for m in crowd])
    name_of = {uid: name for name, uid in user_ids.items()}
    tasks = {str(t["data"]["item_id"]): t for t in client.iter_tasks(project_id) if (t.get("data") or {}).get("item_id")}
    done = {item: {name_of[u] for u in users if u in name_of} for item, users in answered(client, project_id).items()}
    wanted = {item: one for item, one in truth.items() if item in tasks}
    plan = plan_answers(wanted, crowd, labels=labels, overlap=overlap, seed=seed, already_done=done)
    result = SpeechCrowdResult(user_ids=user_ids, skipped_items=len(truth) - len(wanted))

    def result_of(one: SpeechAnswer) -> list[dict[str, Any]]:
        drawn = kind.answer_result(one.answer, ItemMedia())
        if drawn is None:  # a plan the kind cannot draw is a bug of the crowd, not an answer to post
            raise ValueError(f"{task_type} cannot draw the planned answer {one.answer!r} of item {one.item_id}")
        return drawn

    post_answers(client, plan, result, {item: int(t["id"]) for item, t in tasks.items()}, result_of,
                 progress=progress, workers=workers)  # fmt: skip
    return result
