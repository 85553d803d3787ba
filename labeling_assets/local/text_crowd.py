"""Submit a simulated text crowd's answers to a real Label Studio (``labeling-assets demo --task text-classes`` and
``--task text-spans``, tests).

Classes: :func:`labeling_assets.core.labelstudio.crowd.plan_crowd` (per-labeler confusion: expert, average, noisy,
spammer), each answer posted as the ``<Choices>`` result about the ``<Text>``. Spans:
:func:`labeling_assets.core.tasks.text_spans.demo.simulate_span_crowd` (misses, boundaries one token short or long,
wrong types, false spans, a spammer), each answer posted as the ``labels`` regions the labeling UI sends
(:func:`.spans.span_result`: offsets and the slice's text; no span is the "no entity" choice). Every answer is posted
as its labeler (``completed_by``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.labelstudio.config import choice_result
from labeling_assets.core.labelstudio.crowd import LabelerSpec, plan_crowd
from labeling_assets.core.tasks.text_spans.demo import Sentence, SpanLabeler, simulate_span_crowd
from labeling_assets.core.tasks.text_spans.spans import Span, span_result
from labeling_assets.local.crowd_posts import CrowdPosts, answered, post_answers
from labeling_assets.resources.labelstudio import LabelStudioClient

Answer = str | tuple[Span, ...]  # a class name, or a labeler's spans


@dataclass(frozen=True)
class TextAnswer:
    item_id: str
    labeler: str
    answer: Answer
    lead_time_s: float


TextCrowdResult = CrowdPosts[TextAnswer]


def simulate_class_crowd(
    client: LabelStudioClient, project_id: int, crowd: Sequence[LabelerSpec], *, truth: Mapping[str, str],
    classes: Sequence[str], overlap: int = 3, seed: int = 0, progress: Callable[[int, int], None] | None = None,
    workers: int = 4,
) -> TextCrowdResult:  # fmt: skip
    """The class crowd answers the tasks of ``truth``'s items (item_id -> true class); a second run tops up."""
    user_ids, task_of, done = _prepare(client, project_id, [m.name for m in crowd])
    wanted = {item: label for item, label in truth.items() if item in task_of}
    plan = plan_crowd(wanted, crowd, classes, overlap=overlap, seed=seed, already_done=done)
    answers = [TextAnswer(str(a.item_id), a.labeler, a.label, a.lead_time_s) for a in plan.annotations]
    result = TextCrowdResult(user_ids=user_ids, skipped_items=len(truth) - len(wanted))
    _post(client, answers, task_of, {}, result, progress, workers)
    return result


def simulate_text_span_crowd(
    client: LabelStudioClient, project_id: int, crowd: Sequence[SpanLabeler], *, truth: Sequence[Sentence],
    overlap: int = 3, seed: int = 0, progress: Callable[[int, int], None] | None = None, workers: int = 4,
    median_lead_time_s: float = 20.0,
) -> TextCrowdResult:  # fmt: skip
    """The span crowd answers the tasks of ``truth``'s sentences (item ids: the ingest's); a sentence the crowd
    has answered already is left as it is, so a second run posts nothing new."""
    user_ids, task_of, done = _prepare(client, project_id, [m.name for m in crowd])
    wanted = [s for s in truth if s.item_id in task_of and not done.get(s.item_id)]
    votes = simulate_span_crowd(wanted, crowd, overlap=min(overlap, len(crowd)), seed=seed)
    texts = {s.item_id: s.text for s in wanted}
    answers = [TextAnswer(v.item_id, v.labeler_id, v.spans, median_lead_time_s) for v in votes]
    result = TextCrowdResult(user_ids=user_ids, skipped_items=len(truth) - len(wanted))
    _post(client, answers, task_of, texts, result, progress, workers)
    return result


def _prepare(client: LabelStudioClient, project_id: int, names: list[str]) -> tuple[dict[str, int], dict[str, int], dict[str, set[str]]]:
    user_ids = client.ensure_users(names)
    name_of = {uid: name for name, uid in user_ids.items()}
    done = {item: {name_of[u] for u in users if u in name_of} for item, users in answered(client, project_id).items()}
    return user_ids, client.task_ids_by_item(project_id), done


def _post(
    client: LabelStudioClient, answers: Sequence[TextAnswer], task_of: Mapping[str, int], texts: Mapping[str, str],
    result: TextCrowdResult, progress: Callable[[int, int], None] | None, workers: int,
) -> None:  # fmt: skip
    def result_of(one: TextAnswer) -> list[dict[str, Any]]:
        if isinstance(one.answer, str):
            return choice_result(one.answer, to_name="text")
        return span_result(one.answer, texts[one.item_id])

    post_answers(client, answers, result, task_of, result_of, progress=progress, workers=workers)
