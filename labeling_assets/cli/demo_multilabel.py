"""``labeling-assets demo --task multi-label``: the demo's loop on the bundled digit grids (issue 16).

The same steps as the single-label demo (Label Studio, ingest, prelabels, queue, crowd, the annotation
sensor, consensus, splits, labeler stats, training on CPU, evaluation), with a multi-label project: every
image is a 2x2 grid of digit scans whose labels are the digits present (``core.ingest.demo_data``), Label
Studio shows checkboxes and "None of these", and the simulated crowd ticks sets with per-class misses and
false alarms (expert, average, lazy, spammer: ``core.labelstudio.crowd.plan_set_crowd``).

It keeps to its own data folder, ``<data>/multi-label`` (the store, Label Studio, the Dagster instance, the
MLflow store), so it never mixes with the single-label demo's project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labeling_assets import env
from labeling_assets.constants import REPO_ROOT
from labeling_assets.env import data_dir

HOME_NAME = "multi-label"
GRIDS = 1000  # grid images rendered; the demo queues --items of them
INSTANCE_FOLDER = "dagster_home"  # in the demo's data folder


def use_multi_label_environment() -> Path:
    """Point this process (and the runs it starts) at the multi-label demo: task type, data folder, Dagster
    instance and image source. Returns the rendered grids folder. Idempotent."""
    from labeling_assets.core.ingest.demo_data import render_digit_grids

    if env.variable("LABELING_ASSETS_TASK_TYPE") != "multi_label":
        env.set_variable("LABELING_ASSETS_TASK_TYPE", "multi_label")
        env.set_variable("LABELING_ASSETS_HOME", str(data_dir() / HOME_NAME))
    home = data_dir()
    use_own_instance(home)
    grids = home / "demo" / "grids"
    render_digit_grids(grids, n_images=GRIDS)
    env.set_default("LABELING_ASSETS_IMAGE_SOURCE", str(grids))
    return grids


def use_own_instance(home: Path) -> None:
    """Runs go to a Dagster instance of the demo's own, in its data folder ``home``. scripts/setup.sh points
    DAGSTER_HOME at the repository root: that is the single-label demo's instance, whose storage (data/dagster)
    another demo's runs must not share. Only an instance the user chose is kept."""
    chosen = env.variable("DAGSTER_HOME")
    # Its own instance is made again too: `--fresh` empties the data folder that holds it.
    if chosen is None or Path(chosen).resolve() in (REPO_ROOT.resolve(), (home / INSTANCE_FOLDER).resolve()):
        env.set_variable("DAGSTER_HOME", str(_instance_home(home)))


def _instance_home(home: Path) -> Path:
    """A Dagster instance of its own: the repository's dagster.yaml with its storage under ``home``."""
    folder = home / INSTANCE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO_ROOT / "dagster.yaml").read_text()  # its relative base_dirs are in the data folder, ``home``
    target = folder / "dagster.yaml"
    if not target.is_file() or target.read_text() != text:
        target.write_text(text)
    return folder


def truth_sets_by_item(grids: Path) -> dict[str, list[str]]:
    """item_id -> the true label set, through the ingest manifest (as the single-label demo maps its truth)."""
    import json

    from labeling_assets.cli.common import truth_by_item
    from labeling_assets.core.ingest.demo_data import LABELS_FILE

    return {item: list(json.loads(text)) for item, text in truth_by_item(grids / LABELS_FILE).items()}


def simulate_crowd(label_studio: Any, project_id: int, grids: Path, classes: list[str], args: Any) -> None:
    """The multi-label crowd labels the queued tasks through Label Studio's API; prints each labeler's share."""
    from labeling_assets.cli.common import simulate_demo_crowd
    from labeling_assets.core.labelstudio.crowd import default_set_crowd
    from labeling_assets.local.crowd import simulate_set_crowd

    crowd = default_set_crowd(args.annotators, prefix="sim")
    simulate_demo_crowd(simulate_set_crowd, label_studio.get_client(), project_id, crowd,
                        truth=truth_sets_by_item(grids), classes=classes, args=args)  # fmt: skip


def per_label_summary(grids: Path, classes: list[str], evaluation: dict[str, Any]) -> list[str]:
    """Lines of the per-label table: true prevalence, consensus precision/recall/F1 against the truth, and
    the model's test F1 (at its per-class thresholds), ROC-AUC and AP from the model_evaluation table."""
    import pandas as pd

    from labeling_assets.cli.common import label_store
    from labeling_assets.core.consensus.multilabel import per_class_f1
    from labeling_assets.core.store.schema import latest_consensus_query

    truth = truth_sets_by_item(grids)
    rows = pd.DataFrame(label_store().fetch(latest_consensus_query()))
    consensus = {} if rows.empty else dict(zip(rows["item_id"], rows["label"], strict=True))
    scored = {item: labels for item, labels in consensus.items() if isinstance(labels, list)}
    scores = per_class_f1(scored, truth, classes).set_index("class") if scored else None
    model = markdown_table(str(evaluation.get("per_label") or ""))
    header = (
        f"  {'label':<6} {'prevalence':>10} {'cons. P':>8} {'cons. R':>8} {'cons. F1':>8} "
        f"{'test pos.':>9} {'model F1':>8} {'test AUC':>8} {'test AP':>8}"
    )
    lines = [header]
    n = max(len(truth), 1)
    for name in classes:
        prevalence = sum(name in labels for labels in truth.values()) / n
        row = scores.loc[name] if scores is not None else None
        test = model.get(name, {})
        lines.append(
            f"  {name:<6} {_num(prevalence):>10} {_num(row, 'precision'):>8} {_num(row, 'recall'):>8} "
            f"{_num(row, 'f1'):>8} {test.get('positives', 'n/a'):>9} {_num(test.get('F1')):>8} "
            f"{_num(test.get('AUC')):>8} {_num(test.get('AP')):>8}"
        )
    exact = [sorted(scored[i]) == truth[i] for i in scored if i in truth]
    macro = scores.loc["macro", "f1"] if scores is not None else None
    lines.append(
        f"  consensus: {len(scored)} items, macro F1 {_num(macro)}, exact-set accuracy "
        f"{_num(sum(exact) / len(exact) if exact else None)} (against the true sets)"
    )
    lines.append(
        f"  model on the test split: macro ROC-AUC {_num(evaluation.get('test_macro_auc'))}, mAP "
        f"{_num(evaluation.get('test_macro_map'))}, macro F1 {_num(evaluation.get('test_macro_f1'))}, "
        f"exact match {_num(evaluation.get('test_exact_match'))}"
    )
    return lines


def markdown_table(text: str) -> dict[str, dict[str, str]]:
    """A Markdown table keyed by its first column: {row name: {column header: cell}} ({} for no table)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if "|" in line
    ]
    if len(rows) < 2:
        return {}
    header = rows[0]
    return {row[0]: dict(zip(header, row, strict=False)) for row in rows[2:] if row}


def _num(value: Any, column: str | None = None) -> str:
    if value is not None and column is not None:
        value = value[column]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if number != number else f"{number:.3f}"
