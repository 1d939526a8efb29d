"""Generated datasets: [datasets.NAME] tables with a `generator`."""
import json

import numpy as np
import pytest

from sweep.datasets import (BUILTIN, GENERATORS, MAX_HIDDEN, MAX_INPUTS, MAX_SAMPLES, _exp, dataset_arrays,
                            from_manifest_entry, generate, manifest_entry, parse_inline)
from sweep.errors import GridError
from sweep.grid import loads_grid

GAUSSIAN = {"generator": "gaussian", "samples": 272, "inputs": 16, "seed": 0, "input_std": 1.0}
TEACHER = {"generator": "teacher", "samples": 64, "inputs": 4, "hidden": 8, "activation": "tanh", "seed": 0,
           "noise": 0.0}
PARITY = {"generator": "parity", "inputs": 5}
BOOLEAN = {"generator": "boolean", "inputs": 4, "seed": 0}
TABLES = [GAUSSIAN, TEACHER, PARITY, BOOLEAN]
IDS = [t["generator"] for t in TABLES]


def gen(table, name="g"):
    return parse_inline(name, dict(table))


def rng(seed):
    return np.random.Generator(np.random.PCG64(seed))


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- determinism and identity

@pytest.mark.parametrize("table", TABLES, ids=IDS)
def test_the_same_table_gives_the_same_bits(table):
    a, b = gen(table), gen(dict(reversed(list(table.items()))), name="other")
    assert same_bits(a.X, b.X) and same_bits(a.Y, b.Y)
    assert a.digest == b.digest
    assert a.X.dtype == a.Y.dtype == np.float64
    assert not a.X.flags.writeable and not a.Y.flags.writeable
    assert not a.builtin and a.generated and a.spec == table


# Pinned: a change here changes the run ids of every run on these data sets (a NumPy stream change, or a
# change of a generator) and must be deliberate.
@pytest.mark.parametrize("table, digest", [
    (GAUSSIAN, "43bd9dded1bd9ede"),
    (TEACHER, "5eaf5250db5607ff"),
    (dict(TEACHER, activation="sigmoid", seed=3, noise=0.1), "47ec4e1df927f6ef"),
    (PARITY, "77b250c2d8b5569d"),
    (BOOLEAN, "af9fe4653349443f"),
])
def test_pinned_digests(table, digest):
    assert gen(table).digest == digest


@pytest.mark.parametrize("table", [GAUSSIAN, TEACHER, BOOLEAN], ids=["gaussian", "teacher", "boolean"])
def test_another_seed_is_another_dataset(table):
    assert gen(table).digest != gen(dict(table, seed=1)).digest


@pytest.mark.parametrize("table, changes", [
    (GAUSSIAN, [{"samples": 271}, {"inputs": 15}]),
    (TEACHER, [{"hidden": 9}, {"activation": "relu"}, {"noise": 0.01}, {"samples": 65}]),
    (PARITY, [{"inputs": 4}]),
])
def test_any_change_of_the_table_is_another_dataset(table, changes):
    digests = {gen(table).digest} | {gen(dict(table, **c)).digest for c in changes}
    assert len(digests) == 1 + len(changes)


def test_spec_is_canonical_defaults_filled_integral_floats_accepted():
    ds = gen({"generator": "teacher", "samples": 64.0, "inputs": 4, "hidden": 8, "activation": "tanh"})
    assert ds.spec == TEACHER
    assert type(ds.spec["samples"]) is int and type(ds.spec["noise"]) is float
    assert list(ds.spec) == ["generator", "samples", "inputs", "hidden", "activation", "seed", "noise"]
    assert gen({"generator": "gaussian", "samples": 272, "inputs": 16}).spec == GAUSSIAN
    assert gen({"generator": "boolean", "inputs": 4}).spec == BOOLEAN
    assert gen(dict(TEACHER, noise=0)).digest == gen(TEACHER).digest
    np.testing.assert_array_equal(generate(TEACHER)[1], gen(TEACHER).Y)


# --------------------------------------------------------------------------- what each generator draws

