"""What an expert sees in the review project: the image, the model's Grad-CAM overlay beside it, every vote with its
labeler's name and gold accuracy, and the model's prediction, rendered by Label Studio in a real Chromium (screenshot: review-task.png); and what a
reviewer does in the spot-check project: accept, reject or fix one answer at a time (spot-check-in-browser.png)."""

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.core.consensus.spot_check import FIX, REJECT
from labeling_assets.core.labelstudio.review import (
    OVERLAY_FOLDER,
    ShownVote,
    review_config,
    review_task,
    review_title,
)
from labeling_assets.core.labelstudio.spot_check import (
    LABELER_VERSION,
    spot_check_config,
    spot_check_task,
    spot_check_title,
)
from labeling_assets.core.labelstudio.tasks import image_url
from labeling_assets.core.store.spot_checks import read_verdicts
from labeling_assets.core.tasks import task_kind
from labeling_assets.core.tasks.kind import ItemMedia
from labeling_assets.core.training.explain import write_overlay
from labeling_assets.resources.labelstudio import LabelStudioResource
from tests.browser.conftest import sign_up
from tests.browser.pages import (
    UI_WAIT_S,
    checked_choices,
    loaded_task_image,
    log_in,
    screenshot_kept,
    submit,
    ui_task_id,
)
from tests.core.planted_evidence import SIZE, planted, trained
from tests.labelstudio_server import LabelStudioServer

CLASSES = ["cat", "dog", "bird"]
VOTES = [
    ShownVote("hl_alice", "dog", 0.95, 20, 0.76, 0.99),
    ShownVote("hl_bob", "bird", 0.7, 10, 0.40, 0.89),
    ShownVote("hl_spam", "cat", 0.1, 30, 0.03, 0.26),
]


