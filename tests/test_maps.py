"""`sweep.maps` and `sweep.map`: the map's pixels, the rank stretch, the axes, the box-counting dimension,
the figure and its errors, on synthetic DataFrames (tests/test_cli_map.py runs `sweep map` on a real sweep)."""
import io
import math

import numpy as np
import pandas as pd
import pytest

import sweep
from sweep import maps
from sweep.errors import SweepError

pytest.importorskip("matplotlib")


def log_grid(nx=7, ny=5, drop=(), seed=0):
    """A shuffled DataFrame with one row per (lr_hidden, lr_output) point of a log grid, minus the points
    ``drop`` ((i, j): row i, column j); trainability negative below the line y = x (trained), positive
    above, plus a true/false and a plain numeric column."""
    xs, ys = np.logspace(-3, 1, nx), np.logspace(-2, 1, ny)
    i, j = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    keep = np.ones((ny, nx), bool)
    for r, c in drop:
        keep[r, c] = False
    i, j = i[keep], j[keep]
    u, v = np.log10(xs[j]), np.log10(ys[i])
    t = np.where(v < u, -(10 + 100 * i + j), 1 + 100 * i + j).astype(float)  # distinct: the pixel is its value
    df = pd.DataFrame({"lr_hidden": xs[j], "lr_output": ys[i], "trainability": t, "converged": t < 0,
                       "final_loss": 10.0 ** (u - v), "loss": "mse", "seed": 0})
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True), xs, ys


# --------------------------------------------------------------------------- the image

def test_each_row_is_the_pixel_of_its_x_and_y_and_missing_points_are_nan():
    df, xs, ys = log_grid(drop=[(2, 4), (0, 0)])
    img = maps.grid_image(df, "lr_hidden", "lr_output", "trainability")
    assert img.shape == (5, 7) and img.values.dtype == np.float64
    np.testing.assert_array_equal(img.xs, xs)
    np.testing.assert_array_equal(img.ys, ys)
    # a known row: x = xs[3], y = ys[1] lands in row 1 (y, counted from the bottom), column 3 (x)
    row = df[(df["lr_hidden"] == xs[3]) & (df["lr_output"] == ys[1])].iloc[0]
    assert img.values[1, 3] == row["trainability"] == -(10 + 100 * 1 + 3)  # y below x: trained
    # every row where its x and y say
    i, j = np.searchsorted(ys, df["lr_output"]), np.searchsorted(xs, df["lr_hidden"])
    np.testing.assert_array_equal(img.values[i, j], df["trainability"].to_numpy())
    assert np.isnan(img.values[2, 4]) and np.isnan(img.values[0, 0])
    assert not img.filled[2, 4] and img.filled.sum() == len(df) == 33
    assert (img.no_run, img.no_value, img.runs, img.kind) == (2, 0, 33, "trainability")


def test_a_true_false_colour_is_one_and_zero_and_its_missing_values_are_no_data():
    df, xs, ys = log_grid(4, 3)
    df["converged"] = df["converged"].astype(object)
    df.loc[(df["lr_hidden"] == xs[0]) & (df["lr_output"] == ys[2]), "converged"] = None  # Arrow's bool with nulls
    img = maps.grid_image(df, "lr_hidden", "lr_output", "converged")
    assert img.kind == "bool"
    expect = (np.log10(ys)[:, None] < np.log10(xs)[None, :]).astype(float)
    expect[2, 0] = np.nan
    np.testing.assert_array_equal(img.values, expect)
    assert (img.no_run, img.no_value) == (0, 1)
    assert "1 without a converged value" in maps.caption(img)


def test_the_index_image_colours_each_pixel_from_its_value():
    from matplotlib import colors

    df, xs, ys = log_grid(drop=[(4, 6)])
    img = maps.grid_image(df, "lr_hidden", "lr_output", "final_loss")
    index, palette, mappable, legend = maps.colour_index(img)
    assert index.dtype == np.uint8 and index.shape == img.shape and legend is None
    assert index[4, 6] == maps.LEVELS  # no run: the grey at the end of the palette
    assert palette(maps.LEVELS) == pytest.approx(colors.to_rgba(maps.NO_DATA))
    assert isinstance(mappable.norm, colors.LogNorm)  # 4 decades of final_loss
    # the index follows the (log) colour scale: larger final_loss, larger index
    order = np.argsort(img.values[~np.isnan(img.values)])
    assert np.all(np.diff(index[~np.isnan(img.values)][order].astype(int)) >= 0)
    assert index[~np.isnan(img.values)].min() == 0 and index[~np.isnan(img.values)].max() == maps.LEVELS - 1


