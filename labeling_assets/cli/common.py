"""What the CLI commands share: the local Dagster instance, the label store, the class list, the demo's truth."""

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from labeling_assets import env
from labeling_assets.constants import REPO_ROOT
from labeling_assets.core.ingest.demo_data import LABELS_FILE
from labeling_assets.core.ingest.scan import load_label_csv
from labeling_assets.core.store.schema import LabelStore, source_files_table
from labeling_assets.resources.project import ProjectSettings


def use_local_instance() -> None:
    """Runs launched from the CLI land in the same instance as ``dagster dev`` (the repository's dagster.yaml).

    Only the instance is chosen here: Label Studio, the store and MLflow are found by the resources when a
    run starts, as under ``dagster dev``.
    """
    absolute_paths_in_environment()
    env.set_default("DAGSTER_HOME", str(REPO_ROOT))
    # Before the definitions import matplotlib (reports, plots): its font cache goes to the data folder too.
    env.set_default("MPLCONFIGDIR", str(env.data_dir() / "cache" / "matplotlib"))
    os.chdir(REPO_ROOT)  # workspace files are relative to the repository root (dagster.yaml's to the data folder)


# Variables that may hold a local path: relative to the folder the command was started in, as a user means it.
PATH_VARIABLES = ("LABELING_ASSETS_IMAGE_SOURCE", "LABELING_ASSETS_HOME", "DAGSTER_HOME")


def absolute_paths_in_environment(cwd: Path | None = None) -> None:
    """Make relative paths in the environment absolute against ``cwd`` (the user's working folder) before
    the CLI moves to the repository root: ``LABELING_ASSETS_IMAGE_SOURCE=photos`` means ``./photos`` where
    the command was typed, not ``<repo>/photos``. A relative SQLite store path too; URIs (``s3://...``) stay."""
    base = cwd or Path.cwd()
    for name in PATH_VARIABLES:
        value = env.variable(name)
        if value and "://" not in value and not Path(value).expanduser().is_absolute():
            env.set_variable(name, str((base / value).resolve()))
    url = env.variable("LABEL_STORE_URL") or ""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/") and url[len(prefix) :] not in ("", ":memory:"):
        env.set_variable("LABEL_STORE_URL", prefix + str((base / url[len(prefix) :]).resolve()))


def label_store() -> LabelStore:
    """The label store the resources use (``$LABEL_STORE_URL`` or SQLite under the data folder)."""
    return LabelStore(env.label_store_url(), cache_dir=env.store_cache_dir())


def project_classes() -> list[str]:
    """The class list of the ``project`` resource."""
    return list(ProjectSettings().classes)


def demo_truth_csv() -> Path:
    """The bundled demo's ground truth (``filename,label``), written beside the rendered digits."""
    return env.demo_dir() / LABELS_FILE


def truth_by_item(truth_csv: Path, store: LabelStore | None = None) -> dict[str, str]:
    """item_id -> true class: the CSV's file names mapped through the ingest manifest (source files)."""
    by_name = load_label_csv(truth_csv)
    rows = (store or label_store()).fetch(
        sa.select(source_files_table.c.path, source_files_table.c.item_id).where(
            source_files_table.c.item_id.isnot(None)
        )
    )
    out: dict[str, str] = {}
    for row in rows:
        label = by_name.get(row["path"]) or by_name.get(Path(row["path"]).name)
        if label is not None:
            out[row["item_id"]] = label
    return out


def simulate_demo_crowd(
    simulate: Callable[..., Any],
    client: Any,
    project_id: int,
    crowd: Sequence[Any],
    *,
    truth: Mapping[str, Any],
    classes: list[str],
    args: Any,
) -> None:
    """The demo's simulated crowd labels the queued tasks through Label Studio's API (``simulate``:
    ``local.crowd.simulate_crowd`` or ``simulate_set_crowd``), a progress line at most every 5 s; prints each
    labeler's share."""
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 5 or done == total:
            print(f"    {done}/{total} annotations submitted", flush=True)
            last[0] = time.perf_counter()

    result = simulate(client, project_id, crowd, truth=truth, classes=classes, overlap=args.overlap,
                      seed=args.seed, progress=progress)  # fmt: skip
    per = result.per_labeler()
    for spec in crowd:
        print(f"    {spec.name:<16} {spec.preset:<8} {per[spec.name]:>5} annotations")
