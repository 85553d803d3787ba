"""Labeling guidelines on a real Label Studio: the text reaches the instructions of the labeling, review and spot-check
projects (read back through the API), is shown before labeling, and a changed file is a new version."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from labeling_assets.assets.guidelines import labeling_guidelines
from labeling_assets.core.labelstudio.config import TO_NAME
from labeling_assets.core.labelstudio.review import review_title
from labeling_assets.core.labelstudio.spot_check import spot_check_title
from labeling_assets.core.store.guidelines import guideline_versions, version_at, versions_in_force
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.labelstudio_server import LabelStudioServer

pytestmark = pytest.mark.labelstudio

TITLE = "guidelines-test"


def test_the_guidelines_reach_every_projects_instructions_and_a_changed_file_is_a_new_version(
    label_studio: LabelStudioServer, sqlite_store: LabelStore, data_dir: Path, tmp_path: Path
) -> None:
    client = label_studio.client()
    labeling_id = client.ensure_project(title=TITLE, classes=["seven", "one"], overlap=1)
    review_id, spot_id = (
        client.ensure_review_project(title=title, label_config=client.label_config(labeling_id))
        for title in (review_title(TITLE), spot_check_title(TITLE))
    )
    guide = tmp_path / "guidelines.md"
    guide.write_text("# Digits\n\nA **seven** may have a bar.\n\n<script>alert(1)</script>\n")
    resources = {
        "label_store": LabelStoreResource(url=sqlite_store.url),
        "label_studio": label_studio.resource(TITLE),
        "project": ProjectSettings(data_dir=str(data_dir), guidelines_path=str(guide)),
    }

    def push() -> dict[str, object]:
        result = dg.materialize([labeling_guidelines], resources=resources)
        [event] = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    first = push()
    assert (first["guideline_version"], first["new_version"]) == (1, True)
    assert set(first["pushed_to_projects"]) == {labeling_id, review_id, spot_id}  # type: ignore[call-overload]
    for project_id in (labeling_id, review_id, spot_id):
        project = client.get_project(project_id)  # read back from Label Studio
        assert project["show_instruction"] is True
        assert "<h1>Digits</h1>" in project["expert_instruction"]
        assert "<strong>seven</strong>" in project["expert_instruction"]
        assert "<script>" not in project["expert_instruction"]
        assert "Guidelines version 1" in project["expert_instruction"]

    client.import_tasks(labeling_id, [{"data": {TO_NAME: "/x.png", "item_id": f"i{n}"}} for n in (1, 2)])
    tasks = client.task_ids_by_item(labeling_id)
    me = int(client.whoami()["id"])
    client.create_annotation(tasks["i1"], "seven", completed_by=me)  # answered under version 1

    # Unchanged: Label Studio kept the HTML as sent, so nothing is pushed again.
    again = push()
    assert (again["guideline_version"], again["new_version"], again["pushed_to_projects"]) == (1, False, [])

    guide.write_text("# Digits\n\nA **seven** never has a bar.\n")
    second = push()
    assert (second["guideline_version"], second["new_version"]) == (2, True)
    instructions = client.get_project(labeling_id)["expert_instruction"]
    assert "never has a bar" in instructions and "Guidelines version 2" in instructions
    assert [v.version for v in guideline_versions(sqlite_store)] == [1, 2]
    in_force = versions_in_force(sqlite_store)  # at Label Studio's clock, in push order
    assert [v for v, _ in in_force] == [1, 2]
    assert before <= in_force[0][1] <= in_force[1][1] <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    # Label Studio's clock dates its answers and the pushes alike: each answer falls under the version it was given in.
    client.create_annotation(tasks["i2"], "one", completed_by=me)
    answers = sorted((a for page in client.changed_tasks_since(labeling_id, None) for task in page for a in task.annotations),
                     key=lambda a: a.ls_annotation_id)  # fmt: skip
    assert version_at([dt.datetime.fromisoformat(str(a.updated_at)) for a in answers], in_force) == [1, 2]
