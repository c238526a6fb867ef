"""Figure and table helpers of the book: formats per column, no index, text left, at most three
panels per row, one legend below the data."""
import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from sedge.report.plots import column_format, legend_below, panels, styled  # noqa: E402


def test_column_formats_follow_names_and_values():
    assert column_format("test acc %", [38.75]).format(38.75) == "38.8"
    assert column_format("µs/clip", [1234.6]).format(1234.6) == "1,235"
    assert column_format("max abs err", [1e-6]).format(1e-6) == "1.00e-06"
    assert column_format("macs", [95_888_640.0])(95_888_640.0) == "95.9 M"
    assert column_format("params", [20377.0]).format(20377.0) == "20,377"


def test_styled_hides_the_index_formats_numbers_and_aligns_text_left():
    df = pd.DataFrame({"model": ["s", "tiny"], "test %": [88.123, 85.4], "step scale": [[1, 9, 54], [1, 2, 6]]})
    html = styled(df.sort_values("test %")).to_html()
    assert "88.1" in html and "88.123" not in html and "1-9-54" in html
    assert 'class="row_heading' not in html                      # no positional index, even after sorting
    assert html.count("text-align: left") >= 1 and "col0" in html.split("text-align: left")[0]
    numeric_only = styled(pd.DataFrame({"a %": [1.0]})).to_html()
    assert "text-align: left" not in numeric_only


def test_panels_put_at_most_three_per_row_and_the_legend_below_the_data():
    fig, axes = panels(5)
    assert len(axes) == 5 and fig.axes[0].get_subplotspec().get_gridspec().ncols == 3
    for i, ax in enumerate(axes):
        ax.plot([0, 1], [0, i], label=f"line {i % 2}")
    legend_below(fig, axes, ncol=2)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["line 0", "line 1"]     # de-duplicated
    fig.canvas.draw()
    box = legend.get_window_extent()
    lowest = min(ax.get_window_extent().y0 for ax in axes if ax.get_visible())
    assert box.y1 <= lowest                                        # under every panel, not on the data


def test_wide_tables_split_into_parts_that_repeat_the_key_columns():
    from sedge.report.plots import split_columns
    df = pd.DataFrame({c: [1] for c in ["data", "model"] + [f"c{i}" for i in range(13)]})
    parts = split_columns(df, ["data", "model"])
    assert [len(p.columns) for p in parts] == [10, 7]
    assert all(list(p.columns[:2]) == ["data", "model"] for p in parts)
    assert sorted({c for p in parts for c in p.columns}) == sorted(df.columns)
    narrow = df[["data", "c0"]]
    assert len(split_columns(narrow, ["data"])) == 1 and split_columns(narrow, ["data"])[0] is narrow


def test_audio_table_embeds_one_playable_wav_per_row():
    import base64
    import io
    import re

    import numpy as np
    import pytest
    import soundfile as sf

    from sedge.report.plots import audio_table
    waves = (1000 * np.sin(np.linspace(0, 100, 16000))[None].repeat(2, 0)).astype(np.int16)
    html = audio_table(waves, [{"word": "yes", "predicted": "no"}, {"word": "go", "predicted": "go"}]).data
    srcs = re.findall(r"src='data:audio/wav;base64,([^']+)'", html)
    assert len(srcs) == 2 and html.count("<th>") == 3
    back, rate = sf.read(io.BytesIO(base64.b64decode(srcs[0])), dtype="int16")
    assert rate == 16000 and np.array_equal(back, waves[0])
    with pytest.raises(ValueError, match="2 clips but 1 rows"):
        audio_table(waves, [{"word": "yes"}])


def test_tables_with_repeated_labels_still_display_and_budgets_keep_their_digits():
    df = pd.DataFrame({"model": ["s", "tiny"], "budget pp": [0.25, 2.0]}, index=[0, 0])
    html = styled(df).to_html()                                   # repeated index: no error
    assert "0.25" in html and ">2<" in html
    assert "tiny" in styled(pd.concat([df, df], axis=1)).to_html()   # repeated columns too


def test_a_log_axis_with_one_power_of_ten_in_view_still_has_numbers():
    import matplotlib.pyplot as plt

    from sedge.report.plots import plain_log_ticks
    fig, ax = plt.subplots()
    ax.plot([2100, 8000], [1, 2])
    ax.set_xscale("log")
    plain_log_ticks(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels(minor=True) + ax.get_xticklabels() if t.get_text()]
    assert {"3000", "5000"} <= set(labels), labels
    ax.set_xlim(0.8, 9)                                            # over a decade wide, one power of ten inside
    fig.canvas.draw()
    assert {"2", "3", "5"} <= {t.get_text() for t in ax.get_xticklabels(minor=True)}
    ax.set_xlim(1, 1000)
    fig.canvas.draw()
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]   # decades: majors only
    plt.close(fig)


def test_point_labels_never_overlap_where_a_fixed_offset_would():
    import matplotlib.pyplot as plt
    from sedge.report.plots import label_points
    fig, ax = plt.subplots(figsize=(3, 2))
    xs, ys = [1.0, 1.02, 1.04, 1.06, 1.08], [50.0, 50.2, 49.9, 50.1, 50.0]     # five points almost on one spot
    ax.plot(xs, ys, "o")
    ax.set(xlim=(0, 3), ylim=(0, 100))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = lambda texts: [t.get_window_extent(renderer) for t in texts]          # noqa: E731
    fixed = [ax.annotate(f"1-9-{i}", (x, y), xytext=(4, -3), textcoords="offset points", fontsize=7)
             for i, (x, y) in enumerate(zip(xs, ys))]
    b = boxes(fixed)
    assert any(b[i].overlaps(b[j]) for i in range(5) for j in range(i))             # the problem
    for t in fixed:
        t.remove()
    b = boxes(label_points(ax, xs, ys, [f"1-9-{i}" for i in range(5)]))
    assert not any(b[i].overlaps(b[j]) for i in range(5) for j in range(i))
    plt.close(fig)
