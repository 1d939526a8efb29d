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
``lr_output``. And the parameters added since the first results (`sweep.params.HASHED_OFF_DEFAULT`: the
model's activation, output, bias, scaling, reduction; the optimizer and its
hyperparameters, batch_size, shuffle) are left out at their defaults, so the
runs of the sigmoid network trained by full-batch gradient descent keep the
ids they had before those existed. A parameter that does not apply to a run
holds its neutral value (`sweep.grid.applies`), null ones left out too.

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
from sweep.grid.applies import RULE, neutral_run
from sweep.params import HASHED_OFF_DEFAULT, PARAM, PARAMS


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
        if p.name in RULE and (value is None or value != value):  # a null that does not apply, read back
            values[p.name] = RULE[p.name].neutral
        else:
            values[p.name] = p.check(value)
    values = {name: [value] for name, value in neutral_run(values).items()}
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


def run_ids(values, codes, digests, rates=None):
    """run_id of every run of a table kept as vocabulary and codes, as a NumPy 'S16' array (hashed in
    compiled code: `sweep.grid.hashing`).

    values: name -> list of the distinct canonical values, every parameter;
    codes: name -> int array, one vocabulary index per run (all the same length);
    digests: dataset name -> content sha256, for every name in values["dataset"];
    rates: `learning_rates(values, codes)`, when the caller has them.
    """
    n = len(codes["dataset"])
    lr, hidden, output = learning_rates(values, codes) if rates is None else rates
    shared = ~np.isnan(lr)
    hashed = {"lr": _recode(lr), "lr_hidden": _recode(np.where(shared, np.nan, hidden)),
              "lr_output": _recode(np.where(shared, np.nan, output))}
    for name in HASHED_OFF_DEFAULT:  # hashed only away from their defaults
        default = PARAM[name].default
        hashed[name] = ([None if v == default else v for v in values[name]], codes[name])
    items = []  # (key, values per vocabulary entry, codes)
    for name in PARAM:
        vocab, c = hashed.get(name, (values[name], codes[name]))
        items.append((name, vocab, c))
    items.append(("dataset_sha256", [digests[v] for v in values["dataset"]], codes["dataset"]))
    items.sort(key=lambda t: t[0])
    # An omitted value is ''. The fragments before the first key that is never omitted (the anchor) carry a
    # trailing comma, those after it a leading one, so the text '{' + the fragments joined + '}' is JSON
    # whichever keys are left out.
    anchor = next(i for i, (_, vocab, _) in enumerate(items) if all(v is not None for v in vocab))
    compiled = n >= COMPILED_FROM
    pieces, const = [], b"{"
    for i, (key, vocab, c) in enumerate(items):
        frags = _fragments(key, vocab, b"," if i < anchor else b"", packed=compiled, lead=b"," if i > anchor else b"")
        if len(frags) == 1:
            const += frags[0] if isinstance(frags, list) else frags.data
            continue
        if const:
            pieces.append(const)
            const = b""
        pieces.append((frags, np.asarray(c)))
    pieces.append(const + b"}")
    if compiled:
        from sweep.grid.hashing import hex16_digests  # imports Numba: not for reading a grid

        return hex16_digests(pieces, n)
    texts = [b"".join(p if isinstance(p, bytes) else p[0][p[1][i]] for p in pieces) for i in range(n)]
    return np.array([hashlib.sha256(t).hexdigest()[:16] for t in texts], dtype="S16")


# Fewer runs are hashed by hashlib: the compiled code costs a fraction of a second to load in a process.
COMPILED_FROM = 64


def _fragments(key, values, end, packed=False, lead=b""):
    """lead + b'"key":value' + end for each value (None, a value left out: b''): the pieces of the canonical
    JSON. packed: a long vocabulary of integers (an axis of seeds) is written by NumPy, as a
    `sweep.grid.hashing.Packed` table."""
    prefix = lead + (json.dumps(key) + ":").encode()
    if packed and len(values) >= PACK_FROM and set(map(type, values)) == {int}:
        try:
            ints = np.array(values, dtype=np.int64)
        except OverflowError:
            ints = None
        if ints is not None and np.all(np.abs(ints) < 10**18):
            from sweep.grid.hashing import Packed

            return Packed(*_int_texts(prefix, ints, end))
    return [b"" if v is None else prefix + _json(v).encode() + end for v in values]


