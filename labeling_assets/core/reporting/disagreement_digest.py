"""The disagreement digest: items where labelers split and an expert settled it, grouped by class pair, as candidate
examples for the next guideline version.

An answer is one class, or a set of classes (multi-label, text class sets) read as one answer (``a + b``; the empty
set is ``(none)``). Per adjudicated item whose current votes hold at least two different answers, the pair is
(the answer the crowd confused with the expert's: the most voted answer other than the expert's, ties by name;
the expert's answer). Class kinds only: boxes and spans have no one answer per vote to pair.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labeling_assets.core.label_sets import MULTI_LABEL, SINGLE_LABEL, TEXT_CLASS_SETS, TEXT_CLASSES

DIGEST_TASK_TYPES = (SINGLE_LABEL, MULTI_LABEL, TEXT_CLASSES, TEXT_CLASS_SETS)
NONE_OF_THESE = "(none)"
COLUMNS = ["crowd answer", "expert answer", "items", "crowd majority overruled", "example items"]


def answer_key(label: Any) -> str:
    """One answer as text: a class name, or a set's classes sorted and joined with `` + ``."""
    if isinstance(label, list | tuple | set | frozenset):
        return " + ".join(sorted(str(c) for c in label)) or NONE_OF_THESE
    return str(label)


@dataclass(frozen=True)
class Digest:
    pairs: pd.DataFrame  # COLUMNS, most items first; "example items": [{"item_id", "uri"}]
    adjudicated: int  # items with an expert answer
    split: int  # of those, items whose labelers gave two or more answers (the digest's items)
    overruled: int  # of those, items whose crowd majority (a strict plurality) the expert overruled


def disagreement_digest(
    votes: pd.DataFrame,
    adjudicated: pd.Series,
    *,
    uris: Mapping[str, str | None] | None = None,
    examples: int = 3,
) -> Digest:
    """Group the split, adjudicated items by (crowd answer, expert answer).

    ``votes``: item_id, labeler_id, label (one current vote per labeler and item); ``adjudicated``: item_id -> the
    expert's newest answer; ``uris``: item_id -> where its content is, shown beside the example ids.
    """
    by_item: dict[str, Counter[str]] = {}
    for item_id, label in zip(votes["item_id"].astype(str), votes["label"], strict=True):
        by_item.setdefault(item_id, Counter())[answer_key(label)] += 1
    groups: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for key, expert_label in adjudicated.items():
        item_id = str(key)
        counts = by_item.get(item_id)
        if counts is None or len(counts) < 2:  # unanimous (or no votes): the expert confirmed, nobody split
            continue
        expert = answer_key(expert_label)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        crowd = next(answer for answer, _ in ranked if answer != expert)
        strict_top = ranked[0][1] > ranked[1][1]
        overruled = strict_top and ranked[0][0] != expert
        groups.setdefault((crowd, expert), []).append((item_id, overruled))
    rows = [
        {
            "crowd answer": crowd,
            "expert answer": expert,
            "items": len(members),
            "crowd majority overruled": sum(o for _, o in members),
            "example items": [{"item_id": i, "uri": (uris or {}).get(i)} for i, _ in sorted(members)[:examples]],
        }
        for (crowd, expert), members in groups.items()
    ]
    pairs = pd.DataFrame(rows, columns=COLUMNS)
    if not pairs.empty:
        pairs = pairs.sort_values(["items", "crowd answer", "expert answer"], ascending=[False, True, True])
        pairs = pairs.reset_index(drop=True)
    return Digest(
        pairs=pairs,
        adjudicated=int(len(adjudicated)),
        split=int(pairs["items"].sum()) if not pairs.empty else 0,
        overruled=int(pairs["crowd majority overruled"].sum()) if not pairs.empty else 0,
    )


def digest_markdown(digest: Digest, *, guideline_version: int | None = None, max_rows: int = 50) -> str:
    """The digest as a Markdown page: a sentence of counts, then the pairs as a table (class names escaped)."""
    after = f" (guidelines version {guideline_version} in force)" if guideline_version is not None else ""
    lines = [
        f"Candidate examples for the next guideline version{after}: {digest.split} of {digest.adjudicated} "
        f"adjudicated items had labelers split; the expert overruled the crowd's majority on {digest.overruled}.",
        "",
    ]
    if digest.pairs.empty:
        return "\n".join([*lines, "No split item has an expert answer yet."])
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in digest.pairs.head(max_rows).itertuples(index=False):
        crowd, expert, items, overruled, shown = row
        cells = [_cell(crowd), _cell(expert), str(items), str(overruled), _examples(shown)]
        lines.append("| " + " | ".join(cells) + " |")
    if len(digest.pairs) > max_rows:
        lines += ["", f"{len(digest.pairs) - max_rows} more pairs not shown."]
    return "\n".join(lines)


def _examples(shown: Sequence[Mapping[str, Any]]) -> str:
    return "<br>".join(
        _cell(f"{e['item_id'][:12]} ({e['uri']})" if e.get("uri") else e["item_id"][:12]) for e in shown
    )


def _cell(value: object) -> str:
    """A value for a Markdown table cell: HTML escaped; pipes and line breaks would break the row."""
    return html.escape(str(value)).replace("|", "\\|").replace("\n", " ")
