"""Parameters that apply to some runs only (sweep/grid/applies.py): neutral values in the rows, run ids of
equivalent runs, and the errors of values that apply to nothing."""
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.errors import GridError
from sweep.grid import expand, loads_grid, run_id
from sweep.grid.applies import RULES, neutral_run
from sweep.params import DEFAULTS, HASHED_OFF_DEFAULT, PARAM

GOLDEN_DEFAULT_ID = run_id({})  # the default run's id; tests/test_golden.py holds it to the stored rows


def runs_of(text):
    return expand(loads_grid(textwrap.dedent(text), "grid.toml"))


def error_of(text):
    with pytest.raises(GridError) as info:
        runs_of(text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("grid.toml")
    return message


def test_rows_hold_null_or_the_neutral_value_where_a_parameter_does_not_apply():
    runs = runs_of("""
        name = "n"
        beta1 = 0.8
        momentum = 0.5
        weight_decay = 0.01
        decay_biases = true
        [grid]
        optimizer = ["gd", "nesterov", "adam", "adamw", "rmsprop"]
        batch_size = [0, 2]
    """)
    by = runs.set_index(["optimizer", "batch_size"])
    for opt in ("gd", "nesterov"):
        assert by.loc[(opt, 0), "momentum"] == 0.5
        assert np.isnan(by.loc[(opt, 0), ["beta1", "beta2", "opt_eps"]].astype(float)).all()
    for opt in ("adam", "adamw"):
        assert by.loc[(opt, 0), "momentum"] == 0.0
        assert (by.loc[(opt, 0), "beta1"], by.loc[(opt, 0), "beta2"], by.loc[(opt, 0), "opt_eps"]) == (0.8, 0.999, 1e-8)
    assert np.isnan(by.loc[("rmsprop", 0), "beta1"]) and by.loc[("rmsprop", 0), "beta2"] == 0.999
    assert runs["decay_biases"].all() and runs["weight_decay"].eq(0.01).all()
    assert not runs["shuffle"].any()


def test_the_default_run_keeps_its_id_and_written_defaults_change_nothing():
    assert run_id(dict(optimizer="gd", weight_decay=0.0, batch_size=0, shuffle=False, decay_biases=False,
                       beta1=0.9, beta2=0.999, opt_eps=1e-8)) == GOLDEN_DEFAULT_ID
    assert runs_of('name = "d"\noptimizer = "gd"\nbatch_size = 0\n')["run_id"][0] == GOLDEN_DEFAULT_ID


@pytest.mark.parametrize("params", [
    dict(beta1=0.5), dict(beta2=0.5, opt_eps=0.1), dict(decay_biases=True), dict(shuffle=True),
    dict(decay_biases=True, weight_decay=0.1, bias=False), dict(momentum=0.9, optimizer="adam"),
    dict(beta1=0.5, optimizer="rmsprop"),
])
def test_a_value_that_does_not_apply_leaves_the_run_id_alone(params):
    base = {k: v for k, v in params.items() if k in ("optimizer", "bias", "weight_decay")}
    assert run_id(params) == run_id(base)


def test_run_ids_read_back_from_rows_with_nulls():
    runs = runs_of('name = "r"\n[grid]\noptimizer = ["gd", "adam", "rmsprop"]\nbatch_size = [0, 1]\n')
    for row in runs.to_dict("records"):
        assert row.pop("run_id") == run_id(row)


def test_each_hyperparameter_that_applies_changes_the_run_id():
    ids = {run_id(dict(optimizer="adamw", batch_size=2, shuffle=True, weight_decay=0.1, decay_biases=True))}
    for change in (dict(beta1=0.5), dict(beta2=0.5), dict(opt_eps=1e-3), dict(weight_decay=0.2),
                   dict(decay_biases=False), dict(batch_size=3), dict(shuffle=False), dict(optimizer="adam")):
        ids.add(run_id(dict(dict(optimizer="adamw", batch_size=2, shuffle=True, weight_decay=0.1,
                                 decay_biases=True), **change)))
    assert len(ids) == 9


@pytest.mark.parametrize("text, message", [
    ('beta1 = 0.8', 'beta1 = 0.8 is set, but it applies only where optimizer = "adam" or "adamw", and no run'),
    ('optimizer = "adam"\nmomentum = 0.9', 'momentum = 0.9 is set, but it applies only where optimizer = "gd" or'),
    ('shuffle = true', "shuffle = true is set, but it applies only where batch_size >= 1"),
    ('weight_decay = 0.1\ndecay_biases = true\nbias = false', "decay_biases = true is set, but it applies only"),
    ('decay_biases = true', "decay_biases = true is set, but it applies only where weight_decay > 0"),
    ('opt_eps = 0.001', "opt_eps = 0.001 is set"),
    ('[grid]\noptimizer = ["gd", "adam"]\nbeta1 = [0.8, 0.9]',
     "runs with optimizer='gd' differ only in beta1, which applies only where optimizer = \"adam\" or \"adamw\" "
     "(elsewhere it is null); give beta1 its values in a [[zip]] or [[extra]]"),
    ('[grid]\nbatch_size = [0, 1]\nshuffle = [false, true]', "differ only in shuffle, which applies only where "
                                                             "batch_size >= 1 (elsewhere it is false)"),
    ('optimizer = "sgd"', "optimizer: expected one of 'gd', 'nesterov', 'adam', 'adamw', 'rmsprop', got 'sgd' "
                          "(did you mean 'gd'?)"),
    ('batch_size = 2000', "batch_size: expected an integer in [0, 1024], got 2000"),
    ('beta2 = 1.0\noptimizer = "adam"', "beta2: expected a number in [0, 1), got 1.0"),
])
def test_bad_optimizer_grids_are_one_line_errors(text, message):
    assert message in error_of('name = "e"\n' + text + "\n")


def test_zipped_hyperparameters_with_their_optimizer_are_fine():
    runs = runs_of("""
        name = "z"
        [[zip]]
        optimizer = ["gd", "adam", "adam"]
        beta1 = [0.9, 0.8, 0.95]
    """)
    assert runs["beta1"].isna().tolist() == [True, False, False] and runs["run_id"].nunique() == 3


@settings(max_examples=50)
@given(st.fixed_dictionaries({"optimizer": st.sampled_from(["gd", "nesterov", "adam", "adamw", "rmsprop"]),
                              "batch_size": st.integers(0, 4), "weight_decay": st.sampled_from([0.0, 0.1]),
                              "bias": st.booleans()}),
       st.fixed_dictionaries({"beta1": st.sampled_from([0.5, 0.9]), "beta2": st.sampled_from([0.9, 0.999]),
                              "opt_eps": st.sampled_from([1e-8, 0.1]), "momentum": st.sampled_from([0.0, 0.5]),
                              "decay_biases": st.booleans(), "shuffle": st.booleans()}))
def test_a_grid_row_is_the_neutral_run_of_what_was_written(deciding, rest):
    """One run written out with every hyperparameter: its row holds `neutral_run` of it, and its id is the
    id of that neutral run; written away from anything that applies, the error names the parameter."""
    written = dict(deciding, **rest)
    want = neutral_run(dict(DEFAULTS, **written))
    lines = ['name = "p"'] + [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, str) else v}"
                              for k, v in written.items()]
    text = "\n".join(lines).replace("'", '"') + "\n"
    moot = [r.name for r in RULES if want[r.name] != written[r.name] and written[r.name] != DEFAULTS[r.name]]
    if moot:
        message = error_of(text)
        assert moot[0] in message or any(name in message for name in moot)
        return
    (row,) = runs_of(text).to_dict("records")
    for name in written:
        got = row[name]
        assert (got is None or got != got) if want[name] is None else got == want[name], name
    assert row["run_id"] == run_id(want)


def test_the_hashed_off_default_parameters_include_every_parameter_a_rule_governs():
    assert {r.name for r in RULES} - {"momentum"} <= set(HASHED_OFF_DEFAULT)
    for rule in RULES:
        assert rule.neutral is None or rule.neutral == PARAM[rule.name].default
