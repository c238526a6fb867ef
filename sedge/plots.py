"""Figure helpers shared by the chapters: grids of at most three panels per row sized for the book
page, one legend below the panels instead of on the data, and plain tick labels on log axes."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullFormatter

PAGE_WIDTH = 9.0          # inches at 100 dpi ≈ the book's content column (about 770 px) with margins


def panels(n: int, *, ncols: int = 3, height: float = 2.9, **kw):
    """(fig, [ax, …]) for ``n`` panels, at most ``ncols`` per row, the width of the page."""
    cols = max(1, min(n, ncols))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH * max(cols, 2) / 3, height * rows), squeeze=False, **kw)
    flat = axes.ravel().tolist()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def legend_below(fig, axes, ncol: int = 4, fontsize: float = 8) -> None:
    """One legend for all ``axes`` (labels de-duplicated) under the panels, then a tight layout."""
    seen: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if not label.startswith("_"):
                seen.setdefault(label, h)
    fig.tight_layout()
    if seen:
        rows = math.ceil(len(seen) / ncol)
        band = min(0.45, (0.1 + 0.22 * rows) / fig.get_figheight())
        fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False)
        fig.tight_layout(rect=(0, band, 1, 1))


def plain_log_ticks(ax, axis: str = "x") -> None:
    """Major ticks of a log axis as plain numbers (0.3, 1, 300 — not 3×10⁻¹); no minor labels."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
