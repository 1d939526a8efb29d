"""Training data: the built-in boolean functions, and the data sets a grid file defines.

Arrays are float64: X of shape (N, D), Y of shape (N,).

Built-in (inputs are every corner of the unit cube, in binary counting
order, first input most significant)::

    xor, and, or, nand, xnor   2 inputs, 4 samples: (0,0), (0,1), (1,0), (1,1)
    parity3                    3 inputs, 8 samples; target 1 when an odd number of inputs are 1

A grid file defines more in ``[datasets.NAME]`` tables, then uses them as
``dataset = "NAME"`` (fixed, or as a value of a ``dataset`` axis). A table
is either inline data::

    [datasets.majority3]
    inputs  = [[0,0,0], [0,0,1], [0,1,0], [0,1,1], [1,0,0], [1,0,1], [1,1,0], [1,1,1]]
    targets = [0, 0, 0, 1, 0, 1, 1, 1]          # or [[0], [0], [0], [1], ...]

(finite inputs, finite targets), or a generator::

    [datasets.reg]
    generator = "gaussian"      # X and Y i.i.d. N(0, 1)
    samples = 272
    inputs = 16
    seed = 0                    # optional, default 0

Generators (``seed`` is optional everywhere, default 0; the random draws
are those of ``rng = np.random.Generator(np.random.PCG64(seed))``, in the
order listed)::

    generator = "gaussian"  samples, inputs, seed, input_std (default 1)
        X = rng.standard_normal((samples, inputs)) * input_std; Y = rng.standard_normal(samples).
        The regression task of Sohl-Dickstein (2024), "The boundary of neural
        network trainability is fractal" (samples = 272, inputs = 16; its hidden
        units compute tanh(sqrt(2) z), which tanh units see on inputs of
        input_std = sqrt(2): examples/fractal_tanh.toml).
    generator = "teacher"   samples, inputs, hidden, activation, seed, noise (default 0)
        X  = rng.standard_normal((samples, inputs))
        W1 = rng.standard_normal((inputs, hidden)) / sqrt(inputs)
        W2 = rng.standard_normal(hidden) / sqrt(hidden)
        E  = rng.standard_normal(samples)          (drawn even when noise = 0)
        Y  = act(X @ W1) @ W2 + noise * E
        A random inputs-hidden-1 network without biases, with a linear output;
        act is one of sigmoid, tanh, relu, identity (`kernels.vocab.ACTIVATIONS`).
        Same seed and shapes: the same X as "gaussian", the same teacher at any noise.
    generator = "parity"    inputs
        All 2**inputs corners of the unit cube in binary counting order (first
        input most significant, like parity3); Y = 1 when an odd number of inputs are 1.
    generator = "boolean"   inputs, seed
        The same corners; Y = rng.integers(0, 2, size=2**inputs): a random boolean function.

A generated data set is a pure function of its table (no global random
state). So that it is the same, bit for bit, on every machine, the
teacher's forward pass sums its products in a fixed order and computes
tanh and sigmoid from an exp made of correctly rounded IEEE operations
(`_exp`), never BLAS or the CPU-dispatched transcendental ufuncs; its
values agree with ``np.tanh(X @ W1) @ W2`` to about 1e-15. The draws
themselves are NumPy's: PCG64's bits and `integers` are exact integer
arithmetic; `standard_normal` (a ziggurat) calls libm's exp/log1p only on
its rare tail and wedge paths, and NumPy promises its streams only per
build and machine. tests/test_dataset_generators.py pins the digests, and
`from_manifest_entry` refuses a regenerated data set whose hash differs
from the one recorded.

Limits (those of the kernel, `kernels.vocab`): 1 to 1024 samples, 1 to 64
inputs, 1 to 256 hidden units (teacher), 1 to 10 inputs for parity and
boolean (2**10 = 1024 samples), seed 0 to 2**32 - 1, noise a finite
number >= 0. Targets may be any finite number here; whether they must lie
in [0, 1] (a sigmoid output) depends on the runs and is checked with the
runs (`Dataset.unit_targets`).

A data set is identified by its name and by a hash of its content
(`content_digest`), which goes into every run's `run_id`: edit the data, or
a generator's table, and the runs are new runs. The results manifest keeps
a generator's table instead of its arrays (`manifest_entry`,
`from_manifest_entry`).
"""
import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

from kernels.vocab import ACTIVATIONS, MAX_HIDDEN, MAX_INPUTS, MAX_SAMPLES
from sweep.errors import GridError
from sweep.params import BUILTIN_DATASETS, MAX_SEED, describe, is_number, suggest, to_float, to_int

