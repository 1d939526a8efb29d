"""Grid files: parsing, validation (one error at a time), expansion, run_id."""
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.errors import GridError
from sweep.grid import expand, load_grid, loads_grid, run_id
from sweep.params import DEFAULTS, PARAMS

ROOT = Path(__file__).resolve().parents[1]
PARAM_NAMES = [p.name for p in PARAMS]


def grid_of(text, file="grid.toml"):
    return loads_grid(textwrap.dedent(text), file)


def runs_of(text):
    return expand(grid_of(text))


def error_of(text, file="grid.toml"):
    with pytest.raises(GridError) as info:
        expand(grid_of(text, file))
    message = str(info.value)
    assert "\n" not in message and message.startswith(file)
    return message


# --------------------------------------------------------------------------- the example grid

def test_example_grid_file_expands_to_its_documented_size():
    grid = load_grid(ROOT / "grid.toml")
    runs = expand(grid)
    assert grid.name == "saturation"
    assert [a.names[0] for a in grid.axes] == ["init_scale", "loss", "lr", "seed"]
    assert len(runs) == 7 * 2 * 3 * 100
    assert list(runs.columns) == ["run_id"] + PARAM_NAMES
    np.testing.assert_allclose(sorted(runs["init_scale"].unique()), 10 ** np.linspace(-1.5, 1.5, 7))
    assert set(runs["seed"]) == set(range(100))
    assert (runs["hidden"] == 4).all() and (runs["epochs"] == 10000).all() and (runs["dataset"] == "xor").all()
    assert runs["run_id"].is_unique


def test_defaults_fill_every_parameter():
    runs = runs_of('name = "d"\n')
    assert len(runs) == 1
    row = runs.iloc[0]
    for name, default in DEFAULTS.items():
        if name in ("beta1", "beta2", "opt_eps"):  # gradient descent has none: null (sweep/grid/applies.py)
            assert np.isnan(row[name]), name
        else:
            assert row[name] == (DEFAULTS["lr"] if default is None else default), name  # layer rates resolve to lr


def test_column_dtypes():
    runs = runs_of('name = "d"\n[grid]\nseed = [1, 2]\n')
    for name in ("hidden", "epochs", "seed", "checkpoints"):
        assert runs[name].dtype == np.int64
    for name in ("lr", "bce_eps", "momentum", "init_scale", "bias_init", "margin", "tol"):
        assert runs[name].dtype == np.float64
    for name in ("early_stop", "save_weights"):
        assert runs[name].dtype == bool
    for name in ("run_id", "dataset", "loss", "init", "dtype", "criterion"):
        assert pd.api.types.is_string_dtype(runs[name])
    assert isinstance(runs.index, pd.RangeIndex)


# --------------------------------------------------------------------------- order and generators

def test_order_is_the_product_in_file_order_last_axis_fastest():
    runs = runs_of("""
        name = "o"
        [grid]
        loss = ["mse", "bce"]
        lr = [0.3, 0.1]
        seed = { range = [0, 3] }
    """)
    points = list(zip(runs["loss"], runs["lr"], runs["seed"]))
    expected = [(l, r, s) for l in ("mse", "bce") for r in (0.3, 0.1) for s in range(3)]
    assert points == expected


@pytest.mark.parametrize("spec, values", [
    ("seed = { range = [0, 5] }", [0, 1, 2, 3, 4]),
    ("seed = { range = [10, 0, -3] }", [10, 7, 4, 1]),
    ("seed = { range = [0, 5e0] }", [0, 1, 2, 3, 4]),
    ("lr = { linspace = [0.1, 0.5, 5] }", list(np.linspace(0.1, 0.5, 5))),
    ("lr = { linspace = [0.25, 1, 1] }", [0.25]),
    ("init_scale = { logspace = [-2, 1, 7] }", list(np.logspace(-2, 1, 7))),
    ("epochs = { logspace = [2, 4, 3] }", [100, 1000, 10000]),
    ("hidden = { linspace = [2, 8, 4] }", [2, 4, 6, 8]),
    ("lr = 0.5", [0.5]),
    ("loss = \"bce\"", ["bce"]),
])
def test_axis_generators(spec, values):
    runs = runs_of(f'name = "g"\n[grid]\n{spec}\n')
    column = spec.split("=")[0].strip()
    assert runs[column].tolist() == values
    if column in ("epochs", "hidden", "seed"):
        assert runs[column].dtype == np.int64


# --------------------------------------------------------------------------- run_id

def ids(text):
    return set(runs_of(text)["run_id"])


def test_run_id_matches_the_reference_function_for_every_row():
    runs = runs_of("""
        name = "r"
        momentum = 0.5
        [grid]
        loss = ["mse", "bce"]
        lr = [0.1, 1]
        seed = { range = [0, 4] }
        [[extra]]
        lr = 3.0
        init = "xavier"
    """)
    for row in runs.to_dict("records"):
        assert row.pop("run_id") == run_id(row)


def test_run_id_of_rows_read_back_with_numpy_values():
    runs = runs_of('name = "r"\nepochs = 100\ncheckpoints = [0, 50, 100]\n[grid]\nseed = [3, 4]\n')
    row = runs.iloc[1]  # numpy scalars
    params = {k: row[k] for k in PARAM_NAMES}
    assert isinstance(params["seed"], np.integer)
    params["checkpoints"] = np.asarray(params["checkpoints"])  # as a Parquet list column comes back
    assert run_id(params) == row["run_id"]


