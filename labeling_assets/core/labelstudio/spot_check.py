"""The spot-check project in Label Studio, where a reviewer judges one sampled answer at a time.

Pure functions: its title (``<title> — spot-check``, beside the expert review project ``<title> — review``), its
labeling config and the task of one sampled answer. The task shows the item (image or text), the labeler's name
and the labeler's answer pre-drawn in the kind's own controls (a Label Studio prediction of version
:data:`LABELER_VERSION`), and asks for a required verdict: accept, reject, or fix (correct the answer in the
controls, then pick "fix"). :func:`read_verdict` reads a reviewer's annotation back: the verdict, and for a fix
the corrected answer in the kind's own form (``TaskKind.answer_from_result`` of the other regions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labeling_assets.core.consensus.spot_check import FIX, VERDICTS
from labeling_assets.core.labelstudio.config import DATA_KEY

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind

SPOT_CHECK_SUFFIX = " — spot-check"
VERDICT_NAME = "verdict"  # the verdict's <Choices name>
CONTEXT_KEY = "context"
LABELER_VERSION = "labeler_answer"  # the model_version of the pre-drawn answer: the labeler's, no model's
MAX_TITLE = 50  # Label Studio refuses a longer project title
_SHOWN = re.compile(r'<(Image|Text|Audio) name="([^"]*)" value="\$')  # the object tag a crowd config shows its item in


def spot_check_title(title: str) -> str:
    """The spot-check project's title: ``<title> — spot-check``, the title cut to fit Label Studio's 50 characters."""
    return f"{title[: MAX_TITLE - len(SPOT_CHECK_SUFFIX)]}{SPOT_CHECK_SUFFIX}"


def spot_check_config(crowd_config: str) -> str:
    """The item, the context line (the labeler's name, why the answer was sampled), every control of the crowd's
    config (``TaskKind.label_config``) unchanged, so the pre-drawn answer and a fix read as the crowd's answers do,
    and the required verdict choice."""
    lines = crowd_config.rstrip().splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if _SHOWN.search(line))
    match = _SHOWN.search(lines[at])
    assert match is not None
    shown, name = lines[at].rstrip("\n"), match.group(2)
    if "<Image " in shown:
        shown = shown.replace("/>", ' maxWidth="480px"/>', 1)
    controls = "".join(lines[1:at] + lines[at + 1 : -1])  # without <View>, the object and </View>
    choices = "\n".join(f'    <Choice value="{v}"/>' for v in VERDICTS)
    return (
        "<View>\n"
        f'  <Text name="{CONTEXT_KEY}" value="${CONTEXT_KEY}"/>\n'
        f"{shown}\n"
        f"{controls}"
        '  <Header value="Verdict: accept the answer, reject it, or correct it above and pick fix"/>\n'
        f'  <Choices name="{VERDICT_NAME}" toName="{name}" choice="single" showInLine="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def spot_check_task(
    item_id: str,
    media: str,
    *,
    ls_annotation_id: int,
    labeler: str,
    drawn: list[dict[str, Any]] | None,
    why: str,
    data_key: str = DATA_KEY,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Label Studio task of one sampled answer: the item (``media``: the image's URL, or a text kind's text;
    ``data``: what it shows instead of ``{data_key: media}``, ``tasks.task_data``),
    who answered, why it was sampled, and the answer pre-drawn (``drawn``: ``TaskKind.answer_result`` of it; None
    when it cannot be drawn, and the context says so)."""
    shown = "their answer is pre-drawn below" if drawn is not None else "their answer cannot be drawn here"
    task: dict[str, Any] = {
        "data": {
            **(data if data is not None else {data_key: media}),
            "item_id": item_id,
            "ls_annotation_id": int(ls_annotation_id),
            "labeler": labeler,
            CONTEXT_KEY: f"Labeler: {labeler} | {shown} | sampled: {why}",
        }
    }
    if drawn is not None:
        task["predictions"] = [{"model_version": LABELER_VERSION, "result": drawn}]
    return task


@dataclass(frozen=True)
class ReadVerdict:
    """A reviewer's annotation read back: the verdict (None: none readable), a fix's answer, or why not."""

    verdict: str | None
    answer: Any = None
    problem: str | None = None


def read_verdict(result: Any, kind: TaskKind) -> ReadVerdict:
    """The verdict of a reviewer's ``result`` and, for a fix, the corrected answer as ``kind`` stores it (the
    regions other than the verdict's); a verdict that is not one of :data:`VERDICTS`, or a fix whose answer does
    not read, is a problem (nothing is recorded for it)."""
    if not isinstance(result, list):
        return ReadVerdict(None, problem="the result is not a list of regions")
    picks = [r for r in result if isinstance(r, Mapping) and r.get("from_name") == VERDICT_NAME]
    rest: Sequence[Mapping[str, Any]] = [r for r in result if not (isinstance(r, Mapping) and r.get("from_name") == VERDICT_NAME)]
    chosen = [c for r in picks for c in ((r.get("value") or {}).get("choices") or [])]
    if len(chosen) != 1 or chosen[0] not in VERDICTS:
        return ReadVerdict(None, problem=f"no single verdict of {', '.join(VERDICTS)} (got {chosen!r:.80})")
    verdict = str(chosen[0])
    if verdict != FIX:
        return ReadVerdict(verdict)
    answer = kind.answer_from_result(list(rest))
    if answer is None:
        return ReadVerdict(None, problem="a fix without a readable answer")
    return ReadVerdict(verdict, answer)
