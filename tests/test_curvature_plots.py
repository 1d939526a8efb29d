"""The curvature figure (`sweep.curvature_plots`, `sweep plot --curvature`, `sweep.plot(..., curvature=True)`):
phases and their table, the edge of stability per group, the three panels, the errors."""
import numpy as np
import pandas as pd
import pytest

import sweep
from sweep.cli import main
from sweep.curvature_plots import PHASES, edge, phase_of, phase_table, plot_curvature
from sweep.errors import SweepError

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
CK = np.array([0, 1, 10, 100])

GRID = """
name = "{name}"
hidden = 3
epochs = 40
checkpoints = 4
{fixed}
[grid]
lr = [0.5, 2.0, 8.0]
seed = [0, 1]
"""


def runs(**columns):
    """A DataFrame of hand-made rows: gradient descent, full batch, unless told otherwise."""
    n = len(columns["lr"])
    base = {"optimizer": ["gd"] * n, "momentum": [0.0] * n, "batch_size": [0] * n, "loss": ["mse"] * n,
            "init_scale": [1.0] * n, "seed": list(range(n)), "checkpoint_epochs": [CK] * n}
    return pd.DataFrame({**base, **columns})


def hand_made():
    """Three learning rates of 4, 3 and 2 runs; one run with per-layer rates (lr null) and one without
    diagnostics (lr_lambda0 null), which the table leaves out; a catapult flag null in a run."""
    nan = np.nan
    return runs(
        lr=[0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.4, 0.4, nan, 0.1],
        converged=[True, True, False, True, True, True, False, False, True, True, True],
        catapult=[False, False, False, None, True, False, False, False, True, False, None],
        lr_lambda0=[1.0, 1.5, 1.2, 1.1, 2.4, 3.0, 2.6, 5.0, 7.0, 1.0, nan],
        ntk_lambda0=[10.0, 15.0, 12.0, 11.0, 12.0, 15.0, 13.0, 12.5, 17.5, 10.0, nan],
        sharpness_init=[10.0, 14.0, 12.0, 20.0, 11.0, 13.0, 15.0, 12.0, 16.0, 9.0, nan],
        sharpness_final=[9.0, 8.0, nan, 7.0, 9.5, 10.0, 11.0, nan, 4.0, 1.0, nan],
        checkpoint_sharpness=[np.array([10.0, 11.0, 9.0, 9.0]), np.array([14.0, 13.0, 9.0, 8.0]),
                              np.array([12.0, 13.0, 1e12, nan]), np.array([20.0, 15.0, 8.0, 7.0]),
                              np.array([11.0, 12.0, 10.0, 9.5]), np.array([13.0, 12.0, 11.0, 10.0]),
                              np.array([15.0, 14.0, 12.0, 11.0]), np.array([12.0, 1e6, nan, nan]),
                              np.array([16.0, 9.0, 5.0, 4.0]), np.array([9.0, 5.0, 2.0, 1.0]), None],
    )


# --------------------------------------------------------------------------- tables

def test_phase_of_each_run():
    df = hand_made()
    assert phase_of(df).tolist() == ["lazy", "lazy", "not converged", "lazy", "catapult", "lazy", "not converged",
                                     "not converged", "catapult", "lazy", "lazy"]
    assert phase_of(df).index.equals(df.index)
    # catapult wins over converged (a catapult is a converged run), null catapult is no catapult
    two = runs(lr=[0.1, 0.1], converged=[False, True], catapult=[pd.NA, pd.NA],
               lr_lambda0=[1.0, 1.0], sharpness_init=[1.0, 1.0], sharpness_final=[1.0, 1.0],
               checkpoint_sharpness=[CK * 1.0] * 2).astype({"catapult": "boolean"})
    assert phase_of(two).tolist() == ["not converged", "lazy"]


def test_phase_table_shares_and_medians():
    table = phase_table(hand_made())
    assert list(table.columns) == ["lr", "runs", "lr_lambda0", *PHASES, "sharpness_init", "sharpness_final"]
    assert table["lr"].tolist() == [0.1, 0.2, 0.4]
    assert table["runs"].tolist() == [4, 3, 2]
    assert table["lr_lambda0"].tolist() == pytest.approx([1.15, 2.6, 6.0], rel=1e-15)
    assert table["lazy"].tolist() == [0.75, 1 / 3, 0.0]
    assert table["catapult"].tolist() == [0.0, 1 / 3, 0.5]
    assert table["not converged"].tolist() == [0.25, 1 / 3, 0.5]
    np.testing.assert_allclose(table[list(PHASES)].sum(axis=1), 1.0, rtol=1e-15)
    assert table["sharpness_init"].tolist() == [13.0, 13.0, 14.0]
    assert table["sharpness_final"].tolist() == [8.0, 10.0, 4.0]  # NaN (diverged) left out


