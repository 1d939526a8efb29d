"""Fuzzing the grid parser: any document either plans or gives a one-line GridError.

Three sources of documents: random structures written as TOML (mostly
schema-shaped, with junk mixed in), random mutations of valid grid files,
and random text. Whatever comes in, the outcome is a runs table and a plan,
or a `GridError` whose message is one line naming the file; never another
exception.
"""
import contextlib
import io
import json
import math
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sweep.cli import main
from sweep.errors import GridError
from sweep.grid import expand, loads_grid
from sweep.params import PARAMS
from sweep.plan import AUTO_MAX_LANES, plan_chunks, report

ROOT = Path(__file__).resolve().parents[1]
FILE = "fuzz.toml"
MAX_EXPAND = 20_000  # larger valid grids are only loaded, not expanded (speed)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RICH = '''\
name = "rich"
description = "every feature"
max_runs = 5000
chunk_size = 16
dataset = "maj"
hidden = 3
epochs = 40
checkpoints = [0, 10, 40]
bce_eps = 1e-8

[datasets.maj]
inputs = [[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]]
targets = [[0], [1], [1], [1]]

[grid]
init_scale = { logspace = [-1, 1, 3] }
loss = ["mse", "bce"]
seed = { range = [0, 4] }
momentum = { linspace = [0, 0.5, 2] }

[[zip]]
lr = [0.1, 0.5]
margin = [0.4, 0.3]

[[extra]]
lr = 2.0
margin = 0.2
init = "xavier"

