"""RTTM: what the writer writes, the parser and pyannote's reader read back, and a malformed line is one clear
error."""

from pathlib import Path

import numpy as np
import pytest
from pyannote.database.util import load_rttm

from labeling_assets.core.speech.pyannote_eval import from_annotation
from labeling_assets.core.speech.regions import Region
from labeling_assets.core.speech.rttm import RttmError, parse_rttm, write_rttm

LABELS = ("en", "vi", "noise")

SAMPLE = """\
;; written by hand
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


# pyannote's own RTTM reader (pyannote.database.util.load_rttm) reads our files and agrees with our parser.


def _pyannote(text: str, tmp_path: Path) -> dict[str, list[Region]]:
    path = tmp_path / "regions.rttm"
    path.write_text(text)
    return {uri: from_annotation(a) for uri, a in load_rttm(str(path)).items()}


def test_pyannote_reads_what_we_write(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    regions: dict[str, list[Region]] = {}
    for file_id in ("utt_001", "007", "b"):  # "007" stays a string, not the number 7
        starts = np.sort(rng.uniform(0, 20, 6))
        regions[file_id] = [
            Region(round(float(s), 3), round(float(s + rng.uniform(0.1, 2)), 3), str(rng.choice(LABELS)))
            for s in starts
        ]
    text = write_rttm(regions)
    theirs = _pyannote(text, tmp_path)
    ours = parse_rttm(text)
    assert set(theirs) == set(ours) == set(regions)
    for file_id, expected in regions.items():
        by_start = sorted(expected, key=lambda r: (r.start, r.end))
        assert ours[file_id] == by_start
        assert [(round(r.start, 6), round(r.end, 6), r.label) for r in theirs[file_id]] == [
            (r.start, r.end, r.label) for r in by_start
        ]


ODD = (
    ";; odd spacing\n"  # tabs, runs of spaces, leading and trailing blanks, an exponent, other line types
    "SPEAKER\tutt_a\t1\t0.25\t1.5\t<NA>\t<NA>\ten\t<NA>\t<NA>\n"
    "   SPEAKER utt_a 1    2.000 0.5 <NA> <NA> vi <NA> <NA>   \n"
    "\n"
    "SPKR-INFO utt_a 1 <NA> <NA> <NA> unknown vi <NA> <NA>\n"
    "SPEAKER utt_a 1 3 5e-1 <NA> <NA> noise <NA> <NA>\n"
    "SPEAKER 42 1 0.000 2.25 <NA> <NA> en <NA> <NA>\n"
)


def test_odd_but_valid_rttm_reads_the_same_in_both_readers(tmp_path: Path) -> None:
    ours = parse_rttm(ODD)
    assert ours == {
        "utt_a": [Region(0.25, 1.75, "en"), Region(2.0, 2.5, "vi"), Region(3.0, 3.5, "noise")],
        "42": [Region(0.0, 2.25, "en")],
    }
    theirs = _pyannote(ODD, tmp_path)
    # pyannote also yields an empty annotation for the comment's second word ("odd"): no regions there
    assert {uri: regions for uri, regions in theirs.items() if regions} == ours
    assert theirs["odd"] == []


@pytest.mark.parametrize("comment", [";; written by hand", ";; a comment of more than ten words fails too"])
def test_where_the_readers_part_a_comment_of_four_words_or_more(comment: str, tmp_path: Path) -> None:
    # pandas splits a comment into the ten fields: its fourth word is the onset, which must be a number
    text = comment + "\n" + ODD
    assert parse_rttm(text) == parse_rttm(ODD)  # ours skips every ;; line
    with pytest.raises(ValueError):
        _pyannote(text, tmp_path)


@pytest.mark.parametrize("name", ["NA", "None", "null", "nan"])
def test_the_writer_refuses_names_pyannote_reads_as_missing(name: str, tmp_path: Path) -> None:
    line = f"SPEAKER f 1 0.000 1.000 <NA> <NA> {name} <NA> <NA>\n"
    assert _pyannote(line, tmp_path)["f"][0].label == "nan"  # the label would be lost
    with pytest.raises(RttmError, match="missing value"):
        write_rttm({"f": [Region(0, 1, name)]})
    with pytest.raises(RttmError, match="missing value"):
        write_rttm({name: [Region(0, 1, "en")]})
