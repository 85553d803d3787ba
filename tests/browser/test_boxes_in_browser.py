"""A person draws a box in the browser (issue 30), on a box project built through the pipeline's own path: a demo
scene of digit scans is ingested (``raw_images``), a champion detector's boxes for it are in the store as pre-labels,
and ``labeling_tasks`` pushes the task with them. A labeler added with ``add-user`` logs in, sees the pre-labelled box
where its percentages say, picks a class, drags a new box around another digit with the mouse and submits; the
annotation sensor's run request runs ``collect_job``, and the store holds the answer in pixels of the raw image: the
box the model drew, and the box the person dragged.

The expected box is the drag itself, converted from screen coordinates to image pixels through the displayed
image's rectangle and natural size, so a page and a reader that disagree on the percent convention (or the image
size) fail it. The screenshot (``tests/artifacts/boxes-in-browser.png``) shows both boxes before Submit.
"""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.assets import collect, ingest, queue
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    items_table,
    prelabels_table,
    utcnow,
)
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.jobs import collect_job, ingest_job, queue_job
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import UI_WAIT_S, loaded_task_image, log_in, screenshot_kept, submit, ui_task_id
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

PROJECT_TITLE = "boxes-in-the-browser"
CHAMPION = "scene-detector/3"  # the model_version of the champion's stored boxes
CANVAS = 480  # px: digits of 80-160 px, large enough to aim at


@dataclass
class BoxProject:
    ls: LabelStudioServer
    store: LabelStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    label_studio: LabelStudioResource
    item_id: str
    predicted: dict[str, Any]  # the pre-labelled box (pixels, a true box of the scene)
    target: dict[str, Any]  # the digit the person draws around (pixels, another true box)
    size: tuple[int, int]  # the scene's width and height
    queued: dict[str, Any]  # labeling_tasks' metadata

    @property
    def project_id(self) -> int:
        (found,) = [p["id"] for p in self.ls.client().list_projects() if p["title"] == PROJECT_TITLE]
        return int(found)


@pytest.fixture(scope="module")
def box_project(image_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoxProject]:
    scenes = tmp_path_factory.mktemp("scenes")
    render_digit_scenes(scenes, n_images=12, canvas=CANVAS, max_digits=3, sizes=(80, 160), seed=4)
    truth = load_scene_truth(scenes)
    # a scene with two different digits: the champion boxes one, the person draws the other
    name, (predicted, target) = next(
        (n, b[:2]) for n, b in sorted(truth.items()) if len(b) >= 2 and b[0]["label"] != b[1]["label"]
    )
    source = tmp_path_factory.mktemp("source")  # that scene alone, so the label stream's next task is it
    shutil.copy(scenes / name, source / name)
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
            "project": ProjectSettings(data_dir=str(image_server.files_root), classes=SCENE_CLASSES, task_type="boxes"),
            "image_source": ImageSourceResource(uri=str(source), demo_dir=str(source)),
        },
    )
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        env.setenv("LABEL_STUDIO_API_KEY", image_server.token)  # the resource reads it through dg.EnvVar
        assert defs.resolve_job_def("ingest_job").execute_in_process(instance=instance).success
        (item,) = store.fetch(items_table.select())
        # What prelabels stores for a champion detector (a detector's output per item): the predicted digit's box.
        with store.begin() as conn:
            conn.execute(prelabels_table.insert(), [{
                "item_id": item["item_id"], "model_version": CHAMPION, "computed_at": utcnow(),
                "probs": {"boxes": [{**predicted, "score": 0.9}], "image_width": CANVAS, "image_height": CANVAS},
            }])  # fmt: skip
        run = defs.resolve_job_def("queue_job").execute_in_process(
            instance=instance, run_config={"ops": {"labeling_tasks": {"config": {"overlap": 1, "gold_rate": 0.0}}}}
        )
        assert run.success
        (event,) = run.get_asset_materialization_events()
        queued = {k: v.value for k, v in event.materialization.metadata.items()}
        yield BoxProject(image_server, store, instance, defs, label_studio, str(item["item_id"]), predicted, target,
                         (CANVAS, CANVAS), queued)  # fmt: skip
    store.dispose()


@pytest.fixture(scope="module")
def box_labeler(image_server: LabelStudioServer) -> Labeler:
    return sign_up(image_server, "box.labeler@labeling-assets.local")


# The regions of the annotation the labeling UI shows, from its store (the boxes are drawn on a canvas):
# percentages of the image, the labels, and where each came from.
_REGIONS = """
const a = window.Htx && window.Htx.annotationStore && window.Htx.annotationStore.selected;
if (!a) return null;
return a.regions.map(r => ({x: r.x, y: r.y, width: r.width, height: r.height, rotation: r.rotation,
                            labels: r.labeling ? r.labeling.selectedLabels.map(l => l.value) : [],
                            origin: r.origin, score: r.score}));
"""

# The displayed image: its viewport rectangle and natural size.
_IMAGE = """
const img = document.querySelector('img[alt="image"]');
if (!img || !img.complete || !img.naturalWidth) return null;
const r = img.getBoundingClientRect();
return {left: r.left, top: r.top, width: r.width, height: r.height,
        naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight};
"""


