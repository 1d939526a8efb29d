"""Run identity: the canonical form of a run and its `run_id`.

``run_id`` is 16 hex digits of the sha256 of the canonical JSON (sorted
keys, no spaces) of the run's full resolved parameters: every parameter,
defaults filled in, numbers canonical (``0.1`` and ``1e-1``, ``1`` and
``1.0`` for a float parameter, ``10000`` and ``1e4`` for an integer one are
the same value), plus ``dataset_sha256``, a hash of the dataset's content.
It does not depend on where or how a value was written (fixed, axis, zip,
extra; axis order).

Two rules keep a run's identity its meaning. Learning rates are hashed
resolved: ``lr`` when both layers share one (so ``lr = 0.5`` and
``lr_hidden = lr_output = 0.5`` are one run), else ``lr_hidden`` and
``lr_output``. And the parameters of the model (`sweep.params.MODEL`: activation,
output, bias, scaling, reduction) are left out at their defaults, so the runs
of the sigmoid network keep the ids they had before the family existed.

There is one implementation, `run_ids`, for a whole runs table: it writes
the JSON fragment of each distinct value once, and `sweep.grid.hashing`
hashes the joined fragments of every run in compiled code, which is what
makes 16.8 million runs quick. `run_id` (one run, given as a
dict) is the same function applied to a table of one run.
"""
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa

from sweep import datasets as ds_mod
from sweep.params import MODEL, PARAM, PARAMS


def run_id(params, datasets=None):
    """run_id of one run given as a dict of parameters.

    `params` maps parameter names to (raw or canonical) values; missing ones
    take their defaults. `datasets` maps inline dataset names to `Dataset`s.
    """
    values = {}
    for p in PARAMS:
        value = params.get(p.name, p.default)
        if isinstance(value, np.generic):  # a value read back from a DataFrame or Parquet
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        values[p.name] = [p.check(value)]
    known = dict(ds_mod.BUILTIN, **(datasets or {}))
    digests = {name: d.digest for name, d in known.items()}
    (one,) = run_ids(values, dict.fromkeys(values, np.zeros(1, dtype=np.int64)), digests)
    return one.decode()


def learning_rates(values, codes):
    """Per run, float arrays (lr, lr_hidden, lr_output), resolved: a layer's rate is `lr` unless given;
    lr is NaN where the two layers' rates differ."""
    def column(name):
        return np.array([np.nan if v is None else v for v in values[name]], dtype=np.float64)[codes[name]]

    lr, hidden, output = column("lr"), column("lr_hidden"), column("lr_output")
    hidden = np.where(np.isnan(hidden), lr, hidden)
    output = np.where(np.isnan(output), lr, output)
    return np.where(hidden == output, hidden, np.nan), hidden, output


def _recode(array):
    """(vocabulary, codes) of a float array; NaN becomes None in the vocabulary."""
    codes, vocab = pd.factorize(array, use_na_sentinel=False)  # hashing: faster than sorting 16.8M floats
    return [None if np.isnan(v) else float(v) for v in np.asarray(vocab, dtype=np.float64).tolist()], codes


