"""What a person sees: the task images load, the prelabel is pre-selected, and a submitted choice reaches the store.

One project is built through the pipeline's own path (ingest -> prelabels -> labeling_tasks) on a real Label
Studio whose document root is the project's data folder; the admin adds a labeler (sign-up is by invite only),
who logs in through Label Studio's form, then labels the next task of the label stream in a real headless Chromium. The tests run in file order.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.assets import collect, ingest, queue
from labeling_assets.constants import DEMO_CLASSES
from labeling_assets.core.ingest.demo_data import GOLD_FILE, load_truth, render_digits
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
from labeling_assets.sensors import annotation_sensor
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

N_ITEMS = 3  # digits 0, 1, 2
PREDICTED = (
    "7"  # every prelabel says 7: wrong for all of them, so the store can only hold the person's choice
)
MODEL_VERSION = "browser-test/1"
PROJECT_TITLE = "digits-in-the-browser"


@dataclass
class Project:
    ls: LabelStudioServer
    store: LabelStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    label_studio: LabelStudioResource
    truth_by_item: dict[str, str]

    @property
    def project_id(self) -> int:
        (pid,) = [p["id"] for p in self.ls.client().list_projects() if p["title"] == PROJECT_TITLE]
        return int(pid)

    def queue(self) -> dict[str, Any]:
        result = self.defs.resolve_job_def("queue_job").execute_in_process(
            instance=self.instance,
            run_config={"ops": {"labeling_tasks": {"config": {"overlap": 1, "gold_rate": 0.0}}}},
        )
        assert result.success
        (event,) = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    def storages(self) -> list[dict[str, Any]]:
        client = self.ls.client()
        found: list[dict[str, Any]] = client.request(
            "GET", "/api/storages/localfiles", params={"project": self.project_id}
        )
        return found


@pytest.fixture(scope="module")
def project(image_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    source = tmp_path_factory.mktemp("digits")
    render_digits(source, limit=N_ITEMS)
    (source / GOLD_FILE).unlink()  # gold is hidden among tasks elsewhere; here every task is an ordinary one
    store = LabelStore(f"sqlite:///{tmp_path_factory.mktemp('store') / 'labels.db'}")
    store.migrate()
    label_studio = LabelStudioResource(
        url=image_server.url, api_key=dg.EnvVar("LABEL_STUDIO_API_KEY"), project_title=PROJECT_TITLE
    )
    defs = dg.Definitions(
        assets=[ingest.raw_images, queue.labeling_tasks, collect.annotations],
        jobs=[ingest_job, queue_job, collect_job],
        sensors=[annotation_sensor],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "label_studio": label_studio,
            "project": ProjectSettings(data_dir=str(image_server.files_root), classes=DEMO_CLASSES),
            "image_source": ImageSourceResource(uri=str(source), demo_dir=str(source)),
        },
    )
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        env.setenv("LABEL_STUDIO_API_KEY", image_server.token)  # the resource reads it through dg.EnvVar
        assert defs.resolve_job_def("ingest_job").execute_in_process(instance=instance).success
        items = store.fetch(sa.select(items_table.c.item_id, items_table.c.source_path))
        truth = load_truth(source)
        with store.begin() as conn:
            conn.execute(
                prelabels_table.insert(),
                [
                    {
                        "item_id": row["item_id"],
                        "model_version": MODEL_VERSION,
                        "probs": {c: (0.91 if c == PREDICTED else 0.01) for c in DEMO_CLASSES},
                        "computed_at": utcnow(),
                    }
                    for row in items
                ],
            )
        built = Project(
            image_server,
            store,
            instance,
            defs,
            label_studio,
            {row["item_id"]: truth[Path(row["source_path"]).name] for row in items},
        )
        metadata = built.queue()
        assert metadata["pushed"] == N_ITEMS and metadata["with_predictions"] == N_ITEMS
        yield built
    store.dispose()


@pytest.fixture(scope="module")
def labeler(image_server: LabelStudioServer) -> Labeler:
    return sign_up(image_server, "first.labeler@labeling-assets.local")


def test_every_task_image_answers_200_with_the_item_bytes_for_a_logged_in_labeler(
    project: Project, labeler: Labeler
) -> None:
    http = labeler.session(project.ls.url)
    tasks = list(project.ls.client().iter_tasks(project.project_id))
    assert len(tasks) == N_ITEMS
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=raw/"), url
        resp = http.get(f"{project.ls.url}{url}", timeout=30)
        assert resp.status_code == 200, f"{url} -> HTTP {resp.status_code} for {labeler.email}"
        assert resp.headers["Content-Type"] == "image/png"
        assert hashlib.sha256(resp.content).hexdigest() == task["data"]["item_id"]  # the item's own bytes


def test_the_image_storage_is_registered_once_and_re_created_when_deleted(project: Project) -> None:
    (storage,) = project.storages()
    assert storage["path"] == str(project.ls.files_root / "served" / "raw")  # the root holds only the raw store
    assert storage["regex_filter"] == "^$"  # a Sync pressed in the UI imports nothing (gold stays out)
    assert project.ls.client().get_project(project.project_id)["task_number"] == N_ITEMS
    assert "images served from" in project.queue()["images_served"]
    assert [s["id"] for s in project.storages()] == [storage["id"]]  # idempotent
    project.ls.client().request("DELETE", f"/api/storages/localfiles/{storage['id']}")
    assert project.storages() == []
    assert "images served from" in project.queue()["images_served"]  # the next run repairs it
    assert len(project.storages()) == 1


def test_a_labeler_labels_the_next_task_in_the_browser_and_the_sensor_brings_it_to_the_store(
    project: Project, labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    url, wait = project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "labeling-in-browser.png"
    with screenshot_kept(chromium, screenshot):
        log_in(chromium, wait, url, labeler)

        chromium.get(
            f"{url}/projects/{project.project_id}/data?labeling=1"
        )  # "Label All Tasks": the label stream
        image = loaded_task_image(chromium, wait)
        assert image["naturalWidth"] > 0, f"the task image did not decode: {image}"
        task_id = wait.until(ui_task_id, "the labeling UI never showed a task")
        wait.until(lambda d: checked_choices(d), "no choice pre-selected: the prelabel is not shown")
        assert checked_choices(chromium) == [PREDICTED]

        task = project.ls.client().request("GET", f"/api/tasks/{task_id}/")
        item_id = task["data"]["item_id"]
        chosen = project.truth_by_item[item_id]  # the person labels what the image shows
        assert chosen != PREDICTED
        chromium.find_element(By.XPATH, f"//input[@name='{chosen}']/ancestor::label").click()
        wait.until(lambda d: checked_choices(d) == [chosen], f"clicking {chosen!r} did not select it alone")
        chromium.save_screenshot(str(screenshot))
        client = project.ls.client()
        submit(chromium, wait, client, task_id)

    # The daemon's path: the sensor sees the change and requests collect_job, whose run stores the annotation.
    with dg.build_sensor_context(
        instance=project.instance, resources={"label_studio": project.label_studio}
    ) as context:
        tick = annotation_sensor(context)
    assert isinstance(tick, dg.SensorResult)
    (request,) = tick.run_requests or []
    run = project.defs.resolve_job_def("collect_job").execute_in_process(
        instance=project.instance, tags=request.tags
    )
    assert run.success
    (stored,) = project.store.fetch(current_annotations_query())
    assert stored["ls_task_id"] == task_id and stored["item_id"] == item_id
    assert stored["label"] == chosen
    assert stored["labeler_id"] == str(labeler.user_id)  # completed_by: the person who clicked Submit


CHAMPION = "browser-champion/2"
CHAMPION_PREDICTS = "8"


def test_after_a_new_champion_the_open_tasks_show_its_prediction_pre_selected(
    project: Project, labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    """Issue 26: no labeler ever saw a model's pre-label. The champion pre-labels every item (prelabel_job after
    its promotion); the queue run intake_sensor launches next attaches its predictions to the open tasks, and the
    labeler's next task shows the champion's answer pre-selected, not the older model's."""
    with project.store.begin() as conn:
        conn.execute(prelabels_table.insert(), [
            {"item_id": item, "model_version": CHAMPION, "computed_at": utcnow(),
             "probs": {c: (0.93 if c == CHAMPION_PREDICTS else 0.007) for c in DEMO_CLASSES}}
            for item in project.truth_by_item
        ])  # fmt: skip
    metadata = project.queue()

    url, wait = project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "champion-prelabel-in-browser.png"
    with screenshot_kept(chromium, screenshot):
        chromium.delete_all_cookies()
        log_in(chromium, wait, url, labeler)
        chromium.get(f"{url}/projects/{project.project_id}/data?labeling=1")
        wait.until(ui_task_id, "the labeling UI never showed a task")
        wait.until(lambda d: checked_choices(d), "no choice pre-selected: the champion's prediction is not shown")
        assert checked_choices(chromium) == [CHAMPION_PREDICTS]
        chromium.save_screenshot(str(screenshot))
    assert metadata["open_tasks"] == N_ITEMS - 1  # the task labeled above is finished (overlap 1)
    assert metadata["predictions_refreshed"] == N_ITEMS - 1 and metadata["prelabel_model_shown"] == CHAMPION
