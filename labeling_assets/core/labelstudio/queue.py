"""The queue stage as one service: items to Label Studio tasks, most informative first, gold hidden among them.

``run_queue(store, client, kind, options, project_id)`` (one shared project) and ``run_blind_queue`` (one project
per labeler, core/labelstudio/blind.py) are what the ``labeling_tasks`` asset calls (the shape of ``ingest_source``
and ``run_consensus``): the asset ensures the projects and serves the images, the service does the rest. The kind
of task (core/tasks) builds the config and the pre-labels; ``client`` is any :class:`TaskClient`. The returned
report holds plain values (``Markdown`` for tables, ``Json`` for values shown as JSON).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling_assets.core.allocation.live import AllocatorSettings
from labeling_assets.core.consensus.adaptive_gold import GoldRates
from labeling_assets.core.consensus.class_schema import ClassChange
from labeling_assets.core.consensus.retraction import DEFAULT_MAX_OVERLAP, TASK_GONE, TASK_MARKED, RequeuePlan
from labeling_assets.core.consensus.review_routing import (
    OpenRequest,
    OverlapPlan,
    overlap_drift,
    plan_overlap_raises,
)
from labeling_assets.core.display import md_text
from labeling_assets.core.fields.spec import FieldSpec, config_fields, with_field_controls
from labeling_assets.core.labelstudio.allocation_run import (
    AllocationInputs,
    allocate_queue,
    left_to_allocator,
    rules_fallback,
)
from labeling_assets.core.labelstudio.blind import assign_blind, plan_blind_top_up
from labeling_assets.core.labelstudio.client import TaskClient
from labeling_assets.core.labelstudio.config import config_layout
from labeling_assets.core.labelstudio.gold_mix import adaptive_gold_rate
from labeling_assets.core.labelstudio.requeue import requeue_lost_votes
from labeling_assets.core.labelstudio.tasks import (
    Candidate,
    PrelabelVisibility,
    QueuedItem,
    Selection,
    Strategy,
    awaiting_prelabel,
    build_payloads,
    choose_queue,
    payload_leaks,
    refreshed_predictions,
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
from labeling_assets.core.store.selection_inputs import selection_inputs
from labeling_assets.core.store.tiers import machine_labeled_not_for_people
from labeling_assets.core.tasks.kind import Json, Markdown, TaskKind

IMPORT_BATCH = 1000
EXPERT_TABLE_ROWS = 20

Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class QueueOptions:
    """The run's knobs (the asset's QueueConfig) and the project's settings (ProjectSettings)."""

    classes: Sequence[str]
    data_path: Path
    max_new_tasks: int = 1000
    gold_rate: float = 0.1
    overlap: int = 3
    strategy: Strategy = "uncertainty"
    seed: int = 0
    max_overlap: int = DEFAULT_MAX_OVERLAP
    blind_reassign_after_hours: float | None = 48.0
    prelabel_wait_minutes: float = 10.0
    prelabel_visibility: PrelabelVisibility = "all"
    allow_empty: bool = True
    allow_overlap: bool = False  # text spans: ProjectSettings.allow_overlapping_spans (which answers are votes)
    class_list_change_reason: str | None = None
    fields: tuple[FieldSpec, ...] = ()  # ProjectSettings.answer_fields(): controls after the kind's in the config
    class_changes: Sequence[ClassChange] = ()  # ProjectSettings.class_changes, parsed
    allocation: str = "rules"  # ProjectSettings.allocation: "rules" | "allocator" (core/labelstudio/allocation_run.py)
    allocator: AllocatorSettings = AllocatorSettings()
    pay_rate_per_hour: float | None = None  # the allocator's costs (ProjectSettings' pay rates and reviewers)
    pay_rates_per_hour: Mapping[str, float] = dataclasses.field(default_factory=dict)
    reviewers: Sequence[str] = ()
    adaptive_gold: GoldRates | None = None  # None: gold_rate; else the labelers' adaptive rates (gold_mix.py)
    gold_gate_threshold: float | None = None  # adaptive gold's gate (None: the kind's own)
    run_id: str | None = None  # the audit's run id (the Dagster run's); None: a fresh uuid

    def allocation_inputs(self) -> AllocationInputs:
        return AllocationInputs(list(self.classes), self.max_new_tasks, self.max_overlap, self.allocator,
                                self.pay_rate_per_hour, dict(self.pay_rates_per_hour), list(self.reviewers),
                                self.allow_empty, self.allow_overlap)  # fmt: skip


