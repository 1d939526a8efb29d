"""`diagnostics = true` in a grid: the curvature columns of the parts, checked from outside against the NumPy
reference retrained from each row's stored initial weights; diagnostics never change training nor a default
run's id; `record` of diagnostics columns; the CPU-only refusals (`--backend cuda`, `train_cuda`); `sweep plan`.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sweep
from sweep.cli import main
from sweep.collect import DIAGNOSTIC_TYPES, STAT_TYPES, WEIGHT_COLUMNS
from sweep.grid import load_grid
from sweep.params import NAMES

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

# A tanh student (3-3-1, linear output) of a tanh teacher on 12 samples: with the sum reduction its sharpness
# starts near 80-90, so lr 0.02 keeps lr x sharpness under 2 mostly, 0.03 crosses it (steps above the edge, a
# loss spike that comes back down: a catapult) without blowing up. One [[extra]] per update scheme or model.
ROUND_TRIP = """
name = "rt"
dataset = "teacher"
hidden = 3
activation = "tanh"
output = "identity"
epochs = 40
checkpoints = [0, 1, 5, 20, 40]
diagnostics = true
save_weights = true
criterion = "loss"
tol = 1e-4
lr = 0.02

[grid]
seed = [0, 1]

[[extra]]                 # above the edge at first: a loss spike, then converged to the looser tol
lr = [0.03, 0.035]
tol = 0.05

[[extra]]                 # heavy ball
momentum = 0.5

[[extra]]                 # per-layer rates: lr is null
lr_hidden = 0.03
lr_output = 0.01

[[extra]]
optimizer = "nesterov"
momentum = 0.5

[[extra]]                 # adaptive: no edge, steps_above_edge null
optimizer = "adam"
lr = 0.01

[[extra]]                 # minibatches: no edge either
batch_size = 2
shuffle = true

[[extra]]
weight_decay = 0.01
decay_biases = true

[[extra]]
bias = false

[[extra]]
scaling = "ntk"
lr = 0.05

[[extra]]
reduction = "mean"
lr = 0.2

[[extra]]                 # stops early: checkpoint_sharpness NaN at the states not reached
early_stop = true
tol = 0.05

[datasets.teacher]
generator = "teacher"
samples = 12
inputs = 3
hidden = 3
activation = "tanh"
seed = 0
"""

# XOR, sigmoid: every run once with and once without diagnostics (an axis), several update schemes.
MIXED = """
name = "mixed"
hidden = 3
epochs = 60
checkpoints = 5
save_weights = true

[grid]
diagnostics = [true, false]
lr = [0.5, 4.0]
seed = [0, 1]

[[extra]]
optimizer = "nesterov"
momentum = 0.9

[[extra]]
batch_size = 1
shuffle = true

