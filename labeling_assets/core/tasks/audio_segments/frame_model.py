"""The frame classifier of the ``audio_segments`` kind and how its per-frame probabilities become regions.
Provides no kind method: :mod:`.trainer` fits and runs it, :mod:`.prelabels` and :mod:`.evaluation` read its output.

The model: a stack of 1-d convolutions over the log-mel frames (:mod:`.features`), dilated 1, 2, 4, 8, 16 with
residual connections, so each frame's decision sees about 1.25 s around it (language shows over syllables, not
in one 10 ms frame); per frame it gives logits over ``none`` (index 0: no region) and the project's classes.

Decoding: the probabilities are averaged over a short window (``smooth_frames``), each frame takes its most
probable code, and runs become regions (``regions.from_frames``); a run shorter than ``min_region_s`` is given to
its longer neighbour (so a short false region does not split a true one), and a region's score is the mean
probability of its label over its frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from labeling_assets.core.speech.regions import HOP, NONE, Region, from_frames

DILATIONS = (1, 2, 4, 8, 16)
KERNEL = 5


def build_model(n_features: int, n_classes: int, hidden: int = 64, dropout: float = 0.1) -> Any:
    """The classifier for ``n_classes`` project classes (``n_classes + 1`` outputs: ``none`` first)."""
    import torch
    from torch import nn

    class DilatedConv(nn.Module):
        """A dilated 1-d convolution as ``KERNEL`` shifted copies of the input stacked on channels and one 1x1
        convolution: the same function, but torch's CPU kernel for a dilated convolution is hundreds of times
        slower than a matrix product."""

        def __init__(self, dilation: int) -> None:
            super().__init__()
            self.dilation = dilation
            self.mix = nn.Conv1d(hidden * KERNEL, hidden, 1)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            reach = self.dilation * (KERNEL // 2)
            padded = nn.functional.pad(h, (reach, reach))
            frames = h.shape[-1]
            taps = [padded[..., j * self.dilation : j * self.dilation + frames] for j in range(KERNEL)]
            mixed: torch.Tensor = self.mix(torch.cat(taps, dim=1))
            return mixed

    class FrameClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Conv1d(n_features, hidden, 1)
            self.blocks = nn.ModuleList(DilatedConv(d) for d in DILATIONS)
            self.norms = nn.ModuleList(nn.GroupNorm(1, hidden) for _ in DILATIONS)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Conv1d(hidden, n_classes + 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, frames, features) -> (batch, frames, codes)
            h = self.inp(x.transpose(1, 2))
            for conv, norm in zip(self.blocks, self.norms, strict=True):
                h = h + self.drop(torch.relu(norm(conv(h))))
            logits: torch.Tensor = self.out(h).transpose(1, 2)
            return logits

    return FrameClassifier()


def frame_targets(regions: Sequence[Region], classes: Sequence[str], frames: int, hop: float = HOP) -> npt.NDArray[np.int64]:
    """The model's target per frame: 0 for none, ``1 + k`` for ``classes[k]`` (the last region over a frame's
    centre wins, as ``regions.to_frames`` has it); a region of a label not in ``classes`` counts as none."""
    index = {str(c): k + 1 for k, c in enumerate(classes)}
    centres = (np.arange(frames) + 0.5) * hop
    out = np.zeros(frames, dtype=np.int64)
    for r in regions:
        if r.label in index:
            out[(centres >= r.start) & (centres < r.end)] = index[r.label]
    return out


def smooth(probs: npt.NDArray[np.float32], frames: int) -> npt.NDArray[np.float32]:
    """Each frame's probabilities averaged over the ``frames`` frames centred on it (edges: over what exists)."""
    if frames <= 1 or probs.shape[0] == 0:
        return probs
    kernel = np.ones(frames) / frames
    ones = np.convolve(np.ones(probs.shape[0]), kernel, mode="same")
    return np.stack([np.convolve(probs[:, k], kernel, mode="same") / ones for k in range(probs.shape[1])],
                    axis=1).astype(np.float32)  # fmt: skip


def _absorb_short_runs(codes: npt.NDArray[np.int64], min_frames: int) -> npt.NDArray[np.int64]:
    """Runs shorter than ``min_frames`` relabelled as their longer neighbour, shortest first, until none is left
    (or one run is all there is)."""
    codes = codes.copy()
    while True:
        change = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [codes.size]])
        lengths = ends - starts
        if len(starts) < 2 or lengths.min() >= min_frames:
            return codes
        k = int(np.argmin(lengths))
        left = lengths[k - 1] if k > 0 else -1
        right = lengths[k + 1] if k + 1 < len(starts) else -1
        codes[starts[k] : ends[k]] = codes[starts[k - 1]] if left >= right else codes[starts[k + 1]]


def decode(
    probs: npt.NDArray[np.float32], classes: Sequence[str], *, hop: float = HOP, smooth_frames: int = 9,
    min_region_s: float = 0.1,
) -> list[dict[str, Any]]:
    """Per-frame probabilities (frames x (1 + classes), ``none`` first) as regions ``{start, end, label, score}``
    in seconds, sorted by start (module docstring)."""
    if probs.shape[0] == 0:
        return []
    smoothed = smooth(np.asarray(probs, dtype=np.float32), smooth_frames)
    codes = _absorb_short_runs(smoothed.argmax(axis=1).astype(np.int64), max(int(round(min_region_s / hop)), 1))
    found = from_frames(np.where(codes == 0, NONE, codes - 1), [str(c) for c in classes], hop)
    out = []
    for r in found:
        first, last = int(round(r.start / hop)), int(round(r.end / hop))
        score = float(np.mean(probs[first:last, 1 + list(classes).index(r.label)]))
        out.append({"start": round(r.start, 3), "end": round(r.end, 3), "label": r.label, "score": round(score, 4)})
    return out


def frame_entropy(probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Each frame's entropy over its codes, divided by its maximum (log of the number of codes): 0 sure, 1 lost."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    entropy: npt.NDArray[np.float64] = -(p * np.log(p)).sum(axis=1) / np.log(max(p.shape[1], 2))
    return entropy
