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

from collections.abc import Mapping, Sequence

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
