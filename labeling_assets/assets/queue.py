"""Stage 3, queue: items pushed to Label Studio as tasks, most informative first, gold hidden among them."""

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import Field

from labeling_assets.constants import GROUP_QUEUE, OWNERS, QUEUE_POOL
from labeling_assets.core.consensus.retraction import DEFAULT_MAX_OVERLAP, TASK_GONE, TASK_MARKED, RequeuePlan
from labeling_assets.core.consensus.review_routing import (
    OpenRequest,
    OverlapPlan,
    overlap_drift,
    plan_overlap_raises,
)
from labeling_assets.core.display import md_text
from labeling_assets.core.labelstudio.blind import assign_blind, plan_blind_top_up
from labeling_assets.core.labelstudio.config import config_layout
from labeling_assets.core.labelstudio.tasks import (
    Candidate,
    PrelabelVisibility,
    QueuedItem,
    Strategy,
    awaiting_prelabel,
    build_payloads,
    payload_leaks,
    refreshed_predictions,
    select_queue,
    shown_model_version,
    visible_prelabels,
)
from labeling_assets.core.store.blind_tasks import blind_items, blind_open_requests, record_blind_top_up
from labeling_assets.core.store.consensus_versions import record_class_list
from labeling_assets.core.store.human_loop import labeler_ids_for, pause_intervals, paused_since
from labeling_assets.core.store.labelstudio_sync import (
    last_prelabel_at,
    link_tasks,
    linked_task_counts,
    linked_tasks,
    newest_prelabels,
    pending_tasks,
    queue_candidates,
    record_shown_versions,
    reserve_assigned_tasks,
    reserve_tasks,
    task_counts,
    thresholds_of,
)
from labeling_assets.core.store.queries import gold_labels, load_votes
from labeling_assets.core.store.reviews import (
    conflicts_to_mark,
    detect_conflicts,
    open_review_requests,
    raised_task_overlaps,
    record_conflict_outcome,
    record_overlap_raises,
)
from labeling_assets.core.store.schema import LabelStore, utcnow
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import TaskKind
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.requeue import requeue_lost_votes
from labeling_assets.resources.store import LabelStoreResource

IMPORT_BATCH = 1000
EXPERT_TABLE_ROWS = 20


class QueueConfig(dg.Config):
    max_new_tasks: int = 1000
    """How many new items to queue in this run."""
    gold_rate: float = 0.1
    """Fraction of the new tasks that are (hidden) gold items."""
    overlap: int = 3
    """Labelers per task (Label Studio maximum_annotations)."""
    strategy: Strategy = "uncertainty"
    """uncertainty | margin | entropy | random (random is the baseline every strategy must beat)."""
    seed: int = 0
    max_overlap: int = Field(
        default=DEFAULT_MAX_OVERLAP,
        ge=1,
        description="Cap on a task's overlap when open more_annotators review requests raise it (one per round); "
        "items still unsure at the cap are reported for expert review.",
    )
    blind_reassign_after_hours: float | None = Field(
        default=48.0,
        gt=0,
        description="Blind mode: an item whose task has waited this long in a labeler's own project without an "
        "answer goes to one more labeler (audited; the first labeler keeps the task, a late answer counts). None: "
        "never (a slow labeler's items then move only when they are paused or leave blind_labelers).",
    )
    prelabel_wait_minutes: float = Field(
        default=10.0,
        ge=0,
        description="Once a model pre-labels items, a new item without its pre-label yet waits up to this long for "
        "it (its pre-label run follows its ingest) instead of reaching labelers without the model's prediction; "
        "past it, the item is queued without one. 0: never wait.",
    )
    prelabel_visibility: PrelabelVisibility = Field(
        default="all",
        description="Which tasks show the model's pre-label: all | none | not_gold (pre-labels anchor answers; "
        "hiding them on gold keeps gold accuracy a measure of the labeler, not of the model).",
    )


