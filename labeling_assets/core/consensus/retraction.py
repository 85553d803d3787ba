"""Derived data follows its sources: when an item's consensus must go, and when its task goes back out.

Pure rules (no store, no dagster, no HTTP). Consensus is derived from live votes; when the votes behind an
item fall below ``min_annotators`` (its Label Studio task or votes were deleted, its votes name a class
that left the class list) or the item itself stopped being active (superseded by a changed source file,
quarantined), its consensus is retracted: a new consensus version that says so, never a DELETE. Readers of
the live consensus (datasets, training, prelabels, labeler statistics) then no longer see it, and the next
dataset version leaves the item out; its frozen split row stays for when it comes back.

Re-queue (what Label Studio 1.23 supports, DESIGN §4b): a task deleted in Label Studio cannot be restored,
so the item gets a new task (once the deletion has reached the store as tombstones); a task that still
exists but holds answers that no longer count (a removed class, or a labeler's votes given while paused) gets
its overlap raised by that many, so Label Studio's label stream hands it to new labelers until the live votes
reach what the task asked for. A resume never lowers it: votes given while paused stay excluded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

# consensus.retraction_reason prefixes and vote_retractions.reason values.
TOO_FEW_VOTES: Final = "too_few_live_votes"
ITEM_SUPERSEDED: Final = "item_superseded"
ITEM_QUARANTINED: Final = "item_quarantined"
ITEM_NOT_ACTIVE: Final = "item_not_active"
CLASS_REMOVED: Final = "class_removed"
# requeue_actions.action
TASK_RECREATED: Final = "task_recreated"
OVERLAP_RAISED_FOR_LOST_VOTES: Final = "overlap_raised"
# item_conflicts.outcome
TASK_MARKED: Final = "task_marked"
TASK_GONE: Final = "task_gone"
RESERVATION_WITHDRAWN: Final = "reservation_withdrawn"
PENDING: Final = "pending"  # detected; Label Studio not told yet
# Cap on a task's overlap when the pipeline raises it (QueueConfig.max_overlap, `labeler pause --max-overlap`).
DEFAULT_MAX_OVERLAP: Final = 5


@dataclass(frozen=True)
class ClassListChange:
    """A new class list version compared with the previous one."""

    version: int
    classes: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    reason: str
    changes: tuple[str, ...] = ()  # renames, merges and splits recorded with it, as declared


def class_list_diff(previous: Sequence[str] | None, current: Sequence[str]) -> tuple[list[str], list[str]]:
    """(added, removed) classes from ``previous`` to ``current`` (None: the first version, all added)."""
    before = list(previous or [])
    return [c for c in current if c not in before], [c for c in before if c not in current]


def class_list_reason(
    added: Sequence[str], removed: Sequence[str], given: str | None, *, first: bool = False,
    changes: Sequence[str] = (),
) -> str:
    """The recorded reason: the operator's words when given, else what changed in plain words (the declared
    renames, merges and splits first)."""
    if first:
        return "first class list"
    what = "; ".join(
        part
        for part in (
            *changes,
            f"removed {', '.join(map(repr, removed))}" if removed else "",
            f"added {', '.join(map(repr, added))}" if added else "",
        )
        if part
    )
    if given and given.strip():
        return f"{given.strip()} ({what})" if what else given.strip()
    return f"class list changed in the project settings: {what}" if what else "first class list"


@dataclass(frozen=True)
class LiveConsensus:
    """An item's live consensus as the store holds it, with what is known about its item now."""

    item_id: str
    label: object
    status: str | None  # items.status; None when the item is unknown to the store
    live_votes: int  # distinct labelers with a valid vote under the current class list
    removed_class_votes: int  # current answers naming a class no longer in the class list
    superseded_by: str | None = None


