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
    assert main(["plot", str(small), "-o", str(tmp_path / "fig.png"), "--lr", "0.5"]) == 0
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
                             epoch_converged=ep, checkpoint_epochs=np.array([0, 10, 100]),
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
