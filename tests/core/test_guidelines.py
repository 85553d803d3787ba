"""Labeling guidelines: versions of the text, the version each answer was given under, the disagreement digest, and
agreement and gold accuracy per version in the QA report."""

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.core.labelstudio.guidelines import (
    GuidelinesFileError,
    instructions_html,
    publish_guidelines,
    read_guidelines,
)
from labeling_assets.core.reporting.disagreement_digest import digest_markdown, disagreement_digest
from labeling_assets.core.reporting.guideline_effect import per_guideline_version
from labeling_assets.core.reporting.qa_report import build_qa_report
from labeling_assets.core.store.guidelines import (
    current_answer_guidelines,
    guideline_versions,
    record_answer_guidelines,
    record_guideline_text,
    record_push,
    version_at,
    versions_in_force,
)
from labeling_assets.core.store.guidelines_schema import answer_guidelines_table
from labeling_assets.core.store.schema import LabelStore, annotations_table

T0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


# --- versions ----------------------------------------------------------------------------------------------


def test_a_new_version_only_when_the_text_changes(store: LabelStore) -> None:
    first, new = record_guideline_text(store, "# Digits\nWrite 7 with a bar.", "g.md")
    assert (first.version, new) == (1, True)
    same, new = record_guideline_text(store, "# Digits\nWrite 7 with a bar.", "g.md")
    assert (same.version, new) == (1, False)
    second, new = record_guideline_text(store, "# Digits\nA 7 may have no bar.", "g.md")
    assert (second.version, new) == (2, True)
    # Back to the first text: the labelers see a change, so it is a version of its own (same hash as version 1).
    third, new = record_guideline_text(store, "# Digits\nWrite 7 with a bar.", "g.md")
    assert (third.version, new, third.content_hash) == (3, True, first.content_hash)
    assert [v.text for v in guideline_versions(store)] == [first.text, second.text, first.text]


def test_each_stamp_is_under_the_version_pushed_last_before_it() -> None:
    in_force = [(1, _at(10)), (2, _at(20))]
    stamps = [_at(5), _at(10), _at(15), _at(20), _at(25), None, _at(10).replace(tzinfo=None)]
    assert version_at(stamps, in_force) == [None, 1, 1, 2, 2, None, 1]
    assert version_at([_at(99)], []) == [None]


def _annotation(row: dict[str, object]) -> dict[str, object]:
    base = {"version": 1, "item_id": "i", "labeler_id": "1", "label": "a", "lead_time_s": 1.0, "synced_at": T0,
            "supersedes": None, "deleted": False, "content_hash": "h", "created_at": _at(0)}  # fmt: skip
    return {**base, **row}


def test_each_answer_records_the_version_in_force_when_label_studio_last_saved_it(store: LabelStore) -> None:
    with store.begin() as conn:  # answers before any version: nothing to record yet
        conn.execute(sa.insert(annotations_table), [_annotation({"ls_annotation_id": 1, "updated_at": _at(5)})])
    assert record_answer_guidelines(store) == 0
    record_guideline_text(store, "v1", "g.md")
    record_push(store, 1, 7, _at(10))
    record_guideline_text(store, "v2", "g.md")
    record_push(store, 2, 7, _at(20))
    record_push(store, 2, 8, _at(40))  # a project made later: version 2 is still in force from minute 20
    assert versions_in_force(store) == [(1, _at(10)), (2, _at(20))]
    with store.begin() as conn:
        conn.execute(
            sa.insert(annotations_table),
            [
                _annotation({"ls_annotation_id": 2, "updated_at": _at(15)}),
                _annotation({"ls_annotation_id": 3, "updated_at": _at(25)}),
                _annotation({"ls_annotation_id": 4, "updated_at": None, "created_at": _at(12)}),
            ],
        )
    assert record_answer_guidelines(store) == 4
    assert record_answer_guidelines(store) == 0  # recorded once
    with store.begin() as conn:  # answer 2 edited under version 2: its new version row is dated by its edit
        conn.execute(
            sa.insert(annotations_table),
            [_annotation({"ls_annotation_id": 2, "version": 2, "label": "b", "updated_at": _at(30)})],
        )
    assert record_answer_guidelines(store) == 1
    assert current_answer_guidelines(store).to_dict() == {1: None, 2: 2, 3: 2, 4: 1}
    assert store.count(answer_guidelines_table) == 5  # the edited answer's first version keeps version 1


