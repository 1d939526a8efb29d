"""The parameter schema: defaults, validation, canonical values, the reference table."""
import math

import pytest

from sweep.errors import GridError
from sweep.params import ALIASES, DEFAULTS, PARAM, PARAMS, SETTINGS, markdown_table

COLUMN_NAMES = ["dataset", "hidden", "activation", "output", "bias", "scaling", "reduction", "epochs", "lr",
                "lr_hidden", "lr_output", "loss", "bce_eps", "momentum", "optimizer", "beta1", "beta2", "opt_eps",
                "weight_decay", "decay_biases", "batch_size", "shuffle", "init", "init_scale",
                "bias_init", "seed", "dtype", "criterion", "margin", "tol", "early_stop", "checkpoints",
                "save_weights", "diagnostics"]


def test_parameter_names_are_the_documented_column_names():
    assert [p.name for p in PARAMS] == COLUMN_NAMES


def test_defaults_are_the_documented_ones_and_valid():
    assert DEFAULTS == {
        "dataset": "xor", "hidden": 4, "activation": "sigmoid", "output": "sigmoid", "bias": True,
        "scaling": "standard", "reduction": "sum", "epochs": 10000, "lr": 0.1, "lr_hidden": None,
        "lr_output": None, "loss": "mse", "bce_eps": 1e-8,
        "momentum": 0.0, "optimizer": "gd", "beta1": 0.9, "beta2": 0.999, "opt_eps": 1e-8, "weight_decay": 0.0,
        "decay_biases": False, "batch_size": 0, "shuffle": False, "init": "normal", "init_scale": 1.0, "bias_init": 0.0, "seed": 0, "dtype": "float64",
        "criterion": "margin", "margin": 0.4, "tol": 0.01, "early_stop": False, "checkpoints": 32,
        "save_weights": False, "diagnostics": False,
    }
    for p in PARAMS:
        assert p.check(p.default) == p.default
        assert p.doc.endswith("."), p.name  # a sentence for the README table


def test_aliases_point_at_real_names_and_never_shadow_one():
    names = {p.name for p in PARAMS + SETTINGS}
    assert set(ALIASES.values()) <= names
    assert not set(ALIASES) & names
    assert ALIASES["learning_rate"] == "lr"


def test_markdown_table_lists_every_parameter_with_default_and_allowed_values():
    table = markdown_table()
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(PARAMS)
    for p, line in zip(PARAMS, lines[2:]):
        assert line.startswith(f"| `{p.name}` |")
        assert line.count(" | ") >= 3
    assert "| `lr` | `0.1` | a number > 0 |" in table
    assert "| `margin` | `0.4` | a number in (0, 0.5] |" in table
    assert "| `epochs` | `10_000` | an integer in [1, 1_000_000_000] |" in table
    assert "`name` | (required)" in markdown_table(SETTINGS)


@pytest.mark.parametrize("name, raw, canonical", [
    ("lr", 1, 1.0), ("lr", 1e-1, 0.1), ("lr", 0.1, 0.1),
    ("bias_init", -0.0, 0.0), ("bias_init", -2, -2.0),
    ("epochs", 10000, 10000), ("epochs", 1e4, 10000), ("seed", 2**32 - 1, 2**32 - 1),
    ("margin", 0.5, 0.5), ("momentum", 0, 0.0), ("bce_eps", 0, 0.0),
    ("loss", "bce", "bce"), ("early_stop", True, True),
    ("checkpoints", 0, 0), ("checkpoints", [100, 0, 100, 10], (0, 10, 100)), ("checkpoints", [], 0),
])
def test_canonical_values(name, raw, canonical):
    value = PARAM[name].check(raw)
    assert value == canonical and type(value) is type(canonical)
    if isinstance(value, float):
        assert math.copysign(1.0, value) == math.copysign(1.0, canonical)


@pytest.mark.parametrize("name, raw, message", [
    ("lr", True, "expected a number > 0, got true"),
    ("lr", "0.1", "expected a number > 0, got '0.1'"),
    ("lr", 0, "expected a number > 0, got 0"),
    ("lr", float("nan"), "expected a number > 0, got nan"),
    ("lr", float("inf"), "expected a number > 0, got inf"),
    ("bias_init", float("-inf"), 'expected a finite number or "draw", got -inf'),
    ("bias_init", "drwa", "(did you mean 'draw'?)"),
    ("activation", "Tanh", "(did you mean 'tanh'?)"),
    ("scaling", "mean_field", "(did you mean 'mean-field'?)"),
    ("lr", 10**400, "too large"),
    ("epochs", 2.5, "expected an integer in [1, 1_000_000_000], got 2.5"),
    ("epochs", 0, "got 0"),
    ("epochs", True, "got true"),
    ("hidden", 257, "expected an integer in [1, 256], got 257"),
    ("margin", 0.0, "expected a number in (0, 0.5], got 0.0"),
    ("margin", 0.51, "got 0.51"),
    ("momentum", 1.0, "expected a number in [0, 1), got 1.0"),
    ("seed", -1, "expected an integer in [0, 4_294_967_295], got -1"),
    ("seed", 2**32, "got 4294967296"),
    ("loss", "MSE", "expected one of 'mse', 'bce', got 'MSE' (did you mean 'mse'?)"),
    ("init", "xavir", "(did you mean 'xavier'?)"),
    ("dtype", "float16", "expected one of 'float64', 'float32', got 'float16'"),
    ("early_stop", 1, "expected true or false, got 1"),
    ("checkpoints", 1001, "expected an integer in [0, 1000]"),
    ("checkpoints", [0, 2.5], "got 2.5"),
    ("checkpoints", "10", "got '10'"),
    ("tol", [0.1], "got [0.1]"),
])
def test_invalid_values_say_what_was_expected(name, raw, message):
    with pytest.raises(GridError) as info:
        PARAM[name].check(raw)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_checkpoint_list_errors_point_at_the_element():
    with pytest.raises(GridError) as info:
        PARAM["checkpoints"].check([0, 10, -1])
    assert info.value.key == "[2]"
