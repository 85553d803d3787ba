"""What changed between two dataset versions: items added, removed, relabeled, moved; class count deltas.

Pure logic over two manifests (``item_id, label, split``). A frozen item never moves between splits, so
``moved`` must be empty; the diff reports it rather than assume it. A label set compares as canonical JSON and
counts once per class; a box answer (a dict of pixel boxes) compares and reads as its boxes, each ``class (x0, y0,
x1, y1)`` to 0.01 px, sorted, and counts once per box of each class ("(no object)" for none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling_assets.core.display import md_text

# Mirrors iterative_stratification.EMPTY_SET_ROW (not imported: that module imports the split code, this one
# stays a leaf of the dataset package).
EMPTY_SET_ROW = "(none of these)"
NO_OBJECT_ROW = "(no object)"

DIFF_COLUMNS = ["item_id", "old_label", "new_label", "old_split", "new_split"]


@dataclass
class ManifestDiff:
    old_version: str | None
    new_version: str
    added: pd.DataFrame  # item_id, label, split
    removed: pd.DataFrame  # item_id, label, split
    relabeled: pd.DataFrame  # item_id, old_label, new_label, split
    moved: pd.DataFrame  # item_id, old_split, new_split
    class_deltas: pd.DataFrame  # class, old, new, delta (and per split: <split>_delta)
    vote_changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # item_id -> changed votes
    votes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # item_id -> votes at the new version
    # Class renames, merges and splits recorded between the two versions (store: class_changes.schema_change_report).
    schema_changes: list[dict[str, Any]] = field(default_factory=list)
    renamed: set[str] = field(default_factory=set)  # relabeled items whose new label is the old one renamed or merged

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "relabeled": len(self.relabeled),
            "moved_between_splits": len(self.moved),
        }

    def transitions(self) -> dict[str, int]:
        """``old -> new`` class: items relabeled that way."""
        if self.relabeled.empty:
            return {}
        keys = self.relabeled["old_label"].astype(str) + " -> " + self.relabeled["new_label"].astype(str)
        return {str(k): int(v) for k, v in keys.value_counts().sort_index().items()}

    def as_json(self, examples: int = 50) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            **self.counts(),
            "relabeled_by_transition": self.transitions(),
            "relabeled_by_class_schema_changes": len(self.renamed),
            "class_deltas": self.class_deltas.to_dict(orient="records"),
            "relabeled_items": [
                {
                    **row,
                    "votes_changed": self.vote_changes.get(str(row["item_id"]), []),
                    "votes": self.votes.get(str(row["item_id"]), []),
                }
                for row in self.relabeled.head(examples).to_dict(orient="records")
            ],
            "moved_items": self.moved.head(examples).to_dict(orient="records"),
            "class_schema_changes": [
                {k: c.get(k) for k in ("class_list_version", "change", "sources", "targets", "answers", "items",
                                       "requeued", "reason")}
                for c in self.schema_changes
            ],
        }


def diff_manifests(old: pd.DataFrame | None, new: pd.DataFrame, old_version: str | None, new_version: str) -> ManifestDiff:
    """The diff from ``old`` (None: nothing before) to ``new``."""
    empty = pd.DataFrame({"item_id": [], "label": [], "split": []}, dtype=object)
    old = (empty if old is None else old)[["item_id", "label", "split"]]
    new = new[["item_id", "label", "split"]]
    # Label sets (multi-label) and box answers compare as canonical text; class deltas then count per label (box).
    sets = _holds_sets(old) or _holds_sets(new) or _holds_boxes(old) or _holds_boxes(new)
    old_sets, new_sets = (_per_label(old), _per_label(new)) if sets else (None, None)
    old = old.assign(label=old["label"].map(label_text)) if sets else old.astype({"label": str})
    new = new.assign(label=new["label"].map(label_text)) if sets else new.astype({"label": str})
    both = old.merge(new, on="item_id", suffixes=("_old", "_new"))
    relabeled = both[both["label_old"] != both["label_new"]]
    moved = both[both["split_old"] != both["split_new"]]
    deltas = _class_deltas(old_sets, new_sets) if old_sets is not None and new_sets is not None else _class_deltas(old, new)
    return ManifestDiff(
        old_version=old_version,
        new_version=new_version,
        added=new[~new["item_id"].isin(old["item_id"])].sort_values("item_id").reset_index(drop=True),
        removed=old[~old["item_id"].isin(new["item_id"])].sort_values("item_id").reset_index(drop=True),
        relabeled=pd.DataFrame(
            {
                "item_id": relabeled["item_id"].to_numpy(),
                "old_label": relabeled["label_old"].to_numpy(),
                "new_label": relabeled["label_new"].to_numpy(),
                "split": relabeled["split_new"].to_numpy(),
            }
        ).sort_values("item_id").reset_index(drop=True),
        moved=pd.DataFrame(
            {
                "item_id": moved["item_id"].to_numpy(),
                "old_split": moved["split_old"].to_numpy(),
                "new_split": moved["split_new"].to_numpy(),
            }
        ).sort_values("item_id").reset_index(drop=True),
        class_deltas=deltas,
    )


def _holds_sets(manifest: pd.DataFrame) -> bool:
    return bool(len(manifest)) and bool(manifest["label"].map(lambda v: isinstance(v, list | tuple)).all())


def _holds_boxes(manifest: pd.DataFrame) -> bool:
    return bool(len(manifest)) and bool(manifest["label"].map(_is_box_answer).all())


def _is_box_answer(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("boxes"), list)


def _boxes(value: Mapping[str, Any]) -> list[tuple[str, float, float, float, float]]:
    out = []
    for box in value["boxes"]:
        if isinstance(box, Mapping):
            names = box.get("labels") or ["?"]
            x, y = float(box.get("x") or 0.0), float(box.get("y") or 0.0)
            w, h = float(box.get("width") or 0.0), float(box.get("height") or 0.0)
            out.append((str(names[0]), x, y, x + w, y + h))
    return sorted(out)


def label_text(value: Any) -> str:
    """A label as the diff compares and shows it: a set as canonical JSON, a box answer as its sorted boxes
    (``cat (10.00, 20.00, 30.00, 50.00); ...``, "no object" for none), anything else as text."""
    if isinstance(value, list | tuple):
        return json.dumps(sorted(str(v) for v in value), ensure_ascii=False)
    if _is_box_answer(value):
        shown = [f"{n} ({x0:.2f}, {y0:.2f}, {x1:.2f}, {y1:.2f})" for n, x0, y0, x1, y1 in _boxes(value)]
        return "; ".join(shown) or "no object"
    return str(value)


def _per_label(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per (item, label) of a multi-label manifest (an empty set is one row "(none of these)"), one per
    box of a box manifest (no box: one row "(no object)")."""

    def rows(v: Any) -> list[str]:
        if isinstance(v, list | tuple):
            return [str(x) for x in v] or [EMPTY_SET_ROW]
        if _is_box_answer(v):
            return [b[0] for b in _boxes(v)] or [NO_OBJECT_ROW]
        return [str(v)]

    return manifest.assign(label=manifest["label"].map(rows)).explode("label").astype({"label": str})


