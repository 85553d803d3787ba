"""Blind labeling: one Label Studio project per labeler, so no task a labeler opens shows another's answer.

Label Studio Community shows every annotation of a task to whoever opens it (asserted on the real server by
``tests/integration/test_human_loop.py``), so in the one shared project a late labeler sees the earlier answers and
can anchor on them. In blind mode each listed labeler gets a project "<title> — <name>" (overlap 1) holding only the
tasks assigned to them; an item's overlap is how many of these projects receive it. The store merges the projects'
annotations by item (every annotation row carries its item and its Label Studio task; tasks are keyed by project
and item), so consensus, labeler statistics and datasets read one set of votes as before.

Community has no project membership: a labeler can still open another labeler's project on purpose. Blind mode
removes the anchor from the work a labeler is given; it is not access control (README, "Blind labeling").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

SEPARATOR = " — "
RESERVED_NAMES = frozenset({"review"})  # "<title> — review" is the expert review project


def blind_title(title: str, labeler: str) -> str:
    """The title of ``labeler``'s own project in blind mode."""
    return f"{title}{SEPARATOR}{labeler}"


def check_blind_labelers(labelers: Sequence[str]) -> list[str]:
    """The configured names, stripped; raises ValueError on an empty, duplicate or reserved name."""
    names = [name.strip() for name in labelers]
    bad = sorted({n for n in names if not n or n in RESERVED_NAMES or names.count(n) > 1})
    if bad:
        raise ValueError(
            f"blind_labelers must be distinct Label Studio usernames, not 'review' or empty: {bad}"
        )
    return names


def assign_blind(
    items: Sequence[str], labelers: Sequence[str], overlap: int, load: Mapping[str, int] | None = None
) -> dict[str, list[str]]:
    """labeler -> the items (in queue order) their project receives: each item goes to ``overlap`` distinct
    labelers (all of them when fewer), the least loaded first, ties in the listed order. ``load``: tasks each
    labeler's project already holds; the assignment keeps the projects level as the queue grows."""
    counts = {name: int((load or {}).get(name, 0)) for name in labelers}
    order = {name: i for i, name in enumerate(labelers)}
    out: dict[str, list[str]] = {name: [] for name in labelers}
    for item in items:
        chosen = sorted(labelers, key=lambda n: (counts[n], order[n]))[: max(min(overlap, len(labelers)), 0)]
        for name in chosen:
            out[name].append(item)
            counts[name] += 1
    return out


# --- more labelers for an item (blind mode's "raise the overlap") ----------------------------------------------


@dataclass(frozen=True)
class BlindItem:
    """What the store knows about one item queued in blind mode."""

    item_id: str
    holders: tuple[str, ...]  # labelers whose project holds a task for the item
    answered: tuple[str, ...]  # holders whose task holds a current answer (counting or not)
    live: int  # labelers whose vote on the item counts (valid, not given while paused)
    want: int  # answers that count the item should get (the queue's overlap, more after a review request)
    gone: tuple[str, ...] = ()  # holders whose task of it was deleted in Label Studio: no answer is coming
    stale: tuple[str, ...] = ()  # holders whose task has been open longer than the queue waits for an answer


@dataclass(frozen=True)
class BlindTopUp:
    item_id: str
    labeler: str  # receives the item in their own project
    holders_from: int
    holders_to: int
    reason: str


def plan_blind_top_up(
    items: Sequence[BlindItem],
    labelers: Sequence[str],
    *,
    paused: Collection[str],
    load: Mapping[str, int],
    max_overlap: int,
) -> list[BlindTopUp]:
    """In blind mode an item's overlap is how many labelers' projects hold it, so "raise the overlap" means "send it
    to more labelers". An item short of answers that count, counting the answers still to come from its holders who
    are not paused, whose task still exists and has not waited too long (``stale``), goes to that many more labelers
    (not paused, not holding it, the least loaded first), never past ``max_overlap`` projects. Idempotent: once sent,
    the new holders' answers are "still to come". A stale holder keeps the task: an answer that comes late counts."""
    counts = {name: int(load.get(name, 0)) for name in labelers}
    order = {name: i for i, name in enumerate(labelers)}
    steps: list[BlindTopUp] = []
    for item in sorted(items, key=lambda x: x.item_id):
        coming = [
            h for h in item.holders
            if h not in item.answered and h not in paused and h not in item.gone and h not in item.stale
        ]  # fmt: skip
        short = min(item.want - item.live - len(coming), max_overlap - len(item.holders))
        free = sorted((n for n in labelers if n not in item.holders and n not in paused),
                      key=lambda n: (counts[n], order[n]))[: max(short, 0)]  # fmt: skip
        if not free:
            continue
        lost = len(item.answered) - item.live
        why = f"{item.live} of {item.want} answers count ({lost} do not), {len(coming)} still to come"
        waiting = [h for h in item.stale if h not in item.answered and h not in paused and h not in item.gone]
        if waiting:
            why += f" ({', '.join(waiting)}: open too long)"
        for k, name in enumerate(free):
            counts[name] += 1
            steps.append(
                BlindTopUp(item.item_id, name, len(item.holders) + k, len(item.holders) + k + 1, why)
            )
    return steps