def run_ids(values, codes, digests):
    """run_id of every run of a table kept as vocabulary and codes, as a NumPy 'S16' array (hashed in
    compiled code: `sweep.grid.hashing`).

    values: name -> list of the distinct canonical values, every parameter;
    codes: name -> int array, one vocabulary index per run (all the same length);
    digests: dataset name -> content sha256, for every name in values["dataset"].
    """
    n = len(codes["dataset"])
    lr, hidden, output = learning_rates(values, codes)
    shared = ~np.isnan(lr)
    hashed = {"lr": _recode(lr), "lr_hidden": _recode(np.where(shared, np.nan, hidden)),
              "lr_output": _recode(np.where(shared, np.nan, output))}
    for name in MODEL:  # hashed only away from their defaults
        default = PARAM[name].default
        hashed[name] = ([None if v == default else v for v in values[name]], codes[name])
    items = []  # (key, fragments per vocabulary entry, codes)
    for name in PARAM:
        vocab, c = hashed.get(name, (values[name], codes[name]))
        items.append((name, _fragments(name, vocab), c))
    items.append(("dataset_sha256", _fragments("dataset_sha256", [digests[v] for v in values["dataset"]]),
                  codes["dataset"]))
    items.sort(key=lambda t: t[0])
    # Every fragment carries a trailing comma (an omitted value is ''). The last key is never omitted, so
    # its fragments lose their comma and the text is '{' + the fragments joined + '}'.
    key, frags, c = items[-1]
    assert all(frags), f"{key} is the last key of a run's JSON and must always be written"
    items[-1] = (key, [f[:-1] for f in frags], c)
    pieces, const = [], b"{"
    for key, frags, c in items:
        if len(frags) == 1:
            const += frags[0].encode()
            continue
        if const:
            pieces.append(const)
            const = b""
        pieces.append(([f.encode() for f in frags], np.asarray(c)))
    pieces.append(const + b"}")
    if n >= COMPILED_FROM:
        from sweep.grid.hashing import hex16_digests  # imports Numba: not for reading a grid

        return hex16_digests(pieces, n)
    texts = [b"".join(p if isinstance(p, bytes) else p[0][p[1][i]] for p in pieces) for i in range(n)]
    return np.array([hashlib.sha256(t).hexdigest()[:16] for t in texts], dtype="S16")


# Fewer runs are hashed by hashlib: the compiled code costs a fraction of a second to load in a process.
COMPILED_FROM = 64


def _fragments(key, values):
    """'"key":value,' for each value (None, a value left out: ''): the pieces of the canonical JSON."""
    prefix = json.dumps(key) + ":"
    return ["" if v is None else prefix + _json(v) + "," for v in values]


def _json(value):
    """json.dumps of a canonical value, as written in the sorted, compact JSON that is hashed."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return float.__repr__(value)  # what json.dumps writes for a finite float
    return json.dumps(list(value) if kind is tuple else value, separators=(",", ":"))


# --------------------------------------------------------------------------- run ids as fixed-width bytes
# Millions of runs: their ids as one 'S16' buffer, never a Python string per run.

def id_array(column):
    """A column of run ids (pandas or Arrow strings of 16 characters) as a NumPy 'S16' array."""
    array = pa.array(column, pa.large_string()) if not isinstance(column, (pa.Array, pa.ChunkedArray)) else column
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:array.offset + n + 1]
    if array.null_count or not np.array_equal(np.diff(offsets), np.full(n, 16)):
        raise ValueError("run ids must be strings of 16 characters")
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data.view("S16")


def id_order(ids):
    """The permutation that sorts 'S16' run ids (as bytes): by their first 8 bytes as integers, the rare
    ties by the last 8 (several times faster than sorting the bytes or two keys at once)."""
    halves = ids.view(">u8").reshape(-1, 2).astype(np.uint64)  # big-endian: integers in the order of the bytes
    order = np.argsort(halves[:, 0])
    first = halves[order, 0]
    tied = np.flatnonzero(first[1:] == first[:-1])
    if tied.size:
        mark = np.zeros(order.size, dtype=bool)
        mark[tied] = mark[tied + 1] = True
        sub = order[mark]  # contiguous groups of equal first halves, the groups in order
        order[mark] = sub[np.lexsort((halves[sub, 1], halves[sub, 0]))]
    return order


def id_strings(ids):
    """An Arrow large_string array of 'S16' ids, built from their bytes."""
    offsets = np.arange(0, 16 * ids.size + 1, 16, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(ids.size, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(ids)))


def joined_ids(ids, separator):
    """The 'S16' ids as one bytes object with `separator` (one byte) between them, as str.join writes them."""
    joined = np.full((ids.size, 17), separator[0], dtype=np.uint8)
    joined[:, :16] = ids.view(np.uint8).reshape(-1, 16)
    return joined.tobytes()[:-1]
