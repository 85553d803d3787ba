"""A person marks a span in the browser (issue 31), on a span project built through the pipeline's own path: a
text is ingested from a JSONL file (``raw_images``), a champion model's span for it is in the store as a pre-label,
and ``labeling_tasks`` pushes the task with it. A labeler logs in, sees the predicted span where its offsets say,
picks a type, selects a name with the mouse and submits; the annotation sensor's run request runs ``collect_job``,
and the store holds the answer: both spans at the offsets of the stored text. The screenshot
(``tests/artifacts/text-spans-in-browser.png``) shows the selected span before Submit.

The text starts with an emoji, which is what makes this a test of offsets: JavaScript counts it as two code units,
Python as one character, so a page and a store that disagree on the convention put every span after it one
character off.
"""

import json
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
from labeling_assets.core.ingest.text import text_item_id
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    items_table,
    prelabels_table,
    utcnow,
)
from labeling_assets.core.tasks.text_spans.spans import Span, stored
from labeling_assets.jobs import collect_job, ingest_job, queue_job
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import UI_WAIT_S, log_in, screenshot_kept, submit, ui_task_id
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

PROJECT_TITLE = "spans-in-the-browser"
TYPES = ["PER", "ORG", "LOC"]
TEXT = "🎉 Ada Lovelace met Charles Babbage in London."
PREDICTED = Span(2, 14, "PER")  # "Ada Lovelace"
SELECTED = Span(19, 34, "PER")  # "Charles Babbage": the person selects it
CHAMPION = "spans/1"  # the model_version of the champion's stored spans


@dataclass
class SpanProject:
    ls: LabelStudioServer
    store: LabelStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    label_studio: LabelStudioResource
    item_id: str
    queued: dict[str, Any]  # labeling_tasks' metadata

    @property
    def project_id(self) -> int:
        (found,) = [p["id"] for p in self.ls.client().list_projects() if p["title"] == PROJECT_TITLE]
        return int(found)


@pytest.fixture(scope="module")
def span_project(image_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanProject]:
    assert TEXT[PREDICTED.start : PREDICTED.end] == "Ada Lovelace"
    assert TEXT[SELECTED.start : SELECTED.end] == "Charles Babbage"
    source = tmp_path_factory.mktemp("texts")
    (source / "batch.jsonl").write_text(json.dumps({"id": "t1", "text": TEXT}) + "\n", encoding="utf-8")
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
            "project": ProjectSettings(data_dir=str(image_server.files_root), classes=TYPES, task_type="text_spans"),
            "image_source": ImageSourceResource(uri=str(source)),
        },
    )
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        env.setenv("LABEL_STUDIO_API_KEY", image_server.token)  # the resource reads it through dg.EnvVar
        assert defs.resolve_job_def("ingest_job").execute_in_process(instance=instance).success
        (item,) = store.fetch(items_table.select())
        assert item["item_id"] == text_item_id(TEXT)
        # What prelabels stores for a champion span model (its output per text): the predicted name.
        with store.begin() as conn:
            conn.execute(prelabels_table.insert(), [{
                "item_id": item["item_id"], "model_version": CHAMPION, "computed_at": utcnow(),
                "probs": {"text": TEXT, "spans": [{"start": PREDICTED.start, "end": PREDICTED.end,
                                                   "label": PREDICTED.label, "score": 0.9}]},
            }])  # fmt: skip
        run = defs.resolve_job_def("queue_job").execute_in_process(
            instance=instance, run_config={"ops": {"labeling_tasks": {"config": {"overlap": 1, "gold_rate": 0.0}}}}
        )
        assert run.success
        (event,) = run.get_asset_materialization_events()
        queued = {k: v.value for k, v in event.materialization.metadata.items()}
        yield SpanProject(image_server, store, instance, defs, label_studio, str(item["item_id"]), queued)
    store.dispose()


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


def test_a_labeler_selects_a_span_with_the_mouse_and_collect_stores_its_offsets(
    span_project: SpanProject, span_labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    url, wait = span_project.ls.url, WebDriverWait(chromium, UI_WAIT_S)
    screenshot = artifacts_dir / "text-spans-in-browser.png"
    # the queue pushed the text with the champion's span as its prediction
    assert span_project.queued["pushed"] == 1 and span_project.queued["with_predictions"] == 1
    assert span_project.queued["prelabel_model_shown"] == CHAMPION
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
        submit(chromium, wait, span_project.ls.client(), task_id)

    # The daemon's path: the sensor sees the change and requests collect_job, whose run stores the annotation.
    with dg.build_sensor_context(
        instance=span_project.instance, resources={"label_studio": span_project.label_studio}
    ) as context:
        tick = annotation_sensor(context)
    assert isinstance(tick, dg.SensorResult)
    (request,) = tick.run_requests or []
    collected = span_project.defs.resolve_job_def("collect_job").execute_in_process(
        instance=span_project.instance, tags=request.tags
    )
    assert collected.success
    (row,) = span_project.store.fetch(current_annotations_query())
    assert row["ls_task_id"] == task_id and row["item_id"] == span_project.item_id
    assert row["labeler_id"] == str(span_labeler.user_id)  # completed_by: the person who clicked Submit
    # Python's offsets of the stored text (JavaScript's would be one more after the emoji): the predicted span kept,
    # the selected one where the person selected it
    assert row["label"] == stored([PREDICTED, SELECTED])
