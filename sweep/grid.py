"""The grid file: parse, validate, expand into the runs table.

Format (TOML)
=============

A grid file names a sweep, fixes some parameters and lists the values of
others; the sweep is every combination. Every parameter has a default, so a
file only states what it changes::

    name = "saturation"                 # required: results go to results/saturation/
    description = "large init stalls sigmoid nets"   # optional free text

    dataset = "xor"                     # fixed parameters: top-level keys
    hidden = 4
    epochs = 10_000

    [grid]                              # axes: the sweep is their cartesian product
    init_scale = { logspace = [-1.5, 1.5, 7] }   # 10^-1.5 .. 10^1.5, 7 values
    loss = ["mse", "bce"]
    lr = [0.1, 0.3, 1.0]
    seed = { range = [0, 100] }         # 0, 1, ..., 99

Any parameter may be fixed (top level) or an axis (under ``[grid]``), not
both. Values are checked against the parameter table (`sweep.params`):
integers are accepted for real-valued parameters; integer parameters
accept a float only when it is exactly integral (``epochs = 1e4``);
``true``/``false`` are not numbers; ``nan`` and ``inf`` are refused.
Axis values are a list, a single value, or generated:

* ``{ range = [start, stop] }`` or ``[start, stop, step]``: integers, stop
  excluded (Python's ``range``);
* ``{ linspace = [start, stop, num] }``: ``num`` evenly spaced numbers,
  both ends included (``numpy.linspace``);
* ``{ logspace = [start_exp, stop_exp, num] }``: ``num`` numbers from
  10^start_exp to 10^stop_exp, evenly spaced in log (``numpy.logspace``).

Generated values must be valid for the parameter (integer parameters
accept generated values within 1e-9 of an integer). Runs are ordered as
the axes appear under ``[grid]``, the last one fastest.

Parameters that vary together (not crossed) go in a ``[[zip]]`` table;
its lists are read in parallel and must have the same length. Each
``[[zip]]`` is one more axis of the product, after the ``[grid]`` axes.
A parameter is in one place only: fixed, in ``[grid]``, or in one
``[[zip]]``::

    [[zip]]                             # 3 points, not 9
    lr     = [0.1, 0.3, 1.0]
    epochs = [30_000, 10_000, 3_000]

Extra runs: each ``[[extra]]`` table adds the runs of the grid above with
the given parameters replaced. A single value fixes the parameter, a list
or generator makes it an axis (a new axis goes last). A zipped parameter
is replaced together with the rest of its ``[[zip]]``. An extra that fixes
every axis adds exactly one run::

    [[extra]]                           # lr = 3.0 too, but only for bce (all scales, all seeds)
    lr = 3.0
    loss = "bce"

    [[extra]]                           # one more run
    init_scale = 100.0
    loss = "mse"
    lr = 0.1
    seed = 0

Excluded runs: each ``[[exclude]]`` table removes every run (of the grid
and of the extras) whose parameters match all of its keys; a list (or
generator) matches any of its values. Numbers match to 9 significant
digits, so values printed by ``sweep plan`` can be pasted. An exclude that
matches no run is an error (it is almost always a typo)::

    [[exclude]]                         # mse at the largest learning rate
    loss = "mse"
    lr = 1.0

Inline datasets (see `sweep.datasets`)::

    [datasets.majority3]
    inputs  = [[0,0,0], [0,0,1], [0,1,0], [0,1,1], [1,0,0], [1,0,1], [1,1,0], [1,1,1]]
    targets = [0, 0, 0, 1, 0, 1, 1, 1]

and ``dataset = "majority3"``, fixed or as an axis value.

Other top-level settings: ``max_runs`` (default 2,000,000: larger grids
are refused), ``chunk_size`` (default 2048: networks per kernel call).

``checkpoints`` is an integer (how many log-spaced epochs) or a list of
epochs. As a fixed value, ``checkpoints = [0, 100, 1000]`` is one explicit
list; under ``[grid]``, ``[[extra]]`` and ``[[exclude]]`` a list lists
alternatives, so an explicit list is written ``[[0, 100, 1000]]`` there. A
grid uses one form or the other, not both.

Runs table and run_id
=====================

`expand` returns one row per run: ``run_id`` then every parameter (the
Parquet column names), in the order above, extras appended, excludes
removed. ``run_id`` is 16 hex digits of the sha256 of the canonical JSON
(sorted keys, no spaces) of the run's full resolved parameters: every
parameter, defaults filled in, numbers canonical (``0.1`` and ``1e-1``,
``1`` and ``1.0`` for a float parameter, ``10000`` and ``1e4`` for an
integer one are the same value), plus ``dataset_sha256``, a hash of the
dataset's content. It does not depend on where or how a value was written
(fixed, axis, zip, extra; axis order). Two identical runs are an error.

Errors
======

Every mistake is a `GridError`: one line naming the file, the key path and
what was expected, e.g. ``grid.toml: grid.lr[2]: expected a number > 0,
got -0.1``.
"""
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sweep import datasets as ds_mod
from sweep.errors import GridError
from sweep.params import ALIASES, PARAM, PARAMS, SETTING, SETTINGS, describe, suggest, to_float, to_int