# --------------------------------------------------------------------------- the rank stretch

def brute_stretch(v):
    neg, pos = v[v < 0], v[v > 0]
    return np.array([np.nan if np.isnan(x) else -np.mean(neg >= x) if x < 0 else np.mean(pos <= x) if x > 0 else 0.0
                     for x in v])


def test_the_rank_stretch_is_the_cdf_of_each_sign_and_monotone():
    rng = np.random.default_rng(1)
    v = np.concatenate([-rng.lognormal(2, 2, 500), rng.lognormal(1, 3, 300), [0.0, 0.0, np.nan],
                        np.repeat([-7.5, 3.25], 4)])  # ties
    v = rng.permutation(v)
    r = maps.rank_stretch(v)
    np.testing.assert_allclose(r, brute_stretch(v), rtol=0, atol=1e-15)
    ok = ~np.isnan(v)
    assert np.array_equal(np.isnan(r), ~ok)
    assert r[np.nanargmin(v)] == -1 and r[np.nanargmax(v)] == 1  # the extremes hit -1 and +1
    assert np.all(r[v == 0] == 0) and np.all(r[v < 0] < 0) and np.all(r[v > 0] > 0)
    assert np.all((r[ok] >= -1) & (r[ok] <= 1))
    for side in (v < 0, v > 0):  # strictly increasing within a sign, equal for ties
        order = np.argsort(v[side])
        sv, sr = v[side][order], r[side][order]
        assert np.all(np.diff(sr)[np.diff(sv) > 0] > 0) and np.all(np.diff(sr)[np.diff(sv) == 0] == 0)
    assert len(set(r[v == -7.5])) == 1 and len(set(r[v == 3.25])) == 1


def test_the_rank_stretch_keeps_the_shape_and_handles_one_sign():
    img = np.array([[-3.0, -1.0], [np.nan, -2.0]])
    np.testing.assert_array_equal(maps.rank_stretch(img), [[-1.0, -1 / 3], [np.nan, -2 / 3]])
    np.testing.assert_array_equal(maps.rank_stretch(np.array([5.0, 1.0, 5.0])), [1.0, 1 / 3, 1.0])
    assert maps.rank_stretch(np.array([np.nan])).tolist() == [pytest.approx(np.nan, nan_ok=True)]


# --------------------------------------------------------------------------- axes

def test_log_spaced_axes_get_powers_of_ten_at_their_pixels():
    values = np.logspace(-3, 1, 9)  # ratio 10^0.5: 10^-3 at pixel 0, 10^-2 at pixel 2 ...
    positions, labels, log = maps.axis_ticks(values)
    assert log and labels == ["$10^{-3}$", "$10^{-2}$", "$10^{-1}$", "$10^{0}$", "$10^{1}$"]
    np.testing.assert_allclose(positions, [0, 2, 4, 6, 8], atol=1e-9)
    assert maps.is_log_spaced(np.geomspace(0.03, 30, 7))
    assert not maps.is_log_spaced(np.geomspace(0.03, 30, 7) * [1, 1, 1, 1 + 1e-4, 1, 1, 1])  # ratios off by 1e-4
    assert not maps.is_log_spaced([1.0, 2.0, 3.0]) and not maps.is_log_spaced([-1.0, -2.0, -4.0])
    # a log axis spanning under two powers of ten: ticks at 1-2-5
    positions, labels, log = maps.axis_ticks(np.geomspace(0.15, 0.9, 6))
    assert log and labels == ["0.2", "0.5"]
    many = maps.axis_ticks(np.logspace(-20, 20, 4096))  # every m-th power, at most 8
    assert len(many[1]) <= 8 and many[1][0] == "$10^{-20}$"


def test_linear_axes_get_round_values_or_every_value():
    positions, labels, log = maps.axis_ticks(np.arange(101.0))
    assert not log and labels == ["0", "20", "40", "60", "80", "100"]
    np.testing.assert_allclose(positions, [0, 20, 40, 60, 80, 100])
    positions, labels, log = maps.axis_ticks([1.0, 2.0, 4.0, 9.0])  # few values: each at its pixel
    assert positions == [0, 1, 2, 3] and labels == ["1", "2", "4", "9"]


# --------------------------------------------------------------------------- the box-counting dimension

