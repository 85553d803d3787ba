"""The definitions a user sees (asset keys, groups, deps, partitions, checks, jobs, sensors, resources)
do not change by accident: they are compared with a committed snapshot.

A deliberate change regenerates it: ``LABELING_ASSETS_UPDATE_SNAPSHOT=1 pytest tests/test_definitions_snapshot.py``
and the diff of ``tests/snapshots/definitions.json`` goes into the same commit for review.
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> str | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic:{partitions_def.name}"
    return type(partitions_def).__name__


def describe(defs: dg.Definitions) -> dict[str, Any]:
    """A JSON-able description of everything the snapshot guards, in a stable order."""
    graph = defs.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "pools": sorted(node.pools or []),
        }
    checks: dict[str, Any] = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {"blocking": spec.blocking}
    repo = defs.get_repository_def()
    jobs: dict[str, Any] = {}
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue  # Dagster's implicit asset job
        selected = job.asset_layer.selected_asset_keys
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in selected),
            "partitions": _partitions(job.partitions_def),
        }
    sensors = {
        sensor.name: {
            "jobs": sorted(j.name for j in sensor.jobs) if sensor.has_jobs else [],
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in sorted(repo.sensor_defs, key=lambda s: s.name)
    }
    schedules = {
        schedule.name: {"job": schedule.job_name, "cron": schedule.cron_schedule}
        for schedule in sorted(repo.schedule_defs, key=lambda s: s.name)
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "sensors": sensors,
        "schedules": schedules,
        "resources": sorted((defs.resources or {}).keys()),
    }


def test_definitions_match_the_committed_snapshot() -> None:
    from definitions import defs

    current = describe(defs)
    if os.environ.get("LABELING_ASSETS_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, "definitions changed: review, then regenerate the snapshot (see module docstring)"


def test_a_box_projects_model_checks_are_named_after_its_map() -> None:
    """The snapshot is the single-label project's; a box project's UI names its floor and champion checks after
    mAP and holds every other check the same."""
    from labeling_assets.definitions import build_definitions, build_resources
    from labeling_assets.resources.project import ProjectSettings

    boxes = describe(build_definitions({**build_resources(), "project": ProjectSettings(task_type="boxes")}))
    expected = json.loads(SNAPSHOT.read_text())["checks"]
    names = {"test_macro_f1_above_floor": "test_map_above_floor",
             "macro_f1_not_worse_than_previous_model": "test_map_not_worse_than_previous_model"}  # fmt: skip
    renamed = {}
    for key, value in expected.items():
        for old, new in names.items():
            key = key.replace(old, new)
        renamed[key] = value
    assert boxes["checks"] == renamed
