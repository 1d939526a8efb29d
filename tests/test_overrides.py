"""Overrides (``--set KEY=VALUE``, ``sweep.run(grid, KEY=VALUE)``) and grids given as dicts: no training here."""
import itertools
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweep.cli import main
from sweep.errors import GridError, SweepError
from sweep.grid import expand, loads_grid
from sweep.grid.overrides import Override, from_kwargs, from_sets, parse_set
from sweep.grid.parse import parse_dict, read_grid
from sweep.grid.runs import _matches
from sweep.params import PARAM

ROOT = Path(__file__).resolve().parents[1]

BASE = """
name = "o"
epochs = 100
[grid]
loss = ["mse", "bce"]
lr = [0.1, 1.0]
seed = { range = [0, 3] }
"""

# A grid with every construct: a zip, extras (one replacing the zip), excludes.
RICH = """
name = "rich"
hidden = 3
[grid]
loss = ["mse", "bce"]
seed = [0, 1]
[[zip]]
lr = [0.1, 0.3, 1.0]
epochs = [300, 300, 100]
[[extra]]
lr = 3.0
epochs = 50
loss = "bce"
[[extra]]
lr = [0.2, 0.3]
epochs = [300, 200]
[[extra]]
momentum = 0.9
[[exclude]]
lr = 1.0
loss = "mse"
[[exclude]]
momentum = 0.9
seed = 1
"""


def grid_of(text, *sets, file="grid.toml"):
    return loads_grid(textwrap.dedent(text), file, from_sets(sets))


def runs_of(text, *sets):
    return expand(grid_of(text, *sets))


def error_of(text, *sets, file="grid.toml"):
    with pytest.raises(GridError) as info:
        expand(grid_of(text, *sets, file=file))
    message = str(info.value)
    assert "\n" not in message
    return message


def points(runs, names):
    return sorted(map(tuple, runs[list(names)].itertuples(index=False)))


# --------------------------------------------------------------------------- --set KEY=VALUE

@pytest.mark.parametrize("text, key, value", [
    ("epochs=2000", "epochs", 2000),
    ("lr=[0.1, 1.0]", "lr", [0.1, 1.0]),
    ("seed={range=[0, 10]}", "seed", {"range": [0, 10]}),
    ("name=quick", "name", "quick"),
    ("loss = bce", "loss", "bce"),
    ('loss="bce"', "loss", "bce"),
    ('description="two words"', "description", "two words"),
    ("name=2024-run", "name", "2024-run"),
    ("early_stop=true", "early_stop", True),
    ("lr=1e-2", "lr", 0.01),
    ("checkpoints=[0, 10, 100]", "checkpoints", [0, 10, 100]),
])
def test_set_values_are_toml_and_a_bare_word_is_a_string(text, key, value):
    o = parse_set(text)
    assert (o.key, o.value, o.path) == (key, value, f"--set {key}")


@pytest.mark.parametrize("text, expected", [
    ("epochs", "--set epochs: expected KEY=VALUE, e.g. --set epochs=2000 or --set 'lr=[0.1, 1.0]'"),
    ("=3", "--set =3: expected KEY=VALUE"),
    ("epochs=", "--set epochs=: no value after '='"),
    ("lr=[0.1,", "--set lr=[0.1,: the value is not valid TOML ("),
    ("loss=[mse, bce]", "(strings in a list are quoted: --set 'loss=[\"mse\", \"bce\"]')"),
    ("name=two words", "(a string that is not one word is quoted: --set 'description=\"two words\"')"),
    ("lr=1\nepochs = 2", "expected one TOML value after '='"),
])
def test_bad_set_syntax_is_one_line_naming_the_option(text, expected):
    with pytest.raises(SweepError) as info:
        parse_set(text)
    message = str(info.value)
    assert "\n" not in message and expected in message


# --------------------------------------------------------------------------- where an override lands

def test_a_scalar_fixes_a_parameter_the_grid_left_at_its_default():
    runs = runs_of(BASE, "hidden=7")
    assert len(runs) == 12 and (runs["hidden"] == 7).all()
    assert grid_of(BASE, "hidden=7").explicit["hidden"] == 7


def test_a_list_makes_a_new_axis_last_in_grid():
    grid = grid_of(BASE, "momentum=[0.0, 0.9]")
    assert [a.names for a in grid.axes] == [("loss",), ("lr",), ("seed",), ("momentum",)]
    runs = expand(grid)
    assert len(runs) == 24 and list(runs["momentum"][:2]) == [0.0, 0.9]  # the new axis varies fastest


