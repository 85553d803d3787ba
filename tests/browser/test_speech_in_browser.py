"""A person labels audio in the browser (issue 35): a code-switched utterance spoken by espeak-ng, served by Label
Studio's local-files endpoint. On an ``audio_segments`` task the labeler picks ``vi`` and drags a region over a
Vietnamese phrase on the waveform (nothing is played); on a ``text_edits`` task the text area is pre-filled with
the machine transcript (the task's prediction), and the labeler corrects it. Both are submitted, and the stored
answers are in the interfaces' forms: a region list whose start and end are where the mouse went, and the text as
typed.

The screenshots (``docs/img/speech-segments.png``, ``docs/img/speech-edit.png``) show the labelled region on the
waveform and the corrected transcript before Submit.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from labeling_assets.core.labelstudio.storage import link_raw_store, server_folder
from labeling_assets.core.speech.crowd import machine_output
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.synth import Utterance, make_utterance, write_wav
from tests.browser.conftest import Labeler, sign_up
from tests.browser.pages import LOAD_ERROR, UI_WAIT_S, log_in, screenshot_kept, submit, ui_task_id
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser]

DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
SEED = 0  # an utterance whose first phrase is Vietnamese
SEGMENT_CONFIG = """<View>
  <Labels name="label" toName="audio"><Label value="vi"/><Label value="en"/><Label value="noise"/></Labels>
  <Audio name="audio" value="$audio"/>
</View>"""
EDIT_CONFIG = """<View>
  <Audio name="audio" value="$audio"/>
  <Header value="Machine output"/>
  <Text name="machine" value="$machine"/>
  <Header value="Correct the machine output"/>
  <TextArea name="edit" toName="machine" editable="true" rows="3" maxSubmissions="1"/>
</View>"""


@dataclass
class SpeechProjects:
    ls: LabelStudioServer
    utterance: Utterance
    target: Region  # the phrase the person drags over
    machine: str  # the machine transcript the text area is pre-filled with
    segments_project: int
    edits_project: int


@pytest.fixture(scope="module")
def speech_projects(image_server: LabelStudioServer) -> Iterator[SpeechProjects]:
    utterance = make_utterance(np.random.default_rng(SEED))
    target = next(r for r in utterance.regions if r.label == "vi")
    machine = " ".join(machine_output(utterance.transcript.split(), np.random.default_rng(SEED), typo=0.4))
    assert machine != utterance.transcript  # something to correct
    data = image_server.files_root
    link_raw_store(data)
    write_wav(data / "raw" / "utterance.wav", utterance.audio, utterance.sample_rate)
    audio = "/data/local-files/?d=raw/utterance.wav"
    client = image_server.client()
    segments = client.ensure_project(
        title="speech-segments", classes=[], overlap=1, label_config=SEGMENT_CONFIG
    )
    edits = client.ensure_project(title="speech-edits", classes=[], overlap=1, label_config=EDIT_CONFIG)
    for project in (segments, edits):
        client.ensure_local_files_storage(project, server_folder(data / "raw", data, None))
    client.import_tasks(segments, [{"data": {"audio": audio, "item_id": "a"}}])
    prediction = {"from_name": "edit", "to_name": "machine", "type": "textarea", "value": {"text": [machine]}}
    client.import_tasks(edits, [{
        "data": {"audio": audio, "source": "", "machine": machine, "item_id": "e"},
        "predictions": [{"model_version": "machine", "result": [prediction]}],
    }])  # fmt: skip
    client.show_predictions_of(edits, "machine")
    yield SpeechProjects(image_server, utterance, target, machine, segments, edits)


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


def _loaded_audio(driver: WebDriver, wait: WebDriverWait) -> dict[str, Any]:
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
    pointer.move_to_location(
        x1, y + 300
    )  # away: the time tooltip under the pointer would hide the region's end
    actions.perform()


def test_a_labeler_drags_a_region_and_corrects_a_transcript(
    speech_projects: SpeechProjects, speech_labeler: Labeler, chromium: WebDriver
) -> None:
    url, wait, ls = speech_projects.ls.url, WebDriverWait(chromium, UI_WAIT_S), speech_projects.ls
    target, utterance = speech_projects.target, speech_projects.utterance
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    segments_png, edit_png = DOCS_IMG / "speech-segments.png", DOCS_IMG / "speech-edit.png"
    for stale in (segments_png, edit_png):
        stale.unlink(missing_ok=True)
    log_in(chromium, wait, url, speech_labeler)

    with screenshot_kept(chromium, segments_png):
        chromium.get(f"{url}/projects/{speech_projects.segments_project}/data?labeling=1")
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
        chromium.get(f"{url}/projects/{speech_projects.edits_project}/data?labeling=1")
        edits_task = wait.until(ui_task_id, "the labeling UI never showed the edit task")
        _loaded_audio(chromium, wait)  # the transcript's recording is there to listen to
        # the prediction pre-fills the text area with the machine transcript
        shown = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=textarea-region]"))
        assert wait.until(lambda d: d.execute_script(_EDIT)) == [
            {"text": [speech_projects.machine], "origin": "prediction"}
        ]
        ActionChains(chromium).move_to_element(shown).perform()  # its edit button shows on hover
        shown.find_element(By.CSS_SELECTOR, "[data-testid=htx-textbox-edit-button]").click()
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=htx-textbox-input]"))
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(utterance.transcript)  # the correction: what was said
        chromium.find_element(By.CSS_SELECTOR, "[data-testid=htx-textbox-save]").click()
        wait.until(
            lambda d: (
                d.execute_script(_EDIT) == [{"text": [utterance.transcript], "origin": "prediction-changed"}]
            ),
            "the corrected text never replaced the machine transcript",
        )
        chromium.save_screenshot(str(edit_png))
        submit(chromium, wait, ls.client(), edits_task)

    # the region is where the mouse went, in seconds of the file: the phrase, to within a pixel
    dragged = [(x - wave["left"]) / px_per_s for x in (x0, x1)]
    (answer,) = ls.client().request("GET", f"/api/tasks/{segments_task}/annotations/")
    (result,) = answer["result"]
    assert result["value"]["labels"] == ["vi"]
    assert [result["value"]["start"], result["value"]["end"]] == pytest.approx(dragged, abs=1e-3)
    assert dragged == pytest.approx([target.start, target.end], abs=1.0 / px_per_s)
    (answer,) = ls.client().request("GET", f"/api/tasks/{edits_task}/annotations/")
    assert [r["value"]["text"] for r in answer["result"]] == [[utterance.transcript]]
