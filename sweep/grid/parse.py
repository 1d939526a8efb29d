"""The grid file: read the TOML, check its keys and tables, build a `Grid`.

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

Other top-level settings: ``max_runs`` (default 20,000,000: larger grids
are refused, and so are grids whose runs would not fit in memory), ``chunk_size``
(networks per kernel call; by default by the work of a run), ``record``.

``checkpoints`` is an integer (how many log-spaced epochs) or a list of
epochs. As a fixed value, ``checkpoints = [0, 100, 1000]`` is one explicit
list; under ``[grid]``, ``[[extra]]`` and ``[[exclude]]`` a list lists
alternatives, so an explicit list is written ``[[0, 100, 1000]]`` there. A
grid uses one form or the other, not both.

Mistakes are `GridError`s naming the file and key path (`sweep.grid.errors`).

A grid can also be given as a dict of the same structure (`read_grid`,
named ``<dict>`` in messages), and any of its parameters or settings can be
overridden (``sweep run GRID --set KEY=VALUE``; see `sweep.grid.overrides`).
"""
import itertools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from sweep import datasets as ds_mod
from sweep.errors import GridError
from sweep.grid.errors import describe_point, in_file, key_part, under
from sweep.grid.model import Axis, Block, Exclude, Grid
from sweep.grid.values import ValueChecker
from sweep.params import ALIASES, PARAM, SETTING, SETTINGS, describe, suggest

TABLES = ("grid", "zip", "extra", "exclude", "datasets")
TOP_LEVEL = tuple(SETTING) + tuple(PARAM) + TABLES

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


DICT_FILE = "<dict>"  # a grid given as a dict, in messages


# --------------------------------------------------------------------------- the file

def read_grid(source, overrides=None):
    """A validated grid from a grid file's path or a dict of the same structure, with `overrides` (a list of
    `sweep.grid.overrides.Override`) applied; GridError on any mistake."""
    if isinstance(source, Mapping):
        return parse_dict(source, overrides)
    return load_grid(source, overrides)


def parse_dict(doc, overrides=None, file=DICT_FILE):
    """Validate a grid given as a dict with a grid file's structure (Python data is taken as the TOML data a
    file would hold: tuples, ranges and arrays as lists, NumPy scalars as numbers)."""
    from sweep.grid.overrides import to_toml

    try:
        with in_file(file):
            return parse_grid(to_toml(dict(doc), ""), file, overrides)
    except RecursionError:
        raise GridError("values nested too deeply", file=file) from None


def load_grid(path, overrides=None):
    """Read and validate a grid file (with `overrides` applied, if any); GridError on any mistake."""
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
    return loads_grid(text, shown, overrides)


