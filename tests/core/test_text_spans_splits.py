"""Span datasets split train/val/test stratified on entity-type presence (issue 31): every type, and the texts
without any entity, in every split in about the dataset's proportion; frozen splits and groups kept."""

import numpy as np
import pytest

from labeling_assets.core.tasks.text_spans.demo import ENTITY_TYPES, sentences
from labeling_assets.core.tasks.text_spans.spans import Span
from labeling_assets.core.tasks.text_spans.splits import assign_span_splits, types_present

TYPES = list(ENTITY_TYPES)


@pytest.fixture(scope="module")
def labels() -> dict[str, tuple[Span, ...]]:
    data = sentences(600, seed=21)
    # a rare type: a tenth of the person entities are renamed "TITLE"; only some texts carry one
    out = {}
    for n, s in enumerate(data):
        out[s.item_id] = tuple(Span(e.start, e.end, "TITLE") if e.label == "PER" and n % 10 == 0 else e
                               for e in s.entities)  # fmt: skip
    return out


def test_the_key_is_the_set_of_types_an_item_holds() -> None:
    assert types_present((Span(0, 3, "PER"), Span(5, 9, "PER"), Span(10, 12, "LOC"))) == ["LOC", "PER"]
    assert types_present(()) == []


def test_every_type_and_the_texts_without_entities_are_in_every_split_in_proportion(labels: dict) -> None:
    types = [*TYPES, "TITLE"]
    frame = assign_span_splits(labels, types).frame
    assert sorted(frame["item_id"]) == sorted(labels) and set(frame["split"]) == {"train", "val", "test"}
    keys = {"": lambda key: not key, **{t: (lambda key, t=t: t in key) for t in types}}
    for name, has in keys.items():
        carrying = frame[[has(k) for k in frame["label"]]]
        assert len(carrying) >= 20, name
        for split, target in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
            share = float(np.mean(carrying["split"] == split))
            assert abs(share - target) < 0.05, (name, split, share)


def test_frozen_splits_stay(labels: dict) -> None:
    first = assign_span_splits(dict(list(labels.items())[:300]), TYPES + ["TITLE"]).frame
    frozen = dict(zip(first["item_id"], first["split"], strict=True))
    frame = assign_span_splits(labels, TYPES + ["TITLE"], existing=frozen, seed=3).frame.set_index("item_id")
    assert all(frame.loc[item, "split"] == split for item, split in frozen.items())
    assert int(frame["is_new"].sum()) == len(labels) - 300


def test_a_groups_texts_share_a_split(labels: dict) -> None:
    groups = {item: f"doc{n // 4}" for n, item in enumerate(sorted(labels))}  # four sentences per document
    frame = assign_span_splits(labels, TYPES + ["TITLE"], groups=groups).frame
    assert frame.groupby("group_key")["split"].nunique().max() == 1
    assert set(frame["split"]) == {"train", "val", "test"}


def test_the_same_labels_and_seed_give_the_same_splits(labels: dict) -> None:
    a = assign_span_splits(labels, TYPES + ["TITLE"], seed=5).frame
    b = assign_span_splits(dict(reversed(list(labels.items()))), TYPES + ["TITLE"], seed=5).frame
    assert a["split"].tolist() == b["split"].tolist()


def test_an_entity_type_named_like_the_empty_set_is_refused() -> None:
    with pytest.raises(ValueError, match="empty set"):
        assign_span_splits({}, ["PER", "None of these"])
