"""Small PNG charts for asset metadata and reports (matplotlib, headless).

Every function returns PNG bytes; wrap them with ``core.images.markdown_image`` for Dagster Markdown
metadata or embed them in HTML as data URIs. Kept tiny on purpose: a picture per question.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """matplotlib's pyplot on the headless Agg backend, imported at the first chart, not with this module: every
    run's process imports the definitions, and pyplot was ~1.7 s of that import under load (CONTRIBUTING, budget)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Figure, dpi: int = 96) -> bytes:
    """Render and close a figure (closing matters: long-lived code servers would leak figures)."""
    buffer = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        pyplot().close(fig)
    return buffer.getvalue()


LEGEND_INSIDE_MAX = 5  # line series whose legend still fits inside the axes; more go beside them
CHAR_WIDTH_IN = 0.085  # a tick label character at matplotlib's default font size, in inches


def tick_rotation(labels: Sequence[str], figure_width_in: float, many: int) -> tuple[int, str]:
    """(rotation, horizontal alignment) of category tick labels: tilted when there are more than ``many`` or when
    the longest would not fit its slot (labeler names side by side overlap and become unreadable)."""
    slot = 0.8 * figure_width_in / max(len(labels), 1)
    longest = max((len(str(label)) for label in labels), default=0)
    return (45, "right") if len(labels) > many or longest * CHAR_WIDTH_IN > slot else (0, "center")


def bar_png(
    values: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    title: str,
    ylabel: str = "",
    size: tuple[float, float] = (6.0, 3.0),
) -> bytes:
    """Bars per category; a mapping of series (e.g. split -> class -> count) gives grouped bars."""
    fig, ax = pyplot().subplots(figsize=size)
    series: dict[str, Mapping[str, float]]
    first = next(iter(values.values()), None)
    if isinstance(first, Mapping):
        series = {str(k): cast(Mapping[str, float], v) for k, v in values.items()}
    else:
        series = {"": cast(Mapping[str, float], values)}
    categories: list[str] = []
    for mapping in series.values():
        categories.extend(c for c in mapping if c not in categories)
    x = np.arange(len(categories))
    width = 0.8 / max(len(series), 1)
    for i, (name, mapping) in enumerate(series.items()):
        heights = [float(mapping.get(c, 0.0)) for c in categories]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name or None)
    rotation, align = tick_rotation(categories, size[0], many=12)
    ax.set_xticks(x, categories, rotation=rotation, ha=align)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize="small")
    return figure_png(fig)


def histogram_png(
    values: Sequence[float] | NDArray[np.floating[Any]],
    title: str,
    xlabel: str = "",
    bins: int = 20,
    value_range: tuple[float, float] | None = None,
    size: tuple[float, float] = (6.0, 3.0),
) -> bytes:
    """A histogram (e.g. consensus confidence, time per label)."""
    fig, ax = pyplot().subplots(figsize=size)
    data = np.asarray(values, dtype=float)
    ax.hist(data[np.isfinite(data)], bins=bins, range=value_range, color="#4c72b0", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return figure_png(fig)


def lines_png(
    series: Mapping[str, tuple[Sequence[float] | Sequence[str], Sequence[float]]],
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[float, float] = (6.0, 3.0),
) -> bytes:
    """One line per name: name -> (x values, y values); string x values are evenly spaced categories."""
    fig, ax = pyplot().subplots(figsize=size)
    for name, (xs, ys) in series.items():
        ax.plot(np.asarray(xs), np.asarray(ys), marker="o", markersize=3, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(**legend_placement(len(series)))
    return figure_png(fig)


def legend_placement(n_series: int) -> dict[str, Any]:
    """Legend keywords: inside the axes for a few lines, beside them for more (ten classes' legend inside the
    axes hid the very lines it names)."""
    if n_series > LEGEND_INSIDE_MAX:
        return {"fontsize": "small", "loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}
    return {"fontsize": "small"}


def heatmap_png(
    matrix: NDArray[np.floating[Any]] | NDArray[np.integer[Any]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    annotate: bool = True,
    size: tuple[float, float] = (5.0, 4.5),
) -> bytes:
    """A labeled matrix (confusion matrices, labeler × class usage)."""
    fig, ax = pyplot().subplots(figsize=size)
    data = np.asarray(matrix, dtype=float)
    image = ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(col_labels)), list(col_labels))
    ax.set_yticks(range(len(row_labels)), list(row_labels))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if annotate and data.size <= 400:
        threshold = np.nanmax(data) / 2 if data.size else 0
        for (r, c), value in np.ndenumerate(data):
            text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
            ax.text(c, r, text, ha="center", va="center", fontsize=7, color="white" if value > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return figure_png(fig)


def box_png(
    groups: Mapping[str, Sequence[float] | NDArray[np.floating[Any]]],
    title: str,
    ylabel: str = "",
    log_scale: bool = False,
    size: tuple[float, float] = (6.0, 3.0),
) -> bytes:
    """One box per group (e.g. time per label per labeler)."""
    fig, ax = pyplot().subplots(figsize=size)
    names = list(groups)
    data = [np.asarray(groups[n], dtype=float) for n in names]
    ax.boxplot([d[np.isfinite(d)] for d in data], showfliers=False)
    rotation, align = tick_rotation(names, size[0], many=8)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=rotation, ha=align)
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return figure_png(fig)
