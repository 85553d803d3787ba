"""Audio files as items: decoded with ``soundfile`` (libsndfile: WAV, FLAC, OGG, MP3), measured (duration, sample
rate, channels, format), and everything that cannot be heard refused with a reason.

An audio item is a file's bytes (its id the SHA-256 of them, as an image's); ``core.ingest.scan`` stores its copy
content-addressed with the format's extension (``.wav .flac .ogg .mp3``: Label Studio's player needs it) and
quarantines, with one line each:

- ``audio_unreadable``: libsndfile cannot open it, a format Label Studio does not play, or a truncated file (a
  decode that stops early, fewer frames than the header declares, or a WAV data chunk running past the end; a
  truncated MP3 is not seen: its decoder conceals the loss);
- ``audio_empty``: zero frames (an empty file, or a header and no sound);
- ``audio_too_long``: longer than ``AudioOptions.max_seconds`` (``ProjectSettings.max_audio_seconds``), decided
  from the header before anything is decoded.

:func:`read_audio` is what every later stage (features, models, exports) reads an item's audio with.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from labeling_assets.core.images import DecodeFailure

# The task types whose items are audio (audio_segments) or refer to it (text_edits: a sidecar's rows).
AUDIO_SEGMENTS = "audio_segments"
TEXT_EDITS = "text_edits"
AUDIO_TASK_TYPES = (AUDIO_SEGMENTS, TEXT_EDITS)
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3"})
SIDECAR_EXTENSIONS = frozenset({".jsonl"})  # a text_edits source's rows (core.ingest.edits)
DEFAULT_MAX_AUDIO_SECONDS = 600.0
# ``filename,group`` in an audio source's folder: each file's recording or speaker (items.group_key), so that one
# recording never spans two splits where no path pattern (image_source.group_key_regex) says it.
GROUPS_FILE = "groups.csv"

AUDIO_UNREADABLE = "audio_unreadable"
AUDIO_EMPTY = "audio_empty"
AUDIO_TOO_LONG = "audio_too_long"
REASONS = (AUDIO_UNREADABLE, AUDIO_EMPTY, AUDIO_TOO_LONG)

# libsndfile's container names -> the format stored in items.format (WAVEX is a WAV with a channel mask).
_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "FLAC": "FLAC", "OGG": "OGG", "MP3": "MP3"}
# libsndfile clips a WAV whose data chunk runs past the end of the file to what is there, and logs it so:
_WAV_CUT = re.compile(r"^data : (\d+) \(should be (\d+)\)", re.MULTILINE)
# A streaming writer that cannot seek back (espeak-ng --stdout: 0x7FFFF000; ffmpeg to a pipe: 0xFFFFFFFF) leaves a
# size of 0 or of gigabytes in the header: not a cut, the data simply runs to the end of the file.
_PLACEHOLDER_SIZE = 1 << 30
_OPENING = re.compile(r"Error opening <[^>]*>: ")
_BLOCK = 1 << 16  # frames decoded at a time while verifying: memory stays small whatever the length


@dataclass(frozen=True)
class AudioOptions:
    """How an audio project's source reads (``ProjectSettings.audio_options``)."""

    task_type: str = AUDIO_SEGMENTS
    max_seconds: float = DEFAULT_MAX_AUDIO_SECONDS

    @property
    def extensions(self) -> frozenset[str]:
        """The files the source lists: audio, and for text_edits its sidecar JSONL files."""
        return AUDIO_EXTENSIONS | SIDECAR_EXTENSIONS if self.task_type == TEXT_EDITS else AUDIO_EXTENSIONS


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float  # decoded frames / sample rate
    sample_rate: int
    channels: int
    format: str  # WAV | FLAC | OGG | MP3


def verify_audio(data: bytes, max_seconds: float = DEFAULT_MAX_AUDIO_SECONDS) -> AudioInfo | DecodeFailure:
    """Decode ``data`` through to its last frame (in blocks) and measure it, or say why it is no item."""
    if not data:
        return DecodeFailure(AUDIO_EMPTY, "an empty file (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            fmt, rate, channels, declared = _FORMATS.get(f.format), int(f.samplerate), int(f.channels), int(f.frames)
            if fmt is None:
                return DecodeFailure(AUDIO_UNREADABLE, f"a {f.format} file ({f.format_info}): expected WAV, FLAC, OGG or MP3")
            if rate <= 0:
                return DecodeFailure(AUDIO_UNREADABLE, f"sample rate {rate}")
            if declared / rate > max_seconds:
                return DecodeFailure(AUDIO_TOO_LONG, f"{declared / rate:.1f} s, over the limit of {max_seconds:g} s")
            cut = _WAV_CUT.search(f.extra_info) if fmt == "WAV" else None
            frames = sum(len(block) for block in f.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError) as exc:
        return DecodeFailure(AUDIO_UNREADABLE, f"soundfile cannot decode it: {_one_line(exc)}")
    if frames == 0:
        return DecodeFailure(AUDIO_EMPTY, f"no audio frames ({len(data)} bytes, {fmt} at {rate} Hz)")
    if cut and 0 < int(cut.group(1)) < _PLACEHOLDER_SIZE and int(cut.group(2)) < int(cut.group(1)):
        return DecodeFailure(AUDIO_UNREADABLE, f"truncated: its data chunk declares {cut.group(1)} bytes, "
                             f"{cut.group(2)} are there")  # fmt: skip
    if frames < declared:  # the decoder stopped early: a truncated file would play cut short
        return DecodeFailure(AUDIO_UNREADABLE, f"truncated: {frames} of the {declared} frames its header declares decode")
    return AudioInfo(round(frames / rate, 6), rate, channels, fmt)


def load_groups(path: str | Path) -> dict[str, str]:
    """A ``filename,group`` CSV (header required) -> {relative path: group}; ``ValueError`` in one line."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"filename", "group"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a CSV with columns 'filename,group', got {reader.fieldnames}")
        return {row["filename"]: row["group"].strip() for row in reader if (row["group"] or "").strip()}


def item_measures(info: AudioInfo) -> dict[str, float | int]:
    """The items row's audio columns (migration 19)."""
    return {"duration_s": info.duration_s, "sample_rate": info.sample_rate, "channels": info.channels}


def read_audio(uri: str) -> tuple[npt.NDArray[np.float32], int]:
    """An item's audio (its stored copy, ``items.uri``) as float32 mono samples in [-1, 1] (channels averaged)
    and its sample rate. Raises ``soundfile.LibsndfileError`` (a ``RuntimeError``) for a file that is not audio,
    ``OSError`` for a missing one."""
    samples, rate = sf.read(Path(uri.removeprefix("file://")), dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.mean(axis=1, dtype=np.float32)), int(rate)


def audio_seconds(uri: str) -> float:
    """An item's duration in seconds from its stored copy's header alone (no decoding): ingest stored only files
    whose frames all decode (``verify_audio``), so the header's frame count is the decoded length. Raises as
    :func:`read_audio`."""
    info = sf.info(str(Path(uri.removeprefix("file://"))))
    return float(info.frames) / float(info.samplerate)


def _one_line(exc: BaseException) -> str:
    return " ".join(_OPENING.sub("", str(exc)).split())[:200] or type(exc).__name__
