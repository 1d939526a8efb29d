"""`sweep.summarize`, `format_summary` and `sweep summary`."""
import io
import json

import numpy as np
import pandas as pd
import pytest

import sweep
from sweep.cli import main
from sweep.errors import SweepError
from sweep.results import CATEGORICAL
from sweep import summary, survival
from sweep.summary import COLUMNS, axes_of, default_by, format_summary, summarize, time_to_solution, wilson_interval


# --------------------------------------------------------------------------- Wilson interval

@pytest.mark.parametrize("k, n, low, high", [
    (8, 10, 0.4902, 0.9433),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
    (50, 100, 0.4038, 0.5962),
])
def test_wilson_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert round(float(lo), 4) == low and round(float(hi), 4) == high


def test_wilson_bounds_exact_at_the_edges_and_nan_for_no_runs():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0
    lo, hi = wilson_interval(0, 0)
    assert np.isnan(lo) and np.isnan(hi)


def test_wilson_is_vectorised():
    k = np.array([8, 0, 10, 0, 3])
    n = np.array([10, 10, 10, 0, 7])
    lo, hi = wilson_interval(k, n)
    assert lo.shape == hi.shape == (5,)
    for i in range(5):
        one = wilson_interval(k[i], n[i])
        np.testing.assert_equal([lo[i], hi[i]], [float(one[0]), float(one[1])])
    ok = n > 0
    assert np.all(lo[ok] <= k[ok] / n[ok]) and np.all(k[ok] / n[ok] <= hi[ok])
    assert np.isnan(lo[3]) and np.isnan(hi[3])


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


# --------------------------------------------------------------------------- summarize on a hand-built frame

def frame():
    """Two groups: (loss=mse, init_scale=1.0) 5 runs and (bce, 3.0) 4 runs; lr constant; seed varies; 100 epochs."""
    rows = [
        # loss, init_scale, seed, converged, epoch_converged, epochs_run, diverged, outcome, final_loss, final_mse
        ("mse", 1.0, 0, True, 10, 100, False, "converged", 0.01, 0.01),
        ("mse", 1.0, 1, True, 40, 100, False, "converged", 0.03, 0.03),
        ("mse", 1.0, 2, True, 20, 100, False, "converged", 0.02, 0.02),
        ("mse", 1.0, 3, False, None, 100, False, "flat", 0.25, 0.25),
        ("mse", 1.0, 4, False, None, 100, False, "saturated", 0.5, 0.5),
        ("bce", 3.0, 0, False, None, 100, False, "improving", 0.1, 0.04),
        ("bce", 3.0, 1, False, None, 7, True, "diverged", np.nan, np.nan),  # stopped at 7: never solvable
        ("bce", 3.0, 2, False, 5, 100, False, "flat", 0.2, 0.05),  # held once, lost again: not a converged run
        ("bce", 3.0, 3, False, None, 100, False, "flat", 0.3, 0.06),
    ]
    df = pd.DataFrame(rows, columns=["loss", "init_scale", "seed", "converged", "epoch_converged", "epochs_run",
                                     "diverged", "outcome", "final_loss", "final_mse"])
    df.insert(0, "run_id", [f"{i:016x}" for i in range(len(df))])
    df.insert(1, "dataset", "xor")
    df.insert(2, "epochs", 100)
    df.insert(3, "lr", 0.5)
    for name in ("loss", "outcome"):
        df[name] = pd.Categorical(df[name], categories=CATEGORICAL[name])
    df["epoch_converged"] = df["epoch_converged"].astype("Int64")
    return df.sample(frac=1, random_state=0).reset_index(drop=True)  # order must not matter