def run_queue(
    store: LabelStore, client: TaskClient, kind: TaskKind, options: QueueOptions, project_id: int, *,
    log: Log = _quiet, warn: Log = _quiet,
) -> dict[str, Any]:  # fmt: skip
    """One shared project: queue the next items, follow changed sources, act on review requests, refresh the open
    tasks' pre-labels; returns the report."""
    # Reserve first, push second, link last: a crash anywhere leaves reserved rows that the next run
    # links to tasks Label Studio already has instead of importing them again.
    candidates, waiting = _ready_candidates(store, project_id, options)
    options, gold_mix = _gold_mix(store, kind, options)
    selection = _select(store, candidates, [project_id], kind, options)
    queue, allocated = selection.queue, dict[str, Any]()
    if options.allocation == "allocator":  # one decision per slot instead of the two rules (docs/allocation.md)
        queue, allocated = allocate_queue(store, kind, options.allocation_inputs(), project_id, queue,
                                          options.run_id or uuid.uuid4().hex)  # fmt: skip
    reserved = reserve_tasks(store, project_id, queue, overlap=options.overlap)
    relinked = link_tasks(store, project_id, client.task_ids_by_item(project_id))
    followed = follow_sources(store, client, kind, options, project_id, warn=warn)
    pending = pending_tasks(store, project_id)
    pending_ids = [p["item_id"] for p in pending]
    shown = visible_prelabels(newest_prelabels(store, pending_ids), pending, options.prelabel_visibility)
    prefill = _prefill_thresholds(store, shown, kind)
    payloads = build_payloads(pending, shown, options.data_path, kind=kind, allow_empty=options.allow_empty,
                              thresholds=prefill)  # fmt: skip
    _refuse_leaks(store, payloads, pending_ids)
    created = _push(client, project_id, payloads, log)
    linked = link_tasks(store, project_id, client.task_ids_by_item(project_id)) if payloads else 0
    reviewed = _act_on_review_requests(store, client, project_id, options.max_overlap, log,
                                       allocator=options.allocation == "allocator")  # fmt: skip
    # Last: the tasks the review requests just put back in the label stream are open too (benchmarks/long_run.py).
    refreshed = refresh_predictions(store, client, kind, options, project_id, log=log)
    by_gold = linked_task_counts(store, project_id)
    return {
        **({"prefill_thresholds": Json(prefill or "0.5 per class (no model thresholds)")}
           if kind.decision_thresholds else {}),  # fmt: skip
        **_queue_report(options, queue, payloads, reserved=reserved, pushed=created, linked=linked + relinked),
        "selection_fallbacks": Json(dict(selection.fallbacks)),  # chosen items ordered by the fall-back, by reason
        **gold_mix,
        **allocated,
        "awaiting_prelabel": waiting,
        "tasks_total": sum(by_gold.values()),
        "gold_tasks_total": by_gold.get(True, 0),
        **reviewed,
        **followed,
        **refreshed,
    }


