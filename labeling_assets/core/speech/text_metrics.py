"""Word and character error rates (jiwer) and each labeler's WER against gold or the consensus, with an interval.

WER is errors over reference words pooled over items (not a mean of per-item rates); it can exceed 1, so it is
no proportion and its interval is a percentile bootstrap over items (seeded), not a binomial one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jiwer
import numpy as np
import numpy.typing as npt


def wer(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> float:
    """Pooled WER; an empty hypothesis is scored as all deletions."""
    errors, words = _counts(refs, hyps)
    return float(errors.sum() / max(words.sum(), 1))


def cer(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> float:
    pairs = [(" ".join(r), " ".join(h)) for r, h in zip(refs, hyps, strict=True) if r]
    if not pairs:
        return 0.0
    return float(jiwer.cer([r for r, _ in pairs], [h for _, h in pairs]))


def _counts(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    errors, words = [], []
    for r, h in zip(refs, hyps, strict=True):
        if not r:
            errors.append(len(h))  # insertions against nothing
            words.append(0)
            continue
        out = jiwer.process_words(" ".join(r), " ".join(h) if h else "")
        errors.append(out.substitutions + out.deletions + out.insertions)
        words.append(len(r))
    return np.asarray(errors, dtype=float), np.asarray(words, dtype=float)


@dataclass(frozen=True)
class LabelerWer:
    labeler: str
    items: int
    wer: float
    low: float  # 95% bootstrap interval
    high: float


def labeler_wer(
    items: Sequence[Mapping[str, Sequence[str]]],
    reference: Mapping[int, Sequence[str]],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, LabelerWer]:
    """Each labeler's pooled WER against ``reference`` (item index -> words: gold, or the consensus) on the items
    it answered that have one, with a 95% percentile bootstrap interval over those items."""
    rng = np.random.default_rng(seed)
    pairs: dict[str, tuple[list[Sequence[str]], list[Sequence[str]]]] = {}
    for k, answers in enumerate(items):
        if k not in reference:
            continue
        for name, words in answers.items():
            refs, hyps = pairs.setdefault(name, ([], []))
            refs.append(reference[k])
            hyps.append(words)
    out = {}
    for name, (refs, hyps) in sorted(pairs.items()):
        errs, counts = _counts(refs, hyps)
        draws = rng.integers(0, len(refs), size=(resamples, len(refs)))
        rates = errs[draws].sum(axis=1) / np.maximum(counts[draws].sum(axis=1), 1)
        low, high = np.percentile(rates, [2.5, 97.5])
        out[name] = LabelerWer(
            name, len(refs), float(errs.sum() / max(counts.sum(), 1)), float(low), float(high)
        )
    return out
