"""Overrides: values given beside a grid (``sweep run GRID --set KEY=VALUE``, ``sweep.run(GRID, KEY=VALUE)``).

An override replaces one parameter or setting of the grid before it is
validated, so the result is checked exactly as a file is, and is part of the
resolved grid (its manifest, and its runs and hash when they change):

* a setting (``name``, ``description``, ``chunk_size``, ``max_runs``)
  replaces the file's value;
* a run parameter given a single value is fixed to it, given a list or a
  generator table (``{ range = ... }``, ``{ linspace = ... }``,
  ``{ logspace = ... }``) becomes an axis; either way it replaces the
  parameter wherever the grid had it:

  - a fixed value (top-level key) or a ``[grid]`` axis: replaced (an axis
    that stays an axis keeps its place among the axes; a new axis goes last
    in ``[grid]``);
  - a column of a ``[[zip]]``: the parameter leaves the zip, which keeps its
    other columns (points that become equal merge into one; a zip with no
    column left is dropped);
  - an ``[[extra]]`` that set it: the extra no longer sets it, so its runs
    take the override too; runs it now shares with the grid (or an earlier
    extra) are added once, and an extra left with nothing to add is dropped;
  - ``[[exclude]]`` tables apply to the overridden runs; one that matches no
    run because of the overrides (it named an overridden parameter, or
    matched runs of a dropped extra) is dropped rather than an error.

So the runs are the file's runs (before its excludes), each with the
overrides applied, once each, less those the excludes match
(`tests/test_overrides.py` checks exactly this).

``checkpoints`` follows the top of a file: a list of integers is one
explicit list of epochs (fixed); a list of lists is an axis of such lists.

Values are TOML data. On the command line VALUE is TOML (``2000``,
``[0.1, 1.0]``, ``{ range = [0, 10] }``, ``"bce"``); a bare word that is not
TOML (``quick``, ``bce``) is taken as a string. From Python, values are
Python data (numbers, strings, booleans, lists, tuples, ranges, NumPy
arrays and scalars, dicts). Mistakes are one-line errors whose key path
names the override: ``grid.toml: --set lr[1]: expected a number > 0, got -1``.
"""
import re
import tomllib
from dataclasses import dataclass, field

from sweep.errors import GridError, SweepError
from sweep.params import ALIASES, PARAM, SETTING, describe, suggest

TABLES = ("grid", "zip", "extra", "exclude", "datasets")
KEYS = tuple(SETTING) + tuple(PARAM)
SET_EXAMPLE = "e.g. --set epochs=2000 or --set 'lr=[0.1, 1.0]'"
_BARE_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class Override:
    """One override: `key` set to `value` (TOML data); `path` names it in messages ("--set lr")."""

    key: str
    value: object
    path: str

    @property
    def makes_axis(self):
        """A list or a generator table makes an axis (for checkpoints, a list of lists; a list of
        integers is one explicit list of epochs, as at the top of a file)."""
        if isinstance(self.value, dict):
            return True
        if isinstance(self.value, list):
            return self.key != "checkpoints" or any(isinstance(v, (list, dict)) for v in self.value)
        return False


# --------------------------------------------------------------------------- reading overrides

