"""The one place raw images are decoded (ingest, previews, perceptual hashes, pre-labels, training): Pillow only.

:func:`decode` gives the picture as a person sees it in Label Studio: the first frame, rotated by its EXIF
orientation, as 8-bit ``L`` or ``RGB`` (16-bit grey scaled down, not clipped to white; palette, CMYK and
alpha images converted). :func:`verify_image` is the ingest gate: the pixel limit is checked on the header
before a pixel is decoded, a multi-frame file (animated GIF, WebP or PNG, multi-page TIFF) is refused with a
reason unless the ``first_frame`` policy is chosen, and the whole first frame is decoded.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

# Extensions the scanner considers images; anything else in the source folder is ignored.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})

# Far above any photo or scan we label, far below what exhausts memory on decode (8 bytes/pixel).
DEFAULT_MAX_PIXELS = 100_000_000

# Quarantine reasons (stable strings: they are stored and shown in the UI).
EMPTY_FILE = "empty_file"
UNREADABLE = "unreadable"
NOT_AN_IMAGE = "not_an_image"
CORRUPT = "truncated_or_corrupt"
TOO_LARGE = "too_many_pixels"
MULTI_FRAME = "multi_frame"

# What to do with a file of several frames: refuse it (the default: which frame is "the" image is a
# decision), or keep its first frame (training, previews and hashes then all use that frame).
MULTI_FRAME_REFUSE = "refuse"
MULTI_FRAME_FIRST = "first_frame"
MULTI_FRAME_POLICIES = (MULTI_FRAME_REFUSE, MULTI_FRAME_FIRST)
# JPEGs from phones and cameras often carry a second picture (MPO: a preview or depth map): one picture.
_SINGLE_PICTURE_FORMATS = frozenset({"MPO"})
# EXIF orientations 5-8 turn the picture a quarter: width and height swap.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112

Image.init()  # register every format plugin now, not lazily on first open


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as shown (after the EXIF orientation)
    height: int
    mode: str  # the file's own mode (e.g. I;16), before conversion
    format: str


@dataclass(frozen=True)
class DecodeFailure:
    reason: str
    detail: str


class ImageDecodeError(OSError, ValueError):
    """An image that cannot be used; ``reason`` is one of the quarantine reasons above. Both an ``OSError``
    and a ``ValueError`` (like ``io.UnsupportedOperation``): callers that caught Pillow's errors still do."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def sha256_hex(data: bytes) -> str:
    """The content hash that is an item's id."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _opened(source: bytes | str | Path, max_pixels: int) -> Iterator[Image.Image]:
    """The image opened lazily (header only), its pixel count checked against ``max_pixels``; every decoder
    error becomes an :class:`ImageDecodeError` with its reason."""
    if isinstance(source, bytes) and not source:
        raise ImageDecodeError(EMPTY_FILE, "file has 0 bytes")
    try:
        # No warnings.catch_warnings here: it is not thread-safe, and training decodes in threads. The limit
        # is ours (checked on the header, before any pixel is decoded); Pillow's bomb error stays a backstop.
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    TOO_LARGE, f"{width}x{height} = {width * height} pixels > limit {max_pixels}"
                )
            yield image
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(NOT_AN_IMAGE, str(exc) or "unrecognised image format") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(TOO_LARGE, str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(CORRUPT, f"{type(exc).__name__}: {exc}") from exc


def frame_count(image: Image.Image) -> int:
    """How many pictures the file holds (1 for an MPO camera JPEG: its extra frames are previews)."""
    if (image.format or "") in _SINGLE_PICTURE_FORMATS:
        return 1
    return int(getattr(image, "n_frames", 1) or 1)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block is no orientation, not a broken image
        return 1


def to_8bit(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit ``L`` (grey) or ``RGB``: 16-bit grey scaled (65535 -> 255, not clipped to white),
    palette images through their palette (transparency included), alpha dropped, CMYK/YCbCr/LAB to RGB."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode.startswith("I"):  # I;16 / I;16B / I (16-bit PNG and TIFF grey): the full 16-bit range
        values = np.asarray(image, dtype=np.float64)
        scaled = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("1", "LA", "F"):
        return image.convert("L")
    return image.convert("RGB")


def decode(
    source: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    multi_frame: str = MULTI_FRAME_FIRST,
    at_least: int | None = None,
) -> Image.Image:
    """The picture as a person sees it: the first frame, rotated upright by its EXIF orientation, as 8-bit
    ``L`` or ``RGB`` (:func:`to_8bit`). ``source`` is encoded bytes or a path.

    ``multi_frame="refuse"`` raises for a file of several frames; the default uses the first frame (the
    ingest gate already refused such files unless the project chose ``first_frame``). ``at_least``: the
    caller resizes to this side anyway, so a JPEG may be decoded at the smallest DCT scale (1/2, 1/4, 1/8)
    that keeps both sides at least that large (Pillow's ``draft``: several times faster on photos).
    Raises :class:`ImageDecodeError` (an ``OSError`` and a ``ValueError``) with the reason.
    """
    with _opened(source, max_pixels) as image:
        frames = frame_count(image)
        if frames > 1 and multi_frame != MULTI_FRAME_FIRST:
            raise ImageDecodeError(MULTI_FRAME, _multi_frame_detail(image, frames))
        if at_least is not None and image.format in ("JPEG", "MPO"):
            image.draft(image.mode, (at_least, at_least))
        image.seek(0)
        image.load()  # a decoder error here becomes CORRUPT in _opened
        upright = ImageOps.exif_transpose(image) if _orientation(image) != 1 else image
        shown = to_8bit(upright)
        return shown.copy() if shown is image else shown  # the opened image is closed on return


def _multi_frame_detail(image: Image.Image, frames: int) -> str:
    return (
        f"{image.format or 'image'} file with {frames} frames (animated or multi-page): refused by "
        f"multi_frame={MULTI_FRAME_REFUSE}; set multi_frame={MULTI_FRAME_FIRST} to label its first frame"
    )


def verify_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, multi_frame: str = MULTI_FRAME_REFUSE
) -> ImageInfo | DecodeFailure:
    """Fully decode the first frame of ``data`` and say what it is, or why it cannot be used.

    The header is checked against ``max_pixels`` before any pixel is decoded, so a decompression bomb
    costs nothing; then the whole first frame is decoded (``Image.verify`` alone misses truncated pixel
    data). A file of several frames is refused unless ``multi_frame="first_frame"``. Width and height
    are the picture's as shown, after its EXIF orientation.
    """
    if multi_frame not in MULTI_FRAME_POLICIES:
        raise ValueError(f"multi_frame={multi_frame!r}: expected one of {', '.join(MULTI_FRAME_POLICIES)}")
    try:
        with _opened(data, max_pixels) as image:
            frames = frame_count(image)
            if frames > 1 and multi_frame == MULTI_FRAME_REFUSE:
                return DecodeFailure(MULTI_FRAME, _multi_frame_detail(image, frames))
            fmt, mode = image.format or "unknown", image.mode
            width, height = image.size
            if _orientation(image) in _QUARTER_TURNS:
                width, height = height, width
            image.seek(0)
            image.load()
    except ImageDecodeError as exc:
        return DecodeFailure(exc.reason, str(exc))
    return ImageInfo(width=width, height=height, mode=mode, format=fmt)


def thumbnail_png(data: bytes, *, size: int = 64) -> bytes:
    """A small PNG of an image as shown (:func:`decode`); nearest-neighbour keeps tiny scans crisp."""
    img = decode(data)
    scale = size / max(img.size)
    new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    thumb = img.resize(new_size, Image.Resampling.NEAREST)
    out = io.BytesIO()
    thumb.save(out, format="PNG")
    return out.getvalue()


def markdown_image(png: bytes, alt: str = "") -> str:
    """An inline Markdown image (Dagster renders data URIs in Markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def text_png(lines: Sequence[str], *, size: int = 224) -> bytes:
    """A grey square PNG with a few lines of text: a placeholder where an image is expected."""
    picture = Image.new("RGB", (size, size), "#eeeeee")
    draw = ImageDraw.Draw(picture)
    for n, line in enumerate(lines):
        draw.text((12, size // 3 + 16 * n), line, fill="#444444")
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
