"""RTTM: what the writer writes, the parser reads back, and a malformed line is one clear error."""

import pytest

from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.rttm import RttmError, parse_rttm, write_rttm

SAMPLE = """\
;; written by hand, as pyannote writes it
SPEAKER utt_001 1 0.390 1.100 <NA> <NA> en <NA> <NA>
SPEAKER utt_001 1 2.431 0.620 <NA> <NA> vi <NA> <NA>
SPKR-INFO utt_001 1 <NA> <NA> <NA> unknown vi <NA> <NA>

SPEAKER utt_002 1 0 2.5 <NA> <NA> noise <NA> <NA>
"""


def test_a_hand_written_sample_is_read() -> None:
    assert parse_rttm(SAMPLE) == {
        "utt_001": [Region(0.39, 1.49, "en"), Region(2.431, 3.051, "vi")],
        "utt_002": [Region(0.0, 2.5, "noise")],
    }


def test_what_is_written_reads_back() -> None:
    regions = {"a": [Region(1.5, 2.25, "vi"), Region(0.25, 1.0, "en")], "b": [Region(0.0, 0.5, "noise")]}
    text = write_rttm(regions)
    assert text.splitlines()[0] == "SPEAKER a 1 0.250 0.750 <NA> <NA> en <NA> <NA>"
    assert parse_rttm(text) == {"a": sorted(regions["a"], key=lambda r: r.start), "b": regions["b"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("SPEAKER utt 1 0.5 1.0 <NA> <NA> en <NA>", "RTTM line 2: expected 10 fields, got 9"),
        (
            "SPEAKER utt 1 0.5 long <NA> <NA> en <NA> <NA>",
            "RTTM line 2: onset '0.5' or duration 'long' is not a number",
        ),
        ("SPEAKER utt 1 -0.5 1.0 <NA> <NA> en <NA> <NA>", "RTTM line 2: onset -0.5 must be >= 0"),
        (
            "SPEAKER utt 1 0.5 0 <NA> <NA> en <NA> <NA>",
            "RTTM line 2: onset 0.5 must be >= 0 and duration 0.0 > 0",
        ),
    ],
)
def test_a_malformed_line_is_one_clear_error(line: str, message: str) -> None:
    with pytest.raises(RttmError) as error:
        parse_rttm("SPEAKER ok 1 0 1 <NA> <NA> en <NA> <NA>\n" + line + "\n")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_writer_refuses_what_rttm_cannot_hold() -> None:
    with pytest.raises(RttmError, match="whitespace"):
        write_rttm({"my file": [Region(0, 1, "en")]})
    with pytest.raises(RttmError, match="no positive duration"):
        write_rttm({"f": [Region(1, 1, "en")]})