DATASET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
INLINE_KEYS = ("inputs", "targets")
MAX_CORNER_INPUTS = int(math.log2(MAX_SAMPLES))  # parity and boolean: 2**inputs samples


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    X: np.ndarray  # (N, D) float64, read-only
    Y: np.ndarray  # (N,) float64, read-only
    builtin: bool
    spec: dict = None  # a generated data set's canonical table (see `GENERATORS`); None for inline and built-ins

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_inputs(self):
        return self.X.shape[1]

    @property
    def generated(self):
        return self.spec is not None

    @property
    def digest(self):
        """16 hex digits of sha256 over the shapes and float64 bytes of X and Y."""
        return content_digest(self.X, self.Y)

    @property
    def unit_targets(self):
        """Whether every target lies in [0, 1] (what a sigmoid output can fit)."""
        return bool(np.all((self.Y >= 0.0) & (self.Y <= 1.0)))

    @property
    def binary_targets(self):
        """Whether every target is exactly 0 or 1 (a classification task)."""
        return bool(np.all((self.Y == 0.0) | (self.Y == 1.0)))


def first_target_outside_unit_interval(dataset):
    """The index of the first target outside [0, 1], or None when all lie inside (for error messages)."""
    bad = np.flatnonzero(~((dataset.Y >= 0.0) & (dataset.Y <= 1.0)))
    return int(bad[0]) if bad.size else None


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


# --------------------------------------------------------------------------- generators

def _rng(seed):
    return np.random.Generator(np.random.PCG64(seed))


# Deterministic exp: Cody-Waite reduction x = k ln2 + r (|r| <= ln2/2), a degree-13 Taylor polynomial
# for exp(r) (truncation < 1e-17), and an exact scaling by 2**k. Only +, -, *, /, rint and ldexp,
# each correctly rounded, so the same bits on every IEEE-754 machine (np.exp is CPU-dispatched).
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: ln2 with the low bits cleared, so k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00


def _exp(x):
    x = np.clip(np.asarray(x, dtype=np.float64), -746.0, 710.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.ones_like(r)
    for n in range(13, 0, -1):
        p = 1.0 + (p * r) / n
    with np.errstate(over="ignore", under="ignore"):  # to inf above 709.8, to 0 below -745.1
        return np.ldexp(p, k.astype(np.int32))


def _activate(z, activation):
    if activation == "identity":
        return z
    if activation == "relu":
        return np.maximum(z, 0.0)
    if activation == "sigmoid":
        return 1.0 / (1.0 + _exp(-z))
    if activation == "tanh":
        t = _exp(-2.0 * np.abs(z))
        return np.copysign((1.0 - t) / (1.0 + t), z)
    raise AssertionError(activation)


def _dot_rows(A, w):
    """A @ w for A (N, K) and w (K,) or (K, M), summed in order k = 0, 1, ... (no BLAS, no FMA)."""
    out = A[:, 0:1] * w[0] if w.ndim == 2 else A[:, 0] * w[0]
    for k in range(1, A.shape[1]):
        out = out + (A[:, k:k + 1] * w[k] if w.ndim == 2 else A[:, k] * w[k])
    return out


def _gen_gaussian(spec):
    rng = _rng(spec["seed"])
    X = rng.standard_normal((spec["samples"], spec["inputs"]))
    Y = rng.standard_normal(spec["samples"])
    return X * spec["input_std"], Y


def teacher_weights(spec):
    """(X, W1 (inputs, hidden), W2 (hidden,), E (samples,)) of a teacher spec, drawn in the documented order."""
    rng = _rng(spec["seed"])
    n, d, h = spec["samples"], spec["inputs"], spec["hidden"]
    X = rng.standard_normal((n, d))
    W1 = rng.standard_normal((d, h)) / math.sqrt(d)
    W2 = rng.standard_normal(h) / math.sqrt(h)
    E = rng.standard_normal(n)
    return X, W1, W2, E


def _gen_teacher(spec):
    X, W1, W2, E = teacher_weights(spec)
    A = _activate(_dot_rows(X, W1), spec["activation"])
    Y = _dot_rows(A, W2) + spec["noise"] * E
    return X, Y + 0.0  # -0.0 -> 0.0


def _gen_parity(spec):
    X = _corners(spec["inputs"])
    return X, X.sum(axis=1) % 2


def _gen_boolean(spec):
    X = _corners(spec["inputs"])
    return X, _rng(spec["seed"]).integers(0, 2, size=X.shape[0]).astype(np.float64)


@dataclass(frozen=True)
class _Key:
    kind: str  # "int", "float", "choice"
    lo: object = None
    hi: object = None
    default: object = None  # None: required
    choices: tuple = ()
    why: str = ""  # appended to the expectation, e.g. " (2**inputs samples, at most 1024)"

    @property
    def expected(self):
        if self.kind == "int":
            return f"an integer in [{self.lo}, {self.hi:_}]" if self.hi >= 10_000 else \
                f"an integer in [{self.lo}, {self.hi}]"
        if self.kind == "float":
            return f"a finite number >= {self.lo:g}"
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, value):
        if self.kind == "int":
            x = to_int(value, self.expected + self.why)
            if not self.lo <= x <= self.hi:
                raise GridError(f"expected {self.expected}{self.why}, got {describe(value)}")
            return x
        if self.kind == "float":
            x = to_float(value, self.expected)
            if x < self.lo:
                raise GridError(f"expected {self.expected}, got {describe(value)}")
            return x
        if not isinstance(value, str) or value not in self.choices:
            hint = suggest(value, self.choices) if isinstance(value, str) else ""
            raise GridError(f"expected {self.expected}, got {describe(value)}{hint}")
        return value


