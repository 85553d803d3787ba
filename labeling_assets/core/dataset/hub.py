"""Pushing a dataset version's Hugging Face export to the Hub: an option of ``dataset_export``, off by default.

Nothing leaves the machine unless a project asks for it by naming a Hub dataset repo (issue 31: "Pushing to the Hub
is an option that is off by default"). The repo is made private unless asked otherwise; the token is the caller's
(``HF_TOKEN``, or what ``huggingface-cli login`` stored). Any failure (no network, no token, no rights, a bad repo
id) is one clear error, never a half-done export: the files on disk are written before the push.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

# A Hub repo id: owner/name, letters, digits, '-', '_' and '.' (the Hub's own rule, without its length limits).
REPO_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


class HubPushError(RuntimeError):
    """The push did not happen; the message says why in one line."""


def push_dataset_dict(path: Path, repo_id: str, *, private: bool = True, token: str | None = None) -> str:
    """Push the ``DatasetDict`` saved at ``path`` (``save_to_disk``) to the Hub dataset ``repo_id``; the commit's
    URL. Raises :class:`HubPushError` for a repo id that is not ``owner/name`` (before any network call), a folder
    that holds no saved ``DatasetDict``, and any failure of the push itself."""
    if not REPO_ID.fullmatch(repo_id):
        raise HubPushError(f"{repo_id!r} is not a Hub dataset repo id: write it as owner/name")
    from datasets import DatasetDict, load_from_disk

    try:
        data = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise HubPushError(f"nothing to push at {path}: {exc}") from None
    if not isinstance(data, DatasetDict):
        raise HubPushError(f"{path} holds one dataset, not a DatasetDict of splits")
    try:
        info = data.push_to_hub(repo_id, private=private, token=token)
    except Exception as exc:  # the Hub client raises many kinds (HTTP, connection, auth): one line says which
        raise HubPushError(f"pushing {path.name} to the Hub dataset {repo_id} failed: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}"[:400]) from None  # fmt: skip
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo_id}")
