"""Text edit answers: the Label Studio config, a ``textarea`` result of any shape read as the corrected text, a
stored answer drawn back as a result, votes and gold.

A stored answer is the corrected text as typed (a string; ``""`` is an answer: nothing was said). Comparisons read
it as words (:func:`words`: split on whitespace), so spacing never counts as an edit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

import pandas as pd

from labeling_assets.core.consensus.votes import Votes, _newest_per_labeler
from labeling_assets.core.label_sets import SKIP_UNREADABLE
from labeling_assets.core.labelstudio.answers import (
    UNREADABLE_EMPTY,
    UNREADABLE_NOT_A_LIST,
    UNREADABLE_NULL,
    UNREADABLE_REGION,
    UNREADABLE_TYPE,
    UNREADABLE_VALUE,
    Answer,
    _bad,
)
from labeling_assets.core.speech.text_consensus import word_errors

FROM_NAME = "edit"  # the <TextArea name>
TO_NAME = "machine"  # the <Text> the TextArea is about: always filled (the audio and the source may be empty)
RESULT_TYPE = "textarea"
SKIP_NOT_TEXT = "not_text"  # a stored value that is not a string
EDIT_VOTE_SKIPS = (SKIP_NOT_TEXT, SKIP_UNREADABLE)

# Every task carries the keys audio, source_text and machine ("" where an item has no audio or no source): Label
# Studio checks at import that a task holds every key its config reads, and an empty <Text> shows nothing. One
# config serves every item (a project's config cannot depend on the task): for a translation item the player has
# nothing to load and stays empty (length 0, no error). The source sentence is read from ``source_text``, not
# ``source``: Label Studio 1.23's labeling UI replaces a data key named ``source`` with the whole task
# (docs/speech.md, "A person labels audio"). The headers of the audio and the source come from the task
# (``audio_header``, ``source_header``: "" where the item lacks the part), so a translation shows no audio header.
CONFIG = """<View>
  <Header value="$audio_header"/>
  <Audio name="audio" value="$audio"/>
  <Header value="$source_header"/>
  <Text name="source" value="$source_text"/>
  <Header value="Machine output"/>
  <Text name="machine" value="$machine"/>
  <Header value="Correct the machine output"/>
  <TextArea name="edit" toName="machine" editable="true" maxSubmissions="1" rows="3" showSubmitButton="false"/>
</View>"""


def words(text: str) -> list[str]:
    """A text as the words comparisons read."""
    return str(text).split()


def normal(text: str) -> str:
    """A text with its whitespace normalised (how consensus, exports and the model write one)."""
    return " ".join(words(text))


def owns(config: str) -> bool:
    """A config with a ``<TextArea name="edit">``."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        return False
    return any(e.tag == "TextArea" and e.get("name") == FROM_NAME for e in root.iter())


def read_result(result: Any) -> Answer:
    """The text of the result's ``edit`` regions (several: joined by a new line), or why it holds none. A region's
    ``value.text`` may be a list of strings (Label Studio's shape) or one string."""
    if result is None:
        return _bad(UNREADABLE_NULL, "result is null")
    if not isinstance(result, list):
        return _bad(UNREADABLE_NOT_A_LIST, f"result is a {type(result).__name__}, not a list")
    if any(not isinstance(r, Mapping) for r in result):
        return _bad(UNREADABLE_REGION, "an entry of the result is not an object")
    ours = [r for r in result if r.get("from_name") == FROM_NAME]
    if not ours:
        return _bad(UNREADABLE_EMPTY, f"no region of the {FROM_NAME!r} text area")
    texts: list[str] = []
    for region in ours:
        if region.get("type", RESULT_TYPE) != RESULT_TYPE:
            return _bad(UNREADABLE_TYPE, f"an {FROM_NAME!r} region of type {region.get('type')!r}, not textarea")
        value = region.get("value")
        if not isinstance(value, Mapping):
            return _bad(UNREADABLE_VALUE, f"an {FROM_NAME!r} region's value is not an object")
        text = value.get("text")
        parts = [text] if isinstance(text, str) else text
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            return _bad(UNREADABLE_VALUE, f"value.text is {type(text).__name__}, not text or a list of texts")
        texts += parts
    return Answer("\n".join(texts))


def result_of(text: str) -> list[dict[str, Any]]:
    """A text as the ``edit`` region Label Studio stores."""
    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": RESULT_TYPE, "value": {"text": [str(text)]}}]


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def skip_reason(value: Any) -> str | None:
    """Why a stored value is no vote (None: it is one)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return SKIP_UNREADABLE
    return None if isinstance(value, str) else SKIP_NOT_TEXT


def edit_votes(annotations: pd.DataFrame) -> Votes:
    """Each labeler's newest answer per item, kept when it is text, else skipped and counted by reason."""
    frame = _newest_per_labeler(annotations)
    skipped: Counter[str] = Counter()
    examples: dict[str, list[Any]] = {}
    keep = []
    for value in frame["label"]:
        why = skip_reason(value)
        keep.append(why is None)
        if why is not None:
            skipped[why] += 1
            if len(examples.setdefault(why, [])) < 5:
                examples[why].append(str(value)[:80])
    frame = frame[keep] if len(frame) else frame
    frame = frame.sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
    return Votes(frame, dict(skipped), examples)


def valid_texts(stored: pd.Series) -> pd.Series:
    """The stored values that are text answers."""
    return pd.Series({k: v for k, v in stored.items() if skip_reason(v) is None}, dtype=object)


def word_counts(labels: pd.DataFrame, truth: Mapping[Any, Any]) -> tuple[int, int]:
    """(reference words right, reference words) of the answers to items of ``truth``: each answer scores its
    reference's words less its word errors (at least 0), so the pooled rate is 1 - WER, floored per item at 0."""
    right = total = 0
    for item, value in zip(labels["item_id"], labels["label"], strict=True):
        reference = truth.get(item)
        if skip_reason(value) is not None or skip_reason(reference) is not None:
            continue
        ref = words(str(reference))
        n = max(len(ref), 1)  # an empty reference: one "word", right when the answer is empty too
        right += max(n - word_errors(ref, words(str(value))), 0)
        total += n
    return right, total