N = 1024


def koch_snowflake(n=N, depth=6):
    """The vertices (complex, closed) of a Koch snowflake centred in an n x n image: segments of ~1 pixel."""
    angles = np.pi / 2 - np.arange(4) * 2 * np.pi / 3  # a triangle, clockwise, closed
    z = (n / 2 + 0.13) + (n / 2 + 0.29) * 1j + 0.42 * n * np.exp(1j * angles)  # off the pixel grid
    bump = np.exp(1j * np.pi / 3)  # to the left of a clockwise edge: outwards
    for _ in range(depth):
        a, d = z[:-1], (z[1:] - z[:-1]) / 3
        z = np.append(np.stack([a, a + d, a + d + d * bump, a + 2 * d], 1).ravel(), z[-1])
    return z


def fill_polygon(z, n=N):
    """The polygon's inside (even-odd rule) sampled at the pixel centres, row by row."""
    x0, y0, x1, y1 = z[:-1].real, z[:-1].imag, z[1:].real, z[1:].imag
    cols = np.arange(n) + 0.5
    img = np.zeros((n, n), bool)
    for row in range(n):
        yc = row + 0.5
        hit = (y0 <= yc) != (y1 <= yc)
        xs = np.sort(x0[hit] + (yc - y0[hit]) * (x1[hit] - x0[hit]) / (y1[hit] - y0[hit]))
        img[row] = (np.searchsorted(xs, cols) % 2).astype(bool)
    return img


def test_a_straight_boundary_has_dimension_one():
    yy, xx = np.mgrid[0:N, 0:N]
    for image in (yy < 0.37 * xx + 100, yy < 3.1 * xx - 500, yy < 301, yy < 512, xx >= 700):
        result = maps.box_counting_dimension(image)
        assert result.dimension == pytest.approx(1.0, abs=0.05), result.counts_text()
        assert result.r2 > 0.99 and result.fit[0] == 2
    circle = (xx - 500.3) ** 2 + (yy - 480.7) ** 2 < 300 ** 2
    assert maps.box_counting_dimension(circle).dimension == pytest.approx(1.0, abs=0.05)


def test_noise_has_dimension_two():
    rng = np.random.default_rng(0)
    for shape in ((N, N), (512, 768)):
        result = maps.box_counting_dimension(rng.random(shape) < 0.5)
        assert result.dimension == pytest.approx(2.0, abs=0.05)
        assert result.counts[1] == math.ceil((shape[0] - 1) / 4) * math.ceil((shape[1] - 1) / 4)  # every box


def test_the_koch_snowflake_measures_log4_over_log3():
    image = fill_polygon(koch_snowflake())
    assert 0.3 < image.mean() < 0.4  # filled: the snowflake's area is 8/5 of its triangle's
    result = maps.box_counting_dimension(image)
    assert result.dimension == pytest.approx(math.log(4) / math.log(3), abs=0.04), result.counts_text()
    assert list(result.sizes[result.fitted]) == [2, 4, 8, 16, 32, 64, 128]
    assert result.fit == (2, 128) and result.r2 > 0.99


def test_the_fit_range_is_reported_and_can_be_chosen():
    yy, xx = np.mgrid[0:N, 0:N]
    result = maps.box_counting_dimension(yy < 301)
    # sizes up to N / 4; fitted while >= 10 boxes and >= 8 boxes across
    assert list(result.sizes) == [2, 4, 8, 16, 32, 64, 128, 256]
    assert list(result.counts) == [512, 256, 128, 64, 32, 16, 8, 4]
    assert list(result.fitted) == [True] * 6 + [False] * 2
    assert result.text() == ("box-counting dimension of the trained/not-trained boundary: 1.00 (fit over box sizes "
                             "2-64 pixels, 6 sizes, R^2 1.000)")
    assert "2: 512*" in result.counts_text() and "128: 8," in result.counts_text()
    chosen = maps.box_counting_dimension(yy < 301, fit=(8, 32))
    assert chosen.fit == (8, 32) and np.count_nonzero(chosen.fitted) == 3


def test_pixels_without_data_are_left_out_of_the_boxes():
    yy, xx = np.mgrid[0:512, 0:512]
    image = (yy < 0.37 * xx + 60).astype(float)
    image[:, 300:] = np.nan  # no runs there: no boundary either
    image[::7, ::5] = np.nan  # scattered holes do not break the line
    result = maps.box_counting_dimension(image)
    assert result.dimension == pytest.approx(1.0, abs=0.05)
    assert result.counts[0] == pytest.approx(300 * 1.37 / 2, rel=0.1)  # only the left part's boundary


