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
from sweep.summary import COLUMNS, format_summary, summarize, wilson_interval


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
    """Two groups: (loss=mse, init_scale=1.0) 5 runs and (bce, 3.0) 4 runs; lr constant; seed varies."""
    rows = [
        # loss, init_scale, seed, converged, epoch_converged, outcome, final_loss
        ("mse", 1.0, 0, True, 10, "converged", 0.01),
        ("mse", 1.0, 1, True, 40, "converged", 0.03),
        ("mse", 1.0, 2, True, 20, "converged", 0.02),
        ("mse", 1.0, 3, False, None, "flat", 0.25),
        ("mse", 1.0, 4, False, None, "saturated", 0.5),
        ("bce", 3.0, 0, False, None, "improving", 0.1),
        ("bce", 3.0, 1, False, None, "diverged", np.nan),
        ("bce", 3.0, 2, False, 5, "flat", 0.2),  # held once, lost again: not a converged run
        ("bce", 3.0, 3, False, None, "flat", 0.3),
    ]
    df = pd.DataFrame(rows, columns=["loss", "init_scale", "seed", "converged", "epoch_converged", "outcome",
                                     "final_loss"])
    df.insert(0, "run_id", [f"{i:016x}" for i in range(len(df))])
    df.insert(1, "dataset", "xor")
    df.insert(2, "lr", 0.5)
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
    assert (a["epochs_median"], a["epochs_q1"], a["epochs_q3"]) == (20.0, 15.0, 30.0)
    assert a["share_converged"] == pytest.approx(0.6)
    assert a["share_flat"] == pytest.approx(0.2) and a["share_saturated"] == pytest.approx(0.2)
    assert a["share_improving"] == 0 and a["share_diverged"] == 0
    assert a["final_loss_median"] == pytest.approx(0.03)

    assert b["runs"] == 4 and b["converged"] == 0 and b["rate"] == 0
    assert b["rate_low"] == 0 and b["rate_high"] == pytest.approx(wilson_interval(0, 4)[1])
    assert np.isnan(b["epochs_median"]) and np.isnan(b["epochs_q1"]) and np.isnan(b["epochs_q3"])
    assert b["share_improving"] == 0.25 and b["share_diverged"] == 0.25 and b["share_flat"] == 0.5
    assert b["share_converged"] == 0 and b["share_saturated"] == 0
    assert b["final_loss_median"] == pytest.approx(0.25)  # the diverged run's NaN loss counts as +inf

    shares = s[[c for c in COLUMNS if c.startswith("share_")]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    assert s["runs"].dtype == np.int64 and s["converged"].dtype == np.int64


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
    text = format_summary(summarize(frame(), by=["init_scale", "loss"]), "table")
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 4 and len({len(line) for line in lines[:2]}) == 1
    assert "init_scale" in lines[0] and "loss" in lines[0]
    lo, hi = wilson_interval(3, 5)
    assert f"60.0% [{100 * lo:.1f}, {100 * hi:.1f}]" in lines[2]
    assert "20 [15, 30]" in lines[2]
    assert lines[3].split()[:2] == ["3", "bce"]


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
    assert b["epochs_median"] is None  # NaN -> null


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
    assert lines[0].split()[:2] == ["loss", "init_scale"]
    assert len(lines) == 2 + 4
    groups = {tuple(line.split()[:3]) for line in lines[2:]}
    assert groups == {(loss, scale, "8") for loss in ("mse", "bce") for scale in ("0.3", "3")}


def test_cli_summary_by_and_formats(results, capsys):
    assert main(["summary", str(results), "--by", "init_scale", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["init_scale"] for r in records] == [0.3, 3.0] and [r["runs"] for r in records] == [16, 16]
    assert main(["summary", str(results), "--by", "loss,init_scale", "--format", "csv"]) == 0
    back = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(back) == 4 and back["runs"].sum() == 32
    expected = summarize(sweep.load(results), by=["loss", "init_scale"])
    np.testing.assert_allclose(back[COLUMNS].to_numpy(float), expected[COLUMNS].to_numpy(float), equal_nan=True)
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