def parse_set(text):
    """An `Override` from a command-line ``KEY=VALUE`` (VALUE in TOML syntax; a bare word is a string)."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise SweepError(f"--set {text}: expected KEY=VALUE, {SET_EXAMPLE}")
    value = value.strip()
    if not value:
        raise SweepError(f"--set {text}: no value after '='; {SET_EXAMPLE} (a string: --set 'loss=\"bce\"')")
    try:
        parsed = tomllib.loads(f"v = {value}")
    except tomllib.TOMLDecodeError as exc:
        if _BARE_WORD.fullmatch(value):
            return Override(key, value, f"--set {key}")
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)\s*$", "", str(exc)).strip()
        words = [w for w in re.findall(r"[A-Za-z_][\w.-]*", value) if w not in ("true", "false", "nan", "inf")]
        hint = ""
        if words and "[" in value:
            hint = " (strings in a list are quoted: --set 'loss=[\"mse\", \"bce\"]')"
        elif words and "{" not in value:
            hint = " (a string that is not one word is quoted: --set 'description=\"two words\"')"
        raise SweepError(f"--set {text}: the value is not valid TOML ({reason[:1].lower()}{reason[1:]}){hint}") \
            from None
    except RecursionError:
        raise SweepError(f"--set {key}=...: the value is nested too deeply") from None
    if set(parsed) != {"v"}:  # "1\nw = 2": more than one value
        raise SweepError(f"--set {text}: expected one TOML value after '='")
    return Override(key, parsed["v"], f"--set {key}")


def from_sets(texts):
    """Overrides from repeated ``--set KEY=VALUE`` options."""
    return [parse_set(t) for t in texts or ()]


def from_kwargs(values):
    """Overrides from Python keyword arguments (``sweep.run(grid, epochs=2000, lr=[0.1, 1.0])``)."""
    return [Override(key, value, f"override {key}") for key, value in values.items()]


def to_toml(value, path):
    """Python data as the TOML data a file would hold (tuples, ranges and arrays as lists, NumPy scalars
    as numbers); GridError, at key path `path`, for what TOML cannot say (None, objects)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    kind = type(value).__module__.split(".")[0]
    if kind == "numpy":
        import numpy as np

        if isinstance(value, np.generic) and value.ndim == 0:
            return to_toml(value.item(), path)
        if isinstance(value, np.ndarray):
            return [to_toml(v, f"{path}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise GridError(f"keys are strings, got {k!r}", key=path)
            out[k] = to_toml(v, f"{path}.{k}" if path else k)
        return out
    if isinstance(value, (list, tuple, range)):
        return [to_toml(v, f"{path}[{i}]") for i, v in enumerate(value)]
    import datetime

    if isinstance(value, (datetime.date, datetime.time)):
        return value
    if value is None:
        raise GridError("None has no TOML form; leave the key out for its default", key=path)
    raise GridError(f"expected TOML data (a number, string, boolean, list or table), got a value of type "
                    f"{type(value).__name__}", key=path)


# --------------------------------------------------------------------------- applying them to a document

@dataclass
class Applied:
    """A grid document with overrides applied, and what `sweep.grid.parse.parse_grid` needs to know of them."""

    doc: dict
    overrides: list  # the Override objects, in order
    paths: dict = field(default_factory=dict)  # where a value came from: "epochs" or "grid.lr" -> "--set lr"
    merge_zips: set = field(default_factory=set)  # indices of [[zip]] tables that lost a column
    touched_extras: set = field(default_factory=set)  # indices of [[extra]] tables that lost a key
    names: set = field(default_factory=set)  # the parameters overridden

    @property
    def record(self):
        """The overrides as plain data, for the resolved grid (and so the manifest)."""
        return {o.key: o.value for o in self.overrides}


def check_keys(overrides):
    """GridError for an override of something that is not a parameter or a setting, or given twice."""
    seen = {}
    for o in overrides:
        origin = o.path.rsplit(" ", 1)[0]  # "--set" or "override"
        if o.key in TABLES:
            raise GridError(f"{o.key!r} is a table of the grid file, not a value: overrides take a run parameter "
                            f"or a setting ({', '.join(SETTING)})", key=origin)
        if o.key not in PARAM and o.key not in SETTING:
            tail = o.key.rsplit(".", 1)[-1]
            hint = (f" (did you mean {tail!r}?)" if tail in PARAM and tail != o.key
                    else suggest(o.key, KEYS, ALIASES))
            raise GridError(f"unknown key {o.key!r}" + (hint or f": overrides take a run parameter or a setting "
                                                          f"({', '.join(SETTING)})"), key=origin)
        if o.key in seen:
            raise GridError(f"{o.key!r} is given twice ({describe(seen[o.key])} and {describe(o.value)}); keep one",
                            key=origin)
        seen[o.key] = o.value


def apply(doc, overrides):
    """The document with `overrides` applied (see the module docstring); `doc` itself is not changed.

    Parts of the document that are not what the format expects are left as they are, for the parser to
    report.
    """
    overrides = [Override(o.key, to_toml(o.value, o.path), o.path) for o in overrides]
    check_keys(overrides)
    doc = dict(doc)
    applied = Applied(doc, overrides)
    for o in overrides:
        if o.key in SETTING:
            doc[o.key] = o.value
            applied.paths[o.key] = o.path
            continue
        applied.names.add(o.key)
        doc.pop(o.key, None)
        grid, at = doc.get("grid", {}), None
        if isinstance(grid, dict) and o.key in grid:
            at = list(grid).index(o.key)
            doc["grid"] = grid = {k: v for k, v in grid.items() if k != o.key}
        for table, lost in (("zip", applied.merge_zips), ("extra", applied.touched_extras)):
            tables = doc.get(table)
            if isinstance(tables, list) and any(isinstance(t, dict) and o.key in t for t in tables):
                doc[table] = [{k: v for k, v in t.items() if k != o.key} if isinstance(t, dict) else t
                              for t in tables]
                lost.update(i for i, t in enumerate(tables) if isinstance(t, dict) and o.key in t)
        if o.makes_axis and isinstance(grid, dict):  # (a [grid] that is not a table is the parser's to report)
            items = list(grid.items())
            items.insert(len(items) if at is None else at, (o.key, o.value))
            doc["grid"] = dict(items)
            applied.paths[f"grid.{o.key}"] = o.path
        elif not o.makes_axis:
            doc[o.key] = o.value
            applied.paths[o.key] = o.path
    return applied