PACK_FROM = 1024


def _int_texts(prefix, ints, end):
    """(data, lengths): prefix + the decimal digits of each integer (|i| < 10**18) + end, packed."""
    magnitude = np.abs(ints)
    widest = len(str(int(magnitude.max()))) if magnitude.size else 1
    lead = len(prefix) + 1  # the prefix, then a minus sign or nothing
    text = np.empty((ints.size, lead + widest + len(end)), dtype=np.uint8)
    text[:, :len(prefix)] = np.frombuffer(prefix, np.uint8)
    text[:, len(prefix)] = ord("-")
    text[:, lead + widest:] = np.frombuffer(end, np.uint8)
    rest = magnitude
    for k in range(widest - 1, -1, -1):  # right-aligned digits; a division by a scalar is quick in NumPy
        quotient = rest // 10
        text[:, lead + k] = ord("0") + rest - 10 * quotient
        rest = quotient
    digits = np.ones(ints.size, dtype=np.int64)
    for k in range(1, widest):
        digits += magnitude >= 10 ** k
    keep = np.ones(text.shape, dtype=bool)  # the characters of each row's text, read in row order
    keep[:, len(prefix)] = ints < 0
    keep[:, lead:lead + widest] = np.arange(widest) >= widest - digits[:, None]
    return text[keep].tobytes(), keep.sum(axis=1)


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


def id_keys(ids):
    """'S16' run ids (16 lower-case hex digits) as the 64-bit integers they spell, which sort as the ids do;
    None if one of them is not hex. Computed eight digits to a 64-bit word, in blocks that stay in cache."""
    words = np.ascontiguousarray(ids).view("<u8").reshape(-1, 2)  # byte k of a word: digit k of its half
    keys = np.empty(len(words), dtype=np.uint64)
    for start in range(0, len(words), KEY_BLOCK):
        block = _hex_words(words[start:start + KEY_BLOCK])
        if block is None:
            return None
        keys[start:start + KEY_BLOCK] = block
    return keys


KEY_BLOCK = 1 << 15


def _hex_words(words):
    """`id_keys` of a block of ids as (n, 2) little-endian words."""
    u = np.uint64
    low, ones = u(0x0F0F0F0F0F0F0F0F), u(0x0101010101010101)
    nibbles = (words & low) + u(9) * ((words >> u(6)) & ones)  # '0'-'9' -> 0-9, 'a'-'f' -> 10-15
    letters = ((nibbles + u(0x0606060606060606)) >> u(4)) & ones  # 1 in the bytes of digits above 9
    if np.any(nibbles & u(0xF0F0F0F0F0F0F0F0)) or not np.array_equal(
            nibbles + u(0x3030303030303030) + u(0x27) * letters, words):  # 'g'-'o' would pass the second alone
        return None
    m16, m32 = u(0x000F000F000F000F), u(0x000000FF000000FF)
    pairs = (nibbles & m16) << u(4) | (nibbles >> u(8)) & m16  # 16-bit lane k: digits 2k, 2k+1
    quads = (pairs & m32) << u(8) | (pairs >> u(16)) & m32  # 32-bit lane k: digits 4k..4k+3
    halves = (quads & u(0xFFFF)) << u(16) | (quads >> u(32)) & u(0xFFFF)  # digits 0..7 of each half
    return halves[:, 0] << u(32) | halves[:, 1]


def id_order(ids):
    """The permutation that sorts 'S16' run ids (as bytes): one sort of the integers the hex digits spell;
    ids that are not hex by their first 8 bytes as integers, the rare ties by the last 8."""
    keys = id_keys(ids)
    if keys is not None:
        return np.argsort(keys)
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