@dg.asset(
    group_name=GROUP_QUEUE,
    kinds={"labelstudio", "sql"},
    owners=OWNERS,
    deps=["raw_images", "prelabels"],  # the items, ordered and pre-filled by their newest pre-labels
    pool=QUEUE_POOL,
)
def labeling_tasks(
    context: dg.AssetExecutionContext,
    config: QueueConfig,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Label Studio tasks, one per queued item (never two), ordered by prelabel uncertainty with gold interleaved."""
    store = label_store.get_store()
    client = label_studio.get_client()
    if label_studio.blind:  # one project per labeler (core/labelstudio/blind.py)
        return _queue_blind(context, config, store, client, label_studio, project)
    kind = task_kind(project.task_type)
    project_id = label_studio.ensure_project(
        classes=project.classes,
        overlap=config.overlap,
        label_config=kind.label_config(project.classes, project.allow_empty_set),
    )
    images_served = label_studio.serve_images(project_id, project.data_path / "raw", project.data_path)

    # Reserve first, push second, link last: a crash anywhere leaves reserved rows that the next run
    # links to tasks Label Studio already has instead of importing them again.
    candidates, waiting = _ready_candidates(store, project_id, config)
    queue = select_queue(
        candidates,
        limit=config.max_new_tasks,
        gold_rate=config.gold_rate,
        strategy=config.strategy,
        seed=config.seed,
        kind=kind,
    )
    reserved = reserve_tasks(store, project_id, queue, overlap=config.overlap)
    relinked = link_tasks(store, project_id, client.task_ids_by_item(project_id))
    followed = _follow_sources(context, store, client, project_id, project, config.max_overlap)
    pending = pending_tasks(store, project_id)
    pending_ids = [p["item_id"] for p in pending]
    shown = visible_prelabels(newest_prelabels(store, pending_ids), pending, config.prelabel_visibility)
    prefill = _prefill_thresholds(store, shown, kind)
    payloads = build_payloads(
        pending, shown, project.data_path, kind=kind, allow_empty=project.allow_empty_set, thresholds=prefill
    )
    leaks = payload_leaks(payloads, gold_labels(store, pending_ids).to_dict())
    if leaks:  # defense in depth: the builder cannot leak, but nothing leaves if it ever did
        raise RuntimeError(f"refusing to push tasks that leak gold: {leaks[:5]}")
    created = _push(context, client, project_id, payloads)
    linked = link_tasks(store, project_id, client.task_ids_by_item(project_id)) if payloads else 0
    reviewed = _act_on_review_requests(context, store, client, project_id, config.max_overlap)
    # Last: the tasks the review requests just put back in the label stream are open too (benchmarks/long_run.py).
    refreshed = _refresh_predictions(context, store, client, project_id, project, config.prelabel_visibility)
    return dg.MaterializeResult(
        metadata={
            "project_id": dg.MetadataValue.int(project_id),
            "project_url": dg.MetadataValue.url(f"{label_studio.resolved_url}/projects/{project_id}/data"),
            "images_served": dg.MetadataValue.text(images_served),
            **({"prefill_thresholds": dg.MetadataValue.json(prefill or "0.5 per class (no model thresholds)")}
               if kind.decision_thresholds else {}),  # fmt: skip
            **_queue_metadata(config, queue, payloads, reserved=reserved, pushed=created, linked=linked + relinked),
            "awaiting_prelabel": dg.MetadataValue.int(waiting),
            **_tasks_total_metadata(linked_task_counts(store, project_id)),
            **reviewed,
            **followed,
            **refreshed,
        }
    )


def _refresh_predictions(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    client: LabelStudioClient,
    project_id: int,
    project: ProjectSettings,
    visibility: PrelabelVisibility,
) -> dict[str, dg.MetadataValue]:
    """Open tasks show their item's newest pre-label: after the champion changes (prelabel_job re-labels every
    item with it), each open task gets that model version's prediction (Label Studio keeps the older ones as
    other versions) and the project pre-fills from it. Finished tasks are left as they were answered."""
    kind = task_kind(project.task_type)
    open_ids = client.open_task_ids(project_id)
    rows = [r for r in linked_tasks(store, project_id) if r["ls_task_id"] in open_ids]
    shown = visible_prelabels(newest_prelabels(store, [r["item_id"] for r in rows]), rows, visibility)
    predictions = refreshed_predictions(rows, shown, kind=kind, allow_empty=project.allow_empty_set,
                                        thresholds=_prefill_thresholds(store, shown, kind))  # fmt: skip
    client.import_predictions(project_id, predictions)
    by_task = {int(p["task"]): str(p["model_version"]) for p in predictions}
    record_shown_versions(store, {r["id"]: by_task[r["ls_task_id"]] for r in rows if r["ls_task_id"] in by_task})
    versions = Counter(shown[r["item_id"]][1] for r in rows if r["item_id"] in shown)
    current = max(sorted(versions), key=versions.__getitem__) if versions else None
    if current is not None and predictions:
        client.show_predictions_of(project_id, current)
    if predictions:
        context.log.info(f"attached {len(predictions)} predictions of {sorted(set(by_task.values()))} to open tasks")
    return {
        "open_tasks": dg.MetadataValue.int(len(rows)),
        "open_tasks_with_current_prelabel": dg.MetadataValue.int(sum(versions.values())),
        "predictions_refreshed": dg.MetadataValue.int(len(predictions)),
        "prelabel_model_shown": dg.MetadataValue.text(current or ""),
    }


def _queue_blind(
    context: dg.AssetExecutionContext,
    config: QueueConfig,
    store: LabelStore,
    client: LabelStudioClient,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Blind mode: each selected item goes to ``config.overlap`` labelers' own projects (the least loaded first),
    one task per project, reserved in one transaction, then pushed and linked per project as in the shared mode."""
    kind = task_kind(project.task_type)
    projects = label_studio.ensure_blind_projects(
        classes=project.classes, label_config=kind.label_config(project.classes, project.allow_empty_set)
    )
    for project_id in projects.values():
        label_studio.serve_images(project_id, project.data_path / "raw", project.data_path)
    ids = list(projects.values())
    # Per labeler project: the class list reaches its label config, a superseded item's task is marked.
    followed = [_follow_sources(context, store, client, pid, project, config.max_overlap, requeue=False) for pid in ids]
    topped_up, review_plan = _blind_top_up(store, client, projects, project, config)
    candidates, waiting = _ready_candidates(store, ids, config)
    queue = select_queue(candidates, limit=config.max_new_tasks, gold_rate=config.gold_rate,
                         strategy=config.strategy, seed=config.seed, kind=kind)  # fmt: skip
    load = task_counts(store, ids)
    plan = assign_blind([q.item_id for q in queue], list(projects), config.overlap,
                        {name: load.get(pid, 0) for name, pid in projects.items()})  # fmt: skip
    by_item = {q.item_id: q for q in queue}
    reserved = reserve_assigned_tasks(store, {projects[n]: [by_item[i] for i in items] for n, items in plan.items()})
    pushed, linked, per_labeler = 0, 0, dict[str, int]()
    for name, project_id in projects.items():
        linked += link_tasks(store, project_id, client.task_ids_by_item(project_id))
        pending = pending_tasks(store, project_id)
        shown = visible_prelabels(newest_prelabels(store, [p["item_id"] for p in pending]), pending,
                                  config.prelabel_visibility)  # fmt: skip
        payloads = build_payloads(pending, shown, project.data_path, kind=kind,
                                  allow_empty=project.allow_empty_set, thresholds=_prefill_thresholds(store, shown, kind))  # fmt: skip
        leaks = payload_leaks(payloads, gold_labels(store, [p["item_id"] for p in pending]).to_dict())
        if leaks:
            raise RuntimeError(f"refusing to push tasks that leak gold: {leaks[:5]}")
        pushed += _push(context, client, project_id, payloads)
        linked += link_tasks(store, project_id, client.task_ids_by_item(project_id)) if payloads else 0
        per_labeler[name] = sum(linked_task_counts(store, project_id).values())
    # Each labeler's open tasks show their item's newest pre-label, as in the shared project (issue 26).
    refreshed = [_refresh_predictions(context, store, client, pid, project, config.prelabel_visibility) for pid in ids]
    context.log.info(f"blind mode: {len(queue)} items to {config.overlap} of {len(projects)} labelers' projects, "
                     f"{topped_up} sent to one more labeler; {pushed} tasks pushed")  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "blind_labeling": dg.MetadataValue.bool(True),
            "blind_projects": dg.MetadataValue.json({name: pid for name, pid in projects.items()}),
            "tasks_per_labeler": dg.MetadataValue.json(per_labeler),
            "selected": dg.MetadataValue.int(len(queue)),
            "awaiting_prelabel": dg.MetadataValue.int(waiting),
            "reserved": dg.MetadataValue.int(reserved),
            "pushed": dg.MetadataValue.int(pushed),
            "linked": dg.MetadataValue.int(linked),
            "new_gold": dg.MetadataValue.int(sum(1 for q in queue if q.is_gold)),
            "overlap": dg.MetadataValue.int(config.overlap),
            "strategy": dg.MetadataValue.text(config.strategy),
            "sent_to_more_labelers": dg.MetadataValue.int(topped_up),
            "label_configs_updated": dg.MetadataValue.int(sum(bool(f["label_config_updated"].value) for f in followed)),
            "more_annotators_at_max_overlap": dg.MetadataValue.int(len(review_plan.at_cap)),
            "expert_review_open": dg.MetadataValue.int(len(review_plan.needs_expert)),
            "expert_review": dg.MetadataValue.md(_expert_table(review_plan.needs_expert)),
            **{key: dg.MetadataValue.int(sum(_as_int(r[key].value) for r in refreshed))
               for key in ("open_tasks", "open_tasks_with_current_prelabel", "predictions_refreshed")},  # fmt: skip
            "prelabel_model_shown": dg.MetadataValue.text(
                ", ".join(sorted({str(r["prelabel_model_shown"].value) for r in refreshed} - {""}))
            ),
        }
    )