def test_gaussian_is_x_then_y_from_pcg64():
    ds = gen(GAUSSIAN)
    assert ds.X.shape == (272, 16) and ds.Y.shape == (272,)
    r = rng(0)
    X = r.standard_normal((272, 16))
    Y = r.standard_normal(272)
    assert same_bits(ds.X, X) and same_bits(ds.Y, Y)


def test_gaussian_input_std_scales_the_inputs_only():
    """input_std = sqrt(2) stands in for the sqrt(2) gain of Sohl-Dickstein's tanh units: the same draws,
    inputs times the factor (rounded once), targets unchanged, and another data set (another digest)."""
    scaled = gen(dict(GAUSSIAN, input_std=2 ** 0.5))
    plain = gen(GAUSSIAN)
    assert same_bits(scaled.X, plain.X * 2 ** 0.5) and same_bits(scaled.Y, plain.Y)
    assert scaled.digest != plain.digest


def test_gaussian_statistics_of_a_large_draw():
    ds = gen({"generator": "gaussian", "samples": MAX_SAMPLES, "inputs": MAX_INPUTS, "seed": 7})
    assert ds.X.shape == (MAX_SAMPLES, MAX_INPUTS)
    assert abs(ds.X.mean()) < 0.02 and abs(ds.X.std() - 1) < 0.02  # 65536 draws: sd of the mean 0.004
    assert abs(ds.Y.mean()) < 0.15 and abs(ds.Y.std() - 1) < 0.1
    assert abs(np.corrcoef(ds.X[:, 0], ds.X[:, 1])[0, 1]) < 0.15
    assert not ds.unit_targets and not ds.binary_targets


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
def test_parity_is_every_pattern_in_counting_order_with_odd_parity(n):
    ds = gen({"generator": "parity", "inputs": n})
    assert ds.X.shape == (2**n, n) and ds.Y.shape == (2**n,)
    for i in range(2**n):
        bits = format(i, f"0{n}b")  # first input most significant
        assert ds.X[i].tolist() == [float(b) for b in bits]
        assert ds.Y[i] == bits.count("1") % 2
    assert ds.binary_targets and ds.unit_targets


def test_parity_of_three_inputs_is_the_builtin_parity3():
    ds = gen({"generator": "parity", "inputs": 3})
    assert ds.digest == BUILTIN["parity3"].digest
    assert same_bits(ds.X, BUILTIN["parity3"].X) and same_bits(ds.Y, BUILTIN["parity3"].Y)


def test_boolean_is_every_pattern_with_targets_drawn_from_the_seed():
    ds = gen(BOOLEAN)
    parity = gen({"generator": "parity", "inputs": 4})
    assert same_bits(ds.X, parity.X)
    np.testing.assert_array_equal(ds.Y, rng(0).integers(0, 2, size=16))
    assert ds.binary_targets and set(ds.Y.tolist()) <= {0.0, 1.0}
    big = gen({"generator": "boolean", "inputs": 10, "seed": 5})
    assert big.X.shape == (1024, 10) and big.binary_targets
    assert 400 < big.Y.sum() < 624  # both classes, about half each
    tables = {gen({"generator": "boolean", "inputs": 3, "seed": s}).Y.tobytes() for s in range(20)}
    assert len(tables) > 10


def teacher_by_numpy(table):
    """The documented teacher, computed independently with BLAS and NumPy's own activations."""
    n, d, h = table["samples"], table["inputs"], table["hidden"]
    r = rng(table.get("seed", 0))
    X = r.standard_normal((n, d))
    W1 = r.standard_normal((d, h)) / np.sqrt(d)
    W2 = r.standard_normal(h) / np.sqrt(h)
    E = r.standard_normal(n)
    act = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0),
           "identity": lambda z: z}[table["activation"]]
    return X, act(X @ W1) @ W2 + table.get("noise", 0.0) * E, E


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_teacher_targets_are_the_documented_network(activation, noise):
    table = dict(TEACHER, samples=50, inputs=7, hidden=13, activation=activation, seed=11, noise=noise)
    ds = gen(table)
    X, Y, _ = teacher_by_numpy(table)
    assert same_bits(ds.X, X)
    np.testing.assert_allclose(ds.Y, Y, rtol=1e-13, atol=1e-14)
    assert ds.Y.shape == (50,) and np.all(np.isfinite(ds.Y))