[[exclude]]
loss = "mse"
init_scale = [10.0]
'''

SEEDS = [(ROOT / "grid.toml").read_text(), RICH]


def check_error(exc):
    message = str(exc)
    assert isinstance(exc, GridError)
    assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message
    assert message.startswith(FILE), message
    assert len(message) < 2000


def plan_or_error(text):
    """The property: a plan, or a GridError; anything else fails the test."""
    try:
        grid = loads_grid(text, FILE)
    except GridError as exc:
        check_error(exc)
        return "error"
    assert grid.n_points <= grid.max_runs
    if grid.n_points > MAX_EXPAND:
        return "large"
    try:
        runs = expand(grid)
    except GridError as exc:
        check_error(exc)
        return "error"
    assert 1 <= len(runs) <= grid.n_points
    assert runs["run_id"].is_unique
    chunks = plan_chunks(runs, grid.chunk_size, grid.datasets)
    assert sum(c.n_runs for c in chunks) == len(runs)
    assert all(c.n_runs <= (grid.chunk_size or AUTO_MAX_LANES) for c in chunks)
    text = report(grid, runs, chunks, None, "skipped", n_rows=3)
    assert text.startswith("sweep plan: ")
    json.dumps(grid.resolved)
    return "plan"


# --------------------------------------------------------------------------- a tiny TOML writer

def toml_string(text):
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key):
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml_document(doc):
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in doc.items())


# --------------------------------------------------------------------------- strategies

NAMES = [p.name for p in PARAMS]
small_ints = st.integers(-3, 70)
numbers = st.one_of(small_ints, st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 0.1, 1e-1, 0.5, 0.51, 1.0, 1e4, 2.5, 1e400, 2**32, 10**30]))
words = st.sampled_from(["xor", "and", "parity3", "maj", "mse", "bce", "MSE", "normal", "xavier",
                         "numpy-legacy-normal", "numpy-legacy-uniform", "float32", "float64", "margin", "loss",
                         "", "x", "../up", "saturation"])
text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)
scalars = st.one_of(numbers, words, st.booleans(), text)
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=3)), max_leaves=8)
generators = st.one_of(
    st.fixed_dictionaries({"range": st.lists(small_ints, min_size=1, max_size=4)}),
    st.fixed_dictionaries({"linspace": st.lists(numbers, min_size=2, max_size=4)}),
    st.fixed_dictionaries({"logspace": st.lists(st.one_of(small_ints, numbers), min_size=2, max_size=4)}),
    st.dictionaries(st.sampled_from(["range", "linspace", "logspace", "logspac", "values"]),
                    st.lists(small_ints, max_size=3), max_size=2),
)
axis_values = st.one_of(st.lists(scalars, max_size=5), generators, scalars, junk)
param_names = st.one_of(st.sampled_from(NAMES), st.sampled_from(["learning_rate", "lrr", "name", "grid"]),
                        text)
axis_tables = st.dictionaries(param_names, axis_values, max_size=4)
point_tables = st.dictionaries(param_names, st.one_of(scalars, st.lists(scalars, max_size=3), generators), max_size=4)
datasets = st.dictionaries(
    st.sampled_from(["maj", "xor", "m", "a b", ""]),
    st.one_of(st.fixed_dictionaries({
        "inputs": st.lists(st.lists(st.one_of(small_ints, numbers, st.booleans()), max_size=9), max_size=6),
        "targets": st.lists(st.one_of(small_ints, numbers, st.lists(small_ints, max_size=2)), max_size=6),
    }), junk),
    max_size=2)
documents = st.fixed_dictionaries(
    {"name": st.one_of(st.just("fuzz"), scalars)},
    optional={
        "max_runs": st.one_of(st.integers(0, 5000), numbers),
        "chunk_size": st.one_of(st.integers(0, 100), numbers),
        "description": scalars,
        **{name: st.one_of(scalars, junk) for name in NAMES},
        "datasets": datasets,
        "grid": st.one_of(axis_tables, junk),
        "zip": st.one_of(st.lists(axis_tables, max_size=2), junk),
        "extra": st.one_of(st.lists(point_tables, max_size=2), junk),
        "exclude": st.one_of(st.lists(point_tables, max_size=2), junk),
        "nmae": scalars,
    })

VALID = {
    "dataset": st.sampled_from(["xor", "and", "or", "nand", "xnor", "parity3"]),
    "hidden": st.integers(1, 8),
    "activation": st.sampled_from(["sigmoid", "tanh", "relu", "identity"]),
    "output": st.sampled_from(["sigmoid", "sigmoid", "identity"]),
    "bias": st.booleans(),
    "scaling": st.sampled_from(["standard", "ntk", "mean-field"]),
    "reduction": st.sampled_from(["sum", "mean"]),
    "epochs": st.integers(1, 60),
    "lr": st.floats(1e-3, 10.0),
    "lr_hidden": st.floats(1e-3, 10.0),
    "lr_output": st.floats(1e-3, 10.0),
    "loss": st.sampled_from(["mse", "bce"]),
    "bce_eps": st.floats(0.0, 0.1),
    "momentum": st.floats(0.0, 0.95),
    "optimizer": st.sampled_from(["gd", "gd", "nesterov", "adam", "adamw", "rmsprop"]),
    "beta1": st.floats(0.0, 0.99),
    "beta2": st.floats(0.0, 0.999),
    "opt_eps": st.floats(0.0, 0.1),
    "weight_decay": st.floats(0.0, 0.5),
    "decay_biases": st.booleans(),
    "batch_size": st.integers(0, 5),
    "shuffle": st.booleans(),
    "init": st.sampled_from(["normal", "uniform", "xavier", "numpy-legacy-normal", "numpy-legacy-uniform"]),
    "init_scale": st.floats(0.01, 100.0),
    "bias_init": st.one_of(st.floats(-1.0, 1.0), st.just("draw")),
    "seed": st.integers(0, 2**32 - 1),
    "dtype": st.sampled_from(["float64", "float32"]),
    "criterion": st.sampled_from(["margin", "loss"]),
    "margin": st.floats(0.01, 0.5),
    "tol": st.floats(1e-4, 1.0),
    "early_stop": st.booleans(),
    "checkpoints": st.integers(0, 20),
    "save_weights": st.booleans(),
    "diagnostics": st.booleans(),
}
VALID_GENERATORS = {
    "seed": st.tuples(st.integers(0, 5), st.integers(1, 6)).map(lambda t: {"range": [t[0], t[0] + t[1]]}),
    "epochs": st.tuples(st.integers(1, 20), st.integers(1, 4)).map(lambda t: {"range": [t[0], t[0] + 10 * t[1], 10]}),
    "lr": st.tuples(st.floats(-3, 0), st.integers(1, 5)).map(lambda t: {"logspace": [t[0], t[0] + 1, t[1]]}),
    "init_scale": st.integers(1, 5).map(lambda n: {"logspace": [-1.5, 1.5, n]}),
    "momentum": st.integers(1, 4).map(lambda n: {"linspace": [0, 0.9, n]}),
    "margin": st.integers(1, 3).map(lambda n: {"linspace": [0.1, 0.5, n]}),
}


@st.composite
def schema_documents(draw):
    """Documents shaped like real grids, with a little junk: they often plan, so the deep checks run."""
    junk_rate = draw(st.sampled_from([0.0, 0.0, 0.02, 0.1]))

    def value(name):
        if draw(st.floats(0, 1)) < junk_rate:
            return draw(junk)
        return draw(VALID[name])

    def values(name):
        if name in VALID_GENERATORS and draw(st.booleans()):
            return draw(VALID_GENERATORS[name])
        out = []
        for _ in range(draw(st.integers(1, 3))):
            v = value(name)
            if v not in out or draw(st.floats(0, 1)) < junk_rate:  # now and then a repeat
                out.append(v)
        return out

    names = draw(st.permutations(NAMES))
    n_fixed, n_grid, n_zip = draw(st.integers(0, 6)), draw(st.integers(0, 3)), draw(st.integers(0, 2))
    doc = {"name": "fuzz", "max_runs": draw(st.sampled_from([2_000_000, 50, 5000]))}
    if draw(st.booleans()):
        doc["chunk_size"] = draw(st.integers(1, 64))
    for name in names[:n_fixed]:
        doc[name] = value(name)
    doc["grid"] = {name: values(name) for name in names[n_fixed:n_fixed + n_grid]}
    zipped = names[n_fixed + n_grid:n_fixed + n_grid + n_zip]
    if zipped:
        length = draw(st.integers(1, 3))
        doc["zip"] = [{name: [value(name) for _ in range(length)] for name in zipped}]
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        doc["extra"] = [{k: value(k) if draw(st.booleans()) else values(k) for k in keys}]
    if draw(st.booleans()):
        listed = [k for k, v in doc["grid"].items() if isinstance(v, list) and len(v) > 1]
        if listed and draw(st.booleans()):  # one value of a listed axis: matches some runs
            k = draw(st.sampled_from(listed))
            doc["exclude"] = [{k: draw(st.sampled_from(doc["grid"][k]))}]
        else:
            keys = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True))
            doc["exclude"] = [{k: value(k) for k in keys}]
    if draw(st.booleans()) and "dataset" not in doc:
        d, n = draw(st.integers(1, 3)), draw(st.integers(1, 5))
        doc["datasets"] = {"mine": {
            "inputs": [[draw(st.integers(0, 1)) for _ in range(d)] for _ in range(n)],
            "targets": [draw(st.sampled_from([0, 1, 0.5, [1]])) for _ in range(n)],
        }}
        doc["dataset"] = "mine"
    return doc


TOKENS = ["[", "]", "{", "}", "=", ",", '"', "'", "\n", " ", "#", ".", "-", "0", "-1", "2.5", "1e400", "nan",
          "inf", "true", "65", "4294967296", "[grid]\n", "[[zip]]\n", "[[extra]]\n", "[[exclude]]\n",
          "[datasets.m]\n", "lr", "seed", "epochs", "range", "logspace", "linspace", "= []", "= [[0, 1], [1]]",
          "\x00", "\t", "é", "\ud800"[:0] + "\\u00e9", '"""', "lr = 0.1\n", "name = \"x\"\n"]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "number", "dup_line", "swap_lines", "drop_line"]))
        n = len(text)
        if op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            text = text[:i] + text[i + draw(st.integers(1, 12)):]
        elif op == "insert":
            i = draw(st.integers(0, n))
            text = text[:i] + draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4))) + text[i:]
        elif op == "number":
            spans = [m.span() for m in NUMBER.finditer(text)]
            if spans:
                a, b = draw(st.sampled_from(spans))
                new = draw(st.sampled_from(["0", "-1", "1", "2.5", "1e400", "-0.0", "65", "3", "1e-1", "nan",
                                            "inf", "true", '"x"', "[]", "[1, 1]", "4294967296", "1_000"]))
                text = text[:a] + new + text[b:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(j, lines[i])
            elif op == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                del lines[i]
            text = "\n".join(lines)
    return text


# --------------------------------------------------------------------------- the properties

def test_the_seed_documents_plan():
    for text in SEEDS:
        assert plan_or_error(text) == "plan"


@FUZZ
@given(documents)
def test_random_documents_plan_or_give_a_grid_error(doc):
    event(plan_or_error(toml_document(doc)))


@FUZZ
@given(schema_documents())
@example({"name": "fuzz", "dataset": {"\r": 0}})  # a line break in a key once reached a message
def test_schema_shaped_documents_plan_or_give_a_grid_error(doc):
    event(plan_or_error(toml_document(doc)))


@FUZZ
@given(mutated())
@example(RICH.replace("[0, 4]", "[0, 4, 0]"))
@example(RICH.replace("targets = [[0], [1], [1], [1]]", "targets = [[0], [1, 0], [1], [1]]"))
@example(RICH + "[[exclude]]\nlr = 99.0\n")
def test_mutated_grid_files_plan_or_give_a_grid_error(text):
    event(plan_or_error(text))


@FUZZ
@given(st.text(max_size=200))
def test_random_text_plans_or_gives_a_grid_error(text):
    event(plan_or_error(text))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), documents.map(toml_document), schema_documents().map(toml_document)))
def test_cli_plan_exits_0_or_2_with_one_line(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILE
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["plan", str(path), "--no-estimate", "--rows", "1"])
        assert sorted(p.name for p in Path(tmp).iterdir()) == [FILE]  # nothing written
    if code == 0:
        assert out.getvalue().startswith("sweep plan: ") and err.getvalue() == ""
    else:
        assert code == 2, (code, err.getvalue())
        assert out.getvalue() == ""
        assert err.getvalue().startswith("sweep: error: ") and err.getvalue().count("\n") == 1