def test_no_boundary_or_too_small_a_map_is_a_one_line_error():
    with pytest.raises(SweepError, match="no boundary to measure"):
        maps.box_counting_dimension(np.ones((256, 256), bool))
    with pytest.raises(SweepError, match=r"needs at least 3 box sizes .* this map \(6 x 5 pixels\) has 0"):
        maps.box_counting_dimension(np.eye(5, 6, dtype=bool))
    with pytest.raises(SweepError, match="fit range 512-1024"):
        maps.box_counting_dimension(np.tri(N, dtype=bool), fit=(512, 1024))


# --------------------------------------------------------------------------- sweep.map

def test_map_returns_a_figure_in_the_axes_units_with_the_rank_colour_bar():
    from matplotlib.figure import Figure

    df, xs, ys = log_grid(drop=[(1, 1)])
    fig = sweep.map(df, x="lr_hidden", y="lr_output", name="demo")
    assert isinstance(fig, Figure) and fig.dimension is None and fig.dimension_figure is None
    ax, cax = fig.axes
    assert ax.get_xlabel() == "lr_hidden (log scale)" and ax.get_ylabel() == "lr_output (log scale)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["$10^{-3}$", "$10^{-2}$", "$10^{-1}$", "$10^{0}$",
                                                             "$10^{1}$"]
    labels = [t.get_text() for t in cax.get_yticklabels()]
    assert labels[0] == "−1: trained (rank)" and labels[-1] == "+1: diverged or stuck (rank)"
    title = fig._suptitle.get_text()
    assert "demo" in title and "7 x 5 grid points, 34 runs; grey: no data (1 point without a run)" in title
    assert np.count_nonzero(~np.isnan(fig.map_image.values)) == 34
    assert fig._repr_png_().startswith(b"\x89PNG")
    assert fig.get_dpi() == maps.MIN_DPI


def test_map_where_filters_and_dimension_attaches_the_result_and_its_figure():
    n = 128
    xs = np.logspace(-2, 2, n)
    u, v = np.meshgrid(np.log10(xs), np.log10(xs))
    df = pd.DataFrame({"lr_hidden": np.tile(xs, n), "lr_output": np.repeat(xs, n),
                       "trainability": np.where(v.ravel() < 0.5 * u.ravel(), -5.0, 5.0), "seed": 0})
    df = pd.concat([df, df.assign(seed=1)])
    with pytest.raises(SweepError, match=r"2 rows share lr_hidden=0\.01, lr_output=0\.01 \(and 16,383 other grid "
                                         r"points have several\).*they differ in seed: .*--where \"seed == 0\""):
        sweep.map(df, x="lr_hidden", y="lr_output")
    fig = sweep.map(df, x="lr_hidden", y="lr_output", where="seed == 1", dimension=True)
    assert fig.dimension.dimension == pytest.approx(1.0, abs=0.05)
    assert fig.dimension.fit == (2, 16)
    ax = fig.dimension_figure.axes[0]
    assert ax.get_xlabel() == "box size (pixels)"
    assert any(f"slope −{fig.dimension.dimension:.2f}" in t.get_text() for t in ax.get_legend().get_texts())


def test_the_drawn_png_puts_each_point_in_its_place():
    """Render a 6 x 5 true/false map and read the PNG back: each cell's centre has its colour, origin lower."""
    from matplotlib import colors
    from matplotlib.image import imread

    xs, ys = np.logspace(-2, 1, 6), np.linspace(0.5, 2.5, 5)
    rows = [(x, y, bool(i == 1 and j == 3)) for i, y in enumerate(ys) for j, x in enumerate(xs) if (i, j) != (4, 0)]
    df = pd.DataFrame(rows, columns=["lr_hidden", "lr_output", "converged"])
    fig = sweep.map(df, x="lr_hidden", y="lr_output", color="converged", dpi=100)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    png = imread(io.BytesIO(buffer.getvalue()))
    ax = fig.axes[0]
    box = ax.get_window_extent()
    height = png.shape[0]
    expect = {True: colors.to_rgb(maps.BOOL_COLOURS[True]), False: colors.to_rgb(maps.BOOL_COLOURS[False])}
    for i in range(5):
        for j in range(6):
            px = box.x0 + (j + 0.5) / 6 * box.width
            py = height - (box.y0 + (i + 0.5) / 5 * box.height)  # PNG rows run downwards
            got = png[int(py), int(px), :3]
            want = colors.to_rgb(maps.NO_DATA) if (i, j) == (4, 0) else expect[(i, j) == (1, 3)]
            np.testing.assert_allclose(got, want, atol=1.5 / 255, err_msg=f"cell row {i}, column {j}")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["converged = true", "converged = false", "no data"]