def _documented_hash(params):
    """sweep/grid/ids.py's definition, written out: the resolved parameters as sorted compact JSON, the learning
    rates as lr when the layers share one (else lr_hidden and lr_output), the parameters added since the first
    results left out at their defaults, those that do not apply at their neutral values (null: left out)."""
    import hashlib

    from sweep.grid.applies import neutral_run
    from sweep.params import HASHED_OFF_DEFAULT
    canonical = {k: v for k, v in neutral_run(dict(DEFAULTS, **params)).items()
                 if not (k in HASHED_OFF_DEFAULT and (v is None or v == DEFAULTS[k]))}
    hidden = canonical.pop("lr_hidden") or canonical["lr"]
    output = canonical.pop("lr_output") or canonical["lr"]
    if hidden == output:
        canonical["lr"] = hidden
    else:
        del canonical["lr"]
        canonical.update(lr_hidden=hidden, lr_output=output)
    canonical["dataset_sha256"] = __import__("sweep.datasets").datasets.BUILTIN["xor"].digest
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize("params", [{}, dict(activation="tanh", output="identity", bias=False, scaling="ntk",
                                              reduction="mean", bias_init="draw"),
                                    dict(lr_hidden=0.3), dict(lr=0.5, lr_hidden=0.5, lr_output=0.5),
                                    dict(lr_hidden=0.2, lr_output=0.7, activation="relu")])
def test_run_id_is_the_documented_hash(params):
    assert run_id(params) == _documented_hash(params)
    assert re.fullmatch(r"[0-9a-f]{16}", run_id(params))
    assert runs_of('name = "x"\n')["run_id"][0] == run_id({})


def test_run_ids_of_the_sigmoid_network_are_those_from_before_the_family():
    """The default run's id, as it was before activation, output, bias, scaling, reduction, lr_hidden and
    lr_output existed (tests/data/golden_rows.parquet holds more of them)."""
    assert run_id({}) == run_id(dict(activation="sigmoid", lr_hidden=0.1, lr_output=0.1))
    assert run_id({"lr": 0.5}) == run_id({"lr_hidden": 0.5, "lr_output": 0.5})
    assert run_id({"lr": 0.5}) != run_id({"lr": 0.5, "lr_output": 0.25})


def test_layer_rates_resolve_and_lr_is_null_where_they_differ():
    runs = runs_of('name = "r"\nlr = 0.5\n[grid]\nlr_hidden = [0.5, 0.1]\nlr_output = [0.5, 2.0]\n')
    assert runs["lr_hidden"].tolist() == [0.5, 0.5, 0.1, 0.1]
    assert runs["lr_output"].tolist() == [0.5, 2.0, 0.5, 2.0]
    assert runs["lr"].iloc[0] == 0.5 and runs["lr"].iloc[1:].isna().all()
    with pytest.raises(GridError, match="duplicate run"):  # the written lr no longer matters once both are given
        runs_of('name = "r"\nlr_hidden = 0.3\nlr_output = 0.4\n[grid]\nlr = [0.1, 0.2]\n')


def test_run_id_ignores_axis_order():
    a = runs_of('name = "a"\n[grid]\nlr = [0.1, 0.3]\nseed = [0, 1, 2]\n')
    b = runs_of('name = "b"\n[grid]\nseed = [2, 1, 0]\nlr = [0.3, 0.1]\n')
    assert set(a["run_id"]) == set(b["run_id"])
    assert a["run_id"].tolist() != b["run_id"].tolist()  # same runs, another order
    merged = a.merge(b, on="run_id", suffixes=("_a", "_b"))
    assert (merged["lr_a"] == merged["lr_b"]).all() and (merged["seed_a"] == merged["seed_b"]).all()


@pytest.mark.parametrize("one, other", [
    ("lr = 0.1", "lr = 1e-1"),
    ("lr = 1", "lr = 1.0"),
    ("epochs = 10000", "epochs = 1e4"),
    ("epochs = 10_000", "epochs = 10000.0"),
    ("bias_init = -0.0", "bias_init = 0"),
    ("hidden = 4", ""),  # the default written out or left out
    ("checkpoints = [0, 10, 100]", "checkpoints = [100, 0, 10, 10]"),
    ("lr = 0.1", "[grid]\nlr = [0.1]"),  # fixed or a one-value axis
    ("lr = 0.1", "[grid]\nlr = { linspace = [0.1, 0.1, 1] }"),
    ("lr = 0.5\nepochs = 20", "[[zip]]\nlr = [0.5]\nepochs = [20]"),
])
def test_run_id_ignores_how_a_value_is_written(one, other):
    assert ids(f'name = "a"\n{one}\n') == ids(f'name = "b"\n{other}\n')


def test_run_id_ignores_name_description_and_chunking():
    assert ids('name = "a"\n') == ids('name = "b"\ndescription = "x"\nchunk_size = 7\nmax_runs = 5\n')


@pytest.mark.parametrize("change", [
    "lr = 0.2", "loss = \"bce\"", "bce_eps = 0", "momentum = 0.9", "init = \"xavier\"", "init_scale = 2",
    "bias_init = 0.1", "seed = 1", "dtype = \"float32\"", "criterion = \"loss\"", "margin = 0.3", "tol = 0.1",
    "early_stop = true", "checkpoints = 5", "save_weights = true", "hidden = 5", "epochs = 10", "dataset = \"and\"",
])
def test_run_id_changes_with_every_parameter(change):
    assert ids(f'name = "a"\n{change}\n') != ids('name = "a"\n')