def run_blind_queue(
    store: LabelStore, client: TaskClient, kind: TaskKind, options: QueueOptions, projects: Mapping[str, int], *,
    log: Log = _quiet, warn: Log = _quiet,
) -> dict[str, Any]:  # fmt: skip
    """Blind mode (``projects``: labeler name -> their own project): each selected item goes to ``options.overlap``
    labelers' projects (the least loaded first), one task per project, reserved in one transaction, then pushed
    and linked per project as in the shared mode; returns the report."""
    ids = list(projects.values())
    # Per labeler project: the class list reaches its label config, a superseded item's task is marked.
    followed = [follow_sources(store, client, kind, options, pid, warn=warn, requeue=False) for pid in ids]
    topped_up, review_plan = _blind_top_up(store, client, kind, projects, options)
    candidates, waiting = _ready_candidates(store, ids, options)
    options, gold_mix = _gold_mix(store, kind, options)
    allocated = (rules_fallback(store, options.run_id or uuid.uuid4().hex, None, "blind mode: the rules (the allocator "
                                "decides in the shared project only)") if options.allocation == "allocator" else {})  # fmt: skip
    selection = _select(store, candidates, ids, kind, options)
    queue = selection.queue
    load = task_counts(store, ids)
    plan = assign_blind([q.item_id for q in queue], list(projects), options.overlap,
                        {name: load.get(pid, 0) for name, pid in projects.items()})  # fmt: skip
    by_item = {q.item_id: q for q in queue}
    reserved = reserve_assigned_tasks(store, {projects[n]: [by_item[i] for i in items] for n, items in plan.items()})
    pushed, linked, per_labeler = 0, 0, dict[str, int]()
    for name, project_id in projects.items():
        linked += link_tasks(store, project_id, client.task_ids_by_item(project_id))
        pending = pending_tasks(store, project_id)
        pending_ids = [p["item_id"] for p in pending]
        shown = visible_prelabels(newest_prelabels(store, pending_ids), pending, options.prelabel_visibility)
        payloads = build_payloads(pending, shown, options.data_path, kind=kind, allow_empty=options.allow_empty,
                                  thresholds=_prefill_thresholds(store, shown, kind))  # fmt: skip
        _refuse_leaks(store, payloads, pending_ids)
        pushed += _push(client, project_id, payloads, log)
        linked += link_tasks(store, project_id, client.task_ids_by_item(project_id)) if payloads else 0
        per_labeler[name] = sum(linked_task_counts(store, project_id).values())
    # Each labeler's open tasks show their item's newest pre-label, as in the shared project (issue 26).
    refreshed = [refresh_predictions(store, client, kind, options, pid, log=log) for pid in ids]
    log(f"blind mode: {len(queue)} items to {options.overlap} of {len(projects)} labelers' projects, "
        f"{topped_up} sent to one more labeler; {pushed} tasks pushed")  # fmt: skip
    return {
        "blind_labeling": True,
        "blind_projects": Json(dict(projects)),
        "tasks_per_labeler": Json(per_labeler),
        "selected": len(queue),
        "awaiting_prelabel": waiting,
        "reserved": reserved,
        "pushed": pushed,
        "linked": linked,
        "new_gold": sum(1 for q in queue if q.is_gold),
        "overlap": options.overlap,
        "strategy": options.strategy,
        "selection_fallbacks": Json(dict(selection.fallbacks)),
        **gold_mix,
        **allocated,
        "prelabel_visibility": options.prelabel_visibility,  # read by the champion's hand-over (handover.py)
        "sent_to_more_labelers": topped_up,
        "label_configs_updated": sum(bool(f["label_config_updated"]) for f in followed),
        "more_annotators_at_max_overlap": len(review_plan.at_cap),
        "expert_review_open": len(review_plan.needs_expert),
        "expert_review": Markdown(_expert_table(review_plan.needs_expert)),
        **{key: sum(int(r[key]) for r in refreshed)
           for key in ("open_tasks", "open_tasks_with_current_prelabel", "predictions_refreshed")},  # fmt: skip
        "prelabel_model_shown": ", ".join(sorted({str(r["prelabel_model_shown"]) for r in refreshed} - {""})),
    }


def open_tasks(store: LabelStore, client: TaskClient, project_id: int) -> list[dict[str, Any]]:
    """The project's tasks that Label Studio still offers labelers (its unfinished ones), as
    :func:`linked_tasks` gives them."""
    open_ids = client.open_task_ids(project_id)
    return [r for r in linked_tasks(store, project_id) if r["ls_task_id"] in open_ids]


