"""The review project in Label Studio, where an expert settles what the crowd could not.

Pure functions: its title and labeling config, and the task of one item: the image, every vote with its
labeler's name and current gold accuracy (with the interval), the model's prediction and why the item is
there, and the crowd's consensus answer pre-drawn (a Label Studio prediction of version ``consensus``: the expert
fixes it rather than starting from an empty image or text). The expert answers with the same controls as the crowd (``<Choices name="label">``; boxes: the same
``<RectangleLabels>``, drawing the boxes), so an answer parses with the project's kind (``TaskKind.read_answer``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.labelstudio.config import DATA_KEY

REVIEW_SUFFIX = " — review"
_SHOWN = re.compile(r'<(Image|Text|Audio) name="[^"]*" value="\$')  # the object tag a crowd config shows its item in
VOTES_KEY = "votes_html"
CONSENSUS_VERSION = "consensus"  # the model_version of a review task's pre-drawn answer: the crowd's, no model's
CONSENSUS_NOTE = "pre-drawn: the crowd's consensus answer (correct it, or submit it as it is)"
CONTEXT_KEY = "context"
# The model's Grad-CAM overlay beside the image (image classifiers only): an item where the model disagrees with the
# crowd gets its overlay's URL, any other a placeholder that says why there is none (the key must be in every task).
OVERLAY_KEY = "gradcam"
OVERLAY_FOLDER = "gradcam"  # <data>/raw/gradcam: inside the raw store, the one folder Label Studio serves
NO_OVERLAY_LINES = ("no Grad-CAM overlay:", "the model agrees with", "the crowd, or there is", "no image model")


def review_title(title: str) -> str:
    """The review project's title: ``<title> — review``."""
    return f"{title}{REVIEW_SUFFIX}"


def review_config(crowd_config: str, *, overlay: bool = False) -> str:
    """The image (a text kind: the text), the votes table and the model's prediction above the crowd's controls
    (``crowd_config``: the project's config, ``TaskKind.label_config``): every control of it, the same
    (``<Choices>``; boxes: ``<RectangleLabels>`` and the "No object" choice; spans: ``<Labels>`` and "No
    entities"), so answers read alike. ``overlay``: the model's Grad-CAM overlay (``$gradcam``) beside the image."""
    lines = crowd_config.splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if _SHOWN.search(line))
    shown = lines[at].rstrip("\n")
    if "<Image " in shown:
        shown = shown.replace("/>", ' maxWidth="280px"/>', 1)
        if overlay:
            shown = (f'  <View style="display: flex; gap: 12px; align-items: flex-start;">\n  {shown}\n'
                     f'    <Image name="{OVERLAY_KEY}" value="${OVERLAY_KEY}" maxWidth="280px"/>\n  </View>')  # fmt: skip
    return (
        "<View>\n"
        f"{shown}\n"
        f'  <Text name="{CONTEXT_KEY}" value="${CONTEXT_KEY}"/>\n'
        f'  <HyperText name="votes" value="${VOTES_KEY}"/>\n'
        + "".join(lines[1:at] + lines[at + 1 :])
    )


@dataclass(frozen=True)
class ShownVote:
    """One crowd vote as the expert sees it."""

    labeler: str  # name (partition key), never the numeric id alone
    label: str
    gold_accuracy: float | None
    gold_n: int
    ci_low: float | None = None
    ci_high: float | None = None