TABLES = ("grid", "zip", "extra", "exclude", "datasets")
TOP_LEVEL = tuple(SETTING) + tuple(PARAM) + TABLES
GENERATORS = ("range", "linspace", "logspace")
FLOAT_MATCH_RTOL = 1e-9
INT_GENERATED_TOL = 1e-9

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


# --------------------------------------------------------------------------- structures

@dataclass
class Axis:
    """One axis of a product: one parameter, or a zip group of several."""

    names: tuple  # parameter names
    values: list  # one tuple of canonical values per point, aligned with names
    path: str  # where it was written: "grid.lr", "zip[0]", "extra[1].seed"

    @property
    def size(self):
        return len(self.values)


@dataclass
class Block:
    """A product of axes over fixed values: the grid itself, or one [[extra]]."""

    fixed: dict  # name -> canonical value, every parameter that is not an axis
    axes: list
    path: str  # "grid" or "extra[i]"

    @property
    def size(self):
        return math.prod(a.size for a in self.axes)


@dataclass
class Exclude:
    match: dict  # name -> list of canonical values (any of)
    path: str


@dataclass
class Grid:
    """A validated grid file. `expand(grid)` gives its runs table."""

    file: str
    name: str
    description: str
    max_runs: int
    chunk_size: int
    main: Block
    extras: list
    excludes: list
    datasets: dict  # name -> sweep.datasets.Dataset, every dataset the runs may use
    explicit: dict = field(default_factory=dict)  # fixed parameters written in the file (name -> value)

    @property
    def axes(self):
        return self.main.axes

    @property
    def fixed(self):
        return self.main.fixed

    @property
    def n_points(self):
        """Runs before excludes are applied."""
        return self.main.size + sum(b.size for b in self.extras)

    @property
    def resolved(self):
        """The grid as plain JSON data (for the results manifest)."""
        out = {"name": self.name, "description": self.description, "chunk_size": self.chunk_size}
        for name in PARAM:
            out[name] = _jsonable(self.main.fixed[name]) if name in self.main.fixed else None
        for axis in self.main.axes:
            for k, name in enumerate(axis.names):
                out[name] = {"axis" if len(axis.names) == 1 else "zip": [_jsonable(v[k]) for v in axis.values]}
        out["extra"] = [_block_json(b, self.main) for b in self.extras]
        out["exclude"] = [{k: [_jsonable(v) for v in vs] for k, vs in e.match.items()} for e in self.excludes]
        out["datasets"] = {name: {"inputs": d.X.tolist(), "targets": d.Y.tolist(), "sha256": d.digest}
                           for name, d in sorted(self.datasets.items()) if not d.builtin}
        return out


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def _block_json(block, main):
    out = {k: _jsonable(v) for k, v in block.fixed.items() if main.fixed.get(k, object()) != v}
    for axis in block.axes:
        if any(axis is a for a in main.axes):
            continue
        for k, name in enumerate(axis.names):
            out[name] = {"axis" if len(axis.names) == 1 else "zip": [_jsonable(v[k]) for v in axis.values]}
    return out


# --------------------------------------------------------------------------- loading

