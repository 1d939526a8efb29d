"""`sweep plot` and the tables behind its heatmaps."""
import sys

import numpy as np
import pandas as pd
import pytest

from sweep import plots
from sweep.cli import main
from sweep.errors import SweepError
from sweep.results import CATEGORICAL, load

pytest.importorskip("matplotlib")

GRID = """
name = "small"
epochs = 300
checkpoints = 5
[grid]
init_scale = [0.3, 3.0]
loss = ["mse", "bce"]
lr = [0.5, 2.0]
seed = {{ range = [0, 4] }}
{extra}
"""
PNG = b"\x89PNG\r\n\x1a\n"


def run_sweep(tmp_path, extra="", name="grid.toml"):  # 2 scales x 2 losses x 2 lr x 4 seeds, 300 epochs
    path = tmp_path / name
    path.write_text(GRID.format(extra=extra))
    assert main(["run", str(path), "--out", str(tmp_path / "res"), "--quiet"]) == 0
    return tmp_path / "res" / "small"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return run_sweep(tmp_path_factory.mktemp("plots"))


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    assert len(data) > 10_000


def test_cli_writes_the_default_png_beside_the_results_and_says_where(small, capsys):
    import polars as pl

    figure = small.parent / f"_{small.name}" / "figure.png"
    assert main(["plot", str(small)]) == 0
    assert_png(figure)
    assert str(figure) in capsys.readouterr().err
    # the results directory stays a Parquet dataset that every reader reads as it is
    assert len(load(small)) == 32 and len(pd.read_parquet(small)) == 32 and pl.read_parquet(small).height == 32


@pytest.mark.parametrize("name", ["fig.png", "_fig.png", "sub/fig.png"])
def test_cli_refuses_to_write_into_the_results_directory(small, capsys, name):
    (small / "sub").mkdir(exist_ok=True)
    try:
        assert main(["plot", str(small), "-o", str(small / name)]) == 2
        err = capsys.readouterr().err
        assert "will not write" in err and "Parquet files only" in err and err.count("\n") == 1
        assert not (small / name).exists()
    finally:
        (small / "sub").rmdir()


def test_cli_output_option_lr_and_no_curves(small, tmp_path):
    assert main(["plot", str(small), "-o", str(tmp_path / "fig.png"), "--lr", "0.5", "--dpi", "72"]) == 0
    assert_png(tmp_path / "fig.png")
    assert main(["plot", str(small), "-o", str(tmp_path / "heat.png"), "--no-curves", "--dpi", "100"]) == 0
    assert_png(tmp_path / "heat.png")


def test_cli_where_plots_a_subset(small, tmp_path, capsys):
    assert main(["plot", str(small), "--where", "loss == 'bce'", "-o", str(tmp_path / "bce.png")]) == 0
    assert_png(tmp_path / "bce.png")
    assert main(["plot", str(small), "--where", "loss == 'none'", "-o", str(tmp_path / "none.png")]) == 2
    assert "selects none of the" in capsys.readouterr().err
    assert not (tmp_path / "none.png").exists()


