"""What a person sees in a multi-label project: the image, a checkbox per class and "None of these", the
model's pre-fill; and two boxes ticked and submitted land in the store as one sorted list (issue 16).

The project is built through the pipeline's own path (ingest -> prelabels -> labeling_tasks, then collect) with
``task_type: multi_label`` on a real Label Studio and a real headless Chromium, as in test_labeling_in_browser.
The one image is a 2x2 grid of digit scans (the multi-label demo data) that shows exactly two digits.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.assets import collect, ingest, queue
from labeling_assets.core.ingest.demo_data import GOLD_FILE, GRID_CLASSES, load_truth_sets, render_digit_grids
from labeling_assets.core.label_sets import NONE_OF_THESE
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    items_table,
    prelabels_table,
    utcnow,
)
from labeling_assets.jobs import collect_job, ingest_job, queue_job
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import (
    UI_WAIT_S,
    checked_choices,
    loaded_task_image,
    log_in,
    screenshot_kept,
    submit,
    ui_task_id,
)
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

PROJECT_TITLE = "grids-in-the-browser"


@dataclass
class GridProject:
    ls: LabelStudioServer
    store: LabelStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    truth: list[str]  # the two digits the one image shows, sorted

    @property
    def project_id(self) -> int:
        (pid,) = [p["id"] for p in self.ls.client().list_projects() if p["title"] == PROJECT_TITLE]
        return int(pid)


@pytest.fixture(scope="module")
def grid_project(
    image_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GridProject]:
    source = tmp_path_factory.mktemp("grids")
    render_digit_grids(source, n_images=30, seed=3)
    (source / GOLD_FILE).unlink()
    truth = load_truth_sets(source)
    chosen = next(name for name, digits in sorted(truth.items()) if len(set(digits)) == 2)
    for png in source.glob("*.png"):
        if png.name != chosen:
            png.unlink()  # one task: the label stream serves exactly this image
    store = LabelStore(f"sqlite:///{tmp_path_factory.mktemp('store') / 'labels.db'}")
    store.migrate()
    defs = dg.Definitions(
        assets=[ingest.raw_images, queue.labeling_tasks, collect.annotations],
        jobs=[ingest_job, queue_job, collect_job],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "label_studio": LabelStudioResource(
                url=image_server.url, api_key=dg.EnvVar("LABEL_STUDIO_API_KEY"), project_title=PROJECT_TITLE
            ),
            "project": ProjectSettings(
                data_dir=str(image_server.files_root), classes=list(GRID_CLASSES), task_type="multi_label"
            ),
            "image_source": ImageSourceResource(uri=str(source), demo_dir=str(source)),
        },
    )
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        env.setenv("LABEL_STUDIO_API_KEY", image_server.token)
        assert defs.resolve_job_def("ingest_job").execute_in_process(instance=instance).success
        (item,) = store.fetch(sa.select(items_table.c.item_id))
        with store.begin() as conn:  # the model sees nothing: it pre-fills "None of these"
            conn.execute(
                prelabels_table.insert(),
                [{"item_id": item["item_id"], "model_version": "sigmoid/1", "computed_at": utcnow(),
                  "probs": {c: 0.05 for c in GRID_CLASSES}}],
            )  # fmt: skip
        run = defs.resolve_job_def("queue_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"labeling_tasks": {"config": {"overlap": 1, "gold_rate": 0.0}}}},
        )
        assert run.success
        yield GridProject(image_server, store, instance, defs, sorted(set(truth[chosen])))
    store.dispose()


@pytest.fixture(scope="module")
def grid_labeler(image_server: LabelStudioServer) -> Labeler:
    return sign_up(image_server, "grid.labeler@labeling-assets.local")


def _boxes(driver: WebDriver) -> list[str]:
    return [
        box.get_attribute("name") or ""
        for box in driver.find_elements(By.CSS_SELECTOR, "input.ant-checkbox-input")
    ]


def _click(driver: WebDriver, choice: str) -> None:
    driver.find_element(By.XPATH, f"//input[@name={json.dumps(choice)}]/ancestor::label").click()


def test_a_labeler_ticks_two_findings_in_the_browser_and_the_store_holds_them_as_a_sorted_list(
    grid_project: GridProject, grid_labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    url, wait = grid_project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "multilabel-in-browser.png"
    first, second = grid_project.truth
    with screenshot_kept(chromium, screenshot):
        log_in(chromium, wait, url, grid_labeler)

        chromium.get(f"{url}/projects/{grid_project.project_id}/data?labeling=1")
        image = loaded_task_image(chromium, wait)
        assert image["naturalWidth"] == image["naturalHeight"] > 0, f"the grid image did not decode: {image}"
        task_id = wait.until(ui_task_id, "the labeling UI never showed a task")
        assert _boxes(chromium) == [
            *GRID_CLASSES,
            NONE_OF_THESE,
        ]  # a checkbox per class, then "None of these"
        wait.until(lambda d: checked_choices(d), "nothing pre-checked: the prediction is not shown")
        assert checked_choices(chromium) == [NONE_OF_THESE]

        _click(chromium, NONE_OF_THESE)  # the person sees two digits: not "none"
        _click(chromium, second)  # ticked in reverse order: the store sorts, whatever the order of the clicks
        _click(chromium, first)
        wait.until(
            lambda d: sorted(checked_choices(d)) == [first, second], "the two digits are not both ticked"
        )
        chromium.save_screenshot(str(screenshot))
        client = grid_project.ls.client()
        submit(chromium, wait, client, task_id)

    run = grid_project.defs.resolve_job_def("collect_job").execute_in_process(instance=grid_project.instance)
    assert run.success
    (stored,) = grid_project.store.fetch(current_annotations_query())
    assert stored["ls_task_id"] == task_id
    assert stored["label"] == [first, second]  # one sorted list: the set the person ticked
    assert stored["labeler_id"] == str(grid_labeler.user_id)