def test_a_generator_table_makes_an_axis():
    runs = runs_of(BASE, "seed={range=[0, 10]}", "init_scale={logspace=[-1, 1, 3]}")
    assert set(runs["seed"]) == set(range(10)) and len(runs) == 2 * 2 * 10 * 3
    np.testing.assert_allclose(sorted(runs["init_scale"].unique()), [0.1, 1.0, 10.0])


def test_a_list_replaces_an_axis_in_its_place():
    grid = grid_of(BASE, "lr=[0.5, 2.0, 4.0]")
    assert [a.names[0] for a in grid.axes] == ["loss", "lr", "seed"]
    assert grid.axes[1].values == [(0.5,), (2.0,), (4.0,)] and grid.axes[1].path == "--set lr"
    assert len(expand(grid)) == 2 * 3 * 3


def test_a_scalar_replaces_an_axis():
    grid = grid_of(BASE, "lr=0.5")
    assert [a.names[0] for a in grid.axes] == ["loss", "seed"] and grid.fixed["lr"] == 0.5
    runs = expand(grid)
    assert len(runs) == 6 and (runs["lr"] == 0.5).all()


def test_a_scalar_replaces_a_fixed_value_and_a_list_makes_it_an_axis():
    assert (runs_of(BASE, "epochs=2000")["epochs"] == 2000).all()
    runs = runs_of(BASE, "epochs=[10, 20]")
    assert sorted(runs["epochs"].unique()) == [10, 20] and len(runs) == 24


def test_checkpoints_list_of_integers_is_one_explicit_list_and_a_list_of_lists_an_axis():
    one = runs_of(BASE, "checkpoints=[0, 10, 100]")
    assert set(one["checkpoints"]) == {(0, 10, 100)} and len(one) == 12
    two = runs_of(BASE, "checkpoints=[[0, 10], [0, 50, 100]]")
    assert set(two["checkpoints"]) == {(0, 10), (0, 50, 100)} and len(two) == 24


def test_settings_are_overridden():
    grid = grid_of(BASE, "name=quick", "description='a try'", "chunk_size=4", "max_runs=100")
    assert (grid.name, grid.description, grid.chunk_size, grid.max_runs) == ("quick", "a try", 4, 100)
    assert "the grid expands to 12 runs, over the limit of 10 (max_runs)" in error_of(BASE, "max_runs=10")


def test_a_zipped_parameter_leaves_its_zip_which_keeps_its_other_columns():
    # the override wins; the zip's other columns still vary together
    runs = runs_of(RICH, "epochs=1000")
    main = runs[runs["momentum"] == 0.0]
    assert set(main["epochs"]) == {1000}
    assert points(main[(main["loss"] == "bce") & (main["seed"] == 0)], ["lr"]) == [(0.1,), (0.2,), (0.3,), (1.0,),
                                                                                    (3.0,)]
    # a list crosses the zip's other columns
    grid = grid_of(RICH, "lr=[0.5, 2.0]")
    assert [a.names for a in grid.axes] == [("loss",), ("seed",), ("lr",), ("epochs",)]
    assert grid.axes[3].values == [(300,), (100,)]  # points made equal by the override are one point


def test_a_zip_whose_every_column_is_overridden_is_dropped():
    grid = grid_of(RICH, "lr=0.1", "epochs=[10, 20]")
    assert [a.names for a in grid.axes] == [("loss",), ("seed",), ("epochs",)]
    assert all(a.path != "zip[0]" for a in grid.axes)


def test_an_extras_value_is_replaced_and_runs_already_in_the_grid_are_not_added_again():
    # extra[0] (lr 3.0, epochs 50, bce) keeps its other values; extra[1]'s lr goes and, of its epochs,
    # only 200 is new (300 is a run of the grid already)
    runs = runs_of(RICH, "lr=0.5")
    assert (runs["lr"] == 0.5).all() and runs["run_id"].is_unique
    plain = runs[runs["momentum"] == 0.0]
    assert points(plain, ["loss", "seed", "epochs"]) == sorted(
        [(loss, seed, e) for loss in ("mse", "bce") for seed in (0, 1) for e in (300, 100, 200)]
        + [("bce", seed, 50) for seed in (0, 1)])


def test_an_extra_that_set_only_overridden_parameters_is_dropped_with_excludes_of_its_runs():
    grid = grid_of(RICH, "momentum=0.5")
    assert [b.path for b in grid.extras] == ["extra[0]", "extra[1]"]
    assert [e.path for e in grid.excludes] == ["exclude[0]"]  # exclude[1] matched only extra[2]'s runs
    assert (expand(grid)["momentum"] == 0.5).all()


