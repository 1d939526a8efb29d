"""Built-in boolean datasets and inline datasets."""
import numpy as np
import pytest

from sweep.datasets import (BUILTIN, MAX_INPUTS, MAX_SAMPLES, builtin_dataset, content_digest, dataset_arrays,
                            first_target_outside_unit_interval, parse_inline)
from sweep.errors import GridError
from sweep.grid import loads_grid

TWO = [[0, 0], [0, 1], [1, 0], [1, 1]]


@pytest.mark.parametrize("name, targets", [
    ("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]),
    ("nand", [1, 1, 1, 0]), ("xnor", [1, 0, 0, 1]),
])
def test_two_input_truth_tables(name, targets):
    ds = builtin_dataset(name)
    assert ds.X.dtype == np.float64 and ds.Y.dtype == np.float64
    np.testing.assert_array_equal(ds.X, TWO)
    np.testing.assert_array_equal(ds.Y, targets)
    assert ds.Y.shape == (4,)


def test_xor_is_the_notebooks_xor():
    from tests import notebooks as nb
    X, Y = dataset_arrays(None, "xor")
    np.testing.assert_array_equal(X, nb.XOR_X)
    np.testing.assert_array_equal(Y, nb.XOR_Y)


def test_parity3_counts_in_binary_and_is_odd_parity():
    ds = builtin_dataset("parity3")
    assert ds.X.shape == (8, 3)
    for i, (row, y) in enumerate(zip(ds.X, ds.Y)):
        assert list(row) == [(i >> 2) & 1, (i >> 1) & 1, i & 1]
        assert y == sum(row) % 2


def test_builtins_are_read_only_and_arrays_are_copies():
    ds = builtin_dataset("xor")
    with pytest.raises(ValueError):
        ds.X[0, 0] = 5
    X, Y = dataset_arrays(None, "xor")
    X[0, 0] = 5
    Y[0] = 1
    assert builtin_dataset("xor").X[0, 0] == 0 and builtin_dataset("xor").Y[0] == 0
    with pytest.raises(KeyError):
        dataset_arrays(None, "nope")


def test_inline_dataset_flat_and_nested_targets_are_the_same():
    flat = parse_inline("mine", {"inputs": TWO, "targets": [0, 1, 1, 0]})
    nested = parse_inline("mine", {"inputs": TWO, "targets": [[0], [1], [1], [0]]})
    np.testing.assert_array_equal(flat.X, nested.X)
    np.testing.assert_array_equal(flat.Y, [0, 1, 1, 0])
    np.testing.assert_array_equal(nested.Y, flat.Y)
    assert flat.digest == nested.digest == BUILTIN["xor"].digest
    assert not flat.builtin and flat.X.shape == (4, 2) and flat.Y.shape == (4,)


def test_content_digest_changes_with_any_value_or_shape():
    X = np.array(TWO, float)
    Y = np.array([0, 1, 1, 0], float)
    base = content_digest(X, Y)
    assert len(base) == 16 and int(base, 16) >= 0
    assert content_digest(X.copy(), Y.copy()) == base
    Y2 = Y.copy()
    Y2[0] = 0.5
    assert content_digest(X, Y2) != base
    X2 = X.copy()
    X2[3, 1] = 0.999
    assert content_digest(X2, Y) != base
    # the same numbers in another shape are other data
    assert X.reshape(2, 4).tobytes() == X.tobytes()
    assert content_digest(X.reshape(2, 4), Y) != base


def test_inline_limits_accepted_at_the_boundary():
    assert (MAX_SAMPLES, MAX_INPUTS) == (1024, 64)
    rows = [[float(i % 2)] * MAX_INPUTS for i in range(MAX_SAMPLES)]
    ds = parse_inline("big", {"inputs": rows, "targets": [0.25] * MAX_SAMPLES})
    assert ds.X.shape == (MAX_SAMPLES, MAX_INPUTS) and ds.Y.shape == (MAX_SAMPLES,)


def test_inline_targets_may_be_any_finite_number_and_the_dataset_says_which_kind():
    ds = parse_inline("reg", {"inputs": TWO, "targets": [0, 1, 2, -0.5]})
    np.testing.assert_array_equal(ds.Y, [0, 1, 2, -0.5])
    assert not ds.unit_targets and not ds.binary_targets
    assert first_target_outside_unit_interval(ds) == 2
    soft = parse_inline("soft", {"inputs": TWO, "targets": [0, 0.25, 1, 0.5]})
    assert soft.unit_targets and not soft.binary_targets
    assert first_target_outside_unit_interval(soft) is None
    hard = parse_inline("hard", {"inputs": TWO, "targets": [[0], [1], [1.0], [0]]})
    assert hard.unit_targets and hard.binary_targets
    assert all(d.unit_targets and d.binary_targets for d in BUILTIN.values())
    big = parse_inline("big", {"inputs": TWO, "targets": [1e300, -1e300, 0, 0]})
    assert big.Y[0] == 1e300 and first_target_outside_unit_interval(big) == 0


def test_inline_and_builtin_datasets_have_no_spec():
    assert parse_inline("mine", {"inputs": TWO, "targets": [0, 1, 1, 0]}).spec is None
    assert all(d.spec is None and not d.generated for d in BUILTIN.values())


@pytest.mark.parametrize("table, key, message", [
    ({"inputs": [[0, 0], [0, 1, 1]], "targets": [0, 1]}, "inputs[1]",
     "expected a row of 2 numbers like inputs[0] (rows must all have the same length), got 3"),
    ({"inputs": [[0, 0], 5], "targets": [0, 1]}, "inputs[1]", "expected a row"),
    ({"inputs": [], "targets": []}, "inputs", "expected a non-empty list of rows"),
    ({"inputs": [[]], "targets": [0]}, "inputs[0]", "expected a row of 1 to 64 inputs, got 0"),
    ({"inputs": [[0] * 65], "targets": [0]}, "inputs[0]", "expected a row of 1 to 64 inputs, got 65"),
    ({"inputs": [[0]] * 1025, "targets": [0] * 1025}, "inputs", "expected at most 1024 samples (rows), got 1025"),
    ({"inputs": [[0, float("nan")]], "targets": [0]}, "inputs[0][1]", "expected a finite number, got nan"),
    ({"inputs": [[0, True]], "targets": [0]}, "inputs[0][1]", "expected a finite number, got true"),
    ({"inputs": [[0, "1"]], "targets": [0]}, "inputs[0][1]", "got '1'"),
    ({"inputs": TWO, "targets": [0, 1, 1]}, "targets", "expected 4 targets (one per row of inputs), got 3"),
    ({"inputs": TWO, "targets": [[0, 1], [1, 0], [1, 0], [0, 1]]}, "targets[0]",
     "expected a number or a one-element list like [1] (the network has one output), got a list of 2"),
    ({"inputs": TWO, "targets": [0, 1, [float("inf")], 0]}, "targets[2][0]", "expected a finite number, got inf"),
    ({"inputs": TWO, "targets": [0, 1, float("nan"), 0]}, "targets[2]", "expected a finite number, got nan"),
    ({"inputs": TWO, "targets": [0, 1, False, 0]}, "targets[2]", "expected a finite number, got false"),
    ({"inputs": TWO, "targets": [0, 1, "1", 0]}, "targets[2]", "expected a finite number, got '1'"),
    ({"inputs": TWO, "targets": 0}, "targets", "expected a list of 4 targets (numbers), got 0"),
    ({"inputs": TWO}, None, "missing 'targets'"),
    ({"targets": [0]}, None, "missing 'inputs'"),
    ({"inputs": TWO, "targets": [0, 1, 1, 0], "labels": [1]}, None,
     "unknown key 'labels' (did you mean 'targets'?)"),
    ({"x": TWO, "targets": [0, 1, 1, 0]}, None, "unknown key 'x' (did you mean 'inputs'?)"),
    ({"inputs": TWO, "targets": [0, 1, 1, 0], "seed": 1}, None,
     "unknown key 'seed' in inline data; a generated dataset needs 'generator'"),
    ([[0, 1]], None, "expected a table with 'inputs' and 'targets', or with 'generator', got [[0, 1]]"),
])
def test_inline_errors_name_the_key_and_the_expectation(table, key, message):
    with pytest.raises(GridError) as info:
        parse_inline("mine", table)
    assert info.value.key == key
    assert message in info.value.detail


@pytest.mark.parametrize("name, message", [
    ("xor", "'xor' is a built-in dataset; give yours another name"),
    ("a b", "expected a dataset name"),
    ("", "expected a dataset name"),
])
def test_inline_dataset_names(name, message):
    with pytest.raises(GridError) as info:
        parse_inline(name, {"inputs": [[0]], "targets": [0]})
    assert message in str(info.value)


def test_inline_dataset_through_a_grid_file_and_its_errors_carry_the_full_key_path():
    text = 'name = "t"\ndataset = "maj"\n[datasets.maj]\ninputs = [[0, 0, 1], [1, 1, 0]]\ntargets = [0, 1]\n'
    grid = loads_grid(text, "g.toml")
    X, Y = dataset_arrays(grid, "maj")
    np.testing.assert_array_equal(X, [[0, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(Y, [0, 1])
    bad = text.replace("[1, 1, 0]]", "[1, 1]]")
    with pytest.raises(GridError) as info:
        loads_grid(bad, "g.toml")
    assert str(info.value) == ("g.toml: datasets.maj.inputs[1]: expected a row of 3 numbers like inputs[0] "
                               "(rows must all have the same length), got 2")