def _as_int(value: object) -> int:
    return int(value) if isinstance(value, int | float | str) else 0


def _ready_candidates(store: LabelStore, project_ids: int | list[int], config: QueueConfig) -> tuple[list[Candidate], int]:
    """The items this run may queue, and how many new ones it leaves for their pre-label run (``awaiting_prelabel``)."""
    candidates = queue_candidates(store, project_ids)
    cutoff = utcnow() - dt.timedelta(minutes=config.prelabel_wait_minutes)
    waiting = {c.item_id for c in awaiting_prelabel(candidates, last_prelabel_at=last_prelabel_at(store),
                                                    ingested_after=cutoff)}  # fmt: skip
    return [c for c in candidates if c.item_id not in waiting], len(waiting)


def _prefill_thresholds(
    store: LabelStore, shown: Mapping[str, tuple[Mapping[str, float], str]], kind: TaskKind
) -> dict[str, dict[str, float]]:
    """Per model version of the pre-labels shown: its per-class thresholds (a kind that pre-fills by thresholds)."""
    return thresholds_of(store, sorted({version for _, version in shown.values()})) if kind.decision_thresholds else {}


def _blind_top_up(
    store: LabelStore, client: LabelStudioClient, projects: dict[str, int], project: ProjectSettings,
    config: QueueConfig,
) -> tuple[int, OverlapPlan]:  # fmt: skip
    """Blind mode's overlap raise: items short of answers that count (a labeler paused, a vote or task deleted, a
    vote of a removed class, a review request for one more labeler) go to more labelers' projects (core/labelstudio/blind.py)."""
    review_plan = plan_overlap_raises(blind_open_requests(store, list(projects.values())), max_overlap=config.max_overlap)
    wants = {r.item_id: r.overlap_to for r in review_plan.raises}
    pauses = pause_intervals(store)
    loaded = load_votes(store, list(project.classes), task_type=project.task_type, allow_empty=project.allow_empty_set)
    remote = {pid: client.task_ids(pid) for pid in projects.values()}  # a deleted task's answer is not coming
    hours = config.blind_reassign_after_hours
    items = blind_items(store, projects, loaded, pauses, overlap=config.overlap, wants=wants, remote_task_ids=remote,
                        open_since=utcnow() - dt.timedelta(hours=hours) if hours is not None else None)  # fmt: skip
    ids = labeler_ids_for(store, list(projects))
    paused_now = paused_since(store)
    paused = {name for name, labeler_id in ids.items() if labeler_id in paused_now}
    load = task_counts(store, list(projects.values()))
    steps = plan_blind_top_up(items, list(projects), paused=paused, max_overlap=config.max_overlap,
                              load={name: load.get(pid, 0) for name, pid in projects.items()})  # fmt: skip
    return record_blind_top_up(store, steps, projects), review_plan


