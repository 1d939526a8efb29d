"""The values of one parameter: a fixed value, or the values of one axis, checked and canonical.

Values are checked against the parameter table (`sweep.params`) and, for
``dataset``, against the datasets the grid knows. An axis is written as a
list, a single value or a generator table (``range``, ``linspace``,
``logspace``; see `sweep.grid.parse` for the format).
"""
import math
from dataclasses import dataclass

import numpy as np

from sweep.errors import GridError
from sweep.grid.errors import key_part, under
from sweep.params import PARAM, describe, suggest, to_float, to_int

GENERATORS = ("range", "linspace", "logspace")
INT_GENERATED_TOL = 1e-9


@dataclass
class Generated:
    """The values of a generator table, as generated."""

    path: str  # the axis's key path, e.g. "grid.lr"
    gen: str  # "range", "linspace" or "logspace"
    values: object  # a range of ints or a list of floats
    checked: bool = False  # the values are canonical, valid and distinct (an integer range of an integer parameter)

    def where(self, i):
        """Value i in a message: 'grid.lr (linspace value 3 of 7)'."""
        return f"{self.path} ({self.gen} value {i + 1} of {len(self.values)})"


class ValueChecker:
    """Validation of values against the parameter schema and the known datasets."""

    def __init__(self, datasets, max_runs):
        self.datasets = datasets
        self.max_runs = max_runs

    def check(self, name, value, path):
        """The canonical form of one value of parameter `name` written at `path`."""
        with under(path):
            value = PARAM[name].check(value)
        if name == "dataset" and value not in self.datasets:
            known = tuple(self.datasets)
            raise GridError(f"unknown dataset {value!r}{suggest(value, known)}; expected one of "
                            + ", ".join(repr(k) for k in known) + f", or define [datasets.{key_part(value)}]",
                            key=path)
        return value

    def fixed_value(self, name, value, path):
        """The canonical form of a value that fixes parameter `name` (not a list of alternatives)."""
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
            generated = self._generate(name, value, path)
            if generated.checked:
                return list(generated.values)
            checked = self._each_generated(name, generated)
        elif isinstance(value, list):
            if not value:
                raise GridError("empty axis; give at least one value", key=path)
            if len(value) > self.max_runs:
                raise GridError(f"{len(value):,} values, over the limit of {self.max_runs:,} runs (max_runs)",
                                key=path)
            checked = self._each_listed(name, value, path)
        else:
            checked = [(self.check(name, value, path), path)]
        out, seen = [], {}
        for c, where in checked:
            if c in seen and not allow_duplicates:
                raise GridError(f"{describe(c) if not isinstance(c, tuple) else list(c)} repeats "
                                f"{seen[c]}; every value of an axis must differ", key=where)
            seen.setdefault(c, where)
            out.append(c)
        return out

    def _each_listed(self, name, values, path):
        """(canonical value, where) for each value of a list, checked one at a time."""
        for i, v in enumerate(values):
            where = f"{path}[{i}]"
            yield self.check(name, v, where), where

    def _each_generated(self, name, generated):
        """(canonical value, where) for each generated value, checked one at a time."""
        for i in range(len(generated.values)):
            yield self._check_generated(name, generated, i), generated.where(i)

    def _generate(self, name, table, path):
        """The values of a generator table; an integer range of an integer parameter comes checked."""
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
                with under(f"{where}[{i}]"):
                    ints.append(to_int(a, "an integer"))
            if len(ints) == 3 and ints[2] == 0:
                raise GridError("expected a step other than 0, got 0", key=f"{where}[2]")
            r = range(*ints)
            if len(r) == 0:
                raise GridError(f"{describe(args)} is empty (stop is excluded); expected at least one value",
                                key=where)
            self._check_count(len(r), where)
            generated = Generated(path, gen, r, checked=PARAM[name].kind in ("int", "checkpoints"))
            if generated.checked:
                # distinct integers in a monotonic run: checking both ends checks them all
                for i in (0, len(r) - 1):
                    self._check_generated(name, generated, i)
            return generated
        if not isinstance(args, list) or len(args) != 3:
            what = "[start, stop, num]" if gen == "linspace" else "[start_exp, stop_exp, num]"
            raise GridError(f"expected {what}, got {describe(args)}", key=where)
        start, stop = (self._finite(a, f"{where}[{i}]") for i, a in enumerate(args[:2]))
        with under(f"{where}[2]"):
            num = to_int(args[2], "an integer >= 1 (how many values)")
        if num < 1:
            raise GridError(f"expected an integer >= 1 (how many values), got {describe(args[2])}", key=f"{where}[2]")
        self._check_count(num, where)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            values = np.linspace(start, stop, num) if gen == "linspace" else np.logspace(start, stop, num)
        return Generated(path, gen, values.tolist())

    @staticmethod
    def _finite(a, where):
        with under(where):
            return to_float(a, "a finite number")

    def _check_count(self, n, where):
        if n > self.max_runs:
            raise GridError(f"generates {n:,} values, over the limit of {self.max_runs:,} runs (max_runs)", key=where)

    def _check_generated(self, name, generated, i):
        """The canonical form of generated value i (integer parameters take floats within 1e-9 of an integer)."""
        v = generated.values[i]
        param = PARAM[name]
        if param.kind in ("int", "checkpoints") and isinstance(v, float) and math.isfinite(v):
            r = round(v)
            if abs(v - r) <= INT_GENERATED_TOL * max(1.0, abs(v)):
                v = int(r)
        try:
            return self.check(name, v, generated.path)
        except GridError as exc:
            raise GridError(f"{generated.gen} value {i + 1} of {len(generated.values)}: {exc.detail}",
                            key=generated.path) from None