def test_teacher_inputs_are_the_gaussian_inputs_of_the_same_seed():
    t = gen(dict(TEACHER, samples=30, inputs=5, seed=4))
    g = gen({"generator": "gaussian", "samples": 30, "inputs": 5, "seed": 4})
    assert same_bits(t.X, g.X)


def test_noise_adds_noise_times_the_last_draw_to_the_same_teacher():
    clean = gen(TEACHER)
    noisy = gen(dict(TEACHER, noise=0.5))
    _, _, E = teacher_by_numpy(TEACHER)
    assert same_bits(clean.X, noisy.X)
    assert not np.array_equal(clean.Y, noisy.Y) and clean.digest != noisy.digest
    np.testing.assert_allclose(noisy.Y - clean.Y, 0.5 * E, rtol=0, atol=1e-14)


def test_teacher_at_the_limits():
    ds = gen(dict(TEACHER, samples=MAX_SAMPLES, inputs=MAX_INPUTS, hidden=MAX_HIDDEN, activation="sigmoid"))
    X, Y, _ = teacher_by_numpy(dict(TEACHER, samples=MAX_SAMPLES, inputs=MAX_INPUTS, hidden=MAX_HIDDEN,
                                    activation="sigmoid"))
    np.testing.assert_allclose(ds.Y, Y, rtol=1e-12, atol=1e-13)
    assert 0.1 < ds.Y.std() < 1.0  # the 1/sqrt(fan-in) scales keep targets of order 1