def refresh_predictions(
    store: LabelStore, client: TaskClient, kind: TaskKind, options: QueueOptions, project_id: int, *,
    log: Log = _quiet,
) -> dict[str, Any]:  # fmt: skip
    """Open tasks show their item's newest pre-label: after the champion changes (prelabel_job re-labels every
    item with it), each open task gets that model version's prediction (Label Studio keeps the older ones as
    other versions) and the project pre-fills from it. Finished tasks are left as they were answered."""
    rows = open_tasks(store, client, project_id)
    shown = visible_prelabels(newest_prelabels(store, [r["item_id"] for r in rows]), rows, options.prelabel_visibility)
    predictions = refreshed_predictions(rows, shown, kind=kind, allow_empty=options.allow_empty,
                                        thresholds=_prefill_thresholds(store, shown, kind))  # fmt: skip
    client.import_predictions(project_id, predictions)
    by_task = {int(p["task"]): str(p["model_version"]) for p in predictions}
    record_shown_versions(store, {r["id"]: by_task[r["ls_task_id"]] for r in rows if r["ls_task_id"] in by_task})
    versions = Counter(shown[r["item_id"]][1] for r in rows if r["item_id"] in shown)
    current = max(sorted(versions), key=versions.__getitem__) if versions else None
    if current is not None and predictions:
        client.show_predictions_of(project_id, current)
    if predictions:
        log(f"attached {len(predictions)} predictions of {sorted(set(by_task.values()))} to open tasks")
    return {
        "open_tasks": len(rows),
        "open_tasks_with_current_prelabel": sum(versions.values()),
        "predictions_refreshed": len(predictions),
        "prelabel_model_shown": current or "",
    }


def _ready_candidates(
    store: LabelStore, project_ids: int | list[int], options: QueueOptions
) -> tuple[list[Candidate], int]:
    """The items this run may queue, and how many new ones it leaves for their pre-label run (``awaiting_prelabel``)."""
    machine = machine_labeled_not_for_people(store)  # docs/tiers.md
    candidates = [c for c in queue_candidates(store, project_ids) if c.item_id not in machine]
    cutoff = utcnow() - dt.timedelta(minutes=options.prelabel_wait_minutes)
    waiting = {c.item_id for c in awaiting_prelabel(candidates, last_prelabel_at=last_prelabel_at(store),
                                                    ingested_after=cutoff)}  # fmt: skip
    return [c for c in candidates if c.item_id not in waiting], len(waiting)


def _select(store: LabelStore, candidates: list[Candidate], project_ids: list[int], kind: TaskKind,
            options: QueueOptions) -> Selection:  # fmt: skip
    """The run's queue by its strategy, with what that strategy reads from the store (core/labelstudio/selection.py)."""
    regular = [c.item_id for c in candidates if not c.is_gold]
    inputs = selection_inputs(store, options.strategy, regular, project_ids) if regular else None
    return choose_queue(candidates, limit=options.max_new_tasks, gold_rate=options.gold_rate, strategy=options.strategy,
                        seed=options.seed, kind=kind, inputs=inputs)  # fmt: skip


def _gold_mix(store: LabelStore, kind: TaskKind, options: QueueOptions) -> tuple[QueueOptions, dict[str, Any]]:
    """Adaptive gold: the run's gold share from the labelers' rates (core/labelstudio/gold_mix.py), else gold_rate."""
    if options.adaptive_gold is None:
        return options, {"gold_rate": options.gold_rate}
    rate, why, per_labeler = adaptive_gold_rate(store, kind, options.classes, options.adaptive_gold,
                                                options.gold_gate_threshold, allow_empty=options.allow_empty,
                                                allow_overlap=options.allow_overlap)  # fmt: skip
    rate = min(rate, 0.99)  # choose_queue wants it below 1
    return dataclasses.replace(options, gold_rate=rate), {
        "gold_rate": round(rate, 4), "gold_rate_why": why, "gold_rates": Json(per_labeler)}


