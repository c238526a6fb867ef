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


# ---- tables ---------------------------------------------------------------------------------
def column_format(name: str, values):
    """A format for a column, from its name and values: accuracies (%) with one decimal, times in µs
    as integers, errors and tolerances in scientific notation, raw MAC counts in millions ("95.9 M"),
    other large counts with thousands separators."""
    import numpy as np
    low = str(name).lower()
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if any(k in low for k in ("err", "tol", "bound", "diff")):
        return "{:.2e}"
    if "µs" in low or "us/" in low:
        return "{:,.0f}"
    if "rtf" in low:
        return "{:.2e}"
    if "mac" in low and not any(k in low for k in ("kmac", "mmac", "%")) and len(v) and np.nanmax(np.abs(v)) >= 1e5:
        return lambda x: f"{x / 1e6:,.1f} M"
    if "%" in low or " pp" in low or low.endswith("pp") or "acc" in low:
        return "{:.1f}"
    if len(v) and np.all(np.abs(v - np.round(v)) < 1e-9):
        return "{:,.0f}"
    if len(v) and np.nanmax(np.abs(v)) >= 1e4:
        return "{:,.0f}"
    return "{:.3g}"


def styled(df):
    """A pandas Styler of ``df`` for the book: no positional index, per-column number formats."""
    import pandas as pd
    formats = {c: column_format(c, df[c]) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])}
    lists = [c for c in df.columns if df[c].dtype == object and len(df) and
             df[c].map(lambda v: isinstance(v, (list, tuple))).all()]
    spec: dict = {c: f for c, f in formats.items() if f}
    spec.update({c: (lambda v: "-".join(map(str, v))) for c in lists})   # step scales, states as 1-9-54
    st = df.style.format(spec, na_rep="–")
    if isinstance(df.index, pd.RangeIndex) or (df.index.name is None and df.index.nlevels == 1
                                               and pd.api.types.is_integer_dtype(df.index)):
        st = st.hide(axis="index")
    return st


def book_style() -> None:
    """Display settings of every chapter: DataFrames render through :func:`styled`, figures at the
    page's resolution with readable fonts. Called once in each chapter's import cell."""
    import pandas as pd
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 9,
                         "legend.fontsize": 8, "figure.max_open_warning": 0})
    pd.DataFrame._repr_html_ = lambda self: styled(self).to_html()   # type: ignore[method-assign]
    import warnings
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
