"""A simulated box crowd (tests, benchmarks, the demo): scenes of several objects on a canvas, and labelers
who jitter corners, miss objects, draw false boxes, pick a wrong class, draw loose boxes, or spam.

The truth stays apart from the answers: :func:`simulate_boxes` returns votes and boxes in the shape
:func:`.votes.box_votes` gives, and the truth in the shape of gold boxes. The demo's crowd
(:func:`default_box_crowd`) answers named scenes by :func:`plan_box_crowd`, the same draws as posts to make.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.tasks.boxes.geometry import iou_matrix
from labeling_assets.core.tasks.boxes.votes import BOX_COLUMNS

CANVAS = (640.0, 480.0)
TRUTH_COLUMNS = ["item_id", "label", "x0", "y0", "x1", "y1"]


@dataclass(frozen=True)
class BoxLabeler:
    """How one simulated labeler draws: ``recall`` (draws a real object), ``false_boxes`` (mean false boxes
    per item, Poisson), ``jitter`` (sd of each edge, relative to the object's size), ``scale`` (how much larger
    than the object they draw: 1.0 tight), ``wrong_class`` (chance a drawn object gets another class)."""

    labeler_id: str
    recall: float = 0.92
    false_boxes: float = 0.1
    jitter: float = 0.04
    scale: float = 1.0
    wrong_class: float = 0.02


def good(labeler_id: str, rng: np.random.Generator) -> BoxLabeler:
    """A careful labeler, a little different from the next."""
    return BoxLabeler(labeler_id, recall=float(rng.uniform(0.88, 0.97)), false_boxes=float(rng.uniform(0.05, 0.2)),
                      jitter=float(rng.uniform(0.02, 0.06)), wrong_class=float(rng.uniform(0.0, 0.04)))  # fmt: skip


def average(labeler_id: str, rng: np.random.Generator) -> BoxLabeler:
    """A hastier labeler: misses more, draws more false boxes, less precisely."""
    return BoxLabeler(labeler_id, recall=float(rng.uniform(0.7, 0.85)), false_boxes=float(rng.uniform(0.3, 0.6)),
                      jitter=float(rng.uniform(0.06, 0.1)), wrong_class=float(rng.uniform(0.05, 0.1)))  # fmt: skip


def spammer(labeler_id: str) -> BoxLabeler:
    """Draws a few boxes anywhere, now and then near an object, classes at random."""
    return BoxLabeler(labeler_id, recall=0.25, false_boxes=2.5, jitter=0.25, wrong_class=0.6)


def loose(labeler_id: str) -> BoxLabeler:
    """Finds the objects but draws boxes a third larger than them, unevenly."""
    return BoxLabeler(labeler_id, recall=0.93, false_boxes=0.1, jitter=0.08, scale=1.3, wrong_class=0.02)


def make_scenes(
    n_items: int, classes: Sequence[str], rng: np.random.Generator, *, max_objects: int = 6,
    empty_share: float = 0.1, canvas: tuple[float, float] = CANVAS,
) -> pd.DataFrame:
    """The truth of ``n_items`` scenes: up to ``max_objects`` objects each (``empty_share`` of scenes empty),
    sides 24 to 160 px, placed at random and overlapping another object by IoU 0.3 at most."""
    rows = []
    width, height = canvas
    for n in range(n_items):
        item = f"scene-{n:06d}"
        k = 0 if rng.random() < empty_share else int(rng.integers(1, max_objects + 1))
        placed: list[list[float]] = []
        for _ in range(k * 10):
            if len(placed) == k:
                break
            w, h = rng.uniform(24, 160, size=2)
            x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
            box = [x0, y0, x0 + w, y0 + h]
            if placed and iou_matrix(np.array([box]), np.array(placed)).max() > 0.3:
                continue
            placed.append(box)
            rows.append((item, str(classes[int(rng.integers(len(classes)))]), *box))
        if not placed:
            rows.append((item, None, np.nan, np.nan, np.nan, np.nan))  # an empty scene is still a scene
    truth = pd.DataFrame(rows, columns=TRUTH_COLUMNS)
    return truth


def _draw(
    labeler: BoxLabeler, objects: list[tuple[str, float, float, float, float]], classes: Sequence[str],
    rng: np.random.Generator, canvas: tuple[float, float],
) -> list[tuple[str, float, float, float, float]]:
    out = []
    width, height = canvas
    for label, x0, y0, x1, y1 in objects:
        if rng.random() >= labeler.recall:
            continue
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        edges = rng.normal(0, labeler.jitter, size=4) * np.array([w, h, w, h])
        hw, hh = w * labeler.scale / 2, h * labeler.scale / 2
        box = np.array([cx - hw, cy - hh, cx + hw, cy + hh]) + edges
        if rng.random() < labeler.wrong_class and len(classes) > 1:
            label = str(rng.choice([c for c in classes if c != label]))
        out.append((str(label), *box.tolist()))
    for _ in range(int(rng.poisson(labeler.false_boxes))):
        w, h = rng.uniform(24, 160, size=2)
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        out.append((str(classes[int(rng.integers(len(classes)))]), x0, y0, x0 + w, y0 + h))
    clipped = []
    for label, a, b, c, d in out:
        a, b, c, d = max(a, 0.0), max(b, 0.0), min(c, width), min(d, height)
        if c - a >= 1 and d - b >= 1:  # what box_votes would refuse, the simulated editor never submits
            clipped.append((label, a, b, c, d))
    return clipped


def simulate_boxes(
    truth: pd.DataFrame, labelers: Sequence[BoxLabeler], overlap: int, classes: Sequence[str],
    rng: np.random.Generator, canvas: tuple[float, float] = CANVAS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Votes (``item_id, labeler_id, n_boxes``) and boxes (``BOX_COLUMNS``) of ``overlap`` labelers per scene,
    drawn at random from ``labelers``; a labeler who draws nothing answers "No object" (a vote with no boxes)."""
    votes: list[tuple[object, ...]] = []
    rows: list[tuple[object, ...]] = []
    scenes: dict[str, list[tuple[str, float, float, float, float]]] = {}
    for item, label, x0, y0, x1, y1 in truth[TRUTH_COLUMNS].itertuples(index=False):
        objects = scenes.setdefault(str(item), [])
        if isinstance(label, str):
            objects.append((label, float(x0), float(y0), float(x1), float(y1)))
    for item in sorted(scenes):
        scene = scenes[item]
        chosen = rng.choice(len(labelers), size=min(overlap, len(labelers)), replace=False)
        for n in sorted(chosen.tolist()):
            labeler = labelers[n]
            drawn = _draw(labeler, scene, classes, rng, canvas)
            votes.append((item, labeler.labeler_id, len(drawn)))
            rows.extend((item, labeler.labeler_id, *box) for box in drawn)
    return (pd.DataFrame(votes, columns=["item_id", "labeler_id", "n_boxes"]),
            pd.DataFrame(rows, columns=BOX_COLUMNS))  # fmt: skip


