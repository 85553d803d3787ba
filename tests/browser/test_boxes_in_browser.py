"""A person draws a box in the browser (issue 30): on a demo scene of digit scans, Label Studio's labeling page
shows the image and the model's pre-labelled box where its percentages say; the person picks a class, drags a
new box around another digit with the mouse and submits, and the stored answer reads back into that box in
pixels of the raw image.

The boxes kind is not registered yet (no stage collects box answers), so the answer is read back as the stages
will read it: from Label Studio's export, by ``read_boxes``. The expected box is the drag itself, converted from
screen coordinates to image pixels through the displayed image's rectangle and natural size, so a page and a
reader that disagree on the percent convention (or the image size) fail it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.core.labelstudio.tasks import image_url
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes
from labeling_assets.core.tasks.boxes.labelstudio import box_label_config, read_boxes
from labeling_assets.core.tasks.boxes.prelabels import box_prediction
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import UI_WAIT_S, loaded_task_image, log_in, screenshot_kept, submit, ui_task_id
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

PROJECT_TITLE = "boxes-in-the-browser"
MODEL_VERSION = "boxes/1"
CANVAS = 480  # px: digits of 80-160 px, large enough to aim at


@dataclass
class BoxProject:
    ls: LabelStudioServer
    project_id: int
    predicted: dict[str, Any]  # the pre-labelled box (pixels, a true box of the scene)
    target: dict[str, Any]  # the digit the person draws around (pixels, another true box)
    size: tuple[int, int]  # the scene's width and height


@pytest.fixture(scope="module")
def box_project(image_server: LabelStudioServer) -> Iterator[BoxProject]:
    images = image_server.files_root / "raw" / "scenes"
    render_digit_scenes(images, n_images=12, canvas=CANVAS, max_digits=3, sizes=(80, 160), seed=4)
    truth = load_scene_truth(images)
    # a scene with two different digits: one pre-labelled, the other drawn
    name, (predicted, target) = next(
        (n, b[:2]) for n, b in sorted(truth.items()) if len(b) >= 2 and b[0]["label"] != b[1]["label"]
    )
    client = image_server.client()
    project = client.ensure_project(title=PROJECT_TITLE, classes=SCENE_CLASSES, overlap=1,
                                    label_config=box_label_config(SCENE_CLASSES))  # fmt: skip
    image_server.resource(PROJECT_TITLE).serve_images(project, images, image_server.files_root)
    prediction = box_prediction([{**predicted, "score": 0.9}], CANVAS, CANVAS, MODEL_VERSION)
    url = image_url(str(images / name), image_server.files_root)
    client.import_tasks(project, [{"data": {"image": url}, "predictions": [prediction]}])
    client.show_predictions_of(project, MODEL_VERSION)
    yield BoxProject(image_server, project, predicted, target, (CANVAS, CANVAS))


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


def test_a_labeler_draws_a_box_with_the_mouse_and_the_answer_holds_it_in_pixels(
    box_project: BoxProject, box_labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    url, wait = box_project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "boxes-in-browser.png"
    predicted, target = box_project.predicted, box_project.target
    width, height = box_project.size
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
        client = box_project.ls.client()
        submit(chromium, wait, client, task_id)

    # the drag in image pixels: the corners of the box the person meant
    dragged = [
        (start[0] - shown_image["left"]) / sx, (start[1] - shown_image["top"]) / sy,
        (end[0] - shown_image["left"]) / sx, (end[1] - shown_image["top"]) / sy,
    ]  # fmt: skip
    exported = client.request(
        "GET", f"/api/projects/{box_project.project_id}/export", params={"exportType": "JSON"}
    )
    ((annotation,),) = [task["annotations"] for task in exported]
    reading = read_boxes(annotation["result"])
    assert reading.answer is not None, reading.detail
    assert reading.answer["no_object"] is False
    boxes = {b["labels"][0] if b["labels"] else None: b for b in reading.answer["boxes"]}
    assert sorted(boxes, key=str) == sorted([predicted["label"], target["label"]]), reading.answer
    drawn = boxes[target["label"]]
    geometry = (drawn["shape"], drawn["rotation"], drawn["image_width"], drawn["image_height"])
    assert geometry == ("rectangle", 0.0, width, height), drawn
    # within one screen pixel of the drag at each edge
    tolerance = 1.0 / min(sx, sy) + 0.01
    assert [drawn["x"], drawn["y"], drawn["x"] + drawn["width"], drawn["y"] + drawn["height"]] == \
        pytest.approx(dragged, abs=tolerance), (drawn, dragged)  # fmt: skip
    kept = boxes[predicted["label"]]  # the pre-labelled box, kept as the model drew it
    assert [kept["x"], kept["y"], kept["x"] + kept["width"], kept["y"] + kept["height"]] == \
        pytest.approx([predicted["x0"], predicted["y0"], predicted["x1"], predicted["y1"]], abs=0.01)  # fmt: skip
