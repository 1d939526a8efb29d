"""The rows of a part: a stored run retrains to its stored result, and the schema is one for every part."""
import numpy as np
import pandas as pd
import pytest

import sweep
import sweep.grid
from kernels.reference import train_reference
from sweep.cli import main
from sweep.collect import STAT_COLUMNS, STAT_TYPES, WEIGHT_COLUMNS, weight_lists
from sweep.datasets import builtin_dataset

GRID = """
name = "retrain"
dataset = "{dataset}"
hidden = 3
epochs = 150
checkpoints = 0
chunk_size = 64
save_weights = true
bias_init = 0.25
[grid]
dtype = ["float64", "float32"]
loss = ["mse", "bce"]
momentum = [0.0, 0.9]
init = ["normal", "uniform", "xavier", "numpy-legacy-normal", "numpy-legacy-uniform"]
init_scale = [0.5, 2.0]
early_stop = [false, true]
seed = [0, 1]
"""


def test_weight_lists_copy_the_lanes_even_when_no_conversion_is_needed():
    lanes = [np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4), np.ones((3, 4)), np.ones((3, 4)),
             np.zeros(4)]
    out = weight_lists(*lanes)
    for array in lanes:
        array += 100  # the kernel trains the lane arrays in place
    assert out["b2"].tolist() == [[0.0]] * 4 and out["b1"].max() == 1 and out["w1"][1].tolist() == [1, 5, 9, 13, 17, 21]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Rows written by `sweep run` with save_weights, read back from Parquet."""
    tmp = tmp_path_factory.mktemp("retrain")
    grid = tmp / "g.toml"
    grid.write_text(GRID.format(dataset="xor"))
    assert main(["run", str(grid), "--out", str(tmp), "--quiet"]) == 0
    return sweep.load(tmp / "retrain")


def _retrain(row, X, Y, dtype):
    D, H = X.shape[1], int(row["hidden"])
    init = [np.asarray(row[c], np.float64) for c in ("w1_init", "b1_init", "w2_init", "b2_init")]
    return train_reference(X, Y, init[0].reshape(D, H).astype(dtype), init[1].astype(dtype),
                           init[2].astype(dtype), dtype(init[3][0]), int(row["epochs"]), lr=row["lr"],
                           loss=str(row["loss"]), bce_eps=row["bce_eps"], momentum=row["momentum"],
                           criterion=str(row["criterion"]), margin=row["margin"], tol=row["tol"],
                           early_stop=bool(row["early_stop"]))


def test_every_stored_run_retrains_from_its_initial_weights_to_its_final_weights(stored):
    """Every dtype x loss x momentum x init scheme x early stop: the *_init columns, trained again
    by the NumPy reference, give the *_final columns and the statistics of the row."""
    data = builtin_dataset("xor")
    X, Y = data.X, data.Y
    assert len(stored) == 320 and stored["w1_init"].map(len).eq(6).all()
    for _, row in stored.iterrows():
        f64 = row["dtype"] == "float64"
        ref = _retrain(row, X, Y, np.float64 if f64 else np.float32)
        where = f"run {row['run_id']} ({row['dtype']}, {row['loss']}, momentum {row['momentum']}, {row['init']})"
        assert row["epochs_run"] == ref["epochs_run"], where
        assert (pd.NA if ref["epoch_converged"] < 0 else ref["epoch_converged"]) is row["epoch_converged"] or \
            row["epoch_converged"] == ref["epoch_converged"], where
        rtol, atol = (1e-9, 1e-12) if f64 else (2e-3, 2e-4)  # float32: the kernel sums in another order
        got = np.concatenate([np.asarray(row[c]) for c in ("w1_final", "b1_final", "w2_final", "b2_final")])
        want = np.concatenate([np.ravel(ref[k]) for k in ("W1", "b1", "W2", "b2")]).astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=where)
        np.testing.assert_allclose(row["final_loss"], ref["final_loss"], rtol=rtol, atol=atol, err_msg=where)


def test_initial_and_final_weights_differ_where_training_moved_them(stored):
    moved = stored[stored["epochs_run"] > 0]
    for column in ("w1", "b1", "w2", "b2"):
        same = [np.array_equal(a, b) for a, b in zip(moved[f"{column}_init"], moved[f"{column}_final"])]
        assert not any(same), column


def test_stat_types_cover_every_documented_column():
    assert set(STAT_TYPES) | {"run_id"} == set(STAT_COLUMNS)
    assert len(WEIGHT_COLUMNS) == 8


FAMILY_GRID = """
name = "family"
hidden = 3
epochs = 60
checkpoints = 0
chunk_size = 64
save_weights = true
[grid]
dataset = ["xor", "reg"]
activation = ["sigmoid", "tanh", "relu", "identity"]
bias = [true, false]
scaling = ["standard", "ntk", "mean-field"]
reduction = ["sum", "mean"]
bias_init = [0.25, "draw"]
dtype = ["float64", "float32"]
[[zip]]
lr_hidden = [0.05, 0.2]
lr_output = [0.1, 0.1]
[[exclude]]
dataset = "reg"
output = "sigmoid"
[[extra]]
dataset = "reg"
output = "identity"
activation = ["tanh", "relu"]
momentum = 0.5
seed = [3, 4]
[datasets.reg]
generator = "teacher"
samples = 8
inputs = 3
hidden = 2
activation = "tanh"
seed = 1
"""


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("family")
    grid = tmp / "g.toml"
    grid.write_text(FAMILY_GRID)
    assert main(["run", str(grid), "--out", str(tmp), "--quiet"]) == 0
    return sweep.load(tmp / "family"), sweep.grid.load_grid(grid)


def test_every_model_of_the_family_retrains_from_its_stored_initial_weights(family):
    """Every activation x bias x scaling x reduction x bias_init x dtype x layer rates, on a boolean table
    with a sigmoid output and on teacher data with a linear output: the reference, given the row's
    parameters and *_init columns, trains to the row's *_final columns and final loss."""
    rows, grid = family
    assert set(rows["output"]) == {"sigmoid", "identity"} and rows["bias"].any() and not rows["bias"].all()
    assert (rows["dataset_sha256"] == rows["dataset"].map(lambda name: grid.datasets[name].digest)).all()
    for _, row in rows.iterrows():
        data = grid.datasets[row["dataset"]]
        dtype = np.float64 if row["dtype"] == "float64" else np.float32
        D, H = data.X.shape[1], int(row["hidden"])
        bias = bool(row["bias"])
        init = {c: (None if row[c] is None else np.asarray(row[c], np.float64))
                for c in ("w1_init", "b1_init", "w2_init", "b2_init")}
        assert (init["b1_init"] is None) == (not bias)
        ref = train_reference(
            data.X, data.Y, init["w1_init"].reshape(D, H).astype(dtype),
            init["b1_init"].astype(dtype) if bias else None, init["w2_init"].astype(dtype),
            dtype(init["b2_init"][0]) if bias else None, int(row["epochs"]),
            lr_hidden=row["lr_hidden"], lr_output=row["lr_output"], momentum=row["momentum"],
            activation=str(row["activation"]), output=str(row["output"]), bias=bias, scaling=str(row["scaling"]),
            reduction=str(row["reduction"]))
        where = f"run {row['run_id']}"
        rtol, atol = (1e-9, 1e-12) if dtype is np.float64 else (2e-3, 2e-4)
        parts = ("w1", "b1", "w2", "b2") if bias else ("w1", "w2")
        got = np.concatenate([np.asarray(row[f"{p}_final"]) for p in parts])
        want = np.concatenate([np.ravel(ref[k]).astype(np.float64)
                               for k in (("W1", "b1", "W2", "b2") if bias else ("W1", "W2"))])
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=where)
        np.testing.assert_allclose(row["final_loss"], ref["final_loss"], rtol=rtol, atol=atol, err_msg=where)
        for stat in ("accuracy", "dead_hidden_end", "sat_hidden_end"):
            assert np.isnan(ref[stat]) == pd.isna(row[stat]), (stat, where)


