"""``labeling-assets demo --task boxes``: the demo's loop on scenes of digit scans (issue 30).

The same steps as the single-label demo (Label Studio, ingest, prelabels, queue, crowd, the annotation sensor,
consensus, splits, labeler stats, training on CPU, evaluation), with a box project: every image is a scene of 0 to
4 digit scans at random places and sizes on a 160 px canvas (``core.tasks.boxes.demo_scenes``), Label Studio
shows ``RectangleLabels`` with a "No object" choice, and the simulated crowd draws boxes (two good labelers, two
average ones, a spammer; ``--annotators 6`` adds one who draws loose boxes: ``core.tasks.boxes.crowd``) posted as
Label Studio's percentages of the image.

It keeps to its own data folder, ``<data>/boxes`` (the store, Label Studio, the Dagster instance, the MLflow
store), so it never mixes with the other demos' projects. The summary scores consensus against the true boxes
(COCO mAP), each labeler's quality against the truth beside what the project measured without it, and the model's
test mAP.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from labeling_assets import env
from labeling_assets.cli.demo_multilabel import markdown_table, use_own_instance
from labeling_assets.env import data_dir

TASK_TYPE = "boxes"
HOME_NAME = "boxes"
SCENES = 300  # scenes rendered; the demo queues --items of them
CANVAS = 160  # px, square
DEFAULT_ITEMS = 300
DEFAULT_EPOCHS = 12  # the tiny detector: 210 training scenes x 12 epochs took 7.6 min on the loaded 2-core machine


def use_boxes_environment() -> Path:
    """Point this process (and the runs it starts) at the box demo: task type, data folder, Dagster instance and
    image source. Returns the rendered scenes folder. Idempotent."""
    from labeling_assets.core.tasks.boxes.demo_scenes import render_digit_scenes

    if env.variable("LABELING_ASSETS_TASK_TYPE") != TASK_TYPE:
        env.set_variable("LABELING_ASSETS_TASK_TYPE", TASK_TYPE)
        env.set_variable("LABELING_ASSETS_HOME", str(data_dir() / HOME_NAME))
    home = data_dir()
    use_own_instance(home)
    scenes = home / "demo" / "scenes"
    render_digit_scenes(scenes, n_images=SCENES, canvas=CANVAS)
    env.set_default("LABELING_ASSETS_IMAGE_SOURCE", str(scenes))
    return scenes


def scene_truth_by_item(scenes: Path) -> dict[str, list[dict[str, Any]]]:
    """item_id -> the true pixel boxes of its scene, through the ingest manifest (as the other demos map theirs)."""
    from labeling_assets.cli.common import truth_by_item
    from labeling_assets.core.ingest.demo_data import LABELS_FILE

    return {item: list(json.loads(text)) for item, text in truth_by_item(scenes / LABELS_FILE).items()}


def simulate_crowd(label_studio: Any, project_id: int, scenes: Path, classes: list[str], args: Any) -> None:
    """The box crowd draws on the queued tasks through Label Studio's API; prints each labeler's share."""
    from labeling_assets.cli.common import simulate_demo_crowd
    from labeling_assets.core.tasks.boxes.crowd import default_box_crowd
    from labeling_assets.local.box_crowd import simulate_box_crowd

    crowd = default_box_crowd(args.annotators, prefix="sim", seed=args.seed)
    simulate_demo_crowd(functools.partial(simulate_box_crowd, canvas=(CANVAS, CANVAS)), label_studio.get_client(),
                        project_id, crowd, truth=scene_truth_by_item(scenes), classes=classes, args=args)  # fmt: skip


def box_summary(
    truth: dict[str, list[dict[str, Any]]], annotations: pd.DataFrame, consensus: pd.DataFrame,
    names: dict[str, str], classes: list[str], consensus_metadata: dict[str, Any], evaluation: dict[str, Any],
) -> list[str]:
    """Lines of the box summary: consensus mAP against the true boxes, per labeler recall / false boxes per item /
    mean IoU against the truth beside the same against consensus and the consensus model's own estimates, and the
    model's test mAP (``evaluation``: the model_evaluation metadata)."""
    from labeling_assets.core.tasks.boxes.crowd_report import consensus_boxes, consensus_map, labeler_recovery

    lines = []
    if consensus.empty:
        lines.append("  consensus:                 none yet")
    else:
        found = consensus_map(truth, consensus, classes)
        n_objects = len(consensus_boxes(consensus, classes))
        lines.append(
            f"  consensus:                 {len(consensus)} items, {n_objects} boxes (truth {found.n_truth} on "
            f"{found.n_images} scored items)"
        )
        lines.append(
            f"  consensus vs true boxes:   mAP@[.5:.95] {_num(found.map)}, AP50 {_num(found.ap50)}, "
            f"AP75 {_num(found.ap75)} (boxes ranked by their item's confidence)"
        )
    table = labeler_recovery(truth, annotations, consensus, classes) if not annotations.empty else None
    estimates = markdown_table(str(consensus_metadata.get("labeler_quality") or ""))
    lines.append("  labelers, at IoU 0.5: true = against the simulated truth; cons. = against consensus; "
                 "EM = the consensus model's estimate")  # fmt: skip
    lines.append(
        f"  {'labeler':<16} {'items':>5} {'recall true':>11} {'cons.':>6} {'EM':>6} "
        f"{'false/item true':>15} {'cons.':>6} {'EM':>6} {'IoU true':>8} {'cons.':>6}"
    )
    for row in [] if table is None else table.to_dict("records"):
        name = names.get(str(row["labeler_id"]), str(row["labeler_id"]))
        em = estimates.get(name) or estimates.get(str(row["labeler_id"])) or {}
        lines.append(
            f"  {name:<16} {int(row['n_items']):>5} {_num(row['true_recall']):>11} "
            f"{_num(row['consensus_recall']):>6} {_num(em.get('recall')):>6} "
            f"{_num(row['true_false_boxes_per_item']):>15} {_num(row['consensus_false_boxes_per_item']):>6} "
            f"{_num(em.get('false boxes per item')):>6} {_num(row['true_mean_iou']):>8} "
            f"{_num(row['consensus_mean_iou']):>6}"
        )
    lines.append(
        f"  model on the test split:   mAP@[.5:.95] {_num(evaluation.get('test_map'))}, AP50 "
        f"{_num(evaluation.get('test_ap50'))}, AP75 {_num(evaluation.get('test_ap75'))} "
        f"({evaluation.get('test_items', 'n/a')} items, against their consensus boxes)"
    )
    return lines


def store_summary(scenes: Path, classes: list[str], consensus_metadata: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    """:func:`box_summary` of the store's current annotations and consensus."""
    from labeling_assets.cli.common import label_store
    from labeling_assets.core.store.queries import consensus_frame, current_annotations
    from labeling_assets.core.store.schema import labelers_table

    store = label_store()
    names = {str(r["labeler_id"]): str(r["username"] or r["display_name"] or r["labeler_id"])
             for r in store.fetch(labelers_table.select())}  # fmt: skip
    return box_summary(scene_truth_by_item(scenes), current_annotations(store), consensus_frame(store), names,
                       classes, consensus_metadata, evaluation)  # fmt: skip


def _num(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if number != number else f"{number:.3f}"