def test_run_id_changes_when_inline_data_changes():
    base = 'name = "d"\ndataset = "m"\n[datasets.m]\ninputs = [[0], [1]]\ntargets = [0, 1]\n'
    assert ids(base) != ids(base.replace("targets = [0, 1]", "targets = [0, 0.9]"))
    assert ids(base) != ids(base.replace("[[0], [1]]", "[[0], [2]]"))
    assert ids(base) == ids(base.replace("targets = [0, 1]", "targets = [[0], [1.0]]"))
    # the same data under another name is another dataset column value: another run
    assert ids(base) != ids(base.replace('"m"', '"n"').replace("datasets.m", "datasets.n"))


# --------------------------------------------------------------------------- zip, extra, exclude

def test_zip_varies_together_and_crosses_the_grid():
    runs = runs_of("""
        name = "z"
        [grid]
        seed = [0, 1]
        [[zip]]
        lr = [0.1, 0.3, 1.0]
        epochs = [300, 200, 100]
    """)
    assert len(runs) == 6
    assert set(zip(runs["lr"], runs["epochs"])) == {(0.1, 300), (0.3, 200), (1.0, 100)}
    assert runs["seed"].tolist() == [0, 0, 0, 1, 1, 1]  # zips come after the [grid] axes


def test_two_zips_are_two_axes():
    runs = runs_of("""
        name = "z"
        [[zip]]
        lr = [0.1, 0.3]
        epochs = [30, 20]
        [[zip]]
        loss = ["mse", "bce"]
        init_scale = [1, 0.5]
    """)
    assert len(runs) == 4
    assert set(zip(runs["loss"], runs["init_scale"])) == {("mse", 1.0), ("bce", 0.5)}


def test_extra_replaces_parameters_of_the_grid():
    runs = runs_of("""
        name = "e"
        [grid]
        loss = ["mse", "bce"]
        lr = [0.1, 0.3]
        seed = { range = [0, 10] }
        [[extra]]            # lr 3.0 for bce only, every seed
        lr = 3.0
        loss = "bce"
        [[extra]]            # one run
        lr = 10.0
        loss = "mse"
        seed = 0
        [[extra]]            # a new axis: momentum, otherwise the grid
        momentum = [0.5, 0.9]
    """)
    main = 2 * 2 * 10
    assert len(runs) == main + 10 + 1 + 2 * main
    extra0 = runs.iloc[main:main + 10]
    assert (extra0["lr"] == 3.0).all() and (extra0["loss"] == "bce").all() and extra0["seed"].tolist() == list(range(10))
    one = runs.iloc[main + 10]
    assert (one["lr"], one["loss"], one["seed"]) == (10.0, "mse", 0)
    extra2 = runs.iloc[main + 11:]
    assert extra2["momentum"].tolist()[:2] == [0.5, 0.9]  # the new axis goes last (fastest)
    assert (runs.iloc[:main]["momentum"] == 0).all()


def test_extra_replaces_a_zip_as_a_whole():
    runs = runs_of("""
        name = "e"
        [[zip]]
        lr = [0.1, 0.3]
        epochs = [30, 20]
        [[extra]]
        lr = [1.0, 3.0]
        epochs = [5, 4]
        [[extra]]
        lr = 10.0
        epochs = 2
    """)
    assert list(zip(runs["lr"], runs["epochs"])) == [(0.1, 30), (0.3, 20), (1.0, 5), (3.0, 4), (10.0, 2)]


def test_exclude_removes_matching_runs_from_grid_and_extras():
    runs = runs_of("""
        name = "x"
        [grid]
        loss = ["mse", "bce"]
        lr = [0.1, 0.3, 1.0]
        seed = [0, 1]
        [[extra]]
        lr = 3.0
        [[exclude]]
        loss = "mse"
        lr = [1.0, 3.0]
        [[exclude]]
        seed = { range = [1, 2] }
        loss = "bce"
    """)
    points = set(zip(runs["loss"], runs["lr"], runs["seed"]))
    assert ("mse", 1.0, 0) not in points and ("mse", 3.0, 1) not in points
    assert not any(l == "bce" and s == 1 for l, _, s in points)
    assert ("bce", 3.0, 0) in points and ("mse", 0.3, 1) in points
    assert len(runs) == 16 - 4 - 4  # 12 + 4 extra; 4 mse at lr 1/3; 4 bce at seed 1


def test_exclude_matches_generated_floats_to_nine_digits():
    runs = runs_of("""
        name = "x"
        [grid]
        init_scale = { logspace = [-1.5, 1.5, 3] }
        [[exclude]]
        init_scale = 0.0316227766
    """)
    np.testing.assert_allclose(runs["init_scale"], [1.0, 10 ** 1.5])


# --------------------------------------------------------------------------- checkpoints

def test_explicit_checkpoints_are_a_sorted_tuple_per_run():
    runs = runs_of('name = "c"\nepochs = 1000\ncheckpoints = [1000, 0, 10]\n')
    assert runs["checkpoints"].iloc[0] == (0, 10, 1000)
    runs = runs_of('name = "c"\nepochs = 1000\n[grid]\ncheckpoints = [[0, 10], [0, 100, 1000]]\n')
    assert runs["checkpoints"].tolist() == [(0, 10), (0, 100, 1000)]