def _push(
    context: dg.AssetExecutionContext, client: LabelStudioClient, project_id: int, payloads: list[dict[str, Any]]
) -> int:
    """Import the payloads in batches; returns how many tasks Label Studio created."""
    created = 0
    for start in range(0, len(payloads), IMPORT_BATCH):
        created += client.import_tasks(project_id, payloads[start : start + IMPORT_BATCH])
        context.log.info(f"imported {min(start + IMPORT_BATCH, len(payloads))}/{len(payloads)} tasks")
    # Label Studio pre-fills from one model version: the one most of the pushed tasks carry.
    version = shown_model_version(payloads)
    if version is not None:
        client.show_predictions_of(project_id, version)
    return created


def _queue_metadata(
    config: QueueConfig,
    queue: list[QueuedItem],
    payloads: list[dict[str, Any]],
    *,
    reserved: int,
    pushed: int,
    linked: int,
) -> dict[str, dg.MetadataValue]:
    return {
        "selected": dg.MetadataValue.int(len(queue)),
        "reserved": dg.MetadataValue.int(reserved),
        "pushed": dg.MetadataValue.int(pushed),
        "linked": dg.MetadataValue.int(linked),
        "with_predictions": dg.MetadataValue.int(sum(1 for p in payloads if "predictions" in p)),
        "new_gold": dg.MetadataValue.int(sum(1 for q in queue if q.is_gold)),
        "overlap": dg.MetadataValue.int(config.overlap),
        "strategy": dg.MetadataValue.text(config.strategy),
    }