def test_an_exclude_that_still_matches_stays_and_one_an_override_emptied_goes():
    runs = runs_of(RICH, "lr=[0.1, 1.0]")
    assert not ((runs["lr"] == 1.0) & (runs["loss"] == "mse")).any()  # exclude[0] still applies
    assert len(grid_of(RICH, "lr=[0.1, 1.0]").excludes) == 2
    assert [e.path for e in grid_of(RICH, "lr=0.1").excludes] == ["exclude[1]"]


def test_the_resolved_grid_records_the_overrides_in_order():
    grid = grid_of(BASE, "epochs=2000", "lr=[0.1, 1.0]", "name=quick", "seed={range=[0, 10]}")
    resolved = json.loads(json.dumps(grid.resolved))
    assert resolved["overrides"] == {"epochs": 2000, "lr": [0.1, 1.0], "name": "quick", "seed": {"range": [0, 10]}}
    assert list(resolved["overrides"]) == ["epochs", "lr", "name", "seed"]
    assert resolved["epochs"] == 2000 and resolved["seed"] == {"axis": list(range(10))}
    assert "overrides" not in grid_of(BASE).resolved


def test_overriding_a_value_with_itself_gives_the_same_runs():
    plain = runs_of(RICH)
    assert sorted(plain["run_id"]) == sorted(runs_of(RICH, "hidden=3", "seed=[0, 1]")["run_id"])
    # but an [[extra]] that set it takes the override too: extra[0]'s bce runs at lr 3.0 are now mse and bce
    both = runs_of(RICH, "loss=['mse', 'bce']")
    assert len(both) == len(plain) + 2 and set(both[both["lr"] == 3.0]["loss"]) == {"mse", "bce"}


# --------------------------------------------------------------------------- the runs are the file's, overridden

OVERRIDES = {
    "lr": [0.1, 0.5, 3.0, [0.1, 0.2], [0.3, 1.0, 2.0], {"logspace": [-1, 0, 2]}],
    "epochs": [50, 300, [50, 300], [200, 300]],
    "loss": ["mse", ["bce", "mse"]],
    "seed": [0, 1, [1, 2]],
    "momentum": [0.0, 0.9, [0.0, 0.9]],
    "hidden": [3, 5, [2, 3]],
}


# The layer rates are lr resolved (RICH sets neither), so the parameters as written are compared.
COMPARED = [name for name in PARAM if name not in ("lr_hidden", "lr_output")]


def _rows(runs):
    """The COMPARED values of each run, a null (NaN: a parameter that does not apply) as None."""
    return [tuple(None if isinstance(v, float) and v != v else v for v in row)
            for row in runs[COMPARED].itertuples(index=False, name=None)]


def reference_runs(text, overrides):
    """The file's runs before excludes, each with the overrides applied, once each, then its excludes."""
    doc = loads_grid(textwrap.dedent(text))
    excludes = doc.excludes
    doc.excludes = []
    runs = expand(doc)
    names = COMPARED
    out = set()
    for row in _rows(runs):
        choices = []
        for name, value in zip(names, row):
            if name in overrides:
                given = overrides[name]
                if isinstance(given, dict):
                    num = given["logspace"][2]
                    given = np.logspace(given["logspace"][0], given["logspace"][1], num).tolist()
                choices.append([PARAM[name].check(v) for v in (given if isinstance(given, list) else [given])])
            else:
                choices.append([value])
        out.update(itertools.product(*choices))
    return {r for r in out if not any(all(any(_matches(r[names.index(k)], w) for w in ws)
                                          for k, ws in e.match.items()) for e in excludes)}


@given(st.dictionaries(st.sampled_from(sorted(OVERRIDES)), st.integers(0, 5), min_size=1, max_size=3))
def test_an_overridden_grid_runs_the_files_runs_overridden(choice):
    overrides = {k: OVERRIDES[k][i % len(OVERRIDES[k])] for k, i in choice.items()}
    grid = loads_grid(textwrap.dedent(RICH), "grid.toml", from_kwargs(overrides))
    try:
        runs = expand(grid)
    except GridError as exc:  # only for a grid the overrides leave with nothing to run
        assert "every run is excluded" in str(exc), exc
        assert not reference_runs(RICH, overrides)
        return
    assert runs["run_id"].is_unique
    got = set(_rows(runs))
    assert got == reference_runs(RICH, overrides)


# --------------------------------------------------------------------------- mistakes