def loads_grid(text, file="<grid>", overrides=None):
    """Validate a grid given as TOML text; `file` is the name used in messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, file, text) from None
    except RecursionError:
        raise GridError("invalid TOML: nested too deeply", file=file) from None
    try:
        with in_file(file):
            return parse_grid(doc, file, overrides)
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


# --------------------------------------------------------------------------- the document

def parse_grid(doc, file="<grid>", overrides=None):
    """A `Grid` from a parsed TOML document (a dict), with `overrides` applied (`sweep.grid.overrides`)."""
    _check_top_level_keys(doc)
    applied = None
    if overrides:
        from sweep.grid.overrides import apply

        applied = apply(doc, overrides)
        doc = applied.doc
    paths = applied.paths if applied else {}  # where an overridden value came from, for messages
    settings = {}
    for s in SETTINGS:
        if s.name in doc:
            with under(paths.get(s.name, s.name)):
                settings[s.name] = s.check(doc[s.name])
        elif s.kind == "name":
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
        with under(f"datasets.{key_part(name)}"):
            datasets[name] = ds_mod.parse_inline(name, table)

    checker = ValueChecker(datasets, max_runs)
    fixed, explicit = {}, {}
    for key, value in doc.items():
        if key in PARAM:
            fixed[key] = explicit[key] = checker.fixed_value(key, value, paths.get(key, key))

    main = Block(dict(fixed), [], "grid")
    grid_table = doc.get("grid", {})
    if not isinstance(grid_table, dict):
        raise GridError(f"expected a table [grid] of axes (parameter = [values]), got {describe(grid_table)}",
                        key="grid")
    for key, value in grid_table.items():
        _check_param_key(key, "[grid]")
        if key in fixed:
            raise GridError(f"{key!r} is both fixed and a grid axis; keep one")
        path = paths.get(f"grid.{key}") or f"grid.{key_part(key)}"
        main.axes.append(Axis.of(key, checker.axis_values(key, value, path), path))

    axis_of = {a.names[0]: a.path for a in main.axes}
    merge = applied.merge_zips if applied else set()
    for i, table in enumerate(_array_of_tables(doc, "zip")):
        path = f"zip[{i}]"
        if not table and i in merge:  # every column overridden
            continue
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
        main.axes.append(_zip_axis(checker, table, path, merge=i in merge))

    for name in PARAM:
        if name not in axis_of:
            main.fixed.setdefault(name, PARAM[name].default)

    touched = applied.touched_extras if applied else set()
    extras, dropped = [], False
    for i, table in enumerate(_array_of_tables(doc, "extra")):
        if i in touched and not table:  # it set only overridden parameters: nothing left to add
            dropped = True
            continue
        block = _extra_block(checker, main, table, f"extra[{i}]", merge=i in touched)
        if i in touched:  # only its runs that are not runs of the grid or of an earlier extra
            pieces = _subtract(block, [main] + extras, main)
            if pieces is not None:
                extras.extend(pieces)
                dropped = True
                continue
        extras.append(block)
    excludes = []
    for i, table in enumerate(_array_of_tables(doc, "exclude")):
        path = f"exclude[{i}]"
        if not table:
            raise GridError("empty [[exclude]]; give the parameter values of the runs to remove", key=path)
        match = {}
        for key, value in table.items():
            _check_param_key(key, path)
            match[key] = checker.axis_values(key, value, f"{path}.{key_part(key)}", allow_duplicates=True)
        exclude = Exclude(match, path)
        if applied and (dropped or applied.names & set(match)) and not any(_hits(exclude, b)
                                                                            for b in [main] + extras):
            continue  # it matched runs that overrides took away
        excludes.append(exclude)

    used = {name: d for name, d in datasets.items() if name in _values_of("dataset", [main] + extras)}
    used.update({name: d for name, d in datasets.items() if not d.builtin})
    grid = Grid(file=str(file), name=settings["name"], description=settings["description"], max_runs=max_runs,
                chunk_size=settings["chunk_size"], record=settings["record"], main=main, extras=extras, excludes=excludes,
                datasets=used, explicit=explicit, overrides=applied.record if applied else {})
    _check_checkpoint_forms([main] + extras)
    n = grid.n_points
    if n > max_runs:
        raise GridError(f"the grid expands to {n:,} runs, over the limit of {max_runs:,} (max_runs); "
                        f"split it or raise max_runs")
    memory = physical_memory()
    if memory and n * RUN_BYTES > memory:
        raise GridError(f"the grid expands to {n:,} runs, whose runs table alone takes about "
                        f"{n * RUN_BYTES / 2**30:.1f} GiB, more than this machine's {memory / 2**30:.1f} GiB of memory; "
                        f"split it into several grids")
    return grid


# Peak memory of planning a run, measured (`sweep plan` of a 4096 x 4096 map: 3.2 GB for 16.8 million runs).
RUN_BYTES = 200


def physical_memory():
    """Bytes of memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


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
                out.update(a.column(name))
    return out


def _check_checkpoint_forms(blocks):
    values = _values_of("checkpoints", blocks)
    counts = sorted(v for v in values if isinstance(v, int))
    lists = sorted(v for v in values if isinstance(v, tuple))
    if counts and lists:
        raise GridError(f"checkpoints: a grid uses either counts or explicit epoch lists, not both "
                        f"(found {counts[0]} and {list(lists[0])}); write every value in one form")


# --------------------------------------------------------------------------- [[zip]] and [[extra]]

def _zip_axis(checker, table, path, merge=False):
    columns = {}
    for key, value in table.items():
        if not isinstance(value, (list, dict)):
            others = ", ".join(repr(k) for k in table if k != key) or "the others"
            raise GridError(f"expected a list (or generator) of values that vary together with {others}, "
                            f"got {describe(value)}", key=f"{path}.{key_part(key)}")
        columns[key] = checker.axis_values(key, value, f"{path}.{key_part(key)}", allow_duplicates=True)
    return _zip(columns, path, merge)


def _zip(columns, path, merge=False):
    """The axis of zipped columns; `merge`: equal points are one point (a zip that lost a column to an
    override), rather than an error."""
    names = tuple(columns)
    first = names[0]
    for key in names[1:]:
        if len(columns[key]) != len(columns[first]):
            raise GridError(f"{first!r} has {len(columns[first])} values but {key!r} has {len(columns[key])}; "
                            f"zipped parameters vary together and need the same number of values", key=path)
    points = list(zip(*(columns[k] for k in names)))
    seen = {}
    if merge:
        points = list(dict.fromkeys(points))
    for i, p in enumerate(points):
        if p in seen:
            shown = describe_point(dict(zip(names, p)))
            raise GridError(f"point {i} ({shown}) repeats point {seen[p]}; every point of a zip must differ",
                            key=path)
        seen[p] = i
    return Axis(names, points, path)


