"""Figure helpers shared by the chapters: grids of at most three panels per row sized for the book
page, one legend below the panels instead of on the data, point labels that do not overlap, and plain
tick labels on log axes."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

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


LABEL_OFFSETS = ((4, -3), (4, 7), (4, -13), (-4, 7), (-4, -13), (4, 17), (4, -23), (-4, 17), (-4, -23))


def label_points(ax, xs, ys, labels, *, fontsize: float = 7, offsets=LABEL_OFFSETS) -> list:
    """Write ``labels[i]`` next to the point (xs[i], ys[i]) so that no two labels overlap: each takes
    the first of ``offsets`` (in points from its point; a negative x offset puts it on the left)
    whose box is clear of the labels placed before it, or the first offset when none is clear.
    Call it once the axes' limits and the figure's layout are final (after :func:`legend_below`)."""
    renderer = ax.figure.canvas.get_renderer()
    placed, texts = [], []

    def put(x, y, label, offset):
        return ax.annotate(str(label), (x, y), xytext=offset, textcoords="offset points", fontsize=fontsize,
                           ha="left" if offset[0] >= 0 else "right", va="center")
    for x, y, label in zip(xs, ys, labels):
        for offset in offsets:
            t = put(x, y, label, offset)
            box = t.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                break
            t.remove()
        else:                                                    # no clear place: the first offset
            t = put(x, y, label, offsets[0])
            box = t.get_window_extent(renderer)
        placed.append(box)
        texts.append(t)
    return texts


def plain_log_ticks(ax, axis: str = "x") -> None:
    """Major ticks of a log axis as plain numbers (0.3, 1, 300 — not 3×10⁻¹). Minor ticks are
    labelled (at 2, 3 and 5 × 10ᵏ) only when fewer than two powers of ten lie in view, i.e.
    ⌊log₁₀ hi⌋ − ⌈log₁₀ lo⌉ < 1, where the axis would otherwise show one number or none."""
    target = ax.xaxis if axis == "x" else ax.yaxis

    def minor(v, _):
        lo, hi = sorted(target.get_view_interval())
        if lo <= 0 or math.floor(math.log10(hi) + 1e-9) - math.ceil(math.log10(lo) - 1e-9) >= 1:
            return ""
        lead = v / 10 ** math.floor(math.log10(v) + 1e-9)
        return f"{v:g}" if any(abs(lead - d) < 1e-6 for d in (2, 3, 5)) else ""
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(minor))


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
    if "budget" in low:
        return "{:g}"                      # budgets are set, not measured: 0.25 stays 0.25
    if "%" in low or " pp" in low or low.endswith("pp") or "acc" in low:
        return "{:.1f}"
    if len(v) and np.all(np.abs(v - np.round(v)) < 1e-9):
        return "{:,.0f}"
    if len(v) and np.nanmax(np.abs(v)) >= 1e4:
        return "{:,.0f}"
    return "{:.3g}"


def styled(df):
    """A pandas Styler of ``df`` for the book: no positional index, per-column number formats,
    text columns aligned left (the book's CSS aligns cells right)."""
    import pandas as pd
    if not df.columns.is_unique:              # per-column formats need one column per name
        return df.style.format(na_rep="–", precision=3)
    formats = {c: column_format(c, df[c]) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])}
    lists = [c for c in df.columns if df[c].dtype == object and len(df) and
             df[c].map(lambda v: isinstance(v, (list, tuple))).all()]
    spec: dict = {c: f for c, f in formats.items() if f}
    spec.update({c: (lambda v: "-".join(map(str, v))) for c in lists})   # step scales, states as 1-9-54
    st = df.style.format(spec, na_rep="–")
    text = [c for c in df.columns if c not in formats]
    if text and df.index.is_unique and df.columns.is_unique:   # words read from the left, numbers on the right
        # (pandas styles cells only where rows and columns are unique; a table with repeated
        # labels keeps the page's alignment rather than failing to display)
        st = st.set_properties(subset=text, **{"text-align": "left"})
    if isinstance(df.index, pd.RangeIndex) or (df.index.name is None and df.index.nlevels == 1
                                               and pd.api.types.is_integer_dtype(df.index)):
        st = st.hide(axis="index")
    return st


def split_columns(df, keys, max_columns: int = 10) -> list:
    """``df`` as a list of tables of at most ``max_columns`` columns that all begin with the ``keys``
    columns (what identifies a row), the other columns in their order; one table when it fits."""
    keys = [k for k in keys if k in df.columns]
    rest = [c for c in df.columns if c not in keys]
    width = max_columns - len(keys)
    if width < 1:
        raise ValueError(f"{len(keys)} key columns leave no room within {max_columns} columns")
    if len(df.columns) <= max_columns:
        return [df]
    return [df[keys + rest[i:i + width]] for i in range(0, len(rest), width)]


def show_table(df, keys, max_columns: int = 10) -> None:
    """Display ``df`` in the book as :func:`styled` tables of at most ``max_columns`` columns, each
    repeating the ``keys`` columns (a wide table overflows the page)."""
    from IPython.display import display
    for part in split_columns(df, keys, max_columns):
        display(styled(part))


def book_style() -> None:
    """Display settings of every chapter: DataFrames render through :func:`styled`, figures at the
    page's resolution with readable fonts. Called once in each chapter's import cell."""
    import pandas as pd
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 9,
                         "legend.fontsize": 8, "figure.max_open_warning": 0})
    pd.DataFrame._repr_html_ = lambda self: styled(self).to_html()   # type: ignore[method-assign]


# ---- audio ----------------------------------------------------------------------------------
def audio_table(waves, rows: list[dict], rate: int = 16_000):
    """An HTML table with one row per clip: the fields of ``rows[i]`` and a player for ``waves[i]``
    (int16 samples, embedded in the page as a base64 WAV, so the book plays it offline). Only for
    clips the project may publish (the synthetic set), never the real Speech Commands excerpt."""
    import base64
    import html
    import io

    import numpy as np
    import soundfile as sf
    from IPython.display import HTML
    if len(waves) != len(rows):
        raise ValueError(f"{len(waves)} clips but {len(rows)} rows")
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in (rows[0] if rows else {})) + "<th>listen</th>"
    body = []
    for wave, row in zip(waves, rows):
        buf = io.BytesIO()
        sf.write(buf, np.asarray(wave, np.int16), rate, format="WAV", subtype="PCM_16")
        src = "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()
        cells = "".join(f"<td style='text-align: left'>{html.escape(str(v))}</td>" for v in row.values())
        body.append(f"<tr>{cells}<td><audio controls preload='none' src='{src}'></audio></td></tr>")
    return HTML(f"<table class='sedge-audio'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