@pytest.mark.parametrize("sets, expected", [
    (["lrr=1"], "grid.toml: --set: unknown key 'lrr' (did you mean 'lr'?)"),
    (["learning_rate=1"], "grid.toml: --set: unknown key 'learning_rate' (did you mean 'lr'?)"),
    (["grid.lr=[1]"], "grid.toml: --set: unknown key 'grid.lr' (did you mean 'lr'?)"),
    (["zzz=1"], "grid.toml: --set: unknown key 'zzz': overrides take a run parameter or a setting (name, "
                "description, max_runs, chunk_size, record)"),
    (["grid={lr=1}"], "grid.toml: --set: 'grid' is a table of the grid file, not a value"),
    (["lr=1", "lr=2"], "grid.toml: --set: 'lr' is given twice (1 and 2); keep one"),
    (["lr=[0.1, -1]"], "grid.toml: --set lr[1]: expected a number > 0, got -1"),
    (["lr=-1"], "grid.toml: --set lr: expected a number > 0, got -1"),
    (["epochs=0"], "grid.toml: --set epochs: expected an integer in [1, 1_000_000_000], got 0"),
    (["lr=[0.1, 0.1]"], "grid.toml: --set lr[1]: 0.1 repeats --set lr[0]; every value of an axis must differ"),
    (["lr=[]"], "grid.toml: --set lr: empty axis; give at least one value"),
    (["seed={range=[0]}"], "grid.toml: --set seed.range: expected [start, stop] or [start, stop, step]"),
    (["lr={lingspace=[0, 1, 3]}"], "grid.toml: --set lr: unknown generator 'lingspace' (did you mean 'linspace'?)"),
    (["loss=bse"], "grid.toml: --set loss: expected one of"),
    (["dataset=foo"], "grid.toml: --set dataset: unknown dataset 'foo'"),
    (["name='a/b'"], "grid.toml: --set name: "),
    (["chunk_size=0"], "grid.toml: --set chunk_size: "),
    (["checkpoints=[0, 10, 1000]"], "goes beyond epochs = 100"),
])
def test_bad_overrides_are_one_line_naming_the_key(sets, expected):
    assert error_of(BASE, *sets).startswith(expected) or expected in error_of(BASE, *sets)


