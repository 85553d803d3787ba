"""Decode-verification and thumbnails for raw images (Pillow only)."""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

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

Image.init()  # register every format plugin now, not lazily on first open


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    format: str


@dataclass(frozen=True)
class DecodeFailure:
    reason: str
    detail: str


def sha256_hex(data: bytes) -> str:
    """The content hash that is an item's id."""
    return hashlib.sha256(data).hexdigest()


def verify_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo | DecodeFailure:
    """Fully decode ``data`` and say what it is, or why it cannot be used.

    The header is checked against ``max_pixels`` before any pixel is decoded, so a decompression bomb
    costs nothing; then the whole image is decoded (``Image.verify`` alone misses truncated pixel data).
    """
    if not data:
        return DecodeFailure(EMPTY_FILE, "file has 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    return DecodeFailure(
                        TOO_LARGE, f"{width}x{height} = {width * height} pixels > limit {max_pixels}"
                    )
                fmt = img.format or "unknown"
                mode = img.mode
                img.load()
                # Multi-frame formats: make sure every frame decodes, not only the first.
                for frame in range(1, getattr(img, "n_frames", 1)):
                    img.seek(frame)
                    img.load()
    except UnidentifiedImageError as exc:
        return DecodeFailure(NOT_AN_IMAGE, str(exc) or "unrecognised image format")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return DecodeFailure(TOO_LARGE, str(exc))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return DecodeFailure(CORRUPT, f"{type(exc).__name__}: {exc}")
    return ImageInfo(width=width, height=height, mode=mode, format=fmt)


def thumbnail_png(data: bytes, *, size: int = 64) -> bytes:
    """A small PNG of an image (nearest-neighbour keeps tiny scans crisp)."""
    with Image.open(io.BytesIO(data)) as opened:
        img = opened.convert("L" if opened.mode in {"1", "L", "I;16", "I"} else "RGB")
        scale = size / max(img.size)
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        thumb = img.resize(new_size, Image.Resampling.NEAREST)
        out = io.BytesIO()
        thumb.save(out, format="PNG")
        return out.getvalue()


def markdown_image(png: bytes, alt: str = "") -> str:
    """An inline Markdown image (Dagster renders data URIs in Markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
