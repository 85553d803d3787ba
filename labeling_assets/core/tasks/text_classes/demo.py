"""Real categorised text for the text-classes demo: the quotations of Debian's ``fortunes`` package.

Each category is a file of ``/usr/share/games/fortunes`` (``computers``, ``food``, ...), its quotations separated
by lines holding only ``%``. The category a quotation is filed under is its class: the truth comes from the
package, not from us. Nothing is downloaded; the package is installed by ``scripts/demo`` when missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labeling_assets.core.ingest.text import normalize_text, text_item_id

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Five categories of about 150 or more short quotations each, whose words differ enough for a TF-IDF model.
CATEGORIES = ("computers", "food", "law", "love", "sports")
MAX_CHARS = 300  # a quotation a labeler reads at a glance; longer ones (dialogues, poems) are left out


class FortunesMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Quotation:
    item_id: str  # the id the ingest gives the text (SHA-256 of the normalised text)
    text: str  # normalised as the ingest stores it
    category: str


def read_category(path: Path) -> list[str]:
    """The quotations of one fortunes file, normalised, in file order (blank ones left out)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    quotes: list[str] = []
    lines: list[str] = []
    for line in raw.splitlines():
        if line.strip() == "%":
            quotes.append("\n".join(lines))
            lines = []
        else:
            lines.append(line.rstrip())
    quotes.append("\n".join(lines))
    return [normalize_text(q).strip() for q in quotes if q.strip()]


def fortune_quotations(
    n: int, *, folder: Path = FORTUNES_DIR, categories: Sequence[str] = CATEGORIES, seed: int = 0,
    max_chars: int = MAX_CHARS,
) -> list[Quotation]:  # fmt: skip
    """``n`` quotations drawn evenly from ``categories`` (seeded), each at most ``max_chars`` long; a text filed
    under two categories, or twice, is left out (its class would be ambiguous; the ingest keeps one item)."""
    missing = [c for c in categories if not (folder / c).is_file()]
    if missing:
        raise FortunesMissing(
            f"{folder} has no {', '.join(missing)}: install Debian's fortunes package (apt-get install fortunes; "
            "scripts/demo does it as root)"
        )
    by_category = {c: [q for q in read_category(folder / c) if len(q) <= max_chars] for c in categories}
    seen: dict[str, set[str]] = {}
    for category, quotes in by_category.items():
        for q in quotes:
            seen.setdefault(q, set()).add(category)
    rng = np.random.default_rng(seed)
    per = [n // len(categories) + (i < n % len(categories)) for i in range(len(categories))]
    made: list[Quotation] = []
    for category, want in zip(categories, per, strict=True):
        unique = sorted({q for q in by_category[category] if len(seen[q]) == 1})
        if len(unique) < want:
            raise ValueError(f"fortunes category {category!r} has {len(unique)} usable quotations; {want} asked")
        for index in sorted(rng.choice(len(unique), size=want, replace=False)):
            text = unique[int(index)]
            made.append(Quotation(text_item_id(text), text, category))
    return made