def _class_deltas(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    classes = sorted(set(old["label"]) | set(new["label"]))
    before = old["label"].value_counts().reindex(classes, fill_value=0)
    after = new["label"].value_counts().reindex(classes, fill_value=0)
    frame = pd.DataFrame({"class": classes, "old": before.to_numpy(), "new": after.to_numpy()})
    frame["delta"] = frame["new"] - frame["old"]
    for split in ("train", "val", "test"):
        o = old.loc[old["split"] == split, "label"].value_counts().reindex(classes, fill_value=0)
        n = new.loc[new["split"] == split, "label"].value_counts().reindex(classes, fill_value=0)
        frame[f"{split}_delta"] = (n - o).to_numpy()
    return frame.astype({c: int for c in frame.columns if c != "class"})


def vote_changes(before: pd.DataFrame, after: pd.DataFrame, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per item, the votes that differ between two vote tables (``item_id, labeler_id, label``): added,
    changed or withdrawn, one entry per labeler."""
    wanted = set(item_ids)
    out: dict[str, list[dict[str, Any]]] = {}

    def by_key(frame: pd.DataFrame) -> Mapping[tuple[str, str], str]:
        rows = frame[frame["item_id"].isin(wanted)]
        return {(str(i), str(lab)): label_text(v) for i, lab, v in rows[["item_id", "labeler_id", "label"]].itertuples(index=False)}

    old, new = by_key(before), by_key(after)
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        item, labeler = key
        out.setdefault(item, []).append({"labeler": labeler, "before": old.get(key), "after": new.get(key)})
    return out


def votes_by_item(votes: pd.DataFrame, item_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per item, its votes (labeler, label) from a vote table (``item_id, labeler_id, label``)."""
    wanted = set(item_ids)
    out: dict[str, list[dict[str, Any]]] = {}
    for item, labeler, label in votes[["item_id", "labeler_id", "label"]].itertuples(index=False):
        if item in wanted:
            out.setdefault(str(item), []).append({"labeler": str(labeler), "label": label_text(label)})
    return out


def render_diff(diff: ManifestDiff, *, examples: int = 20) -> str:
    """The diff as Markdown: counts, class deltas, relabeled items with the votes that changed them."""
    counts = diff.counts()
    lines = [
        f"## Dataset diff `{diff.old_version or '(none)'}` -> `{diff.new_version}`",
        "",
        "| added | removed | relabeled | moved between splits |",
        "|---|---|---|---|",
        f"| {counts['added']} | {counts['removed']} | {counts['relabeled']} | {counts['moved_between_splits']} |",
        "",
    ]
    if not diff.class_deltas.empty:
        lines += ["| class | old | new | delta | train | val | test |", "|---|---|---|---|---|---|---|"]
        for r in diff.class_deltas.to_dict(orient="records"):
            lines.append(
                f"| {md_text(r['class'])} | {r['old']} | {r['new']} | {r['delta']:+d} | {r['train_delta']:+d} | "
                f"{r['val_delta']:+d} | {r['test_delta']:+d} |"
            )
        lines.append("")
    if not diff.relabeled.empty:
        lines += ["Relabeled (old -> new class, the votes that changed):", ""]
        for r in diff.relabeled.head(examples).to_dict(orient="records"):
            item = str(r["item_id"])
            changed = "; ".join(
                f"labeler {v['labeler']}: {v['before'] or '-'} -> {v['after'] or '-'}"
                for v in diff.vote_changes.get(item, [])
            )
            standing = ", ".join(f"{v['labeler']}: {v['label']}" for v in diff.votes.get(item, []))
            why = (
                "its class was renamed or merged (class schema changes below)"
                if item in diff.renamed
                else f"votes changed: {changed}"
                if changed
                else f"votes unchanged ({standing or 'none'}): the consensus method re-weighed the labelers"
            )
            lines.append(f"- `{item[:12]}` ({r['split']}): {r['old_label']} -> {r['new_label']}; {why}")
        if len(diff.relabeled) > examples:
            lines.append(f"- ... and {len(diff.relabeled) - examples} more")
        lines.append("")
    lines += schema_changes_section(diff.schema_changes)
    if not diff.moved.empty:
        lines += [f"**{len(diff.moved)} frozen items moved between splits** (must be 0):", ""]
        lines += [f"- `{str(r['item_id'])[:12]}`: {r['old_split']} -> {r['new_split']}"
                  for r in diff.moved.head(examples).to_dict(orient="records")]
    return "\n".join(lines) + "\n"


_DONE = {"rename": "renamed", "merge": "merged", "split": "split"}


def schema_changes_section(changes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The "Class schema changes" section (Markdown lines; none without a change): each rename, merge and split
    with the answers it remapped, or for a split the answers that stopped counting and the items sent back."""
    if not changes:
        return []
    lines = [
        "### Class schema changes", "",
        "| class list version | change | old -> new | answers remapped | answers stopped counting | items re-queued |",
        "|---|---|---|---|---|---|",
    ]
    for c in changes:
        split = c["change"] == "split"
        old = ", ".join(md_text(str(n)) for n in c["sources"])
        new = ", ".join(md_text(str(n)) for n in c["targets"])
        requeued = f"{c.get('requeued', 0)} of {c['items']}" if split else "-"
        remapped, stopped = (0, c["answers"]) if split else (c["answers"], 0)
        done = _DONE.get(str(c["change"]), md_text(str(c["change"])))
        lines.append(f"| {c['class_list_version']} | {done} | {old} -> {new} | {remapped} | {stopped} | {requeued} |")
    lines += ["", "Renamed and merged classes keep every answer (read as the new class; no item is retracted for "
              "them). A split class's answers stop counting and their items go back to labelers.", ""]
    return lines
