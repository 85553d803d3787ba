"""A person labels audio in the browser (issue 35), on two projects built through the pipeline's own path: a
code-switched utterance spoken by espeak-ng is ingested (``raw_images``) as an ``audio_segments`` item, and, with a
sidecar row holding its machine transcript, as a ``text_edits`` item; ``labeling_tasks`` pushes both, the edit
task with the machine transcript as its prediction (what the kind pre-fills when no model has pre-labelled it).

A labeler logs in, picks ``vi`` and drags a region over a Vietnamese phrase on the waveform (nothing is played),
submits, then corrects the transcript pre-filled in the text area and submits. The annotation sensor's run request
runs each project's ``collect_job``, and the stores hold both answers in the kinds' stored forms: a region list
whose start and end are where the mouse went, and the text as typed. The edit page shows the transcript as text,
never the task as JSON (what Label Studio's UI shows for a data key named ``source``).

The screenshots (``tests/artifacts``; copied to ``docs/img/speech-segments.png`` and ``speech-edit.png`` when
LABELING_ASSETS_UPDATE_DOCS_IMAGES=1) show the labelled region on the
waveform and the corrected transcript before Submit.
"""

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.assets import collect, ingest, queue
from labeling_assets.core.label_sets import AUDIO_SEGMENTS, TEXT_EDITS, TaskType
from labeling_assets.core.labelstudio.tasks import AUDIO_HEADER, SOURCE_HEADER
from labeling_assets.core.speech.crowd import machine_output
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.synth import LABELS, Utterance, make_utterance, write_wav
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    items_table,
)
from labeling_assets.core.tasks.text_edits.kind import MACHINE_VERSION
from labeling_assets.jobs import collect_job, ingest_job, queue_job
from labeling_assets.resources.image_source import ImageSourceResource
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource
from labeling_assets.sensors import annotation_sensor
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import LOAD_ERROR, UI_WAIT_S, log_in, screenshot_kept, submit, ui_task_id
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
SEED = 0  # an utterance whose first phrase is Vietnamese


@dataclass
class SpeechProject:
    """One project of the pipeline: its store, Dagster definitions and instance, and Label Studio project."""

    ls: LabelStudioServer
    title: str
    store: LabelStore
    instance: dg.DagsterInstance
    defs: dg.Definitions
    label_studio: LabelStudioResource
    item_id: str  # the one item its queue pushed
    queued: dict[str, Any]  # labeling_tasks' metadata

    @property
    def project_id(self) -> int:
        (found,) = [p["id"] for p in self.ls.client().list_projects() if p["title"] == self.title]
        return int(found)

    def collect(self) -> list[dict[str, Any]]:
        """The daemon's path: the sensor sees the change and requests collect_job; its run stores the answers."""
        with dg.build_sensor_context(
            instance=self.instance, resources={"label_studio": self.label_studio}
        ) as context:
            tick = annotation_sensor(context)
        assert isinstance(tick, dg.SensorResult)
        (request,) = tick.run_requests or []
        run = self.defs.resolve_job_def("collect_job").execute_in_process(
            instance=self.instance, tags=request.tags
        )
        assert run.success
        return [dict(row) for row in self.store.fetch(current_annotations_query())]


@dataclass
class Speech:
    utterance: Utterance
    target: Region  # the phrase the person drags over
    machine: str  # the machine transcript the text area is pre-filled with
    segments: SpeechProject
    edits: SpeechProject


def _project(
    ls: LabelStudioServer, instance: dg.DagsterInstance, store: LabelStore, task_type: TaskType, source: Path
) -> SpeechProject:
    """Ingest ``source`` as a ``task_type`` project and queue its item."""
    title = f"speech-{task_type}"
    label_studio = LabelStudioResource(
        url=ls.url, api_key=dg.EnvVar("LABEL_STUDIO_API_KEY"), project_title=title
    )
    defs = dg.Definitions(
        assets=[ingest.raw_images, queue.labeling_tasks, collect.annotations],
        jobs=[ingest_job, queue_job, collect_job],
        sensors=[annotation_sensor],
        resources={
            "label_store": LabelStoreResource(url=store.url),
            "label_studio": label_studio,
            "project": ProjectSettings(
                data_dir=str(ls.files_root), classes=list(LABELS), task_type=task_type
            ),
            "image_source": ImageSourceResource(uri=str(source)),
        },
    )
    assert defs.resolve_job_def("ingest_job").execute_in_process(instance=instance).success
    (item,) = [row for row in store.fetch(items_table.select()) if row["status"] != "media"]
    run = defs.resolve_job_def("queue_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"labeling_tasks": {"config": {"overlap": 1, "gold_rate": 0.0}}}},
    )
    assert run.success
    (event,) = run.get_asset_materialization_events()
    queued = {k: v.value for k, v in event.materialization.metadata.items()}
    return SpeechProject(ls, title, store, instance, defs, label_studio, str(item["item_id"]), queued)


