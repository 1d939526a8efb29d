"""Training data: the built-in boolean functions and inline datasets of a grid file.

Built-in (inputs are every corner of the unit cube, in binary counting
order, first input most significant):

    xor, and, or, nand, xnor   2 inputs, 4 samples: (0,0), (0,1), (1,0), (1,1)
    parity3                    3 inputs, 8 samples; target 1 when an odd number of inputs are 1

Inline, in a grid file::

    [datasets.majority3]
    inputs  = [[0,0,0], [0,0,1], [0,1,0], [0,1,1], [1,0,0], [1,0,1], [1,1,0], [1,1,1]]
    targets = [0, 0, 0, 1, 0, 1, 1, 1]          # or [[0], [0], [0], [1], ...]

then ``dataset = "majority3"`` (fixed, or as a value of a ``dataset`` axis).
Limits (those of the kernel): 1 to 64 samples, 1 to 8 inputs, finite
inputs, targets in [0, 1]. A dataset is identified by its name and by a hash
of its content, which goes into every run's `run_id`: edit the data and the
runs are new runs.

Arrays are float64: X of shape (N, D), Y of shape (N,).
"""
import hashlib
import re
from dataclasses import dataclass

import numpy as np

from kernels.vocab import MAX_INPUTS, MAX_SAMPLES
from sweep.errors import GridError
from sweep.params import BUILTIN_DATASETS, describe, is_number, suggest, to_float

DATASET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
INLINE_KEYS = ("inputs", "targets")


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    X: np.ndarray  # (N, D) float64, read-only
    Y: np.ndarray  # (N,) float64, read-only
    builtin: bool

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_inputs(self):
        return self.X.shape[1]

    @property
    def digest(self):
        """16 hex digits of sha256 over the shapes and float64 bytes of X and Y."""
        return content_digest(self.X, self.Y)


def content_digest(X, Y):
    X = np.ascontiguousarray(X, dtype="<f8")
    Y = np.ascontiguousarray(Y, dtype="<f8")
    h = hashlib.sha256()
    h.update(f"{X.shape[0]}x{X.shape[1]};".encode())
    h.update(X.tobytes())
    h.update(Y.tobytes())
    return h.hexdigest()[:16]


def _frozen(a):
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _corners(n_inputs):
    """All 2**n inputs in binary counting order, first input most significant."""
    codes = np.arange(2**n_inputs)
    return ((codes[:, None] >> np.arange(n_inputs - 1, -1, -1)) & 1).astype(np.float64)


def _builtin(name):
    if name == "parity3":
        X = _corners(3)
        return X, X.sum(axis=1) % 2
    X = _corners(2)
    a, b = X[:, 0].astype(bool), X[:, 1].astype(bool)
    Y = {"xor": a ^ b, "and": a & b, "or": a | b, "nand": ~(a & b), "xnor": ~(a ^ b)}[name]
    return X, Y.astype(np.float64)


BUILTIN = {name: Dataset(name, *map(_frozen, _builtin(name)), builtin=True) for name in BUILTIN_DATASETS}
assert tuple(BUILTIN) == BUILTIN_DATASETS


def builtin_dataset(name):
    """The built-in dataset `name` (KeyError if there is none)."""
    return BUILTIN[name]


def parse_inline(name, table):
    """A `Dataset` from a grid file's ``[datasets.NAME]`` table.

    Raises GridError with a key path relative to ``datasets.NAME``
    (the caller prefixes it).
    """
    if name in BUILTIN:
        raise GridError(f"{name!r} is a built-in dataset; give yours another name")
    if not DATASET_NAME_RE.match(name):
        raise GridError(f"expected a dataset name of letters, digits, '_', '.' or '-' "
                        f"(at most 64, starting with a letter or '_'), got {describe(name)}")
    if not isinstance(table, dict):
        raise GridError(f"expected a table with 'inputs' and 'targets', got {describe(table)}")
    for key in table:
        if key not in INLINE_KEYS:
            raise GridError(f"unknown key {key!r}{suggest(key, INLINE_KEYS, _ALIASES)}; "
                            f"an inline dataset has 'inputs' and 'targets'")
    for key in INLINE_KEYS:
        if key not in table:
            raise GridError(f"missing {key!r}: an inline dataset needs 'inputs' (a list of rows) "
                            f"and 'targets' (one per row)")
    X = _parse_inputs(table["inputs"])
    Y = _parse_targets(table["targets"], X.shape[0])
    return Dataset(name, _frozen(X), _frozen(Y), builtin=False)


_ALIASES = {"x": "inputs", "X": "inputs", "input": "inputs", "features": "inputs", "data": "inputs",
            "y": "targets", "Y": "targets", "target": "targets", "labels": "targets", "outputs": "targets"}


def _finite(v, key):
    try:
        return to_float(v, "a finite number")
    except GridError as exc:
        raise exc.under(key) from None


def _parse_inputs(rows):
    if not isinstance(rows, list) or not rows:
        raise GridError(f"expected a non-empty list of rows (lists of numbers), got {describe(rows)}", key="inputs")
    if len(rows) > MAX_SAMPLES:
        raise GridError(f"expected at most {MAX_SAMPLES} samples (rows), got {len(rows)}", key="inputs")
    width = None
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise GridError(f"expected a row: a list of numbers like [0, 1], got {describe(row)}",
                            key=f"inputs[{i}]")
        if width is None:
            width = len(row)
            if not 1 <= width <= MAX_INPUTS:
                raise GridError(f"expected a row of 1 to {MAX_INPUTS} inputs, got {len(row)}", key=f"inputs[{i}]")
        elif len(row) != width:
            raise GridError(f"expected a row of {width} numbers like inputs[0] (rows must all have the same "
                            f"length), got {len(row)}", key=f"inputs[{i}]")
        out.append([_finite(v, f"inputs[{i}][{j}]") for j, v in enumerate(row)])
    return np.array(out, dtype=np.float64)


def _parse_targets(targets, n_samples):
    if not isinstance(targets, list):
        raise GridError(f"expected a list of {n_samples} targets in [0, 1], got {describe(targets)}", key="targets")
    if len(targets) != n_samples:
        raise GridError(f"expected {n_samples} targets (one per row of inputs), got {len(targets)}", key="targets")
    out = []
    for i, t in enumerate(targets):
        key = f"targets[{i}]"
        if isinstance(t, list):
            if len(t) != 1:
                raise GridError(f"expected a number in [0, 1] or a one-element list like [1] (the network has "
                                f"one output), got a list of {len(t)}", key=key)
            t, key = t[0], key + "[0]"
        if not is_number(t):
            raise GridError(f"expected a number in [0, 1], got {describe(t)}", key=key)
        y = _finite(t, key)
        if not 0.0 <= y <= 1.0:
            raise GridError(f"expected a number in [0, 1] (sigmoid outputs), got {describe(t)}", key=key)
        out.append(y)
    return np.array(out, dtype=np.float64)


def dataset_arrays(grid, name):
    """(X (N, D), Y (N,)) float64 copies of dataset `name` as a grid resolves it.

    `grid` is a `sweep.grid.Grid` (for its inline datasets) or None (built-ins only).
    """
    datasets = getattr(grid, "datasets", None) or {}
    ds = datasets.get(name) or BUILTIN.get(name)
    if ds is None:
        raise KeyError(f"unknown dataset {name!r}")
    return np.array(ds.X, dtype=np.float64), np.array(ds.Y, dtype=np.float64)