def retraction_reason(
    row: LiveConsensus, *, aggregated: bool, min_annotators: int, classes: Sequence[str]
) -> str | None:
    """Why ``row``'s consensus must be retracted now, or None when it stands.

    ``aggregated``: this run computed a new consensus for the item (it then replaces the row as a new
    version instead). A label outside the class list is never left standing, even if nothing else changed.
    """
    if row.status == "superseded":
        return f"{ITEM_SUPERSEDED}: the source file changed; replaced by item {row.superseded_by or '?'}"
    if row.status == "quarantined":
        return f"{ITEM_QUARANTINED}: its bytes are unusable"
    if row.status != "active":
        return f"{ITEM_NOT_ACTIVE}: item is {row.status or 'not in the store'}"
    if aggregated:
        return None
    if row.live_votes < min_annotators:
        why = f"{TOO_FEW_VOTES}: {row.live_votes} live votes < min_annotators {min_annotators}"
        if row.removed_class_votes:
            why += f" ({row.removed_class_votes} votes name classes no longer in the class list)"
        return why
    if _label_outside(row.label, classes):
        return f"{CLASS_REMOVED}: label {row.label!r} is no longer in the class list"
    return None


def _label_outside(label: object, classes: Sequence[str]) -> bool:
    names = label if isinstance(label, list | tuple) else [label]
    return any(str(name) not in classes for name in names)


# --- re-queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskState:
    """What the store and Label Studio know about an active item's task."""

    item_id: str
    ls_task_id: int
    required: int  # tasks.required_annotations: the overlap the item was queued with
    live_votes: int  # valid votes under the current class list
    held: int  # distinct labelers with a current (not deleted) annotation in the store
    in_label_studio: bool  # the task still exists there
    ls_overlap: int | None = None  # its overlap there
    paused_votes: int = 0  # valid votes that do not count because their labeler was paused when giving them


@dataclass(frozen=True)
class Requeue:
    item_id: str
    ls_task_id: int
    action: str  # TASK_RECREATED | OVERLAP_RAISED_FOR_LOST_VOTES
    overlap_from: int | None
    overlap_to: int | None
    reason: str
    paused_votes: int = 0  # of the answers that no longer count, those given while their labeler was paused


@dataclass
class RequeuePlan:
    recreate: list[Requeue] = field(default_factory=list)
    raise_overlap: list[Requeue] = field(default_factory=list)
    waiting_for_collect: list[str] = field(default_factory=list)  # deleted task, tombstones not stored yet


def plan_requeues(tasks: Sequence[TaskState], *, max_overlap: int) -> RequeuePlan:
    """Which items go back to labelers and how (see the module docstring).

    A deleted task is recreated only once the store holds no current annotation on the item (collect has
    recorded the deletion as tombstones): recreating earlier would hide those annotations from the next
    sync, which only compares annotations of linked tasks. A raise never goes past ``max_overlap`` and
    never lowers a task.
    """
    plan = RequeuePlan()
    for t in sorted(tasks, key=lambda s: s.item_id):
        if not t.in_label_studio:
            if t.held:
                plan.waiting_for_collect.append(t.item_id)
                continue
            plan.recreate.append(
                Requeue(t.item_id, t.ls_task_id, TASK_RECREATED, None, t.required,
                        f"task {t.ls_task_id} was deleted in Label Studio; {t.live_votes} live votes left")
            )
            continue
        not_counting = max(t.held - t.live_votes, 0)
        if not not_counting or t.live_votes >= t.required:
            continue
        current = t.ls_overlap if t.ls_overlap is not None else t.required
        want = min(t.required + not_counting, max(max_overlap, t.required))
        if want <= current:
            continue
        plan.raise_overlap.append(
            Requeue(t.item_id, t.ls_task_id, OVERLAP_RAISED_FOR_LOST_VOTES, current, want,
                    f"{not_counting} answers no longer count ({_why_not_counting(t, not_counting)}); "
                    f"{t.live_votes} of {t.required} live votes", min(t.paused_votes, not_counting))
        )
    return plan


def _why_not_counting(t: TaskState, not_counting: int) -> str:
    paused = min(t.paused_votes, not_counting)
    parts = [f"{paused} by paused labelers"] if paused else []
    if not_counting > paused:
        parts.append(f"{not_counting - paused} not valid under the current class list")
    return ", ".join(parts)


def newest_descendant(item_id: str, replaced_by: Mapping[str, str]) -> str | None:
    """The item that finally replaced ``item_id`` through a chain of superseding items (None: none)."""
    seen = {item_id}
    current = replaced_by.get(item_id)
    while current is not None and current in replaced_by and replaced_by[current] not in seen:
        seen.add(current)
        current = replaced_by[current]
    return current
