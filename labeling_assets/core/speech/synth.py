"""Code-switched demo utterances synthesised with Debian's ``espeak-ng``: nothing is downloaded.

An utterance strings together English and Vietnamese phrases from a small built-in list, with short pauses and
now and then a gap of noise, so its truth is known by construction: the language regions (each phrase's
voiced span, silence trimmed), the transcript and an English translation (a Vietnamese phrase's gloss).
Each phrase is synthesised once per process (and once per ``cache_dir`` on disk when given).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from labeling_assets.core.speech.regions import Region

LABELS = ("en", "vi", "noise")
ESPEAK = "espeak-ng"
# (text, English gloss); the English phrases are their own gloss.
PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": tuple(
        (p, p)
        for p in (
            "the meeting starts at nine",
            "please send me the report",
            "i think that is fine",
            "we need more data",
            "can you check the budget",
            "the deadline is next week",
            "thank you very much",
            "let me call you back",
        )
    ),
    "vi": (
        ("xin chào các bạn", "hello everyone"),
        ("tôi không biết", "i do not know"),
        ("hôm nay trời đẹp", "the weather is nice today"),
        ("chúng ta đi ăn trưa", "let us go to lunch"),
        ("cảm ơn anh nhiều", "thank you very much"),
        ("em đang làm việc", "i am working"),
        ("bao nhiêu tiền", "how much money"),
        ("hẹn gặp lại", "see you again"),
    ),
}
SILENCE = 0.01  # amplitude under which a clip's leading and trailing samples are trimmed


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Utterance:
    audio: npt.NDArray[np.float32]
    sample_rate: int
    regions: tuple[Region, ...]  # the truth, in time order
    transcript: str
    translation: str

    @property
    def duration(self) -> float:
        return self.audio.size / self.sample_rate


# espeak-ng's WAV bytes and the trimmed clip, per (language, text), for this process: a phrase is spoken once per
# process, and its WAV is still written to every cache_dir that lacks it (a test that asks for a cache gets one,
# whatever ran before it in the same process).
_WAVS: dict[tuple[str, str], bytes] = {}
_CLIPS: dict[tuple[str, str], tuple[npt.NDArray[np.float32], int]] = {}


def synthesize(text: str, lang: str, cache_dir: Path | None = None) -> tuple[npt.NDArray[np.float32], int]:
    """``text`` spoken in ``lang`` (``en`` or ``vi``), silence trimmed: (samples in [-1, 1], sample rate)."""
    key = (lang, text)
    name = hashlib.sha1(f"{lang}\n{text}".encode()).hexdigest()[:16] + ".wav"
    cached = cache_dir / name if cache_dir else None
    data = _WAVS.get(key)
    if data is None and cached is not None and cached.exists():
        data = cached.read_bytes()
    if data is None:
        if shutil.which(ESPEAK) is None:
            raise SynthesisError(f"{ESPEAK} is not installed (Debian: apt-get install espeak-ng)")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / name
            done = subprocess.run([ESPEAK, "-v", lang, "-w", str(out), text], capture_output=True, text=True)
            if done.returncode != 0:
                raise SynthesisError(f"{ESPEAK} -v {lang} failed: {done.stderr.strip()[:200]}")
            data = out.read_bytes()
    _WAVS[key] = data
    if cached is not None and not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
    if key not in _CLIPS:
        audio, rate = read_wav(io.BytesIO(data))
        loud = np.flatnonzero(np.abs(audio) > SILENCE)
        _CLIPS[key] = (audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0], rate)
    return _CLIPS[key]


def read_wav(path: Path | io.BytesIO) -> tuple[npt.NDArray[np.float32], int]:
    """A 16-bit PCM WAV (a file, or its bytes) as mono float32 in [-1, 1] (channels averaged)."""
    with wave.open(str(path) if isinstance(path, Path) else path, "rb") as f:
        if f.getsampwidth() != 2:
            what = path.name if isinstance(path, Path) else "WAV"
            raise SynthesisError(f"{what}: {8 * f.getsampwidth()}-bit samples, expected 16-bit PCM")
        raw = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        rate, channels = f.getframerate(), f.getnchannels()
    samples = raw.reshape(-1, channels).mean(axis=1) / 32768.0
    return samples.astype(np.float32), rate


def write_wav(path: Path, audio: npt.NDArray[np.float32], sample_rate: int) -> None:
    """Mono 16-bit PCM (clipped to [-1, 1])."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())


def make_utterance(
    rng: np.random.Generator, n_phrases: int = 4, noise_rate: float = 0.25, cache_dir: Path | None = None
) -> Utterance:
    """Phrases alternating language (a switch after each phrase with probability 0.7), 0.15-0.4 s pauses, and
    after a phrase a 0.3-0.8 s gap of noise (labelled ``noise``) with probability ``noise_rate``."""
    lang = str(rng.choice(["en", "vi"]))
    pieces: list[npt.NDArray[np.float32]] = []
    regions: list[Region] = []
    words: list[str] = []
    gloss: list[str] = []
    rate = 0
    t = 0.0

    def pause(seconds: float) -> None:
        nonlocal t
        pieces.append(np.zeros(int(seconds * rate), dtype=np.float32))
        t += int(seconds * rate) / rate

    for k in range(n_phrases):
        text, english = PHRASES[lang][int(rng.integers(len(PHRASES[lang])))]
        clip, rate = synthesize(text, lang, cache_dir)
        pause(float(rng.uniform(0.15, 0.4)))
        pieces.append(clip)
        regions.append(Region(round(t, 4), round(t + clip.size / rate, 4), lang))
        t += clip.size / rate
        words.append(text)
        gloss.append(english)
        if rng.random() < noise_rate and k < n_phrases - 1:
            pause(float(rng.uniform(0.15, 0.3)))
            n = int(float(rng.uniform(0.3, 0.8)) * rate)
            pieces.append((rng.normal(0, 0.05, n)).astype(np.float32))
            regions.append(Region(round(t, 4), round(t + n / rate, 4), "noise"))
            t += n / rate
        if rng.random() < 0.7:
            lang = "vi" if lang == "en" else "en"
    pause(0.2)
    return Utterance(np.concatenate(pieces), rate, tuple(regions), " ".join(words), " ".join(gloss))