def test_checkpoints_within_epochs_is_checked_per_run():
    # fine: the long list only goes with the long runs
    runs = runs_of("""
        name = "c"
        [[zip]]
        epochs = [100, 1000]
        checkpoints = [[0, 100], [0, 1000]]
    """)
    assert len(runs) == 2
    message = error_of("""
        name = "c"
        [grid]
        epochs = [100, 1000]
        checkpoints = [[0, 100], [0, 1000]]
    """)
    assert message == ("grid.toml: checkpoints: [0, 1000] goes beyond epochs = 100 (runs of grid); "
                       "checkpoint epochs must lie in [0, epochs]")


# --------------------------------------------------------------------------- errors, one by one

ERRORS = [
    # TOML syntax, with line and column
    ('name = "x"\n\nlr = 0.1.2\n', "grid.toml:3:9: invalid TOML: "),
    ('name = "x"\nname = "y"\n', "grid.toml:2:11: invalid TOML: cannot overwrite a value"),
    ('name = "x"\n[grid]\nlr = [0.1, 0.2\n', "grid.toml:4:1: invalid TOML: unclosed array at the end of the file"),
    # unknown keys, with suggestions
    ('nmae = "x"\n', "grid.toml: unknown top-level key 'nmae' (did you mean 'name'?)"),
    ('name = "x"\nlearning_rate = 0.1\n', "grid.toml: unknown top-level key 'learning_rate' (did you mean 'lr'?)"),
    ('name = "x"\n[grid]\nlearning_rate = [0.1]\n', "grid.toml: unknown key 'learning_rate' in [grid] (did you mean 'lr'?)"),
    ('name = "x"\n[grid]\ninit_scal = [1]\n', "grid.toml: unknown key 'init_scal' in [grid] (did you mean 'init_scale'?)"),
    ('name = "x"\n[grid]\nfoo = [1]\n', "grid.toml: unknown key 'foo' in [grid]"),
    ('name = "x"\n[grid]\nname = ["a"]\n', "grid.toml: 'name' in [grid] is not a run parameter; it belongs at the top of the file"),
    ('name = "x"\n[grids]\nlr = [1]\n', "grid.toml: unknown top-level key 'grids' (did you mean 'grid'?)"),
    ('name = "x"\n[[zip]]\nlrr = [1]\n', "grid.toml: unknown key 'lrr' in zip[0] (did you mean 'lr'?)"),
    ('name = "x"\n[[extra]]\nsed = 1\n', "grid.toml: unknown key 'sed' in extra[0] (did you mean 'seed'?)"),
    ('name = "x"\n[[exclude]]\nlos = "mse"\n', "grid.toml: unknown key 'los' in exclude[0] (did you mean 'loss'?)"),
    ('name = "x"\n[grid]\nlr = { logspac = [0, 1, 3] }\n',
     "grid.toml: grid.lr: unknown generator 'logspac' (did you mean 'logspace'?)"),
    # wrong types
    ('name = "x"\nlr = "0.1"\n', "grid.toml: lr: expected a number > 0, got '0.1'"),
    ('name = "x"\nlr = true\n', "grid.toml: lr: expected a number > 0, got true"),
    ('name = "x"\nlr = 1979-05-27\n', "grid.toml: lr: expected a number > 0, got a date (1979-05-27)"),
    ('name = "x"\nearly_stop = 1\n', "grid.toml: early_stop: expected true or false, got 1"),
    ('name = "x"\nloss = "MSE"\n', "grid.toml: loss: expected one of 'mse', 'bce', got 'MSE' (did you mean 'mse'?)"),
    ('name = "x"\nlr = [0.1, 0.3]\n', "grid.toml: lr: expected a number > 0, got [0.1, 0.3]; to sweep over values, put lr under [grid]"),
    ('name = "x"\nlr = { logspace = [0, 1, 3] }\n',
     "grid.toml: lr: expected a number > 0, got a table {logspace}; generated values belong in [grid] (put lr under [grid])"),
    ('name = 5\n', "grid.toml: name: expected a name of letters"),
    ('name = "../up"\n', "grid.toml: name: expected a name of letters"),
    ('name = "x"\ngrid = 5\n', "grid.toml: grid: expected a table [grid] of axes"),
    ('name = "x"\n[zip]\nlr = [1]\n', "grid.toml: zip: expected [[zip]] tables (an array of tables), got a table {lr}"),
    ('name = "x"\ndatasets = 3\n', "grid.toml: datasets: expected tables [datasets.NAME]"),
    # out of range
    ('name = "x"\n[grid]\nlr = [0.1, 0.2, -0.1]\n', "grid.toml: grid.lr[2]: expected a number > 0, got -0.1"),
    ('name = "x"\nlr = 0\n', "grid.toml: lr: expected a number > 0, got 0"),
    ('name = "x"\nepochs = 0\n', "grid.toml: epochs: expected an integer in [1, 1_000_000_000], got 0"),
    ('name = "x"\nepochs = 2.5\n', "grid.toml: epochs: expected an integer in [1, 1_000_000_000], got 2.5"),
    ('name = "x"\nhidden = 0\n', "grid.toml: hidden: expected an integer in [1, 256], got 0"),
    ('name = "x"\n[grid]\nhidden = [4, 257]\n', "grid.toml: grid.hidden[1]: expected an integer in [1, 256], got 257"),
    ('name = "x"\nmargin = 0\n', "grid.toml: margin: expected a number in (0, 0.5], got 0"),
    ('name = "x"\n[grid]\nmargin = [0.2, 0.6]\n', "grid.toml: grid.margin[1]: expected a number in (0, 0.5], got 0.6"),
    ('name = "x"\nmomentum = 1.0\n', "grid.toml: momentum: expected a number in [0, 1), got 1.0"),
    ('name = "x"\ntol = -1\n', "grid.toml: tol: expected a number > 0, got -1"),
    ('name = "x"\nseed = -1\n', "grid.toml: seed: expected an integer in [0, 4_294_967_295], got -1"),
    ('name = "x"\ninit_scale = 0\n', "grid.toml: init_scale: expected a number > 0, got 0"),
    ('name = "x"\ncheckpoints = [0, -1]\n', "grid.toml: checkpoints[1]: expected an epoch: an integer"),
    ('name = "x"\nmax_runs = 0\n', "grid.toml: max_runs: expected an integer in [1, 1_000_000_000], got 0"),
    ('name = "x"\nchunk_size = 0\n', "grid.toml: chunk_size: expected an integer in [1, 1_048_576], got 0"),
    ('name = "x"\nrecord = "trainability"\n', "grid.toml: record: expected a list of result columns (those of "
     "docs/results.md but run_id and the parameters), e.g. [\"trainability\", \"epoch_diverged\"]; got 'trainability'"),
    ('name = "x"\nrecord = ["trainabilty"]\n', "grid.toml: record: 'trainabilty' is not a result column (did you mean "
     "'trainability'?); the result columns are converged, epoch_converged,"),
    ('name = "x"\nrecord = ["lr"]\n', "grid.toml: record: 'lr' is a parameter: parameter columns are always stored"),
    ('name = "x"\nrecord = ["converged", "converged"]\n',
     "grid.toml: record: 'converged' is listed twice; list each column once"),
    # NaN and infinity anywhere
    ('name = "x"\nlr = nan\n', "grid.toml: lr: expected a number > 0, got nan"),
    ('name = "x"\nbias_init = -inf\n', "grid.toml: bias_init: expected a finite number or \"draw\", got -inf"),
    ('name = "x"\n[grid]\ninit_scale = [1, inf]\n', "grid.toml: grid.init_scale[1]: expected a number > 0, got inf"),
    ('name = "x"\n[grid]\ninit_scale = { linspace = [1, inf, 3] }\n',
     "grid.toml: grid.init_scale.linspace[1]: expected a finite number, got inf"),
    ('name = "x"\n[grid]\ninit_scale = { logspace = [1, 400, 3] }\n',
     "grid.toml: grid.init_scale: logspace value 3 of 3: expected a number > 0, got inf"),
    ('name = "x"\n[[exclude]]\nlr = nan\n', "grid.toml: exclude[0].lr: expected a number > 0, got nan"),
    ('name = "x"\ndataset = "m"\n[datasets.m]\ninputs = [[0, nan]]\ntargets = [0]\n',
     "grid.toml: datasets.m.inputs[0][1]: expected a finite number, got nan"),
    # empty axes and generators
    ('name = "x"\n[grid]\nlr = []\n', "grid.toml: grid.lr: empty axis; give at least one value"),
    ('name = "x"\n[grid]\nseed = { range = [5, 5] }\n', "grid.toml: grid.seed.range: [5, 5] is empty (stop is excluded)"),
    ('name = "x"\n[grid]\nseed = { range = [0, 5, 0] }\n', "grid.toml: grid.seed.range[2]: expected a step other than 0, got 0"),
    ('name = "x"\n[grid]\nseed = { range = [0] }\n', "grid.toml: grid.seed.range: expected [start, stop] or [start, stop, step]"),
    ('name = "x"\n[grid]\nseed = { range = [0, 2.5] }\n', "grid.toml: grid.seed.range[1]: expected an integer, got 2.5"),
    ('name = "x"\n[grid]\nlr = { linspace = [0.1, 1, 0] }\n',
     "grid.toml: grid.lr.linspace[2]: expected an integer >= 1 (how many values), got 0"),
    ('name = "x"\n[grid]\nlr = { linspace = [0, 1, 5] }\n',
     "grid.toml: grid.lr: linspace value 1 of 5: expected a number > 0, got 0.0"),
    ('name = "x"\n[grid]\nepochs = { logspace = [1, 3, 5] }\n',
     "grid.toml: grid.epochs: logspace value 2 of 5: expected an integer in [1, 1_000_000_000], got 31.62"),
    ('name = "x"\n[grid]\nlr = { linspace = [0.1, 1, 3], logspace = [0, 1, 3] }\n',
     "grid.toml: grid.lr: expected exactly one of range, linspace, logspace"),
    ('name = "x"\n[grid]\nloss = { range = [0, 2] }\n',
     "grid.toml: grid.loss: range value 1 of 2: expected one of 'mse', 'bce', got 0"),
    # both fixed and an axis; repeated values and runs
    ('name = "x"\nlr = 0.1\n[grid]\nlr = [0.1, 0.2]\n', "grid.toml: 'lr' is both fixed and a grid axis; keep one"),
    ('name = "x"\nlr = 0.1\n[[zip]]\nlr = [0.1]\nseed = [1]\n', "grid.toml: 'lr' is both fixed and zipped in zip[0]; keep one"),
    ('name = "x"\n[grid]\nlr = [0.1]\n[[zip]]\nlr = [0.1]\nseed = [1]\n',
     "grid.toml: 'lr' is both a grid axis and zipped in zip[0]; keep one"),
    ('name = "x"\n[[zip]]\nlr = [0.1]\n[[zip]]\nlr = [0.2]\n', "grid.toml: 'lr' is both zipped in zip[0] and zipped in zip[1]; keep one"),
    ('name = "x"\n[grid]\nlr = [0.1, 1e-1]\n', "grid.toml: grid.lr[1]: 0.1 repeats grid.lr[0]; every value of an axis must differ"),
    ('name = "x"\n[grid]\nseed = [1, 1.0]\n', "grid.toml: grid.seed[1]: 1 repeats grid.seed[0]"),
    ('name = "x"\n[[zip]]\nlr = [0.1, 0.1]\nseed = [1, 1]\n', "grid.toml: zip[0]: point 1 (lr=0.1, seed=1) repeats point 0"),
    ('name = "x"\n[grid]\nlr = [0.1, 0.2]\n[[extra]]\nlr = 0.2\n',
     "grid.toml: duplicate run (lr=0.2) from grid and extra[0]; every run must differ"),
    ('name = "x"\n[[extra]]\nlr = 0.5\n[[extra]]\nlr = 5e-1\n',
     "grid.toml: duplicate run (lr=0.5) from extra[0] and extra[1]"),
    # zips and extras
    ('name = "x"\n[[zip]]\nlr = [0.1, 0.2]\nepochs = [10]\n',
     "grid.toml: zip[0]: 'lr' has 2 values but 'epochs' has 1; zipped parameters vary together and need the same number of values"),
    ('name = "x"\n[[zip]]\nlr = 0.1\nepochs = [10]\n', "grid.toml: zip[0].lr: expected a list (or generator) of values"),
    ('name = "x"\n[[zip]]\n', "grid.toml: zip[0]: empty [[zip]]"),
    ('name = "x"\n[[extra]]\n', "grid.toml: extra[0]: empty [[extra]]"),
    ('name = "x"\n[[exclude]]\n', "grid.toml: exclude[0]: empty [[exclude]]"),
    ('name = "x"\n[[zip]]\nlr = [0.1, 0.2]\nepochs = [10, 20]\n[[extra]]\nlr = 0.3\n',
     "grid.toml: extra[0]: 'lr' is zipped with 'epochs' in zip[0]; an extra replaces a zip as a whole, so give all of 'lr', 'epochs'"),
    ('name = "x"\n[[extra]]\nlr = -1\n', "grid.toml: extra[0].lr: expected a number > 0, got -1"),
    ('name = "x"\n[[extra]]\nlr = [0.1, -1]\n', "grid.toml: extra[0].lr[1]: expected a number > 0, got -1"),
    # excludes
    ('name = "x"\n[grid]\nlr = [0.1, 0.2]\n[[exclude]]\nlr = 0.3\n', "grid.toml: exclude[0]: matches no run"),
    ('name = "x"\n[grid]\nlr = [0.1, 0.2]\n[[exclude]]\nlr = [0.1, 0.2]\n', "grid.toml: every run is excluded by [[exclude]]; nothing to run"),
    ('name = "x"\n[[exclude]]\nloss = "mae"\n', "grid.toml: exclude[0].loss: expected one of 'mse', 'bce', got 'mae' (did you mean 'mse'?)"),
    # size limit
    ('name = "x"\n[grid]\nseed = { range = [0, 30000] }\nlr = { logspace = [-3, 0, 1000] }\n',
     "grid.toml: the grid expands to 30,000,000 runs, over the limit of 20,000,000 (max_runs); split it or raise "
     "max_runs"),
    ('name = "x"\nmax_runs = 10\n[grid]\nseed = { range = [0, 5] }\n[[extra]]\nlr = [1, 2]\n',
     "grid.toml: the grid expands to 15 runs, over the limit of 10 (max_runs); split it or raise max_runs"),
    ('name = "x"\n[grid]\nseed = { range = [0, 30000000] }\n',
     "grid.toml: grid.seed.range: generates 30,000,000 values, over the limit of 20,000,000 runs (max_runs)"),
    ('name = "x"\n[grid]\nlr = { linspace = [0.1, 1, 1e12] }\n',
     "grid.toml: grid.lr.linspace: generates 1,000,000,000,000 values, over the limit"),
    # datasets
    ('name = "x"\ndataset = "xro"\n', "grid.toml: dataset: unknown dataset 'xro' (did you mean 'xor'?); expected one of 'xor', 'and'"),
    ('name = "x"\n[grid]\ndataset = ["xor", "mine"]\n', "grid.toml: grid.dataset[1]: unknown dataset 'mine'; expected one of"),
    ('name = "x"\ndataset = "m"\n[datasets.m]\ninputs = [[0, 0], [0, 1, 1]]\ntargets = [0, 1]\n',
     "grid.toml: datasets.m.inputs[1]: expected a row of 2 numbers like inputs[0] (rows must all have the same length), got 3"),
    ('name = "x"\ndataset = "m"\n[datasets.m]\ninputs = [[0], [1]]\ntargets = [[0, 1], [1, 0]]\n',
     "grid.toml: datasets.m.targets[0]: expected a number or a one-element list like [1] (the network has one output), got a list of 2"),
    ('name = "x"\ndataset = "m"\n[datasets.m]\ninputs = [[0], [1]]\ntargets = [0, 1, 1]\n',
     "grid.toml: datasets.m.targets: expected 2 targets (one per row of inputs), got 3"),
    ('name = "x"\n[datasets.xor]\ninputs = [[0]]\ntargets = [0]\n', "grid.toml: datasets.xor: 'xor' is a built-in dataset"),
    # checkpoints
    ('name = "x"\nepochs = 100\ncheckpoints = [0, 1000]\n', "grid.toml: checkpoints: [0, 1000] goes beyond epochs = 100 (runs of grid)"),
    ('name = "x"\n[grid]\ncheckpoints = [5, [0, 10]]\n',
     "grid.toml: checkpoints: a grid uses either counts or explicit epoch lists, not both (found 5 and [0, 10])"),
    # the name
    ('lr = 0.1\n', "grid.toml: missing 'name': every grid needs a name"),
]