def _extra_block(checker, main, table, path, merge=False):
    if not isinstance(table, dict) or not table:
        raise GridError("empty [[extra]]; give the parameters that differ from the grid", key=path)
    for key in table:
        _check_param_key(key, path)
    fixed = dict(main.fixed)
    axes = list(main.axes)
    new_axes = []
    zipped_given = {}
    for key, value in table.items():
        kpath = f"{path}.{key_part(key)}"
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
            new = Axis.of(key, checker.axis_values(key, value, kpath), kpath)
            if axis is not None:
                axes[axes.index(axis)] = new
            else:
                fixed.pop(key, None)
                new_axes.append(new)
        else:
            fixed[key] = checker.fixed_value(key, value, kpath)
            if axis is not None:
                axes.remove(axis)
    for zpath, given in zipped_given.items():
        old = next(a for a in axes if a.path == zpath)
        listed = {k: v for k, v in given.items() if isinstance(v, (list, dict))}
        for k, v in given.items():
            if k not in listed:
                fixed[k] = checker.fixed_value(k, v, f"{path}.{key_part(k)}")
        if listed:
            cols = {k: checker.axis_values(k, v, f"{path}.{key_part(k)}", allow_duplicates=True)
                    for k, v in listed.items()}
            axes[axes.index(old)] = _zip(cols, path, merge)
        else:
            axes.remove(old)
    block = Block(fixed, axes + new_axes, path)
    if block.size > checker.max_runs:
        raise GridError(f"adds {block.size:,} runs, over the limit of {checker.max_runs:,} (max_runs)", key=path)
    return block


# --------------------------------------------------------------------------- what overrides leave behind

def _components(main):
    """The components every block is a product over: each axis of the grid (its names), each fixed name.

    An [[extra]] replaces whole components (a value or an axis of one parameter, or one zip's
    parameters), so its runs are the product of its projections on these."""
    return [axis.names for axis in main.axes] + [(name,) for name in main.fixed]


def _projection(block, names):
    """The distinct value tuples (aligned with `names`) that the runs of `block` take, in run order."""
    parts = [((name,), [(block.fixed[name],)]) for name in names if name in block.fixed]
    for axis in block.axes:
        idx = [k for k, n in enumerate(axis.names) if n in names]
        if idx:
            parts.append((tuple(axis.names[k] for k in idx),
                          list(dict.fromkeys(tuple(p[k] for k in idx) for p in axis.values))))
    order = [n for group, _ in parts for n in group]
    out = {}
    for combo in itertools.product(*(values for _, values in parts)):
        value = dict(zip(order, itertools.chain.from_iterable(combo)))
        out.setdefault(tuple(value[n] for n in names), None)
    return list(out)


def _subtract(block, others, main):
    """The runs of `block` that are no run of `others`, as blocks; None if it shares no run with them.

    With every block a product over the same components, A minus B is the disjoint union over
    components i of (A_j and B_j for j < i) x (A_i minus B_i) x (A_j for j > i)."""
    comps = _components(main)
    pieces = [{names: _projection(block, names) for names in comps}]
    shared = False
    for other in others:
        theirs = {names: set(_projection(other, names)) for names in comps}
        out = []
        for piece in pieces:
            if any(not any(v in theirs[names] for v in piece[names]) for names in comps):
                out.append(piece)  # no run in common
                continue
            shared = True
            prefix = {}
            for names in comps:
                outside = [v for v in piece[names] if v not in theirs[names]]
                if outside:
                    out.append({**piece, **prefix, names: outside})
                prefix[names] = [v for v in piece[names] if v in theirs[names]]
        pieces = out
    if not shared:
        return None
    rank = {}  # a component's place: that of the first axis of the block over it
    for k, axis in enumerate(block.axes):
        for names in comps:
            if set(axis.names) & set(names):
                rank.setdefault(names, k)
    blocks = []
    for piece in pieces:
        fixed, axes = {}, []
        for names in sorted(comps, key=lambda c: rank.get(c, len(rank))):
            values = piece[names]
            if len(values) == 1:
                fixed.update(zip(names, values[0]))
            else:
                axes.append(Axis(names, values, block.path))
        blocks.append(Block(fixed, axes, block.path))
    return blocks


def _hits(exclude, block):
    """Whether `exclude` matches a run of `block` (as `sweep.grid.runs` matches: numbers to 9 digits)."""
    from sweep.grid.runs import _matches

    def ok(name, value):
        return any(_matches(value, w) for w in exclude.match[name])

    if not all(ok(name, value) for name, value in block.fixed.items() if name in exclude.match):
        return False
    for axis in block.axes:
        keys = [(k, n) for k, n in enumerate(axis.names) if n in exclude.match]
        if keys and not any(all(ok(n, point[k]) for k, n in keys) for point in axis.values):
            return False
    return True