def _page_state(driver: WebDriver) -> dict[str, Any] | Literal[False]:
    """The natural sizes of the task's images once two have loaded, and the text of the page and its frames (False
    before)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "const imgs = [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 32);"
        "if (imgs.length < 2) return false;"
        "let text = document.body.innerText;"
        "for (const f of document.querySelectorAll('iframe')) {"
        "  try { text += f.contentDocument.body.innerText; } catch (e) {} }"
        "return {sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight]), text: text};"
    )


def test_the_review_task_shows_the_image_its_grad_cam_overlay_the_named_votes_and_the_prediction(
    image_server: LabelStudioServer, chromium: WebDriver, artifacts_dir: Path, tmp_path: Path
) -> None:
    """docs/model.md: where the model disagrees with the crowd, the expert sees where it looked (here a model whose
    class is decided by a corner patch, tests/core/test_gradcam.py: the overlay lights that corner)."""
    raw = image_server.files_root / "raw"
    raw.mkdir(exist_ok=True)
    images, labels = planted(2, "top_left", seed=3)
    Image.fromarray(images[labels == 1][0, 0]).resize((160, 160), Image.Resampling.NEAREST).save(raw / "split.png")
    overlay = write_overlay(trained("top_left"), str(raw / "split.png"), 1, raw / OVERLAY_FOLDER / "split-item.png",
                            image_size=SIZE, channels=1)  # fmt: skip
    heat = np.asarray(Image.open(overlay).convert("RGB"), dtype=float)
    assert heat[:112, :112, 0].mean() > heat[112:, 112:, 0].mean() + 50  # red where the patch is
    resource = LabelStudioResource(url=image_server.url, api_key=image_server.token, project_title="browser")
    client = resource.get_client()
    config = review_config(task_kind("single_label").label_config(CLASSES), overlay=True)
    review_id = client.ensure_review_project(title=review_title("browser"), label_config=config)
    assert "images served" in resource.serve_images(review_id, raw, image_server.files_root)
    task = review_task("split-item", image_url(str(raw / "split.png"), image_server.files_root), VOTES,
                       reason="majority consensus: confidence 0.33 < 0.60 with 3 annotators",
                       prediction=("dog", 0.82), model_version="m1",
                       overlay_url=image_url(str(overlay), image_server.files_root))  # fmt: skip
    assert client.import_tasks(review_id, [task]) == 1
    expert = sign_up(image_server, "the.expert@labeling-assets.local")

    wait = WebDriverWait(chromium, UI_WAIT_S)
    log_in(chromium, wait, image_server.url, expert, "the expert")
    chromium.get(f"{image_server.url}/projects/{review_id}/data?labeling=1")
    screenshot = artifacts_dir / "review-task.png"
    try:
        state = wait.until(lambda d: (s := _page_state(d)) and "hl_spam" in s["text"] and s)
    except TimeoutException:
        chromium.save_screenshot(str(screenshot))
        pytest.fail(f"the review task never showed its image, overlay and votes; screenshot {screenshot}")
    chromium.save_screenshot(str(screenshot))
    chromium.save_screenshot(str(tmp_path / "review-task.png"))
    assert sorted(state["sizes"]) == [[160, 160], [224, 224]]  # the item's image and its overlay, both loaded
    text = state["text"]
    assert all(v.labeler in text for v in VOTES), text[:500]
    assert "95% of 20" in text and "model m1: dog (p=0.82)" in text
    assert all(c in text for c in CLASSES)
    print(f"\nscreenshot: {screenshot}")


def test_a_reviewer_rejects_one_spot_checked_answer_and_fixes_another_in_the_browser(
    image_server: LabelStudioServer, chromium: WebDriver, artifacts_dir: Path
) -> None:
    """docs/review.md: one sampled answer per task, the labeler's name and answer pre-drawn, a verdict required."""
    raw = image_server.files_root / "raw"
    raw.mkdir(exist_ok=True)
    for name, colour in (("spot-a", "#a33"), ("spot-b", "#33a")):
        Image.new("RGB", (120, 120), colour).save(raw / f"{name}.png")
    resource = LabelStudioResource(url=image_server.url, api_key=image_server.token, project_title="browser")
    client = resource.get_client()
    kind = task_kind("single_label")
    project_id = client.ensure_review_project(title=spot_check_title("browser"),
                                              label_config=spot_check_config(kind.label_config(CLASSES)))  # fmt: skip
    assert "images served" in resource.serve_images(project_id, raw, image_server.files_root)
    answered = {"spot-a": (101, "dog"), "spot-b": (102, "cat")}  # item -> (annotation id, the labeler's answer)
    tasks = [spot_check_task(item, image_url(str(raw / f"{item}.png"), image_server.files_root),
                             ls_annotation_id=ann, labeler="hl_bob", drawn=kind.answer_result(label, ItemMedia()),
                             why="draw 0.012 < rate 0.30 (new labeler)")
             for item, (ann, label) in answered.items()]  # fmt: skip
    assert client.import_tasks(project_id, tasks) == 2
    client.show_predictions_of(project_id, LABELER_VERSION)
    reviewer = sign_up(image_server, "the.reviewer@labeling-assets.local")

    wait = WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "spot-check-in-browser.png"
    with screenshot_kept(chromium, screenshot):
        chromium.delete_all_cookies()  # another person than the module's earlier test
        log_in(chromium, wait, image_server.url, reviewer, "the reviewer")
        chromium.get(f"{image_server.url}/projects/{project_id}/data?labeling=1")
        done: dict[int, str] = {}
        for verdict in (REJECT, FIX):
            loaded_task_image(chromium, wait)
            task_id: int = wait.until(lambda d: (t := ui_task_id(d)) not in done and t, "the next task never showed")
            data = client.request("GET", f"/api/tasks/{task_id}/")["data"]
            given = answered[data["item_id"]][1]
            wait.until(lambda d, want=[given]: checked_choices(d) == want, "the labeler's answer is not pre-drawn")
            assert "Labeler: hl_bob" in chromium.execute_script("return document.body.innerText")
            if verdict == FIX:  # the reviewer corrects the answer in the controls, then says so
                correction = next(c for c in CLASSES if c != given)
                chromium.find_element(By.XPATH, f"//input[@name='{correction}']/ancestor::label").click()
            chromium.find_element(By.XPATH, f"//input[@name='{verdict}']/ancestor::label").click()
            wait.until(lambda d, v=verdict: v in checked_choices(d), f"clicking {verdict!r} did not select it")
            if verdict == FIX:
                chromium.save_screenshot(str(screenshot))
            submit(chromium, wait, client, task_id)
            done[task_id] = data["item_id"]

    sampled = {ann: {"ls_annotation_id": ann, "item_id": item, "labeler_id": "7"} for item, (ann, _) in answered.items()}
    rows, problems = read_verdicts(client.iter_tasks(project_id, fields="all"), project_id, None, kind, sampled)
    assert problems == []
    by_item = {r["item_id"]: r for r in rows}
    first, second = (done[t] for t in sorted(done, key=list(done).index))
    assert by_item[first]["verdict"] == REJECT and by_item[first]["fixed_answer"] is None
    assert by_item[second]["verdict"] == FIX and by_item[second]["fixed_answer"] == correction
    assert {r["reviewer_id"] for r in rows} == {str(reviewer.user_id)}