def test_drawn_biases_are_stored_and_scaled_while_the_weights_draw_is_shared(family):
    rows, _ = family
    drawn = rows[rows["bias"] & rows["bias_init"].isna()]
    constant = rows[rows["bias"] & (rows["bias_init"] == 0.25)]
    assert len(drawn) and len(constant)
    assert not any(np.all(np.asarray(b) == 0.25) for b in drawn["b1_init"])
    assert all(np.all(np.asarray(b) == 0.25) for b in constant["b1_init"])
    key = ["dataset", "activation", "scaling", "reduction", "dtype", "lr_hidden", "seed", "output", "momentum"]
    pairs = drawn.merge(constant, on=key, suffixes=("_d", "_c"))
    assert len(pairs) and all(np.array_equal(a, b) for a, b in zip(pairs["w1_init_d"], pairs["w1_init_c"]))


def test_a_sweep_without_biases_has_no_bias_columns(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('name = "nob"\nbias = false\nepochs = 5\nsave_weights = true\n[grid]\nseed = [0, 1]\n')
    assert main(["run", str(grid), "--out", str(tmp_path), "--quiet"]) == 0
    rows = sweep.load(tmp_path / "nob")
    assert [c for c in rows.columns if c[:2] in ("w1", "w2", "b1", "b2")] == ["w1_init", "w2_init", "w1_final",
                                                                              "w2_final"]


def test_outputs_are_kept_for_small_data_sets_only(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('name = "big"\nepochs = 3\noutput = "identity"\n[grid]\ndataset = ["small", "large"]\n'
                    '[datasets.small]\ngenerator = "gaussian"\nsamples = 64\ninputs = 2\n'
                    '[datasets.large]\ngenerator = "gaussian"\nsamples = 65\ninputs = 2\n')
    assert main(["run", str(grid), "--out", str(tmp_path), "--quiet"]) == 0
    rows = sweep.load(tmp_path / "big").set_index("dataset")
    assert len(rows.loc["small", "outputs"]) == 64 and rows.loc["large", "outputs"] is None


@pytest.mark.parametrize("grid", [
    GRID.format(dataset="xor"),
    'name = "x"\nbias_init = "draw"\ncheckpoints = [0, 5]\nepochs = 10\n[grid]\nactivation = ["tanh", "relu"]\n'
    'seed = { range = [0, 40] }\nlr = [0.5, 2.0]\n',
    'name = "x"\nhidden = 3\n[grid]\nseed = [3]\n',
])
def test_params_table_is_what_arrow_makes_of_the_runs(grid):
    """The parameter columns are built column by column (a shared value repeated by Arrow, names from their
    categories) for speed: they must be exactly pyarrow's conversion of the runs, in every chunk."""
    import pyarrow as pa

    from sweep.collect import params_table
    from sweep.plan import plan_chunks
    from sweep.runner import params_schema

    parsed = sweep.grid.loads_grid(grid)
    runs = sweep.grid.expand(parsed)
    schema = params_schema(runs)
    for chunk in plan_chunks(runs, 16):
        part = runs.iloc[chunk.rows]
        want = pa.Table.from_pandas(part.reset_index(drop=True), schema=schema, preserve_index=False)
        got = params_table(part, schema)
        assert got.schema.equals(schema, check_metadata=True)
        for name in schema.names:
            assert got.column(name).combine_chunks().equals(want.column(name).combine_chunks()), name