# --------------------------------------------------------------------------- the edge

def test_edge_of_stability_per_group():
    def group(lr=0.1, **columns):
        return runs(lr=[lr] * 3, **{k: [v] * 3 for k, v in columns.items()})

    assert edge(group()) == pytest.approx(2 / 0.1, rel=1e-15)
    assert edge(group(lr=0.4)) == pytest.approx(5.0, rel=1e-15)
    assert edge(group(momentum=0.5)) == pytest.approx((2 + 2 * 0.5) / 0.1, rel=1e-15)
    assert edge(group(momentum=0.9)) == pytest.approx(38.0, rel=1e-14)
    assert edge(group(optimizer="nesterov", momentum=0.5)) == pytest.approx((2 + 1.0) / (1 + 1.0) / 0.1, rel=1e-15)
    assert edge(group(optimizer="nesterov", momentum=0.0)) == pytest.approx(20.0, rel=1e-15)
    for adaptive in ("adam", "adamw", "rmsprop"):
        assert edge(group(optimizer=adaptive)) is None
    assert edge(group(batch_size=2)) is None
    mixed = runs(lr=[0.1] * 3, momentum=[0.0, 0.5, 0.5])
    assert edge(mixed) is None
    assert edge(runs(lr=[0.1] * 2, optimizer=["gd", "nesterov"])) is None
    assert edge(runs(lr=[0.1, 0.2])) is None  # several learning rates: no one edge
    # without the momentum and batch_size columns: no momentum, full batch
    assert edge(pd.DataFrame({"lr": [0.25, 0.25], "optimizer": ["gd", "gd"]})) == pytest.approx(8.0, rel=1e-15)


# --------------------------------------------------------------------------- the figure

def test_figure_has_three_panels_with_the_edge_and_the_phase_bars():
    from matplotlib.container import BarContainer
    from matplotlib.figure import Figure

    df = hand_made()
    fig = plot_curvature(df, "x", None)  # NaN and huge sharpness of runs that blew up: drawn, never an error
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    first, second, third = fig.axes
    dashed = [line for line in first.lines if line.get_linestyle() == "--"]
    assert sorted(float(np.unique(line.get_ydata())[0]) for line in dashed) == pytest.approx([5.0, 10.0, 20.0])
    assert all(len(np.unique(line.get_ydata())) == 1 for line in dashed)  # horizontal

    table = phase_table(df).sort_values("lr_lambda0")
    bars = {c.get_label(): c for c in second.containers if isinstance(c, BarContainer)}
    assert set(bars) == set(PHASES)
    for phase in PHASES:
        heights = [patch.get_height() for patch in bars[phase]]
        assert heights == pytest.approx(table[phase].tolist(), abs=1e-15), phase
        centres = [patch.get_x() + patch.get_width() / 2 for patch in bars[phase]]
        assert centres == pytest.approx(table["lr_lambda0"].tolist())
    # third panel: threshold / lr through every learning rate
    curve = [line for line in third.lines if line.get_linestyle() == "--"]
    assert len(curve) == 1
    assert list(curve[0].get_xdata()) == pytest.approx([0.1, 0.2, 0.4])
    assert list(curve[0].get_ydata()) == pytest.approx([20.0, 10.0, 5.0])
    first_ylim = first.get_ylim()
    assert np.isfinite(first_ylim).all() and first_ylim[1] < 1e6  # the runs that blew up leave the view


def test_figure_without_an_edge_for_adam_and_with_momentum():
    df = hand_made()
    df.loc[df["lr"] == 0.2, "optimizer"] = "adam"
    df.loc[df["lr"] == 0.4, "momentum"] = 0.5
    fig = plot_curvature(df, "x", None)
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert sorted(float(line.get_ydata()[0]) for line in dashed) == pytest.approx([3 / 0.4, 20.0])
    assert not [line for line in fig.axes[2].lines if line.get_linestyle() == "--"]  # adam: no curve


def test_figure_of_runs_that_all_diverged():
    nan = np.nan
    df = runs(lr=[1.0, 1.0, 2.0], converged=[False] * 3, catapult=[False] * 3, lr_lambda0=[30.0, 31.0, 64.0],
              ntk_lambda0=[30.0, 31.0, 32.0], sharpness_init=[30.0, 31.0, 32.0], sharpness_final=[nan] * 3,
              checkpoint_sharpness=[np.array([30.0, 1e30, nan, nan]), np.array([31.0, nan, nan, nan]),
                                    np.array([32.0, -1e20, nan, nan])])
    fig = plot_curvature(df, "x", None)
    assert len(fig.axes) == 3
    assert phase_table(df)["not converged"].tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------- errors

