"""RTTM, the NIST Rich Transcription Time Marked format pyannote and the diarization tools read, for regions.

One line per region, ten fields separated by whitespace::

    SPEAKER <file-id> <channel> <onset> <duration> <NA> <NA> <name> <NA> <NA>

``name`` (the speaker field) holds the region's label (``vi``, ``en``, ``noise``); the channel is 1; onset and
duration are seconds. The parser reads ``SPEAKER`` lines only (other types of the full NIST format, such as
``SPKR-INFO`` or ``LEXEME``, are skipped), skips blank lines and ``;;`` comments, and refuses anything else with
one line saying where and why: a line without ten fields, an onset or duration that is not a number, a negative
onset, a duration that is not positive.

pyannote's own reader (``pyannote.database.util.load_rttm``, pandas underneath) reads what ``write_rttm`` writes
to the same regions (tested). It reads a file id or label that pandas takes for a missing value (``NA``, ``None``,
``null``, ``nan``...) as NaN, so the writer refuses those names. Where the two readers part on other input: it
reads a ``;;`` comment's second word as a file id with no region, and fails on a comment of four words or more
(its fourth word is read as the onset); this parser skips comments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from labeling_assets.core.speech.regions import Region

FIELDS = 10
# pandas' default missing-value strings: pyannote's RTTM reader turns a field holding one of them into NaN
MISSING = frozenset(
    [
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
)


class RttmError(ValueError):
    pass


def write_rttm(regions: Mapping[str, Sequence[Region]]) -> str:
    """Regions per file id as RTTM (files and regions in order); an id or label holding whitespace, or one that
    pyannote's reader takes for a missing value, is refused."""
    lines = []
    for file_id, items in regions.items():
        for r in sorted(items, key=lambda r: (r.start, r.end)):
            for what, value in (("file id", file_id), ("label", r.label)):
                if not value or any(c.isspace() for c in value):
                    raise RttmError(
                        f"{what} {value!r} is empty or holds whitespace: RTTM fields are split on it"
                    )
                if value in MISSING:
                    raise RttmError(f"{what} {value!r} reads as a missing value in pyannote's RTTM reader")
            if r.end <= r.start:
                raise RttmError(f"{file_id}: region {r} has no positive duration")
            lines.append(
                f"SPEAKER {file_id} 1 {r.start:.3f} {r.end - r.start:.3f} <NA> <NA> {r.label} <NA> <NA>"
            )
    return "".join(line + "\n" for line in lines)


def parse_rttm(text: str) -> dict[str, list[Region]]:
    """Regions per file id, in file order; a malformed line raises ``RttmError`` naming its line number."""
    out: dict[str, list[Region]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith(";;"):
            continue
        if len(fields) != FIELDS:
            raise RttmError(
                f"RTTM line {number}: expected {FIELDS} fields, got {len(fields)}: {line.strip()[:80]!r}"
            )
        if fields[0] != "SPEAKER":
            continue
        try:
            onset, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise RttmError(
                f"RTTM line {number}: onset {fields[3]!r} or duration {fields[4]!r} is not a number"
            ) from None
        if not (math.isfinite(onset) and math.isfinite(duration)) or onset < 0 or duration <= 0:
            raise RttmError(f"RTTM line {number}: onset {onset} must be >= 0 and duration {duration} > 0")
        out.setdefault(fields[1], []).append(Region(onset, round(onset + duration, 6), fields[7]))
    return out