def test_summarize_number_by_number():
    s = summarize(frame(), by=["init_scale", "loss"])
    assert list(s.columns) == COLUMNS
    assert list(s.index.names) == ["init_scale", "loss"]
    assert list(s.index) == [(1.0, "mse"), (3.0, "bce")]  # sorted
    a, b = s.loc[(1.0, "mse")], s.loc[(3.0, "bce")]

    assert a["runs"] == 5 and a["converged"] == 3 and a["rate"] == pytest.approx(0.6)
    lo, hi = wilson_interval(3, 5)
    assert a["rate_low"] == pytest.approx(lo) and a["rate_high"] == pytest.approx(hi)
    assert a["horizon"] == 100 and a["solved_at_horizon"] == pytest.approx(0.6)
    # all runs, unsolved last: 10 20 40 >100 >100; the median is the 3rd; with 5 runs no binomial rank
    # qualifies for 95%, so the interval is [0, inf)
    assert a["epochs_to_solve_median"] == 40 and not a["epochs_to_solve_censored"]
    assert a["epochs_to_solve_low"] == 0 and a["epochs_to_solve_high"] == np.inf
    # E(10) = 10 / 0.2 = 50; E(20) = (10 + 10 * 0.8) / 0.4 = 45; E(40) = (18 + 20 * 0.6) / 0.6 = 50
    assert a["restart_epochs"] == pytest.approx(45) and a["restart_cutoff"] == 20
    assert a["restart_epochs_low"] <= 45 <= a["restart_epochs_high"]
    assert (a["epochs_converged_median"], a["epochs_converged_q1"], a["epochs_converged_q3"]) == (20.0, 15.0, 30.0)
    assert a["share_converged"] == pytest.approx(0.6)
    assert a["share_flat"] == pytest.approx(0.2) and a["share_saturated"] == pytest.approx(0.2)
    assert a["share_improving"] == 0 and a["share_diverged"] == 0
    assert a["final_loss_median"] == pytest.approx(0.03) and a["final_mse_median"] == pytest.approx(0.03)

    assert b["runs"] == 4 and b["converged"] == 0 and b["rate"] == 0
    assert b["rate_low"] == 0 and b["rate_high"] == pytest.approx(wilson_interval(0, 4)[1])
    # the run solved at 5 and lost again counts as solved at 5; the diverged one as unsolved through 100
    assert b["horizon"] == 100 and b["solved_at_horizon"] == pytest.approx(0.25)
    assert np.isnan(b["epochs_to_solve_median"]) and b["epochs_to_solve_censored"]
    assert b["epochs_to_solve_high"] == np.inf
    assert b["restart_epochs"] == pytest.approx(20) and b["restart_cutoff"] == 5  # E(5) = 5 / (1/4)
    assert np.isnan(b["epochs_converged_median"]) and np.isnan(b["epochs_converged_q1"])
    assert np.isnan(b["epochs_converged_q3"])
    assert b["share_improving"] == 0.25 and b["share_diverged"] == 0.25 and b["share_flat"] == 0.5
    assert b["share_converged"] == 0 and b["share_saturated"] == 0
    assert b["final_loss_median"] == pytest.approx(0.25)  # the diverged run's NaN loss counts as +inf
    assert b["final_mse_median"] == pytest.approx(0.055)  # 0.04 0.05 0.06 inf

    shares = s[[c for c in COLUMNS if c.startswith("share_")]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    assert s["runs"].dtype == np.int64 and s["converged"].dtype == np.int64
    assert s["epochs_to_solve_censored"].dtype == bool


def test_time_to_solution_first_solve_horizon_and_divergence():
    df = frame().sort_values(["loss", "seed"]).reset_index(drop=True)  # mse 0-4, then bce 0-3
    time, solved, horizon = time_to_solution(df)
    np.testing.assert_array_equal(solved, [True, True, True, False, False, False, False, True, False])
    np.testing.assert_array_equal(time, [10, 40, 20, 100, 100, 100, 100, 5, 100])
    np.testing.assert_array_equal(horizon, [100] * 9)  # the diverged run (stopped at 7): its planned 100


def test_each_groups_time_to_solution_statistics_are_those_of_its_runs():
    """summarize's survival columns are sweep.survival's on each group's own runs, whatever the row order."""
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"loss": pd.Categorical(rng.choice(["bce", "mse"], n), categories=CATEGORICAL["loss"]),
                       "lr": rng.choice([0.1, 1.0], n), "seed": np.arange(n), "epochs": 300})
    df["epochs"] = rng.choice([100, 300], n)  # two horizons within each group: Kaplan-Meier
    first = rng.integers(0, 300, n)
    df["epoch_converged"] = pd.array(np.where(first <= df["epochs"], first, -1), dtype="Int64")
    df.loc[df["epoch_converged"] < 0, "epoch_converged"] = pd.NA
    df["converged"] = df["epoch_converged"].notna()
    df["epochs_run"] = df["epochs"]
    df["diverged"] = False
    df["outcome"] = pd.Categorical(np.where(df["converged"], "converged", "flat"), categories=CATEGORICAL["outcome"])
    df["final_loss"] = df["final_mse"] = 0.1
    s = summarize(df, by=["lr", "loss"], resamples=50)
    for (lr, loss), row in s.iterrows():
        sub = df[(df["lr"] == lr) & (df["loss"] == loss)]
        time, solved, horizon = time_to_solution(sub)
        m = survival.median_epochs(time, solved)
        assert m.method == "kaplan-meier"
        shown = [row["epochs_to_solve_median"], row["epochs_to_solve_low"], row["epochs_to_solve_high"]]
        np.testing.assert_equal(shown, [m.value, m.low, m.high])
        assert (row["restart_epochs"], row["restart_cutoff"]) == survival.restart_epochs(time, solved)
        assert (row["restart_epochs_low"], row["restart_epochs_high"]) == survival.restart_interval(
            time, solved, resamples=50)
        assert row["solved_at_horizon"] == survival.fraction_solved(time, solved)[1][-1]
        assert row["horizon"] == 300