_SAMPLES = _Key("int", 1, MAX_SAMPLES)
_INPUTS = _Key("int", 1, MAX_INPUTS)
_CORNER_INPUTS = _Key("int", 1, MAX_CORNER_INPUTS, why=f" (all 2**inputs patterns, at most {MAX_SAMPLES} samples)")
_SEED = _Key("int", 0, MAX_SEED, default=0)

# generator -> (its keys in canonical order -> how each is checked, the function of the canonical spec)
GENERATORS = {
    "gaussian": ({"samples": _SAMPLES, "inputs": _INPUTS, "seed": _SEED,
                  "input_std": _Key("float", 0.0, default=1.0)}, _gen_gaussian),
    "teacher": ({"samples": _SAMPLES, "inputs": _INPUTS, "hidden": _Key("int", 1, MAX_HIDDEN),
                 "activation": _Key("choice", choices=ACTIVATIONS), "seed": _SEED,
                 "noise": _Key("float", 0.0, default=0.0)}, _gen_teacher),
    "parity": ({"inputs": _CORNER_INPUTS}, _gen_parity),
    "boolean": ({"inputs": _CORNER_INPUTS, "seed": _SEED}, _gen_boolean),
}
_GENERATOR_KEYS = sorted({k for keys, _ in GENERATORS.values() for k in keys} | {"generator"})
_KEY_ALIASES = {"gen": "generator", "kind": "generator", "type": "generator", "distribution": "generator",
                "n": "samples", "N": "samples", "n_samples": "samples", "rows": "samples", "sample": "samples",
                "input": "inputs", "n_inputs": "inputs", "dims": "inputs", "D": "inputs", "features": "inputs",
                "n_hidden": "hidden", "width": "hidden", "H": "hidden",
                "act": "activation", "nonlinearity": "activation",
                "seeds": "seed", "random_seed": "seed", "rng_seed": "seed", "random_state": "seed",
                "sigma": "noise", "std": "noise", "noise_std": "noise"}


def _quoted_list(names):
    names = [repr(n) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _parse_generated(table):
    gen = table["generator"]
    if not isinstance(gen, str) or gen not in GENERATORS:
        hint = suggest(gen, GENERATORS) if isinstance(gen, str) else ""
        raise GridError(f"unknown generator {describe(gen)}{hint}; expected one of "
                        + ", ".join(repr(g) for g in GENERATORS), key="generator")
    keys, _ = GENERATORS[gen]
    if "targets" in table:
        raise GridError("a generated dataset draws its own targets: remove 'targets' (or 'generator', "
                        "for inline data)", key="targets")
    if isinstance(table.get("inputs"), list):
        raise GridError(f"expected the number of inputs, {keys['inputs'].expected}, got a list; inline rows "
                        f"of inputs go without 'generator'", key="inputs")
    for key in table:
        if key != "generator" and key not in keys:
            raise GridError(f"unknown key {key!r}{suggest(key, keys, _KEY_ALIASES)}; a {gen} dataset has "
                            f"{_quoted_list(['generator', *keys])}")
    required = [k for k, c in keys.items() if c.default is None]
    for key in required:
        if key not in table:
            raise GridError(f"missing {key!r}: a {gen} dataset needs " + ", ".join(
                f"{k!r} ({keys[k].expected})" for k in required))
    spec = {"generator": gen}
    for key, check in keys.items():
        if key in table:
            try:
                spec[key] = check.check(table[key])
            except GridError as exc:
                raise exc.under(key) from None
        else:
            spec[key] = check.default
    return spec


def generate(spec):
    """(X, Y) float64 arrays of a canonical generator spec (as `Dataset.spec`); a pure function of `spec`."""
    X, Y = GENERATORS[spec["generator"]][1](spec)
    return np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)


