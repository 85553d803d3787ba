"""A person marks a span in the browser (issue 31): on a text that starts with an emoji, Label Studio's labeling
page shows the model's predicted span where its offsets say, the person picks a type, selects a name with the
mouse and submits, and the stored offsets read back into the span of the stored text they selected.

The emoji is what makes this a test of offsets: JavaScript counts it as two code units, Python as one
character, so a page and a store that disagree on the convention put every span after it one character off.
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

from labeling_assets.core.tasks.text_spans.spans import Span, label_config, read_spans, span_result
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import UI_WAIT_S, log_in, screenshot_kept, submit, ui_task_id
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

TYPES = ["PER", "ORG", "LOC"]
TEXT = "🎉 Ada Lovelace met Charles Babbage in London."
PREDICTED = Span(2, 14, "PER")  # "Ada Lovelace"
SELECTED = Span(19, 34, "PER")  # "Charles Babbage": the person selects it
MODEL_VERSION = "spans/1"


@dataclass
class SpanProject:
    ls: LabelStudioServer
    project_id: int


@pytest.fixture(scope="module")
def span_project(image_server: LabelStudioServer) -> Iterator[SpanProject]:
    assert TEXT[PREDICTED.start : PREDICTED.end] == "Ada Lovelace"
    assert TEXT[SELECTED.start : SELECTED.end] == "Charles Babbage"
    client = image_server.client()
    project = client.ensure_project(title="spans-in-the-browser", classes=TYPES, overlap=1,
                                    label_config=label_config(TYPES))  # fmt: skip
    prediction = {"model_version": MODEL_VERSION, "score": 0.9, "result": span_result([PREDICTED], TEXT)}
    client.import_tasks(project, [{"data": {"text": TEXT}, "predictions": [prediction]}])
    client.show_predictions_of(project, MODEL_VERSION)
    yield SpanProject(image_server, project)


@pytest.fixture(scope="module")
def span_labeler(image_server: LabelStudioServer) -> Labeler:
    return sign_up(image_server, "span.labeler@labeling-assets.local")


# The text of every highlighted region on the page (Label Studio marks a region's characters with one or more
# span.htx-highlight elements; a region's pieces share its id).
_HIGHLIGHTS = """
const found = {};
const roots = [document, ...Array.from(document.querySelectorAll('iframe')).map(f => f.contentDocument).filter(Boolean)];
for (const root of roots) {
  for (const el of root.querySelectorAll('span.htx-highlight')) {
    const key = el.className;
    found[key] = (found[key] || '') + el.textContent;
  }
}
return Object.values(found);
"""

# The viewport rectangle of TEXT[start:end] on the page (the text node that holds it, in the page or an iframe).
_RECT = """
const [needle] = arguments;
const roots = [[document, 0, 0]];
for (const f of document.querySelectorAll('iframe')) {
  const r = f.getBoundingClientRect();
  if (f.contentDocument) roots.push([f.contentDocument, r.left, r.top]);
}
for (const [root, dx, dy] of roots) {
  const walker = root.createTreeWalker(root.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.textContent.indexOf(needle);
    if (at < 0) continue;
    const range = root.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + needle.length);
    const r = range.getBoundingClientRect();
    return {left: r.left + dx, right: r.right + dx, top: r.top + dy, bottom: r.bottom + dy};
  }
}
return null;
"""


def _drag_across(driver: WebDriver, rect: dict[str, Any]) -> None:
    """Press the mouse just inside the left edge of ``rect``, move to just inside its right edge, release."""
    y = int((rect["top"] + rect["bottom"]) / 2)
    actions = ActionChains(driver)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(int(rect["left"]) + 1, y)
    pointer.pointer_down()
    pointer.move_to_location(int(rect["left"] + rect["right"]) // 2, y)
    pointer.move_to_location(int(rect["right"]) - 1, y)
    pointer.pointer_up()
    actions.perform()


def test_a_labeler_selects_a_span_with_the_mouse_and_the_store_holds_its_offsets(
    span_project: SpanProject, span_labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    url, wait = span_project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "text-spans-in-browser.png"
    with screenshot_kept(chromium, screenshot):
        log_in(chromium, wait, url, span_labeler)

        chromium.get(f"{url}/projects/{span_project.project_id}/data?labeling=1")
        task_id = wait.until(ui_task_id, "the labeling UI never showed a task")
        wait.until(lambda d: d.execute_script(_RECT, "Charles Babbage"), "the task text never appeared")
        # the prediction, placed by its offsets: the name itself, not a character to either side
        highlights = wait.until(lambda d: d.execute_script(_HIGHLIGHTS), "the predicted span is not shown")
        assert highlights == ["Ada Lovelace"], highlights

        (per,) = [e for e in chromium.find_elements(By.CSS_SELECTOR, ".lsf-label_clickable") if e.text.split()[:1] == ["PER"]]
        per.click()  # the type first, then the selection: Label Studio makes the region on mouse-up
        assert "lsf-label_selected" in (per.get_attribute("class") or "")
        _drag_across(chromium, chromium.execute_script(_RECT, "Charles Babbage"))
        wait.until(lambda d: "Charles Babbage" in d.execute_script(_HIGHLIGHTS), "the selection made no region")
        chromium.save_screenshot(str(screenshot))
        client = span_project.ls.client()
        submit(chromium, wait, client, task_id)

    (annotation,) = client.request("GET", f"/api/tasks/{task_id}/")["annotations"]
    manual = [r["value"] for r in annotation["result"] if r.get("origin") == "manual"]
    # Python's offsets, not JavaScript's (which would be one more after the emoji)
    assert [(v["start"], v["end"], v["text"]) for v in manual] == [(19, 34, "Charles Babbage")]
    read = read_spans(annotation["result"], TEXT, TYPES)
    assert read.spans == (PREDICTED, SELECTED) and dict(read.skipped) == {}
