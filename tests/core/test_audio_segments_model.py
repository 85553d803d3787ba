"""The audio_segments kind's model side: log-mel frames line up with the 10 ms region frames, probabilities decode
into regions, the frame classifier learns English from Vietnamese (espeak-ng) on held-out utterances, a checkpoint
predicts as the model did, and its output becomes a Label Studio pre-label and a test-split report."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from labeling_assets.core.speech.regions import n_frames
from labeling_assets.core.speech.synth import ESPEAK, make_utterance, write_wav
from labeling_assets.core.tasks.audio_segments import evaluation, prelabels
from labeling_assets.core.tasks.audio_segments.features import N_MELS, log_mel
from labeling_assets.core.tasks.audio_segments.frame_model import decode, frame_targets
from labeling_assets.core.tasks.audio_segments.trainer import TRAINER, regions_of
from labeling_assets.core.tasks.kind import KindTrainer, TrainerSettingsError

CLASSES = ["en", "vi", "noise"]
torch.set_num_threads(1)  # the CI machine is small and shared


def test_log_mel_gives_one_row_per_region_frame_centred_on_it() -> None:
    for rate in (16_000, 22_050):
        audio = np.zeros(int(1.234 * rate), dtype=np.float32)
        audio[int(0.30 * rate) : int(0.60 * rate)] = np.random.default_rng(0).normal(0, 0.1, int(0.30 * rate))
        features = log_mel(audio, rate, normalise=False)
        assert features.shape == (n_frames(1.234), N_MELS) == (124, 40)
        loud = features.mean(axis=1) > -10
        # frame k's 25 ms window is centred on (k + 0.5) * 10 ms: wholly inside the noise from frame 31 to 58,
        # wholly outside up to frame 28 and from frame 61
        assert loud[31:59].all() and not loud[:29].any() and not loud[61:].any()
    normalised = log_mel(audio, rate)
    assert np.allclose(normalised.mean(axis=0), 0, atol=1e-4) and np.allclose(normalised.std(axis=0), 1, atol=1e-3)
    assert log_mel(np.zeros(0, dtype=np.float32), 16_000).shape == (0, 40)


def test_probabilities_decode_into_smoothed_regions_with_scores() -> None:
    codes = np.array([0] * 20 + [1] * 50 + [2] * 3 + [1] * 30 + [0] * 15 + [3] * 40)  # a 30 ms "vi" blip in "en"
    probs = np.full((codes.size, 4), 0.05, dtype=np.float32)
    probs[np.arange(codes.size), codes] = 0.85
    found = decode(probs, CLASSES, smooth_frames=1, min_region_s=0.1)
    assert [(r["start"], r["end"], r["label"]) for r in found] == [(0.2, 1.03, "en"), (1.18, 1.58, "noise")]
    assert found[1]["score"] == pytest.approx(0.85) and found[0]["score"] < 0.85  # the blip's frames count against it
    targets = frame_targets(regions_of(found) or [], CLASSES, codes.size)
    assert (targets[:20] == 0).all() and (targets[20:103] == 1).all() and (targets[118:] == 3).all()
    assert decode(np.zeros((0, 4), dtype=np.float32), CLASSES) == []
    assert regions_of([{"start": 1, "end": 0.5, "label": "en"}]) is None and regions_of("[]") == []


def _rows(tmp_path: Path, seed: int, n: int, name: str) -> tuple[pd.DataFrame, list[float]]:
    rng = np.random.default_rng(seed)
    uris, labels, durations = [], [], []
    for k in range(n):
        u = make_utterance(rng, n_phrases=4, noise_rate=0.25, cache_dir=tmp_path / "phrases")
        path = tmp_path / f"{name}{k}.wav"
        write_wav(path, u.audio, u.sample_rate)
        uris.append(str(path))
        labels.append([{"start": r.start, "end": r.end, "label": r.label} for r in u.regions])
        durations.append(u.duration)
    return pd.DataFrame({"item_id": uris, "uri": uris, "label": labels}), durations


@pytest.mark.skipif(shutil.which(ESPEAK) is None, reason="espeak-ng is not installed")
def test_the_frame_classifier_tells_english_from_vietnamese_on_held_out_utterances(tmp_path: Path) -> None:
    assert isinstance(TRAINER, KindTrainer)
    train, _ = _rows(tmp_path, 1, 24, "train")
    test, _ = _rows(tmp_path, 2, 6, "test")
    settings = {"epochs": 10, "hidden": 16, "batch_size": 4, "crop_s": 3.0}
    fitted = TRAINER.fit(train, test.iloc[:0], CLASSES, settings)
    outputs, failed = TRAINER.predict(fitted, [*test["uri"], str(tmp_path / "missing.wav")])
    assert failed == [6] and outputs[6] is None
    right = total = 0
    for output, answer in zip(outputs, test["label"], strict=False):
        frames = n_frames(output["duration"])
        truth = frame_targets(regions_of(answer) or [], CLASSES, frames)
        found = frame_targets(regions_of(output["regions"]) or [], CLASSES, frames)
        speech = (truth == 1) | (truth == 2)  # English and Vietnamese frames: chance is about one half
        right, total = right + int((found[speech] == truth[speech]).sum()), total + int(speech.sum())
    assert right / total > 0.8
    TRAINER.save(fitted, tmp_path / "model.pt")
    loaded = TRAINER.load(tmp_path / "model.pt")
    assert loaded.classes == CLASSES and loaded.settings["hidden"] == 16
    assert TRAINER.predict(loaded, list(test["uri"]))[0] == outputs[:6]
    with pytest.raises(TrainerSettingsError, match="no setting layers"):
        TRAINER.fit(train, test, CLASSES, {"layers": 3})


def test_an_output_becomes_a_prelabel_a_queue_score_and_a_test_report() -> None:
    output = {"duration": 2.0, "regions": [{"start": 0.2, "end": 1.0, "label": "en", "score": 0.9},
                                           {"start": 1.1, "end": 1.8, "label": "vi", "score": 0.7}],
              "mean_probs": {"none": 0.3, "en": 0.4, "vi": 0.3, "noise": 0.0}, "mean_entropy": 0.25}  # fmt: skip
    shown = prelabels.prediction(output, "v3")
    assert shown["model_version"] == "v3" and shown["score"] == 0.75
    assert shown["result"][1] == {"id": "r1", "from_name": "label", "to_name": "audio", "type": "labels",
                                  "value": {"start": 1.1, "end": 1.8, "channel": 0, "labels": ["vi"]}, "score": 0.7}  # fmt: skip
    assert prelabels.prediction({**output, "regions": []}, None)["result"] == []
    assert prelabels.informativeness(output, "uncertainty") == 0.25
    assert prelabels.informativeness(None, "uncertainty") == prelabels.informativeness(output, "random") == 1.0
    assert prelabels.prediction_report([output, None], CLASSES, None)["predicted_regions"] == {"en": 1, "vi": 1, "noise": 0}
    assert prelabels.fit_baseline(None, CLASSES, 32)[0] is None
    truth = [{"start": 0.25, "end": 1.0, "label": "en"}, {"start": 1.1, "end": 1.5, "label": "en"}]
    answers = evaluation.encode_answers([truth, truth])
    assert evaluation.test_score([output, None], answers) == pytest.approx(1 / 3)  # 1 of 2 found, 1 of 4 true
    report = evaluation.test_report(answers, [output, None], [1], CLASSES, model="m")
    assert report.score_name == "test_segment_f1" == evaluation.SEGMENT_F1.name
    assert report.metrics["test_segment_f1"] == pytest.approx(0.5)  # the undecoded item left out
    assert report.metrics["test_boundary_error_s"] == pytest.approx(0.025)
    # frames: 0-0.2 none both; 0.2-0.25 en vs none; 1.0-1.1 none; 1.1-1.5 vi vs en; 1.5-1.8 vi vs none
    assert report.metrics["test_frame_accuracy"] == pytest.approx(1 - (5 + 40 + 30) / 200)
    # pyannote.metrics: the same 0.75 s wrong over the truth's 1.15 s of regions; 0.35 s of it is a region where
    # the truth has none; boundaries 0.2/1.0/1.1/1.8 against 0.25/1.0/1.1/1.5: three of four within 0.1 s
    assert report.metrics["test_identification_error_rate"] == pytest.approx(0.75 / 1.15)
    assert report.metrics["test_detection_error_rate"] == pytest.approx(0.35 / 1.15)
    assert report.metrics["test_boundary_f1_pyannote"] == pytest.approx(0.75)
    table = report.texts["evaluation/frame_confusion.md"]
    assert "| none | 50 | 5 | 30 | 0 |" in table and "| en | 0 | 75 | 40 | 0 |" in table