def load_grid(path):
    """Read and validate a grid file; GridError on any mistake."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise GridError("no such file", file=shown) from None
    except IsADirectoryError:
        raise GridError("is a directory, not a grid file", file=shown) from None
    except PermissionError:
        raise GridError("permission denied", file=shown) from None
    except OSError as exc:
        raise GridError(f"cannot read: {exc.strerror or exc}", file=shown) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise GridError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", file=shown, line=line, col=col) from None
    return loads_grid(text, shown)


def loads_grid(text, file="<grid>"):
    """Validate a grid given as TOML text; `file` is the name used in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, file, text) from None
    except RecursionError:
        raise GridError("invalid TOML: nested too deeply", file=file) from None
    try:
        return parse_grid(doc, file)
    except GridError as exc:
        raise exc.in_file(file) from None
    except RecursionError:
        raise GridError("values nested too deeply", file=file) from None


def _toml_error(exc, file, text):
    msg = str(exc).strip()
    line = col = None
    m = _TOML_POS.search(msg)
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        msg = msg[: m.start()]
    else:
        m = _TOML_END.search(msg)
        if m:
            msg = msg[: m.start()] + " at the end of the file"
            line = text.count("\n") + 1
            col = len(text) - (text.rfind("\n") + 1) + 1
    msg = msg.strip() or "syntax error"
    if not msg[:2].isupper():  # "Invalid value" -> "invalid value", but keep "TOML ..."
        msg = msg[0].lower() + msg[1:]
    return GridError(f"invalid TOML: {msg}", file=file, line=line, col=col)


def parse_grid(doc, file="<grid>"):
    """A `Grid` from a parsed TOML document (a dict)."""
    _check_top_level_keys(doc)
    settings = {}
    for s in SETTINGS:
        if s.name in doc:
            settings[s.name] = _check(s, doc[s.name], s.name)
        elif s.default is None:
            raise GridError(f"missing {s.name!r}: every grid needs a name, e.g. name = \"saturation\" "
                            f"(results go to results/<name>/)")
        else:
            settings[s.name] = s.default
    max_runs = settings["max_runs"]

    datasets = dict(ds_mod.BUILTIN)
    inline = doc.get("datasets", {})
    if not isinstance(inline, dict):
        raise GridError(f"expected tables [datasets.NAME] with inputs and targets, got {describe(inline)}",
                        key="datasets")
    for name, table in inline.items():
        try:
            datasets[name] = ds_mod.parse_inline(name, table)
        except GridError as exc:
            raise exc.under(f"datasets.{_key(name)}") from None

    ctx = _Context(datasets, max_runs)
    fixed, explicit = {}, {}
    for key, value in doc.items():
        if key in PARAM:
            fixed[key] = explicit[key] = ctx.fixed_value(key, value, key)

    main = Block(dict(fixed), [], "grid")
    grid_table = doc.get("grid", {})
    if not isinstance(grid_table, dict):
        raise GridError(f"expected a table [grid] of axes (parameter = [values]), got {describe(grid_table)}",
                        key="grid")
    for key, value in grid_table.items():
        _check_param_key(key, "[grid]")
        if key in fixed:
            raise GridError(f"{key!r} is both fixed and a grid axis; keep one")
        main.axes.append(Axis((key,), [(v,) for v in ctx.axis_values(key, value, f"grid.{_key(key)}")],
                              f"grid.{_key(key)}"))

    axis_of = {a.names[0]: a.path for a in main.axes}
    for i, table in enumerate(_array_of_tables(doc, "zip")):
        path = f"zip[{i}]"
        if not table:
            raise GridError("empty [[zip]]; list the parameters that vary together", key=path)
        for key in table:
            _check_param_key(key, path)
            if key in fixed:
                raise GridError(f"{key!r} is both fixed and zipped in {path}; keep one")
            if key in axis_of:
                where = "a grid axis" if axis_of[key].startswith("grid.") else f"zipped in {axis_of[key]}"
                raise GridError(f"{key!r} is both {where} and zipped in {path}; keep one")
            axis_of[key] = path
        main.axes.append(ctx.zip_axis(table, path))

    for name in PARAM:
        if name not in axis_of:
            main.fixed.setdefault(name, PARAM[name].default)

    extras = [ctx.extra_block(main, table, f"extra[{i}]") for i, table in enumerate(_array_of_tables(doc, "extra"))]
    excludes = []
    for i, table in enumerate(_array_of_tables(doc, "exclude")):
        path = f"exclude[{i}]"
        if not table:
            raise GridError("empty [[exclude]]; give the parameter values of the runs to remove", key=path)
        match = {}
        for key, value in table.items():
            _check_param_key(key, path)
            match[key] = ctx.axis_values(key, value, f"{path}.{_key(key)}", allow_duplicates=True)
        excludes.append(Exclude(match, path))

    used = {name: d for name, d in datasets.items() if name in _values_of("dataset", [main] + extras)}
    used.update({name: d for name, d in datasets.items() if not d.builtin})
    grid = Grid(file=str(file), name=settings["name"], description=settings["description"], max_runs=max_runs,
                chunk_size=settings["chunk_size"], main=main, extras=extras, excludes=excludes,
                datasets=used, explicit=explicit)
    _check_checkpoint_forms([main] + extras)
    n = grid.n_points
    if n > max_runs:
        raise GridError(f"the grid expands to {n:,} runs, over the limit of {max_runs:,} (max_runs); "
                        f"split it or raise max_runs")
    return grid