def test_final_loss_is_not_a_median_over_two_loss_kinds():
    s = summarize(frame(), by=["lr"])
    assert np.isnan(s["final_loss_median"].iloc[0])  # MSE and cross-entropy: different scales
    assert s["final_mse_median"].iloc[0] == pytest.approx(0.05)  # comparable across losses


def test_categorical_keys_sort_in_category_order_and_only_observed_groups():
    s = summarize(frame(), by=["loss"])
    assert list(s.index) == ["mse", "bce"]  # category order, no empty group
    s = summarize(frame()[lambda d: d["loss"] == "mse"], by="loss")
    assert list(s.index) == ["mse"]


def test_default_by_is_every_varying_parameter_but_seed():
    df = frame()
    s = summarize(df)
    assert list(s.index.names) == ["loss", "init_scale"]  # column order; lr, dataset constant; seed excluded
    pd.testing.assert_frame_equal(s, summarize(df, by=["loss", "init_scale"]))
    assert sweep.summarize is summarize


def test_default_by_follows_the_grids_axis_order_when_known():
    df = frame()
    assert default_by(df, axes=["init_scale", "seed", "loss"]) == ["init_scale", "loss"]
    assert default_by(df, axes=["init_scale"]) == ["init_scale", "loss"]  # then the others, in column order
    assert list(summarize(df, axes=["init_scale", "loss"]).index.names) == ["init_scale", "loss"]


def test_nothing_to_group_by_gives_one_group():
    df = frame()
    df["loss"] = pd.Categorical(["mse"] * len(df), categories=CATEGORICAL["loss"])
    df["init_scale"] = 1.0
    s = summarize(df)
    assert list(s.index) == ["all"] and s["runs"].iloc[0] == 9 and s["converged"].iloc[0] == 3
    assert list(summarize(frame(), by=[]).index) == ["all"]


def test_bad_by_names_the_column_and_the_valid_ones():
    with pytest.raises(SweepError) as err:
        summarize(frame(), by=["init_scale", "learning_rate"])
    msg = str(err.value)
    assert "'learning_rate'" in msg and "init_scale" in msg and "lr" in msg and "loss" in msg
    assert "\n" not in msg
    with pytest.raises(SweepError, match="'final_loss'"):
        summarize(frame(), by=["final_loss"])  # a statistic, not a parameter


# --------------------------------------------------------------------------- formats

