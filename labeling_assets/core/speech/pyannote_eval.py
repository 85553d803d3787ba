"""Segment metrics of ``Region`` lists computed by ``pyannote.metrics``, the diarization field's reference toolkit.

These sit beside ``regions.py``'s own figures (segment F1 on IoU-matched regions, boundary error, frame accuracy)
so a reader can compare ours with the numbers the field reports. What each pyannote figure is, and where it
coincides with ours:

- ``identification_error_rate`` (``IdentificationErrorRate``, collar 0): (confusion + miss + false alarm seconds)
  / the truth's region seconds, labels compared as they are. Its numerator is the time whose label (or none) is
  wrong, the continuous form of ``regions.frame_accuracy``'s frame errors: on regions whose boundaries lie on the
  10 ms frame grid, ``error_seconds == (1 - frame_accuracy) * frames * hop``; off the grid they differ by at most
  half a frame per boundary. The denominators differ (the truth's region time against the whole item).
- ``detection_error_rate`` (``DetectionErrorRate``): the same with every label taken as one (any region vs none).
- ``purity`` / ``coverage`` (``SegmentationPurity`` / ``SegmentationCoverage``, tolerance 0): label-agnostic
  over- and under-segmentation; no counterpart in ours.
- ``boundary_precision`` / ``boundary_recall`` / ``boundary_f1`` (``SegmentationPrecision`` / ``Recall`` at
  ``tolerance`` seconds): the boundaries found within the tolerance of a true boundary, one to one, labels
  ignored. pyannote reads a segmentation as a partition (every segment's end but the last is a boundary), so each
  item is passed as the partition of ``[0, duration]`` at every region's start and end. This is not our segment
  F1 (whole regions matched on label and IoU >= 0.5) nor our boundary error (mean seconds over matched regions):
  a region found 0.2 s late on both sides is a match to ours (F1 1, boundary error 0.2 s) and two missed
  boundaries to pyannote at a 0.1 s tolerance. pyannote has no mean boundary error.

Every metric is pooled over items the way pyannote accumulates them (components summed, then the ratio).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.detection import DetectionErrorRate
from pyannote.metrics.identification import (
    IER_CONFUSION,
    IER_FALSE_ALARM,
    IER_MISS,
    IER_TOTAL,
    IdentificationErrorRate,
)
from pyannote.metrics.segmentation import (
    SegmentationCoverage,
    SegmentationPrecision,
    SegmentationPurity,
    SegmentationRecall,
)

from labeling_assets.core.speech.regions import Region

BOUNDARY_TOLERANCE = 0.1  # seconds: about twice the boundary error of a good labeler in the demo crowd


@dataclass(frozen=True)
class PyannoteScore:
    identification_error_rate: float
    detection_error_rate: float
    purity: float
    coverage: float
    boundary_precision: float
    boundary_recall: float
    boundary_f1: float
    error_seconds: float  # confusion + miss + false alarm, the numerator of the identification error rate
    reference_seconds: float  # the truth's region time, its denominator


def to_annotation(regions: Sequence[Region], uri: str = "item") -> Annotation:
    annotation = Annotation(uri=uri)
    for k, r in enumerate(regions):
        annotation[Segment(r.start, r.end), k] = r.label
    return annotation


def from_annotation(annotation: Annotation) -> list[Region]:
    """An annotation's tracks as regions, by start (pyannote's own order)."""
    return [
        Region(float(segment.start), float(segment.end), str(label))
        for segment, _, label in annotation.itertracks(yield_label=True)
    ]


def _partition(regions: Sequence[Region], duration: float) -> Timeline:
    cuts = sorted({0.0, duration, *(t for r in regions for t in (r.start, r.end) if 0 < t < duration)})
    return Timeline([Segment(a, b) for a, b in zip(cuts, cuts[1:], strict=False)])


def pyannote_score(
    found: Sequence[Sequence[Region]],
    truth: Sequence[Sequence[Region]],
    durations: Sequence[float],
    tolerance: float = BOUNDARY_TOLERANCE,
) -> PyannoteScore:
    """pyannote's figures for ``found`` against ``truth``, item by item (each evaluated on ``[0, duration]``),
    pooled over items."""
    ier = IdentificationErrorRate()
    der = DetectionErrorRate()
    purity, coverage = SegmentationPurity(tolerance=0.0), SegmentationCoverage(tolerance=0.0)
    precision = SegmentationPrecision(tolerance=tolerance)  # type: ignore[no-untyped-call]
    recall = SegmentationRecall(tolerance=tolerance)  # type: ignore[no-untyped-call]
    for k, (f, t, d) in enumerate(zip(found, truth, durations, strict=True)):
        hyp, ref = to_annotation(f, f"item{k}"), to_annotation(t, f"item{k}")
        uem = Timeline([Segment(0.0, d)])
        ier(ref, hyp, uem=uem)
        der(ref, hyp, uem=uem)
        # an item with no truth region: pyannote warns, the pooled value stands
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            purity(ref, hyp)
            coverage(ref, hyp)
        precision(_partition(t, d), _partition(f, d))
        recall(_partition(t, d), _partition(f, d))
    p, r = float(abs(precision)), float(abs(recall))
    acc = ier.accumulated_
    return PyannoteScore(
        identification_error_rate=float(abs(ier)) if acc[IER_TOTAL] else float("nan"),
        detection_error_rate=float(abs(der)) if der.accumulated_["total"] else float("nan"),
        purity=float(abs(purity)),
        coverage=float(abs(coverage)),
        boundary_precision=p,
        boundary_recall=r,
        boundary_f1=2 * p * r / (p + r) if p + r else 0.0,
        error_seconds=float(acc[IER_CONFUSION] + acc[IER_MISS] + acc[IER_FALSE_ALARM]),
        reference_seconds=float(acc[IER_TOTAL]),
    )