def _prefill_thresholds(
    store: LabelStore, shown: Mapping[str, tuple[Mapping[str, float], str]], kind: TaskKind
) -> dict[str, dict[str, float]]:
    """Per model version of the pre-labels shown: its per-class thresholds (a kind that pre-fills by thresholds)."""
    return thresholds_of(store, sorted({version for _, version in shown.values()})) if kind.decision_thresholds else {}


def _refuse_leaks(store: LabelStore, payloads: list[dict[str, Any]], item_ids: list[str]) -> None:
    """Defense in depth: the builder cannot leak gold, but nothing leaves if it ever did."""
    leaks = payload_leaks(payloads, gold_labels(store, item_ids).to_dict())
    if leaks:
        raise RuntimeError(f"refusing to push tasks that leak gold: {leaks[:5]}")


def _blind_top_up(
    store: LabelStore, client: TaskClient, kind: TaskKind, projects: Mapping[str, int], options: QueueOptions
) -> tuple[int, OverlapPlan]:
    """Blind mode's overlap raise: items short of answers that count (a labeler paused, a vote or task deleted, a
    vote of a removed class, a review request for one more labeler) go to more labelers' projects (core/labelstudio/blind.py)."""
    review_plan = plan_overlap_raises(blind_open_requests(store, list(projects.values())), max_overlap=options.max_overlap)
    wants = {r.item_id: r.overlap_to for r in review_plan.raises}
    pauses = pause_intervals(store)
    loaded = load_votes(store, list(options.classes), task_type=kind.name, allow_empty=options.allow_empty,
                        allow_overlap=options.allow_overlap)  # fmt: skip
    remote = {pid: client.task_ids(pid) for pid in projects.values()}  # a deleted task's answer is not coming
    hours = options.blind_reassign_after_hours
    items = blind_items(store, dict(projects), loaded, pauses, overlap=options.overlap, wants=wants,
                        remote_task_ids=remote,
                        open_since=utcnow() - dt.timedelta(hours=hours) if hours is not None else None)  # fmt: skip
    ids = labeler_ids_for(store, list(projects))
    paused_now = paused_since(store)
    paused = {name for name, labeler_id in ids.items() if labeler_id in paused_now}
    load = task_counts(store, list(projects.values()))
    steps = plan_blind_top_up(items, list(projects), paused=paused, max_overlap=options.max_overlap,
                              load={name: load.get(pid, 0) for name, pid in projects.items()})  # fmt: skip
    return record_blind_top_up(store, steps, dict(projects)), review_plan


def _push(client: TaskClient, project_id: int, payloads: list[dict[str, Any]], log: Log) -> int:
    """Import the payloads in batches; returns how many tasks Label Studio created."""
    created = 0
    for start in range(0, len(payloads), IMPORT_BATCH):
        created += client.import_tasks(project_id, payloads[start : start + IMPORT_BATCH])
        log(f"imported {min(start + IMPORT_BATCH, len(payloads))}/{len(payloads)} tasks")
    # Label Studio pre-fills from one model version: the one most of the pushed tasks carry.
    version = shown_model_version(payloads)
    if version is not None:
        client.show_predictions_of(project_id, version)
    return created


def _queue_report(
    options: QueueOptions, queue: list[QueuedItem], payloads: list[dict[str, Any]], *, reserved: int, pushed: int,
    linked: int,
) -> dict[str, Any]:  # fmt: skip
    return {
        "selected": len(queue),
        "reserved": reserved,
        "pushed": pushed,
        "linked": linked,
        "with_predictions": sum(1 for p in payloads if "predictions" in p),
        "new_gold": sum(1 for q in queue if q.is_gold),
        "overlap": options.overlap,
        "strategy": options.strategy,
        "prelabel_visibility": options.prelabel_visibility,  # read by the champion's hand-over (handover.py)
    }