def _drag(driver: WebDriver, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Press the mouse at ``start`` (viewport pixels), move to ``end`` in steps, release."""
    actions = ActionChains(driver)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(*start)
    pointer.pointer_down()
    for step in (1, 2, 3):
        pointer.move_to_location(
            start[0] + (end[0] - start[0]) * step // 4, start[1] + (end[1] - start[1]) * step // 4
        )
    pointer.move_to_location(*end)
    pointer.pointer_up()
    actions.perform()


def test_a_labeler_sees_the_champions_box_draws_another_and_collect_stores_both_in_pixels(
    box_project: BoxProject, box_labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    url, wait = box_project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "boxes-in-browser.png"
    predicted, target = box_project.predicted, box_project.target
    width, height = box_project.size
    # the queue pushed the task with the champion's boxes as its prediction
    assert box_project.queued["pushed"] == 1 and box_project.queued["with_predictions"] == 1
    assert box_project.queued["prelabel_model_shown"] == CHAMPION
    with screenshot_kept(chromium, screenshot):
        log_in(chromium, wait, url, box_labeler)

        chromium.get(f"{url}/projects/{box_project.project_id}/data?labeling=1")
        loaded = loaded_task_image(chromium, wait)
        assert (loaded["naturalWidth"], loaded["naturalHeight"]) == (width, height), loaded
        task_id = wait.until(ui_task_id, "the labeling UI never showed a task")

        # the prediction, placed by its percentages: the pre-labelled digit's box, its class and score
        (shown,) = wait.until(lambda d: d.execute_script(_REGIONS), "the pre-labelled box is not shown")
        assert shown["labels"] == [predicted["label"]] and shown["origin"] == "prediction", shown
        assert [shown["x"] / 100 * width, shown["y"] / 100 * height,
                (shown["x"] + shown["width"]) / 100 * width, (shown["y"] + shown["height"]) / 100 * height] == \
            pytest.approx([predicted["x0"], predicted["y0"], predicted["x1"], predicted["y1"]], abs=0.01)  # fmt: skip

        (label,) = [e for e in chromium.find_elements(By.CSS_SELECTOR, ".lsf-label_clickable")
                    if e.text.split()[:1] == [target["label"]]]  # fmt: skip
        label.click()  # the class first, then the drag: Label Studio draws a box of the selected class
        assert "lsf-label_selected" in (label.get_attribute("class") or "")

        # drag from a little outside the target digit's top-left to a little outside its bottom-right
        shown_image = chromium.execute_script(_IMAGE)
        sx, sy = shown_image["width"] / width, shown_image["height"] / height  # screen px per image px
        start = (
            round(shown_image["left"] + (target["x0"] - 3) * sx),
            round(shown_image["top"] + (target["y0"] - 3) * sy),
        )
        end = (
            round(shown_image["left"] + (target["x1"] + 3) * sx),
            round(shown_image["top"] + (target["y1"] + 3) * sy),
        )
        _drag(chromium, start, end)
        wait.until(lambda d: len(d.execute_script(_REGIONS)) == 2, "the drag drew no box")
        chromium.save_screenshot(str(screenshot))
        submit(chromium, wait, box_project.ls.client(), task_id)

    # The daemon's path: the sensor sees the change and requests collect_job, whose run stores the annotation.
    with dg.build_sensor_context(
        instance=box_project.instance, resources={"label_studio": box_project.label_studio}
    ) as context:
        tick = annotation_sensor(context)
    assert isinstance(tick, dg.SensorResult)
    (request,) = tick.run_requests or []
    collected = box_project.defs.resolve_job_def("collect_job").execute_in_process(
        instance=box_project.instance, tags=request.tags
    )
    assert collected.success
    (stored,) = box_project.store.fetch(current_annotations_query())
    assert stored["ls_task_id"] == task_id and stored["item_id"] == box_project.item_id
    assert stored["labeler_id"] == str(box_labeler.user_id)  # completed_by: the person who clicked Submit

    # the drag in image pixels: the corners of the box the person meant
    dragged = [
        (start[0] - shown_image["left"]) / sx, (start[1] - shown_image["top"]) / sy,
        (end[0] - shown_image["left"]) / sx, (end[1] - shown_image["top"]) / sy,
    ]  # fmt: skip
    answer = stored["label"]  # the box kind's stored answer, in pixels
    assert answer["no_object"] is False
    boxes = {b["labels"][0] if b["labels"] else None: b for b in answer["boxes"]}
    assert sorted(boxes, key=str) == sorted([predicted["label"], target["label"]]), answer
    drawn = boxes[target["label"]]
    geometry = (drawn["shape"], drawn["rotation"], drawn["image_width"], drawn["image_height"])
    assert geometry == ("rectangle", 0.0, width, height), drawn
    # within one screen pixel of the drag at each edge
    tolerance = 1.0 / min(sx, sy) + 0.01
    assert [drawn["x"], drawn["y"], drawn["x"] + drawn["width"], drawn["y"] + drawn["height"]] == \
        pytest.approx(dragged, abs=tolerance), (drawn, dragged)  # fmt: skip
    kept = boxes[predicted["label"]]  # the pre-labelled box, kept as the champion drew it
    assert [kept["x"], kept["y"], kept["x"] + kept["width"], kept["y"] + kept["height"]] == \
        pytest.approx([predicted["x0"], predicted["y0"], predicted["x1"], predicted["y1"]], abs=0.01)  # fmt: skip