def test_the_resolution_gives_every_grid_point_a_pixel():
    for nx, ny in ((4096, 4096), (4096, 16), (300, 2000), (6, 5)):
        img = maps.MapImage("a", "b", "c", "number", np.arange(nx), np.arange(ny), np.zeros((ny, nx)),
                            np.ones((ny, nx), bool))
        w, h = maps._axes_inches(img)
        dpi = maps.auto_dpi(img)
        assert w * dpi >= nx and h * dpi >= ny and dpi >= maps.MIN_DPI
        assert maps.auto_dpi(img, 72) == 72
    assert maps.auto_dpi(img) == maps.MIN_DPI


# --------------------------------------------------------------------------- errors

def one_line(exc_info):
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_unknown_and_non_numeric_columns_say_which_can_be_used():
    df, _, _ = log_grid()
    with pytest.raises(SweepError) as info:
        sweep.map(df, x="lr_hiden", y="lr_output")
    assert one_line(info) == ("--x lr_hiden: no such column (did you mean 'lr_hidden'?); the numeric columns are "
                              "lr_hidden, lr_output, trainability, final_loss, seed")
    with pytest.raises(SweepError) as info:
        sweep.map(df, x="lr_hidden", y="loss")
    assert one_line(info).startswith("--y loss: not a numeric column")
    with pytest.raises(SweepError) as info:
        sweep.map(df, x="lr_hidden", y="lr_output", color="loss")
    assert one_line(info).startswith("--color loss: not a numeric or true/false column")
    with pytest.raises(SweepError, match="--x and --y are both lr_hidden"):
        sweep.map(df, x="lr_hidden", y="lr_hidden")


def test_a_missing_trainability_column_is_a_one_line_error():
    df, _, _ = log_grid()
    with pytest.raises(SweepError) as info:
        sweep.map(df.drop(columns=["trainability"]), x="lr_hidden", y="lr_output")
    text = one_line(info)
    assert text.startswith("--color trainability: no such column (results written before sweep recorded "
                           "trainability lack it; colour by another column, e.g. --color final_loss")
    assert "converged, final_loss" in text


def test_too_many_values_missing_values_and_empty_selections_are_errors():
    many = pd.DataFrame({"a": np.arange(4097.0), "b": 1.0, "trainability": -1.0})
    with pytest.raises(SweepError) as info:
        sweep.map(many, x="a", y="b")
    assert one_line(info) == ("--x a: 4,097 distinct values; a map takes at most 4,096 per axis (one pixel each): "
                              "filter with --where or map a coarser column")
    img = maps.grid_image(many.iloc[:4096], "a", "b")  # 4096 is allowed
    assert img.shape == (1, 4096)
    holes = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, 2.0, 3.0], "trainability": -1.0})
    with pytest.raises(SweepError, match=r"--x a: 1 row have no finite a .* --where \"a > 0\""):
        sweep.map(holes, x="a", y="b")
    df, _, _ = log_grid()
    with pytest.raises(SweepError, match="selects none of the 35 runs"):
        sweep.map(df, x="lr_hidden", y="lr_output", where="lr_hidden > 100")
    with pytest.raises(SweepError, match="needs at least one run"):
        maps.grid_image(df.iloc[:0], "lr_hidden", "lr_output")


def test_dimension_needs_a_trained_or_not_colour():
    df, _, _ = log_grid()
    with pytest.raises(SweepError) as info:
        sweep.map(df, x="lr_hidden", y="lr_output", color="final_loss", dimension=True)
    assert one_line(info).startswith("--dimension measures the boundary between trained and not trained: colour by "
                                     "trainability (negative: trained) or a true/false column such as converged; "
                                     "final_loss is neither")


def test_missing_matplotlib_is_the_plot_message(monkeypatch):
    import sys

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    df, _, _ = log_grid()
    with pytest.raises(SweepError) as info:
        sweep.map(df, x="lr_hidden", y="lr_output")
    assert str(info.value) == maps.MISSING_MPL
