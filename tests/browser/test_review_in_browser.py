"""What an expert sees in the review project: the image, every vote with its labeler's name and gold accuracy,
and the model's prediction, rendered by Label Studio in a real Chromium (screenshot: review-task.png)."""

from pathlib import Path
from typing import Any, Literal

import pytest
from PIL import Image, ImageDraw
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.core.labelstudio.review import ShownVote, review_config, review_task, review_title
from labeling_assets.core.labelstudio.tasks import image_url
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.labelstudio import LabelStudioResource
from tests.browser.conftest import sign_up
from tests.browser.pages import UI_WAIT_S, log_in
from tests.labelstudio_server import LabelStudioServer

CLASSES = ["cat", "dog", "bird"]
VOTES = [
    ShownVote("hl_alice", "dog", 0.95, 20, 0.76, 0.99),
    ShownVote("hl_bob", "bird", 0.7, 10, 0.40, 0.89),
    ShownVote("hl_spam", "cat", 0.1, 30, 0.03, 0.26),
]


def _page_state(driver: WebDriver) -> dict[str, Any] | Literal[False]:
    """The task image and the text of the page and its frames once the image has loaded (False before)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "const img = document.querySelector('img[alt=\"image\"]');"
        "if (!img || !img.complete || !img.naturalWidth) return false;"
        "let text = document.body.innerText;"
        "for (const f of document.querySelectorAll('iframe')) {"
        "  try { text += f.contentDocument.body.innerText; } catch (e) {} }"
        "return {width: img.naturalWidth, text: text};"
    )


def test_the_review_task_shows_the_image_the_named_votes_and_the_prediction(
    image_server: LabelStudioServer, chromium: WebDriver, artifacts_dir: Path
) -> None:
    raw = image_server.files_root / "raw"
    raw.mkdir(exist_ok=True)
    picture = Image.new("RGB", (160, 160), "#3a3")
    ImageDraw.Draw(picture).text((40, 70), "a dog?", fill="white")
    picture.save(raw / "split.png")
    resource = LabelStudioResource(url=image_server.url, api_key=image_server.token, project_title="browser")
    client = resource.get_client()
    review_id = client.ensure_review_project(title=review_title("browser"), label_config=review_config(task_kind("single_label").label_config(CLASSES)))
    assert "images served" in resource.serve_images(review_id, raw, image_server.files_root)
    task = review_task("split-item", image_url(str(raw / "split.png"), image_server.files_root), VOTES,
                       reason="majority consensus: confidence 0.33 < 0.60 with 3 annotators",
                       prediction=("dog", 0.82), model_version="m1")  # fmt: skip
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
        pytest.fail(f"the review task never showed its image and votes; screenshot {screenshot}")
    chromium.save_screenshot(str(screenshot))
    text = state["text"]
    assert all(v.labeler in text for v in VOTES), text[:500]
    assert "95% of 20" in text and "model m1: dog (p=0.82)" in text
    assert all(c in text for c in CLASSES)
    print(f"\nscreenshot: {screenshot}")