# --------------------------------------------------------------------------- tables of a grid file

def parse_inline(name, table):
    """A `Dataset` from a grid file's ``[datasets.NAME]`` table: inline data or a generator.

    Raises GridError with a key path relative to ``datasets.NAME``
    (the caller prefixes it).
    """
    if name in BUILTIN:
        raise GridError(f"{name!r} is a built-in dataset; give yours another name")
    if not DATASET_NAME_RE.match(name):
        raise GridError(f"expected a dataset name of letters, digits, '_', '.' or '-' "
                        f"(at most 64, starting with a letter or '_'), got {describe(name)}")
    if not isinstance(table, dict):
        raise GridError(f"expected a table with 'inputs' and 'targets', or with 'generator', "
                        f"got {describe(table)}")
    if "generator" in table:
        spec = _parse_generated(table)
        X, Y = generate(spec)
        return Dataset(name, _frozen(X), _frozen(Y), builtin=False, spec=spec)
    for key in table:
        if key not in INLINE_KEYS:
            hint = suggest(key, INLINE_KEYS, _ALIASES)
            if not hint and key in _GENERATOR_KEYS:
                raise GridError(f"unknown key {key!r} in inline data; a generated dataset needs 'generator' "
                                f"(one of " + ", ".join(repr(g) for g in GENERATORS) + ")")
            raise GridError(f"unknown key {key!r}{hint}; an inline dataset has 'inputs' and 'targets'")
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
        raise GridError(f"expected a list of {n_samples} targets (numbers), got {describe(targets)}", key="targets")
    if len(targets) != n_samples:
        raise GridError(f"expected {n_samples} targets (one per row of inputs), got {len(targets)}", key="targets")
    out = []
    for i, t in enumerate(targets):
        key = f"targets[{i}]"
        if isinstance(t, list):
            if len(t) != 1:
                raise GridError(f"expected a number or a one-element list like [1] (the network has "
                                f"one output), got a list of {len(t)}", key=key)
            t, key = t[0], key + "[0]"
        if not is_number(t):
            raise GridError(f"expected a finite number, got {describe(t)}", key=key)
        out.append(_finite(t, key))
    return np.array(out, dtype=np.float64)


# --------------------------------------------------------------------------- the results manifest

def manifest_entry(dataset):
    """What the results manifest keeps of a non-built-in `dataset` (plain JSON data).

    Generated: its canonical table plus ``"sha256"``, e.g. ``{"generator": "gaussian", "samples": 272,
    "inputs": 16, "seed": 0, "sha256": "..."}``; inline: ``{"inputs": rows, "targets": [...], "sha256": ...}``.
    ``"sha256"`` is `Dataset.digest`. `from_manifest_entry` is the inverse.
    """
    if dataset.builtin:
        raise ValueError(f"{dataset.name!r} is a built-in dataset; the manifest keeps only the others")
    if dataset.spec is not None:
        return dict(dataset.spec, sha256=dataset.digest)
    return {"inputs": dataset.X.tolist(), "targets": dataset.Y.tolist(), "sha256": dataset.digest}


def from_manifest_entry(name, entry):
    """The `Dataset` that `manifest_entry` described: a generated one is generated again.

    GridError (key paths relative to the entry) when the entry is not valid, or when the data
    it gives do not have the recorded ``"sha256"``.
    """
    if not isinstance(entry, dict):
        raise GridError(f"expected a table with 'sha256', got {describe(entry)}")
    if "sha256" not in entry:
        raise GridError("missing 'sha256': a manifest entry records the content hash of its data set")
    recorded = entry["sha256"]
    ds = parse_inline(name, {k: v for k, v in entry.items() if k != "sha256"})
    if ds.digest != recorded:
        how = "regenerated from its table" if ds.generated else "read from the manifest"
        raise GridError(f"the data of dataset {name!r} {how} have sha256 {ds.digest}, but the manifest "
                        f"records {describe(recorded)}", key="sha256")
    return ds


def dataset_arrays(grid, name):
    """(X (N, D), Y (N,)) float64 copies of dataset `name` as a grid resolves it.

    `grid` is a `sweep.grid.Grid` (for its own datasets) or None (built-ins only).
    """
    datasets = getattr(grid, "datasets", None) or {}
    ds = datasets.get(name) or BUILTIN.get(name)
    if ds is None:
        raise KeyError(f"unknown dataset {name!r}")
    return np.array(ds.X, dtype=np.float64), np.array(ds.Y, dtype=np.float64)