def truth_boxes(truth: pd.DataFrame) -> pd.DataFrame:
    """The objects of the truth (empty scenes hold none)."""
    return truth.dropna(subset=["label"]).reset_index(drop=True)


def scene_truth(truth: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """The truth of named scenes (item -> pixel boxes ``{label, x0, y0, x1, y1}``, ``[]`` for an empty scene) in
    the shape :func:`make_scenes` gives (``TRUTH_COLUMNS``; an empty scene is one row without a label)."""
    rows: list[tuple[object, ...]] = []
    for item, boxes in truth.items():
        rows.extend((str(item), str(b["label"]), *(float(b[k]) for k in ("x0", "y0", "x1", "y1"))) for b in boxes)
        if not boxes:
            rows.append((str(item), None, np.nan, np.nan, np.nan, np.nan))
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


# The demo's box crowd, in the order members join: ``n`` labelers cycle through these presets.
BOX_CROWD_PRESETS = ("good", "good", "average", "average", "spammer", "loose")
# Median seconds per answer (lognormal, sigma 0.5): drawing boxes takes longer than ticking a class; a spammer
# clicks through.
BOX_LEAD_TIME_S = {"good": 25.0, "average": 18.0, "spammer": 5.0, "loose": 15.0}


@dataclass(frozen=True)
class BoxCrowdMember:
    """A simulated labeler of a box project: ``name`` (the Label Studio username), ``preset`` and how they draw."""

    name: str
    preset: str
    labeler: BoxLabeler


def default_box_crowd(n: int = 5, *, prefix: str = "sim", seed: int = 0) -> list[BoxCrowdMember]:
    """``n`` labelers cycling good, good, average, average, spammer, loose (``BOX_CROWD_PRESETS``), named
    ``<prefix>_<i>_<preset>``; the good and average ones draw a little differently from each other (``seed``)."""
    rng = np.random.default_rng([seed, 3])
    members = []
    for i in range(n):
        preset = BOX_CROWD_PRESETS[i % len(BOX_CROWD_PRESETS)]
        name = f"{prefix}_{i:02d}_{preset}"
        if preset in ("good", "average"):
            labeler = (good if preset == "good" else average)(name, rng)
        else:
            labeler = (spammer if preset == "spammer" else loose)(name)
        members.append(BoxCrowdMember(name, preset, labeler))
    return members


@dataclass(frozen=True)
class PlannedBoxes:
    """One answer to post: ``labeler`` draws ``boxes`` (pixel ``{label, x0, y0, x1, y1}``; none: "No object")."""

    item_id: str
    labeler: str
    boxes: tuple[dict[str, Any], ...]
    lead_time_s: float


def plan_box_crowd(
    truth: Mapping[str, Sequence[Mapping[str, Any]]], crowd: Sequence[BoxCrowdMember], classes: Sequence[str], *,
    overlap: int, seed: int, canvas: tuple[float, float], already_done: Mapping[str, set[str]] | None = None,
) -> list[PlannedBoxes]:
    """Who answers which scene with which boxes (:func:`simulate_boxes`: ``overlap`` members per scene) and how
    long it took. The same truth, crowd and seed give the same plan, so the answers ``already_done`` (item ->
    usernames) are left out and a second run only posts what the first did not."""
    if len({m.name for m in crowd}) != len(crowd):
        raise ValueError("the crowd's names must be distinct")
    rng = np.random.default_rng([seed, 4])
    votes, boxes = simulate_boxes(scene_truth(truth), [m.labeler for m in crowd], overlap, classes, rng, canvas)
    drawn = {key: g for key, g in boxes.groupby(["item_id", "labeler_id"], sort=False)}
    preset = {m.name: m.preset for m in crowd}
    times = rng.lognormal(0.0, 0.5, size=len(votes))
    done = already_done or {}
    plan = []
    for (item, name), t in zip(votes[["item_id", "labeler_id"]].itertuples(index=False), times, strict=True):
        if name in done.get(item, set()):
            continue
        mine = drawn.get((item, name))
        records = [] if mine is None else mine[["label", "x0", "y0", "x1", "y1"]].to_dict("records")
        found = tuple({str(k): v for k, v in r.items()} for r in records)
        plan.append(PlannedBoxes(str(item), str(name), found, float(BOX_LEAD_TIME_S[preset[name]] * t)))
    return plan