def test_python_overrides_name_themselves_and_take_python_values():
    with pytest.raises(GridError) as info:
        loads_grid(BASE, "grid.toml", from_kwargs({"lr": [0.1, -1]}))
    assert str(info.value) == "grid.toml: override lr[1]: expected a number > 0, got -1"
    with pytest.raises(GridError, match=r"^grid.toml: override lr: None has no TOML form"):
        loads_grid(BASE, "grid.toml", from_kwargs({"lr": None}))
    with pytest.raises(GridError, match=r"^grid.toml: override: unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        loads_grid(BASE, "grid.toml", from_kwargs({"epoch": 3}))
    grid = loads_grid(BASE, "grid.toml", from_kwargs({"lr": np.array([0.1, 1.0]), "seed": range(2),
                                                     "epochs": np.int64(7), "checkpoints": (0, 7)}))
    runs = expand(grid)
    assert set(runs["lr"]) == {0.1, 1.0} and set(runs["seed"]) == {0, 1} and set(runs["epochs"]) == {7}
    assert set(runs["checkpoints"]) == {(0, 7)}
    assert grid.resolved["overrides"] == {"lr": [0.1, 1.0], "seed": [0, 1], "epochs": 7, "checkpoints": [0, 7]}


def test_cli_bad_override_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(BASE)
    for argv, expected in [
        (["run", str(grid), "--out", str(tmp_path / "r"), "--set", "lrr=1"],
         f"sweep: error: {grid}: --set: unknown key 'lrr' (did you mean 'lr'?)\n"),
        (["plan", str(grid), "--set", "lr=[0.1, -1]"],
         f"sweep: error: {grid}: --set lr[1]: expected a number > 0, got -1\n"),
        (["run", str(grid), "--out", str(tmp_path / "r"), "--set", "epochs"],
         "sweep: error: --set epochs: expected KEY=VALUE, e.g. --set epochs=2000 or --set 'lr=[0.1, 1.0]'\n"),
        (["status", str(grid), "--out", str(tmp_path / "r"), "--set", "lr=[0.1,"], None),
    ]:
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("sweep: error: ")
        if expected:
            assert err == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml"]


def test_plan_shows_the_overridden_grid(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(BASE)
    assert main(["plan", str(grid), "--no-estimate", "--set", "name=quick", "--set", "lr=[0.1, 0.2, 0.3]"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sweep plan: quick") and "lr (3): 0.1, 0.2, 0.3" in out and "runs:           18" in out


# --------------------------------------------------------------------------- grids as dicts

def test_a_dict_grid_is_the_same_grid_as_its_file():
    text = (ROOT / "grid.toml").read_text()
    doc = {"name": "saturation", "description": "XOR 2-4-1: initial weight scale x loss x learning rate, 100 seeds",
           "dataset": "xor", "hidden": 4, "epochs": 10_000, "init": "normal", "criterion": "margin", "margin": 0.4,
           "grid": {"init_scale": {"logspace": [-1.5, 1.5, 7]}, "loss": ("mse", "bce"), "lr": np.array([0.1, 0.3, 1.0]),
                    "seed": range(100)}}
    from_file, from_dict = loads_grid(text, "grid.toml"), read_grid(doc)
    assert from_dict.file == "<dict>"
    assert list(expand(from_file)["run_id"]) == list(expand(from_dict)["run_id"])


def test_a_dict_grid_with_every_table():
    doc = {"name": "d", "dataset": "m3",
           "datasets": {"m3": {"inputs": np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), "targets": [0, 1, 1, 1]}},
           "grid": {"seed": [0, 1]}, "zip": [{"lr": [0.1, 1.0], "epochs": [200, 100]}],
           "extra": [{"lr": 3.0, "epochs": 50}], "exclude": [{"seed": 1, "lr": 3.0}]}
    text = """
    name = "d"
    dataset = "m3"
    [datasets.m3]
    inputs = [[0, 0], [0, 1], [1, 0], [1, 1]]
    targets = [0, 1, 1, 1]
    [grid]
    seed = [0, 1]
    [[zip]]
    lr = [0.1, 1.0]
    epochs = [200, 100]
    [[extra]]
    lr = 3.0
    epochs = 50
    [[exclude]]
    seed = 1
    lr = 3.0
    """
    a, b = expand(parse_dict(doc)), expand(grid_of(text))
    assert list(a["run_id"]) == list(b["run_id"]) and len(a) == 5


@pytest.mark.parametrize("doc, expected", [
    ({"name": "x", "grid": {"lr": [0.1, -2]}}, "<dict>: grid.lr[1]: expected a number > 0, got -2"),
    ({"name": "x", "grid": {"lr": (0.1, None)}}, "<dict>: grid.lr[1]: None has no TOML form; leave the key out"),
    ({"name": "x", "lrr": 1}, "<dict>: unknown top-level key 'lrr' (did you mean 'lr'?)"),
    ({"grid": {}}, "<dict>: missing 'name'"),
    ({"name": "x", "zip": {"lr": [1.0]}}, "<dict>: zip: expected [[zip]] tables (an array of tables)"),
    ({"name": "x", 3: 1}, "<dict>: keys are strings, got 3"),
    ({"name": "x", "epochs": object()},
     "<dict>: epochs: expected TOML data (a number, string, boolean, list or table)"),
])
def test_a_dict_grid_is_validated_as_a_file_is(doc, expected):
    with pytest.raises(GridError) as info:
        expand(read_grid(doc))
    assert str(info.value).startswith(expected)


def test_a_dict_grid_is_not_changed_by_overrides():
    doc = {"name": "x", "grid": {"lr": [0.1, 1.0]}, "zip": [{"seed": [0, 1], "epochs": [10, 20]}]}
    before = json.dumps(doc)
    grid = read_grid(doc, from_kwargs({"lr": 0.5, "epochs": 30}))
    assert json.dumps(doc) == before and grid.fixed["lr"] == 0.5


def test_override_objects_say_whether_they_make_an_axis():
    assert Override("lr", [0.1], "--set lr").makes_axis and Override("lr", {"range": [0, 1]}, "").makes_axis
    assert not Override("lr", 0.1, "").makes_axis and not Override("checkpoints", [0, 10], "").makes_axis
    assert Override("checkpoints", [[0, 10]], "").makes_axis


def test_an_interrupted_run_says_how_to_resume_with_its_overrides(tmp_path, monkeypatch, capsys):
    import sweep.runner

    def interrupted(*args, **kwargs):
        assert [(o.key, o.value) for o in kwargs["overrides"]] == [("epochs", 50), ("lr", [0.1, 1.0])]
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.runner, "run", interrupted)
    assert main(["run", "my grid.toml", "--set", "epochs=50", "--set", "lr=[0.1, 1.0]", "--out", "r"]) == 130
    err = capsys.readouterr().err
    assert err.endswith("resume: python -m sweep run 'my grid.toml' --set epochs=50 --set 'lr=[0.1, 1.0]' --out r\n")