def _act_on_review_requests(
    store: LabelStore, client: TaskClient, project_id: int, max_overlap: int, log: Log, *, allocator: bool = False
) -> dict[str, Any]:
    """Raise the overlap of tasks whose items need more labelers; report what needs an expert. ``allocator``: only
    the allocator's requests for more labelers count (it replaces dynamic overlap's rule)."""
    requests, left = left_to_allocator(open_review_requests(store, project_id)) if allocator else (
        open_review_requests(store, project_id), 0)  # fmt: skip
    plan = plan_overlap_raises(requests, max_overlap=max_overlap)
    # Store first, Label Studio second: a crash in between leaves a drift the next run repairs.
    applied = record_overlap_raises(store, project_id, plan.raises)
    wanted = raised_task_overlaps(store, project_id)
    drift = overlap_drift(wanted, client.task_overlaps(project_id)) if wanted else {}
    reopened = 0
    for ls_task_id, overlap in drift.items():
        reopened += int(not client.set_task_overlap(ls_task_id, overlap))
    if applied or drift:
        log(
            f"review requests: overlap raised for {len(applied)} tasks (cap {max_overlap}); "
            f"{len(drift)} Label Studio tasks updated, {reopened} back in the label stream"
        )
    needs_expert = plan.needs_expert
    return {
        "overlap_raised": len(applied),
        "overlap_raised_summary": f"overlap raised for {len(applied)} tasks",
        "overlap_pushed_to_label_studio": len(drift),
        "tasks_back_in_label_stream": reopened,
        "max_overlap": max_overlap,
        "more_annotators_waiting": len(plan.waiting),
        "more_annotators_at_max_overlap": len(plan.at_cap),
        "review_requests_without_task": len(plan.no_task),
        **({"more_annotators_left_to_allocator": left} if allocator else {}),
        "expert_review_open": len(needs_expert),
        "expert_review": Markdown(_expert_table(needs_expert)),
    }


def follow_sources(
    store: LabelStore, client: TaskClient, kind: TaskKind, options: QueueOptions, project_id: int, *,
    warn: Log = _quiet, requeue: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Derived data follows its sources (see core/consensus/retraction.py): the class list and the kind's config
    (checkboxes and "None of these" for multi-label) reach Label Studio, a superseded item's task is marked and
    its replacement reserved, and items whose live votes fell below their task's overlap (deleted, a removed
    class, given while paused) go back to labelers (a new task, or a higher overlap)."""
    classes = list(options.classes)
    change = record_class_list(store, classes, options.class_list_change_reason, changes=options.class_changes,
                               classes_of=kind.classes_of)
    wanted = with_field_controls(kind.label_config(classes, options.allow_empty), options.fields)
    current_config = client.label_config(project_id)
    current = config_layout(current_config)
    config_updated = current is not None and (
        current != config_layout(wanted) or config_fields(current_config) != config_fields(wanted)
    )
    if config_updated:  # Label Studio keeps existing annotations of a removed class; they stop counting here
        client.set_label_config(project_id, wanted)
    # Votes as the kind reads them: label sets read as single classes would all look lost.
    loaded = load_votes(store, classes, task_type=kind.name, allow_empty=options.allow_empty,
                        allow_overlap=options.allow_overlap)  # fmt: skip
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
    requeued = requeue_lost_votes(store, client, project_id, loaded, max_overlap=options.max_overlap) if requeue else None
    plan = requeued.plan if requeued else RequeuePlan()
    recreated, raised = (requeued.recreated, requeued.raised) if requeued else ([], [])
    if new_conflicts or marked or recreated or raised or config_updated:
        warn(
            f"sources changed: class list {'v' + str(change.version) if change else 'unchanged'}, label config "
            f"{'updated' if config_updated else 'current'}; conflicts {new_conflicts}, tasks {marked}; "
            f"{len(recreated)} deleted tasks recreated, overlap raised for {len(raised)} items"
        )
    return {
        "label_config_updated": config_updated,
        "class_schema_changes_recorded": Json(list(change.changes) if change else []),
        "source_conflicts_new": Json(new_conflicts),
        "source_conflict_tasks_marked": Json(marked),
        "deleted_tasks_recreated": len(recreated),
        "overlap_raised_for_lost_votes": len(raised),
        "overlap_raised_for_paused_votes": sum(1 for r in raised if r.paused_votes),
        "waiting_for_collect_to_record_deletions": len(plan.waiting_for_collect),
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