def _key(name):
    """A TOML key as written in a key path (quoted when it is not a bare key)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _check_top_level_keys(doc):
    for key in doc:
        if key not in TOP_LEVEL:
            raise GridError(f"unknown top-level key {key!r}{suggest(key, TOP_LEVEL, ALIASES)}")


def _check_param_key(key, where):
    if key in PARAM:
        return
    if key in SETTING or key in TABLES:
        raise GridError(f"{key!r} in {where} is not a run parameter; it belongs at the top of the file")
    raise GridError(f"unknown key {key!r} in {where}{suggest(key, tuple(PARAM), ALIASES)}")


def _array_of_tables(doc, key):
    tables = doc.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise GridError(f"expected [[{key}]] tables (an array of tables), got {describe(tables)}", key=key)
    return tables


def _values_of(name, blocks):
    out = set()
    for b in blocks:
        if name in b.fixed:
            out.add(b.fixed[name])
        for a in b.axes:
            if name in a.names:
                k = a.names.index(name)
                out.update(v[k] for v in a.values)
    return out


def _check_checkpoint_forms(blocks):
    values = _values_of("checkpoints", blocks)
    counts = sorted(v for v in values if isinstance(v, int))
    lists = sorted(v for v in values if isinstance(v, tuple))
    if counts and lists:
        raise GridError(f"checkpoints: a grid uses either counts or explicit epoch lists, not both "
                        f"(found {counts[0]} and {list(lists[0])}); write every value in one form")


class _Trusted:
    """Generated values known to be valid and distinct (an integer range)."""

    def __init__(self, values):
        self.values = values


class _Context:
    """Validation of values against the parameter schema and the known datasets."""

    def __init__(self, datasets, max_runs):
        self.datasets = datasets
        self.max_runs = max_runs

    def check(self, name, value, path):
        value = _check(PARAM[name], value, path)
        if name == "dataset" and value not in self.datasets:
            known = tuple(self.datasets)
            raise GridError(f"unknown dataset {value!r}{suggest(value, known)}; expected one of "
                            + ", ".join(repr(k) for k in known) + f", or define [datasets.{_key(value)}]",
                            key=path)
        return value

    def fixed_value(self, name, value, path):
        if isinstance(value, dict):
            raise GridError(f"expected {PARAM[name].expected}, got {describe(value)}; generated values "
                            f"belong in [grid] (put {name} under [grid])", key=path)
        if isinstance(value, list) and name != "checkpoints":
            raise GridError(f"expected {PARAM[name].expected}, got {describe(value)}; to sweep over values, "
                            f"put {name} under [grid]", key=path)
        return self.check(name, value, path)

    def axis_values(self, name, value, path, allow_duplicates=False):
        """Canonical values of an axis written as a list, a generator table or a single value."""
        if isinstance(value, dict):
            raw = self._generate(name, value, path)
            if isinstance(raw, _Trusted):
                return list(raw.values)
        elif isinstance(value, list):
            if not value:
                raise GridError("empty axis; give at least one value", key=path)
            if len(value) > self.max_runs:
                raise GridError(f"{len(value):,} values, over the limit of {self.max_runs:,} runs (max_runs)",
                                key=path)
            raw = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            raw = [(value, path)]
        out, seen = [], {}
        for v, where in raw:
            if isinstance(where, str):
                c = self.check(name, v, where)
            else:  # generated: where = (path, generator, index, count)
                c = self._check_generated(name, v, *where)
                where = f"{where[0]} ({where[1]} value {where[2] + 1} of {where[3]})"
            if c in seen and not allow_duplicates:
                raise GridError(f"{describe(c) if not isinstance(c, tuple) else list(c)} repeats "
                                f"{seen[c]}; every value of an axis must differ", key=where)
            seen.setdefault(c, where)
            out.append(c)
        return out

    def _generate(self, name, table, path):
        gens = [k for k in table if k in GENERATORS]
        for k in table:
            if k not in GENERATORS:
                raise GridError(f"unknown generator {k!r}{suggest(k, GENERATORS)}; expected {{ range = [start, "
                                f"stop] }}, {{ linspace = [start, stop, num] }} or {{ logspace = [start_exp, "
                                f"stop_exp, num] }}", key=path)
        if len(gens) != 1:
            raise GridError(f"expected exactly one of range, linspace, logspace, got {describe(table)}", key=path)
        gen = gens[0]
        args = table[gen]
        where = f"{path}.{gen}"
        if gen == "range":
            if not isinstance(args, list) or len(args) not in (2, 3):
                raise GridError(f"expected [start, stop] or [start, stop, step] (integers, stop excluded), "
                                f"got {describe(args)}", key=where)
            ints = []
            for i, a in enumerate(args):
                try:
                    ints.append(to_int(a, "an integer"))
                except GridError as exc:
                    raise exc.under(f"{where}[{i}]") from None
            if len(ints) == 3 and ints[2] == 0:
                raise GridError("expected a step other than 0, got 0", key=f"{where}[2]")
            r = range(*ints)
            if len(r) == 0:
                raise GridError(f"{describe(args)} is empty (stop is excluded); expected at least one value",
                                key=where)
            self._check_count(len(r), where)
            if PARAM[name].kind in ("int", "checkpoints"):
                # distinct integers in a monotonic run: checking both ends checks them all
                for i in (0, len(r) - 1):
                    self._check_generated(name, r[i], path, gen, i, len(r))
                return _Trusted(r)
            return [(v, (path, gen, i, len(r))) for i, v in enumerate(r)]
        if not isinstance(args, list) or len(args) != 3:
            what = "[start, stop, num]" if gen == "linspace" else "[start_exp, stop_exp, num]"
            raise GridError(f"expected {what}, got {describe(args)}", key=where)
        start, stop = (self._finite(a, f"{where}[{i}]") for i, a in enumerate(args[:2]))
        try:
            num = to_int(args[2], "an integer >= 1 (how many values)")
        except GridError as exc:
            raise exc.under(f"{where}[2]") from None
        if num < 1:
            raise GridError(f"expected an integer >= 1 (how many values), got {describe(args[2])}", key=f"{where}[2]")
        self._check_count(num, where)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            values = np.linspace(start, stop, num) if gen == "linspace" else np.logspace(start, stop, num)
        return [(float(v), (path, gen, i, num)) for i, v in enumerate(values)]

    @staticmethod
    def _finite(a, where):
        try:
            return to_float(a, "a finite number")
        except GridError as exc:
            raise exc.under(where) from None

    def _check_count(self, n, where):
        if n > self.max_runs:
            raise GridError(f"generates {n:,} values, over the limit of {self.max_runs:,} runs (max_runs)", key=where)

    def _check_generated(self, name, v, path, gen, i, n):
        param = PARAM[name]
        if param.kind in ("int", "checkpoints") and isinstance(v, float) and math.isfinite(v):
            r = round(v)
            if abs(v - r) <= INT_GENERATED_TOL * max(1.0, abs(v)):
                v = int(r)
        try:
            return self.check(name, v, path)
        except GridError as exc:
            raise GridError(f"{gen} value {i + 1} of {n}: {exc.detail}", key=path) from None

    def zip_axis(self, table, path):
        columns = {}
        for key, value in table.items():
            if not isinstance(value, (list, dict)):
                others = ", ".join(repr(k) for k in table if k != key) or "the others"
                raise GridError(f"expected a list (or generator) of values that vary together with {others}, "
                                f"got {describe(value)}", key=f"{path}.{_key(key)}")
            columns[key] = self.axis_values(key, value, f"{path}.{_key(key)}", allow_duplicates=True)
        return self._zip(columns, path)

    def _zip(self, columns, path):
        names = tuple(columns)
        first = names[0]
        for key in names[1:]:
            if len(columns[key]) != len(columns[first]):
                raise GridError(f"{first!r} has {len(columns[first])} values but {key!r} has {len(columns[key])}; "
                                f"zipped parameters vary together and need the same number of values", key=path)
        points = list(zip(*(columns[k] for k in names)))
        seen = {}
        for i, p in enumerate(points):
            if p in seen:
                shown = _describe_point(dict(zip(names, p)))
                raise GridError(f"point {i} ({shown}) repeats point {seen[p]}; every point of a zip must differ",
                                key=path)
            seen[p] = i
        return Axis(names, points, path)

    def extra_block(self, main, table, path):
        if not isinstance(table, dict) or not table:
            raise GridError("empty [[extra]]; give the parameters that differ from the grid", key=path)
        for key in table:
            _check_param_key(key, path)
        fixed = dict(main.fixed)
        axes = list(main.axes)
        new_axes = []
        zipped_given = {}
        for key, value in table.items():
            kpath = f"{path}.{_key(key)}"
            axis = next((a for a in main.axes if key in a.names), None)
            if axis is not None and len(axis.names) > 1:
                missing = [n for n in axis.names if n not in table]
                if missing:
                    raise GridError(f"{key!r} is zipped with {', '.join(repr(n) for n in missing)} in {axis.path}; "
                                    f"an extra replaces a zip as a whole, so give all of "
                                    f"{', '.join(repr(n) for n in axis.names)}", key=path)
                zipped_given.setdefault(axis.path, {})[key] = value
                continue
            if isinstance(value, (list, dict)):
                new = Axis((key,), [(v,) for v in self.axis_values(key, value, kpath)], kpath)
                if axis is not None:
                    axes[axes.index(axis)] = new
                else:
                    fixed.pop(key, None)
                    new_axes.append(new)
            else:
                fixed[key] = self.fixed_value(key, value, kpath)
                if axis is not None:
                    axes.remove(axis)
        for zpath, given in zipped_given.items():
            old = next(a for a in axes if a.path == zpath)
            listed = {k: v for k, v in given.items() if isinstance(v, (list, dict))}
            for k, v in given.items():
                if k not in listed:
                    fixed[k] = self.fixed_value(k, v, f"{path}.{_key(k)}")
            if listed:
                cols = {k: self.axis_values(k, v, f"{path}.{_key(k)}", allow_duplicates=True)
                        for k, v in listed.items()}
                axes[axes.index(old)] = self._zip(cols, path)
            else:
                axes.remove(old)
        block = Block(fixed, axes + new_axes, path)
        if block.size > self.max_runs:
            raise GridError(f"adds {block.size:,} runs, over the limit of {self.max_runs:,} (max_runs)", key=path)
        return block


def _check(param, value, path):
    try:
        return param.check(value)
    except GridError as exc:
        raise exc.under(path) from None


# --------------------------------------------------------------------------- run ids

def _json(value):
    """json.dumps of a canonical value (as in the sorted, compact JSON that run_id hashes)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return float.__repr__(value)  # what json.dumps writes for a finite float
    return json.dumps(list(value) if kind is tuple else value, separators=(",", ":"))


