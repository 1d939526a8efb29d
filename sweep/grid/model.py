"""The validated grid: what `sweep.grid.parse` builds and `sweep.grid.runs` expands.

Values held here are canonical (`sweep.params.Param.check`); an explicit
checkpoint list is a tuple, so that every value is hashable.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from sweep import datasets as ds_mod
from sweep.params import PARAM


class Axis:
    """One axis of a product: one parameter, or a zip group of several.

    Held as points (one tuple of canonical values per point, aligned with names) or as columns (one
    list per name): an axis of one parameter is made from its column (`Axis.of`), so that a million
    seeds never become a million tuples; each form is built from the other when first asked for."""

    def __init__(self, names, values, path, *, columns=None):
        self.names = tuple(names)  # parameter names
        self.path = path  # where it was written: "grid.lr", "zip[0]", "extra[1].seed"
        self._values = values
        self._columns = columns

    @classmethod
    def of(cls, name, values, path):
        """The axis of one parameter from its list of canonical values."""
        return cls((name,), None, path, columns=(list(values),))

    @property
    def values(self):
        """One tuple of canonical values per point."""
        if self._values is None:
            self._values = list(zip(*self._columns))
        return self._values

    def column(self, name):
        """The values of parameter `name` at every point, in order."""
        if self._columns is None:
            self._columns = tuple(list(c) for c in zip(*self._values)) if self._values else \
                tuple([] for _ in self.names)
        return self._columns[self.names.index(name)]

    @property
    def size(self):
        return len(self._values) if self._values is not None else len(self._columns[0])

    def __repr__(self):
        return f"Axis({self.names!r}, size={self.size}, path={self.path!r})"


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
    record: tuple  # the statistics columns stored (None: all; sweep.collect.RECORDABLE)
    main: Block
    extras: list
    excludes: list
    datasets: dict  # name -> sweep.datasets.Dataset, every dataset the runs may use
    explicit: dict = field(default_factory=dict)  # fixed parameters written in the file (name -> value)
    overrides: dict = field(default_factory=dict)  # the overrides applied (name -> TOML data), in order

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
        if self.record is not None:  # absent by default: the manifests of earlier grids are unchanged
            out["record"] = list(self.record)
        for name in PARAM:
            out[name] = _jsonable(self.main.fixed[name]) if name in self.main.fixed else None
        for axis in self.main.axes:
            for name in axis.names:
                out[name] = {"axis" if len(axis.names) == 1 else "zip": _json_column(axis.column(name))}
        out["extra"] = [_block_json(b, self.main) for b in self.extras]
        out["exclude"] = [{k: [_jsonable(v) for v in vs] for k, vs in e.match.items()} for e in self.excludes]
        out["datasets"] = {name: ds_mod.manifest_entry(d) for name, d in sorted(self.datasets.items()) if not d.builtin}
        if self.overrides:
            out["overrides"] = dict(self.overrides)
        return out


def _jsonable(v):
    return list(v) if isinstance(v, tuple) else v


def _json_column(values):
    """An axis column as JSON data (explicit checkpoint lists are tuples there). A long column of integers
    in equal steps is written as the range that makes it, {"range": [start, stop, step]}: a manifest holds
    a million seeds in a few bytes, not megabytes that every reader of the manifest parses."""
    kinds = set(map(type, values))
    if len(values) >= RANGE_FROM and kinds == {int} and -2**62 < min(values) and max(values) < 2**62:
        ints = np.array(values, dtype=np.int64)
        step = int(ints[1] - ints[0])
        if step and np.all(np.diff(ints) == step):
            return {"range": [int(ints[0]), int(ints[-1]) + step, step]}
    return [_jsonable(v) for v in values] if tuple in kinds else list(values)


RANGE_FROM = 1000  # shorter axes are listed


def _block_json(block, main):
    out = {k: _jsonable(v) for k, v in block.fixed.items() if main.fixed.get(k, object()) != v}
    for axis in block.axes:
        if any(axis is a for a in main.axes):
            continue
        for name in axis.names:
            out[name] = {"axis" if len(axis.names) == 1 else "zip": _json_column(axis.column(name))}
    return out