@pytest.fixture(scope="module")
def speech(image_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Speech]:
    utterance = make_utterance(np.random.default_rng(SEED))
    target = next(r for r in utterance.regions if r.label == "vi")
    machine = " ".join(machine_output(utterance.transcript.split(), np.random.default_rng(SEED), typo=0.4))
    assert machine != utterance.transcript  # something to correct
    segments_source, edits_source = tmp_path_factory.mktemp("segments"), tmp_path_factory.mktemp("edits")
    write_wav(segments_source / "utterance.wav", utterance.audio, utterance.sample_rate)
    (edits_source / "audio").mkdir()
    write_wav(edits_source / "audio" / "utterance.wav", utterance.audio, utterance.sample_rate)
    row = {"id": "utterance", "machine": machine, "audio": "audio/utterance.wav", "group": "utterance"}
    (edits_source / "edits.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    stores = [LabelStore(f"sqlite:///{tmp_path_factory.mktemp('store') / 'labels.db'}") for _ in range(2)]
    with pytest.MonkeyPatch.context() as env, dg.DagsterInstance.ephemeral() as instance:
        env.setenv("LABEL_STUDIO_API_KEY", image_server.token)  # the resources read it through dg.EnvVar
        for store in stores:
            store.migrate()
        segments = _project(image_server, instance, stores[0], AUDIO_SEGMENTS, segments_source)
        edits = _project(image_server, instance, stores[1], TEXT_EDITS, edits_source)
        yield Speech(utterance, target, machine, segments, edits)
    for store in stores:
        store.dispose()


@pytest.fixture(scope="module")
def speech_labeler(image_server: LabelStudioServer) -> Labeler:
    return sign_up(image_server, "speech.labeler@labeling-assets.local")


# The task audio once the labeling UI has decoded it: its duration in seconds (null while loading), or the error
# Label Studio shows when it could not fetch it.
_AUDIO = """
const page = document.body.innerText;
const at = page.indexOf(arguments[0]);
if (at >= 0) return {error: page.slice(at, at + 300)};
const a = window.Htx && window.Htx.annotationStore && window.Htx.annotationStore.selected;
const audio = a && a.names.get('audio');
const ws = audio && audio._ws;
if (!ws || !ws.loaded || !ws.duration) return null;
const r = document.querySelector('.lsf-audio-tag canvas').getBoundingClientRect();
return {duration: ws.duration, left: r.left, top: r.top, width: r.width, height: r.height};
"""

# The regions of the annotation the labeling UI shows, from its store (drawn on a canvas): seconds and labels.
_REGIONS = """
const a = window.Htx && window.Htx.annotationStore && window.Htx.annotationStore.selected;
if (!a) return null;
return a.regions.map(r => ({start: r.start, end: r.end, origin: r.origin,
                            labels: r.labeling ? r.labeling.selectedLabels.map(l => l.value) : []}));
"""

# The text the annotation's text area holds (what Submit sends), and where it came from.
_EDIT = """
const a = window.Htx && window.Htx.annotationStore && window.Htx.annotationStore.selected;
if (!a) return null;
const found = a.serializeAnnotation().filter(r => r.from_name === 'edit');
return found.map(r => ({text: r.value.text, origin: r.origin}));
"""


def _loaded_audio(driver: WebDriver, wait: WebDriverWait[WebDriver]) -> dict[str, Any]:
    shown = wait.until(lambda d: d.execute_script(_AUDIO, LOAD_ERROR), "the waveform never finished loading")
    assert "error" not in shown, f"Label Studio could not load the task audio: {shown['error']!r}"
    return shown  # type: ignore[no-any-return]


def _drag(driver: WebDriver, y: int, x0: int, x1: int) -> None:
    """Press the mouse at ``x0``, move to ``x1`` in steps, release (viewport pixels)."""
    actions = ActionChains(driver)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(x0, y)
    pointer.pointer_down()
    for step in (1, 2, 3):
        pointer.move_to_location(x0 + (x1 - x0) * step // 4, y)
    pointer.move_to_location(x1, y)
    pointer.pointer_up()
    # then away: the time tooltip under the pointer would hide the region's end in the screenshot
    pointer.move_to_location(x1, y + 300)
    actions.perform()


def test_a_labeler_drags_a_region_and_corrects_a_transcript_and_collect_stores_both(
    speech: Speech, speech_labeler: Labeler, chromium: WebDriver, artifacts_dir: Path
) -> None:
    segments, edits = speech.segments, speech.edits
    url, wait, ls = segments.ls.url, WebDriverWait(chromium, UI_WAIT_S), segments.ls
    target, utterance = speech.target, speech.utterance
    # the queues pushed one task each, the edit task with a prediction
    assert segments.queued["pushed"] == 1 and edits.queued["pushed"] == 1
    assert edits.queued["with_predictions"] == 1
    segments_png, edit_png = artifacts_dir / "speech-segments.png", artifacts_dir / "speech-edit.png"
    for stale in (segments_png, edit_png):
        stale.unlink(missing_ok=True)
    log_in(chromium, wait, url, speech_labeler)

    with screenshot_kept(chromium, segments_png):
        chromium.get(f"{url}/projects/{segments.project_id}/data?labeling=1")
        segments_task = wait.until(ui_task_id, "the labeling UI never showed the segments task")
        wave = _loaded_audio(chromium, wait)
        assert wave["duration"] == pytest.approx(utterance.duration, abs=0.01)  # the whole file, decoded
        (vi,) = [
            e
            for e in chromium.find_elements(By.CSS_SELECTOR, ".lsf-label_clickable")
            if e.text.split()[:1] == ["vi"]
        ]
        vi.click()  # the label first, then the drag: Label Studio makes a region of the selected label
        assert "lsf-label_selected" in (vi.get_attribute("class") or "")
        # at the default zoom the canvas spans the file: seconds -> pixels through its width
        px_per_s = wave["width"] / wave["duration"]
        x0, x1 = (round(wave["left"] + t * px_per_s) for t in (target.start, target.end))
        _drag(chromium, round(wave["top"] + wave["height"] / 2), x0, x1)
        (region,) = wait.until(lambda d: d.execute_script(_REGIONS), "the drag made no region")
        assert region["labels"] == ["vi"], region
        chromium.save_screenshot(str(segments_png))
        submit(chromium, wait, ls.client(), segments_task)

    with screenshot_kept(chromium, edit_png):
        chromium.get(f"{url}/projects/{edits.project_id}/data?labeling=1")
        edits_task = wait.until(ui_task_id, "the labeling UI never showed the edit task")
        # its prediction is the machine output itself: no model has pre-labelled the item
        predictions = ls.client().request("GET", f"/api/tasks/{edits_task}/")["predictions"]
        assert [p["model_version"] for p in predictions] == [MACHINE_VERSION]
        _loaded_audio(chromium, wait)  # the transcript's recording is there to listen to
        # the machine transcript is shown as text, and the task itself is not (as JSON, where a config names a
        # data key Label Studio's UI overwrites, such as `source`)
        wait.until(
            lambda d: speech.machine in d.find_element(By.TAG_NAME, "body").text, "no machine text shown"
        )
        page = chromium.find_element(By.TAG_NAME, "body").text
        assert edits.item_id not in page, "the task is shown as JSON"
        # a transcript item has audio and no source sentence: the audio's header is shown, the source's is not
        assert AUDIO_HEADER in page and SOURCE_HEADER not in page, page
        # the prediction pre-fills the text area with the machine transcript
        shown = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=textarea-region]"))
        prefilled = wait.until(lambda d: d.execute_script(_EDIT), "the text area was not pre-filled")
        assert prefilled == [{"text": [speech.machine], "origin": "prediction"}]
        ActionChains(chromium).move_to_element(shown).perform()  # its edit button shows on hover
        shown.find_element(By.CSS_SELECTOR, "[data-testid=htx-textbox-edit-button]").click()
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=htx-textbox-input]"))
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(utterance.transcript)  # the correction: what was said
        chromium.find_element(By.CSS_SELECTOR, "[data-testid=htx-textbox-save]").click()
        corrected = [{"text": [utterance.transcript], "origin": "prediction-changed"}]
        wait.until(
            lambda d: d.execute_script(_EDIT) == corrected, "the correction never replaced the machine text"
        )
        chromium.save_screenshot(str(edit_png))
        submit(chromium, wait, ls.client(), edits_task)
    if os.environ.get("LABELING_ASSETS_UPDATE_DOCS_IMAGES") == "1":  # docs/speech.md's pictures, on request only:
        for shot in (segments_png, edit_png):  # a plain run must not leave tracked files modified
            shutil.copyfile(shot, DOCS_IMG / shot.name)

    (stored,) = segments.collect()
    assert (stored["ls_task_id"], stored["item_id"]) == (segments_task, segments.item_id)
    assert stored["labeler_id"] == str(speech_labeler.user_id)  # completed_by: the person who clicked Submit
    # one region, where the mouse went in seconds of the file (Label Studio's own conversion, to the stored 3
    # decimals), and so the phrase's true boundaries to within a pixel
    dragged = [(x - wave["left"]) / px_per_s for x in (x0, x1)]
    ((start, end, label),) = [(r["start"], r["end"], r["label"]) for r in stored["label"]]
    assert label == "vi" and [start, end] == pytest.approx(dragged, abs=0.0006)
    assert [start, end] == pytest.approx([target.start, target.end], abs=1.0 / px_per_s + 0.0006)

    (stored,) = edits.collect()
    assert (stored["ls_task_id"], stored["item_id"]) == (edits_task, edits.item_id)
    assert stored["labeler_id"] == str(speech_labeler.user_id)
    assert stored["label"] == utterance.transcript  # the text as typed