def _tasks_total_metadata(by_gold: dict[bool, int]) -> dict[str, dg.MetadataValue]:
    return {
        "tasks_total": dg.MetadataValue.int(sum(by_gold.values())),
        "gold_tasks_total": dg.MetadataValue.int(by_gold.get(True, 0)),
    }


def _act_on_review_requests(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    client: LabelStudioClient,
    project_id: int,
    max_overlap: int,
) -> dict[str, dg.MetadataValue]:
    """Raise the overlap of tasks whose items need more labelers; report what needs an expert."""
    plan = plan_overlap_raises(open_review_requests(store, project_id), max_overlap=max_overlap)
    # Store first, Label Studio second: a crash in between leaves a drift the next run repairs.
    applied = record_overlap_raises(store, project_id, plan.raises)
    wanted = raised_task_overlaps(store, project_id)
    drift = overlap_drift(wanted, client.task_overlaps(project_id)) if wanted else {}
    reopened = 0
    for ls_task_id, overlap in drift.items():
        reopened += int(not client.set_task_overlap(ls_task_id, overlap))
    if applied or drift:
        context.log.info(
            f"review requests: overlap raised for {len(applied)} tasks (cap {max_overlap}); "
            f"{len(drift)} Label Studio tasks updated, {reopened} back in the label stream"
        )
    needs_expert = plan.needs_expert
    return {
        "overlap_raised": dg.MetadataValue.int(len(applied)),
        "overlap_raised_summary": dg.MetadataValue.text(f"overlap raised for {len(applied)} tasks"),
        "overlap_pushed_to_label_studio": dg.MetadataValue.int(len(drift)),
        "tasks_back_in_label_stream": dg.MetadataValue.int(reopened),
        "max_overlap": dg.MetadataValue.int(max_overlap),
        "more_annotators_waiting": dg.MetadataValue.int(len(plan.waiting)),
        "more_annotators_at_max_overlap": dg.MetadataValue.int(len(plan.at_cap)),
        "review_requests_without_task": dg.MetadataValue.int(len(plan.no_task)),
        "expert_review_open": dg.MetadataValue.int(len(needs_expert)),
        "expert_review": dg.MetadataValue.md(_expert_table(needs_expert)),
    }


