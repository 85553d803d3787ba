"""What a person reads of text we do not control (answers, class and file names): bounded, and escaped in markdown.

A labeler can answer with a megabyte string and name things with ``|``, backticks or HTML; the store keeps such
values whole, but where they reach Dagster metadata, a console or a report they go through these helpers: one
line, at most ``SHOWN_CHARS`` characters plus how long the value was, and (in markdown) no character that
ends a table cell, opens a code span, a link or an HTML tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

SHOWN_CHARS = 120  # of one value (an answer, a name) shown to a person
SHOWN_ITEMS = 20  # of one list (a label set) shown to a person

# What ends a table cell, opens a code span, a link, an image, an HTML tag or an entity, or starts emphasis
# inside a word. Not "_": CommonMark never opens emphasis inside a word, and labeler names are full of it.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])")
_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]+")


def clipped(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` on one line, cut at ``limit`` characters with its full length said (a cut is never silent)."""
    head = _LINE_BREAKS.sub(" ", text[: limit + 1])
    if len(text) <= limit:
        return head
    return f"{head[:limit]}… ({len(text):,} characters)"


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """Any stored value (a class name, a label set, an unreadable result) as one bounded line of text."""
    if isinstance(value, str):
        return clipped(value, limit)
    if isinstance(value, list | tuple):
        items = [shown(v, limit) for v in value[:SHOWN_ITEMS]]
        more = f", … {len(value) - SHOWN_ITEMS} more" if len(value) > SHOWN_ITEMS else ""
        return clipped(f"[{', '.join(items)}{more}]", limit * 2)
    return clipped(str(value), limit)  # str, not repr: numpy scalars read as numbers


def bounded_label(value: Any, limit: int = SHOWN_CHARS) -> Any:
    """A label with each class name bounded (a list stays a list): for tables and charts that group by label.

    Two names longer than ``limit`` that share their first ``limit`` characters and their length read as one;
    they are not class names of the project either way.
    """
    if isinstance(value, str):
        return clipped(value, limit) if len(value) > limit else value
    if isinstance(value, list | tuple):
        return [bounded_label(v, limit) for v in value]
    return value


def md_text(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as markdown text, e.g. a table cell: bounded, on one line, every markdown character escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", shown(value, limit))


def md_code(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as an inline code span that holds any text (backticks inside, a ``|`` in a table cell)."""
    text = shown(value, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    # GFM splits table cells on "|" before it reads code spans: "\|" is the one escape a code span honours.
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def md_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table of ``rows`` under ``columns``: the first column (names) left-aligned, the others (figures)
    right-aligned. Cells are shown as given: format the figures, and pass names through :func:`md_text`."""
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