@pytest.mark.parametrize("text, expected", ERRORS, ids=[f"{i:02d}" for i in range(len(ERRORS))])
def test_each_mistake_is_one_line_naming_file_key_and_expectation(text, expected):
    message = error_of(text)
    assert message.startswith(expected), message


def test_numbers_in_messages_are_as_written():
    message = error_of('name = "x"\n[grid]\nlr = [0.1, -1e-3]\n')
    assert message == "grid.toml: grid.lr[1]: expected a number > 0, got -0.001"


def test_missing_file_directory_and_bad_encoding(tmp_path):
    with pytest.raises(GridError) as info:
        load_grid(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: no such file"
    with pytest.raises(GridError) as info:
        load_grid(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a grid file"
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "x"\ndescription = "caf\xe9"\n')
    with pytest.raises(GridError) as info:
        load_grid(bad)
    assert str(info.value) == f"{bad}:2:19: not UTF-8 text (byte 0xe9)"


def test_load_grid_names_the_file_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("g.toml").write_text('name = "x"\nlr = -1\n')
    with pytest.raises(GridError) as info:
        load_grid("g.toml")
    assert str(info.value) == "g.toml: lr: expected a number > 0, got -1"


def test_resolved_is_plain_json_and_names_axes():
    grid = grid_of("""
        name = "j"
        hidden = 8
        checkpoints = [0, 5]
        epochs = 5
        dataset = "m"
        [datasets.m]
        inputs = [[0], [1]]
        targets = [0, 1]
        [grid]
        lr = [0.1, 0.2]
        [[zip]]
        seed = [1, 2]
        init_scale = [1, 2]
        [[extra]]
        lr = 3
        [[exclude]]
        seed = 2
        lr = 0.2
    """)
    resolved = json.loads(json.dumps(grid.resolved))
    assert resolved["name"] == "j" and resolved["hidden"] == 8 and resolved["loss"] == "mse"
    assert resolved["lr"] == {"axis": [0.1, 0.2]}
    assert resolved["seed"] == {"zip": [1, 2]} and resolved["init_scale"] == {"zip": [1.0, 2.0]}
    assert resolved["checkpoints"] == [0, 5]
    assert resolved["extra"] == [{"lr": 3.0}]
    assert resolved["exclude"] == [{"seed": [2], "lr": [0.2]}]
    assert resolved["datasets"]["m"]["targets"] == [0.0, 1.0]


@pytest.mark.parametrize("values, written", [
    ("{ range = [5, 100005, 3] }", {"range": [5, 100007, 3]}),
    ("{ range = [3000, 0, -1] }", {"range": [3000, 0, -1]}),
    ("{ range = [0, 999] }", list(range(999))),  # short: listed
    ("[" + ", ".join(str(v) for v in [*range(1500), 7000]) + "]", [*range(1500), 7000]),  # not equal steps
])
def test_the_manifest_writes_a_long_integer_axis_as_its_range(values, written):
    """A million seeds are a few bytes of the manifest, not megabytes its every reader parses; the range
    makes exactly the axis's values."""
    grid = loads_grid(f'name = "r"\n[grid]\nseed = {values}\n')
    resolved = json.loads(json.dumps(grid.resolved))
    assert resolved["seed"] == {"axis": written}
    made = list(range(*written["range"])) if isinstance(written, dict) else written
    assert made == grid.axes[0].column("seed")


def test_large_grid_expands_quickly_enough():
    import time
    start = time.perf_counter()
    runs = runs_of('name = "big"\n[grid]\nlr = { logspace = [-3, 0, 100] }\nseed = { range = [0, 1000] }\n')
    assert len(runs) == 100_000 and runs["run_id"].is_unique
    assert time.perf_counter() - start < 5.0


def test_data_that_does_not_fit_a_runs_dtype_is_a_grid_error():
    text = """
name = "big"
dataset = "big"
[grid]
dtype = ["float64", "float32"]
[datasets.big]
inputs = [[0, 1], [1, -1e39]]
targets = [0, 1]
"""
    with pytest.raises(GridError) as info:
        expand(loads_grid(text, "g.toml"))
    assert str(info.value) == ('g.toml: datasets.big.inputs[1][1]: -1e+39 does not fit in float32 (at most 3.403e+38 '
                               'in size), and runs with dtype = "float32" use this data set')
    assert len(expand(loads_grid(text.replace('["float64", "float32"]', '["float64"]'), "g.toml"))) == 1


@pytest.mark.parametrize("text, message", [
    ('name = "a"\ndataset = "r"\n[datasets.r]\ngenerator = "gaussian"\nsamples = 4\ninputs = 2\n',
     "g.toml: datasets.r: data set 'r' has targets outside [0, 1] (target 0 is -0.703735), which a sigmoid output "
     'cannot reach: set output = "identity" for its runs'),
    ('name = "a"\noutput = "identity"\n[grid]\nloss = ["mse", "bce"]\n',
     'g.toml: loss = "bce" needs output = "sigmoid" (a linear output is a regression: use loss = "mse"); runs of '
     "grid combine them"),
])
def test_outputs_that_cannot_fit_the_targets_or_the_loss_are_refused(text, message):
    with pytest.raises(GridError) as info:
        expand(loads_grid(text, "g.toml"))
    assert str(info.value) == message


def test_a_linear_output_takes_any_target_and_a_sigmoid_one_a_boolean_table():
    runs = runs_of('name = "a"\n[grid]\noutput = ["identity", "sigmoid"]\ndataset = ["xor", "r"]\n'
                   '[[exclude]]\noutput = "sigmoid"\ndataset = "r"\n'
                   '[datasets.r]\ngenerator = "teacher"\nsamples = 8\ninputs = 2\nhidden = 3\nactivation = "relu"\n')
    assert sorted(zip(runs["output"], runs["dataset"])) == [("identity", "r"), ("identity", "xor"), ("sigmoid", "xor")]


def test_a_grid_whose_runs_would_not_fit_in_memory_is_refused_with_the_reason(monkeypatch):
    from sweep.grid import parse

    assert parse.physical_memory() > 2**30  # this machine's, read from the OS
    monkeypatch.setattr(parse, "physical_memory", lambda: 2**30)
    message = error_of('name = "x"\n[grid]\nlr_hidden = { logspace = [-3, 6, 4096] }\n'
                       'lr_output = { logspace = [-3, 6, 4096] }\n')
    assert message == ("grid.toml: the grid expands to 16,777,216 runs, whose runs table alone takes about 3.1 GiB, "
                        "more than this machine's 1.0 GiB of memory; split it into several grids")


def test_every_run_id_of_a_table_is_the_documented_hash():
    """The compiled hashing of a whole table (sweep.grid.hashing) against hashlib of each run's canonical JSON:
    model switches on and off their defaults, layer rates equal and not (lr written or left out)."""
    runs = runs_of('name = "x"\n[grid]\nactivation = ["sigmoid", "tanh"]\nbias = [true, false]\n'
                   'lr_hidden = [0.1, 0.5]\nlr_output = [0.1, 0.5, 2.0]\nseed = [0, 7, 9]\n')
    assert len(runs) == 72  # hashed in compiled code (sweep.grid.ids.COMPILED_FROM)
    for row in runs.to_dict("records"):
        params = {k: row[k] for k in ("activation", "bias", "lr_hidden", "lr_output", "seed")}
        params["bias"] = bool(params["bias"])
        assert row["run_id"] == _documented_hash(params), params


def test_run_ids_of_a_long_seed_axis_are_the_documented_hash():
    """A long integer axis is written into the hashed JSON by NumPy (sweep.grid.ids._int_texts), not one
    value at a time: its ids are still hashlib's of each run's canonical JSON."""
    runs = runs_of('name = "x"\n[grid]\nseed = { range = [7, 4000000000, 1737000] }\nlr = [0.5, 2.0]\n')
    assert len(runs) == 2 * 2303  # a seed vocabulary longer than ids.PACK_FROM
    for row in runs.iloc[::97].to_dict("records"):
        assert row["run_id"] == _documented_hash({"seed": row["seed"], "lr": row["lr"]}), row


@settings(max_examples=200)
@given(st.lists(st.integers(-10**18 + 1, 10**18 - 1), min_size=1, max_size=50), st.sampled_from([b",", b""]))
def test_integers_are_written_as_python_writes_them(ints, end):
    from sweep.grid.ids import _int_texts

    data, lengths = _int_texts(b'"seed":', np.array(ints, dtype=np.int64), end)
    cuts = np.concatenate([[0], np.cumsum(lengths)])
    assert [data[a:b] for a, b in zip(cuts[:-1], cuts[1:])] == [b'"seed":' + str(i).encode() + end for i in ints]


def test_duplicate_run_ids_are_found_by_all_16_bytes():
    from sweep.grid.ids import id_order
    from sweep.grid.runs import _has_duplicates

    def has(ids):
        return _has_duplicates(ids, id_order(ids))

    rng = np.random.default_rng(1)
    for ids in (np.frombuffer(rng.bytes(16 * 10000), dtype="S16").copy(),  # any bytes
                np.array([rng.bytes(8).hex().encode() for _ in range(10000)], dtype="S16")):  # hex, as run ids are
        assert not has(ids)
        octets = ids.view(np.uint8).reshape(-1, 16)
        octets[5, :8] = octets[9, :8]  # the same first 8 bytes, different last 8: not a duplicate
        assert not has(ids)
        octets[5, :15] = octets[9, :15]
        assert not has(ids) or octets[5, 15] == octets[9, 15]
        octets[5] = octets[9]
        assert has(ids)


def test_id_order_sorts_ids_as_bytes_hex_or_not():
    from sweep.grid.ids import id_keys, id_order

    rng = np.random.default_rng(2)
    hexes = np.array([rng.bytes(8).hex().encode() for _ in range(5000)] + [b"0" * 16, b"f" * 16], dtype="S16")
    assert id_keys(hexes) is not None
    raw = np.frombuffer(rng.bytes(16 * 5000), dtype="S16")
    assert id_keys(raw) is None
    for letter in b"ghijklmnoG/:`{ \xff":  # next to the digits and letters, or spelling 16..24 by the nibble rule
        assert id_keys(np.array([b"0123456789abcdef", bytes([letter]) * 16], dtype="S16")) is None, letter
    for ids in (hexes, raw, hexes[:1], hexes[:0]):
        assert ids[id_order(ids)].tolist() == sorted(ids.tolist())