def test_cli_errors_are_one_line(small, tmp_path, capsys):
    assert main(["plot", str(small), "--lr", "0.7", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: --lr 0.7 is not a learning rate") and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert main(["plot", str(small), "-o", str(tmp_path / "no" / "dir.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_missing_matplotlib_is_one_line_exit_2(small, tmp_path, monkeypatch, capsys):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert main(["plot", str(small), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err == "sweep: error: " + plots.MISSING_MPL + "\n"
    assert not (tmp_path / "x.png").exists()


def test_no_checkpoints_says_what_the_curves_need(tmp_path, capsys):
    path = tmp_path / "nock.toml"
    path.write_text(GRID.format(extra="").replace("checkpoints = 5", "checkpoints = 0").replace('"small"', '"nock"'))
    assert main(["run", str(path), "--out", str(tmp_path / "res"), "--quiet"]) == 0
    res = tmp_path / "res" / "nock"
    assert main(["plot", str(res)]) == 2
    err = capsys.readouterr().err
    assert "needs checkpoints" in err and err.count("\n") == 1
    assert main(["plot", str(res), "--no-curves"]) == 0
    assert_png(tmp_path / "res" / "_nock" / "figure.png")


def hand_built():
    """mse/bce x lr 0.1, 1 x init_scale 0.1, 1, 10; 2 seeds, with known outcomes."""
    rows = []
    spec = {  # (loss, lr, scale): [(converged, epoch), (converged, epoch)]
        ("mse", 0.1, 0.1): [(False, None), (False, None)],
        ("mse", 0.1, 1.0): [(True, 100), (True, 300)],
        ("mse", 0.1, 10.0): [(True, 50), (False, None)],
        ("mse", 1.0, 0.1): [(True, 10), (True, 20)],
        ("mse", 1.0, 1.0): [(True, 5), (True, 7)],
        ("mse", 1.0, 10.0): [(False, None), (False, None)],
        ("bce", 0.1, 0.1): [(True, 1000), (False, None)],
        ("bce", 0.1, 1.0): [(True, 40), (True, 60)],
        ("bce", 0.1, 10.0): [(True, 1), (True, 3)],
        ("bce", 1.0, 0.1): [(True, 2), (True, 2)],
        ("bce", 1.0, 1.0): [(True, 4), (False, None)],
        # ("bce", 1.0, 10.0): no runs
    }
    for (loss, lr, scale), runs in spec.items():
        for seed, (conv, ep) in enumerate(runs):
            rows.append(dict(loss=loss, lr=lr, init_scale=scale, seed=seed, converged=conv,
                             epoch_converged=ep, epochs=1000, epochs_run=1000, diverged=False,
                             checkpoint_epochs=np.array([0, 10, 100]),
                             checkpoint_loss=np.array([1.0, 0.5 * (seed + 1), np.nan if conv else 0.4])))
    df = pd.DataFrame(rows)
    df["loss"] = pd.Categorical(df["loss"], categories=CATEGORICAL["loss"])
    df["epoch_converged"] = df["epoch_converged"].astype("Int64")
    return df


def test_convergence_table_on_a_hand_built_frame():
    t = plots.convergence_table(hand_built())
    assert list(t) == ["mse", "bce"]
    mse = t["mse"]
    assert list(mse.index) == [0.1, 1.0] and list(mse.columns) == [0.1, 1.0, 10.0]
    assert mse.to_numpy().tolist() == [[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]]
    bce = t["bce"].to_numpy()
    assert bce[0].tolist() == [0.5, 1.0, 1.0] and bce[1, :2].tolist() == [1.0, 0.5] and np.isnan(bce[1, 2])
    counts = plots.count_table(hand_built())
    assert counts["bce"].to_numpy().tolist() == [[2, 2, 2], [2, 2, 0]]


def test_epochs_table_is_the_median_over_converged_runs():
    t = plots.epochs_table(hand_built())
    mse = t["mse"].to_numpy()
    assert np.isnan(mse[0, 0]) and mse[0, 1] == 200 and mse[0, 2] == 50
    assert mse[1].tolist()[:2] == [15, 6] and np.isnan(mse[1, 2])
    bce = t["bce"].to_numpy()
    assert bce[0].tolist() == [1000, 50, 2] and bce[1, :2].tolist() == [2, 4] and np.isnan(bce[1, 2])


def test_loss_curves_hold_stopped_runs_at_their_last_loss():
    df = hand_built()
    assert plots.best_lr(df) == 1.0  # 7/10 converged at lr 1, 8/12 at lr 0.1
    rates = df.groupby("lr")["converged"].mean()
    assert plots.best_lr(df) == rates.idxmax()
    lr, curves = plots.loss_curves(df, lr=0.1)
    assert lr == 0.1 and list(curves) == ["mse", "bce"]
    q = curves["mse"][1.0]  # two converged runs: losses 1, (0.5, 1.0), then held at (0.5, 1.0)
    assert q.index.tolist() == [0, 10, 100]
    assert q["median"].tolist() == [1.0, 0.75, 0.75] and q["n"].tolist() == [2, 2, 2]
    q = curves["mse"][0.1]  # neither converged: 0.4 at epoch 100
    assert q["median"].tolist() == [1.0, 0.75, 0.4]
    with pytest.raises(SweepError, match="not a learning rate"):
        plots.loss_curves(df, lr=0.5)


def test_missing_columns_say_what_the_plot_needs():
    with pytest.raises(SweepError, match="init_scale"):
        plots.convergence_table(hand_built().drop(columns=["init_scale"]))
    with pytest.raises(SweepError, match="needs checkpoints"):
        plots.loss_curves(hand_built().assign(checkpoint_epochs=[np.array([], dtype=int)] * 22))


def test_value_labels_and_log_spacing():
    assert [plots.fmt_value(v) for v in np.logspace(-1.5, 1.5, 7)] == ["0.032", "0.1", "0.32", "1", "3.2", "10", "32"]
    assert [plots.fmt_value(v) for v in (0.125, 0.5, 2.0, 1e-5, 10_000)] == ["0.125", "0.5", "2", "1.0e-5", "10000"]
    assert plots.is_geometric(np.logspace(-1.5, 1.5, 7))
    assert not plots.is_geometric([0.1, 0.3, 1.0]) and not plots.is_geometric([0.5, 2.0])


def test_a_grid_with_one_lr_and_one_loss_still_plots(small, tmp_path):
    df = load(small)
    one = df[(df["lr"] == 0.5) & (df["loss"] == "bce")]
    out = plots.plot_sweep(one, "one", tmp_path / "one.png")
    assert_png(out)
    assert list(plots.convergence_table(one)) == ["bce"]
    assert plots.convergence_table(one)["bce"].shape == (1, 2)


# --------------------------------------------------------------------------- fraction solved

def censored():
    """hand_built, with two runs whose horizon is not simply `epochs`: ("mse", 0.1, 10) seed 1 diverged
    at epoch 400 of 1000 (unsolved through its planned 1000), ("bce", 0.1, 0.1) seed 1 followed only to
    600 (censored there)."""
    df = hand_built()
    diverged = (df["loss"] == "mse") & (df["lr"] == 0.1) & (df["init_scale"] == 10.0) & (df["seed"] == 1)
    df.loc[diverged, ["diverged", "epochs_run"]] = [True, 400]
    short = (df["loss"] == "bce") & (df["lr"] == 0.1) & (df["init_scale"] == 0.1) & (df["seed"] == 1)
    df.loc[short, "epochs_run"] = 600
    return df


def events(grp):
    """(time, solved, horizon) as sweep/survival.py's docstring defines them, computed here directly."""
    first = grp["epoch_converged"].astype("Float64").astype(float).to_numpy()
    solved = ~np.isnan(first)
    horizon = np.where(grp["diverged"], grp["epochs"], grp["epochs_run"]).astype(float)
    return np.where(solved, first, horizon), solved, horizon


def test_solved_curves_are_survival_fraction_solved_of_each_group():
    from sweep import survival

    df = censored()
    lr, curves = plots.solved_curves(df, lr=0.1)
    assert lr == 0.1 and list(curves) == ["mse", "bce"]
    for loss, by_scale in curves.items():
        assert sorted(by_scale) == [0.1, 1.0, 10.0]
        for scale, (t, F) in by_scale.items():
            grp = df[(df["loss"] == loss) & (df["lr"] == 0.1) & (df["init_scale"] == scale)]
            want_t, want_F = survival.fraction_solved(*events(grp))
            np.testing.assert_array_equal(t, want_t)
            np.testing.assert_array_equal(F, want_F)
    # known values: solved at 100 and 300, both followed to 1000
    np.testing.assert_array_equal(np.vstack(curves["mse"][1.0]), [[100, 300, 1000], [0.5, 1.0, 1.0]])
    # one solved at 50; the other diverged at 400: unsolved through its planned 1000, where the curve ends
    np.testing.assert_array_equal(np.vstack(curves["mse"][10.0]), [[50, 1000], [0.5, 0.5]])
    # none solved: 0 up to the horizon
    np.testing.assert_array_equal(np.vstack(curves["mse"][0.1]), [[1000], [0.0]])
    # censored at 600, the other solved at 1000: Kaplan-Meier gives 1 there (the one run still followed)
    np.testing.assert_array_equal(np.vstack(curves["bce"][0.1]), [[600, 1000], [0.0, 1.0]])


def drawn(ax):
    """{label: (x, y)} of the lines a panel draws."""
    return {line.get_label(): (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
            for line in ax.get_lines()}


def test_the_fraction_solved_panel_draws_fraction_solved_from_epoch_0_to_the_horizon():
    df = censored()
    fig = plots.plot_sweep(df, "hand", None, lr=0.1)
    panels = fig.sweep_sections["solved"].axes
    assert len(panels) == 2 and panels[0].get_xscale() == "log"
    _, curves = plots.solved_curves(df, lr=0.1)
    for ax, loss in zip(panels, ["mse", "bce"]):
        lines = drawn(ax)
        assert sorted(lines) == sorted(plots.fmt_value(s) for s in curves[loss])
        for scale, (t, F) in curves[loss].items():
            x, y = lines[plots.fmt_value(scale)]
            # a step from 0 % at epoch 0 (drawn at x = 0.5), to F[-1] at the horizon, where the line ends
            np.testing.assert_array_equal(x, np.concatenate([[plots.ZERO_AT], t]))
            np.testing.assert_array_equal(y, 100 * np.concatenate([[0.0], F]))
    assert drawn(panels[0])["10"][0][-1] == 1000  # the diverged run's planned horizon
    labels = [t.get_text() for t in panels[0].get_xticklabels()]
    assert labels[:2] == ["0", "1"] and "1,000" in labels


# --------------------------------------------------------------------------- facets

def faceted():
    """hand_built with momentum 0 for seed 0 and 0.9 for seed 1."""
    return hand_built().assign(momentum=lambda d: np.where(d["seed"] == 0, 0.0, 0.9), hidden=4)


def grid_shape(subfig):
    spec = subfig.axes[0].get_subplotspec().get_gridspec()
    return spec.nrows, spec.ncols


def test_a_facet_gives_one_row_of_panels_per_value_and_is_no_longer_pooled():
    df = faceted()
    plain = plots.plot_sweep(df, "hand", None)
    assert "pooled over momentum" in plain._suptitle.get_text()
    assert grid_shape(plain.sweep_sections["solved"]) == (1, 2)

    fig = plots.plot_sweep(df, "hand", None, facet="momentum")
    title = fig._suptitle.get_text()
    assert "pooled" not in title and "rows: momentum" in title and "n = 1 seeds per cell" in title
    for section in ("solved", "curves"):
        sub = fig.sweep_sections[section]
        assert grid_shape(sub) == (2, 2) and len(sub.axes) == 4
        assert [ax.get_ylabel().split("\n")[0] for ax in sub.axes[::2]] == ["momentum = 0", "momentum = 0.9"]
    # the heatmaps stay one row of panels, with a group of lr rows per momentum
    heat = fig.sweep_sections["converged"].axes[:2]
    assert [t.get_text() for t in heat[0].get_yticklabels()] == ["0 | 0.1", "0 | 1", "0.9 | 0.1", "0.9 | 1"]
    cells = heat[0].images[0].get_array()  # mse: rows (momentum, lr), columns init_scale 0.1, 1, 10
    assert cells[0].tolist() == [0, 100, 100] and cells[2].tolist() == [0, 100, 0]  # lr 0.1: seed 0, seed 1
    # each facet row's panel draws fraction_solved of that row's runs
    _, want = plots.solved_curves(df[df["momentum"] == 0.9], lr=plots.best_lr(df))
    x, y = drawn(fig.sweep_sections["solved"].axes[2])["0.1"]
    np.testing.assert_array_equal(y[1:] / 100, want["mse"][0.1][1])


def test_two_facets_are_rows_by_columns():
    df = faceted().assign(hidden=lambda d: np.where(d["init_scale"] == 10.0, 8, 2))
    fig = plots.plot_sweep(df, "hand", None, facet="momentum,hidden", curves=False)
    title = fig._suptitle.get_text()
    assert "pooled" not in title and "rows: momentum, columns: hidden" in title
    assert grid_shape(fig.sweep_sections["solved"]) == (2, 4)  # (hidden 2, 8) x (mse, bce) columns
    assert [ax.get_title() for ax in fig.sweep_sections["solved"].axes[:4]] == [
        "hidden = 2, loss = MSE", "hidden = 2, loss = cross-entropy (BCE)",
        "hidden = 8, loss = MSE", "hidden = 8, loss = cross-entropy (BCE)"]
    assert len(fig.sweep_sections["converged"].axes) == 4 + 1  # four heatmaps and the colour bar
    assert "curves" not in fig.sweep_sections


def test_bad_facets_say_which_columns_can_be_used():
    df = faceted()
    assert plots.facet_columns(df, None) == () and plots.facet_columns(df, " momentum ") == ("momentum",)
    assert plots.facet_columns(df, ["momentum", "hidden"]) == ("momentum", "hidden")
    with pytest.raises(SweepError, match=r"'hiden' is not a parameter column.*varies here: momentum$"):
        plots.facet_columns(df, "hiden")
    with pytest.raises(SweepError, match="lr is already an axis of every panel"):
        plots.facet_columns(df, "lr")
    with pytest.raises(SweepError, match="'seed' is not a parameter column"):
        plots.facet_columns(df, "seed")
    with pytest.raises(SweepError, match="at most two columns"):
        plots.facet_columns(df.assign(dtype="float64", init="normal"), "momentum,hidden,dtype")
    with pytest.raises(SweepError, match="the same column twice"):
        plots.facet_columns(df, "momentum,momentum")
    with pytest.raises(SweepError, match="no parameter besides loss, lr, init_scale and seed varies"):
        plots.facet_columns(hand_built().assign(hidden=4), "hiden")


FACET_GRID = """
name = "facets"
epochs = 60
lr = 2.0
loss = "bce"
[grid]
momentum = [0.0, 0.9]
init_scale = [0.3, 3.0]
seed = [0, 1, 2]
"""


def test_cli_facet_writes_a_png_and_a_bad_column_is_one_line(tmp_path, capsys):
    import matplotlib.image

    (tmp_path / "f.toml").write_text(FACET_GRID)
    assert main(["run", str(tmp_path / "f.toml"), "--out", str(tmp_path / "res"), "--quiet"]) == 0
    res = tmp_path / "res" / "facets"
    assert main(["plot", str(res), "--facet", "momentum", "-o", str(tmp_path / "f.png"), "--dpi", "60"]) == 0
    assert_png(tmp_path / "f.png")
    image = matplotlib.image.imread(tmp_path / "f.png")  # decodes: a valid PNG
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    capsys.readouterr()
    assert main(["plot", str(res), "--facet", "momentun", "-o", str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: --facet momentun: 'momentun' is not a parameter column")
    assert err.count("\n") == 1 and err.rstrip().endswith("facet by a parameter that varies here: momentum")
    assert not (tmp_path / "bad.png").exists()


# --------------------------------------------------------------------------- colours and ticks

def rgb_distance(a, b):
    return float(np.linalg.norm(np.asarray(a[:3]) - np.asarray(b[:3])))


def test_neighbouring_init_scales_get_distinct_colours():
    scales = np.logspace(-1.5, 1.5, 7)
    colours = plots.scale_colours(scales)
    assert list(colours) == sorted(scales)
    assert min(rgb_distance(colours[a], colours[b]) for a, b in zip(scales, scales[1:])) > 0.25
    many = plots.scale_colours(range(10))
    assert min(rgb_distance(many[a], many[a + 1]) for a in range(9)) > 0.25
    # and the loss curves use them, lightly banded
    fig = plots.plot_loss_curves(hand_built(), lr=0.1)
    lines = fig.axes[0].get_lines()
    got = [mpl_rgba(line.get_color()) for line in lines]
    assert all(rgb_distance(a, b) > 0.25 for a, b in zip(got, got[1:]))
    assert all(band.get_alpha() <= 0.15 for band in fig.axes[0].collections)


def mpl_rgba(colour):
    import matplotlib.colors

    return matplotlib.colors.to_rgba(colour)


PLAIN = r"^\d{1,3}(,\d{3})*$"


def colorbar_labels(fig, label):
    fig.draw_without_rendering()
    (bar,) = [ax for ax in fig.axes if ax.get_ylabel() == label]
    return [t.get_text() for t in bar.get_yticklabels() if t.get_text()]


def test_the_epochs_colour_bar_has_plain_ticks_and_near_values_get_near_colours():
    import re

    labels = colorbar_labels(plots.plot_epochs(hand_built()), "epochs (converged runs)")
    assert len(labels) >= 3 and all(re.match(PLAIN, t) for t in labels), labels
    assert labels == ["3", "10", "30", "100", "300", "1,000"]  # medians from 2 to 1,000: 1-3 steps

    near = pd.DataFrame(dict(loss=pd.Categorical(["mse", "mse"], categories=CATEGORICAL["loss"]), lr=0.5,
                             init_scale=[1.0, 5.0], converged=True,
                             epoch_converged=pd.array([140, 153], dtype="Int64")))
    fig = plots.plot_epochs(near)
    labels = colorbar_labels(fig, "epochs (converged runs)")
    assert len(labels) >= 3 and all(re.match(PLAIN, t) for t in labels), labels
    im = fig.axes[0].images[0]
    assert im.norm.vmax / im.norm.vmin >= 10  # at least a decade: 140 and 153 are not the two ends
    assert rgb_distance(im.cmap(im.norm(140)), im.cmap(im.norm(153))) < 0.1
    assert plots.log_ticks(*plots.epochs_range([140, 153])) == [50, 100, 200, 500]
    assert [plots.fmt_number(v) for v in (50, 1000, 12_500, 1.5, 0.2)] == ["50", "1,000", "12,500", "1.5", "0.2"]


def test_cell_text_takes_the_colour_that_contrasts_more():
    assert plots._text_colour((0, 0, 0, 1)) == "white" and plots._text_colour((1, 1, 1, 1)) == "black"
    assert plots._text_colour((0.9, 0.3, 0.3, 1)) == "black"  # mid red: black reads better
    fig = plots.plot_epochs(hand_built())
    ax = fig.axes[0]
    im = ax.images[0]
    for text in ax.texts:
        x, y = text.get_position()
        v = im.get_array()[int(y), int(x)]
        if text.get_text()[0].isdigit() and not np.ma.is_masked(v):
            assert text.get_color() == plots._text_colour(im.cmap(im.norm(v)))


def test_percentages_keep_a_decimal_when_the_cells_need_one():
    whole = plots.percent_format([0, 30, 100])
    assert [whole(v) for v in (0, 30, 100)] == ["0", "30", "100"]
    half = plots.percent_format([71.5, 99.5, 100, 0])
    assert [half(v) for v in (71.5, 99.5, 100, 0, 52.5)] == ["71.5", "99.5", "100.0", "0.0", "52.5"]
    fine = plots.percent_format([99.96, 0.01, 50.0001])
    assert [fine(99.96), fine(0.01)] == [">99.9", "<0.1"]