def test_table_format_is_aligned_and_human():
    text = format_summary(summarize(frame(), by=["init_scale", "loss"]), "table", width=140)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 4 and len({len(line) for line in lines[:2]}) == 1
    assert lines[0].split() == ["init_scale", "loss", "runs", "converged", "median", "epochs", "restart", "epochs",
                                "improving", "saturated", "flat", "diverged", "final", "MSE"]
    lo, hi = wilson_interval(3, 5)
    assert f"60% [{100 * lo:.0f}, {100 * hi:.0f}]" in lines[2]
    assert "40 [0, >100]" in lines[2]  # median epochs over all runs, interval [0, inf)
    assert lines[3].split()[:2] == ["3", "bce"] and " >100 " in lines[3]  # fewer than half solved by 100
    assert "45 @ 20" in lines[2] and "20 @ 5" in lines[3]  # the least E(t), at t* (restart after t* epochs)
    assert lines[2].split()[-5:] == ["0%", "20%", "20%", "0%", "0.03"]
    assert "converged" not in lines[0].split()[4:]  # the outcome share converged is the rate: not repeated


def test_wide_shows_every_column():
    s = summarize(frame(), by=["init_scale", "loss"])
    header = format_summary(s, "table", wide=True).split("\n")[0]
    for name in ("solved", "converged epochs [IQR]", "converged", "final loss", "improving", "flat", "diverged"):
        assert name in header
    assert "20 [15, 30]" in format_summary(s, "table", wide=True)  # the converged runs' median [IQR]


def test_the_table_fits_the_width_by_leaving_out_the_least_useful_columns():
    s = summarize(frame(), by=["init_scale", "loss"])
    text = format_summary(s, "table", width=60)
    lines = text.rstrip("\n").split("\n")
    assert all(len(line) <= 60 for line in lines)
    note = " ".join(lines[4:])
    assert note.startswith("(left out to fit 60 columns: final MSE, ") and "--wide" in note
    assert lines[0].split()[:4] == ["init_scale", "loss", "runs", "converged"]
    markdown = format_summary(s, "markdown", width=60)  # not read in a terminal: every default column
    assert "final MSE" in markdown and "left out" not in markdown


def test_csv_format_parses_back():
    s = summarize(frame(), by=["init_scale", "loss"])
    back = pd.read_csv(io.StringIO(format_summary(s, "csv")))
    assert list(back.columns) == ["init_scale", "loss", *COLUMNS]
    assert list(back["loss"]) == ["mse", "bce"]
    np.testing.assert_allclose(back[COLUMNS].to_numpy(float), s[COLUMNS].to_numpy(float), equal_nan=True)


def test_json_format_parses_back_to_one_object_per_group():
    s = summarize(frame(), by=["init_scale", "loss"])
    records = json.loads(format_summary(s, "json"))
    assert isinstance(records, list) and len(records) == 2
    a, b = records
    assert list(a) == ["init_scale", "loss", *COLUMNS]
    assert a["init_scale"] == 1.0 and a["loss"] == "mse" and a["runs"] == 5 and a["rate"] == pytest.approx(0.6)
    assert type(a["runs"]) is int and type(a["rate"]) is float
    assert b["epochs_converged_median"] is None  # NaN -> null
    assert a["epochs_to_solve_high"] is None  # inf -> null
    assert b["epochs_to_solve_censored"] is True


def test_markdown_format_is_a_pipe_table():
    lines = format_summary(summarize(frame(), by=["loss"]), "markdown").rstrip("\n").split("\n")
    assert len(lines) == 4
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    cells = [c.strip() for c in lines[1].strip("|").split("|")]
    assert all(set(c) <= set("-:") and "---" in c for c in cells)
    assert len(cells) == len(lines[0].strip("|").split("|"))
    assert lines[2].startswith("| mse |") and lines[3].startswith("| bce |")


def test_unknown_format():
    with pytest.raises(SweepError, match="unknown format"):
        format_summary(summarize(frame()), "xml")