def votes_html(votes: Sequence[ShownVote], gold_header: str = "gold accuracy") -> str:
    """A small HTML table of the votes (every string escaped: names and classes come from people)."""
    rows = []
    for v in votes:
        accuracy = (
            f"{v.gold_accuracy:.0%} of {v.gold_n}"
            + (f" (95% CI {v.ci_low:.0%}-{v.ci_high:.0%})" if v.ci_low is not None and v.ci_high is not None else "")
            if v.gold_accuracy is not None
            else "no gold answered"
        )
        rows.append(
            f"<tr><td>{html.escape(v.labeler)}</td><td><b>{html.escape(str(v.label))}</b></td>"
            f"<td>{html.escape(accuracy)}</td></tr>"
        )
    return (
        f'<table border="1" cellpadding="4"><tr><th>labeler</th><th>vote</th><th>{html.escape(gold_header)}</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def review_task(
    item_id: str,
    image_url: str,
    votes: Sequence[ShownVote],
    *,
    reason: str,
    prediction: tuple[str, float] | None = None,
    model_version: str | None = None,
    model_line: str | None = None,
    gold_header: str = "gold accuracy",
    data_key: str = DATA_KEY,
    consensus: tuple[list[dict[str, Any]], float | None] | None = None,
    overlay_url: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Label Studio task of one item for the expert (``model_line`` replaces the single-class prediction:
    :func:`set_prediction_line` for label sets; ``data_key``: "text" for a text kind, whose ``image_url`` is then
    the text; ``consensus``: the consensus answer as a Label Studio result (``TaskKind.answer_result``) and its
    confidence, pre-drawn as the prediction of version :data:`CONSENSUS_VERSION`, and said so in the context;
    ``overlay_url``: the ``$gradcam`` image of a config with the overlay, :func:`review_config`; ``data``: what
    the task shows instead of ``{data_key: image_url}``, ``tasks.task_data``)."""
    model = (
        f"model {model_version or ''}: {prediction[0]} (p={prediction[1]:.2f})".replace("model :", "model:")
        if prediction is not None
        else "model: no prediction"
    )
    model = model_line or model
    task: dict[str, Any] = {
        "data": {
            **(data if data is not None else {data_key: image_url}),
            "item_id": item_id,
            VOTES_KEY: votes_html(votes, gold_header),
            CONTEXT_KEY: f"Why: {reason} | {model}" + (f" | {CONSENSUS_NOTE}" if consensus is not None else ""),
            **({OVERLAY_KEY: overlay_url} if overlay_url is not None else {}),
        }
    }
    if consensus is not None:
        result, confidence = consensus
        task["predictions"] = [{"model_version": CONSENSUS_VERSION, "result": result,
                                **({"score": float(confidence)} if confidence is not None else {})}]  # fmt: skip
    return task


def set_prediction_line(probs: Mapping[str, float] | None, model_version: str | None, top: int = 3) -> str:
    """A multi-label model's view for the expert: its most probable classes, each with P(present). The classes are
    independent, so one "top class" would hide a second finding; no threshold is claimed here."""
    if not probs:
        return "model: no prediction"
    shown = sorted(probs, key=lambda k: (-probs[k], k))[:top]
    per_class = ", ".join(f"{name} {probs[name]:.2f}" for name in shown)
    return f"model {model_version or ''}: P(present) {per_class}".replace("model :", "model:")


def top_prediction(probs: Mapping[str, float] | None) -> tuple[str, float] | None:
    """The model's most probable class and its probability."""
    if not probs:
        return None
    label = max(probs, key=lambda k: (probs[k], k))
    return str(label), float(probs[label])


def explained_class(probs: Mapping[str, float] | None, label: Any, threshold: float = 0.5) -> str | None:
    """The class whose Grad-CAM the expert sees when the model disagrees with the crowd's ``label``, else None: the
    model's top class when it is not the crowd's class; for a label set (a list) the class the model sees most
    confidently that the crowd's set lacks (P >= ``threshold``), else the crowd's class it misses most confidently
    (Grad-CAM shows the evidence for a class)."""
    if not probs or label is None:
        return None
    if isinstance(label, str):
        top = max(probs, key=lambda k: (probs[k], k))
        return str(top) if top != label else None
    if isinstance(label, list | tuple):
        given = {str(c) for c in label}
        seen = {c: p for c, p in probs.items() if p >= threshold and c not in given}
        missed = {c: 1 - p for c, p in probs.items() if p < threshold and c in given}
        against = seen or missed
        return str(max(against, key=lambda k: (against[k], k))) if against else None
    return None