def _fragments(key, values):
    """'"key":value' for each value: the pieces of the canonical JSON."""
    prefix = json.dumps(key) + ":"
    return [prefix + _json(v) for v in values]


def hashed_params(params, datasets=None):
    """The dict hashed into a run's run_id: every parameter, defaults filled in, canonical values.

    `params` maps parameter names to (raw or canonical) values; missing ones
    take their defaults. `datasets` maps inline dataset names to `Dataset`s.
    """
    out = {}
    for p in PARAMS:
        value = params.get(p.name, p.default)
        if isinstance(value, np.generic):  # a value read back from a DataFrame or Parquet
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[p.name] = p.check(value)
    known = dict(ds_mod.BUILTIN, **(datasets or {}))
    out["dataset_sha256"] = known[out["dataset"]].digest
    return out


def run_id(params, datasets=None):
    """run_id of one run given as a dict of parameters (see the module docstring)."""
    resolved = hashed_params(params, datasets)
    text = json.dumps({k: _jsonable(v) for k, v in resolved.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- expansion

def _block_codes(block, vocab):
    """{name: int array of vocabulary indices} for every run of a block, last axis fastest."""
    n = block.size
    codes = {}
    for name, value in block.fixed.items():
        codes[name] = np.full(n, vocab[name].setdefault(value, len(vocab[name])), dtype=np.int64)
    stride = n
    for axis in block.axes:
        stride //= axis.size
        index = (np.arange(n, dtype=np.int64) // stride) % axis.size
        for k, name in enumerate(axis.names):
            table = np.array([vocab[name].setdefault(v[k], len(vocab[name])) for v in axis.values], dtype=np.int64)
            codes[name] = table[index]
    return codes


def _value_column(name, values, codes):
    kind = PARAM[name].kind
    if kind == "float":
        return np.array(values, dtype=np.float64)[codes]
    if kind == "int":
        return np.array(values, dtype=np.int64)[codes]
    if kind == "bool":
        return np.array(values, dtype=bool)[codes]
    if kind == "checkpoints" and all(isinstance(v, int) for v in values):
        return np.array(values, dtype=np.int64)[codes]
    if kind in ("choice", "dataset"):
        return pd.array(pa.array(values, pa.large_string()).take(pa.array(codes)), dtype="str")
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table[codes]


def _describe_point(params):
    return ", ".join(f"{n}={describe(v) if not isinstance(v, tuple) else list(v)}" for n, v in params.items())


def expand(grid):
    """The runs table of a grid: a DataFrame, one row per run (see the module docstring).

    GridError if two runs are identical, an exclude matches nothing, every
    run is excluded, or an explicit checkpoint lies beyond a run's epochs.
    """
    try:
        return _expand(grid)
    except GridError as exc:
        raise exc.in_file(grid.file) from None


def _expand(grid):
    blocks = [grid.main] + list(grid.extras)
    vocab = {name: {} for name in PARAM}
    parts = [_block_codes(b, vocab) for b in blocks]
    codes = {name: np.concatenate([p[name] for p in parts]) for name in PARAM}
    source = np.repeat(np.arange(len(blocks)), [b.size for b in blocks])
    values = {name: list(vocab[name]) for name in PARAM}
    n = source.size

    keep = np.ones(n, dtype=bool)
    for exc in grid.excludes:
        hit = np.ones(n, dtype=bool)
        for name, wanted in exc.match.items():
            table = np.array([any(_matches(v, w) for w in wanted) for v in values[name]], dtype=bool)
            hit &= table[codes[name]]
        if not hit.any():
            raise GridError("matches no run; check its values against the grid (numbers match to 9 significant "
                            "digits; `sweep plan` prints the values)", key=exc.path)
        keep &= ~hit
    if not keep.any():
        raise GridError("every run is excluded by [[exclude]]; nothing to run")
    if not keep.all():
        codes = {name: c[keep] for name, c in codes.items()}
        source = source[keep]
        n = source.size

    _check_checkpoints_within_epochs(grid, values, codes, source, blocks)
    _check_data_fits_dtype(grid, values, codes)

    ids = _run_ids(grid, values, codes, n)
    if len(set(ids)) != len(ids):
        _duplicate_error(ids, source, blocks, values, codes)
    columns = {"run_id": pd.array(pa.array(ids, pa.large_string()), dtype="str")}
    for name in PARAM:
        columns[name] = _value_column(name, values[name], codes[name])
    return pd.DataFrame(columns)


def _matches(value, wanted):
    if isinstance(value, float) and isinstance(wanted, float):
        return math.isclose(value, wanted, rel_tol=FLOAT_MATCH_RTOL, abs_tol=0.0)
    return type(value) is type(wanted) and value == wanted


def _check_checkpoints_within_epochs(grid, values, codes, source, blocks):
    lists = values["checkpoints"]
    if not lists or not isinstance(lists[0], tuple):
        return
    last = np.array([max(v) if v else 0 for v in lists], dtype=np.int64)[codes["checkpoints"]]
    epochs = np.array(values["epochs"], dtype=np.int64)[codes["epochs"]]
    bad = np.flatnonzero(last > epochs)
    if bad.size:
        i = bad[0]
        ck = list(values["checkpoints"][codes["checkpoints"][i]])
        raise GridError(f"checkpoints: {ck} goes beyond epochs = {epochs[i]} (runs of {blocks[source[i]].path}); "
                        f"checkpoint epochs must lie in [0, epochs]")


def _check_data_fits_dtype(grid, values, codes):
    """Every value of a data set used in float32 runs must be a finite float32 (1e39 is not)."""
    pairs = set(zip(codes["dataset"].tolist(), codes["dtype"].tolist()))
    for d, t in sorted(pairs):
        name, dtype = values["dataset"][d], values["dtype"][t]
        if dtype == "float64":
            continue
        limit = float(np.finfo(dtype).max)
        for key, array in (("inputs", grid.datasets[name].X), ("targets", grid.datasets[name].Y)):
            big = np.argwhere(~(np.abs(array) <= limit))
            if big.size:
                where = "".join(f"[{i}]" for i in big[0])
                raise GridError(f"{array[tuple(big[0])]:g} does not fit in {dtype} (at most {limit:.4g} in size), and "
                                f"runs with dtype = \"{dtype}\" use this data set", key=f"datasets.{name}.{key}{where}")


def _run_ids(grid, values, codes, n):
    """run_id of every run: sha256 of the canonical JSON, assembled from per-value fragments."""
    digests = {name: d.digest for name, d in grid.datasets.items()}
    items = []  # (key, fragments per vocabulary entry, codes)
    for name in PARAM:
        items.append((name, _fragments(name, values[name]), codes[name]))
    items.append(("dataset_sha256", _fragments("dataset_sha256", [digests[v] for v in values["dataset"]]),
                  codes["dataset"]))
    items.sort(key=lambda t: t[0])
    # merge neighbouring constant fragments, then join per run
    pieces, const = [], []
    for key, frags, c in items:
        if len(frags) == 1:
            const.append(frags[0])
            continue
        if const:
            pieces.append(",".join(const) + ",")
            const = []
        table = np.empty(len(frags), dtype=object)
        table[:] = [f + "," for f in frags]
        pieces.append(table[c].tolist())
    tail = ",".join(const)
    if not pieces:
        text = "{" + tail + "}"
        return [hashlib.sha256(text.encode()).hexdigest()[:16]] * n
    if not tail:  # the last varying piece carries a trailing comma: drop it
        pieces[-1] = [s[:-1] for s in pieces[-1]]
    lists = [p if isinstance(p, list) else [p] * n for p in pieces]
    sha = hashlib.sha256
    return [sha(("{" + "".join(parts) + tail + "}").encode()).hexdigest()[:16] for parts in zip(*lists)]


def _duplicate_error(ids, source, blocks, values, codes):
    first = {}
    for i, run in enumerate(ids):
        if run in first:
            pair = [first[run], i]
            break
        first[run] = i
    varying = [n for n in PARAM if len(values[n]) > 1] or list(PARAM)
    params = {n: values[n][codes[n][pair[0]]] for n in varying}
    where = [blocks[b].path for b in sorted({int(source[r]) for r in pair})]
    where_text = " and ".join(where) if len(where) > 1 else f"twice in {where[0]}"
    raise GridError(f"duplicate run ({_describe_point(params)}) from {where_text}; "
                    f"every run must differ (remove it from an [[extra]] or [[exclude]] it)")