@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A sweep without diagnostics, and one with diagnostics = [false, true]."""
    tmp = tmp_path_factory.mktemp("curv")
    (tmp / "plain.toml").write_text(GRID.format(name="plain", fixed=""))
    (tmp / "half.toml").write_text(GRID.format(name="half", fixed="").replace("[grid]",
                                                                               "[grid]\ndiagnostics = [false, true]"))
    for name in ("plain", "half"):
        assert main(["run", str(tmp / f"{name}.toml"), "--out", str(tmp / "res"), "--quiet"]) == 0
    return tmp / "res"


def test_results_without_diagnostics_columns_are_refused_naming_diagnostics(plain, capsys):
    df = sweep.load(plain / "plain")
    assert "sharpness_init" not in df.columns
    with pytest.raises(SweepError, match="diagnostics"):
        plot_curvature(df, "plain", None)
    with pytest.raises(SweepError, match="diagnostics"):
        phase_table(df)
    capsys.readouterr()
    assert main(["plot", str(plain / "plain"), "--curvature", "-o", str(plain / "p.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "diagnostics" in err, err
    assert not (plain / "p.png").exists()


def test_results_with_null_diagnostics_are_refused_naming_diagnostics(plain, capsys):
    df = sweep.load(plain / "half")
    assert df["sharpness_init"].notna().any()
    off = df[~df["diagnostics"]]
    assert off["sharpness_init"].isna().all() and off["ntk_lambda0"].isna().all()
    with pytest.raises(SweepError, match="diagnostics = true"):
        plot_curvature(off, "half", None)
    with pytest.raises(SweepError, match="diagnostics"):
        sweep.plot(off, curvature=True)
    capsys.readouterr()
    assert main(["plot", str(plain / "half"), "--curvature", "--where", "not diagnostics",
                 "-o", str(plain / "h.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "diagnostics" in err and err.startswith("sweep: error:"), err
    assert not (plain / "h.png").exists()
    # the runs with diagnostics of the same results draw
    assert main(["plot", str(plain / "half"), "--curvature", "--where", "diagnostics", "--dpi", "30",
                 "-o", str(plain / "h.png")]) == 0
    assert (plain / "h.png").read_bytes()[:8] == PNG


def test_per_layer_rates_only_are_refused(plain):
    df = sweep.load(plain / "half")
    df = df[df["diagnostics"]].assign(lr=np.nan)
    with pytest.raises(SweepError, match="lr"):
        plot_curvature(df, "half", None)


@pytest.mark.parametrize("option", [["--facet", "hidden"], ["--lr", "0.5"], ["--no-curves"]])
def test_curvature_takes_no_facet_lr_or_no_curves(plain, capsys, option):
    capsys.readouterr()
    assert main(["plot", str(plain / "half"), "--curvature", *option, "-o", str(plain / "f.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--curvature" in err and option[0] in err, err
    assert not (plain / "f.png").exists()


# --------------------------------------------------------------------------- end to end

def test_cli_and_api_draw_the_curvature_figure_of_a_diagnostics_sweep(tmp_path, capsys):
    from matplotlib.figure import Figure

    grid = tmp_path / "g.toml"
    grid.write_text(GRID.format(name="curv", fixed="diagnostics = true"))
    assert main(["run", str(grid), "--out", str(tmp_path / "res"), "--quiet"]) == 0
    results = tmp_path / "res" / "curv"
    capsys.readouterr()
    assert main(["plot", str(results), "--curvature", "-o", str(tmp_path / "fig.png"), "--dpi", "60"]) == 0
    assert (tmp_path / "fig.png").read_bytes()[:8] == PNG
    assert "fig.png" in capsys.readouterr().err
    # the default file: beside the results directory, not the other figure's
    assert main(["plot", str(results), "--curvature", "--dpi", "30"]) == 0
    assert (tmp_path / "res" / "_curv" / "curvature.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "res" / "_curv" / "figure.png").exists()
    with pytest.raises(SweepError, match="takes no facet"):
        sweep.plot(results, curvature=True, facet="seed")
    fig = sweep.plot(results, curvature=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    df = sweep.load(results)
    assert isinstance(sweep.plot(df, curvature=True, dpi=50), Figure)
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert sorted(float(line.get_ydata()[0]) for line in dashed) == pytest.approx([2 / 8.0, 2 / 2.0, 2 / 0.5])
    table = phase_table(df)
    assert table["runs"].tolist() == [2, 2, 2]
    assert np.allclose(table[list(PHASES)].sum(axis=1), 1.0)
