"""Run identity: the canonical form of a run and its `run_id`.

``run_id`` is 16 hex digits of the sha256 of the canonical JSON (sorted
keys, no spaces) of the run's full resolved parameters: every parameter,
defaults filled in, numbers canonical (``0.1`` and ``1e-1``, ``1`` and
``1.0`` for a float parameter, ``10000`` and ``1e4`` for an integer one are
the same value), plus ``dataset_sha256``, a hash of the dataset's content.
It does not depend on where or how a value was written (fixed, axis, zip,
extra; axis order).

There is one implementation, `run_ids`, for a whole runs table: it writes
the JSON fragment of each distinct value once and joins fragments per run,
which is what makes a million runs quick. `run_id` (one run, given as a
dict) is the same function applied to a table of one run.
"""
import hashlib
import json

import numpy as np

from sweep import datasets as ds_mod
from sweep.params import PARAM, PARAMS


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
    return one


def run_ids(values, codes, digests):
    """run_id of every run of a table kept as vocabulary and codes.

    values: name -> list of the distinct canonical values, every parameter;
    codes: name -> int array, one vocabulary index per run (all the same length);
    digests: dataset name -> content sha256, for every name in values["dataset"].
    """
    n = len(codes["dataset"])
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


def _fragments(key, values):
    """'"key":value' for each value: the pieces of the canonical JSON."""
    prefix = json.dumps(key) + ":"
    return [prefix + _json(v) for v in values]


def _json(value):
    """json.dumps of a canonical value, as written in the sorted, compact JSON that is hashed."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return float.__repr__(value)  # what json.dumps writes for a finite float
    return json.dumps(list(value) if kind is tuple else value, separators=(",", ":"))