[[extra]]
optimizer = "adam"
lr = 0.1
"""

SMALL = """
name = "{name}"
hidden = 2
epochs = 20
checkpoints = 3
{fixed}
[grid]
lr = [0.5, 1.0]
seed = [0, 1]
"""


def write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(*args):
    return main(["run", *map(str, args), "--quiet"])


def parts(out):
    return sorted(Path(out).glob("part-*.parquet"))


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diagnostics")
    grid = write(tmp, ROUND_TRIP)
    assert run_cli(grid, "--out", tmp / "res") == 0
    return grid, tmp / "res" / "rt"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    grid = write(tmp, MIXED)
    assert run_cli(grid, "--out", tmp / "res") == 0
    return tmp / "res" / "mixed"


# --------------------------------------------------------------------------- the columns

def test_parts_have_every_diagnostics_column_with_its_arrow_type(round_trip):
    _, out = round_trip
    found = parts(out)
    assert len(found) >= 7  # one chunk per update scheme and model at least
    for part in found:
        schema = pq.read_schema(part)
        for name, kind in DIAGNOSTIC_TYPES.items():
            assert name in schema.names, (part.name, name)
            assert schema.field(name).type == kind, (part.name, name, schema.field(name).type)
        assert schema.field("diagnostics").type == pa.bool_()
        table = pq.read_table(part)
        assert table.column("diagnostics").to_pylist() == [True] * table.num_rows
        assert table.column("sharpness_init").null_count == 0 and table.column("catapult").null_count == 0
    df = sweep.load(out)
    assert len(df) == 2 * 13 and df["diagnostics"].all()
    assert set(DIAGNOSTIC_TYPES) <= set(df.columns)
    # The diagnostics come after the statistics and before the weights.
    names = list(pq.read_schema(found[0]).names)
    assert names.index("chunk_seconds") < names.index("sharpness_init")
    assert names.index("checkpoint_sharpness") < names.index("w1_init")


def _optional(row):
    """beta1, beta2, opt_eps of a row, where they apply (null: the optimizer does not use them)."""
    return {k: row[k] for k in ("beta1", "beta2", "opt_eps") if row[k] == row[k] and row[k] is not None}


def _reference(row, data):
    from kernels.reference import train_reference

    H, D = int(row["hidden"]), data.X.shape[1]
    bias = bool(row["bias"])
    return train_reference(
        data.X, data.Y, np.reshape(row["w1_init"], (D, H)), row["b1_init"] if bias else None, row["w2_init"],
        row["b2_init"][0] if bias else None, int(row["epochs"]), lr_hidden=row["lr_hidden"],
        lr_output=row["lr_output"], loss=str(row["loss"]), bce_eps=row["bce_eps"], momentum=row["momentum"],
        criterion=str(row["criterion"]), margin=row["margin"], tol=row["tol"], early_stop=bool(row["early_stop"]),
        checkpoints=[int(c) for c in row["checkpoint_epochs"]], activation=str(row["activation"]),
        output=str(row["output"]), bias=bias, scaling=str(row["scaling"]), reduction=str(row["reduction"]),
        optimizer=str(row["optimizer"]), weight_decay=row["weight_decay"], decay_biases=bool(row["decay_biases"]),
        batch_size=int(row["batch_size"]), shuffle=bool(row["shuffle"]), shuffle_seed=int(row["seed"]),
        diagnostics=True, **_optional(row))


def test_rows_are_the_reference_diagnostics_retrained_from_their_stored_initial_weights(round_trip):
    """From outside: each row retrained by `kernels.reference` (finite-difference Hessians) from the row's own
    initial weights and hyperparameters gives the row's diagnostics: the eigenvalues to 1e-6 relative, the
    counts and flags exactly, null where the reference has None."""
    grid, out = round_trip
    data = load_grid(grid).datasets["teacher"]
    table = pa.concat_tables([pq.read_table(p) for p in parts(out)])
    nulls = {name: table.column(name).is_null().to_pylist() for name in ("steps_above_edge", "lr")}
    df = sweep.load(out).set_index("run_id").loc[table.column("run_id").to_pylist()].reset_index()
    seen = {"steps_above_edge null": 0, "steps_above_edge > 0": 0, "catapult": 0, "lr null": 0,
            "checkpoint not reached": 0}
    for i, row in enumerate(df.to_dict("records")):
        ref = _reference(row, data)
        rid = row["run_id"]
        assert row["epochs_run"] == ref["epochs_run"] and row["converged"] == ref["converged"], rid
        np.testing.assert_allclose(row["final_loss"], ref["final_loss"], rtol=1e-9, err_msg=rid)
        for name in ("sharpness_init", "sharpness_final", "sharpness_max", "ntk_lambda0", "lr_lambda0",
                     "loss_peak_ratio"):
            assert np.isfinite(ref[name]), (rid, name)  # no run here blows up
            np.testing.assert_allclose(row[name], ref[name], rtol=1e-6, atol=1e-9, err_msg=f"{rid} {name}")
        assert row["epoch_sharpness_max"] == ref["epoch_sharpness_max"], rid
        assert bool(row["catapult"]) == ref["catapult"], rid
        if ref["steps_above_edge"] is None:
            assert nulls["steps_above_edge"][i], rid
            assert row["optimizer"] in ("adam", "adamw", "rmsprop") or row["batch_size"] > 0, rid
        else:
            assert not nulls["steps_above_edge"][i], rid
            assert row["steps_above_edge"] == ref["steps_above_edge"], rid
        got, want = np.asarray(row["checkpoint_sharpness"], float), ref["checkpoint_sharpness"]
        assert got.shape == want.shape == (len(row["checkpoint_epochs"]),), rid
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=rid)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=rid)  # NaNs compare equal
        assert np.isnan(got).tolist() == [c > row["epochs_run"] for c in row["checkpoint_epochs"]], rid
        seen["steps_above_edge null"] += nulls["steps_above_edge"][i]
        seen["steps_above_edge > 0"] += bool(ref["steps_above_edge"])
        seen["catapult"] += ref["catapult"]
        seen["lr null"] += nulls["lr"][i] and row["lr_hidden"] != row["lr_output"]
        seen["checkpoint not reached"] += bool(np.isnan(got).any())
    # the grid reaches every case it is meant to
    assert len(df) == table.num_rows == 26 and all(seen.values()), seen


# --------------------------------------------------------------------------- diagnostics never change training

def _bits(value):
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return np.asarray(value).tobytes()


def test_diagnostics_false_rows_are_null_and_training_is_bitwise_the_same(mixed):
    table = pa.concat_tables([pq.read_table(p) for p in parts(mixed)])
    assert table.num_rows == 2 * (4 + 4 + 4 + 2)  # diagnostics x (base, nesterov, minibatches: lr x seed; adam: seed)
    for name, kind in DIAGNOSTIC_TYPES.items():
        assert table.schema.field(name).type == kind, name
    df = table.to_pandas()
    on, off = df[df["diagnostics"]], df[~df["diagnostics"]]
    assert len(on) == len(off) == table.num_rows // 2
    diag = table.select(list(DIAGNOSTIC_TYPES))
    flag = table.column("diagnostics").to_pylist()
    for name in DIAGNOSTIC_TYPES:
        isnull = diag.column(name).is_null().to_pylist()
        assert all(isnull[i] for i in range(len(flag)) if not flag[i]), name
        if name != "steps_above_edge":  # null for adam and minibatches even with diagnostics
            assert not any(isnull[i] for i in range(len(flag)) if flag[i]), name
    gd_full_batch = (on["optimizer"] != "adam") & (on["batch_size"] == 0)
    assert on.loc[gd_full_batch, "steps_above_edge"].notna().all()
    assert on.loc[~gd_full_batch, "steps_above_edge"].isna().all()

    params = [n for n in NAMES if n != "diagnostics"]
    training = [c for c in STAT_TYPES if c != "chunk_seconds"] + [c for c in WEIGHT_COLUMNS if c in df]
    assert {"final_loss", "epochs_run", "w1_final", "b2_final", "checkpoint_loss"} <= set(training)

    def key(frame):  # a run's parameters but diagnostics
        return [repr(values) for values in frame[params].itertuples(index=False)]

    twins = off.assign(_key=key(off)).set_index("_key")
    assert twins.index.is_unique
    compared = 0
    for _, row in on.assign(_key=key(on)).iterrows():
        twin = twins.loc[row["_key"]]
        compared += 1
        assert twin["run_id"] != row["run_id"]
        for col in training:
            assert _bits(row[col]) == _bits(twin[col]), (row["run_id"], col)
    assert compared == len(on)


# --------------------------------------------------------------------------- run_id

def test_run_id_of_a_default_run_is_unchanged_and_diagnostics_true_is_another_run():
    from sweep.grid.ids import run_id

    base = {"dataset": "xor", "hidden": 3, "lr": 0.5, "seed": 7}
    assert run_id(base) == run_id(dict(base, diagnostics=False))
    assert run_id(dict(base, diagnostics=True)) != run_id(base)
    assert run_id({}) == run_id({"diagnostics": False}) != run_id({"diagnostics": True})
    # Rows written before the parameter existed (tests/data/golden_rows.parquet) keep their ids.
    golden = pd.read_parquet(DATA / "golden_rows.parquet")
    assert "diagnostics" not in golden.columns
    datasets = load_grid(DATA / "golden.toml").datasets
    for row in golden.to_dict("records"):
        values = {name: row[name] for name in NAMES if name in row}
        assert run_id(values, datasets) == row["run_id"]
        assert run_id(dict(values, diagnostics=False), datasets) == row["run_id"]
        assert run_id(dict(values, diagnostics=True), datasets) != row["run_id"]


def test_run_ids_of_a_grid_differ_only_by_diagnostics(tmp_path):
    from sweep.grid.runs import expand

    off = expand(load_grid(write(tmp_path, SMALL.format(name="a", fixed=""), "a.toml")))
    explicit = expand(load_grid(write(tmp_path, SMALL.format(name="a", fixed="diagnostics = false"), "b.toml")))
    on = expand(load_grid(write(tmp_path, SMALL.format(name="a", fixed="diagnostics = true"), "c.toml")))
    assert off["run_id"].tolist() == explicit["run_id"].tolist()
    assert not set(off["run_id"]) & set(on["run_id"])


# --------------------------------------------------------------------------- record

def test_record_of_a_diagnostics_column_stores_exactly_those_columns(tmp_path):
    grid = write(tmp_path, SMALL.format(name="rec", fixed='diagnostics = true\nrecord = ["sharpness_max", '
                                                          '"trainability"]'))
    assert run_cli(grid, "--out", tmp_path) == 0
    expected = ["run_id", *NAMES, "trainability", "sharpness_max"]
    found = parts(tmp_path / "rec")
    assert found
    for part in found:
        schema = pq.read_schema(part)
        assert schema.names == expected
        assert schema.field("sharpness_max").type == pa.float64()
    df = sweep.load(tmp_path / "rec")
    assert len(df) == 4 and df["sharpness_max"].notna().all() and (df["sharpness_max"] > 0).all()


def test_record_of_a_diagnostics_column_without_diagnostics_runs_is_refused(tmp_path, capsys):
    grid = write(tmp_path, SMALL.format(name="norec", fixed='record = ["sharpness_max"]'))
    capsys.readouterr()
    assert run_cli(grid, "--out", tmp_path / "res") == 2
    out, err = capsys.readouterr()
    err = err.strip()
    assert err.count("\n") == 0 and "sharpness_max" in err and "diagnostics" in err, err
    assert err.startswith(f"sweep: error: {grid}: record:"), err  # the file and the key, as other grid errors
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").rglob("*.parquet"))
    assert main(["plan", str(grid), "--no-estimate"]) == 2  # sweep plan refuses what sweep run refuses
    assert capsys.readouterr().err.strip() == err


def test_record_of_a_diagnostics_column_whose_runs_are_all_excluded_is_refused(tmp_path, capsys):
    """The runs that count are those left after [[exclude]]: excluding every diagnostics run refuses too."""
    text = SMALL.format(name="gone", fixed='record = ["final_loss", "sharpness_max"]').replace(
        "[grid]", "[grid]\ndiagnostics = [true, false]") + "\n[[exclude]]\ndiagnostics = true\n"
    grid = write(tmp_path, text)
    capsys.readouterr()
    assert run_cli(grid, "--out", tmp_path / "res") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'sharpness_max' is a diagnostics column" in err, err


def test_record_mixing_diagnostics_and_plain_runs_keeps_nulls(tmp_path):
    text = SMALL.format(name="half", fixed='record = ["final_loss", "sharpness_init"]').replace(
        "[grid]", "[grid]\ndiagnostics = [false, true]")
    assert run_cli(write(tmp_path, text), "--out", tmp_path) == 0
    df = sweep.load(tmp_path / "half")
    assert list(df.columns) == ["run_id", *NAMES, "final_loss", "sharpness_init"]
    assert df.loc[df["diagnostics"], "sharpness_init"].notna().all()
    assert df.loc[~df["diagnostics"], "sharpness_init"].isna().all()


# --------------------------------------------------------------------------- CPU only

def test_backend_cuda_refuses_diagnostics_under_the_simulator_and_writes_nothing(tmp_path):
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")
    grid = write(tmp_path, SMALL.format(name="gpu", fixed="diagnostics = true"))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    p = subprocess.run([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(tmp_path / "res"),
                        "--backend", "cuda"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    err = p.stderr.strip()
    if "numba-cuda" in err and "CPU" not in err:
        pytest.skip(f"the CUDA simulator is not usable here: {err}")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert err.count("\n") == 0 and "CPU" in err and "--backend cuda" in err, err
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").rglob("*"))
    # without diagnostics the same grid is accepted by the same backend (the refusal is about diagnostics)
    plain = write(tmp_path, SMALL.format(name="gpu", fixed="").replace("epochs = 20", "epochs = 2"), "p.toml")
    p = subprocess.run([sys.executable, "-m", "sweep", "run", str(plain), "--out", str(tmp_path / "plain"),
                        "--backend", "cuda", "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr


def test_train_cuda_refuses_diagnostics_before_needing_a_gpu():
    from kernels.cuda import DIAGNOSTICS_ON_CPU, train_cuda
    from kernels.init import initial_lanes
    from sweep.datasets import BUILTIN

    data = BUILTIN["xor"]
    W1, b1, W2, b2 = initial_lanes(np.array(["normal"] * 2, object), np.array([0, 1]), np.ones(2), np.zeros(2),
                                   2, 3, np.float64)
    before = [a.copy() for a in (W1, b1, W2, b2)]
    with pytest.raises(ValueError, match="CPU") as info:
        train_cuda(data.X, data.Y, W1, b1, W2, b2, 10, lr=0.5, diagnostics=True)
    assert str(info.value) == DIAGNOSTICS_ON_CPU
    for a, b in zip((W1, b1, W2, b2), before):
        np.testing.assert_array_equal(a, b)  # nothing trained


# --------------------------------------------------------------------------- sweep plan

def test_plan_of_a_diagnostics_grid(tmp_path, capsys):
    grid = write(tmp_path, SMALL.format(name="plan", fixed="diagnostics = true"))
    assert main(["plan", str(grid), "--no-estimate"]) == 0
    out, _ = capsys.readouterr()
    assert "runs:           4" in out and "estimate:       skipped (--no-estimate)" in out
    assert "diagnostics=true" in out
    assert main(["plan", str(grid)]) == 0
    out, _ = capsys.readouterr()
    measured = [line for line in out.splitlines() if "measured" in line]
    assert measured and all("diagnostics" in line for line in measured), out
    assert not (tmp_path / "results").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


def test_plan_calibrates_diagnostics_and_plain_chunks_apart(tmp_path, capsys):
    text = SMALL.format(name="plan2", fixed="").replace("[grid]", "[grid]\ndiagnostics = [false, true]")
    assert main(["plan", str(write(tmp_path, text))]) == 0
    measured = [line for line in capsys.readouterr().out.splitlines() if "measured" in line]
    assert len(measured) == 2 and sum("diagnostics" in line for line in measured) == 1, measured
