"""Labeling guidelines shown in Label Studio: the settings' Markdown file, versioned in the store and pushed as the
instructions of every project people answer in (Label Studio shows ``expert_instruction`` as HTML before labeling
when ``show_instruction`` is on).

The Markdown is rendered by markdown-it-py with raw HTML off: any HTML in the file is shown as text, never run, and
links with ``javascript:``-like schemes are not made links (its ``validateLink``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.store.guidelines import pushed_projects, record_guideline_text, record_push
from labeling_assets.core.store.schema import LabelStore

# Label Studio keeps expert_instruction in a text column; a guideline far longer than a person reads before
# labeling is more likely a wrong file (a data set named by mistake).
MAX_GUIDELINE_CHARS = 200_000


class GuidelinesFileError(ConfigurationError):
    """The guidelines file the settings name cannot be used (missing, unreadable, not UTF-8, empty, too long)."""


class InstructionsClient(Protocol):
    """What pushing guidelines needs of a Label Studio client (``resources/labelstudio.py`` provides it)."""

    def project_instructions(self, project_id: int) -> tuple[str, bool]: ...
    def set_project_instructions(self, project_id: int, instructions: str) -> dt.datetime: ...


def read_guidelines(path: Path) -> str:
    """The guideline text of ``path``; GuidelinesFileError (one line naming the file) when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GuidelinesFileError(f"guidelines file {path} does not exist (ProjectSettings.guidelines_path)") from None
    except UnicodeDecodeError as exc:
        raise GuidelinesFileError(f"guidelines file {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise GuidelinesFileError(f"guidelines file {path} cannot be read: {exc.strerror or exc}") from None
    if not text.strip():
        raise GuidelinesFileError(f"guidelines file {path} is empty: the projects keep their current instructions")
    if len(text) > MAX_GUIDELINE_CHARS:
        raise GuidelinesFileError(
            f"guidelines file {path} has {len(text):,} characters (at most {MAX_GUIDELINE_CHARS:,}): is it the right file?"
        )
    return text


def instructions_html(text: str, version: int) -> str:
    """The HTML Label Studio shows for guideline ``text`` (Markdown), its version named at the end."""
    from markdown_it import MarkdownIt  # imported here: the definitions never need it

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    # Plain tags only: Label Studio sanitizes what it stores (it drops data- attributes, say), and a push is skipped
    # only when the project gives back exactly what was sent.
    return f"{body}<p><em>Guidelines version {version}</em></p>"


@dataclass(frozen=True)
class GuidelinesReport:
    """What a push did, as asset metadata."""

    guideline_version: int
    new_version: bool
    source: str
    content_hash: str
    pushed_to: list[int]  # projects whose instructions were set now
    already_shown: list[int]  # projects that showed this version already
    text: str

    def as_report(self) -> dict[str, Any]:
        from labeling_assets.core.tasks.kind import Markdown

        return {
            "guideline_version": self.guideline_version,
            "new_version": self.new_version,
            "source": self.source,
            "content_hash": self.content_hash,
            "pushed_to_projects": self.pushed_to,
            "already_shown_in_projects": self.already_shown,
            "guidelines": Markdown(self.text[:20_000]),
        }


def publish_guidelines(
    store: LabelStore, client: InstructionsClient, path: Path, project_ids: Sequence[int]
) -> GuidelinesReport:
    """Store the text of ``path`` as a version when it changed, and make it the instructions of every project in
    ``project_ids`` that does not show it yet (shown before labeling); each push is recorded at Label Studio's
    clock, which dates the answers given under it."""
    text = read_guidelines(path)
    version, new = record_guideline_text(store, text, str(path))
    wanted = instructions_html(text, version.version)
    done = pushed_projects(store, version.version)
    pushed, shown = [], []
    for project_id in project_ids:
        current, showing = client.project_instructions(project_id)
        if project_id in done and showing and current == wanted:
            shown.append(project_id)
            continue
        record_push(store, version.version, project_id, client.set_project_instructions(project_id, wanted))
        pushed.append(project_id)
    return GuidelinesReport(
        guideline_version=version.version, new_version=new, source=str(path), content_hash=version.content_hash,
        pushed_to=pushed, already_shown=shown, text=text,
    )  # fmt: skip