def test_deterministic_exp_is_within_an_ulp_or_so_of_numpy_and_saturates():
    x = np.concatenate([np.linspace(-30, 30, 10001), rng(0).standard_normal(10000) * 100])
    rel = np.abs(_exp(x) - np.exp(x)) / np.exp(x)
    assert rel.max() < 4.5e-16
    assert _exp(np.array([1000.0]))[0] == np.inf and _exp(np.array([-1000.0]))[0] == 0.0
    assert _exp(np.array([0.0]))[0] == 1.0


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("table, key, message", [
    ({"generator": "gausian", "samples": 4, "inputs": 2}, "generator",
     "unknown generator 'gausian' (did you mean 'gaussian'?); expected one of 'gaussian', 'teacher', 'parity', "
     "'boolean'"),
    ({"generator": "Parity", "inputs": 2}, "generator", "unknown generator 'Parity' (did you mean 'parity'?)"),
    ({"generator": 3, "inputs": 2}, "generator", "unknown generator 3; expected one of"),
    ({"generator": "gaussian", "samples": 4, "inputs": 2, "targets": [0] * 4}, "targets",
     "a generated dataset draws its own targets: remove 'targets'"),
    ({"generator": "gaussian", "samples": 2, "inputs": [[0], [1]]}, "inputs",
     "expected the number of inputs, an integer in [1, 64], got a list; inline rows of inputs go without "
     "'generator'"),
    ({"generator": "gaussian", "sample": 4, "inputs": 2}, None,
     "unknown key 'sample' (did you mean 'samples'?); a gaussian dataset has 'generator', 'samples', 'inputs', "
     "'seed' and 'input_std'"),
    ({"generator": "gaussian", "samples": 4, "inputs": 2, "noise": 0.1}, None,
     "unknown key 'noise'; a gaussian dataset has"),
    ({"generator": "parity", "inputs": 2, "seed": 1}, None,
     "unknown key 'seed'; a parity dataset has 'generator' and 'inputs'"),
    ({"generator": "parity", "inputs": 2, "samples": 4}, None, "unknown key 'samples'"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3, "activation": "tanh", "act": "relu"}, None,
     "unknown key 'act' (did you mean 'activation'?)"),
    ({"generator": "gaussian", "inputs": 2}, None,
     "missing 'samples': a gaussian dataset needs 'samples' (an integer in [1, 1024]), 'inputs' "
     "(an integer in [1, 64])"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "activation": "tanh"}, None,
     "missing 'hidden': a teacher dataset needs 'samples'"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3}, None, "missing 'activation'"),
    ({"generator": "parity"}, None, "missing 'inputs': a parity dataset needs 'inputs' (an integer in [1, 10])"),
    ({"generator": "gaussian", "samples": 0, "inputs": 2}, "samples", "expected an integer in [1, 1024], got 0"),
    ({"generator": "gaussian", "samples": 1025, "inputs": 2}, "samples", "expected an integer in [1, 1024], got 1025"),
    ({"generator": "gaussian", "samples": 2.5, "inputs": 2}, "samples", "expected an integer in [1, 1024], got 2.5"),
    ({"generator": "gaussian", "samples": "4", "inputs": 2}, "samples", "expected an integer in [1, 1024], got '4'"),
    ({"generator": "gaussian", "samples": True, "inputs": 2}, "samples", "expected an integer in [1, 1024], got true"),
    ({"generator": "gaussian", "samples": 4, "inputs": 65}, "inputs", "expected an integer in [1, 64], got 65"),
    ({"generator": "gaussian", "samples": 4, "inputs": 0}, "inputs", "expected an integer in [1, 64], got 0"),
    ({"generator": "gaussian", "samples": 4, "inputs": 2, "seed": -1}, "seed",
     "expected an integer in [0, 4_294_967_295], got -1"),
    ({"generator": "gaussian", "samples": 4, "inputs": 2, "seed": 2**32}, "seed", "got 4294967296"),
    ({"generator": "gaussian", "samples": 4, "inputs": 2, "seed": float("nan")}, "seed", "got nan"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 0, "activation": "tanh"}, "hidden",
     "expected an integer in [1, 256], got 0"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 257, "activation": "tanh"}, "hidden",
     "expected an integer in [1, 256], got 257"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3, "activation": "Tanh"}, "activation",
     "expected one of 'sigmoid', 'tanh', 'relu', 'identity', got 'Tanh' (did you mean 'tanh'?)"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3, "activation": 1}, "activation",
     "expected one of 'sigmoid', 'tanh', 'relu', 'identity', got 1"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3, "activation": "tanh", "noise": -0.1},
     "noise", "expected a finite number >= 0, got -0.1"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3, "activation": "tanh",
      "noise": float("inf")}, "noise", "expected a finite number >= 0, got inf"),
    ({"generator": "teacher", "samples": 4, "inputs": 2, "hidden": 3, "activation": "tanh", "noise": "0"},
     "noise", "expected a finite number >= 0, got '0'"),
    ({"generator": "parity", "inputs": 11}, "inputs",
     "expected an integer in [1, 10] (all 2**inputs patterns, at most 1024 samples), got 11"),
    ({"generator": "boolean", "inputs": 0}, "inputs", "expected an integer in [1, 10]"),
    ({"samples": 4, "inputs": 2}, None,
     "unknown key 'samples' in inline data; a generated dataset needs 'generator' (one of 'gaussian', "
     "'teacher', 'parity', 'boolean')"),
])
def test_generator_errors_name_the_key_and_the_expectation(table, key, message):
    with pytest.raises(GridError) as info:
        parse_inline("mine", table)
    assert info.value.key == key
    assert message in info.value.detail
    assert "\n" not in str(info.value)


def test_limits_are_accepted_at_the_boundary():
    assert gen({"generator": "parity", "inputs": 10}).n_samples == MAX_SAMPLES
    assert gen({"generator": "gaussian", "samples": 1, "inputs": 1, "seed": 2**32 - 1}).X.shape == (1, 1)
    assert gen(dict(TEACHER, samples=1, inputs=1, hidden=1)).Y.shape == (1,)
    assert set(GENERATORS) == {"gaussian", "teacher", "parity", "boolean"}


def test_a_builtin_name_is_refused_for_a_generator_too():
    with pytest.raises(GridError, match="'xor' is a built-in dataset"):
        parse_inline("xor", dict(PARITY))


# --------------------------------------------------------------------------- the manifest

@pytest.mark.parametrize("table", TABLES + [dict(TEACHER, activation="relu", noise=0.25)],
                         ids=IDS + ["teacher-noisy"])
def test_manifest_entry_of_a_generated_dataset_is_its_table_and_it_round_trips(table):
    ds = gen(table)
    entry = manifest_entry(ds)
    assert entry == dict(table, sha256=ds.digest)
    entry = json.loads(json.dumps(entry))  # as the manifest file keeps it
    back = from_manifest_entry("g", entry)
    assert same_bits(back.X, ds.X) and same_bits(back.Y, ds.Y)
    assert back.digest == ds.digest and back.spec == ds.spec and back.name == "g"