def _follow_sources(
    context: dg.AssetExecutionContext,
    store: LabelStore,
    client: LabelStudioClient,
    project_id: int,
    project: ProjectSettings,
    max_overlap: int,
    *,
    requeue: bool = True,
) -> dict[str, dg.MetadataValue]:
    """Derived data follows its sources (see core/consensus/retraction.py): the class list and the task type
    (checkboxes and "None of these" for multi-label) reach Label Studio's config, a superseded item's task is
    marked and its replacement reserved, and items whose live votes fell below their task's overlap (deleted, a
    removed class, given while paused) go back to labelers (a new task, or a higher overlap)."""
    classes = list(project.classes)
    change = record_class_list(store, classes, project.class_list_change_reason)
    allow_empty = project.allow_empty_set
    wanted = task_kind(project.task_type).label_config(classes, allow_empty)
    current = config_layout(client.label_config(project_id))
    config_updated = current is not None and current != config_layout(wanted)
    if config_updated:  # Label Studio keeps existing annotations of a removed class; they stop counting here
        client.set_label_config(project_id, wanted)
    # Votes as the kind reads them: label sets read as single classes would all look lost.
    loaded = load_votes(store, classes, task_type=project.task_type, allow_empty=allow_empty)
    new_conflicts = detect_conflicts(store, project_id, loaded.held)
    marked: dict[str, int] = {}
    for conflict in conflicts_to_mark(store, project_id):
        reason = f"source file changed: item {conflict.old_item_id[:12]} replaced by {conflict.new_item_id}"
        ok = client.mark_task_superseded(conflict.old_ls_task_id, new_item_id=conflict.new_item_id, reason=reason)
        outcome = TASK_MARKED if ok else TASK_GONE
        record_conflict_outcome(store, conflict.conflict_id, outcome)
        marked[outcome] = marked.get(outcome, 0) + 1
    # Blind mode sends an item to more labelers instead (_blind_top_up): a raised overlap on a labeler's own
    # project would let another labeler answer there, next to the owner's answer.
    requeued = requeue_lost_votes(store, client, project_id, loaded, max_overlap=max_overlap) if requeue else None
    plan = requeued.plan if requeued else RequeuePlan()
    recreated, raised = (requeued.recreated, requeued.raised) if requeued else ([], [])
    if new_conflicts or marked or recreated or raised or config_updated:
        context.log.warning(
            f"sources changed: class list {'v' + str(change.version) if change else 'unchanged'}, label config "
            f"{'updated' if config_updated else 'current'}; conflicts {new_conflicts}, tasks {marked}; "
            f"{len(recreated)} deleted tasks recreated, overlap raised for {len(raised)} items"
        )
    return {
        "label_config_updated": dg.MetadataValue.bool(config_updated),
        "source_conflicts_new": dg.MetadataValue.json(new_conflicts),
        "source_conflict_tasks_marked": dg.MetadataValue.json(marked),
        "deleted_tasks_recreated": dg.MetadataValue.int(len(recreated)),
        "overlap_raised_for_lost_votes": dg.MetadataValue.int(len(raised)),
        "overlap_raised_for_paused_votes": dg.MetadataValue.int(sum(1 for r in raised if r.paused_votes)),
        "waiting_for_collect_to_record_deletions": dg.MetadataValue.int(len(plan.waiting_for_collect)),
    }


def _expert_table(requests: list[OpenRequest]) -> str:
    if not requests:
        return "No open request needs an expert."
    oldest = sorted(requests, key=lambda r: (r.requested_at is None, r.requested_at, r.request_id))
    lines = ["| item | source | action | labelers | reason | requested |", "|---|---|---|---|---|---|"]
    for r in oldest[:EXPERT_TABLE_ROWS]:
        why = md_text(r.reason or "", 300)
        when = r.requested_at.strftime("%Y-%m-%d %H:%M") if r.requested_at else ""
        lines.append(
            f"| `{r.item_id[:12]}` | {md_text(r.source)} | {r.action} | {r.n_annotators or 0} | {why} | {when} |"
        )
    if len(requests) > EXPERT_TABLE_ROWS:
        lines.append(f"\n{len(requests) - EXPERT_TABLE_ROWS} more not shown (oldest first).")
    return "\n".join(lines)
