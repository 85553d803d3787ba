"""Log-mel features of an audio item, one row per 10 ms frame of ``core/speech/regions.py``, with numpy only
(librosa drags numba in; scipy's import alone costs seconds; nothing is downloaded). Provides no kind method:
:mod:`.trainer` reads audio and computes features through it.

Frame ``k`` covers ``[k * hop, (k + 1) * hop)`` (``regions.to_frames``); its analysis window (25 ms, Hann) is
centred on the frame's centre, the signal zero-padded at both ends, so row ``k`` of the features describes
exactly the frame whose label ``to_frames`` gives. 40 triangular mel bands (HTK scale) between 0 Hz and
``min(8 kHz, Nyquist)``, so items of different sample rates give comparable features; the log of their power,
normalised per utterance (each band to zero mean and unit variance: a recording's level and channel drop out).
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from labeling_assets.core.ingest.audio import read_audio
from labeling_assets.core.speech.regions import HOP, n_frames

WINDOW_S = 0.025
N_MELS = 40
F_MAX = 8000.0
LOG_FLOOR = 1e-10  # power under this (digital silence) reads as this: log stays finite
# What a file that is missing or does not decode raises (soundfile's errors are RuntimeErrors).
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError)

FloatArray = npt.NDArray[np.float32]


def read_item_audio(uri: str) -> tuple[FloatArray, int]:
    """An item's audio as float32 mono and its sample rate, by ``core.ingest.audio.read_audio`` (what every stage
    reads audio with); raises one of :data:`DECODE_ERRORS` for a file that is missing or not audio."""
    samples, rate = read_audio(uri)
    return np.asarray(samples, dtype=np.float32), int(rate)


def hz_to_mel(hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = N_MELS) -> npt.NDArray[np.float64]:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the mel scale up to min(8 kHz, Nyquist)."""
    top = min(F_MAX, sample_rate / 2.0)
    edges = mel_to_hz(np.linspace(0.0, float(hz_to_mel(top)), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / np.maximum(centre - lower, 1e-9)
    falling = (upper - bins[None, :]) / np.maximum(upper - centre, 1e-9)
    bank: npt.NDArray[np.float64] = np.maximum(0.0, np.minimum(rising, falling))
    return bank


def log_mel(
    samples: npt.ArrayLike, sample_rate: int, *, hop: float = HOP, window: float = WINDOW_S, n_mels: int = N_MELS,
    normalise: bool = True,
) -> FloatArray:
    """(n_frames, n_mels) float32: row ``k`` the log mel power of the window centred on frame ``k``'s centre,
    ``n_frames = regions.n_frames(duration, hop)``; per-utterance normalised unless ``normalise`` is False."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    audio = np.asarray(samples, dtype=np.float64).reshape(-1)
    frames = n_frames(audio.size / sample_rate, hop)
    if frames == 0:
        return np.zeros((0, n_mels), dtype=np.float32)
    width = max(int(round(window * sample_rate)), 2)
    n_fft = 1 << (width - 1).bit_length()
    starts = np.round((np.arange(frames) + 0.5) * hop * sample_rate - width / 2).astype(np.int64)
    pad = width + int(np.ceil(hop * sample_rate))
    padded = np.pad(audio, (pad, pad))
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(width) / width)  # periodic, as scipy's get_window("hann")
    chunks = padded[(starts + pad)[:, None] + np.arange(width)[None, :]] * hann
    power = np.abs(np.fft.rfft(chunks, n=n_fft, axis=1)) ** 2
    features = np.log(np.maximum(power @ mel_filterbank(sample_rate, n_fft, n_mels).T, LOG_FLOOR))
    if normalise:
        features = (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-5)
    out: FloatArray = features.astype(np.float32)
    return out
