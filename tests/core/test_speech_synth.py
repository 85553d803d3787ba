"""Demo audio: espeak-ng speaks the phrases, an utterance's truth lines up with its samples, WAV round-trips."""

from pathlib import Path

import numpy as np
import pytest

from labeling_assets.core.speech.synth import ESPEAK, make_utterance, read_wav, synthesize, write_wav

pytestmark = pytest.mark.skipif(
    __import__("shutil").which(ESPEAK) is None, reason="espeak-ng is not installed"
)


def test_a_synthesised_utterance_has_its_truth_where_its_sound_is(tmp_path: Path) -> None:
    u = make_utterance(np.random.default_rng(5), n_phrases=3, noise_rate=1.0, cache_dir=tmp_path / "cache")
    assert [r.label for r in u.regions].count("noise") == 2 and len(u.regions) == 5
    assert all(
        a.end < b.start for a, b in zip(u.regions, u.regions[1:], strict=False)
    )  # pauses between regions
    assert u.regions[-1].end < u.duration and len(u.transcript.split()) >= 6
    for r in u.regions:  # sound inside every region, silence in the pause before the first
        assert np.abs(u.audio[int(r.start * u.sample_rate) : int(r.end * u.sample_rate)]).max() > 0.05
    assert np.abs(u.audio[: int(u.regions[0].start * u.sample_rate)]).max() == 0
    write_wav(tmp_path / "u.wav", u.audio, u.sample_rate)
    audio, rate = read_wav(tmp_path / "u.wav")
    assert rate == u.sample_rate and audio.size == u.audio.size and np.abs(audio - u.audio).max() < 1e-4
    assert len(list((tmp_path / "cache").glob("*.wav"))) >= 1


def test_a_phrase_spoken_earlier_in_the_process_is_still_written_to_a_new_cache(tmp_path: Path) -> None:
    # the process keeps what espeak-ng said; a cache_dir that lacks the phrase still gets its WAV (the suite's
    # order once had an earlier test speak every phrase first, and this module's cache stayed empty)
    first = synthesize("hello world", "en")
    again = synthesize("hello world", "en", tmp_path / "cache")
    (wav,) = (tmp_path / "cache").glob("*.wav")
    assert read_wav(wav)[1] == first[1] and np.array_equal(again[0], first[0])