def test_manifest_entry_of_an_inline_dataset_is_its_arrays_and_it_round_trips():
    ds = parse_inline("reg", {"inputs": [[0.1, -2], [3, 4e-300]], "targets": [1.5, -0.25]})
    entry = manifest_entry(ds)
    assert entry == {"inputs": [[0.1, -2.0], [3.0, 4e-300]], "targets": [1.5, -0.25], "sha256": ds.digest}
    back = from_manifest_entry("reg", json.loads(json.dumps(entry)))
    assert same_bits(back.X, ds.X) and same_bits(back.Y, ds.Y) and back.spec is None


def test_manifest_entry_is_what_the_grid_stores_today_for_inline_data():
    grid = loads_grid('name = "t"\ndataset = "m"\n[datasets.m]\ninputs = [[0], [1]]\ntargets = [0, 1]\n', "g.toml")
    assert grid.resolved["datasets"]["m"] == manifest_entry(grid.datasets["m"])


def test_manifest_entries_that_do_not_match_are_errors():
    with pytest.raises(ValueError, match="built-in"):
        manifest_entry(BUILTIN["xor"])
    entry = manifest_entry(gen(GAUSSIAN))
    with pytest.raises(GridError) as info:
        from_manifest_entry("g", dict(entry, sha256="0" * 16))
    assert info.value.key == "sha256"
    assert "regenerated from its table have sha256 43bd9dded1bd9ede, but the manifest records " \
           "'0000000000000000'" in info.value.detail
    with pytest.raises(GridError) as info:
        from_manifest_entry("g", {k: v for k, v in entry.items() if k != "sha256"})
    assert "missing 'sha256'" in info.value.detail
    with pytest.raises(GridError) as info:
        from_manifest_entry("g", dict(entry, samples=0))
    assert info.value.key == "samples"
    with pytest.raises(GridError) as info:
        from_manifest_entry("g", [1])
    assert "expected a table with 'sha256'" in info.value.detail
    inline = manifest_entry(parse_inline("m", {"inputs": [[0]], "targets": [0.5]}))
    with pytest.raises(GridError, match="read from the manifest have sha256"):
        from_manifest_entry("m", dict(inline, targets=[0.25]))


# --------------------------------------------------------------------------- in a grid file

GRID = '''
name = "g"
dataset = "reg"
[datasets.reg]
generator = "gaussian"
samples = 16
inputs = 3
seed = 1
'''


def test_a_generated_dataset_in_a_grid_file():
    grid = loads_grid(GRID, "g.toml")
    ds = grid.datasets["reg"]
    assert ds.spec == {"generator": "gaussian", "samples": 16, "inputs": 3, "seed": 1, "input_std": 1.0}
    direct = parse_inline("reg", {"generator": "gaussian", "samples": 16, "inputs": 3, "seed": 1})
    assert ds.digest == direct.digest
    X, Y = dataset_arrays(grid, "reg")
    assert same_bits(X, direct.X) and same_bits(Y, direct.Y)
    assert loads_grid(GRID.replace("seed = 1", "seed = 2"), "g.toml").datasets["reg"].digest != ds.digest


@pytest.mark.parametrize("old, new, expected", [
    ("samples = 16", "samples = 2000",
     "g.toml: datasets.reg.samples: expected an integer in [1, 1024], got 2000"),
    ('generator = "gaussian"', 'generator = "normal"',
     "g.toml: datasets.reg.generator: unknown generator 'normal'; expected one of 'gaussian', 'teacher', "
     "'parity', 'boolean'"),
    ("seed = 1", "seeed = 1",
     "g.toml: datasets.reg: unknown key 'seeed' (did you mean 'seed'?); a gaussian dataset has 'generator', "
     "'samples', 'inputs', 'seed' and 'input_std'"),
])
def test_generator_errors_in_a_grid_file_carry_the_full_key_path(old, new, expected):
    with pytest.raises(GridError) as info:
        loads_grid(GRID.replace(old, new), "g.toml")
    assert str(info.value) == expected