# --------------------------------------------------------------------------- the command, end to end

GRID = """
name = "s"
epochs = 200
checkpoints = 4
chunk_size = 16
[grid]
init_scale = [0.3, 3.0]
loss = ["mse", "bce"]
seed = { range = [0, 8] }
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("summary")
    grid = root / "grid.toml"
    grid.write_text(GRID)
    assert main(["run", str(grid), "--out", str(root / "res"), "--quiet"]) == 0
    return root / "res" / "s"


def test_cli_summary_default_table(results, capsys):
    assert main(["summary", str(results)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.rstrip("\n").split("\n")
    assert set(lines[0].split()[:2]) == {"loss", "init_scale"}
    assert len(lines) >= 2 + 4 and all(line.startswith("(left out") or line.endswith(")") for line in lines[6:])
    groups = {tuple(sorted(line.split()[:2])) + (line.split()[2],) for line in lines[2:6]}
    assert groups == {tuple(sorted((loss, scale))) + ("8",) for loss in ("mse", "bce") for scale in ("0.3", "3")}
    assert all(len(line) <= 100 for line in lines)


def test_the_saturation_studys_table_fits_100_columns():
    """The widest default grouping of the default grid: three keys, 42 groups (made up numbers)."""
    rows = []
    for lr in (0.1, 0.3, 1.0):
        for loss in ("mse", "bce"):
            for scale in np.logspace(-1.5, 1.5, 7):
                rows.append({"lr": lr, "loss": loss, "init_scale": scale})
    keys = pd.MultiIndex.from_frame(pd.DataFrame(rows))
    s = pd.DataFrame({c: 0.5 for c in COLUMNS}, index=keys)
    s["runs"], s["converged"], s["horizon"] = 100, 50, 10000
    s["epochs_to_solve_median"], s["epochs_to_solve_low"], s["epochs_to_solve_high"] = 4869, 4383, 5357
    s["restart_epochs"], s["restart_cutoff"] = 28398.3, 9897
    s["epochs_to_solve_censored"] = False
    for o in ("improving", "saturated", "flat"):
        s[f"share_{o}"] = 0.25
    lines = format_summary(s).rstrip("\n").split("\n")
    assert max(len(line) for line in lines) <= 100
    assert lines[0].split()[:7] == ["lr", "loss", "init_scale", "runs", "converged", "median", "epochs"]
    assert lines[-1].startswith("(left out to fit 100 columns:")


def test_the_grids_axis_order_from_its_manifest(results):
    assert axes_of(results) == ["init_scale", "loss", "seed"]  # as GRID lists them (the manifest keeps them)
    df = sweep.load(results)
    assert list(summarize(df, axes=axes_of(results)).index.names) == ["init_scale", "loss"]
    df.attrs["path"] = str(results)
    assert list(summarize(df).index.names) == ["init_scale", "loss"]


def test_the_manifest_keeps_the_axis_order_of_the_grid_whatever_becomes_of_its_file(tmp_path):
    reordered = tmp_path / "g.toml"
    reordered.write_text(GRID.replace('init_scale = [0.3, 3.0]\nloss = ["mse", "bce"]',
                                      'loss = ["mse", "bce"]\ninit_scale = [0.3, 3.0]'))
    assert main(["run", str(reordered), "--out", str(tmp_path), "--quiet"]) == 0
    reordered.unlink()
    assert axes_of(tmp_path / "s") == ["loss", "init_scale", "seed"]
    assert list(summarize(sweep.load(tmp_path / "s"), axes=axes_of(tmp_path / "s")).index.names) == ["loss",
                                                                                                   "init_scale"]
    assert axes_of(tmp_path / "nowhere") is None


def test_cli_summary_by_and_formats(results, capsys):
    assert main(["summary", str(results), "--by", "init_scale", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["init_scale"] for r in records] == [0.3, 3.0] and [r["runs"] for r in records] == [16, 16]
    assert main(["summary", str(results), "--by", "loss,init_scale", "--format", "csv"]) == 0
    back = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(back) == 4 and back["runs"].sum() == 32
    expected = summarize(sweep.load(results), by=["loss", "init_scale"])
    np.testing.assert_allclose(back[COLUMNS].to_numpy(float), expected[COLUMNS].to_numpy(float), equal_nan=True)
    assert back["epochs_to_solve_censored"].dtype == bool
    assert main(["summary", str(results), "--format", "markdown"]) == 0
    assert "| --- | --- |" in capsys.readouterr().out


def test_cli_summary_where_selects_runs(results, capsys):
    assert main(["summary", str(results), "--where", "loss == 'bce' and init_scale > 1", "--by", "loss,init_scale",
                 "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["loss"], r["init_scale"], r["runs"]) for r in records] == [("bce", 3.0, 8)]
    df = sweep.load(results)
    expected = summarize(df[(df["loss"] == "bce") & (df["init_scale"] > 1)], by=["loss", "init_scale"])
    assert records[0]["rate"] == pytest.approx(float(expected["rate"].iloc[0]))


@pytest.mark.parametrize("args, needle", [
    (["MISSING"], "missing: no such directory"),
    (["RESULTS", "--by", "nope"], "cannot group by 'nope'"),
    (["RESULTS", "--where", "lr == = 1"], "--where 'lr == = 1': '=' does not compare (use '==')"),
    (["RESULTS", "--where", "nope > 1"], "unknown column 'nope'"),
    (["RESULTS", "--where", "init_scale > 100"], "selects none of the 32 runs"),
])
def test_cli_summary_errors_are_one_line(results, tmp_path, capsys, args, needle):
    args = [str(tmp_path / "missing") if a == "MISSING" else str(results) if a == "RESULTS" else a for a in args]
    assert main(["summary", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sweep: error: ") and needle in err


@pytest.mark.parametrize("command", ["summary", "status", "plot"])
def test_a_missing_directory_is_worded_alike_by_every_command(tmp_path, capsys, command):
    assert main([command, str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == (f"sweep: error: {tmp_path / 'missing'}: no such directory (a results "
                                       f"directory is OUT/NAME, written by sweep run)\n")


def test_cli_summary_bad_format_is_a_usage_error(results, capsys):
    assert main(["summary", str(results), "--format", "xml"]) == 2


def test_layer_rates_group_without_the_derived_lr_and_drawn_biases_read_draw():
    df = pd.DataFrame({"lr": [0.1, np.nan, np.nan, 0.5], "lr_hidden": [0.1, 0.1, 0.5, 0.5],
                       "lr_output": [0.1, 0.5, 0.1, 0.5], "bias_init": [0.0, np.nan, 0.0, np.nan]})
    assert summary.default_by(df, axes=[]) == ["lr_hidden", "lr_output", "bias_init"]
    assert [summary._key_text(v, "bias_init") for v in df["bias_init"]] == ["0", "draw", "0", "draw"]
    assert summary._key_text(np.nan, "lr") == "NA"


def test_default_by_leaves_out_what_the_optimizer_and_lr_determine():
    """Grouped by the axes of an optimizer grid: beta1..opt_eps (null for gd, one value for adam) and the layer
    rates that are lr add no groups and are left out; a beta1 that varies within an optimizer stays."""
    from sweep.grid import expand, loads_grid

    runs = expand(loads_grid('name = "o"\n[grid]\noptimizer = ["gd", "adam"]\nlr = [0.1, 1.0]\nseed = [0, 1]\n'))
    assert default_by(runs, axes=["optimizer", "lr", "seed"]) == ["optimizer", "lr"]
    runs = expand(loads_grid('name = "o"\n[grid]\nlr = [0.1, 1.0]\n[[zip]]\noptimizer = ["gd", "adam", "adam"]\n'
                             'beta1 = [0.9, 0.8, 0.95]\n'))
    assert default_by(runs, axes=["lr", "optimizer", "beta1"]) == ["lr", "optimizer", "beta1"]
    assert default_by(runs, axes=["lr", "optimizer"]) == ["lr", "optimizer", "beta1"]