# --- Label Studio instructions -----------------------------------------------------------------------------


def test_markdown_becomes_html_that_shows_any_markup_as_text() -> None:
    text = (
        "# Digits\n\nA **seven** has `one` stroke:\n\n- bar\n- no bar\n\n"
        "<script>alert(1)</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    page = instructions_html(text, 4)
    assert "<h1>Digits</h1>" in page and "<strong>seven</strong>" in page and "<code>one</code>" in page
    assert "<li>bar</li>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img" not in page and 'href="javascript' not in page
    assert page.endswith("<p><em>Guidelines version 4</em></p>")


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "does not exist"), (b"  \n", "is empty"), (b"\xff\xfe bad", "is not UTF-8")],
)
def test_a_guidelines_file_that_cannot_be_used_is_one_line_naming_it(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    path = tmp_path / "guidelines.md"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(GuidelinesFileError, match=says) as error:
        read_guidelines(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


class _Projects:
    """Label Studio's project instructions in memory (the real server: tests/integration/test_guidelines.py)."""

    def __init__(self, ids: list[int]) -> None:
        self.shown = {i: ("", False) for i in ids}
        self.patches: list[int] = []
        self.clock = _at(0)

    def project_instructions(self, project_id: int) -> tuple[str, bool]:
        return self.shown[project_id]

    def set_project_instructions(self, project_id: int, instructions: str) -> dt.datetime:
        self.shown[project_id] = (instructions, True)
        self.patches.append(project_id)
        self.clock += dt.timedelta(minutes=1)
        return self.clock


def test_an_unchanged_file_is_pushed_once_and_a_changed_one_is_a_new_version(store: LabelStore, tmp_path: Path) -> None:
    path, projects = tmp_path / "g.md", _Projects([3, 4])
    path.write_text("# v1")
    first = publish_guidelines(store, projects, path, [3, 4])
    assert (first.guideline_version, first.new_version, first.pushed_to) == (1, True, [3, 4])
    again = publish_guidelines(store, projects, path, [3, 4])
    assert (again.guideline_version, again.new_version, again.pushed_to, again.already_shown) == (1, False, [], [3, 4])
    projects.shown[4] = ("edited by hand", True)  # someone changed a project's instructions: they come back
    assert publish_guidelines(store, projects, path, [3, 4]).pushed_to == [4]
    path.write_text("# v2")
    second = publish_guidelines(store, projects, path, [3, 4])
    assert (second.guideline_version, second.new_version, second.pushed_to) == (2, True, [3, 4])
    assert "<h1>v2</h1>" in projects.shown[3][0]
    assert versions_in_force(store) == [(1, _at(1)), (2, _at(4))]


# --- the disagreement digest -------------------------------------------------------------------------------


def _votes(rows: dict[str, list[object]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"item_id": item, "labeler_id": f"l{n}", "label": label} for item, labels in rows.items()
         for n, label in enumerate(labels)]  # fmt: skip
    )


def test_the_digest_groups_split_adjudicated_items_by_crowd_and_expert_answer() -> None:
    votes = _votes({
        "i1": ["a", "a", "b"],  # majority a, expert b: overruled
        "i2": ["a", "b", "b"],  # majority b = expert; the crowd's confusion was a
        "i3": ["a", "a", "a"],  # unanimous: the expert confirmed or overruled, but nobody split
        "i4": ["c", "b"],  # a tie, expert c
        "i5": ["a", "b"],  # split, no expert answer: not in the digest
    })  # fmt: skip
    expert = pd.Series({"i1": "b", "i2": "b", "i3": "b", "i4": "c"}, dtype=object)
    digest = disagreement_digest(votes, expert, uris={"i1": "/raw/1.png"})
    rows = digest.pairs[["crowd answer", "expert answer", "items", "crowd majority overruled"]].to_dict("records")
    assert rows == [
        {"crowd answer": "a", "expert answer": "b", "items": 2, "crowd majority overruled": 1},
        {"crowd answer": "b", "expert answer": "c", "items": 1, "crowd majority overruled": 0},
    ]
    assert digest.pairs.loc[0, "example items"] == [{"item_id": "i1", "uri": "/raw/1.png"}, {"item_id": "i2", "uri": None}]
    assert (digest.adjudicated, digest.split, digest.overruled) == (4, 3, 1)


def test_a_label_set_is_one_answer_in_the_digest_and_markup_in_class_names_stays_text() -> None:
    votes = _votes({"i1": [["a", "b"], ["a"], ["a"]], "i2": [[], ["<b>|x"]]})
    expert = pd.Series({"i1": ["a", "b"], "i2": []}, dtype=object)
    digest = disagreement_digest(votes, expert)
    pairs = set(zip(digest.pairs["crowd answer"], digest.pairs["expert answer"], strict=True))
    assert pairs == {("a", "a + b"), ("<b>|x", "(none)")}
    page = digest_markdown(digest, guideline_version=2)
    assert "&lt;b&gt;\\|x" in page and "<b>" not in page
    assert "guidelines version 2 in force" in page and page.count("\n|") == 4  # header, rule, two rows


# --- agreement and gold accuracy per version ---------------------------------------------------------------


def _two_versions() -> tuple[pd.DataFrame, pd.Series]:
    """Three labelers on 10 items under version 1 (labeler c disagrees) and 10 under version 2 (all agree)."""
    rows: list[dict[str, object]] = []
    for i in range(20):
        truth = str(i % 4)
        version = 1 if i < 10 else 2
        for labeler in "abc":
            label = str((i + 1) % 4) if version == 1 and labeler == "c" else truth
            rows.append({"ls_annotation_id": len(rows), "item_id": f"item{i}", "labeler_id": labeler, "label": label,
                         "lead_time_s": 3.0, "created_at": _at(i), "guideline_version": version})  # fmt: skip
    gold = pd.Series({f"item{i}": str(i % 4) for i in (0, 1, 10, 11)}, dtype=object)
    return pd.DataFrame(rows), gold


def test_agreement_and_gold_accuracy_are_measured_per_guideline_version() -> None:
    votes, gold = _two_versions()
    right = votes["label"] == gold.reindex(votes["item_id"]).to_numpy()
    table = per_guideline_version(
        votes, votes["guideline_version"], right[votes["item_id"].isin(gold.index)],
        lambda group: 1.0 if group["guideline_version"].iloc[0] == 2 else 0.25,
    )  # fmt: skip
    assert table[["guideline version", "answers", "gold answers", "gold accuracy", "agreement (κ)"]].values.tolist() == [
        ["1", 30, 6, "0.667", "0.250"],
        ["2", 30, 6, "1.000", "1.000"],
    ]


@pytest.mark.slow  # two reports with their charts drawn: about 5 s
def test_the_qa_report_shows_kappa_and_gold_accuracy_per_guideline_version() -> None:
    votes, gold = _two_versions()
    votes.loc[votes["item_id"] == "item19", "guideline_version"] = None  # answers before any version
    report = build_qa_report(votes, gold, pd.DataFrame(columns=["item_id", "label", "confidence"]))
    section = report.html.split('data-section="guideline_versions"')[1].split("</section>")[0]
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in section.split("<tr")[2:]]  # cells of each body row
    # guideline version, answers, labelers, agreement, gold answers, gold accuracy, 95% CI
    assert [(r[0], r[1], r[5]) for r in rows] == [("before any", "3", "n/a"), ("1", "30", "0.667"), ("2", "27", "1.000")]
    assert rows[2][3] == "1.000" and float(rows[1][3]) < 0.7
    assert report.summary["guideline_versions"] == 3
    # Without versions (no guidelines yet) the section is not there.
    no_consensus = pd.DataFrame(columns=["item_id", "label", "confidence"])
    plain = build_qa_report(votes.drop(columns="guideline_version"), gold, no_consensus)
    assert 'data-section="guideline_versions"' not in plain.html and plain.summary["guideline_versions"] == 0
